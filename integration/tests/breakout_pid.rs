//! The process netshim starts in a target is isolated from the host's
//! processes: a PID namespace of its own and a procfs of that namespace on
//! `/proc`. Each row starts a process of the host with a secret in its
//! environment, as the UID the command runs as (65534, or the same ID in
//! the same user namespace), and shows that the command can neither see it
//! in `/proc` nor read its environment, open its memory or follow its root.
//! The same probe run on the host shows that each check can fail.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netshim_integration::*;

/// A process the test starts on the host as `uid` (65534), possibly in a
/// user namespace (`prefix`, e.g. nsenter), with a secret in its
/// environment. Killed on drop.
struct Victim {
    child: std::process::Child,
    secret: String,
}

impl Victim {
    fn start(prefix: &[&str]) -> Victim {
        let secret = unique("netshim-secret");
        let mut args: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        args.extend(
            [
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "env",
                &format!("NETSHIM_SECRET={secret}"),
                "sleep",
                "60",
            ]
            .map(String::from),
        );
        let child = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let v = Victim { child, secret };
        // Its exec of sleep is done once the environment holds the secret.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read(format!("/proc/{}/environ", v.pid()))
            .is_ok_and(|e| String::from_utf8_lossy(&e).contains(&v.secret))
        {
            assert!(Instant::now() < deadline, "the victim never ran sleep");
            std::thread::sleep(Duration::from_millis(20));
        }
        v
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A shell script that prints one line per way it reaches the victim,
    /// then `pid=` its own PID and `end`.
    fn probe(&self) -> String {
        let p = self.pid();
        let s = &self.secret;
        format!(
            "p={p}; \
             test -e /proc/$p && echo sees-pid; \
             tr '\\0' '\\n' </proc/$p/environ 2>/dev/null | grep -q {s} && echo reads-environ; \
             ( exec 3</proc/$p/mem ) 2>/dev/null && echo opens-mem; \
             ( exec 3<>/proc/$p/mem ) 2>/dev/null && echo opens-mem-rw; \
             ls /proc/$p/root/ >/dev/null 2>&1 && echo follows-root; \
             echo pid=$$; echo end"
        )
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the probe found, without its own PID line.
fn found(out: &str) -> Vec<String> {
    assert!(
        out.trim_end().ends_with("end"),
        "the probe did not finish: {out}"
    );
    out.lines()
        .filter(|l| !l.starts_with("pid=") && *l != "end")
        .map(String::from)
        .collect()
}

/// The probe's own PID (in the namespace it runs in).
fn probe_pid(out: &str) -> u32 {
    out.lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid line: {out}"))
}

fn netshim_run(target: &str, cmd: &[&str]) -> Ran {
    let mut c = Command::new(netshim());
    c.args(["run", "--target-netns", target, "--"]).args(cmd);
    run(&mut c)
}

/// The control: the same probe as UID 65534 on the host reaches the victim
/// every way it checks (no Yama here; a same-UID, dumpable process).
#[test]
fn on_the_host_the_probe_reaches_a_nobody_process() {
    require_root();
    let v = Victim::start(&[]);
    let r = run(Command::new("setpriv").args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "sh",
        "-c",
        &v.probe(),
    ]))
    .ok();
    assert_eq!(
        found(&r.stdout),
        [
            "sees-pid",
            "reads-environ",
            "opens-mem",
            "opens-mem-rw",
            "follows-root"
        ],
        "{r:#?}"
    );
}

/// drop-uid (root into a host-owned netns): the command, UID 65534 like
/// the victim, sees nothing of it; it runs as PID 2 under netshim's init.
#[test]
fn drop_uid_run_cannot_see_or_reach_a_host_nobody_process() {
    require_root();
    let ns = Netns::new();
    let v = Victim::start(&[]);
    let r = netshim_run(&ns.target(), &["sh", "-c", &v.probe()]).ok();
    assert_eq!(found(&r.stdout), Vec::<String>::new(), "{r:#?}");
    assert_eq!(probe_pid(&r.stdout), 2, "{r:#?}");
    // Its /proc lists its own namespace: the init and the shell's children.
    let r = netshim_run(&ns.target(), &["sh", "-c", "cat /proc/1/comm; ls /proc"]).ok();
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("netshim-init"), "{r:#?}");
    let pids: Vec<u32> = lines.filter_map(|l| l.parse().ok()).collect();
    assert!(pids.iter().all(|p| *p < 10), "{pids:?}");
}

/// The reference: runc with a PID namespace and a procfs of its own gives
/// the same probe the same answer as netshim.
#[test]
fn runc_with_a_pid_namespace_answers_the_same() {
    require_root();
    let v = Victim::start(&[]);
    let d = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(d.path());
    for a in ["test", "tr", "ls"] {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    let mut spec = non_root_spec(&rootfs, &["sh", "-c", &v.probe()], &[]);
    spec["process"]["user"] = serde_json::json!({"uid": 65534, "gid": 65534});
    std::fs::write(d.path().join("config.json"), spec.to_string()).unwrap();
    let state = d.path().join("runc-state");
    let r = run(Command::new("runc").args([
        "--root",
        state.to_str().unwrap(),
        "run",
        "--bundle",
        d.path().to_str().unwrap(),
        &unique("bpid"),
    ]))
    .ok();
    assert_eq!(found(&r.stdout), Vec::<String>::new(), "runc: {r:#?}");
    let ns = Netns::new();
    let n = netshim_run(&ns.target(), &["sh", "-c", &v.probe()]).ok();
    assert_eq!(found(&n.stdout), found(&r.stdout), "netshim: {n:#?}");
}

/// join-userns as root, where root is unmapped: the victim is 65534 of the
/// same user namespace (the same host UID as the command, 265534).
#[test]
fn root_joining_a_userns_cannot_reach_a_process_of_the_same_id_there() {
    require_root();
    let (mut holder, pid) = userns_with_root_unmapped("allow");
    let userns = format!("--user=/proc/{pid}/ns/user");
    let v = Victim::start(&["nsenter", &userns]);
    let uid_line = std::fs::read_to_string(format!("/proc/{}/status", v.pid())).unwrap();
    assert!(uid_line.contains("Uid:\t265534"), "{uid_line}");
    let r = netshim_run(&format!("pid:{pid}"), &["sh", "-c", &v.probe()]);
    let _ = holder.kill();
    let _ = holder.wait();
    let r = r.ok();
    assert_eq!(found(&r.stdout), Vec::<String>::new(), "{r:#?}");
    assert_eq!(probe_pid(&r.stdout), 2, "{r:#?}");
}

/// join-userns as the unprivileged test user, into a user namespace of its
/// own mapped as rootless Podman maps one (the user as 0, its subordinate
/// IDs from 1, with newuidmap): the victim is 65534 of that namespace, the
/// command's own host UID.
#[test]
fn user_joining_its_userns_cannot_reach_a_process_of_the_same_id_there() {
    let (user, _) = test_user();
    let (mut holder, pid) = users_own_userns();
    let userns = format!("--user=/proc/{pid}/ns/user");
    let v = Victim::start(&["nsenter", &userns]);
    let bin = netshim();
    let r = run(&mut as_user(&[
        "timeout",
        "60",
        bin.to_str().unwrap(),
        "run",
        "--target-netns",
        &format!("pid:{pid}"),
        "--",
        "sh",
        "-c",
        &v.probe(),
    ]));
    let _ = holder.kill();
    let _ = holder.wait();
    sigkill(pid);
    let r = r.ok();
    assert_eq!(found(&r.stdout), Vec::<String>::new(), "{user}: {r:#?}");
    assert_eq!(probe_pid(&r.stdout), 2, "{r:#?}");
}

/// The numeric entries of the `/proc` the process `pid` sees.
fn proc_view(pid: i32) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/root/proc"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// The `NSpid:` line of `/proc/PID/status`: its PID in each namespace from
/// the host's down.
fn nspid(pid: i32) -> Vec<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn tty_nr(pid: i32) -> i64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(4).unwrap().parse().unwrap()
}

/// Waits until the engine has set up (its allow-list is its second
/// seccomp filter; it takes SIGINT through a signalfd by then).
fn wait_confined(engine: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{engine}/status"))
        .is_ok_and(|s| s.contains("Seccomp_filters:\t2"))
    {
        assert!(
            Instant::now() < deadline,
            "the engine never confined itself"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The capture engine netshim starts in a target (libcontainer's launch):
/// PID 2 of a PID namespace of its own, under the init, with a /proc that
/// lists the two of them only.
#[test]
fn the_capture_engine_in_a_target_sees_only_its_own_pid_namespace() {
    require_root();
    let ns = Netns::new();
    let _v = Victim::start(&[]);
    let c = Command::new(netshim())
        .args(["capture", "--target-netns", &ns.target(), "-i", "lo"])
        .args(["-w", "/dev/null"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let engine = wait_for_descendant_running(c.id() as i32, &["capture-engine"]);
    wait_confined(engine);
    let host_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let engine_pidns = std::fs::read_link(format!("/proc/{engine}/ns/pid")).unwrap();
    let ids = nspid(engine);
    let view = proc_view(engine);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = c.wait_with_output().unwrap();
    assert_ne!(engine_pidns, host_pidns);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], 2, "the engine is PID 2, under the init: {ids:?}");
    assert_eq!(view, [1, 2], "the engine's /proc");
    assert_eq!(out.status.code(), Some(0), "SIGINT ends the capture");
}

/// The sealed engine: PID 1 of a PID namespace of its own with its own
/// /proc, and no controlling terminal although netshim has one.
#[test]
fn the_sealed_engine_has_its_own_pid_namespace_and_no_terminal() {
    require_root();
    let ns = Netns::new();
    let cmd = format!(
        "{} capture --sealed --target-netns {} -i lo -w /dev/null",
        netshim().display(),
        ns.target()
    );
    // script(1) runs the capture on a terminal of its own.
    let mut c = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let engine = wait_for_descendant_running(c.id() as i32, &["capture-engine"]);
    let outer = wait_for_descendant_running(c.id() as i32, &["capture", "--sealed"]);
    let host_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let engine_pidns = std::fs::read_link(format!("/proc/{engine}/ns/pid")).unwrap();
    let ids = nspid(engine);
    let view = proc_view(engine);
    let (outer_tty, engine_tty) = (tty_nr(outer), tty_nr(engine));
    sigkill(outer);
    let _ = c.kill();
    let _ = c.wait();
    assert_ne!(engine_pidns, host_pidns);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], 1, "the sealed engine is PID 1: {ids:?}");
    assert_eq!(view, [1], "the sealed engine's /proc");
    assert_ne!(outer_tty, 0, "netshim runs on script's terminal");
    assert_eq!(engine_tty, 0, "the engine has no controlling terminal");
}

/// Signals netshim forwards end a command with default handlers (`sleep`,
/// which is not PID 1 of its namespace), with a shell's statuses.
#[test]
fn forwarded_signals_end_sleep_with_a_shells_status() {
    require_root();
    let ns = Netns::new();
    for (sig, want) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGHUP, 129),
    ] {
        let c = Command::new(netshim())
            .args(["run", "--target-netns", &ns.target(), "--", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let sleep = wait_for_descendant_exec(c.id() as i32, &["sleep", "60"]);
        assert_eq!(nspid(sleep).last(), Some(&2), "sleep is PID 2");
        let t = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).unwrap();
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(want), "{sig}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{sig} took {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn exit_statuses_pass_through_the_init() {
    require_root();
    let ns = Netns::new();
    let t = ns.target();
    assert_eq!(netshim_run(&t, &["sh", "-c", "exit 7"]).code, Some(7));
    assert_eq!(netshim_run(&t, &["sh", "-c", "kill -9 $$"]).code, Some(137));
    // A real-time signal, here sent to the init by the command itself, is
    // passed on and reported like any other (SIGRTMIN is 34 for glibc).
    let mut c = netshim_with_timeout(20);
    c.args(["run", "--target-netns", &t, "--", "sh", "-c"])
        .arg("kill -s RTMIN 1; sleep 10");
    let r = run(&mut c);
    assert_eq!(r.code, Some(128 + 34), "{r:#?}");
    let r = netshim_run(&t, &["no-such-command-here"]);
    assert_eq!(r.code, Some(127), "{r:#?}");
    assert!(r.stderr.contains("command not found"), "{r:#?}");
}

/// `-t`: Ctrl-C typed on the terminal interrupts `sleep` (the command is
/// the terminal's foreground process group, not the init).
#[test]
fn ctrl_c_on_the_terminal_interrupts_sleep() {
    require_root();
    let ns = Netns::new();
    let cmd = format!(
        "{} run -t --target-netns {} -- sleep 60",
        netshim().display(),
        ns.target()
    );
    let mut c = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sleep = wait_for_descendant_exec(c.id() as i32, &["sleep", "60"]);
    // The foreground group of its terminal is its own (stat field 8).
    let stat = std::fs::read_to_string(format!("/proc/{sleep}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    assert_eq!(
        f[2], f[5],
        "sleep's group is its terminal's foreground group"
    );
    let t = Instant::now();
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("Ctrl-C did not end sleep within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(130),
        "script -e returns netshim's status"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// Another procfs of the host's PID namespace mounted somewhere in the
/// host's tree (a chroot's `/proc`, a build root's; here the test's own,
/// twice at the same place) comes along with the bind of `/`: netshim hides
/// it, so the command reaches the victim through it no more than through
/// `/proc`. The control: on the host, the same probe through that mount
/// reaches the victim.
#[test]
fn a_stray_procfs_in_the_hosts_tree_shows_the_command_nothing() {
    require_root();
    let dir = tempfile::Builder::new()
        .prefix("strayproc")
        .tempdir_in("/tmp")
        .unwrap();
    let stray = dir.path().join("chroot/proc");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let stray_s = stray.to_str().unwrap().to_string();
    for _ in 0..2 {
        run(Command::new("mount").args(["-t", "proc", "proc", &stray_s])).ok();
    }
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            for _ in 0..2 {
                let _ = run(Command::new("umount").arg(&self.0));
            }
        }
    }
    let _unmount = Unmount(stray_s.clone());
    let v = Victim::start(&[]);
    let probe = v.probe().replace("/proc/$p", &format!("{stray_s}/$p"));
    let host = run(Command::new("setpriv").args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "sh",
        "-c",
        &probe,
    ]))
    .ok();
    assert!(
        found(&host.stdout).contains(&"reads-environ".to_string()),
        "the control: {host:#?}"
    );
    let ns = Netns::new();
    let r = netshim_run(&ns.target(), &["sh", "-c", &probe]).ok();
    assert_eq!(found(&r.stdout), Vec::<String>::new(), "{r:#?}");
}
