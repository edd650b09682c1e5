//! The differential test against runc: a table of bundles, each run under
//! runc (the reference, `/usr/sbin/runc`) and under netshim's OCI runtime in
//! the same test, comparing what a user sees: exit status, stdout and stderr
//! of the container, what hooks read on stdin, `state` fields, and what is
//! left afterwards (state directories, cgroups).
//!
//! A row that differs on purpose says why in its `differs` field (and in
//! docs/runtime.md); every other field of that row must still match.
//!
//! Both runtimes run each bundle with the same container ID, one after the
//! other, so IDs and cgroup paths in the output are comparable as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use netshim_integration::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

/// The container's own report of itself: credentials, limits, mounts and
/// cgroups, as the rows need them. Host-specific numbers (mount IDs, PIDs)
/// are left out.
const PROBE: &str = r#"
echo "id: $(id)"
grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp:|SigBlk)' /proc/self/status
echo "hostname: $(hostname)"
echo "nofile: $(ulimit -n)"
echo "oom_score_adj: $(cat /proc/self/oom_score_adj)"
echo "cgroup:"; cat /proc/self/cgroup
echo "net:"; ls /sys/class/net
echo "mounts:"; awk '{ o=""; for (i=7; $i != "-"; i++) o=o" "$i; print $5, $6, $(i+1), o }' /proc/self/mountinfo | awk '$1 !~ /^\/(proc|sys)\/[a-z]/ || $1 ~ /^\/sys\/fs\/cgroup/' | sort
echo "cgroup mounts show the container's own cgroup:"; awk '$5 ~ /^\/sys\/fs\/cgroup\// { print $4, $5 }' /proc/self/mountinfo | while read root mp; do n=${mp##*/}; c=$(grep -E "^[0-9]+:(name=)?$n:" /proc/self/cgroup | cut -d: -f3); [ "$root" = "$c" ] && echo "$n yes" || echo "$n no: $root, in $c"; done
echo "cgroup files writable:"; for f in /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/pids/pids.max; do [ -e $f ] && { [ -w $f ] && echo "$f yes" || echo "$f no"; }; done
echo "dev:"; ls -ln /dev | awk '{print $1, $5, $6, $NF}' | sort
"#;

struct Bundle {
    _dir: tempfile::TempDir,
    path: PathBuf,
    out: PathBuf,
}

/// A bundle whose config.json is `runc spec`'s, with a busybox rootfs and
/// `args`, changed by `edit`. Hooks write to `out` (a directory outside the
/// rootfs, visible in the runtime's namespace).
fn bundle(args: &[&str], edit: impl FnOnce(&mut Value, &Path)) -> Bundle {
    let dir = tempfile::Builder::new()
        .prefix("parity")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("b");
    std::fs::create_dir(&path).unwrap();
    let root = busybox_rootfs(&path);
    for a in [
        "hostname", "awk", "sort", "ls", "uname", "mkdir", "head", "wc", "tr", "sed", "stat",
        "test", "env", "touch", "grep", "cut", "seq",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run(Command::new(RUNC).arg("spec").current_dir(&path)).ok();
    let file = path.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["process"]["env"] = json!(["PATH=/bin", "TERM=xterm"]);
    edit(&mut spec, &out);
    std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    Bundle {
        _dir: dir,
        path,
        out,
    }
}

/// A runtime under test, with a state root of its own.
struct Rt {
    name: &'static str,
    bin: PathBuf,
    root: tempfile::TempDir,
}

impl Rt {
    fn both() -> [Rt; 2] {
        let mk = |name, bin| Rt {
            name,
            bin,
            root: tempfile::Builder::new()
                .prefix(name)
                .tempdir_in("/run")
                .unwrap(),
        };
        [mk("runc", PathBuf::from(RUNC)), mk("netshim", netshim())]
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Ran {
        if args
            .first()
            .is_some_and(|a| *a == "create" || *a == "start")
        {
            return self.run_to_files(args);
        }
        run(&mut self.cmd(args))
    }

    /// `create` (and `start`): the container's init keeps the runtime's
    /// stdout and stderr, so pipes would never close; files are read back
    /// once the runtime has exited.
    fn run_to_files(&self, args: &[&str]) -> Ran {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let status = self
            .cmd(args)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .unwrap();
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut t = String::new();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.read_to_string(&mut t).unwrap();
            t
        };
        Ran {
            code: status.code(),
            stdout: read(out),
            stderr: read(err),
        }
    }
}

/// What one runtime showed for one row.
#[derive(Debug, PartialEq)]
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    hooks: BTreeMap<String, Value>,
    state: Option<Value>,
    leftovers: Vec<String>,
}

/// Hook output files in `out`, each a JSON state (pid and the runtime's
/// ociVersion blanked: they differ by nature).
fn hook_states(out: &Path, bundle: &Path) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(out).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if let Some(o) = v.as_object_mut() {
            if o.contains_key("pid") {
                o.insert("pid".into(), json!("PID"));
            }
            o.remove("ociVersion");
            if o.get("bundle").and_then(Value::as_str) == bundle.to_str() {
                o.insert("bundle".into(), json!("BUNDLE"));
            }
        }
        m.insert(e.file_name().to_string_lossy().into_owned(), v);
        std::fs::remove_file(e.path()).unwrap();
    }
    m
}

/// What a runtime leaves behind for `id`: entries in its state root and
/// cgroup directories named after the container.
fn leftovers(rt: &Rt, id: &str) -> Vec<String> {
    let mut left = Vec::new();
    for e in std::fs::read_dir(rt.root.path()).unwrap() {
        left.push(format!(
            "state root: {}",
            e.unwrap().file_name().to_string_lossy()
        ));
    }
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        let h = h.unwrap().path();
        for p in [h.join(id), h.join("parity").join(id)] {
            if p.exists() {
                left.push(format!("cgroup: {}", p.display()));
            }
        }
    }
    left
}

/// The container's stderr and the runtime's messages differ in wording and
/// in the runtime's name; rows compare them after this.
fn normal(s: &str, rt: &str) -> String {
    s.replace(rt, "RUNTIME")
}

/// A deliberate difference (docs/runtime.md): for a relative
/// `cgroupsPath` (runc's default is the container's ID), runc starts from
/// the runtime's own cgroup in each v1 controller hierarchy, libcontainer
/// from the hierarchy's root. The two agree wherever the runtime runs in the
/// root cgroup; lines of `/proc/self/cgroup` for hierarchies where this test
/// does not are blanked.
fn blank_relative_cgroups(out: &str) -> String {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let not_root: Vec<String> = own
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next();
            let (key, path) = (f.next()?, f.next()?);
            (path != "/" && key.split(',').all(|c| !c.starts_with("name=")) && !key.is_empty())
                .then(|| key.to_string())
        })
        .collect();
    out.lines()
        .map(|l| {
            let mut f = l.splitn(3, ':');
            match (f.next(), f.next(), f.next()) {
                (Some(n), Some(key), Some(_))
                    if n.parse::<u32>().is_ok() && not_root.iter().any(|k| k == key) =>
                {
                    format!("{n}:{key}:(under the runtime's own cgroup: differs on purpose)")
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `run --bundle B ID` (foreground), then leftovers.
fn foreground(rt: &Rt, b: &Bundle, id: &str) -> Seen {
    let r = rt.run(&["run", "--bundle", b.path.to_str().unwrap(), id]);
    Seen {
        code: r.code,
        stdout: blank_relative_cgroups(&r.stdout),
        stderr: normal(&r.stderr, rt.name),
        hooks: hook_states(&b.out, &b.path),
        state: None,
        leftovers: leftovers(rt, id),
    }
}

/// The `state` JSON with the fields that differ by nature blanked.
fn state(rt: &Rt, id: &str, bundle: &Path) -> Option<Value> {
    let r = rt.run(&["state", id]);
    let text = r.stdout.replace(bundle.to_str().unwrap(), "BUNDLE");
    let mut v: Value = serde_json::from_str(&text).ok()?;
    let o = v.as_object_mut()?;
    for k in ["pid", "created", "ociVersion", "owner"] {
        if o.contains_key(k) {
            o.insert(k.into(), json!(k));
        }
    }
    Some(v)
}

struct Row {
    name: &'static str,
    /// Why netshim differs from runc on purpose, or None.
    differs: Option<&'static str>,
    check: fn(&Rt, &str) -> Seen,
}

fn probe_row(edit: fn(&mut Value, &Path)) -> impl Fn(&Rt, &str) -> Seen {
    move |rt, id| {
        let b = bundle(&["sh", "-c", PROBE], edit);
        foreground(rt, &b, id)
    }
}

macro_rules! probe {
    ($edit:expr) => {{
        fn f(rt: &Rt, id: &str) -> Seen {
            probe_row($edit)(rt, id)
        }
        f
    }};
}

fn hook(out: &Path, name: &str, exit: i32) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}/{name}; exit {exit}", out.display())]
    })
}

fn caps(list: &[&str]) -> Value {
    json!(list)
}

const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A lifecycle: create, state, start, wait, state, delete, with the
/// container's output in a file of the rootfs-independent `out`.
fn lifecycle(rt: &Rt, id: &str, args: &[&str], edit: fn(&mut Value, &Path)) -> Seen {
    let b = bundle(args, edit);
    let file = b.path.join("config.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("/parity/ID", &format!("/parity/{id}"))).unwrap();
    let bpath = b.path.to_str().unwrap();
    let pidfile = b.out.join("../pidfile");
    let created = rt.run(&[
        "create",
        "--bundle",
        bpath,
        "--pid-file",
        pidfile.to_str().unwrap(),
        id,
    ]);
    let mut stdout = format!("create: {:?}\n", created.code);
    let st = state(rt, id, &b.path);
    let pid_ok = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        == rt
            .run(&["state", id])
            .stdout
            .parse::<Value>()
            .ok()
            .and_then(|v| v["pid"].as_i64())
            .map(|p| p as i32);
    stdout += &format!("pid file holds the state's pid: {pid_ok}\n");
    let cg = cgroup_files(id);
    stdout += &format!("cgroup files: {cg:?}\n");
    let started = rt.run(&["start", id]);
    stdout += &format!("start: {:?} {}\n", started.code, started.stderr.is_empty());
    for _ in 0..100 {
        if state(rt, id, &b.path).is_some_and(|s| s["status"] == "stopped") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let stopped = state(rt, id, &b.path);
    let killed = rt.run(&["kill", id, "KILL"]);
    stdout += &format!("kill of a stopped container: {:?}\n", killed.code);
    let deleted = rt.run(&["delete", id]);
    stdout += &format!("delete: {:?}\n", deleted.code);
    Seen {
        code: created.code,
        stdout,
        stderr: String::new(),
        hooks: hook_states(&b.out, &b.path),
        state: Some(json!({"created": st, "stopped": stopped})),
        leftovers: leftovers(rt, id),
    }
}

/// Whether the host is pure cgroup v2 (the guest of cgroup_v2_guest.rs).
fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// What the host's cgroup files say of the container's limits (read while
/// it is created, before it runs): v1 controllers' files on a hybrid host,
/// the unified hierarchy's on a pure v2 one.
fn cgroup_files(id: &str) -> BTreeMap<String, String> {
    if pure_v2() {
        return cgroup_v2_files(id);
    }
    let mut m = BTreeMap::new();
    for rel in [id.to_string(), format!("parity/{id}")] {
        for (h, f) in [
            ("memory", "memory.limit_in_bytes"),
            ("memory", "memory.oom_control"),
            ("pids", "pids.max"),
            ("cpu", "cpu.shares"),
            ("systemd", "cgroup.procs"),
        ] {
            // The default (relative) path in the memory hierarchy is where
            // the two differ on purpose when the runtime's own memory cgroup
            // is not the root (see blank_relative_cgroups).
            if h == "memory" && rel == id {
                continue;
            }
            let p = Path::new("/sys/fs/cgroup").join(h).join(&rel).join(f);
            if let Ok(t) = std::fs::read_to_string(&p) {
                let t = if f == "cgroup.procs" {
                    format!("{} pids", t.lines().count())
                } else {
                    t.lines().next().unwrap_or_default().to_string()
                };
                m.insert(format!("{h}/{}/{f}", rel.replace(id, "ID")), t);
            }
        }
    }
    m
}

/// [`cgroup_files`] on a pure v2 host. A relative path is taken from the
/// parent of the runtime's own cgroup by both (runc's v2 driver; netshim
/// resolves it so, docs/runtime.md), here the root.
fn cgroup_v2_files(id: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for rel in [id.to_string(), format!("parity/{id}")] {
        for f in [
            "memory.max",
            "memory.oom.group",
            "pids.max",
            "cpu.weight",
            "cgroup.procs",
        ] {
            let p = Path::new("/sys/fs/cgroup").join(&rel).join(f);
            if let Ok(t) = std::fs::read_to_string(&p) {
                let t = match (f, t.trim()) {
                    ("cgroup.procs", _) => format!("{} pids", t.lines().count()),
                    // The row's cpu.shares 512: runc 1.1 converts it with the
                    // linear formula (20), runc 1.3.2, crun 1.23 and
                    // libcgroups with the quadratic one (59); docs/runtime.md.
                    ("cpu.weight", "20" | "59") => {
                        "shares 512 converted (linear or quadratic)".into()
                    }
                    (_, v) => v.lines().next().unwrap_or_default().to_string(),
                };
                m.insert(format!("v2/{}/{f}", rel.replace(id, "ID")), t);
            }
        }
    }
    m
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "runc spec, as it is",
            differs: None,
            check: probe!(|_, _| {}),
        },
        Row {
            name: "netshim spec, as it is",
            differs: None,
            check: |rt, id| {
                let b = bundle(&["sh", "-c", PROBE], |_, _| {});
                // Replace runc's default with netshim's own.
                let file = b.path.join("config.json");
                let runc_spec: Value =
                    serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
                std::fs::remove_file(&file).unwrap();
                run(Command::new(netshim()).arg("spec").current_dir(&b.path)).ok();
                let mut spec: Value =
                    serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
                spec["process"]["args"] = runc_spec["process"]["args"].clone();
                spec["process"]["terminal"] = json!(false);
                spec["process"]["env"] = runc_spec["process"]["env"].clone();
                std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
                foreground(rt, &b, id)
            },
        },
        Row {
            name: "Docker-shaped, root, default capabilities",
            differs: None,
            check: probe!(|s, _| {
                for set in ["bounding", "effective", "permitted"] {
                    s["process"]["capabilities"][set] = caps(&DOCKER_CAPS);
                }
                s["process"]["capabilities"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ambient");
                s["process"]["capabilities"]["inheritable"] = caps(&DOCKER_CAPS);
            }),
        },
        Row {
            name: "Docker-shaped, non-root, --cap-add NET_ADMIN --cap-drop KILL",
            differs: None,
            check: probe!(|s, _| {
                s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
                let mut c: Vec<&str> = DOCKER_CAPS.to_vec();
                c.retain(|x| *x != "CAP_KILL");
                c.push("CAP_NET_ADMIN");
                for set in ["bounding", "effective", "permitted", "inheritable"] {
                    s["process"]["capabilities"][set] = caps(&c);
                }
                s["process"]["capabilities"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ambient");
            }),
        },
        Row {
            name: "Podman-shaped, --user 1000 --cap-add NET_RAW,SYS_ADMIN (ambient set in the spec)",
            differs: None,
            check: probe!(|s, _| {
                s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
                let c = ["CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_CHOWN"];
                for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
                    s["process"]["capabilities"][set] = caps(&c);
                }
            }),
        },
        Row {
            name: "containerd CRI-shaped, non-root, drop ALL add NET_RAW, no_new_privs",
            differs: Some(
                "the narrowed-bounding rule (KEP 2763 adds): a non-root, no_new_privs process whose bounding set \
                 is only NET_RAW gets it ambient (and inheritable, permitted, effective) under netshim; \
                 under runc it has none. The row checks netshim's four sets are exactly NET_RAW, then compares the rest",
            ),
            check: |rt, id| {
                let mut seen = probe_row(cri_shaped)(rt, id);
                if rt.name == "netshim" {
                    seen.stdout = narrowed_as_runc(&seen.stdout);
                }
                seen
            },
        },
        Row {
            name: "the same without no_new_privs: not narrowed, nothing added",
            differs: None,
            check: probe!(|s, out| {
                cri_shaped(s, out);
                s["process"]["noNewPrivileges"] = json!(false);
            }),
        },
        Row {
            name: "every hook kind, all passing",
            differs: Some(
                "createContainer's state has no pid (libcontainer runs it in the container's init before the pid is known there); \
                 poststart's status is running, as the runtime spec's lifecycle has it, where runc 1.1 says created",
            ),
            check: |rt, id| {
                let mut seen = probe_row(|s, out| {
                    s["hooks"] = json!({
                        "prestart": [hook(out, "prestart", 0)],
                        "createRuntime": [hook(out, "createRuntime", 0)],
                        "createContainer": [hook(out, "createContainer", 0)],
                        "poststart": [hook(out, "poststart", 0)],
                        "poststop": [hook(out, "poststop", 0)]
                    });
                    s["annotations"] = json!({"parity": "yes"});
                })(rt, id);
                // The two deliberate differences, blanked in both; every
                // other field of every hook's state is compared.
                if let Some(o) = seen.hooks.get_mut("createContainer").and_then(Value::as_object_mut) {
                    o.remove("pid");
                }
                if let Some(o) = seen.hooks.get_mut("poststart").and_then(Value::as_object_mut) {
                    o.insert("status".into(), json!("created or running"));
                }
                assert_eq!(seen.hooks.len(), 5, "{}: every hook ran: {:?}", rt.name, seen.hooks);
                seen
            },
        },
        Row {
            name: "a failing prestart hook",
            differs: Some("stderr: each runtime words its own error"),
            check: probe!(|s, out| {
                s["hooks"] = json!({"prestart": [hook(out, "prestart", 7)]});
            }),
        },
        Row {
            name: "a failing poststop hook",
            differs: Some("stderr: each runtime words its own log line"),
            check: probe!(|s, out| {
                s["hooks"] = json!({"poststop": [hook(out, "poststop", 3)]});
            }),
        },
        Row {
            name: "rlimits, oomScoreAdj, hostname",
            differs: None,
            check: probe!(|s, _| {
                s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1234}]);
                s["process"]["oomScoreAdj"] = json!(500);
                s["hostname"] = json!("parity-host");
            }),
        },
        Row {
            name: "sysctls",
            differs: None,
            check: |rt, id| {
                let b = bundle(
                    &["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ping_group_range"],
                    |s, _| {
                        s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 2147483647"});
                    },
                );
                foreground(rt, &b, id)
            },
        },
        Row {
            name: "masked and read-only paths",
            differs: Some(
                "a read-only path is also nosuid,nodev,noexec under libcontainer; runc 1.1 leaves only ro",
            ),
            check: |rt, id| {
                let b = bundle(
                    &["sh", "-c", "wc -c < /proc/kcore; cat /proc/keys | wc -l; touch /proc/sys/x 2>&1; awk '$5 ~ /^\\/proc\\/(sys|kcore|keys|sysrq)/ {print $5, $6}' /proc/self/mountinfo | sed 's/,nosuid,nodev,noexec//' | sort"],
                    |_, _| {},
                );
                foreground(rt, &b, id)
            },
        },
        Row {
            name: "devices",
            differs: None,
            check: probe!(|s, _| {
                s["linux"]["devices"] = json!([
                    {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}
                ]);
                s["linux"]["resources"]["devices"] = json!([
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
                ]);
            }),
        },
        Row {
            name: "process absent",
            differs: None,
            check: |rt, id| {
                let b = bundle(&["true"], |s, _| {
                    s.as_object_mut().unwrap().remove("process");
                });
                let mut seen = foreground(rt, &b, id);
                seen.stderr = String::new(); // wording
                seen
            },
        },
        Row {
            name: "network namespace by path",
            differs: None,
            check: |rt, id| {
                let ns = Netns::new();
                let b = bundle(&["sh", "-c", "ls /sys/class/net"], |_, _| {});
                let file = b.path.join("config.json");
                let mut s: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
                sh(&format!(
                    "ip -n {} link add pd0 type veth peer name pd1",
                    ns.name
                ))
                .ok();
                for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
                    if n["type"] == "network" {
                        n["path"] = json!(format!("/run/netns/{}", ns.name));
                    }
                }
                std::fs::write(&file, serde_json::to_vec(&s).unwrap()).unwrap();
                foreground(rt, &b, id)
            },
        },
        Row {
            name: "user namespace with UID/GID mappings",
            differs: None,
            check: probe!(|s, _| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}));
                s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
                s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
                // The cgroup v1 mount cannot be made from a user namespace.
                s["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["type"] != "cgroup");
            }),
        },
        Row {
            name: "bind mounts with each propagation mode",
            differs: Some(
                "a shared/rshared bind mount is not shared under libcontainer 0.7 (it keeps the rootfs's slave propagation), \
                 so mounts do not propagate from the container back to the host; runc makes it a peer of the host's mount",
            ),
            check: |rt, id| {
                let src = tempfile::tempdir().unwrap();
                std::fs::write(src.path().join("f"), "bound\n").unwrap();
                let b = bundle(
                    &["sh", "-c", "for d in /m1 /m2 /m3 /m4; do cat $d/f; done; awk '$5 ~ /^\\/m[0-9]/ { o=\"\"; for (i=7; $i != \"-\"; i++) o=o\" \"$i; print $5, $6, o }' /proc/self/mountinfo | sed -E 's/(shared|master):[0-9]+//g; s/ +$//' | sort"],
                    |_, _| {},
                );
                let file = b.path.join("config.json");
                let mut s: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
                for (i, prop) in ["rprivate", "rslave", "rshared", "private"].iter().enumerate() {
                    let mut opts = vec!["rbind", *prop];
                    if i == 1 {
                        opts.push("ro");
                    }
                    s["mounts"].as_array_mut().unwrap().push(json!({
                        "destination": format!("/m{}", i + 1), "type": "bind",
                        "source": src.path(), "options": opts
                    }));
                }
                std::fs::write(&file, serde_json::to_vec(&s).unwrap()).unwrap();
                foreground(rt, &b, id)
            },
        },
        Row {
            name: "seccomp with errno and kill actions",
            differs: None,
            check: |rt, id| {
                let b = bundle(
                    &["sh", "-c", "mkdir /tmp/x; echo mkdir=$?; uname; echo after-uname"],
                    |s, _| {
                        s["root"]["readonly"] = json!(false);
                        s["linux"]["seccomp"] = json!({
                            "defaultAction": "SCMP_ACT_ALLOW",
                            "architectures": ["SCMP_ARCH_X86_64"],
                            "syscalls": [
                                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                                {"names": ["uname"], "action": "SCMP_ACT_KILL"}
                            ]
                        });
                    },
                );
                foreground(rt, &b, id)
            },
        },
        Row {
            name: "cgroup resources, absolute cgroupsPath, disableOOMKiller; pid file; kill of a stopped container",
            differs: None,
            check: |rt, id| {
                let seen = lifecycle(rt, id, &["true"], |s, _| {
                    s["linux"]["cgroupsPath"] = json!("/parity/ID");
                    s["linux"]["resources"]["pids"] = json!({"limit": 20});
                    s["linux"]["resources"]["cpu"] = json!({"shares": 512});
                    s["linux"]["resources"]["memory"] = json!({"limit": 67108864, "disableOOMKiller": true});
                });
                // The row compares the two; this says what both must show.
                // cgroup v2 has no OOM-killer switch: runc ignores it there.
                let want = if pure_v2() {
                    "\"v2/parity/ID/memory.max\": \"67108864\""
                } else {
                    "\"memory/parity/ID/memory.oom_control\": \"oom_kill_disable 1\""
                };
                assert!(
                    seen.stdout.contains(want),
                    "{}: limits not applied (want {want}): {}",
                    rt.name,
                    seen.stdout
                );
                seen
            },
        },
        Row {
            name: "cgroup resources without cgroupsPath (the runtime's default path)",
            differs: None,
            check: |rt, id| {
                lifecycle(rt, id, &["true"], |s, _| {
                    s["linux"].as_object_mut().unwrap().remove("cgroupsPath");
                    // No memory limit: where the runtime's own memory cgroup
                    // is not the root (as in CI), runc and libcontainer put a
                    // relative path in different places (docs/runtime.md).
                    s["linux"]["resources"]["pids"] = json!({"limit": 30});
                })
            },
        },
        Row {
            name: "delete of created, running and stopped containers, with and without --force",
            differs: None,
            check: |rt, id| {
                let b = bundle(&["sleep", "100"], |_, _| {});
                let bp = b.path.to_str().unwrap();
                let mut out = String::new();
                let mut step = |what: &str, r: Ran| out += &format!("{what}: {:?}\n", r.code);
                step("create", rt.run(&["create", "--bundle", bp, id]));
                step("delete created", rt.run(&["delete", id]));
                step("state after", rt.run(&["state", id]));
                step("create", rt.run(&["create", "--bundle", bp, id]));
                step("start", rt.run(&["start", id]));
                step("delete running", rt.run(&["delete", id]));
                step("delete running --force", rt.run(&["delete", "--force", id]));
                step("delete missing", rt.run(&["delete", id]));
                step("delete missing --force", rt.run(&["delete", "--force", id]));
                Seen {
                    code: None,
                    stdout: out,
                    stderr: String::new(),
                    hooks: hook_states(&b.out, &b.path),
                    state: None,
                    leftovers: leftovers(rt, id),
                }
            },
        },
        Row {
            name: "exec --process into a running container; state while running",
            differs: None,
            check: |rt, id| {
                let b = bundle(&["sleep", "100"], |s, _| {
                    s["annotations"] = json!({"a": "b"});
                });
                let bp = b.path.to_str().unwrap();
                let mut out = String::new();
                out += &format!("create: {:?}\n", rt.run(&["create", "--bundle", bp, id]).code);
                out += &format!("start: {:?}\n", rt.run(&["start", id]).code);
                let running = state(rt, id, &b.path);
                let pj = b.out.join("../process.json");
                std::fs::write(
                    &pj,
                    serde_json::to_vec(&json!({
                        "user": {"uid": 1000, "gid": 1000},
                        "args": ["sh", "-c", "id; grep -E '^Cap(Eff|Amb)' /proc/self/status; exit 5"],
                        "env": ["PATH=/bin"], "cwd": "/tmp",
                        "capabilities": {"bounding": ["CAP_NET_RAW"], "effective": ["CAP_NET_RAW"],
                                         "permitted": ["CAP_NET_RAW"], "inheritable": ["CAP_NET_RAW"],
                                         "ambient": ["CAP_NET_RAW"]}
                    }))
                    .unwrap(),
                )
                .unwrap();
                let ex = rt.run(&["exec", "--process", pj.to_str().unwrap(), id]);
                out += &format!("exec: {:?}\n{}", ex.code, ex.stdout);
                out += &format!("kill: {:?}\n", rt.run(&["kill", id, "KILL"]).code);
                for _ in 0..100 {
                    if state(rt, id, &b.path).is_some_and(|s| s["status"] == "stopped") {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                out += &format!("delete: {:?}\n", rt.run(&["delete", id]).code);
                Seen {
                    code: None,
                    stdout: out,
                    stderr: String::new(),
                    hooks: hook_states(&b.out, &b.path),
                    state: running,
                    leftovers: leftovers(rt, id),
                }
            },
        },
        Row {
            name: "joins another container's PID namespace, where its PID is free on the host",
            differs: None,
            check: joined_pid_namespace,
        },
        Row {
            name: "no mount namespace in the spec: the container is in the caller's",
            differs: None,
            check: callers_mount_namespace,
        },
        Row {
            name: "no PATH in the process's env, args[0] absolute (a pause image without Env)",
            differs: None,
            check: |rt, id| without_path(rt, id, "/bin/busybox"),
        },
        Row {
            name: "no PATH in the process's env, args[0] a bare name: refused by both",
            differs: None,
            check: |rt, id| without_path(rt, id, "busybox"),
        },
    ]
}

/// What containerd's CRI plugin writes for a non-root container with
/// `drop: [ALL]`, `add: [NET_RAW]`, `allowPrivilegeEscalation: false`.
fn cri_shaped(s: &mut Value, _: &Path) {
    s["process"]["user"] = json!({"uid": 65534, "gid": 65534});
    s["process"]["noNewPrivileges"] = json!(true);
    s["process"]["capabilities"] = json!({
        "bounding": ["CAP_NET_RAW"], "effective": ["CAP_NET_RAW"], "permitted": ["CAP_NET_RAW"]
    });
}

/// netshim's probe output for a narrowed process, checked (CapInh, CapPrm,
/// CapEff and CapAmb exactly NET_RAW) and then shown as runc shows it (all
/// four empty), so that the row compares everything else.
fn narrowed_as_runc(stdout: &str) -> String {
    let mut checked = 0;
    let out = stdout
        .lines()
        .map(|l| match l.split_once(":\t") {
            Some((k @ ("CapInh" | "CapPrm" | "CapEff" | "CapAmb"), v)) => {
                assert_eq!(
                    v, "0000000000002000",
                    "netshim's {k} for a narrowed process"
                );
                checked += 1;
                format!("{k}:\t0000000000000000")
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        checked, 4,
        "the probe printed no capability sets:\n{stdout}"
    );
    out + "\n"
}

/// A process whose `env` has no `PATH` (what a container gets from an image
/// whose config has no `Env`, as some pause images): runc resolves an
/// `args[0]` holding a `/` as it is, and a bare name only in the spec's
/// `PATH`, so the second fails with "executable file not found in $PATH".
/// The runtimes word the failure differently: stderr is compared on that
/// phrase.
fn without_path(rt: &Rt, id: &str, exe: &str) -> Seen {
    let b = bundle(&[exe, "echo", "ran without PATH"], |s, _| {
        s["process"]["env"] = json!(["HOME=/", "TERM=xterm"]);
    });
    let mut seen = foreground(rt, &b, id);
    seen.code = seen.code.map(|c| c.min(1));
    seen.stderr = if seen.stderr.contains("executable file not found in $PATH") {
        "refused: executable file not found in $PATH\n".into()
    } else {
        seen.stderr
    };
    seen
}

/// A spec that lists no mount namespace: the runtime spec says the
/// container inherits the caller's, and runc runs it there (its rootfs set
/// up by mounts in that namespace, then `chroot`). The runtime is started
/// in a mount namespace this test makes for it (private propagation), so
/// that those mounts, and the runtime's `/` made a recursive slave, stay
/// out of the host's; the container's `/proc/self/ns/mnt` is compared with
/// that caller's.
fn callers_mount_namespace(rt: &Rt, id: &str) -> Seen {
    let script = format!("{PROBE}echo \"mount namespace: $(readlink /proc/self/ns/mnt)\"\n");
    let b = bundle(&["sh", "-c", &script], |s, _| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        // Both runtimes refuse masked and read-only paths without a mount
        // namespace, as the runtime spec allows.
        let linux = s["linux"].as_object_mut().unwrap();
        linux.remove("maskedPaths");
        linux.remove("readonlyPaths");
        // runc leaves the root writable without a mount namespace (it
        // skips its remount); libcontainer honours `readonly` (a
        // difference in docs/runtime.md), so this row asks for neither.
        s["root"]["readonly"] = json!(false);
    });
    let r = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("echo \"caller: $(readlink /proc/self/ns/mnt)\"; exec \"$@\"")
        .arg("sh")
        .arg(&rt.bin)
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle", b.path.to_str().unwrap(), id]));
    let caller = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("caller: "))
        .unwrap_or_else(|| panic!("{}: no caller line: {r:?}", rt.name))
        .to_string();
    let stdout: String = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("caller: "))
        .map(|l| match l.strip_prefix("mount namespace: ") {
            Some(ns) if ns == caller => "mount namespace: the caller's\n".to_string(),
            Some(ns) => format!("mount namespace: {ns}, not the caller's ({caller})\n"),
            None => format!("{l}\n"),
        })
        .collect();
    assert!(
        stdout.contains("mount namespace: "),
        "{}: the container did not report its mount namespace: {r:?}",
        rt.name
    );
    Seen {
        code: r.code,
        stdout: blank_relative_cgroups(&stdout),
        stderr: normal(&r.stderr, rt.name),
        hooks: hook_states(&b.out, &b.path),
        state: None,
        leftovers: leftovers(rt, id),
    }
}

/// A container that joins the PID namespace of a running one, as a kubelet's
/// debug container with `--target` or a pod sharing its PID namespace does.
/// The holder forks until the joiner's PID will be one no host process
/// has, which libcontainer 0.7's own cgroup v1 mount looked up in the
/// host's `/proc` and failed on.
fn joined_pid_namespace(rt: &Rt, id: &str) -> Seen {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Low, so that the holder's forks reach it in well under a second.
    let gap = (40..last.min(5000))
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("no PID below 5000 is free on the host: this row cannot be set up here");
    let holder = bundle(
        &[
            "sh",
            "-c",
            &format!(
                "while :; do p=$(sh -c 'echo $$'); [ \"$p\" -ge {} ] && break; done; exec sleep 100",
                gap - 1
            ),
        ],
        |_, _| {},
    );
    let hid = format!("{id}h");
    let hp = holder.path.to_str().unwrap();
    assert_eq!(rt.run(&["create", "--bundle", hp, &hid]).code, Some(0));
    assert_eq!(rt.run(&["start", &hid]).code, Some(0));
    let st = rt.run(&["state", &hid]);
    let host_pid = st
        .stdout
        .parse::<Value>()
        .ok()
        .and_then(|v| v["pid"].as_i64());
    let host_pid = host_pid.unwrap_or_else(|| panic!("{}: the holder's state: {st:?}", rt.name));
    let ready = (0..800).any(|_| {
        let c = std::fs::read(format!("/proc/{host_pid}/cmdline")).unwrap_or_default();
        c.starts_with(b"sleep") || {
            std::thread::sleep(std::time::Duration::from_millis(25));
            false
        }
    });
    assert!(
        ready,
        "{}: the holder did not reach PID {gap} in time",
        rt.name
    );
    let ns = format!("/proc/{host_pid}/ns/pid");
    let script = format!(
        "{PROBE}echo \"init's PID is the host's free one: $([ $$ = {gap} ] && echo yes || echo no)\"\n"
    );
    let b = bundle(&["sh", "-c", &script], |s, _| {
        for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = json!(ns);
            }
        }
    });
    let mut seen = foreground(rt, &b, id);
    rt.run(&["kill", &hid, "KILL"]);
    for _ in 0..100 {
        if state(rt, &hid, &holder.path).is_some_and(|s| s["status"] == "stopped") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(rt.run(&["delete", &hid]).code, Some(0), "{}", rt.name);
    seen.leftovers = leftovers(rt, id);
    assert!(
        seen.code != Some(0) || seen.stdout.contains("free one: yes"),
        "{}: the row did not test what it says: {}",
        rt.name,
        seen.stdout
    );
    seen
}

#[test]
fn every_row_runs_under_netshim_as_under_runc() {
    require_root();
    assert!(
        Path::new(RUNC).exists(),
        "{RUNC} is missing (package runc): run the suite with integration/run.sh"
    );
    let rts = Rt::both();
    let rows = rows();
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let id = format!("parity{i}x{}", std::process::id() % 10000);
        let seen: Vec<Seen> = rts.iter().map(|rt| (row.check)(rt, &id)).collect();
        let (runc, ns) = (&seen[0], &seen[1]);
        let mut diffs = Vec::new();
        if runc.code != ns.code {
            diffs.push(format!(
                "exit status: runc {:?}, netshim {:?}",
                runc.code, ns.code
            ));
        }
        if runc.stdout != ns.stdout {
            diffs.push(format!(
                "stdout:\n--- runc\n{}--- netshim\n{}",
                runc.stdout, ns.stdout
            ));
        }
        if runc.hooks != ns.hooks {
            diffs.push(format!(
                "hook stdin: runc {:?}\n netshim {:?}",
                runc.hooks, ns.hooks
            ));
        }
        if runc.state != ns.state {
            diffs.push(format!(
                "state: runc {:?}\n netshim {:?}",
                runc.state, ns.state
            ));
        }
        if !runc.leftovers.is_empty() || !ns.leftovers.is_empty() {
            diffs.push(format!(
                "leftovers: runc {:?}, netshim {:?}",
                runc.leftovers, ns.leftovers
            ));
        }
        let stderr_same = runc.stderr == ns.stderr;
        if !stderr_same && row.differs.is_none() {
            diffs.push(format!(
                "stderr:\n--- runc\n{}--- netshim\n{}",
                runc.stderr, ns.stderr
            ));
        }
        let verdict = match (&diffs[..], row.differs) {
            ([], Some(why)) => format!("differs on purpose ({why})"),
            ([], None) => "same".to_string(),
            _ => {
                failed.push(row.name);
                format!("DIFFERENT\n{}", diffs.join("\n"))
            }
        };
        eprintln!("row {i}: {}: {verdict}", row.name);
        report.push(verdict);
    }
    eprintln!(
        "{} rows: {} the same, {} differing on purpose, {} different",
        rows.len(),
        report.iter().filter(|r| *r == "same").count(),
        report.iter().filter(|r| r.starts_with("differs")).count(),
        failed.len()
    );
    assert!(failed.is_empty(), "rows that differ from runc: {failed:?}");
}
