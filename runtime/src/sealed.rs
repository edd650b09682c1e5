//! `netshim capture --sealed`: netshim makes the packet sockets in the
//! target itself and hands them to an engine that holds no capability at
//! all, in a fresh user namespace with an empty network namespace.
//!
//! Kernel rules this rests on:
//! - only `socket(AF_PACKET)` needs CAP_NET_RAW, over the user namespace
//!   owning the network namespace the creating thread is in; ring set-up,
//!   filters and `bind` on the descriptor need nothing, and the socket stays
//!   in the namespace it was made in wherever the descriptor goes;
//! - `setns(CLONE_NEWNET)` changes only the calling thread, so netshim makes
//!   the sockets on a short-lived thread; joining a user namespace
//!   (join-userns) is process-wide and happens first, single-threaded, and
//!   cannot be undone (nor can a process join a sibling user namespace
//!   afterwards): so each target's sockets are made in a forked child of
//!   netshim on that target's plan ([`made_in`]), which passes them back
//!   over a unix socket (`SCM_RIGHTS`) and exits;
//! - `unshare(CLONE_NEWUSER)` gives the child every capability in the new
//!   namespace only; the parent, in the parent namespace, writes a one-line
//!   ID map (`65534 → 65534 of the parent namespace`) after denying
//!   setgroups; the child then drops the bounding set (CAP_SETPCAP in its
//!   namespace), takes UID/GID 65534 and clears every capability set, so
//!   the engine's CapEff = CapPrm = CapInh = CapAmb = CapBnd = 0, and sets
//!   `no_new_privs`;
//! - the engine's network namespace, made by the child in its own user
//!   namespace, holds only a loopback that is down: it can reach nothing.
//!
//! The engine starts a session of its own (no controlling terminal), and
//! executes from the sealed memfd ([`crate::privilege::selfexec`]) under the
//! deny-list of [`crate::privilege::seccomp`], and narrows it to its allow-list once its
//! rings are set up.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::SigSet;
use nix::unistd::ForkResult;

use crate::kernel::ns::NsFile;
use crate::kernel::userns::IdMap;
use crate::plan::Plan;

/// The unprivileged ID the engine runs as, in its namespace and the parent's.
pub const ENGINE_ID: u32 = 65534;

#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    #[error("cannot join the target's user namespace: {0}")]
    EnterUserns(#[source] Errno),
    #[error("cannot enter the target's network namespace to make the packet sockets: {0}")]
    EnterNetns(#[source] Errno),
    #[error(
        "the target's user namespace does not map ID 65534 (mapped: {0}); the sealed engine runs as 65534 \
         of that namespace: capture without --sealed, or map it"
    )]
    Unmapped(IdMap),
    #[error("cannot start the sealed engine: {what}: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: Errno,
    },
    #[error(
        "the sealed engine could not set itself up (see its message above); it exited with {0}"
    )]
    Setup(i32),
    #[error("waiting for the sealed engine failed: {0}")]
    Wait(#[source] Errno),
    #[error("{0}")]
    InTarget(String),
    #[error("cannot take the packet sockets made in the target: {what}: {source}")]
    Handover {
        what: &'static str,
        #[source]
        source: Errno,
    },
}

/// Joins the target's user namespace when the plan needs it (an
/// unprivileged caller, join-userns). Must run before any thread exists.
pub fn enter(plan: &Plan, uid_map: Option<&IdMap>) -> Result<(), SealedError> {
    if let Plan::JoinUserns { userns } = plan {
        if let Some(map) = uid_map {
            if !map.contains(ENGINE_ID) {
                return Err(SealedError::Unmapped(map.clone()));
            }
        }
        crate::privilege::enter::enter_userns(userns).map_err(SealedError::EnterUserns)?;
    }
    Ok(())
}

/// Runs `f` on a thread that has joined `netns` (sockets it makes belong
/// there).
pub fn in_netns<T: Send + 'static>(
    netns: &NsFile,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SealedError> {
    let fd = netns
        .fd()
        .try_clone()
        .map_err(|e| SealedError::EnterNetns(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    std::thread::spawn(move || -> Result<T, SealedError> {
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(SealedError::EnterNetns)?;
        Ok(f())
    })
    .join()
    .unwrap_or(Err(SealedError::EnterNetns(Errno::EIO)))
}

/// The most descriptors one [`made_in`] passes back (the kernel's
/// `SCM_MAX_FD`).
pub const MAX_HANDED: usize = 253;

/// Runs `f` in a forked child of netshim that has taken `plan`'s way into
/// the target (joined its user namespace for join-userns) and, on a thread,
/// joined `netns`; returns what `f` made: bytes and descriptors (packet
/// sockets), passed back over a unix socket. netshim itself joins nothing,
/// so the next target's child may take another plan. Must be called while
/// netshim is single-threaded.
pub fn made_in(
    plan: &Plan,
    netns: &NsFile,
    f: impl FnOnce() -> Result<(Vec<u8>, Vec<OwnedFd>), String> + Send + 'static,
) -> Result<(Vec<u8>, Vec<OwnedFd>), SealedError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let handover = |what| move |source| SealedError::Handover { what, source };
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(handover("a socket pair"))?;
    // SAFETY: netshim is single-threaded here; the child joins namespaces,
    // runs `f` on a thread, sends one message and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(handover("fork"))? {
        ForkResult::Child => {
            drop(ours);
            let made = (|| {
                if let Plan::JoinUserns { userns } = plan {
                    crate::privilege::enter::enter_userns(userns)
                        .map_err(|e| SealedError::EnterUserns(e).to_string())?;
                }
                in_netns(netns, f).map_err(|e| e.to_string())?
            })();
            let sent = match made {
                Ok((bytes, fds)) => send(&theirs, &[b"o", &bytes[..]].concat(), &fds),
                Err(why) => send(&theirs, &[b"e", why.as_bytes()].concat(), &[]),
            };
            // SAFETY: ends the forked child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(if sent.is_ok() { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let got = receive(&ours);
            let _ = nix::sys::wait::waitpid(child, None);
            let (msg, fds) = got.map_err(handover("receiving them"))?;
            match msg.split_first() {
                Some((b'o', bytes)) => Ok((bytes.to_vec(), fds)),
                Some((b'e', why)) => Err(SealedError::InTarget(
                    String::from_utf8_lossy(why).into_owned(),
                )),
                _ => Err(SealedError::Handover {
                    what: "the child that makes them ended without a word",
                    source: Errno::EPIPE,
                }),
            }
        }
    }
}

/// The largest message [`made_in`] passes (names of a target's interfaces).
const MAX_MESSAGE: usize = 1 << 20;

fn send(to: &OwnedFd, msg: &[u8], fds: &[OwnedFd]) -> Result<(), Errno> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    if msg.len() > MAX_MESSAGE || fds.len() > MAX_HANDED {
        return Err(Errno::E2BIG);
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [std::io::IoSlice::new(msg)];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(to.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).map(|_| ())
}

fn receive(from: &OwnedFd) -> Result<(Vec<u8>, Vec<OwnedFd>), Errno> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; MAX_HANDED]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        from.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just installed these descriptors in this
            // process for this message; nothing else owns them.
            fds.extend(raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) || msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(Errno::EMSGSIZE);
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok((buf, fds))
}

/// What the sealed engine is started with.
pub struct Engine {
    /// The sealed copy of netshim (becomes the engine's stdin and its exe).
    pub exe: OwnedFd,
    /// Its arguments (`argv[0]` included).
    pub args: Vec<String>,
    /// Its stdout, when not netshim's own.
    pub stdout: Option<OwnedFd>,
    /// The packet sockets, then the targets' pidfds: descriptors 3, 4, ...
    pub fds: Vec<OwnedFd>,
    /// A process of the target: when it exits, the engine gets SIGTERM.
    pub watch: Option<i32>,
    /// A child of netshim's that is not the engine (the rotation writer).
    pub spare: Option<i32>,
}

/// Reads exactly `buf.len()` bytes from a pipe; false at its end.
fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn write_file(path: &str, data: &str) -> Result<(), SealedError> {
    std::fs::write(path, data).map_err(|e| SealedError::Spawn {
        what: "writing the engine's ID map",
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// Starts the engine, forwards signals to it and returns its exit status as
/// a shell reports it.
pub fn run(engine: Engine) -> Result<i32, SealedError> {
    let spawn = |what| move |source| SealedError::Spawn { what, source };
    // The engine is a grandchild (see `child`), adopted once its parent
    // exits.
    crate::supervise::become_subreaper().map_err(spawn("becoming its subreaper"))?;
    let (mask, mut sfd) = crate::supervise::forwarding_signals().map_err(spawn("a signalfd"))?;
    let (up_r, up_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(spawn("a pipe"))?;
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(spawn("a pipe"))?;
    let argv: Vec<std::ffi::CString> = engine
        .args
        .iter()
        .map(|a| std::ffi::CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let env = [c"PATH=/usr/sbin:/usr/bin:/sbin:/bin", c"HOME=/"];

    // SAFETY: netshim is single-threaded here (the socket thread was
    // joined); the child only makes system calls, writes a message and
    // execs or _exits.
    match unsafe { nix::unistd::fork() }.map_err(spawn("fork"))? {
        ForkResult::Child => {
            drop(up_r);
            drop(go_w);
            let code = child(&engine, &argv, &env, up_w, go_r);
            // SAFETY: _exit ends the child without running the parent's
            // destructors a second time.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(up_w);
            drop(go_r);
            drop(engine.fds);
            drop(engine.stdout);
            drop(engine.exe);
            let mut b = [0u8; 1];
            let ready = nix::unistd::read(up_r.as_raw_fd(), &mut b).unwrap_or(0) == 1;
            if ready {
                let pid = child.as_raw();
                write_file(&format!("/proc/{pid}/setgroups"), "deny")?;
                write_file(
                    &format!("/proc/{pid}/uid_map"),
                    &format!("{ENGINE_ID} {ENGINE_ID} 1\n"),
                )?;
                write_file(
                    &format!("/proc/{pid}/gid_map"),
                    &format!("{ENGINE_ID} {ENGINE_ID} 1\n"),
                )?;
                let _ = nix::unistd::write(&go_w, b"m");
            }
            drop(go_w);
            // The engine's PID, from its parent once it has forked it.
            let mut p = [0u8; 4];
            let engine_pid = (ready && read_exact(&up_r, &mut p))
                .then(|| nix::unistd::Pid::from_raw(i32::from_ne_bytes(p)));
            let Some(engine_pid) = engine_pid else {
                let status = nix::sys::wait::waitpid(child, None)
                    .ok()
                    .and_then(crate::supervise::exit_status)
                    .unwrap_or(125);
                let _ = mask.thread_unblock();
                return Err(SealedError::Setup(status));
            };
            let watch = engine
                .watch
                .and_then(|p| Some((p, crate::kernel::ns::pidfd_open(p).ok()?)));
            let status =
                crate::supervise::wait_forwarding(engine_pid, &mut sfd, None, watch, engine.spare)
                    .map_err(SealedError::Wait)?;
            // Nothing is left: the engine was PID 1 of its namespace, whose
            // other processes the kernel killed when it exited, and its
            // parent exited before it.
            let _ = mask.thread_unblock();
            Ok(status)
        }
    }
}

/// Covers the host's `/proc` with a procfs of the engine's PID namespace,
/// in its own mount namespace: no other process is visible through it.
///
/// Kernel rules: the mount namespace was made by a process in the engine's
/// user namespace, which is less privileged than the one its mounts were
/// copied from, so they are locked and receive the host's events without
/// sending any (mount_namespaces(7)); `MS_REC | MS_SLAVE` says so
/// explicitly. Mounting procfs needs `CAP_SYS_ADMIN` over the user namespace
/// owning the caller's PID namespace (this process holds every capability
/// in the one it made), an uncovered procfs already visible in the mount
/// namespace, and flags no weaker than that one's: `nosuid,nodev,noexec`
/// are all given. procfs shows the PID namespace of the mounting process.
fn own_proc() -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    crate::privilege::enter::make_root_slave()?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
}

/// The child's side: new namespaces, no privileges, the descriptors in
/// place, exec. Returns an exit status only on failure.
fn child(
    engine: &Engine,
    argv: &[std::ffi::CString],
    env: &[&std::ffi::CStr],
    up: OwnedFd,
    go: OwnedFd,
) -> i32 {
    let fail = |what: &str, e: Errno| {
        eprintln!("netshim: sealed engine: {what}: {e}");
        125
    };
    use nix::sched::{unshare, CloneFlags};
    // No controlling terminal: a session of its own has none (setsid(2));
    // a forked child is never a process group leader, so this succeeds.
    // The engine then cannot reach the operator's terminal as its own
    // (/dev/tty, TIOCSTI on it); netshim forwards SIGINT from there.
    if let Err(e) = nix::unistd::setsid() {
        return fail("leaving the terminal's session", e);
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
        return fail("creating its user namespace", e);
    }
    let _ = nix::unistd::write(&up, b"u");
    let mut b = [0u8; 1];
    if nix::unistd::read(go.as_raw_fd(), &mut b) != Ok(1) {
        return fail("waiting for its ID map", Errno::EIO);
    }
    if let Err(e) =
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
    {
        return fail(
            "creating its empty network namespace and its PID namespace",
            e,
        );
    }
    // The new PID namespace holds this process's children, not itself
    // (pid_namespaces(7)): the engine is its child, PID 1 there. This
    // process tells netshim the engine's PID and exits; netshim, subreaper,
    // adopts the engine.
    // SAFETY: single-threaded (forked from netshim); the child continues
    // with system calls and exec only.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => {
            let _ = nix::unistd::write(&up, &child.as_raw().to_ne_bytes());
            return 0;
        }
        Ok(ForkResult::Child) => {}
        Err(e) => return fail("starting the engine in its PID namespace", e),
    }
    drop(up);
    if let Err(e) = own_proc() {
        return fail("mounting its own /proc", e);
    }
    if let Err((what, e)) = drop_privileges() {
        return fail(what, e);
    }
    // The profile every process netshim starts in a target gets; the engine
    // narrows it with its allow-list once set up.
    if let Err(e) = crate::privilege::seccomp::install() {
        eprintln!("netshim: sealed engine: installing its seccomp filter: {e}");
        return 125;
    }
    // Descriptors: move everything handed over above the targets first, so
    // that no dup2 overwrites one still needed, then into place.
    let hi = |fd: RawFd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(1000));
    let exe = match hi(engine.exe.as_raw_fd()) {
        Ok(f) => f,
        Err(e) => return fail("moving its binary", e),
    };
    let out = match &engine.stdout {
        Some(o) => match hi(o.as_raw_fd()) {
            Ok(f) => Some(f),
            Err(e) => return fail("moving its output", e),
        },
        None => None,
    };
    let mut socks = Vec::new();
    for s in &engine.fds {
        match hi(s.as_raw_fd()) {
            Ok(f) => socks.push(f),
            Err(e) => return fail("moving its sockets", e),
        }
    }
    // SAFETY: dup2 onto descriptor numbers this child owns; the sources are
    // the high copies made above.
    unsafe {
        if libc::dup2(exe, 0) < 0 {
            return fail("placing its binary", Errno::last());
        }
        if let Some(o) = out {
            if libc::dup2(o, 1) < 0 {
                return fail("placing its output", Errno::last());
            }
        }
        for (i, s) in socks.iter().enumerate() {
            if libc::dup2(*s, 3 + i as i32) < 0 {
                return fail("placing its sockets", Errno::last());
            }
        }
        // Everything else is closed at exec (close_range(2)).
        libc::syscall(
            libc::SYS_close_range,
            3 + socks.len() as u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    if let Err(e) = SigSet::empty().thread_set_mask() {
        return fail("restoring its signal mask", e);
    }
    match nix::unistd::fexecve(0, argv, env) {
        Ok(_) => 0,
        Err(e) => fail("executing netshim's sealed copy", e),
    }
}

/// The engine's credentials: an empty bounding set, UID and GID 65534, every
/// capability set cleared, `no_new_privs`. On failure, what failed.
fn drop_privileges() -> Result<(), (&'static str, Errno)> {
    // SAFETY: PR_CAPBSET_DROP takes integers only and changes only this
    // process's bounding set.
    unsafe {
        for cap in 0..64 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
    }
    let id = nix::unistd::Uid::from_raw(ENGINE_ID);
    let gid = nix::unistd::Gid::from_raw(ENGINE_ID);
    if let Err(e) = nix::unistd::setresgid(gid, gid, gid) {
        return Err(("taking GID 65534", e));
    }
    if let Err(e) = nix::unistd::setresuid(id, id, id) {
        return Err(("taking UID 65534", e));
    }
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset with a v3 header and two data words, as capget(2)
    // documents; both live on this frame.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(("clearing its capabilities", Errno::last()));
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(("setting no_new_privs", Errno::last()));
        }
    }
    Ok(())
}
