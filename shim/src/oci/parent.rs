//! Exiting only once containerd's shim clean-up is waiting for this process.
//!
//! After every task delete (`ctr run --rm`, a pod's teardown) containerd
//! runs the runc v2 shim binary once more, as `containerd-shim-runc-v2 ...
//! delete`, which runs `RUNTIME --root R --log L delete --force ID` for a
//! container the task delete has already removed. That process (containerd
//! 1.6 and later) reaps every child on SIGCHLD with `wait4(-1)` while go-runc
//! waits for the runtime with `exec.Cmd.Wait`; when the reaper takes the exit
//! status first, the Wait fails with ECHILD and go-runc reports "exit status
//! 255" with no output, whatever the runtime exited with. containerd then
//! logs "failed to remove runc container ... did not terminate successfully:
//! exit status 255: " and goes on (issue 28). It happens to runc too (the
//! integration test `oci_teardown` counts both, and the kernel's process
//! accounting shows every netshim process there exited 0); it cannot be
//! fixed from the runtime's side.
//!
//! What netshim can do is not make it likelier: its `delete` takes about a
//! millisecond, less than a loaded (or emulated) machine may take to begin
//! the Wait, while runc takes tens. So, only under that clean-up process
//! (the parent's name begins `containerd-shim` and its last argument is
//! `delete`), `delete` exits once one of the parent's threads sleeps in the
//! kernel's `do_wait` (the Wait has begun), or after [`LIMIT`].

use std::time::{Duration, Instant};

/// The longest `delete` waits for the shim to begin its Wait.
const LIMIT: Duration = Duration::from_secs(2);

/// Whether `pid` is containerd's shim running its `delete` (clean-up) action.
fn is_shim_cleanup(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.starts_with("containerd-shim") {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    last_arg_is_delete(&cmdline)
}

fn last_arg_is_delete(cmdline: &[u8]) -> bool {
    cmdline
        .strip_suffix(b"\0")
        .unwrap_or(cmdline)
        .rsplit(|b| *b == 0)
        .next()
        .is_some_and(|a| a == b"delete")
}

/// Whether a thread of `pid` sleeps in `do_wait` (waitid/wait4 for a child).
fn parent_waits(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.starts_with("do_wait"))
    })
}

/// Returns once containerd's shim clean-up (if it is the parent) is waiting
/// for this process, so that the exit status reaches go-runc; at once for any
/// other parent.
pub(super) fn wait_for_shim_cleanup() {
    let ppid = std::os::unix::process::parent_id();
    if !is_shim_cleanup(ppid) {
        return;
    }
    let start = Instant::now();
    while !parent_waits(ppid) {
        if start.elapsed() > LIMIT {
            tracing::warn!(
                "containerd's shim (PID {ppid}) did not begin waiting for this delete within {} s; \
                 it may report \"exit status 255\" although the delete succeeded",
                LIMIT.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    tracing::debug!(
        "containerd's shim clean-up (PID {ppid}) waits for this delete after {} µs",
        start.elapsed().as_micros()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shims_delete_action_is_recognised() {
        assert!(last_arg_is_delete(
            b"containerd-shim-runc-v2\0-namespace\0default\0-id\0x\0delete\0"
        ));
        assert!(!last_arg_is_delete(
            b"containerd-shim-runc-v2\0-namespace\0default\0-id\0x\0-address\0/run/c.sock\0"
        ));
        assert!(!last_arg_is_delete(b""));
        // This process's own parent (the test harness) is no shim.
        assert!(!is_shim_cleanup(std::os::unix::process::parent_id()));
    }

    #[test]
    fn a_parent_blocked_in_wait_is_seen() {
        // bash waits for its child in wait4 (dash's `wait` sleeps in
        // sigsuspend instead): its thread sleeps in do_wait.
        let mut sh = std::process::Command::new("bash")
            .args(["-c", "sleep 1 & wait"])
            .spawn()
            .unwrap();
        let pid = sh.id();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !parent_waits(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(parent_waits(pid), "bash -c 'sleep & wait' is in do_wait");
        assert!(sh.wait().unwrap().success());
        assert!(!parent_waits(pid), "an ended process waits for nothing");
    }
}
