//! `run` in the foreground: create, start, forward signals, wait, delete.

use super::*;

/// `run` in the foreground: create, start, forward signals and wait; the
/// exit status is the container's, as a shell reports it.
pub fn run_foreground(rt: &Runtime, id: &str, opts: &CreateOptions) -> Result<i32, OciError> {
    validate_id(id)?;
    // The init is our grandchild; as subreaper, netshim adopts and reaps it.
    crate::supervise::become_subreaper().map_err(OciError::Wait)?;
    let mut c = rt.create_inner(id, opts, false)?;
    let pid = c.pid().map(|p| p.as_raw()).unwrap_or(0);
    let (mask, mut sfd) = crate::supervise::forwarding_signals().map_err(OciError::Wait)?;
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(OciError::lc("start", id)(e));
    }
    let status = crate::supervise::wait_forwarding(
        nix::unistd::Pid::from_raw(pid),
        &mut sfd,
        None,
        None,
        None,
    )
    .map_err(OciError::Wait)?;
    let _ = mask.thread_unblock();
    if let Err(e) = rt.delete(id, true) {
        tracing::warn!(id, "removing the container after its run: {e}");
    }
    Ok(status)
}
