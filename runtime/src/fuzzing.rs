//! The properties the runtime's fuzz targets (`fuzz/`) check, shared with
//! the stable smoke tests below.

use std::path::Path;

use serde_json::Value;

use crate::kernel::caps::Cap;
use crate::oci::annotations_of;
use crate::oci::policy::{self, Policy};

fn caps_in(process: &Value, set: &str) -> Vec<Cap> {
    process
        .pointer(&format!("/capabilities/{set}"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// The KEP 2763 policy over an arbitrary JSON document (a spec, or a bare
/// process): whatever it asks, netshim adds no restricted or unallowed
/// capability and nothing outside the bounding set, what it adds is in
/// every set the kernel needs, and the spec's own sets lose nothing.
pub fn policy(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut process = doc.get("process").cloned().unwrap_or_else(|| doc.clone());
    let annotations = annotations_of(&doc);
    let pol = Policy {
        defaults: [crate::kernel::caps::NET_RAW].into_iter().collect(),
        ..Policy::default()
    };
    // The spec as runc reads it: names runc ignores are dropped first.
    let mut before = process.clone();
    if before.is_object() && policy::runc_names(&mut before).is_err() {
        return;
    }
    let Ok(d) = policy::apply(&pol, &mut process, &annotations) else {
        return;
    };
    if d.root {
        assert_eq!(process, before, "root processes are left alone");
        return;
    }
    let bounding = caps_in(&process, "bounding");
    for set in [
        "ambient",
        "inheritable",
        "permitted",
        "effective",
        "bounding",
    ] {
        let now = caps_in(&process, set);
        assert!(
            caps_in(&before, set).iter().all(|c| now.contains(c)),
            "the spec's own {set} set lost an entry"
        );
    }
    for &c in &d.added {
        assert!(!policy::is_restricted(c), "{c} became ambient");
        assert!(pol.allow.contains(&c), "{c} is not allowed");
        assert!(
            policy::KEP_2763.contains(&c),
            "{c} is not a KEP 2763 capability"
        );
        assert!(bounding.contains(&c), "{c} is outside the bounding set");
        for set in ["ambient", "inheritable", "permitted", "effective"] {
            assert!(
                caps_in(&process, set).contains(&c),
                "{c} missing from {set}"
            );
        }
    }
}

/// The config file parser: a file it accepts is a valid policy.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = crate::oci::config::parse(Path::new("fuzz.toml"), text) {
        p.validate().expect("an accepted config is valid");
        assert!(!p.allow.iter().any(|c| policy::is_restricted(*c)));
        assert!(
            p.allow
                .iter()
                .chain(&p.defaults)
                .all(|c| policy::KEP_2763.contains(c)),
            "an accepted config allows more than KEP 2763's capabilities"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutate(rng: &mut u64, base: &[u8]) -> Vec<u8> {
        let mut next = || {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng
        };
        let mut v = base.to_vec();
        for _ in 0..=(next() % 4) {
            let r = next();
            let i = (r >> 8) as usize % (v.len() + 1);
            match r % 3 {
                0 if i < v.len() => v[i] = b"[]{}\",:0123SYS_ADMINNET_RAW"[(r >> 40) as usize % 27],
                1 => v.insert(i, (r >> 32) as u8),
                _ => v.truncate(i),
            }
        }
        v
    }

    #[test]
    fn policy_and_config_hold_on_mutated_inputs() {
        let specs = [
            r#"{"process": {"user": {"uid": 1000}, "capabilities": {"bounding": ["CAP_NET_RAW", "CAP_SYS_ADMIN"], "ambient": ["CAP_NET_RAW"]}}, "annotations": {"netshim.io/ambient-capabilities": "NET_RAW"}}"#,
            r#"{"user": {"uid": 0}, "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE"]}}"#,
            r#"{"process": {"user": {"uid": 5}, "capabilities": {"bounding": ["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_CHOWN"]}}, "annotations": {"netshim.io/ambient-capabilities": "NET_BIND_SERVICE SYS_ADMIN"}}"#,
        ];
        let configs = [
            "[ambient]\nallow = [\"NET_RAW\", \"NET_BIND_SERVICE\"]\ndefault = [\"NET_RAW\"]\n",
            "[ambient]\nallow = [\"SYS_ADMIN\"]\n",
            "[ambient]\nallow = [\"NET_RAW\", \"CHOWN\"]\n",
        ];
        let mut rng = 0x1234_5678_9abc_def1u64;
        for i in 0..20_000 {
            policy(&mutate(&mut rng, specs[i % specs.len()].as_bytes()));
            config(&mutate(&mut rng, configs[i % configs.len()].as_bytes()));
        }
        // The unmutated seeds reach the interesting paths: an addition that
        // is granted, one that is refused, a config that is accepted and one
        // that is refused.
        let decide = |text: &str| {
            let v: Value = serde_json::from_str(text).unwrap();
            let annotations = annotations_of(&v);
            let mut process = v.get("process").cloned().unwrap_or(v);
            policy::apply(&Policy::default(), &mut process, &annotations)
        };
        let granted = decide(specs[0]).expect("seed 0 is granted");
        assert_eq!(
            granted.added,
            [crate::kernel::caps::NET_RAW].into_iter().collect()
        );
        assert!(decide(specs[1]).expect("seed 1 is root").root);
        assert!(matches!(
            decide(specs[2]),
            Err(policy::PolicyError::Restricted { .. })
        ));
        assert!(crate::oci::config::parse(Path::new("seed.toml"), configs[0]).is_ok());
        assert!(crate::oci::config::parse(Path::new("seed.toml"), configs[1]).is_err());
        assert!(crate::oci::config::parse(Path::new("seed.toml"), configs[2]).is_err());
    }
}
