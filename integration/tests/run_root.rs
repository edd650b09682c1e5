//! `netshim run` as root into `ip netns` targets: the drop-uid plan.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netshim_integration::*;

fn netshim_run(target: &str, cmd: &[&str]) -> Ran {
    run(Command::new(netshim())
        .args(["run", "--target-netns", target, "--"])
        .args(cmd))
}

#[test]
fn process_has_uid_65534_and_only_ambient_net_raw() {
    let ns = Netns::new();
    let r = netshim_run(&ns.target(), &["cat", "/proc/self/status"]).ok();
    assert_least_privilege(&r.stdout);
}

#[test]
fn command_sees_the_targets_addresses_not_the_hosts() {
    let ns = Netns::with_peer();
    let r = netshim_run(&ns.target(), &["ip", "-o", "-4", "addr"]).ok();
    assert!(
        r.stdout.contains(&format!("{}/30", ns.addr)),
        "{}",
        r.stdout
    );
    let host = sh("ip -o -4 addr").ok();
    let host_ifaces: Vec<&str> = host
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    for l in r.stdout.lines() {
        let iface = l.split_whitespace().nth(1).unwrap();
        assert!(
            iface == "lo" || iface == ns.veth,
            "unexpected interface {iface}; host has {host_ifaces:?}"
        );
    }
}

#[test]
fn host_tcpdump_captures_veth_traffic_as_nobody() {
    let ns = Netns::with_peer();
    let mut ping = ns.ping_from_peer(15);
    let r = run(netshim_with_timeout(30).args([
        "run",
        "--target-netns",
        &ns.target(),
        "--",
        "tcpdump",
        "-n",
        "-i",
        &ns.veth,
        "-c",
        "4",
        "icmp",
    ]));
    let _ = ping.kill();
    let _ = ping.wait();
    let r = r.ok();
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains(" > ")).collect();
    assert_eq!(lines.len(), 4, "{r:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(&ns.peer_addr) && l.contains("ICMP")),
        "{lines:?}"
    );
    assert!(r.stderr.contains("4 packets captured"), "{}", r.stderr);
}

#[test]
fn extra_capabilities_are_granted_and_others_refused() {
    let ns = Netns::new();
    let r = run(Command::new(netshim()).args([
        "run",
        "--cap",
        "NET_ADMIN",
        "--target-netns",
        &ns.target(),
        "--",
        "grep",
        "^CapAmb",
        "/proc/self/status",
    ]))
    .ok();
    assert!(r.stdout.contains("0000000000003000"), "{}", r.stdout);
    // NET_ADMIN really works there: the process can add an address.
    run(Command::new(netshim()).args([
        "run",
        "--cap",
        "NET_ADMIN",
        "--target-netns",
        &ns.target(),
        "--",
        "ip",
        "addr",
        "add",
        "198.19.255.1/32",
        "dev",
        "lo",
    ]))
    .ok();
    let check = sh(&format!("ip -n {} -o addr show dev lo", ns.name)).ok();
    assert!(check.stdout.contains("198.19.255.1/32"), "{}", check.stdout);
    // ... and without it, it cannot.
    let r = netshim_run(
        &ns.target(),
        &["ip", "addr", "add", "198.19.255.2/32", "dev", "lo"],
    );
    assert_ne!(r.code, Some(0), "{r:#?}");
    for bad in ["SYS_ADMIN", "DAC_OVERRIDE", "SYS_PTRACE"] {
        let r = run(Command::new(netshim()).args([
            "run",
            "--cap",
            bad,
            "--target-netns",
            &ns.target(),
            "--",
            "true",
        ]));
        assert_eq!(r.code, Some(125), "{r:#?}");
        assert!(r.stderr.contains("refusing capability"), "{}", r.stderr);
    }
}

#[test]
fn uid_and_gid_zero_are_refused() {
    let ns = Netns::new();
    for flag in ["--uid", "--gid"] {
        let r = run(Command::new(netshim()).args([
            "run",
            flag,
            "0",
            "--target-netns",
            &ns.target(),
            "--",
            "true",
        ]));
        assert_eq!(r.code, Some(125), "{r:#?}");
        assert!(r.stderr.contains("refusing to run as"), "{}", r.stderr);
    }
    let r = run(Command::new(netshim()).args([
        "run",
        "--uid",
        "4242",
        "--gid",
        "4343",
        "--target-netns",
        &ns.target(),
        "--",
        "id",
        "-u",
    ]))
    .ok();
    assert_eq!(r.stdout.trim(), "4242");
}

#[test]
fn exit_status_is_the_commands() {
    let ns = Netns::new();
    assert_eq!(
        netshim_run(&ns.target(), &["sh", "-c", "exit 7"]).code,
        Some(7)
    );
    assert_eq!(
        netshim_run(&ns.target(), &["sh", "-c", "kill -TERM $$"]).code,
        Some(143)
    );
    let r = netshim_run(&ns.target(), &["netshim-no-such-command"]);
    assert_eq!(r.code, Some(127), "{r:#?}");
    assert!(r.stderr.contains("command not found"), "{}", r.stderr);
    assert_eq!(netshim_run(&ns.target(), &["/etc"]).code, Some(126));
}

#[test]
fn stdin_and_stdout_pass_through() {
    let ns = Netns::new();
    let mut c = Command::new(netshim())
        .args([
            "run",
            "--target-netns",
            &ns.target(),
            "--",
            "tr",
            "a-z",
            "A-Z",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(b"through the target\n")
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "THROUGH THE TARGET\n");
}

fn signal_status(sig: nix::sys::signal::Signal) -> Option<i32> {
    let ns = Netns::new();
    // netshim's debug log goes to a file, to say where the time went if
    // the run does not end.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(netshim());
    cmd.args([
        "--debug",
        "run",
        "--target-netns",
        &ns.target(),
        "--",
        "sleep",
        "60",
    ])
    .stdin(Stdio::null())
    .stderr(log.reopen().unwrap());
    // A shell started in the background without job control (`cmd &` in a
    // script, as a CI job may be) ignores SIGINT and SIGQUIT, and every
    // program under it inherits that through exec: `sleep` too, whoever
    // starts it (nsenter, runc or netshim). The test is about forwarding,
    // so netshim starts with default dispositions, as from a terminal.
    // SAFETY: between fork and exec only signal(2), async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            for s in [
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::Signal::SIGQUIT,
            ] {
                nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl)
                    .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let mut c = cmd.spawn().unwrap();
    let sleeper = wait_for_child_named(c.id() as i32, "sleep");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{sleeper}/status")).unwrap_or_default();
    let _ = c.kill();
    let _ = c.wait();
    panic!(
        "{sig} did not end the command within 10 s; the command's status: {}\nnetshim's log:\n{}",
        status
            .lines()
            .filter(|l| l.starts_with("State") || l.starts_with("Sig"))
            .collect::<Vec<_>>()
            .join("; "),
        std::fs::read_to_string(log.path()).unwrap_or_default()
    );
}

#[test]
fn sigint_and_sigterm_reach_the_command() {
    use nix::sys::signal::Signal;
    assert_eq!(signal_status(Signal::SIGINT), Some(130));
    assert_eq!(signal_status(Signal::SIGTERM), Some(143));
}

#[test]
fn sigkill_of_the_command_is_reported_and_state_removed() {
    let ns = Netns::new();
    let c = Command::new(netshim())
        .args(["run", "--target-netns", &ns.target(), "--", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let id = c.id() as i32;
    let sleeper = wait_for_child_named(id, "sleep");
    sigkill(sleeper);
    let out = c.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(no_state_of(id), "state of run {id} left behind");
}

fn no_state_of(netshim_pid: i32) -> bool {
    no_state_in("/run/netshim", netshim_pid)
}

#[test]
fn a_run_after_netshim_was_killed_cleans_its_state_and_process() {
    let ns = Netns::new();
    let mut c = Command::new(netshim())
        .args(["run", "--target-netns", &ns.target(), "--", "sleep", "120"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let id = c.id() as i32;
    let sleeper = wait_for_child_named(id, "sleep");
    sigkill(id);
    let _ = c.wait();
    assert!(
        !no_state_of(id),
        "a killed netshim leaves its state (this is what the next run cleans)"
    );
    // The next run cleans the stale state and kills the orphaned command.
    netshim_run(&ns.target(), &["true"]).ok();
    assert!(no_state_of(id), "stale state of run {id} was not cleaned");
    assert!(wait_gone(sleeper), "orphaned command {sleeper} still runs");
}

#[test]
fn missing_and_invalid_targets_explain_themselves() {
    let r = netshim_run("netns:netshim-does-not-exist", &["true"]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("ip netns list"), "{}", r.stderr);
    let r = netshim_run("pid:999999999", &["true"]);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = netshim_run("/proc/self/ns/user", &["true"]);
    assert!(
        r.stderr.contains("not a network-namespace file"),
        "{}",
        r.stderr
    );
    let r = netshim_run("nonsense", &["true"]);
    assert_eq!(r.code, Some(2), "clap's usage error: {r:#?}");
    assert!(r.stderr.contains("pid:PID"), "{}", r.stderr);
}

#[test]
fn the_hosts_dev_is_left_untouched() {
    // libcontainer populates /dev (and relinks /dev/ptmx); netshim must give
    // it a private /dev, because devtmpfs is shared by every mount namespace.
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let before = std::fs::symlink_metadata("/dev/ptmx").unwrap();
    assert!(before.file_type().is_char_device());
    let ns = Netns::new();
    let r = netshim_run(&ns.target(), &["readlink", "/dev/ptmx"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "pts/ptmx",
        "inside, /dev/ptmx is libcontainer's symlink"
    );
    let after = std::fs::symlink_metadata("/dev/ptmx").unwrap();
    assert!(
        after.file_type().is_char_device(),
        "the host's /dev/ptmx was replaced"
    );
    assert_eq!(before.ino(), after.ino());
}

#[test]
fn tty_mode_gives_the_command_a_terminal() {
    let ns = Netns::new();
    // script(1) gives netshim a real terminal, as an interactive user has.
    let cmd = format!(
        "{} run -t --target-netns {} -- sh -c 'tty; stty size; exit 3'",
        netshim().display(),
        ns.target()
    );
    let r = run(Command::new("script").args(["-qec", &cmd, "/dev/null"]));
    assert_eq!(r.code, Some(3), "{r:#?}");
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.stdout);
}

#[test]
fn demo_works_as_root() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("demo.pcapng");
    let r = run(Command::new(netshim()).args(["demo", "-c", "3", "-w", f.to_str().unwrap()])).ok();
    assert!(r.stdout.contains("CapAmb=0000000000002000"), "{}", r.stdout);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.contains("> 127.0.0.1.5000: UDP"))
            .count(),
        3,
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("printed 3 packets and wrote 3"),
        "{}",
        r.stderr
    );
    assert_eq!(tshark_lines(&f, Some("udp.dstport == 5000")).len(), 3);
    assert!(
        !sh("ip netns list").ok().stdout.contains("netshim-demo"),
        "the demo left its namespace"
    );
}

#[test]
fn commands_and_files_under_the_hosts_tmp_are_visible() {
    // netshim's own binary may live under /tmp (a CI checkout): the command
    // must see the host's /tmp, not a private one.
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(unique("netshim-tmp-"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.join("hello");
    std::fs::write(&script, "#!/bin/sh\necho 'hello from the host tmp'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ns = Netns::new();
    let r = netshim_run(&ns.target(), &[script.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.ok().stdout, "hello from the host tmp\n");
}

#[test]
fn output_to_dev_null_is_writable() {
    // libcontainer reopens a /dev/null stdio read-only; netshim must not
    // let that turn `cmd > /dev/null` into write errors.
    let ns = Netns::new();
    let st = Command::new(netshim())
        .args([
            "run",
            "--target-netns",
            &ns.target(),
            "--",
            "sh",
            "-c",
            "echo x || exit 9; echo y >&2 || exit 8; exit 3",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(3));
}

#[test]
fn targets_lists_named_namespaces_with_the_drop_uid_plan() {
    let ns = Netns::new();
    let r = run(Command::new(netshim()).args(["targets", "--json"])).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let me = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == ns.target().as_str())
        .unwrap_or_else(|| panic!("{} not listed: {v:#}", ns.target()));
    assert_eq!(me["plan"], "drop-uid", "{me:#}");
    let ino = std::fs::metadata(format!("/run/netns/{}", ns.name))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_eq!(me["netns"], format!("net:[{ino}]"), "{me:#}");
}

#[test]
fn rootful_podman_container_by_name_is_drop_uid() {
    require_root();
    let name = unique("nspr");
    // runc: Podman's default crun refuses these hosts' hybrid cgroups; no
    // network: a rootful Podman bridge would change the host's networking;
    // ulimits: rootful Podman raises NOFILE and NPROC above the hard limits,
    // which needs CAP_SYS_RESOURCE, and root on these machines lacks it.
    let podman = |args: &[&str]| {
        let mut c = std::process::Command::new("podman");
        c.args(args).current_dir("/tmp");
        c
    };
    run(&mut podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        "runc",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        "netshim-busybox",
        "sleep",
        "300",
    ]))
    .ok();
    let r = netshim_run(
        &format!("podman:{name}"),
        &[
            "sh",
            "-c",
            "cat /proc/self/status; readlink /proc/self/ns/net",
        ],
    );
    let pid = run(&mut podman(&["inspect", "-f", "{{.State.Pid}}", &name])).ok();
    let container = std::fs::read_link(format!("/proc/{}/ns/net", pid.stdout.trim())).unwrap();
    let listed = run(std::process::Command::new(netshim())
        .args(["targets", "--json"])
        .current_dir("/tmp"));
    let _ = run(&mut podman(&["rm", "-f", "-t", "0", &name]));
    let r = r.ok();
    assert_least_privilege(&r.stdout);
    assert_eq!(r.stdout.lines().last(), container.to_str());
    let v: serde_json::Value = serde_json::from_str(&listed.ok().stdout).unwrap();
    let me = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == format!("podman:{name}").as_str());
    assert_eq!(
        me.map(|t| t["plan"].clone()),
        Some("drop-uid".into()),
        "{v:#}"
    );
}

#[test]
fn only_stdio_reaches_the_command_and_its_directory_is_inside_its_root() {
    let ns = Netns::new();
    let mut c = Command::new(netshim())
        .args(["run", "--target-netns", &ns.target(), "--", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = wait_for_descendant_exec(c.id() as i32, &["sleep", "30"]);
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let cwd = std::fs::metadata(format!("/proc/{pid}/cwd")).unwrap();
    let root = std::fs::metadata(format!("/proc/{pid}/root")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    sigkill(pid);
    let _ = c.wait();
    let mut fds = fds;
    fds.sort();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "no host descriptor leaks into the target"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (cwd.dev(), cwd.ino()),
        (root.dev(), root.ino()),
        "cwd is the process's own root"
    );
    assert_least_privilege(&status);
}

#[test]
fn seccomp_refuses_new_user_namespaces_and_ptrace_with_eperm() {
    let ns = Netns::new();
    let r = netshim_run(
        &ns.target(),
        &[
            "sh",
            "-c",
            "unshare -U true; echo unshare=$?; grep Seccomp: /proc/self/status",
        ],
    );
    assert!(r.stderr.contains("Operation not permitted"), "{r:#?}");
    assert!(r.stdout.contains("unshare=1"), "{r:#?}");
    assert!(r.stdout.contains("Seccomp:\t2"), "{r:#?}");
}

/// `netshim --debug run ... 2>&1 | head -1`: stderr closed while netshim,
/// libcontainer's processes and the command still log to it. Nothing may
/// panic (a panic in one of libcontainer's forked processes once unwound
/// into netshim's clean-up there, inside the container's mount namespace,
/// and emptied the host's /etc); the run ends with the command's status and
/// leaves no state. The host directories the run binds keep what they hold
/// (checked on a directory this test makes under /tmp, which the run binds).
#[test]
fn a_closed_stderr_neither_fails_the_run_nor_touches_the_host() {
    let ns = Netns::new();
    let canary = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::write(canary.path().join("keep"), "x").unwrap();
    for _ in 0..3 {
        let mut c = Command::new(netshim())
            .args([
                "--debug",
                "run",
                "--target-netns",
                &ns.target(),
                "--",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away at once, as `| head -1` does after a line.
        drop(c.stderr.take());
        let pid = c.id() as i32;
        let st = c.wait().unwrap();
        assert_eq!(st.code(), Some(0), "{st}");
        assert!(no_state_in("/run/netshim", pid), "state left by {pid}");
    }
    assert!(canary.path().join("keep").exists());
    assert!(std::path::Path::new("/etc/passwd").exists());
}

/// netshim ignores SIGPIPE (Rust's runtime does), but its command starts
/// with SIGPIPE at its default, as from a shell or runc: `yes | head -1`
/// ends quietly (before, yes printed "yes: standard output: Broken pipe").
#[test]
fn the_command_starts_with_sigpipe_at_its_default() {
    let ns = Netns::new();
    let r = run(Command::new(netshim()).args([
        "run",
        "--target-netns",
        &ns.target(),
        "--",
        "sh",
        "-c",
        "yes | head -1; grep SigIgn /proc/self/status",
    ]))
    .ok();
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("y"), "{r:#?}");
    let ign = lines
        .next()
        .and_then(|l| l.strip_prefix("SigIgn:\t"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(
        ign & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {r:#?}"
    );
    assert!(!r.stderr.contains("Broken pipe"), "{r:#?}");
}

/// libpcap is opened only to compile a filter: on a host without it (here:
/// hidden under /dev/null in a mount namespace of the test's own),
/// `netshim run` works, and a capture with a filter says what to install.
#[test]
fn without_libpcap_run_works_and_a_filter_says_what_to_install() {
    let ns = Netns::new();
    let ldd = run(Command::new("ldd").arg(netshim())).ok();
    assert!(!ldd.stdout.contains("libpcap"), "{}", ldd.stdout);
    let found = sh("ldconfig -p | awk '/libpcap\\.so/ {print $NF}' | sort -u").ok();
    let libs: Vec<&str> = found.stdout.lines().collect();
    assert!(!libs.is_empty(), "libpcap is installed here: {found:?}");
    let hide: String = libs
        .iter()
        .map(|l| format!("mount --bind /dev/null {l} && "))
        .collect();
    let bin = netshim();
    let bin = bin.display();
    let target = ns.target();
    let r = sh(&format!(
        "unshare -m --propagation private sh -c '{hide} \
         {bin} run --target-netns {target} -- echo ran && \
         {bin} capture --target-netns {target} -i lo -c 1 icmp; echo capture=$?; \
         {bin} doctor | grep \"warn] libpcap\"'"
    ));
    assert!(r.stdout.contains("ran\n"), "{r:#?}");
    assert!(r.stdout.contains("capture=1"), "{r:#?}");
    // doctor says so too, as a warning: nothing else needs libpcap.
    assert!(
        r.stdout
            .contains("[warn] libpcap (compiles filter expressions)"),
        "{r:#?}"
    );
    assert!(
        r.stderr
            .contains("libpcap, which compiles filter expressions, is not installed")
            && r.stderr.contains("apt-get install libpcap0.8"),
        "{r:#?}"
    );
}

/// Root joins a user namespace in which host root is not mapped (as a
/// rootless container's): the join-userns plan. The container's init,
/// an unprivileged stranger to root's files there, must still resolve the
/// run's rootfs under root's state directory (0711 on the way, config.json
/// 0600). Before that, libcontainer failed with "failed to prepare rootfs"
/// (EACCES on its bind of the rootfs).
#[test]
fn root_joins_a_user_namespace_where_root_is_unmapped() {
    require_root();
    let (mut holder, pid) = userns_with_root_unmapped("deny");
    let target = format!("pid:{pid}");
    let r = netshim_run(&target, &["cat", "/proc/self/status"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let r = r.ok();
    assert_least_privilege(&r.stdout);
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode("/run/netshim"), 0o711);
    assert_eq!(mode("/run/netshim/bundles"), 0o711);
    assert_eq!(mode("/run/netshim/containers"), 0o700);
}

/// What a run sees of the host: its whole file tree (one recursive bind of
/// `/`), `/proc` and `/sys` mounted nosuid,nodev,noexec whatever the host's
/// flags, and a `/dev` of its own.
#[test]
fn the_run_sees_the_hosts_tree_with_proc_and_sys_restricted() {
    let ns = Netns::new();
    let r = netshim_run(&ns.target(), &["cat", "/proc/self/mountinfo"]).ok();
    let top = |dest: &str| {
        r.stdout
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("no mount on {dest}: {}", r.stdout))
            .to_string()
    };
    for dest in ["/proc", "/sys"] {
        let l = top(dest);
        let opts = l.split(' ').nth(5).unwrap();
        for o in ["nosuid", "nodev", "noexec"] {
            assert!(opts.split(',').any(|x| x == o), "{dest} lacks {o}: {l}");
        }
    }
    assert!(top("/dev").contains(" - tmpfs "), "{}", top("/dev"));
    // Top-level entries of the host, files and directories alike.
    let host: Vec<String> = std::fs::read_dir("/")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let seen = netshim_run(&ns.target(), &["ls", "-A", "/"]).ok();
    for name in &host {
        assert!(
            seen.stdout.lines().any(|l| l == name),
            "/{name} missing: {}",
            seen.stdout
        );
    }
}

/// The `Groups:` line of a `/proc/self/status` text.
fn groups_of(status: &str) -> String {
    status_fields(status)
        .get("Groups")
        .cloned()
        .unwrap_or_else(|| panic!("no Groups line: {status}"))
}

/// `netshim run` started with supplementary groups 10 and 20 (root's own
/// list is often empty, which would hide a group passed on).
fn netshim_run_with_groups(target: &str, cmd: &[&str]) -> Ran {
    run(Command::new("setpriv")
        .args(["--groups", "10,20", "--"])
        .arg(netshim())
        .args(["run", "--target-netns", target, "--"])
        .args(cmd))
}

/// Neither plan passes the caller's supplementary groups on: libcontainer
/// calls no `setgroups` for an empty `additionalGids`, so the command kept
/// root's (10 and 20 here; in a user namespace where they are unmapped,
/// 65534). Both plans now give the same, empty list.
#[test]
fn drop_uid_and_join_userns_give_no_supplementary_group() {
    require_root();
    let ns = Netns::new();
    let dropped = netshim_run_with_groups(&ns.target(), &["cat", "/proc/self/status"]).ok();
    // "deny" there: netshim empties the list before it joins.
    let (mut holder, pid) = userns_with_root_unmapped("deny");
    let joined = netshim_run_with_groups(&format!("pid:{pid}"), &["cat", "/proc/self/status"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let joined = joined.ok();
    assert_least_privilege(&dropped.stdout);
    assert_least_privilege(&joined.stdout);
    assert_eq!(
        groups_of(&dropped.stdout),
        "",
        "drop-uid: {}",
        dropped.stdout
    );
    assert_eq!(
        groups_of(&joined.stdout),
        "",
        "join-userns: {}",
        joined.stdout
    );
}
