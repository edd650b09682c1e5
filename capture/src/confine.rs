//! The engine's seccomp allow-list, installed once its rings and output are
//! set up: from then on it only moves packets from rings to its output.
//!
//! Kernel rules: under `no_new_privs` (every process netshim starts in a
//! target has it; for a local capture netshim sets it first) an
//! unprivileged process may add a seccomp filter; filters stack, so this
//! one narrows the deny-list the process was started with and can never be
//! removed. A syscall outside the list fails with EPERM, so a mistake
//! surfaces as an error message naming the operation, not as a crash.
//!
//! `ioctl` is allowed for [`IOCTLS`] only: the engine's only ioctls after
//! set-up are terminal queries (`isatty` is TCGETS); SIOCGIFHWADDR on a
//! packet socket comes before the filter. A terminal's TIOCSTI (which
//! pushes input into a terminal, as if typed: a command for the operator's
//! shell) or TIOCSETD and the like fail with EPERM. The engine also has no
//! controlling terminal: [`detach_terminal`] comes first.

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

/// What the capture loop, its teardown and Rust's runtime (allocation,
/// panics, signals) use. Notably absent: socket, bind, connect, open,
/// execve, clone, fork, ptrace, mount, unshare, setns.
const ALLOWED: &[&str] = &[
    // The loop: rings, the signalfd, the output.
    "poll",
    "ppoll",
    "read",
    "readv",
    "write",
    "writev",
    "pwrite64",
    "lseek",
    "ftruncate",
    "fsync",
    "fdatasync",
    "getsockopt",
    "fstat",
    "newfstatat",
    "statx",
    "fcntl",
    "close",
    // Memory.
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    // Time and threads of Rust's runtime.
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    // The stall timeout of a pipe output (SIGALRM).
    "setitimer",
    "futex",
    "sched_yield",
    "getrandom",
    // Signals, exit and abort.
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "getpid",
    "gettid",
    "tgkill",
    "exit",
    "exit_group",
];

/// The ioctl requests the confined engine may make: TCGETS, which
/// `isatty` is (a read of the terminal's settings).
// The request's type differs between C libraries (c_ulong, c_int).
#[allow(clippy::unnecessary_cast)]
pub const IOCTLS: &[u64] = &[libc::TCGETS as u64];

#[derive(Debug, thiserror::Error)]
#[error("cannot install the engine's seccomp filter: {0}")]
pub struct ConfineError(String);

/// Leaves the controlling terminal, if any, by starting a session of its
/// own.
///
/// Kernel rule (setsid(2), credentials(7)): a new session has no
/// controlling terminal, and a process that opens a terminal later (the
/// engine opens nothing once confined) acquires it only as a session leader
/// without `O_NOCTTY`. setsid fails with EPERM for a process group leader:
/// the sealed engine calls it in its child before exec
/// (`netshim_runtime::sealed`); the engine libcontainer starts is a session
/// leader with no terminal already (its init calls setsid). So EPERM is
/// not an error here.
pub fn detach_terminal() -> Result<(), ConfineError> {
    match nix::unistd::setsid() {
        Ok(_) | Err(nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => Err(ConfineError(format!("setsid: {e}"))),
    }
}

/// Installs the allow-list on the calling process (all its threads).
pub fn confine() -> Result<(), ConfineError> {
    detach_terminal()?;
    let err = |e: libseccomp::error::SeccompError| ConfineError(e.to_string());
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments and only ever
    // reduces what the process may gain; it is already set in a target.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ConfineError(std::io::Error::last_os_error().to_string()));
    }
    let mut ctx = ScmpFilterContext::new(ScmpAction::Errno(libc::EPERM)).map_err(err)?;
    for name in ALLOWED {
        // Names this architecture lacks (ppoll vs poll, ...) are skipped.
        if let Ok(sc) = ScmpSyscall::from_name(name) {
            ctx.add_rule(ScmpAction::Allow, sc).map_err(err)?;
        }
    }
    // The kernel reads the request as an `unsigned int` (ioctl(2)): only
    // its low 32 bits are compared, so upper bits cannot disguise one.
    let ioctl = ScmpSyscall::from_name("ioctl").map_err(err)?;
    for &req in IOCTLS {
        ctx.add_rule_conditional(
            ScmpAction::Allow,
            ioctl,
            &[ScmpArgCompare::new(
                1,
                ScmpCompareOp::MaskedEqual(u64::from(u32::MAX)),
                req,
            )],
        )
        .map_err(err)?;
    }
    ctx.set_ctl_tsync(true).map_err(err)?;
    ctx.load().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confined_child_may_write_but_not_open_or_make_sockets() {
        // In a child, so the test process stays unconfined.
        // SAFETY: the child only calls async-signal-safe functions and
        // _exit; it does not return into the test harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = confine().is_ok()
                    && std::fs::File::open("/etc/hostname").is_err()
                    // SAFETY: socket() takes integers.
                    && unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) } < 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                // SAFETY: _exit ends the child without running destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    /// `tty_nr` (field 7 of `/proc/PID/stat`): 0 without a controlling
    /// terminal.
    fn tty_nr(pid: i32) -> i64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &s[s.rfind(')').unwrap() + 2..];
        rest.split_whitespace().nth(4).unwrap().parse().unwrap()
    }

    /// A confined process has no controlling terminal and cannot push input
    /// into a terminal (TIOCSTI), even one it holds open; it may still ask
    /// whether a descriptor is a terminal (TCGETS).
    #[test]
    fn a_confined_child_has_no_terminal_and_cannot_push_input() {
        use std::os::fd::AsRawFd;
        let pty = nix::pty::openpty(None, None).unwrap();
        let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
        let (go_r, go_w) = nix::unistd::pipe().unwrap();
        let (res_r, res_w) = nix::unistd::pipe().unwrap();
        // SAFETY: the children make system calls and _exit; neither returns
        // into the test harness.
        let leader = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // A session whose controlling terminal is the pty (the
                // operator's terminal), and in it the engine-to-be.
                let _ = nix::unistd::setsid();
                // SAFETY: TIOCSCTTY takes an integer argument.
                unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
                // SAFETY: as above.
                match unsafe { nix::unistd::fork() }.unwrap() {
                    nix::unistd::ForkResult::Child => {
                        let mut b = [0u8; 1];
                        let _ = nix::unistd::write(&ready_w, b"r");
                        let _ = nix::unistd::read(go_r.as_raw_fd(), &mut b);
                        let c: libc::c_char = b'x' as libc::c_char;
                        // SAFETY: TIOCSTI reads one byte from the pointer.
                        let before =
                            unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSTI, &c) };
                        let confined = confine().is_ok();
                        // SAFETY: as above.
                        let sti = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSTI, &c) };
                        let sti_err = std::io::Error::last_os_error().raw_os_error();
                        // SAFETY: termios is plain old data; TCGETS writes
                        // one into this local.
                        let mut t: libc::termios = unsafe { std::mem::zeroed() };
                        // SAFETY: as above.
                        let tcgets =
                            unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TCGETS, &mut t) };
                        let code = [
                            confined,
                            sti == -1 && sti_err == Some(libc::EPERM),
                            tcgets == 0,
                            // As root (CAP_SYS_ADMIN), TIOCSTI works unconfined.
                            before == 0 || !nix::unistd::geteuid().is_root(),
                        ];
                        let out: Vec<u8> = code.iter().map(|&b| b as u8).collect();
                        let _ = nix::unistd::write(&res_w, &out);
                        let _ = nix::unistd::read(go_r.as_raw_fd(), &mut b);
                        // SAFETY: ends the child without running destructors.
                        unsafe { libc::_exit(0) }
                    }
                    nix::unistd::ForkResult::Parent { child } => {
                        let st = nix::sys::wait::waitpid(child, None);
                        let ok = matches!(st, Ok(nix::sys::wait::WaitStatus::Exited(_, 0)));
                        // SAFETY: ends the child without running destructors.
                        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
                    }
                }
            }
            nix::unistd::ForkResult::Parent { child } => child,
        };
        drop(ready_w);
        drop(res_w);
        let mut b = [0u8; 4];
        assert_eq!(nix::unistd::read(ready_r.as_raw_fd(), &mut b[..1]), Ok(1));
        // The engine-to-be is the leader's only child.
        let children =
            std::fs::read_to_string(format!("/proc/{leader}/task/{leader}/children")).unwrap();
        let engine: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
        assert_ne!(tty_nr(engine), 0, "before: the pty is its terminal");
        nix::unistd::write(&go_w, b"g").unwrap();
        let mut got = 0;
        while got < 4 {
            let n = nix::unistd::read(res_r.as_raw_fd(), &mut b[got..]).unwrap();
            assert!(n > 0, "the confined child ended early");
            got += n;
        }
        let tty_after = tty_nr(engine);
        nix::unistd::write(&go_w, b"g").unwrap();
        let st = nix::sys::wait::waitpid(leader, None).unwrap();
        assert_eq!(
            b,
            [1, 1, 1, 1],
            "confined, TIOCSTI EPERM, TCGETS ok, TIOCSTI ok before"
        );
        assert_eq!(tty_after, 0, "confined: no controlling terminal");
        assert_eq!(st, nix::sys::wait::WaitStatus::Exited(leader, 0));
    }
}
