//! Helpers for netshim's integration tests: real network namespaces and veth
//! pairs (198.18.0.0/15 only), commands run as the unprivileged test user,
//! and containers of that user's rootless Docker.
//!
//! These tests need root and the environment `integration/run.sh` sets up.
//! When it is missing they fail, saying so: they never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The netshim binary the harness built.
pub fn netshim() -> PathBuf {
    if let Some(p) = std::env::var_os("NETSHIM_BIN") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug/netshim");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --workspace` (integration/run.sh does)",
        p.display()
    );
    p
}

/// Fails the test unless it runs as root (the harness runs it so).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this integration test needs root: run the suite with `sudo ./integration/run.sh`"
    );
}

/// The unprivileged test user and its runtime directory, set by the harness.
pub fn test_user() -> (String, String) {
    require_root();
    let user = std::env::var("NETSHIM_TEST_USER").expect(
        "NETSHIM_TEST_USER is not set: run the suite with `sudo ./integration/run.sh`, \
         which creates the test user and starts its rootless Docker",
    );
    let dir =
        std::env::var("NETSHIM_TEST_RUNTIME_DIR").expect("NETSHIM_TEST_RUNTIME_DIR is not set");
    (user, dir)
}

/// Requires the harness's rootless Docker for the test user.
pub fn require_docker() {
    test_user();
    assert!(
        std::env::var_os("NETSHIM_TEST_DOCKER").is_some(),
        "NETSHIM_TEST_DOCKER is not set: run the suite with `sudo ./integration/run.sh`, \
         which starts a rootless Docker for the test user"
    );
}

/// The result of a command, with its text for assertions.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Ran {
    #[track_caller]
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, Some(0), "command failed: {self:#?}");
        self
    }
}

/// Runs a command to completion with no stdin.
pub fn run(cmd: &mut Command) -> Ran {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
        .into()
}

/// The netshim binary under `timeout(1)`: a test waiting for traffic must
/// end even if none comes (timeout's SIGTERM goes through netshim's
/// forwarding, so the command ends too).
pub fn netshim_with_timeout(secs: u32) -> Command {
    let mut c = Command::new("timeout");
    c.arg(secs.to_string()).arg(netshim());
    c
}

/// `sh -c SCRIPT` as root.
pub fn sh(script: &str) -> Ran {
    run(Command::new("sh").args(["-c", script]))
}

/// A command that runs as the test user, with its rootless Docker's
/// environment.
pub fn as_user(args: &[&str]) -> Command {
    let (user, dir) = test_user();
    let mut c = Command::new("runuser");
    c.args(["-u", &user, "--", "env", "-i"])
        .arg(format!("HOME=/home/{user}"))
        .arg(format!("XDG_RUNTIME_DIR={dir}"))
        .arg(format!("DOCKER_HOST=unix://{dir}/docker.sock"))
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .args(args);
    c
}

/// A named network namespace (as `ip netns add` makes), optionally wired
/// by a veth pair to a peer namespace: target 198.18.N.1/30 on `veth`,
/// peer 198.18.N.2/30. Removed on drop.
pub struct Netns {
    pub name: String,
    pub peer: Option<String>,
    pub veth: String,
    pub addr: String,
    pub peer_addr: String,
}

impl Netns {
    pub fn new() -> Netns {
        require_root();
        let name = unique("nst");
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ))
        .ok();
        Netns {
            name,
            peer: None,
            veth: String::new(),
            addr: String::new(),
            peer_addr: String::new(),
        }
    }

    /// With a peer namespace on the other end of a veth pair.
    pub fn with_peer() -> Netns {
        let mut n = Netns::new();
        let peer = format!("{}p", n.name);
        let k = COUNTER.fetch_add(1, Ordering::Relaxed) % 250 + 1;
        let octet = (std::process::id() % 200 + k) % 250;
        let veth = format!("v{}", &n.name[3..]);
        let (a, b) = (format!("198.18.{octet}.1"), format!("198.18.{octet}.2"));
        sh(&format!(
            "set -e; ip netns add {peer}; ip -n {peer} link set lo up; \
             ip link add {veth} netns {name} type veth peer name {veth}p netns {peer}; \
             ip -n {name} addr add {a}/30 dev {veth}; ip -n {peer} addr add {b}/30 dev {veth}p; \
             ip -n {name} link set {veth} up; ip -n {peer} link set {veth}p up",
            name = n.name
        ))
        .ok();
        n.peer = Some(peer);
        n.veth = veth;
        n.addr = a;
        n.peer_addr = b;
        n
    }

    pub fn target(&self) -> String {
        format!("netns:{}", self.name)
    }

    /// Starts `ping` from the peer to the target every 0.1 s for `secs`;
    /// it ends by itself.
    pub fn ping_from_peer(&self, secs: u32) -> std::process::Child {
        let peer = self.peer.as_ref().expect("a netns with a peer");
        let mut child = Command::new("ip")
            .args(["netns", "exec", peer, "ping", "-q", "-i", "0.1", "-w"])
            .arg(secs.to_string())
            .arg(&self.addr)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ping in the peer namespace");
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("ping in {peer} ended at once ({st}): {err}");
        }
        child
    }
}

impl Netns {
    /// Sends small UDP datagrams from the peer to the target, one to each
    /// port in turn, about every 2 ms, for `secs`; ends by itself.
    pub fn udp_from_peer(&self, ports: &[u16], secs: u32) -> std::process::Child {
        let peer = self.peer.as_ref().expect("a netns with a peer");
        udp_sender(peer, &self.addr, ports, secs)
    }

    /// The same from the target to the peer.
    pub fn udp_to_peer(&self, ports: &[u16], secs: u32) -> std::process::Child {
        udp_sender(&self.name, &self.peer_addr, ports, secs)
    }
}

/// Sends small UDP datagrams from network namespace `from` to `to`, one to
/// each port in turn, about every 2 ms, for `secs`; ends by itself.
fn udp_sender(from: &str, to: &str, ports: &[u16], secs: u32) -> std::process::Child {
    let sends: Vec<String> = ports
        .iter()
        .map(|p| format!("echo netshim-test > /dev/udp/{to}/{p}"))
        .collect();
    // Source ports from 40000-40999 (see [`quiet_ports`]).
    let script = format!(
        "{QUIET_PORTS}; end=$((SECONDS+{secs})); while [ $SECONDS -lt $end ]; do {}; sleep 0.002; done",
        sends.join("; ")
    );
    Command::new("ip")
        .args(["netns", "exec", from, "bash", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the UDP sender")
}

/// Source ports from 40000-40999, a range none of tcpdump's port-based
/// dissectors claims: tests compare netshim's lines with tcpdump's, and a
/// random ephemeral port once hit 49152, which tcpdump decodes as
/// Broadcom's LI shim. (The range is a sysctl of each network namespace.)
const QUIET_PORTS: &str = "echo '40000 40999' > /proc/sys/net/ipv4/ip_local_port_range";

/// Gives network namespace `ns` (by name) the source ports 40000-40999.
pub fn quiet_ports(ns: &str) {
    run(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", QUIET_PORTS])).ok();
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.name));
        if let Some(p) = &self.peer {
            let _ = sh(&format!("ip netns del {p}"));
        }
    }
}

/// A container of the test user's rootless Docker, removed on drop.
pub struct UserContainer {
    pub name: String,
}

impl UserContainer {
    /// `docker run -d` of the harness's busybox image with `cmd`.
    pub fn start(cmd: &[&str]) -> UserContainer {
        require_docker();
        let name = unique("nsc");
        let mut args = vec![
            "/usr/bin/docker",
            "run",
            "-d",
            "--name",
            &name,
            "netshim-busybox",
        ];
        args.extend_from_slice(cmd);
        run(&mut as_user(&args)).ok();
        UserContainer { name }
    }

    pub fn pid(&self) -> i32 {
        let r = run(&mut as_user(&[
            "/usr/bin/docker",
            "inspect",
            "-f",
            "{{.State.Pid}}",
            &self.name,
        ]))
        .ok();
        r.stdout.trim().parse().expect("a PID from docker inspect")
    }

    pub fn target(&self) -> String {
        format!("docker:{}", self.name)
    }
}

impl Drop for UserContainer {
    fn drop(&mut self) {
        let _ = run(&mut as_user(&["/usr/bin/docker", "rm", "-f", &self.name]));
    }
}

/// The Uid, Gid, Groups, Cap* and NoNewPrivs lines of a `/proc/PID/status`
/// text.
pub fn status_fields(status: &str) -> std::collections::BTreeMap<String, String> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.starts_with("Cap") || ["Uid", "Gid", "Groups", "NoNewPrivs"].contains(k))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

/// Asserts a status text shows UID/GID 65534 everywhere, every capability
/// set equal to CAP_NET_RAW only, and no_new_privs.
#[track_caller]
pub fn assert_least_privilege(status: &str) {
    let f = status_fields(status);
    assert_eq!(
        f.get("Uid").map(String::as_str),
        Some("65534 65534 65534 65534"),
        "{status}"
    );
    assert_eq!(
        f.get("Gid").map(String::as_str),
        Some("65534 65534 65534 65534"),
        "{status}"
    );
    for k in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(
            f.get(k).map(String::as_str),
            Some("0000000000002000"),
            "{k} in {status}"
        );
    }
    assert_eq!(
        f.get("NoNewPrivs").map(String::as_str),
        Some("1"),
        "{status}"
    );
    assert!(
        status.lines().any(|l| l == "Seccomp:\t2"),
        "a seccomp filter is installed: {status}"
    );
}

/// Waits until a process named `comm` whose ancestor is `pid` exists.
pub fn wait_for_child_named(pid: i32, comm: &str) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read_to_string(format!("/proc/{p}/comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
                && descends_from(p, pid)
            {
                return p;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no {comm} under {pid} within 10 s");
}

pub fn ppid(p: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
    s[s.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn descends_from(mut p: i32, ancestor: i32) -> bool {
    for _ in 0..16 {
        match ppid(p) {
            Some(q) if q == ancestor => return true,
            Some(q) if q > 1 => p = q,
            _ => return false,
        }
    }
    false
}

/// No state (container or bundle) of the netshim process `pid` under `root`.
pub fn no_state_in(root: &str, netshim_pid: i32) -> bool {
    let prefix = format!("run-{netshim_pid}-");
    ["containers", "bundles"].iter().all(|d| {
        std::fs::read_dir(std::path::Path::new(root).join(d))
            .map(|rd| {
                rd.flatten()
                    .all(|e| !e.file_name().to_string_lossy().starts_with(&prefix))
            })
            .unwrap_or(true)
    })
}

/// Waits until `pid` is gone (or a zombie); false if it still runs after 5 s.
pub fn wait_gone(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) if s.contains(") Z ") => return true,
            Ok(_) if std::time::Instant::now() > deadline => return false,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// SIGKILL to a process the test started.
pub fn sigkill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap_or_else(|e| panic!("kill -9 {pid}: {e}"));
}

/// `capinfos FILE` output (fails the test if capinfos cannot read it).
#[track_caller]
pub fn capinfos(path: &std::path::Path) -> String {
    run(Command::new("capinfos").arg(path)).ok().stdout
}

/// Lines tshark prints for FILE with an optional display filter.
#[track_caller]
pub fn tshark_lines(path: &std::path::Path, display_filter: Option<&str>) -> Vec<String> {
    let mut c = Command::new("tshark");
    c.arg("-r").arg(path);
    if let Some(f) = display_filter {
        c.args(["-Y", f]);
    }
    run(&mut c).ok().stdout.lines().map(String::from).collect()
}

/// The count of tcpdump's closing line "N packets captured" on stderr.
pub fn captured_count(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(" packets captured"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no \"packets captured\" line in: {stderr}"))
}

/// Ends a child the test started and reaps it.
pub fn stop(mut c: std::process::Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Waits until a descendant of `pid` runs with a command line containing
/// every one of `words` (NUL-separated arguments); returns its PID. The init
/// of a run's PID namespace (`... run-init CMD ...`), whose command line
/// holds the command's, is never the one meant.
pub fn wait_for_descendant_running(pid: i32, words: &[&str]) -> i32 {
    wait_for_descendant(pid, &format!("with {words:?}"), |args| {
        words.iter().all(|w| args.contains(&w.as_bytes()))
    })
}

/// The PID of a descendant of `pid` whose command line is exactly `argv`:
/// a process that has made its exec. Matching words anywhere in the command
/// line would also find netshim's own children between their fork and their
/// exec, which carry `netshim run ... -- sleep 30` and the descriptors netshim
/// has not yet closed.
pub fn wait_for_descendant_exec(pid: i32, argv: &[&str]) -> i32 {
    wait_for_descendant(pid, &format!("exactly {argv:?}"), |args| {
        args.len() == argv.len() && args.iter().zip(argv).all(|(a, w)| *a == w.as_bytes())
    })
}

/// The first descendant of `pid` whose command line (its arguments) `fits`,
/// waiting up to 10 s.
fn wait_for_descendant(pid: i32, what: &str, fits: impl Fn(&[&[u8]]) -> bool) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(format!("/proc/{p}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd
                .strip_suffix(b"\0")
                .unwrap_or(&cmd)
                .split(|b| *b == 0)
                .collect();
            let is_init = args.get(1).is_some_and(|a| *a == b"run-init");
            if !is_init && fits(&args) && descends_from(p, pid) {
                return p;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no descendant of {pid} running {what} within 10 s");
}

/// A busybox root filesystem (Debian's busybox-static) in `dir/rootfs`.
pub fn busybox_rootfs(dir: &std::path::Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox (package busybox-static) is missing: run integration/run.sh");
    for a in [
        "sh", "ping", "grep", "cat", "sleep", "id", "ip", "true", "echo",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    root
}

/// An OCI spec for a non-root (1000:1000), no_new_privs process whose
/// bounding, effective and permitted sets hold CAP_NET_RAW (what
/// containerd's CRI plugin writes for `drop: [ALL]`, `add: [NET_RAW]`), in
/// new namespaces, with `annotations`.
pub fn non_root_spec(
    rootfs: &std::path::Path,
    args: &[&str],
    annotations: &[(&str, &str)],
) -> serde_json::Value {
    let ann: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000},
            "args": args,
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_NET_RAW"],
                "effective": ["CAP_NET_RAW"],
                "permitted": ["CAP_NET_RAW"]
            }
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": "netshim-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "annotations": ann,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A private containerd (its own root, state and sockets in a temporary
/// directory), ended on drop together with the tasks it still runs.
pub struct Containerd {
    pub dir: tempfile::TempDir,
    pub address: String,
    child: std::process::Child,
}

impl Containerd {
    /// Starts containerd with `extra` appended to its config (the CRI plugin
    /// is disabled unless `cri` is set).
    pub fn start(extra: &str, cri: bool) -> Containerd {
        Self::start_with(extra, cri, |_| {})
    }

    /// [`Containerd::start`], with `prepare` called on the config file
    /// before containerd reads it.
    pub fn start_with(extra: &str, cri: bool, prepare: impl FnOnce(&Path)) -> Containerd {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("nsctd")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path().display().to_string();
        let address = format!("{d}/containerd.sock");
        let disabled = if cri {
            ""
        } else {
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]"
        };
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{disabled}\n\
             [grpc]\n  address = \"{address}\"\n[ttrpc]\n  address = \"{address}.ttrpc\"\n\
             [debug]\n  level = \"info\"\n{extra}\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        prepare(&dir.path().join("config.toml"));
        let child = Self::spawn(dir.path());
        let c = Containerd {
            dir,
            address,
            child,
        };
        c.wait_ready();
        c
    }

    fn spawn(dir: &Path) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("containerd.log"))
            .unwrap();
        Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is missing: run integration/run.sh (package containerd)")
    }

    fn wait_ready(&self) {
        for _ in 0..100 {
            if run(&mut self.ctr(&["version"])).code == Some(0) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "the private containerd did not answer within 10 s; its log:\n{}",
            std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
        );
    }

    /// Its config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Stops containerd (SIGTERM, this test's own child) and starts it
    /// again, so that it reads its config anew.
    pub fn restart(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        self.child = Self::spawn(self.dir.path());
        self.wait_ready();
    }

    /// `ctr --address ...` with `args`.
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["--address", &self.address]).args(args);
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for ns in ["default", "k8s.io"] {
            let tasks = run(&mut self.ctr(&["-n", ns, "task", "ls", "-q"]));
            for t in tasks.stdout.lines().filter(|l| !l.is_empty()) {
                let _ = run(&mut self.ctr(&["-n", ns, "task", "kill", "-s", "KILL", t]));
                std::thread::sleep(std::time::Duration::from_millis(200));
                let _ = run(&mut self.ctr(&["-n", ns, "task", "rm", "-f", t]));
            }
            let cs = run(&mut self.ctr(&["-n", ns, "containers", "ls", "-q"]));
            for c in cs.stdout.lines().filter(|l| !l.is_empty()) {
                let _ = run(&mut self.ctr(&["-n", ns, "containers", "rm", c]));
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The harness's private rootful Docker: `docker -H ...`.
pub fn rootful_docker(args: &[&str]) -> Command {
    require_root();
    let host = std::env::var("NETSHIM_TEST_ROOTFUL_DOCKER").expect(
        "NETSHIM_TEST_ROOTFUL_DOCKER is not set: run the suite with `sudo ./integration/run.sh`, \
         which starts a private rootful dockerd with netshim registered",
    );
    let mut c = Command::new("/usr/bin/docker");
    c.args(["-H", &host]).args(args);
    c
}

/// Opens /dev/net/tun and attaches to the tun interface `name` of the
/// network namespace at `netns` (this thread joins it first).
pub fn attach_tun(netns: &str, name: &str) -> std::os::fd::OwnedFd {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(netns).unwrap();
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    // SAFETY: TUNSETIFF reads the ifreq we own; the descriptor is open.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &req) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    tun.into()
}

/// Makes the tun interface `name` with `addr` (a /24) in `ns`, up, and
/// attaches this process to it from a thread in the namespace: a tun
/// interface carries nothing until a process does. Keep the descriptor for
/// as long as the interface should carry packets (nobody reads them: what
/// is sent out of it is captured, then dropped).
pub fn tun_in(ns: &Netns, name: &str, addr: &str) -> std::os::fd::OwnedFd {
    sh(&format!(
        "set -e; ip -n {n} tuntap add mode tun name {name}; ip -n {n} addr add {addr}/24 dev {name}; \
         ip -n {n} link set {name} up",
        n = ns.name
    ))
    .ok();
    let netns = format!("/run/netns/{}", ns.name);
    let name = name.to_string();
    std::thread::spawn(move || attach_tun(&netns, &name))
        .join()
        .unwrap()
}

/// Waits (10 s at most) until `pid` is in a user namespace other than this
/// process's: `unshare --user` has made it, and its maps can be written.
fn wait_for_new_userns(pid: i32) {
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{pid}/ns/user")).ok() == Some(ours.clone()) {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare made no user namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A user namespace like `unshare --user --net` (made as root), with root
/// unmapped (`0 200000 65536`) and `setgroups` as given ("allow" or
/// "deny"), as a rootless engine's namespace looks to root; returned with
/// the holder process (`sleep 60`) for the caller to kill.
pub fn userns_with_root_unmapped(setgroups: &str) -> (std::process::Child, u32) {
    let holder = Command::new("unshare")
        .args(["--user", "--net", "sleep", "60"])
        .spawn()
        .unwrap();
    let pid = holder.id();
    // The maps can be written once unshare has made the namespace.
    wait_for_new_userns(pid as i32);
    for (file, text) in [
        ("uid_map", "0 200000 65536"),
        ("setgroups", setgroups),
        ("gid_map", "0 200000 65536"),
    ] {
        std::fs::write(format!("/proc/{pid}/{file}"), text).unwrap();
    }
    (holder, pid)
}

/// A user namespace of the test user's own (its network namespace too),
/// mapped as rootless Podman maps one with newuidmap/newgidmap: the user
/// as 0, its first 65536 subordinate IDs from 1. Returned with the holder
/// (`runuser … unshare … sleep 60`, to kill and wait for) and the PID of
/// the `sleep` inside it (to kill as well).
pub fn users_own_userns() -> (std::process::Child, i32) {
    let (user, _) = test_user();
    let pw = nix::unistd::User::from_name(&user).unwrap().unwrap();
    let first_sub = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{user}:")))
            .and_then(|r| r.split(':').next().map(String::from))
            .unwrap_or_else(|| panic!("{user} has no subordinate IDs in {file}"))
    };
    let holder = as_user(&["unshare", "--user", "--net", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = wait_for_descendant_exec(holder.id() as i32, &["sleep", "60"]);
    wait_for_new_userns(pid);
    for (tool, own, file) in [
        ("newuidmap", pw.uid.to_string(), "/etc/subuid"),
        ("newgidmap", pw.gid.to_string(), "/etc/subgid"),
    ] {
        let (p, sub) = (pid.to_string(), first_sub(file));
        run(&mut as_user(&[
            tool, &p, "0", &own, "1", "1", &sub, "65536",
        ]))
        .ok();
    }
    (holder, pid)
}
pub mod kube;
pub mod plugin;
