//! What `netshim run`, the OCI runtime's foreground `run` and `exec`, and the
//! sealed engine share when they start a process and wait for it: one rule
//! each, so the three cannot drift apart.

use std::fs;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::wait::WaitStatus;

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

    #[test]
    fn dev_null_is_told_apart_and_the_stand_in_discards() {
        let null = fs::File::open("/dev/null").unwrap();
        assert!(is_dev_null(null.as_raw_fd()));
        let zero = discarding_output().unwrap();
        assert!(!is_dev_null(zero.as_raw_fd()));
        assert_eq!(nix::unistd::write(&zero, b"discarded").unwrap(), 9);
    }
}
