//! `state` and `list`: the OCI state of containers, as runc prints it.

use super::*;

impl Runtime {
    pub fn state(&self, id: &str) -> Result<State, OciError> {
        validate_id(id)?;
        let c = self.load(id)?;
        Ok(state_of(&c))
    }

    pub fn list(&self) -> Vec<State> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.root) else {
            return out;
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| validate_id(n).is_ok())
            .collect();
        ids.sort();
        for id in ids {
            if let Ok(c) = self.load(&id) {
                out.push(state_of(&c));
            }
        }
        out
    }
}

pub(super) fn state_of(c: &Container) -> State {
    let status = c.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    let rootfs = read_json(&c.bundle().join("config.json"))
        .ok()
        .and_then(|s| Some(c.bundle().join(s.pointer("/root/path")?.as_str()?)))
        .unwrap_or_default();
    State {
        oci_version: oci_spec::runtime::VERSION.to_string(),
        id: c.id().to_string(),
        pid,
        status: status_name(status).into(),
        bundle: c.bundle().clone(),
        rootfs,
        created: c
            .created()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner: String::new(),
        annotations: c
            .state
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}
