//! `netshim doctor`: what works on this host for the caller, and what to fix.
//!
//! Every check is done for real where it can be without privilege: a forked
//! child makes a user and network namespace and opens a TPACKET_V3 packet
//! socket there, rather than the doctor guessing from version numbers.

use std::path::{Path, PathBuf};

use serde_json::json;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    Info,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Info => "info",
        }
    }
}

struct Finding {
    area: &'static str,
    check: String,
    status: Status,
    detail: String,
    fix: Option<String>,
}

fn finding(
    area: &'static str,
    check: impl Into<String>,
    status: Status,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Finding {
    Finding {
        area,
        check: check.into(),
        status,
        detail: detail.into(),
        fix: fix.map(String::from),
    }
}

fn kernel_release() -> (String, (u32, u32)) {
    let u = nix::sys::utsname::uname().ok();
    let rel = u
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut it = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (rel, (major, minor))
}

/// Runs `f` in a forked child and returns its exit code (0 = success).
/// The doctor is single-threaded, so the child may allocate.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: single-threaded caller; the child runs f and leaves with _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = f();
            // SAFETY: ends the child without the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None)
        {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
            _ => 255,
        },
        Err(e) => e as i32,
    }
}

/// In a fresh user + network namespace, opens a packet socket with a
/// TPACKET_V3 ring: the capture engine's own setup.
fn tpacket_v3_in_private_namespace() -> i32 {
    in_child(|| {
        use nix::sched::{unshare, CloneFlags};
        if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET) {
            return 100 + e as i32;
        }
        let cfg = netshim_capture::ring::RingConfig {
            ifindex: 0,
            ring_bytes: 2 << 20,
            block_bytes: 1 << 20,
            retire_ms: 20,
            filter: None,
            promisc: false,
            ignore_outgoing: false,
            snaplen: 262_144,
        };
        match netshim_capture::ring::Ring::open(&cfg) {
            Ok(_) => 0,
            Err(e) => e.raw_os_error().unwrap_or(1),
        }
    })
}

fn setuid_binary(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    ["/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0)
                || std::process::Command::new("getcap")
                    .arg(p)
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cap_set"))
        })
}

fn socket_reachable(p: &Path) -> Result<(), std::io::Error> {
    std::os::unix::net::UnixStream::connect(p).map(|_| ())
}

pub fn main(a: DoctorArgs) -> anyhow::Result<u8> {
    let mut f = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    let uid = nix::unistd::getuid().as_raw();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());

    // Kernel and the features netshim relies on.
    let (rel, (maj, min)) = kernel_release();
    let v = |a: u32, b: u32| (maj, min) >= (a, b);
    f.push(finding(
        "kernel",
        "version",
        if v(5, 3) { Status::Ok } else { Status::Fail },
        format!("Linux {rel}"),
        (!v(5, 3)).then_some(
            "netshim needs Linux 5.3 or later (pidfd_open); 4.9 at the very least (NS_GET_USERNS)",
        ),
    ));
    let own_net = netshim_runtime::kernel::ns::own_netns();
    // EPERM means the ioctl exists but the owner is outside our user
    // namespace (netshim runs in a child one); ENOTTY means no ioctl.
    let nsget = own_net
        .as_ref()
        .ok()
        .map(|n| matches!(n.owner_userns(), Ok(_) | Err(nix::errno::Errno::EPERM)));
    f.push(finding(
        "kernel",
        "NS_GET_USERNS (whose user namespace owns a netns)",
        if nsget == Some(true) {
            Status::Ok
        } else {
            Status::Fail
        },
        if nsget == Some(true) {
            "works"
        } else {
            "the ioctl failed"
        },
        (nsget != Some(true)).then_some("needs Linux 4.9 or later"),
    ));
    // SAFETY: PR_CAP_AMBIENT_IS_SET only queries the calling thread.
    let amb = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET,
            13, /* CAP_NET_RAW */
            0,
            0,
        )
    };
    f.push(finding(
        "kernel",
        "ambient capabilities",
        if amb >= 0 { Status::Ok } else { Status::Fail },
        if amb >= 0 {
            "supported"
        } else {
            "PR_CAP_AMBIENT is not supported"
        },
        (amb < 0).then_some("needs Linux 4.3 or later"),
    ));
    let pidfd_ok = netshim_runtime::kernel::ns::pidfd_open(std::process::id() as i32).is_ok();
    f.push(finding(
        "kernel",
        "pidfd_open",
        if pidfd_ok { Status::Ok } else { Status::Warn },
        if pidfd_ok {
            "supported"
        } else {
            "not supported: netshim cannot notice a target exiting"
        },
        (!pidfd_ok).then_some("use Linux 5.3 or later"),
    ));

    // User namespaces.
    let blockers = netshim_runtime::kernel::userns::creation_blockers();
    let can_unshare =
        in_child(
            || match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(e) => e as i32,
            },
        );
    let userns_ok = can_unshare == 0;
    f.push(finding(
        "user namespaces",
        "creating one without privilege",
        match (userns_ok, root) {
            (true, _) => Status::Ok,
            (false, true) => Status::Warn,
            (false, false) => Status::Fail,
        },
        if userns_ok {
            "allowed".to_string()
        } else if blockers.is_empty() {
            format!("refused ({}) though no sysctl forbids it: a seccomp filter or security module of this environment does", nix::errno::Errno::from_raw(can_unshare))
        } else {
            blockers.iter().map(|b| b.setting.clone()).collect::<Vec<_>>().join("; ")
        },
        (!userns_ok).then(|| blockers.first().map(|b| b.fix.as_str()).unwrap_or("run netshim outside the container or sandbox that forbids user namespaces")),
    ));
    let tp = tpacket_v3_in_private_namespace();
    f.push(finding(
        "capture",
        "TPACKET_V3 packet socket (in a private user + network namespace)",
        if tp == 0 { Status::Ok } else { Status::Warn },
        if tp == 0 {
            "opened, ring mapped, bound".to_string()
        } else if tp >= 100 {
            "not tested: no user namespace could be made".to_string()
        } else {
            format!("failed: {}", std::io::Error::from_raw_os_error(tp))
        },
        None,
    ));
    // libpcap is opened only to compile filters: without it, everything
    // but a filter works.
    let pcap = netshim_capture::filter::libpcap();
    f.push(finding(
        "capture",
        "libpcap (compiles filter expressions)",
        if pcap.is_ok() {
            Status::Ok
        } else {
            Status::Warn
        },
        match &pcap {
            Ok(name) => format!("{name} opens"),
            Err(e) => e.clone(),
        },
        pcap.is_err()
            .then_some("apt-get install libpcap0.8 (Debian, Ubuntu); dnf install libpcap (Fedora)"),
    ));

    // Subordinate IDs, for rootless engines and the demo.
    if !root {
        for (file, tool) in [("/etc/subuid", "newuidmap"), ("/etc/subgid", "newgidmap")] {
            let r = netshim_runtime::kernel::userns::subordinate_range(Path::new(file), &user, uid);
            f.push(finding(
                "rootless",
                format!("{file} range for {user}"),
                if r.is_some_and(|r| r.1 >= 65536) {
                    Status::Ok
                } else {
                    Status::Warn
                },
                match r {
                    Some((s, n)) => format!("{s}-{} ({n} IDs)", s as u64 + n as u64 - 1),
                    None => "none".into(),
                },
                r.is_none().then_some(
                    "as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER",
                ),
            ));
            let b = setuid_binary(tool);
            let present = b.is_some();
            f.push(finding(
                "rootless",
                tool,
                if present { Status::Ok } else { Status::Warn },
                b.map(|p| p.display().to_string())
                    .unwrap_or_else(|| "missing or not privileged".into()),
                (!present).then_some("apt-get install uidmap"),
            ));
        }
    }

    // Engines.
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let mut engines: Vec<(&'static str, PathBuf)> = vec![
        ("docker (rootful)", PathBuf::from("/var/run/docker.sock")),
        (
            "containerd (rootful)",
            PathBuf::from("/run/containerd/containerd.sock"),
        ),
        ("podman (rootful)", PathBuf::from("/run/podman/podman.sock")),
    ];
    if let Some(x) = &xdg {
        engines.push(("docker (rootless)", x.join("docker.sock")));
        engines.push(("podman (rootless)", x.join("podman/podman.sock")));
    }
    let mut reachable_rootless = false;
    for (name, sock) in &engines {
        let r = socket_reachable(sock);
        if r.is_ok() && name.contains("rootless") {
            reachable_rootless = true;
        }
        f.push(finding(
            "engines",
            *name,
            if r.is_ok() { Status::Ok } else { Status::Info },
            match &r {
                Ok(()) => format!("reachable at {}", sock.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    format!("not running ({} absent)", sock.display())
                }
                Err(e) => format!("{}: {e}", sock.display()),
            },
            None,
        ));
    }

    // netshim as a runtime.
    let docker_cfg = std::fs::read_to_string("/etc/docker/daemon.json").unwrap_or_default();
    let containerd_cfg = std::fs::read_to_string("/etc/containerd/config.toml").unwrap_or_default();
    f.push(finding(
        "runtime",
        "Docker runtime \"netshim\" (/etc/docker/daemon.json)",
        Status::Info,
        if docker_cfg.contains("netshim") {
            "registered"
        } else {
            "not registered"
        },
        None,
    ));
    f.push(finding(
        "runtime",
        "containerd runtime handler \"netshim\" (/etc/containerd/config.toml)",
        Status::Info,
        if containerd_cfg.contains("netshim") {
            "registered"
        } else {
            "not registered"
        },
        None,
    ));

    // Verdict: at least one kind of target works for this caller.
    let kernel_ok = f
        .iter()
        .filter(|x| x.area == "kernel")
        .all(|x| x.status != Status::Fail);
    // Joining an existing user namespace is not limited by the sysctls
    // that stop creating one: a running rootless engine still works.
    let usable = kernel_ok && (root || userns_ok || reachable_rootless);
    let what = if root {
        "as root: ip netns namespaces, containers and pods of this host (drop-uid), rootless engines' containers (join-userns)"
    } else if reachable_rootless {
        "as you: your rootless engine's containers (join-userns) and namespaces you make; not host-owned namespaces (the kernel allows no way in)"
    } else if userns_ok {
        "as you: namespaces you own (join-userns), e.g. a rootless Docker or Podman once started; not host-owned namespaces"
    } else {
        "nothing as you: no user namespace of your own is possible here; run netshim as root or fix the settings above"
    };

    if a.json {
        let v = json!({
            "usable": usable,
            "caller": {"uid": uid, "user": user, "root": root},
            "summary": what,
            "findings": f.iter().map(|x| json!({
                "area": x.area, "check": x.check, "status": x.status.word(),
                "detail": x.detail, "fix": x.fix,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let mut area = "";
        for x in &f {
            if x.area != area {
                println!("{}:", x.area);
                area = x.area;
            }
            println!("  [{:4}] {}: {}", x.status.word(), x.check, x.detail);
            if let Some(fix) = &x.fix {
                println!("         fix: {fix}");
            }
        }
        println!();
        println!(
            "{}",
            if usable {
                "netshim can work here"
            } else {
                "netshim cannot work here yet"
            }
        );
        println!("  {what}");
    }
    Ok(if usable { 0 } else { 1 })
}
