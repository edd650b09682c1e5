//! The init of a run's PID namespace: netshim's sealed copy, started by
//! libcontainer as the run's process (PID 1 in a PID namespace of its own),
//! starts the command as its child, passes signals on to it, reaps what
//! ends up with it, and ends with the command's status.
//!
//! Why an init: the kernel delivers a signal to the init of a PID namespace
//! only if the init has a handler for it, even when it is sent from the
//! parent namespace (pid_namespaces(7), "the init process"; SIGKILL and
//! SIGSTOP from an ancestor namespace excepted). A command such as `sleep`
//! running as PID 1 would ignore the SIGINT, SIGTERM and SIGHUP netshim
//! forwards. Here they reach the command, which is PID 2 and keeps its
//! default dispositions.
//!
//! It holds exactly what the command holds: libcontainer has set its
//! credentials, capabilities, `no_new_privs` and seccomp filter before it
//! executes. It executes from the sealed memfd
//! ([`crate::privilege::selfexec`]), never the host's binary, and makes
//! itself non-dumpable (prctl(2) `PR_SET_DUMPABLE`), so that the command,
//! with the same UID, cannot open its `/proc/1/mem` or take over its
//! descriptors (ptrace access mode checks, ptrace(2)). When it exits, the
//! kernel kills every other process of the namespace (pid_namespaces(7)).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::{ForkResult, Pid};

/// The hidden command line word with which netshim's binary runs as the
/// init: `netshim run-init CMD [ARG...]`.
pub const COMMAND: &str = "run-init";

/// The process arguments of a run: the init from `exe` (a path to the
/// sealed copy, as the process sees it), then the command.
pub fn argv(exe: &str, command: &[String]) -> Vec<String> {
    [exe.to_string(), COMMAND.to_string()]
        .into_iter()
        .chain(command.iter().cloned())
        .collect()
}

/// Runs the init; returns the status to exit with: the command's, 128+N if
/// signal N ended it, 127 if it could not be found, 126 if it could not be
/// executed, 125 if the init itself failed.
pub fn main(command: &[OsString]) -> i32 {
    let fail = |what: &str, e: Errno| {
        eprintln!("netshim: run init: {what}: {e}");
        125
    };
    if command.is_empty() {
        return fail("no command", Errno::EINVAL);
    }
    let argv: Vec<CString> = match command.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => return fail("a command argument holds a NUL byte", Errno::EINVAL),
    };
    // SAFETY: PR_SET_DUMPABLE takes integer arguments and only changes who
    // may inspect this process (owner root, no ptrace access for the UID).
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return fail("making itself non-dumpable", Errno::last());
    }
    // Its name in `ps` (the kernel named it after the descriptor it was
    // executed through).
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"netshim-init".as_ptr(), 0, 0, 0) };
    // Every signal is blocked from here on and taken with sigwait: none is
    // lost between the fork and the loop, and none runs a handler.
    let all = SigSet::all();
    let before = match all.thread_swap_mask(SigmaskHow::SIG_SETMASK) {
        Ok(m) => m,
        Err(e) => return fail("blocking signals", e),
    };
    let tty = nix::unistd::isatty(0).unwrap_or(false);
    // SAFETY: the init is single-threaded; the child only makes system
    // calls, then executes the command or _exits.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => exec_command(&argv, &before, tty),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return fail("starting the command", e),
    };
    loop {
        // Raw numbers: a real-time signal (which nix's Signal cannot name)
        // is passed on like any other.
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait reads the set and writes one signal number into
        // the local; both outlive the call.
        let r = unsafe { libc::sigwait(all.as_ref(), &mut sig) };
        if r != 0 {
            if r == libc::EINTR {
                continue;
            }
            let _ = kill(child, Signal::SIGKILL);
            return fail("waiting for signals", Errno::from_raw(r));
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill takes integers; the child is ours (reaped only
            // below, so its PID is not reused meanwhile).
            unsafe { libc::kill(child.as_raw(), sig) };
            continue;
        }
        // Reap every child that has ended: the command, or an orphan of the
        // namespace (the init adopts them all).
        // Raw statuses too: nix cannot name a real-time signal, and would
        // report an error for a child it has already reaped.
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes one status into the local.
            let p = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if p <= 0 {
                break;
            }
            if p == child.as_raw() {
                if libc::WIFEXITED(status) {
                    return libc::WEXITSTATUS(status);
                }
                if libc::WIFSIGNALED(status) {
                    return 128 + libc::WTERMSIG(status);
                }
            }
        }
    }
}

/// The child's side: a process group of its own, which is the terminal's
/// foreground group with `-t` (Ctrl-C there signals the command, not the
/// init), the signal mask the init started with, and the command.
fn exec_command(argv: &[CString], mask: &SigSet, tty: bool) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if tty {
        // A background group may set the foreground group while SIGTTOU is
        // blocked (tcsetpgrp(3)); it is, until the mask is put back below.
        let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpid());
    }
    // Rust's runtime ignores SIGPIPE in the init; an ignored signal stays
    // ignored across execve (signal(7)), so the command would inherit it.
    // It starts with the default, as from a shell.
    // SAFETY: sets the default disposition; no handler runs.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
    let _ = mask.thread_set_mask();
    let e = nix::unistd::execvp(&argv[0], argv).unwrap_err();
    eprintln!(
        "netshim: cannot execute {:?}: {e}",
        argv[0].to_string_lossy()
    );
    let code = if e == Errno::ENOENT { 127 } else { 126 };
    // SAFETY: ends the child without running the init's destructors.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_comes_first_then_the_command() {
        let v = argv("/proc/self/fd/5", &["sleep".into(), "1".into()]);
        assert_eq!(v, ["/proc/self/fd/5", COMMAND, "sleep", "1"]);
    }
}
