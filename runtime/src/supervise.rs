//! What `netshim run`, the OCI runtime's foreground `run` and `exec`, and the
//! sealed engine share when they start a process and wait for it: becoming
//! subreaper, forwarding signals while waiting, reaping adopted orphans,
//! ending what a run leaves, exit statuses. One home each, so the three
//! cannot drift apart.

use std::fs;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Makes this process the subreaper of its descendants: libcontainer's init
/// is our grandchild (its parent exits once it is set up), and orphans of
/// the container are adopted by us instead of PID 1, so we can reap them.
/// Kernel rule: `PR_SET_CHILD_SUBREAPER` (prctl(2)) affects only which
/// process adopts this one's orphaned descendants.
pub fn become_subreaper() -> Result<(), Errno> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and changes only
    // which process adopts our orphaned descendants.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A process's exit status as a shell reports it: its code, or 128+N when
/// signal N ended it. None while it has not ended.
pub fn exit_status(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Whether `fd` is the character device 1:3, /dev/null.
pub fn is_dev_null(fd: i32) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| {
        st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
    })
}

/// A stand-in for a `/dev/null` stdout or stderr: `/dev/zero` opened
/// write-only, which discards writes the same way. libcontainer 0.7
/// replaces any stdio descriptor that is `/dev/null` with the container's
/// `/dev/null` opened read-only, so the container's writes fail with EBADF
/// (runc's reopened one is writable); a `/dev/zero` is left alone.
pub fn discarding_output() -> std::io::Result<OwnedFd> {
    Ok(fs::OpenOptions::new().write(true).open("/dev/zero")?.into())
}

/// Puts [`discarding_output`] in place of this process's stdout and stderr
/// where they are `/dev/null`, for the container that inherits them.
pub fn keep_null_output_writable() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    for fd in [1, 2] {
        if is_dev_null(fd) {
            let zero = discarding_output()?;
            nix::unistd::dup2(zero.as_raw_fd(), fd)?;
        }
    }
    Ok(())
}

/// Start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`): with the PID it names one process uniquely.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Ends what is left of a run whose init process has exited or been killed:
/// its process group (libcontainer's init calls `setsid`, so the group is
/// the init's PID and holds what the command started without job control),
/// then every process netshim adopted as a child subreaper — orphans of the
/// run, since netshim starts no other children — and reaps them.
pub(crate) fn end_leftovers(init: i32, spare: Option<i32>) {
    let _ = kill(Pid::from_raw(-init), Signal::SIGKILL);
    for _ in 0..100 {
        let children = adopted_children(spare);
        if children.is_empty() {
            break;
        }
        for c in &children {
            let _ = kill(Pid::from_raw(*c), Signal::SIGKILL);
        }
        for c in children {
            let _ = waitpid(Pid::from_raw(c), None);
        }
    }
}

/// Runs `make` (which creates a container's processes) with SIGPIPE
/// caught by a handler that does nothing, then puts netshim's disposition
/// back.
///
/// Rust's runtime ignores SIGPIPE in netshim, so that a closed pipe is an
/// EPIPE error netshim can report; and an ignored signal stays ignored in
/// children and across execve, while a caught one is reset to its default
/// at execve (signal(7)). With SIGPIPE ignored, the command would start
/// with it ignored, where a shell's or runc's command does not (`yes | head
/// -1` in it printed write errors instead of ending quietly). A handler
/// keeps netshim's writes to a closed pipe returning EPIPE meanwhile (its
/// log on a closed stderr, say), where the default would end netshim.
pub(crate) fn with_default_sigpipe<T>(make: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{signal, SigHandler};
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: the handler does nothing, which is async-signal-safe; netshim
    // is single-threaded on this path.
    let before = unsafe { signal(Signal::SIGPIPE, SigHandler::Handler(nothing)) };
    let made = make();
    if let Ok(h) = before {
        // SAFETY: puts back the disposition read above (SIG_IGN from Rust's
        // runtime, or what the caller set).
        let _ = unsafe { signal(Signal::SIGPIPE, h) };
    }
    made
}

/// This process's children, from `/proc/self/task/*/children`, but `spare`.
pub(crate) fn adopted_children(spare: Option<i32>) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    v.retain(|p| Some(*p) != spare);
    v.sort_unstable();
    v.dedup();
    v
}

/// Signals netshim passes on to the process in the target.
pub(crate) const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
];

/// Blocks the signals netshim passes on (and SIGCHLD, SIGWINCH) and returns
/// the mask and a signalfd that receives them, for [`wait_forwarding`].
/// Processes started before this keep them unblocked.
pub(crate) fn forwarding_signals() -> Result<(SigSet, SignalFd), Errno> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    mask.thread_block()?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)?;
    Ok((mask, sfd))
}

/// Waits for `pid`, forwarding signals to it and reaping any orphan that
/// lands on us (we are a subreaper). Returns the shell-style status.
pub(crate) fn wait_forwarding(
    pid: Pid,
    sfd: &mut SignalFd,
    mut term: Option<&mut crate::launch::tty::Proxy>,
    mut watch: Option<(i32, OwnedFd)>,
    spare: Option<i32>,
) -> Result<i32, Errno> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        // Reap first (the process may have exited before we waited): the
        // init and any orphan adopted, one by one, never the spare child.
        for child in adopted_children(spare) {
            match waitpid(Pid::from_raw(child), Some(WaitPidFlag::WNOHANG)) {
                Ok(ws) if ws.pid() == Some(pid) && exit_status(ws).is_some() => {
                    return Ok(exit_status(ws).expect("checked"));
                }
                Ok(_) | Err(Errno::ECHILD) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some((target, fd)) = &watch {
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                // A pidfd polls readable once its process has exited.
                eprintln!("netshim: the target's process {target} exited; ending the command");
                let _ = kill(pid, Signal::SIGTERM);
                watch = None;
                continue;
            }
            if !fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                continue;
            }
        }
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        match sig {
            Signal::SIGCHLD => {}
            Signal::SIGWINCH => {
                if let Some(t) = term.as_deref_mut() {
                    t.resize();
                }
            }
            s => {
                tracing::debug!(signal = %s, %pid, "forwarding");
                let _ = kill(pid, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn statuses_read_as_a_shell_reads_them() {
        let pid = nix::unistd::Pid::from_raw(1);
        assert_eq!(exit_status(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            exit_status(WaitStatus::Signaled(
                pid,
                nix::sys::signal::Signal::SIGKILL,
                false
            )),
            Some(137)
        );
        assert_eq!(exit_status(WaitStatus::StillAlive), None);
    }

    /// Runs `f` in a forked child, where this process's threads (the test
    /// harness's) do not exist: being subreaper, blocking signals and
    /// reaping every child there touches no other test. Returns what `f`
    /// returned, or the reason it failed.
    fn in_forked_child(f: fn() -> Result<(), &'static str>) -> Result<(), String> {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child runs `f` (async-signal-safe calls, plus reads of
        // /proc, which allocate: glibc's malloc is reset in a forked child)
        // and leaves with _exit, never returning into the harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                drop(r);
                let why = match f() {
                    Ok(()) => "",
                    Err(why) => why,
                };
                let _ = nix::unistd::write(&w, why.as_bytes());
                // SAFETY: ends the child without the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(w);
                let mut why = String::new();
                std::io::Read::read_to_string(&mut fs::File::from(r), &mut why).unwrap();
                let st = waitpid(child, None).unwrap();
                if st != WaitStatus::Exited(child, 0) {
                    return Err(format!("the forked child ended as {st:?}"));
                }
                if why.is_empty() {
                    Ok(())
                } else {
                    Err(why)
                }
            }
        }
    }

    /// Forks a child that runs `f` and leaves with _exit(0).
    fn spawn(f: impl FnOnce()) -> Pid {
        // SAFETY: the child runs `f` and _exits; it never returns.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                f();
                // SAFETY: ends the child without the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => child,
        }
    }

    /// A run as the supervisor sees it: an init that starts a process of its
    /// own and waits for a signal. A SIGTERM sent to the supervisor reaches
    /// the init (which dies of it: 143), the orphan it leaves is adopted and
    /// ended with the run's process group, and a spare child is neither
    /// reaped nor ended.
    #[test]
    fn signals_reach_the_init_and_its_orphans_are_adopted_and_ended() {
        in_forked_child(|| {
            become_subreaper().map_err(|_| "PR_SET_CHILD_SUBREAPER")?;
            let spare = spawn(|| {
                std::thread::sleep(std::time::Duration::from_secs(30));
            });
            let (mask, mut sfd) = forwarding_signals().map_err(|_| "signalfd")?;
            let (r, w) = nix::unistd::pipe().map_err(|_| "pipe")?;
            let init = spawn(move || {
                let _ = mask.thread_unblock();
                let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
                spawn(|| std::thread::sleep(std::time::Duration::from_secs(30)));
                let _ = nix::unistd::write(&w, b"r");
                loop {
                    nix::unistd::pause();
                }
            });
            let mut b = [0u8; 1];
            if nix::unistd::read(r.as_raw_fd(), &mut b) != Ok(1) {
                return Err("the init did not start its child");
            }
            kill(Pid::from_raw(std::process::id() as i32), Signal::SIGTERM).map_err(|_| "kill")?;
            let status = wait_forwarding(init, &mut sfd, None, None, Some(spare.as_raw()))
                .map_err(|_| "wait_forwarding failed")?;
            if status != 128 + libc::SIGTERM {
                return Err("the init's status is not 143 (SIGTERM forwarded)");
            }
            let orphans = adopted_children(Some(spare.as_raw()));
            if orphans.len() != 1 {
                return Err("the init's child was not adopted");
            }
            end_leftovers(init.as_raw(), Some(spare.as_raw()));
            if !adopted_children(Some(spare.as_raw())).is_empty() {
                return Err("an orphan was left");
            }
            if kill(spare, None).is_err() {
                return Err("the spare child was ended");
            }
            let _ = kill(spare, Signal::SIGKILL);
            let _ = waitpid(spare, None);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn dev_null_is_told_apart_and_the_stand_in_discards() {
        let null = fs::File::open("/dev/null").unwrap();
        assert!(is_dev_null(null.as_raw_fd()));
        let zero = discarding_output().unwrap();
        assert!(!is_dev_null(zero.as_raw_fd()));
        assert_eq!(nix::unistd::write(&zero, b"discarded").unwrap(), 9);
    }
}
