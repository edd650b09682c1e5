//! KEP 2763 ambient capabilities, as netshim's OCI runtime applies them to a
//! container process (init or exec) before libcontainer sees it.
//!
//! Kernel rules this rests on (capabilities(7)):
//! - on `execve` a process whose UIDs are not 0 and whose file has no
//!   capabilities gets `P' = A` and `E' = A` (the ambient set); everything
//!   else in its permitted and effective sets is lost. That is why a non-root
//!   container ends with no capability whatever `capabilities.add` says,
//!   unless the runtime raises ambient capabilities;
//! - a capability can only be ambient if it is both permitted and
//!   inheritable, and it can never leave the bounding set afterwards;
//! - `no_new_privs` does not clear the ambient set (it blocks gains through
//!   setuid and file capabilities only), so a non-root, no_new_privs process
//!   keeps exactly its ambient capabilities across exec.
//!
//! The rule (runc parity first): the spec's own `process.capabilities`, all
//! five sets and ambient included, is the orchestrator's decision and is
//! applied untouched, exactly as runc applies it. netshim's policy governs
//! only what netshim itself *adds* (the annotation, `--ambient-caps`, the
//! config file's `default`): only capabilities named explicitly are added; a
//! restricted one never is; an added one must already be in the process's
//! bounding set (so an annotation is no way around Pod Security admission);
//! each added capability is put in the ambient, inheritable, permitted and
//! effective sets. Root processes get no additions (KEP 2763 leaves them
//! alone), but a bad request is still refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::kernel::caps::Cap;

/// The annotation that asks for ambient capabilities, on the container or on
/// its pod (containerd passes pod annotations through with `pod_annotations`).
pub const ANNOTATION: &str = "netshim.io/ambient-capabilities";

/// Capabilities netshim never makes ambient, whatever asks: each reaches
/// beyond the container's network (file permission checks, identity, other
/// processes, the kernel or the host's integrity).
pub const RESTRICTED: [&str; 20] = [
    "SYS_ADMIN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "SETUID",
    "SETGID",
    "SETPCAP",
    "SETFCAP",
    "MKNOD",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "PERFMON",
    "CHECKPOINT_RESTORE",
];

/// The only capabilities netshim ever adds: the two KEP 2763 is about. The
/// config file's `allow`, `--ambient-caps` and the annotation can name
/// nothing else. NET_ADMIN is not among them: it reconfigures the network
/// namespace (addresses, routes, filters) rather than using it, and KEP 2763
/// does not cover it (`netshim run --cap NET_ADMIN` is a separate, explicit
/// choice of the person running it).
pub const KEP_2763: [Cap; 2] = [
    crate::kernel::caps::NET_RAW,
    crate::kernel::caps::NET_BIND_SERVICE,
];

pub fn is_restricted(cap: Cap) -> bool {
    RESTRICTED.contains(&cap.name)
}

/// Where a request for an addition came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `netshim.io/ambient-capabilities` annotation.
    Annotation,
    /// `--ambient-caps` or `ambient.default` in the config file: applied to
    /// every non-root container, where its bounding set allows.
    RuntimeDefault,
    /// The narrowed-bounding rule (`ambient.narrowed`): a non-root,
    /// `no_new_privs` process whose bounding set holds nothing but allowed
    /// capabilities gets them ambient.
    Narrowed,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Annotation => write!(f, "the annotation {ANNOTATION}"),
            Source::RuntimeDefault => f.write_str("the runtime's --ambient-caps / ambient.default"),
            Source::Narrowed => f.write_str("the narrowed-bounding rule (ambient.narrowed)"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error(
        "refusing ambient {cap} (asked for by {from}): netshim never makes a restricted capability ambient, \
         because it reaches beyond the container's network; remove it from the request"
    )]
    Restricted { cap: Cap, from: Source },
    #[error(
        "refusing ambient {cap} (asked for by {from}): it is not in this runtime's allow-list ({allowed}); \
         an administrator can add it to `allow` under [ambient] in {config}"
    )]
    NotAllowed {
        cap: Cap,
        from: Source,
        allowed: String,
        config: String,
    },
    #[error(
        "refusing ambient {cap} (asked for by {from}): netshim makes ambient only the capabilities \
         KEP 2763 is about (NET_RAW, NET_BIND_SERVICE); remove it"
    )]
    OutsideKep { cap: Cap, from: Source },
    #[error(
        "refusing ambient {cap} (asked for by {from}): the container's bounding set does not hold it, and \
         netshim never grants what the orchestrator did not; add it to the container's capabilities \
         (Kubernetes: securityContext.capabilities.add, Docker: --cap-add, ctr: --cap-add)"
    )]
    NotInBounding { cap: Cap, from: Source },
    #[error("invalid {what} {value:?}: {reason}; write capability names separated by commas, e.g. NET_RAW,NET_BIND_SERVICE")]
    BadList {
        what: String,
        value: String,
        reason: String,
    },
    #[error("invalid process in the spec: {0}")]
    BadProcess(String),
}

/// The runtime-wide policy: what may become ambient and what every non-root
/// container gets by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub allow: BTreeSet<Cap>,
    pub defaults: BTreeSet<Cap>,
    /// The narrowed-bounding rule: a non-root process with `no_new_privs`
    /// whose bounding set is not empty and holds only capabilities of
    /// `allow` gets all of them ambient, without asking. The orchestrator
    /// narrowed the set to exactly what the process may use (Kubernetes:
    /// `drop` of everything else, as `kubectl debug --custom` with
    /// examples/kubernetes/debug-netshim.json does); containers with the
    /// default set, or any capability beyond the allow-list, gain nothing.
    pub narrowed: bool,
    /// Where the policy came from, named in errors.
    pub origin: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow: [
                crate::kernel::caps::NET_RAW,
                crate::kernel::caps::NET_BIND_SERVICE,
            ]
            .into_iter()
            .collect(),
            defaults: BTreeSet::new(),
            narrowed: true,
            origin: "the built-in policy (no config file)".into(),
        }
    }
}

/// Parses a list such as `NET_RAW, CAP_NET_BIND_SERVICE` (commas or spaces).
pub fn parse_list(what: &str, value: &str) -> Result<BTreeSet<Cap>, PolicyError> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Cap>().map_err(|e| PolicyError::BadList {
                what: what.into(),
                value: value.into(),
                reason: e.to_string(),
            })
        })
        .collect()
}

impl Policy {
    /// Checks that the policy itself names no restricted capability, and that
    /// its defaults are allowed.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for &cap in self.allow.iter().chain(&self.defaults) {
            if is_restricted(cap) {
                return Err(PolicyError::Restricted {
                    cap,
                    from: Source::RuntimeDefault,
                });
            }
            if !KEP_2763.contains(&cap) {
                return Err(PolicyError::OutsideKep {
                    cap,
                    from: Source::RuntimeDefault,
                });
            }
        }
        for &cap in &self.defaults {
            if !self.allow.contains(&cap) {
                return Err(self.not_allowed(cap, Source::RuntimeDefault));
            }
        }
        Ok(())
    }

    fn not_allowed(&self, cap: Cap, from: Source) -> PolicyError {
        PolicyError::NotAllowed {
            cap,
            from,
            allowed: names(&self.allow),
            config: self.origin.clone(),
        }
    }
}

/// What the policy decided for one process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// What netshim added to the process's ambient (and inheritable,
    /// permitted, effective) sets; the process's ambient set must hold them.
    pub added: BTreeSet<Cap>,
    /// The process's UID is 0: KEP 2763 leaves root processes alone.
    pub root: bool,
    /// Runtime defaults left out because the bounding set lacks them.
    pub skipped_defaults: BTreeSet<Cap>,
}

pub fn names(caps: &BTreeSet<Cap>) -> String {
    if caps.is_empty() {
        return "none".into();
    }
    caps.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The capabilities a set of the spec names. Names this build does not know
/// are passed over with a warning, as runc does: the set itself is applied
/// untouched, so an unknown name costs only the chance to add to it.
fn cap_list(process: &Value, set: &str) -> Result<BTreeSet<Cap>, PolicyError> {
    match process.pointer(&format!("/capabilities/{set}")) {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::Array(a)) => {
            let mut out = BTreeSet::new();
            for v in a {
                let s = v.as_str().ok_or_else(|| {
                    PolicyError::BadProcess(format!("capabilities.{set} holds a non-string {v}"))
                })?;
                match s.parse::<Cap>() {
                    Ok(c) => {
                        out.insert(c);
                    }
                    Err(e) => tracing::warn!(set, "passing over an unknown capability: {e}"),
                }
            }
            Ok(out)
        }
        Some(other) => Err(PolicyError::BadProcess(format!(
            "capabilities.{set} is {other}, not a list"
        ))),
    }
}

/// What the narrowed-bounding rule grants `process`: its bounding set (as
/// far as the spec also permits it), when the rule is on, the process has `noNewPrivileges`, and that set is
/// not empty and lies within the allow-list (and so within KEP 2763's two
/// capabilities). Root is left alone later, as for every addition.
///
/// Why this is safe (docs/security.md, "netshim as a node's default
/// runtime"): the bounding set is the orchestrator's decision, already
/// checked by its admission (Pod Security `baseline` admits a set narrowed
/// by drops alone); a root process in the same container would hold these
/// capabilities anyway; ambient capabilities cannot grow the bounding set,
/// and `no_new_privs` stops any gain through setuid or file capabilities.
/// An app container with the runtime's default set (14 capabilities under
/// containerd) is never narrowed, so it gets exactly runc's process.
fn narrowed(
    policy: &Policy,
    process: &Value,
    bounding: &BTreeSet<Cap>,
) -> Result<BTreeSet<Cap>, PolicyError> {
    let nnp = process.get("noNewPrivileges").and_then(Value::as_bool) == Some(true);
    let within = bounding
        .iter()
        .all(|c| policy.allow.contains(c) && KEP_2763.contains(c));
    if !(policy.narrowed && nnp && !bounding.is_empty() && within) {
        return Ok(BTreeSet::new());
    }
    // Only what the orchestrator also permitted: a root process of the same
    // spec holds exactly its permitted set (containerd's CRI makes it the
    // bounding set; an empty one gives nothing, under runc and here).
    let permitted = cap_list(process, "permitted")?;
    Ok(bounding.intersection(&permitted).copied().collect())
}

/// Keeps, in each capability list of `process`, only the names runc
/// applies: exactly `CAP_` and a capability's upper-case name. runc passes
/// over anything else with a warning ("ignoring unknown or unavailable
/// capabilities"); libcontainer's parser (oci-spec) would upper-case a
/// name and strip every `CAP_` it starts with, so `cap_sys_admin` or
/// `CAP_CAP_SYS_ADMIN` (what containerd's CRI writes for `add:
/// [CAP_SYS_ADMIN]`) would be granted where runc grants nothing. The
/// policy, and libcontainer after it, see the lists as runc applies them.
pub(crate) fn runc_names(process: &mut Value) -> Result<(), PolicyError> {
    let Some(caps) = process
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    let mut ignored = Vec::new();
    for (set, list) in caps.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        for v in list.iter() {
            if !v.is_string() {
                return Err(PolicyError::BadProcess(format!(
                    "capabilities.{set} holds a non-string {v}"
                )));
            }
        }
        list.retain(|v| {
            let s = v.as_str().expect("checked above");
            let exact = s.parse::<Cap>().is_ok_and(|c| c.to_string() == s);
            if !exact {
                ignored.push(s.to_string());
            }
            exact
        });
    }
    if !ignored.is_empty() {
        ignored.sort();
        ignored.dedup();
        tracing::warn!(
            ?ignored,
            "ignoring unknown or unavailable capabilities, as runc does"
        );
    }
    Ok(())
}

/// Applies the policy to an OCI `process` object in place and returns the
/// decision. `annotations` are the container's (with pod annotations merged
/// by containerd). The spec's own capability lists are kept as they are
/// (order, spelling, unknown names); additions are appended to them. The
/// JSON is edited rather than re-serialized so that fields netshim does not
/// know survive untouched.
pub fn apply(
    policy: &Policy,
    process: &mut Value,
    annotations: &BTreeMap<String, String>,
) -> Result<Decision, PolicyError> {
    if !process.is_object() {
        return Err(PolicyError::BadProcess("process is not an object".into()));
    }
    runc_names(process)?;
    let uid = match process.pointer("/user/uid") {
        None => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| PolicyError::BadProcess(format!("user.uid is {v}")))?,
    };
    let bounding = cap_list(process, "bounding")?;

    let mut added = BTreeSet::new();
    if let Some(v) = annotations.get(ANNOTATION) {
        let from = Source::Annotation;
        for cap in parse_list(&format!("annotation {ANNOTATION}"), v)? {
            if is_restricted(cap) {
                return Err(PolicyError::Restricted { cap, from });
            }
            if !policy.allow.contains(&cap) || !KEP_2763.contains(&cap) {
                return Err(policy.not_allowed(cap, from));
            }
            if !bounding.contains(&cap) {
                return Err(PolicyError::NotInBounding { cap, from });
            }
            added.insert(cap);
        }
    }
    added.extend(narrowed(policy, process, &bounding)?);
    let mut skipped_defaults = BTreeSet::new();
    for &cap in &policy.defaults {
        if bounding.contains(&cap) {
            added.insert(cap);
        } else if !added.contains(&cap) {
            skipped_defaults.insert(cap);
        }
    }

    if uid == 0 {
        return Ok(Decision {
            added: BTreeSet::new(),
            root: true,
            skipped_defaults,
        });
    }
    if !added.is_empty() {
        let caps = process
            .as_object_mut()
            .expect("checked above")
            .entry("capabilities")
            .or_insert_with(|| Value::Object(Default::default()));
        let caps = caps
            .as_object_mut()
            .ok_or_else(|| PolicyError::BadProcess("capabilities is not an object".into()))?;
        for set in ["ambient", "inheritable", "permitted", "effective"] {
            let list = caps.entry(set).or_insert_with(|| Value::Array(Vec::new()));
            if list.is_null() {
                *list = Value::Array(Vec::new());
            }
            let list = list.as_array_mut().ok_or_else(|| {
                PolicyError::BadProcess(format!("capabilities.{set} is not a list"))
            })?;
            for cap in &added {
                let present = list
                    .iter()
                    .any(|v| v.as_str().and_then(|s| s.parse::<Cap>().ok()) == Some(*cap));
                if !present {
                    list.push(Value::String(cap.to_string()));
                }
            }
        }
    }
    Ok(Decision {
        added,
        root: false,
        skipped_defaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caps(names: &[&str]) -> BTreeSet<Cap> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// What containerd's CRI plugin writes for a non-root container with
    /// `drop: [ALL]`, `add: [NET_RAW]` (no inheritable, no ambient).
    fn cri_process(uid: u32) -> Value {
        json!({
            "user": {"uid": uid, "gid": uid},
            "args": ["ping"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_NET_RAW"],
                "effective": ["CAP_NET_RAW"],
                "permitted": ["CAP_NET_RAW"]
            },
            "x-unknown": 1
        })
    }

    fn ann(v: &str) -> BTreeMap<String, String> {
        [(ANNOTATION.to_string(), v.to_string())].into()
    }

    #[test]
    fn annotation_makes_net_raw_ambient_in_every_set() {
        let mut p = cri_process(1000);
        let d = apply(&Policy::default(), &mut p, &ann("NET_RAW")).unwrap();
        assert_eq!(d.added, caps(&["NET_RAW"]));
        assert!(!d.root);
        for set in [
            "ambient",
            "inheritable",
            "permitted",
            "effective",
            "bounding",
        ] {
            assert_eq!(p["capabilities"][set], json!(["CAP_NET_RAW"]), "{set}");
        }
        assert_eq!(p["x-unknown"], json!(1), "unknown fields survive");
    }

    /// containerd's default set for a container that drops nothing.
    const CONTAINERD_DEFAULT: [&str; 14] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];

    /// runc applies only `CAP_` + an upper-case known name; everything else
    /// is dropped before libcontainer (which would read `cap_sys_admin` and
    /// `CAP_CAP_SYS_ADMIN` as SYS_ADMIN) sees it.
    #[test]
    fn names_runc_ignores_are_dropped_from_every_set() {
        let mut p = cri_process(0);
        let odd = json!([
            "CAP_CAP_SYS_ADMIN",
            "cap_sys_ptrace",
            "NET_ADMIN",
            "CAP_FOO",
            "CAP_KILL"
        ]);
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            p["capabilities"][set] = odd.clone();
        }
        apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            assert_eq!(p["capabilities"][set], json!(["CAP_KILL"]), "{set}");
        }
        let mut p = cri_process(0);
        p["capabilities"]["bounding"] = json!(["CAP_KILL", 7]);
        assert!(apply(&Policy::default(), &mut p, &BTreeMap::new()).is_err());
    }

    #[test]
    fn nothing_requested_changes_nothing() {
        // An app container with the default set: not narrowed.
        let mut p = cri_process(1000);
        p["capabilities"]["bounding"] = json!(CONTAINERD_DEFAULT);
        let before = p.clone();
        let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        assert!(d.added.is_empty());
        assert_eq!(p, before);
        // A narrowed one, with the rule turned off.
        let mut p = cri_process(1000);
        let before = p.clone();
        let off = Policy {
            narrowed: false,
            ..Policy::default()
        };
        let d = apply(&off, &mut p, &BTreeMap::new()).unwrap();
        assert!(d.added.is_empty());
        assert_eq!(p, before);
    }

    /// The narrowed-bounding rule: non-root, no_new_privs, a bounding set
    /// of allowed capabilities only. Each condition missing, nothing.
    #[test]
    fn a_narrowed_bounding_set_becomes_ambient_without_asking() {
        let mut p = cri_process(65534);
        let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        assert_eq!(d.added, caps(&["NET_RAW"]));
        assert_eq!(p["capabilities"]["ambient"], json!(["CAP_NET_RAW"]));
        let mut p = cri_process(65534);
        p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]);
        let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        assert_eq!(d.added, caps(&["NET_RAW"]), "only what is also permitted");
        let mut p = cri_process(65534);
        p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]);
        p["capabilities"]["permitted"] = json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]);
        let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        assert_eq!(d.added, caps(&["NET_RAW", "NET_BIND_SERVICE"]));
        let unchanged = |edit: &dyn Fn(&mut Value)| {
            let mut p = cri_process(65534);
            edit(&mut p);
            let before = p.clone();
            let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
            assert!(d.added.is_empty(), "{before}");
            assert_eq!(p, before);
        };
        unchanged(&|p| p["noNewPrivileges"] = json!(false));
        unchanged(&|p| {
            p.as_object_mut().unwrap().remove("noNewPrivileges");
        });
        unchanged(&|p| p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_KILL"]));
        unchanged(&|p| p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_NET_ADMIN"]));
        unchanged(&|p| p["capabilities"]["bounding"] = json!([]));
        unchanged(&|p| p["capabilities"]["bounding"] = json!(CONTAINERD_DEFAULT));
        // Nothing permitted (as dockerd writes for a non-root user): nothing.
        unchanged(&|p| p["capabilities"]["permitted"] = json!([]));
        // A name runc does not apply is dropped first, so it cannot make a
        // set look narrowed while libcontainer would grant it.
        let mut p = cri_process(65534);
        p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_CAP_SYS_ADMIN"]);
        let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_NET_RAW"]));
        assert_eq!(d.added, caps(&["NET_RAW"]));
        // Root: left alone.
        let mut p = cri_process(0);
        let before = p.clone();
        let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
        assert!(d.root && d.added.is_empty());
        assert_eq!(p, before);
        // An allow-list without NET_RAW: a set of NET_RAW is not within it.
        let only_bind = Policy {
            allow: caps(&["NET_BIND_SERVICE"]),
            ..Policy::default()
        };
        let mut p = cri_process(65534);
        assert!(apply(&only_bind, &mut p, &BTreeMap::new())
            .unwrap()
            .added
            .is_empty());
    }

    #[test]
    fn restricted_is_refused_even_when_bounded() {
        let mut p = cri_process(1000);
        p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_SYS_ADMIN"]);
        let e = apply(&Policy::default(), &mut p, &ann("NET_RAW,SYS_ADMIN")).unwrap_err();
        assert!(
            matches!(e, PolicyError::Restricted { cap, from: Source::Annotation } if cap.name == "SYS_ADMIN")
        );
    }

    /// runc parity: the spec's own sets are the orchestrator's decision and
    /// pass through untouched, whatever they name (runc's default spec makes
    /// AUDIT_WRITE, KILL and NET_BIND_SERVICE ambient; Podman writes ambient
    /// sets for `--user N --cap-add X`; a restricted one is the
    /// orchestrator's call, not an annotation's).
    #[test]
    fn the_specs_own_capabilities_pass_through_untouched() {
        for ambient in [
            json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            json!(["CAP_DAC_OVERRIDE"]),
            json!(["CAP_NET_RAW", "CAP_NOT_A_CAP"]),
        ] {
            for uid in [0, 1000] {
                let mut p = cri_process(uid);
                p["capabilities"]["bounding"] = json!(CONTAINERD_DEFAULT);
                p["capabilities"]["ambient"] = ambient.clone();
                p["capabilities"]["inheritable"] = ambient.clone();
                let mut before = p.clone();
                let d = apply(&Policy::default(), &mut p, &BTreeMap::new()).unwrap();
                assert!(d.added.is_empty());
                // Names runc ignores are dropped, as runc drops them.
                for set in ["ambient", "inheritable"] {
                    before["capabilities"][set]
                        .as_array_mut()
                        .unwrap()
                        .retain(|v| v != "CAP_NOT_A_CAP");
                }
                assert_eq!(p, before, "{ambient}");
            }
        }
    }

    /// Additions go after the spec's own entries, each set once.
    #[test]
    fn additions_are_appended_to_the_specs_lists() {
        let mut p = cri_process(1000);
        p["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_NET_RAW"]);
        p["capabilities"]["ambient"] = json!(["CAP_KILL"]);
        p["capabilities"]["permitted"] = json!(["CAP_KILL", "CAP_NET_RAW"]);
        let d = apply(&Policy::default(), &mut p, &ann("NET_RAW")).unwrap();
        assert_eq!(d.added, caps(&["NET_RAW"]));
        assert_eq!(
            p["capabilities"]["ambient"],
            json!(["CAP_KILL", "CAP_NET_RAW"])
        );
        assert_eq!(
            p["capabilities"]["permitted"],
            json!(["CAP_KILL", "CAP_NET_RAW"])
        );
        assert_eq!(p["capabilities"]["inheritable"], json!(["CAP_NET_RAW"]));
        assert_eq!(
            p["capabilities"]["bounding"],
            json!(["CAP_KILL", "CAP_NET_RAW"])
        );
    }

    #[test]
    fn outside_allow_list_or_bounding_is_refused() {
        let mut p = cri_process(1000);
        p["capabilities"]["bounding"] = json!(["CAP_NET_RAW", "CAP_NET_ADMIN"]);
        let e = apply(&Policy::default(), &mut p, &ann("NET_ADMIN")).unwrap_err();
        assert!(matches!(e, PolicyError::NotAllowed { .. }), "{e}");
        let mut p = cri_process(1000);
        let e = apply(&Policy::default(), &mut p, &ann("NET_BIND_SERVICE")).unwrap_err();
        assert!(matches!(e, PolicyError::NotInBounding { .. }), "{e}");
        assert!(e.to_string().contains("securityContext.capabilities.add"));
    }

    #[test]
    fn defaults_apply_only_within_bounding() {
        let policy = Policy {
            defaults: caps(&["NET_RAW", "NET_BIND_SERVICE"]),
            ..Policy::default()
        };
        policy.validate().unwrap();
        let mut p = cri_process(1000);
        let d = apply(&policy, &mut p, &BTreeMap::new()).unwrap();
        assert_eq!(d.added, caps(&["NET_RAW"]));
        assert_eq!(d.skipped_defaults, caps(&["NET_BIND_SERVICE"]));
    }

    #[test]
    fn root_processes_are_left_alone_but_still_checked() {
        let mut p = cri_process(0);
        let before = p.clone();
        let d = apply(&Policy::default(), &mut p, &ann("NET_RAW")).unwrap();
        assert!(d.root);
        assert_eq!(p, before);
        let mut p = cri_process(0);
        assert!(apply(&Policy::default(), &mut p, &ann("SYS_MODULE")).is_err());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let mut p = cri_process(1000);
        let e = apply(&Policy::default(), &mut p, &ann("NET_RAWR")).unwrap_err();
        assert!(e.to_string().contains("NET_RAWR"), "{e}");
        let mut p = json!({"user": {"uid": "x"}});
        assert!(apply(&Policy::default(), &mut p, &BTreeMap::new()).is_err());
        let mut p = json!({"capabilities": {"bounding": "CAP_NET_RAW"}});
        assert!(apply(&Policy::default(), &mut p, &BTreeMap::new()).is_err());
        let mut p = json!([]);
        assert!(apply(&Policy::default(), &mut p, &BTreeMap::new()).is_err());
    }

    #[test]
    fn a_policy_naming_restricted_caps_is_invalid() {
        let p = Policy {
            allow: caps(&["NET_RAW", "SYS_PTRACE"]),
            ..Policy::default()
        };
        assert!(p.validate().is_err());
        let p = Policy {
            allow: caps(&["NET_RAW"]),
            defaults: caps(&["NET_BIND_SERVICE"]),
            ..Policy::default()
        };
        assert!(matches!(p.validate(), Err(PolicyError::NotAllowed { .. })));
    }

    #[test]
    fn only_kep_2763_capabilities_can_be_allowed() {
        for cap in ["CHOWN", "SYSLOG", "LINUX_IMMUTABLE", "NET_ADMIN", "KILL"] {
            let p = Policy {
                allow: caps(&["NET_RAW", cap]),
                ..Policy::default()
            };
            let e = p.validate().unwrap_err();
            assert!(matches!(e, PolicyError::OutsideKep { .. }), "{cap}: {e}");
            assert!(e.to_string().contains("NET_RAW, NET_BIND_SERVICE"), "{e}");
            // Even a policy built without validate adds nothing outside.
            let mut proc = cri_process(1000);
            proc["capabilities"]["bounding"] = json!([format!("CAP_{cap}"), "CAP_NET_RAW"]);
            let e = apply(&p, &mut proc, &ann(cap)).unwrap_err();
            assert!(matches!(e, PolicyError::NotAllowed { .. }), "{cap}: {e}");
        }
        let full = Policy {
            allow: caps(&["NET_RAW", "NET_BIND_SERVICE"]),
            defaults: caps(&["NET_BIND_SERVICE"]),
            ..Policy::default()
        };
        full.validate().unwrap();
    }

    #[test]
    fn lists_parse_with_commas_spaces_and_prefixes() {
        assert_eq!(
            parse_list("x", " CAP_NET_RAW, net_bind_service ").unwrap(),
            caps(&["NET_RAW", "NET_BIND_SERVICE"])
        );
        assert!(parse_list("x", "").unwrap().is_empty());
    }
}
