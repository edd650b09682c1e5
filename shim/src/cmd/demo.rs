//! `netshim demo`: the README's main job on an embedded default.
//!
//! It makes a throwaway target with traffic on it (as a user: a private user
//! and network namespace; as root: a named network namespace), then goes
//! through the public commands exactly as a user would: `netshim run … --
//! netshim probe -c 0` shows the UID and capability sets a command gets
//! there, `netshim capture` prints packet lines and writes a pcapng file.
//! Everything made is removed at the end; the file stays.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Packets to capture in the target.
    #[arg(short = 'c', long, default_value_t = 5)]
    count: u32,
    /// Where to write the capture [default: ./demo.pcapng when this user
    /// can write it there, else demo.pcapng in a new private directory
    /// under $TMPDIR or /tmp].
    #[arg(short = 'w', long)]
    output: Option<std::path::PathBuf>,
}

/// Picks where the demo writes its capture when `-w` is not given: the
/// current directory if this user may write `demo.pcapng` there (a file
/// another user left, or a directory like `/tmp` with the sticky bit, may
/// refuse it), else a new private directory of its own.
fn default_output() -> anyhow::Result<std::path::PathBuf> {
    use nix::unistd::{access, AccessFlags};
    let here = std::path::PathBuf::from("demo.pcapng");
    let writable = match std::fs::symlink_metadata(&here) {
        Ok(m) => {
            m.is_file()
                && m.uid() == nix::unistd::geteuid().as_raw()
                && access(&here, AccessFlags::W_OK).is_ok()
        }
        Err(_) => access(".", AccessFlags::W_OK | AccessFlags::X_OK).is_ok(),
    };
    if writable {
        return Ok(here);
    }
    let base = std::env::var_os("TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/tmp".into());
    let dir = nix::unistd::mkdtemp(&base.join("netshim-demo.XXXXXX")).with_context(|| {
        format!(
            "cannot write demo.pcapng here nor make a directory in {}: give a path you can write with -w FILE",
            base.display()
        )
    })?;
    Ok(dir.join("demo.pcapng"))
}

fn step(msg: &str) {
    eprintln!("==> {msg}");
}

pub fn main(a: DemoArgs) -> anyhow::Result<u8> {
    let root = nix::unistd::geteuid().is_root();
    let exe = std::env::current_exe().context("finding netshim's own binary")?;
    let target = if root {
        step("running as root: making a throwaway named network namespace");
        DemoTarget::named()?
    } else {
        step("running as an unprivileged user: making a throwaway user + network namespace that you own");
        DemoTarget::private()?
    };
    step(&format!(
        "target {} is up; a process in it sends a UDP datagram to 127.0.0.1:5000 every 100 ms",
        target.spec
    ));
    let exe_str = exe.to_str().context("netshim's path is not UTF-8")?;
    let spec = target.spec.clone();
    let count = a.count.to_string();
    let output = match a.output {
        Some(p) => p,
        None => default_output()?,
    };
    let out_str = output.to_str().context("the output path is not UTF-8")?;
    const FILTER: &str = "udp port 5000";
    let capture: Vec<&str> = vec!["capture", "--target-netns", &spec, "-i", "lo", "-c", &count];
    let steps: [Vec<&str>; 3] = [
        vec![
            "run",
            "--target-netns",
            &spec,
            "--",
            exe_str,
            "probe",
            "-c",
            "0",
        ],
        [&capture[..], &[FILTER]].concat(),
        [&capture[..], &["-w", out_str, FILTER]].concat(),
    ];
    let mut outputs = Vec::new();
    for args in &steps {
        step(&format!("netshim {}", quoted(args)));
        let out = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("starting netshim")?;
        std::io::stdout().write_all(&out.stdout)?;
        if !out.status.success() {
            drop(target);
            bail!(
                "netshim {} failed ({}); see the messages above",
                args[0],
                out.status
            );
        }
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    drop(target);
    step("removed the throwaway target");
    let identity = &outputs[0];
    let uid = identity
        .lines()
        .find_map(|l| l.strip_prefix("uid="))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    if !identity.contains("CapEff=0000000000002000") {
        bail!("the probe did not show CAP_NET_RAW alone; see its output above");
    }
    let lines = outputs[1].lines().filter(|l| l.contains("UDP")).count();
    let written = count_pcapng_packets(&output)
        .with_context(|| format!("reading back {}", output.display()))?;
    if lines == 0 || written == 0 {
        bail!("the capture saw no traffic; see the messages above");
    }
    step(&format!(
        "done: in the target, commands run as UID {uid} with only CAP_NET_RAW (ambient, under no_new_privs); \
         the engine printed {lines} packets and wrote {written} to {} (open it with wireshark or tshark -r)",
        output.display()
    ));
    Ok(0)
}

fn quoted(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Counts the Enhanced Packet Blocks of a little-endian pcapng file.
fn count_pcapng_packets(path: &std::path::Path) -> anyhow::Result<u64> {
    let b = std::fs::read(path)?;
    let (mut off, mut n) = (0usize, 0u64);
    while off + 12 <= b.len() {
        let kind = u32::from_le_bytes(b[off..off + 4].try_into()?);
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into()?) as usize;
        if len < 12 || off + len > b.len() {
            bail!("a block at offset {off} is cut short");
        }
        n += u64::from(kind == 6);
        off += len;
    }
    Ok(n)
}

/// The throwaway target: a forked process holding the namespaces and
/// sending traffic, plus, as root, a bind mount naming its netns.
struct DemoTarget {
    pid: Pid,
    spec: String,
    netns_file: Option<std::path::PathBuf>,
}

impl DemoTarget {
    fn private() -> anyhow::Result<DemoTarget> {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        // The demo maps UID 65534 inside, so the range must reach it.
        let range = |file: &str| {
            netshim_runtime::kernel::userns::subordinate_range(
                std::path::Path::new(file),
                &user,
                uid,
            )
            .filter(|r| r.1 > 65534)
        };
        let subuid = range("/etc/subuid").with_context(|| {
            format!(
                "you ({user}, UID {uid}) have no subordinate UID range in /etc/subuid; the demo maps UID 65534 \
                 in its namespace from one. Add one as root: usermod --add-subuids 100000-165535 \
                 --add-subgids 100000-165535 {user}"
            )
        })?;
        let subgid = range("/etc/subgid").with_context(|| {
            format!("you ({user}) have no subordinate GID range in /etc/subgid")
        })?;
        let (pid, ready, go) = spawn_holder(true)?;
        wait_byte(&ready).map_err(|e| {
            anyhow::anyhow!(netshim_runtime::kernel::userns::explain_creation_failure(e))
        })?;
        let map = |tool: &str, id: u32, sub: (u32, u32)| -> anyhow::Result<()> {
            let st = Command::new(tool)
                .args([
                    pid.to_string(),
                    "0".into(),
                    id.to_string(),
                    "1".into(),
                    "1".into(),
                    sub.0.to_string(),
                    sub.1.min(65536).to_string(),
                ])
                .status()
                .with_context(|| format!("running {tool} (Debian package uidmap)"))?;
            if !st.success() {
                bail!("{tool} failed ({st}); check your ranges in /etc/subuid and /etc/subgid");
            }
            Ok(())
        };
        let t = DemoTarget {
            pid,
            spec: format!("pid:{pid}"),
            netns_file: None,
        };
        map("newuidmap", uid, subuid)?;
        map("newgidmap", gid, subgid)?;
        send_byte(&go)?;
        wait_byte(&ready).map_err(|e| anyhow::anyhow!("the target's network namespace: {e}"))?;
        Ok(t)
    }

    fn named() -> anyhow::Result<DemoTarget> {
        let (pid, ready, go) = spawn_holder(false)?;
        send_byte(&go)?;
        wait_byte(&ready).map_err(|e| anyhow::anyhow!("making the network namespace: {e}"))?;
        let name = format!("netshim-demo-{}", std::process::id());
        let dir = std::path::Path::new(netshim_runtime::target::NETNS_RUN_DIR);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join(&name);
        let mut t = DemoTarget {
            pid,
            spec: format!("netns:{name}"),
            netns_file: None,
        };
        std::fs::File::create(&file).with_context(|| format!("creating {}", file.display()))?;
        t.netns_file = Some(file.clone());
        // What `ip netns add` does: bind the namespace file to a name.
        nix::mount::mount(
            Some(format!("/proc/{pid}/ns/net").as_str()),
            &file,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting the namespace on {}", file.display()))?;
        Ok(t)
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        if let Some(f) = &self.netns_file {
            let _ = nix::mount::umount2(f, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(f);
        }
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

fn send_byte(fd: &OwnedFd) -> anyhow::Result<()> {
    nix::unistd::write(fd, &[1]).context("signalling the target process")?;
    Ok(())
}

/// Reads the holder's status byte: 0 means ready, anything else an errno.
fn wait_byte(fd: &OwnedFd) -> Result<(), nix::errno::Errno> {
    let mut b = [0u8; 4];
    let mut f = std::fs::File::from(fd.try_clone().map_err(|_| nix::errno::Errno::EBADF)?);
    f.read_exact(&mut b).map_err(|_| nix::errno::Errno::EPIPE)?;
    match i32::from_ne_bytes(b) {
        0 => Ok(()),
        e => Err(nix::errno::Errno::from_raw(e)),
    }
}

/// Forks the process that holds the target's namespaces. With `userns`, it
/// first makes a user namespace and reports (the parent then writes its ID
/// maps); in both cases it waits for the go byte, makes the network
/// namespace, brings `lo` up, reports, and sends traffic until killed.
fn spawn_holder(userns: bool) -> anyhow::Result<(Pid, OwnedFd, OwnedFd)> {
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (go_r, go_w) = nix::unistd::pipe()?;
    // SAFETY: the demo is single-threaded, so the child may allocate; it
    // never returns into the parent's code (it loops until killed or _exits).
    match unsafe { fork() }.context("forking the target process")? {
        ForkResult::Parent { child } => Ok((child, ready_r, go_w)),
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            // If the demo dies, so does its target.
            // SAFETY: PR_SET_PDEATHSIG takes a signal number.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            let report = |code: i32| {
                let _ = nix::unistd::write(&ready_w, &code.to_ne_bytes());
            };
            let fail = |e: nix::errno::Errno| -> ! {
                report(e as i32);
                // SAFETY: ends the forked child without unwinding into main.
                unsafe { libc::_exit(1) }
            };
            if userns {
                if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
                    fail(e);
                }
                report(0);
            }
            let mut b = [0u8; 1];
            if nix::unistd::read(go_r.as_raw_fd(), &mut b) != Ok(1) {
                // SAFETY: as above.
                unsafe { libc::_exit(1) }
            }
            if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
                fail(e);
            }
            if let Err(e) = loopback_up() {
                fail(e);
            }
            report(0);
            traffic_loop()
        }
    }
}

/// `ip link set lo up`, by ioctl.
fn loopback_up() -> Result<(), nix::errno::Errno> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|_| nix::errno::Errno::EIO)?;
    // SAFETY: ifreq is plain old data; zero is a valid value for every field.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass,
    // which lives across both calls; the union member used is ifru_flags.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(nix::errno::Errno::last());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    Ok(())
}

/// Sends a datagram to 127.0.0.1:5000 (inside the target) every 100 ms.
fn traffic_loop() -> ! {
    let rx = std::net::UdpSocket::bind("127.0.0.1:5000").ok();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").ok();
    let mut n = 0u64;
    let mut buf = [0u8; 64];
    loop {
        if let Some(tx) = &tx {
            let _ = tx.send_to(format!("netshim demo {n}").as_bytes(), "127.0.0.1:5000");
        }
        if let Some(rx) = &rx {
            let _ = rx.set_nonblocking(true);
            while rx.recv(&mut buf).is_ok() {}
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}
