//! `update`: new resources applied to the container's cgroup.

use super::*;

impl Runtime {
    /// `update --resources`: applies a LinuxResources JSON to the cgroup.
    pub fn update(&self, id: &str, resources: &Value) -> Result<(), OciError> {
        validate_id(id)?;
        use libcgroups::common::{CgroupManager, ControllerOpt};
        let res: oci_spec::runtime::LinuxResources = serde_json::from_value(resources.clone())
            .map_err(|e| OciError::Malformed {
                path: PathBuf::from("the resources"),
                reason: e.to_string(),
            })?;
        let c = self.load(id)?;
        let m = self.cgroup_manager(&c)?;
        m.apply(&ControllerOpt {
            resources: &res,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| OciError::Cgroup {
            id: id.into(),
            reason: e.to_string(),
        })
    }
}
