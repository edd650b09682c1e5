//! Reading a bundle: its config.json (bounded, parsed once for a clear
//! message), the facts netshim needs from it, and the files netshim writes
//! beside it for this user only.

use super::*;

/// Reads a JSON file of bounded size.
pub fn read_json(path: &Path) -> Result<Value, OciError> {
    let f = fs::File::open(path).map_err(|source| OciError::Read {
        path: path.into(),
        source,
    })?;
    let mut text = String::new();
    f.take(MAX_SPEC + 1)
        .read_to_string(&mut text)
        .map_err(|source| OciError::Read {
            path: path.into(),
            source,
        })?;
    if text.len() as u64 > MAX_SPEC {
        return Err(OciError::TooLarge { path: path.into() });
    }
    serde_json::from_str(&text).map_err(|e| OciError::Malformed {
        path: path.into(),
        reason: e.to_string(),
    })
}

pub(crate) fn annotations_of(spec: &Value) -> BTreeMap<String, String> {
    spec.get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the spec asks for a new network namespace (one without a path).
pub(super) fn creates_netns(spec: &Value) -> bool {
    spec.pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.get("type").and_then(Value::as_str) == Some("network")
                    && n.get("path")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
            })
        })
}

/// Whether `linux.namespaces` lists a mount namespace (new or joined).
/// Without one the container runs in the runtime's caller's.
pub(super) fn lists_mount_namespace(spec: &Value) -> bool {
    spec.pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.get("type").and_then(Value::as_str) == Some("mount"))
        })
}

/// Creates `path` (and its parents) for this user only.
pub(super) fn private_dir(path: &Path) -> Result<(), OciError> {
    Ok(crate::statedir::private_dir(path)?)
}

pub(super) fn write_private(path: &Path, data: &[u8]) -> Result<(), OciError> {
    crate::statedir::write_private(path, data).map_err(|source| OciError::Write {
        path: path.into(),
        source,
    })
}

/// Rootless on a cgroup v1 host, a `cgroup` mount cannot be made (the
/// kernel allows cgroup mounts only to a user namespace that owns the cgroup
/// namespace, and these hosts' v1 hierarchies belong to the initial one).
/// runc binds the host's hierarchies instead; netshim binds its own view of
/// `/sys/fs/cgroup` (the v2 hierarchy), read-only, which is what libcontainer
/// manages here.
pub(super) fn bind_cgroup_view(spec: &mut Value) {
    let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return;
    };
    for m in mounts.iter_mut() {
        if m.get("type").and_then(Value::as_str) == Some("cgroup") {
            *m = serde_json::json!({
                "destination": m.get("destination").cloned().unwrap_or(Value::String("/sys/fs/cgroup".into())),
                "type": "bind",
                "source": "/sys/fs/cgroup",
                "options": ["rbind", "ro", "nosuid", "noexec", "nodev"]
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_become_binds_of_the_view() {
        let mut spec = serde_json::json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}]});
        bind_cgroup_view(&mut spec);
        assert_eq!(spec["mounts"][0]["type"], "proc");
        assert_eq!(spec["mounts"][1]["type"], "bind");
        assert_eq!(spec["mounts"][1]["source"], "/sys/fs/cgroup");
        assert!(spec["mounts"][1]["options"]
            .as_array()
            .unwrap()
            .contains(&"ro".into()));
    }

    #[test]
    fn netns_creation_is_seen() {
        let with =
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}});
        let joined = serde_json::json!({"linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]}});
        assert!(creates_netns(&with));
        assert!(!creates_netns(&joined));
        assert!(!creates_netns(&serde_json::json!({})));
    }

    #[test]
    fn a_mount_namespace_is_listed_new_or_joined() {
        let new =
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}});
        let joined = serde_json::json!({"linux": {"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]}});
        let none = serde_json::json!({"linux": {"namespaces": [{"type": "pid"}]}});
        assert!(lists_mount_namespace(&new));
        assert!(lists_mount_namespace(&joined));
        assert!(!lists_mount_namespace(&none));
        assert!(!lists_mount_namespace(&serde_json::json!({})));
    }

    #[test]
    fn malformed_and_huge_specs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        fs::write(&p, "{\"process\": ").unwrap();
        let e = read_json(&p).unwrap_err();
        assert!(matches!(e, OciError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("config.json"));
        fs::write(&p, vec![b' '; (MAX_SPEC + 10) as usize]).unwrap();
        assert!(matches!(read_json(&p), Err(OciError::TooLarge { .. })));
    }
}
