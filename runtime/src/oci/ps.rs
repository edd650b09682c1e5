//! `ps`: the processes in the container's cgroup.

use super::*;

impl Runtime {
    pub(super) fn cgroup_manager(
        &self,
        c: &Container,
    ) -> Result<libcgroups::common::AnyCgroupManager, OciError> {
        let id = c.id().to_string();
        let cfg = c.spec().map_err(OciError::lc("reading the cgroup", &id))?;
        libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: cfg.cgroup_path,
            systemd_cgroup: c.systemd(),
            container_name: id.clone(),
        })
        .map_err(|e| OciError::Cgroup {
            id,
            reason: e.to_string(),
        })
    }

    /// The PIDs in the container's cgroup (the init alone when it has none).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, OciError> {
        validate_id(id)?;
        use libcgroups::common::CgroupManager;
        let c = self.load(id)?;
        let mut pids: Vec<i32> = self
            .cgroup_manager(&c)
            .and_then(|m| {
                m.get_all_pids().map_err(|e| OciError::Cgroup {
                    id: id.into(),
                    reason: e.to_string(),
                })
            })
            .map(|v| v.into_iter().map(|p| p.as_raw()).collect())
            .unwrap_or_default();
        if pids.is_empty() {
            if let Some(p) = c.pid().filter(|_| c.status() != ContainerStatus::Stopped) {
                pids.push(p.as_raw());
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }
}
