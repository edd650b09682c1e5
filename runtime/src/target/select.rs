//! Selectors: target forms that stand for several targets, resolved once
//! when a capture starts (`netshim capture --target-netns SELECTOR`,
//! `netshim targets --expand SELECTOR`).
//!
//! - any single target form (see [`Target`]);
//! - `docker-compose:PROJECT`, `podman-compose:PROJECT`: the running
//!   containers of a Compose project (label `com.docker.compose.project`,
//!   which Docker Compose and podman-compose both set);
//! - `docker-label:KEY=VALUE`, `podman-label:KEY=VALUE`: the running
//!   containers with that label;
//! - `k8s:NAMESPACE/*`: every pod of a Kubernetes namespace on this node
//!   (their sandboxes, through containerd's CRI plugin).

use std::fmt;
use std::str::FromStr;

use crate::target::{containerd, docker, podman, Target, TargetError};

/// The label Docker Compose and podman-compose put on a project's containers.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    One(Target),
    /// Running containers of an engine with label `key=value`; `compose`
    /// when it was written as `*-compose:PROJECT`.
    Label {
        engine: Engine,
        key: String,
        value: String,
        compose: bool,
    },
    /// `k8s:NAMESPACE/*`.
    K8sNamespace(String),
}

/// One target a selector stands for, with what it is (for people and for
/// pcapng's if_description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub target: Target,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{selector}: no running container or pod matches it{hint}")]
    Empty {
        selector: String,
        hint: &'static str,
    },
}

impl FromStr for Selector {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TargetError::BadForm(s.to_string());
        let label = |engine: Engine, rest: &str, compose: bool| {
            let (key, value) = if compose {
                (COMPOSE_PROJECT_LABEL, rest)
            } else {
                rest.split_once('=').ok_or_else(bad)?
            };
            if key.is_empty() || value.is_empty() {
                return Err(bad());
            }
            Ok(Selector::Label {
                engine,
                key: key.into(),
                value: value.into(),
                compose,
            })
        };
        if let Some(p) = s.strip_prefix("docker-compose:") {
            return label(Engine::Docker, p, true);
        }
        if let Some(p) = s.strip_prefix("podman-compose:") {
            return label(Engine::Podman, p, true);
        }
        if let Some(p) = s.strip_prefix("docker-label:") {
            return label(Engine::Docker, p, false);
        }
        if let Some(p) = s.strip_prefix("podman-label:") {
            return label(Engine::Podman, p, false);
        }
        if let Some(ns) = s.strip_prefix("k8s:").and_then(|n| n.strip_suffix("/*")) {
            if ns.is_empty() || ns.contains('/') {
                return Err(bad());
            }
            return Ok(Selector::K8sNamespace(ns.into()));
        }
        Ok(Selector::One(s.parse()?))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = |e: &Engine| match e {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        };
        match self {
            Selector::One(t) => write!(f, "{t}"),
            Selector::Label {
                engine: e,
                value,
                compose: true,
                ..
            } => write!(f, "{}-compose:{value}", engine(e)),
            Selector::Label {
                engine: e,
                key,
                value,
                ..
            } => write!(f, "{}-label:{key}={value}", engine(e)),
            Selector::K8sNamespace(ns) => write!(f, "k8s:{ns}/*"),
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What a single target is, for people: the container's name, ID and
/// image where the engine says them cheaply.
pub fn describe(t: &Target) -> String {
    match t {
        Target::Docker(name) => docker::default_socket()
            .ok()
            .and_then(|s| docker::Client::new(s).inspect(name).ok())
            .map(|c| {
                format!(
                    "docker container {} (id {}, image {})",
                    c.name,
                    short(&c.id),
                    c.image
                )
            })
            .unwrap_or_else(|| format!("docker container {name}")),
        Target::Podman(name) => format!("podman container {name}"),
        Target::Containerd { namespace, id } => {
            format!("containerd container {id} (namespace {namespace})")
        }
        Target::Nerdctl(name) => format!("nerdctl container {name}"),
        Target::K8s {
            namespace,
            pod,
            container: None,
        } => format!("kubernetes pod {pod} (namespace {namespace})"),
        Target::K8s {
            namespace,
            pod,
            container: Some(c),
        } => format!("kubernetes container {c} of pod {pod} (namespace {namespace})"),
        Target::Netns(n) => format!("named network namespace {n}"),
        Target::Pid(p) => {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            format!("network namespace of process {p} ({})", comm.trim())
        }
        Target::Path(p) => format!("network namespace {}", p.display()),
    }
}

impl Selector {
    /// Whether it may stand for more than one target.
    pub fn is_many(&self) -> bool {
        !matches!(self, Selector::One(_))
    }

    /// The targets it stands for now, in the engines' order; an error when
    /// a group selector matches nothing.
    pub fn expand(&self) -> Result<Vec<Chosen>, SelectError> {
        let sel = self.to_string();
        let chosen = match self {
            Selector::One(t) => vec![Chosen {
                target: t.clone(),
                description: describe(t),
            }],
            Selector::Label {
                engine: Engine::Docker,
                key,
                value,
                ..
            } => {
                let socket = docker::default_socket().map_err(|source| TargetError::Docker {
                    target: sel.clone(),
                    source,
                })?;
                let listed = docker::Client::new(socket).running().map_err(|source| {
                    TargetError::Docker {
                        target: sel.clone(),
                        source,
                    }
                })?;
                let mut v: Vec<Chosen> = listed
                    .into_iter()
                    .filter(|c| c.labels.get(key) == Some(value))
                    .map(|c| Chosen {
                        description: format!(
                            "docker container {} (id {}, image {})",
                            c.name,
                            short(&c.id),
                            c.image
                        ),
                        target: Target::Docker(c.name),
                    })
                    .collect();
                v.sort_by_key(|c| c.target.to_string());
                v
            }
            Selector::Label {
                engine: Engine::Podman,
                key,
                value,
                ..
            } => {
                let mut v: Vec<Chosen> = podman::running_with_label(key, value)
                    .map_err(|source| TargetError::Podman {
                        target: sel.clone(),
                        source,
                    })?
                    .into_iter()
                    .map(|(name, id, image)| Chosen {
                        description: format!(
                            "podman container {name} (id {}, image {image})",
                            short(&id)
                        ),
                        target: Target::Podman(name),
                    })
                    .collect();
                v.sort_by_key(|c| c.target.to_string());
                v
            }
            Selector::K8sNamespace(ns) => {
                let mut pods: Vec<String> = containerd::cri_containers()
                    .map_err(|source| TargetError::Containerd {
                        target: sel.clone(),
                        source,
                    })?
                    .into_iter()
                    .filter(|c| c.pod_namespace == *ns && c.container.is_none())
                    .map(|c| c.pod)
                    .collect();
                pods.sort();
                pods.dedup();
                pods.into_iter()
                    .map(|pod| {
                        let t = Target::K8s {
                            namespace: ns.clone(),
                            pod,
                            container: None,
                        };
                        Chosen {
                            description: describe(&t),
                            target: t,
                        }
                    })
                    .collect()
            }
        };
        if chosen.is_empty() {
            return Err(SelectError::Empty {
                selector: sel,
                hint: match self {
                    Selector::Label { .. } => ": list the running containers and their labels with `docker ps` or `podman ps`",
                    _ => ": list the pods with `crictl pods`",
                },
            });
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_print_back() {
        for s in [
            "docker-compose:shop",
            "podman-compose:shop",
            "docker-label:tier=web",
            "podman-label:a=b=c",
            "k8s:default/*",
            "netns:blue",
            "k8s:default/web",
        ] {
            let sel: Selector = s.parse().unwrap();
            assert_eq!(sel.to_string(), s);
            assert_eq!(
                sel.is_many(),
                !(s == "netns:blue" || s == "k8s:default/web")
            );
        }
        assert_eq!(
            "podman-label:a=b=c".parse::<Selector>().unwrap(),
            Selector::Label {
                engine: Engine::Podman,
                key: "a".into(),
                value: "b=c".into(),
                compose: false
            }
        );
        for bad in [
            "docker-compose:",
            "docker-label:novalue",
            "docker-label:=x",
            "k8s:/*",
            "k8s:a/b/*",
            "nonsense",
        ] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }
}
