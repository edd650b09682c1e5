//! Breakout suite, paths, IDs and modes: hostile container IDs, a
//! `cgroupsPath` that climbs with `..`, and a caller's umask of 000. Each
//! test drives `/usr/sbin/runc` and netshim side by side on the same input
//! and asserts what is left on the host afterwards, not only the exit
//! status. Root only; nothing here points at a real host file: the
//! sentinels are the test's own, under /tmp and /run.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use netshim_integration::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

fn runtimes() -> [(&'static str, PathBuf); 2] {
    [("runc", PathBuf::from(RUNC)), ("netshim", netshim())]
}

/// A bundle from `runc spec`: busybox rootfs, `sleep 30`, edited by `edit`.
fn bundle(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let path = dir.join("bundle");
    std::fs::create_dir_all(&path).unwrap();
    busybox_rootfs(&path);
    run(Command::new(RUNC).arg("spec").current_dir(&path)).ok();
    let file = path.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sleep", "30"]);
    spec["process"]["env"] = json!(["PATH=/bin"]);
    edit(&mut spec);
    std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    path
}

/// Runs `cmd` with stdout and stderr in files: a created container's init
/// keeps the runtime's stdio, so pipes would not close.
fn run_to_files(cmd: &mut Command) -> Ran {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut t = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut t).unwrap();
        t
    };
    Ran {
        code: status.code(),
        stdout: read(out),
        stderr: read(err),
    }
}

/// Every path under `dir` (relative), recursively, without following links.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out
}

fn pid_of(rt: &Path, root: &Path, id: &str) -> i32 {
    let ran = run(Command::new(rt).arg("--root").arg(root).args(["state", id])).ok();
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    v["pid"].as_i64().unwrap() as i32
}

fn force_delete(rt: &Path, root: &Path, id: &str) {
    let _ = run(Command::new(rt)
        .arg("--root")
        .arg(root)
        .args(["delete", "--force", id]));
}

/// Hostile IDs for `create`, `delete --force`, `state` and `kill`: both
/// runtimes refuse them, and a sentinel tree around the state root (the
/// directories `ROOT/../x`, `ROOT/../../x`, and the root's own file) is
/// left whole. netshim once removed `ROOT/../x` on `delete --force ../../x`.
#[test]
fn hostile_ids_are_refused_and_nothing_outside_the_root_changes() {
    require_root();
    let ids = [
        "../../x",
        "../x",
        "..",
        ".",
        "a/b",
        "x/../../../x",
        "",
        "/tmp/x",
        "a b",
    ];
    for (name, rt) in runtimes() {
        let base = tempfile::Builder::new()
            .prefix("breakout-ids")
            .tempdir_in("/tmp")
            .unwrap();
        let root = base.path().join("s/root");
        std::fs::create_dir_all(&root).unwrap();
        for d in [base.path().join("x"), base.path().join("s/x")] {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("keep"), "sentinel").unwrap();
        }
        std::fs::write(root.join("keep"), "sentinel").unwrap();
        let b = bundle(&base.path().join("b"), |_| {});
        let before = tree(base.path());
        for id in ids {
            for args in [
                vec!["create", "--bundle", b.to_str().unwrap(), id],
                vec!["delete", "--force", id],
                vec!["delete", id],
                vec!["state", id],
                vec!["kill", id, "KILL"],
            ] {
                let ran = run_to_files(Command::new(&rt).arg("--root").arg(&root).args(&args));
                assert_ne!(ran.code, Some(0), "{name} {args:?} succeeded: {ran:#?}");
                let why = if id.is_empty() && name == "runc" {
                    "container id cannot be empty"
                } else {
                    "invalid container ID format"
                };
                assert!(
                    ran.stderr.contains(why),
                    "{name} {args:?}: want {why:?}: {ran:#?}"
                );
            }
        }
        assert_eq!(tree(base.path()), before, "{name} changed the tree");
        for f in ["x/keep", "s/x/keep", "s/root/keep"] {
            assert_eq!(
                std::fs::read_to_string(base.path().join(f)).unwrap(),
                "sentinel",
                "{name}: {f}"
            );
        }
    }
}

/// The cgroup v1 and v2 mount points of this host (a hybrid host has both).
fn hierarchies() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let point = PathBuf::from(left.split(' ').nth(4)?);
            (fstype == "cgroup" || fstype == "cgroup2").then_some(point)
        })
        .collect()
}

/// `linux.cgroupsPath: /../../netshim-breakout-N`: runc cleans it to
/// `/netshim-breakout-N` and puts the init there in every hierarchy it
/// joins; netshim must do the same, per hierarchy, and make nothing above
/// the hierarchies (`/sys/fs/cgroup/NAME` on the tmpfs, `/sys/fs/NAME`,
/// `/NAME`). Both remove their cgroups on delete.
#[test]
fn dot_dot_cgroups_path_lands_where_runc_puts_it() {
    require_root();
    let name = unique("netshim-breakout-");
    let base = tempfile::Builder::new()
        .prefix("breakout-cg")
        .tempdir_in("/tmp")
        .unwrap();
    let b = bundle(base.path(), |s| {
        s["linux"]["cgroupsPath"] = json!(format!("/../../{name}"));
    });
    let outside = [
        PathBuf::from("/sys/fs/cgroup").join(&name),
        PathBuf::from("/sys/fs").join(&name),
        PathBuf::from("/sys").join(&name),
        PathBuf::from("/").join(&name),
    ];
    let mut seen = Vec::new();
    for (rt_name, rt) in runtimes() {
        let root = base.path().join(format!("{rt_name}-root"));
        let id = unique("cg");
        let ran = run_to_files(Command::new(&rt).arg("--root").arg(&root).args([
            "create",
            "--bundle",
            b.to_str().unwrap(),
            &id,
        ]));
        let pid = (ran.code == Some(0)).then(|| pid_of(&rt, &root, &id));
        let cgroups = pid
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap())
            .unwrap_or_default();
        let made: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|h| h.join(&name))
            .filter(|d| d.is_dir())
            .collect();
        let escaped: Vec<&PathBuf> = outside.iter().filter(|p| p.exists()).collect();
        force_delete(&rt, &root, &id);
        let left: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|h| h.join(&name))
            .filter(|d| d.is_dir())
            .collect();
        for d in &left {
            let _ = std::fs::remove_dir(d);
        }
        assert_eq!(ran.code, Some(0), "{rt_name} create: {ran:#?}");
        assert!(escaped.is_empty(), "{rt_name} made {escaped:?}");
        assert!(left.is_empty(), "{rt_name} left {left:?}");
        assert!(!cgroups.contains(".."), "{rt_name}: {cgroups}");
        // The init's cgroup in each hierarchy, by its controllers.
        let lines: BTreeSet<String> = cgroups
            .lines()
            .filter_map(|l| l.split_once(':').map(|(_, r)| r.to_string()))
            .collect();
        assert!(
            lines.iter().any(|l| l.ends_with(&format!(":/{name}"))),
            "{rt_name}: {cgroups}"
        );
        seen.push((rt_name, lines, made));
    }
    let (runc, netshim) = (&seen[0], &seen[1]);
    assert_eq!(
        runc.1, netshim.1,
        "the init's cgroups differ (runc, netshim)"
    );
    // Every directory runc made, netshim made (it may make one more, on a
    // hierarchy whose cgroup it joins as runc does but removes alike).
    for d in &runc.2 {
        assert!(
            netshim.2.contains(d),
            "netshim did not make {d:?}: {seen:#?}"
        );
    }
    for d in &netshim.2 {
        assert!(
            hierarchies()
                .iter()
                .any(|h| d.parent() == Some(h.as_path())),
            "{d:?} is not directly under a hierarchy"
        );
    }
}

/// With the caller's umask 000, nothing under either runtime's state root
/// is writable by group or others (runc's `exec.fifo`, 0622 by design, is
/// the one exception, and it is runc's), netshim's state is runc's modes
/// (the container directory 0711, state.json 0600, a new root 0700), and
/// the container's init has runc's umask 0022.
#[test]
fn state_modes_hold_under_umask_000() {
    require_root();
    let base = tempfile::Builder::new()
        .prefix("breakout-umask")
        .tempdir_in("/run")
        .unwrap();
    let b = bundle(&base.path().join("b"), |_| {});
    for (name, rt) in runtimes() {
        let root = base.path().join(format!("{name}-root"));
        let id = unique("um");
        let script = format!(
            "umask 000; exec {} --root {} create --bundle {} {id}",
            rt.display(),
            root.display(),
            b.display()
        );
        let ran = run_to_files(Command::new("sh").args(["-c", &script]));
        let pid = (ran.code == Some(0)).then(|| pid_of(&rt, &root, &id));
        let umask = pid
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:").map(|u| u.trim().to_string()))
            });
        let mut modes = Vec::new();
        modes.push((
            PathBuf::new(),
            std::fs::symlink_metadata(&root)
                .map(|m| m.permissions().mode())
                .unwrap_or(0),
        ));
        for p in tree(&root) {
            let md = std::fs::symlink_metadata(root.join(&p)).unwrap();
            if name == "runc" && md.file_type().is_fifo() && p.ends_with("exec.fifo") {
                continue;
            }
            modes.push((p, md.permissions().mode()));
        }
        force_delete(&rt, &root, &id);
        assert_eq!(ran.code, Some(0), "{name} create: {ran:#?}");
        assert_eq!(umask.as_deref(), Some("0022"), "{name}: the init's umask");
        let loose: Vec<String> = modes
            .iter()
            .filter(|(_, m)| m & 0o022 != 0)
            .map(|(p, m)| format!("{} {:o}", p.display(), m & 0o7777))
            .collect();
        assert!(loose.is_empty(), "{name}: writable by others: {loose:?}");
        let mode_of = |p: &str| {
            modes
                .iter()
                .find(|(q, _)| q == Path::new(p))
                .map(|(_, m)| m & 0o7777)
        };
        if name == "netshim" {
            assert_eq!(mode_of(""), Some(0o700), "{modes:?}");
            assert_eq!(mode_of(&id), Some(0o711), "{modes:?}");
            assert_eq!(
                mode_of(&format!("{id}/state.json")),
                Some(0o600),
                "{modes:?}"
            );
        } else {
            assert_eq!(
                mode_of(&format!("{id}/state.json")),
                Some(0o600),
                "{modes:?}"
            );
        }
    }
}

/// A `cgroupsPath` that cleans to a hierarchy's root (`/`, `/..`, `a/../..`)
/// is refused by netshim before anything is created: libcgroups would join
/// the root cgroup and, at delete, kill every process listed in it. (runc
/// puts such a container in the root cgroup and leaves the root alone at
/// delete; it is not run here, since its container would sit in the host's
/// root cgroup.) Nothing is left under netshim's state root.
#[test]
fn a_cgroups_path_naming_the_root_is_refused_before_anything_is_created() {
    require_root();
    let dir = tempfile::Builder::new()
        .prefix("breakoutcgroot")
        .tempdir_in("/tmp")
        .unwrap();
    for given in ["/", "/..", "/../../..", "a/../.."] {
        let path = bundle(dir.path(), |s| s["linux"]["cgroupsPath"] = json!(given));
        let root = dir.path().join("state");
        std::fs::create_dir_all(&root).unwrap();
        let id = unique("cgroot");
        let r = run_to_files(
            Command::new(netshim())
                .arg("--root")
                .arg(&root)
                .args(["create", "--bundle"])
                .arg(&path)
                .arg(&id),
        );
        force_delete(&netshim(), &root, &id);
        assert_eq!(r.code, Some(1), "{given:?}: {r:#?}");
        assert!(
            r.stderr
                .contains("names the root of the cgroup hierarchies"),
            "{given:?}: {}",
            r.stderr
        );
        assert!(
            tree(&root).is_empty(),
            "{given:?} left state: {:?}",
            tree(&root)
        );
        std::fs::remove_dir_all(&path).unwrap();
    }
}
