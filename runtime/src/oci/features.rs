//! `features`: the OCI features document.

use super::*;

/// The OCI features document (`netshim features`).
pub fn features() -> Value {
    let caps: Vec<String> = (0..=40u8)
        .filter_map(crate::kernel::caps::Cap::from_bit)
        .map(|c| c.to_string())
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rprivate",
                         "slave", "rslave", "shared", "rshared", "relatime", "norelatime", "strictatime", "nodiratime"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false}
        },
        "annotations": {
            policy::ANNOTATION: "capabilities to make ambient for a non-root process, e.g. NET_RAW (allowed by default: NET_RAW, NET_BIND_SERVICE)"
        },
        "x-netshim": {
            "processCapabilities": "applied as the spec gives them, all five sets, as runc applies them; netshim adds ambient capabilities only when asked (the annotation, --ambient-caps, the config's default)",
            "linux.resources.memory.disableOOMKiller": "applied by netshim on cgroup v1 (memory.oom_control), as runc; ignored on cgroup v2, as runc",
            "hooks.poststop": "a failing poststop hook is logged and the delete goes on, as runc"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_name_the_annotation() {
        let f = features();
        assert!(f["annotations"][policy::ANNOTATION].is_string());
        assert!(f["x-netshim"]["linux.resources.memory.disableOOMKiller"].is_string());
        assert_eq!(f["linux"]["capabilities"].as_array().unwrap().len(), 41);
    }
}
