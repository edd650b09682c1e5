//! The engine's seccomp allow-list, installed once its rings and output are
//! set up: from then on it only moves packets from rings to its output.
//!
//! Kernel rules: under `no_new_privs` (every process netshim starts in a
//! target has it; for a local capture netshim sets it first) an
//! unprivileged process may add a seccomp filter; filters stack, so this
//! one narrows the deny-list the process was started with and can never be
//! removed. A syscall outside the list fails with EPERM, so a mistake
//! surfaces as an error message naming the operation, not as a crash.

use libseccomp::{ScmpAction, ScmpFilterContext, ScmpSyscall};

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
    "ioctl",
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

#[derive(Debug, thiserror::Error)]
#[error("cannot install the engine's seccomp filter: {0}")]
pub struct ConfineError(String);

/// Installs the allow-list on the calling process (all its threads).
pub fn confine() -> Result<(), ConfineError> {
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
}
