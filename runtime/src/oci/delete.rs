//! `delete`: the container, its cgroups and state removed; poststop hooks
//! run afterwards, a failure logged, as runc does.

use super::cgroups::ExtraCgroups;
use super::*;

impl Runtime {
    /// `delete`: with `force`, a container that is not stopped is killed
    /// first, and a missing container is not an error (as with runc).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        validate_id(id)?;
        let _ = crate::statedir::remove_tree(&self.staging(id));
        let mut c = match self.load(id) {
            Ok(c) => c,
            Err(OciError::NotFound(_)) => {
                // An aborted create can leave a directory without state.
                let dir = self.root.join(id);
                if dir.is_dir() {
                    let _ = crate::statedir::remove_tree(&dir);
                }
                return if force {
                    // As runc: nothing left to delete is no error with --force
                    // (containerd's clean-up after a shim runs this for a
                    // container its task delete already removed).
                    tracing::info!(id, "delete --force: no such container (already deleted)");
                    Ok(())
                } else {
                    Err(OciError::NotFound(id.into()))
                };
            }
            Err(e) => return Err(e),
        };
        if !force
            && !matches!(
                c.status(),
                ContainerStatus::Stopped | ContainerStatus::Created
            )
        {
            return Err(OciError::WrongStatus {
                id: id.into(),
                status: status_name(c.status()).into(),
                what: "delete without --force",
                need: "stopped (or use --force)",
            });
        }
        // runc deletes a created container without --force by killing it.
        let force = force || c.status() == ContainerStatus::Created;
        // The runtime spec: a poststop hook that fails is logged and the
        // delete goes on (runc logs it and exits 0). libcontainer fails the
        // delete instead, and every later one, so the hooks are taken out of
        // its record here and run once the container is gone.
        let poststop = take_poststop_hooks(&self.root.join(id));
        let cgroup_path = libcontainer::config::YoukiConfig::load(self.root.join(id))
            .ok()
            .map(|c| c.cgroup_path);
        c.delete(force).map_err(OciError::lc("delete", id))?;
        if let Some(p) = cgroup_path.filter(|_| privileged() && !self.systemd_cgroup) {
            ExtraCgroups::remove(&p);
        }
        if let Some(hooks) = poststop {
            // As runc: a stopped container's state has no pid.
            let mut state = c.state.clone();
            state.status = ContainerStatus::Stopped;
            state.pid = None;
            if let Err(e) =
                libcontainer::hooks::run_hooks(Some(&hooks), Some(&state), None, None, None)
            {
                tracing::error!(id, "poststop hook failed (the container is deleted): {e}");
            }
        }
        Ok(())
    }
}

/// Removes the poststop hooks from libcontainer's record of a container
/// (`youki_config.json` in its state directory) and returns them.
pub(super) fn take_poststop_hooks(dir: &Path) -> Option<Vec<oci_spec::runtime::Hook>> {
    use libcontainer::config::YoukiConfig;
    let mut cfg = YoukiConfig::load(dir).ok()?;
    let hooks = cfg.hooks.as_mut()?;
    let taken = hooks.poststop().clone().filter(|h| !h.is_empty())?;
    hooks.set_poststop(None);
    if let Err(e) = cfg.save(dir) {
        tracing::warn!(dir = %dir.display(), "cannot rewrite the container's record: {e}");
        return None;
    }
    Some(taken)
}
