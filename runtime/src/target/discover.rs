//! What the caller can reach: named network namespaces, Docker, Podman and
//! containerd containers, Kubernetes pods, each with the plan netshim would
//! use for it.

use std::path::{Path, PathBuf};

use crate::plan::{self, Caller, Plan, PlanError};
use crate::target::docker;
use crate::target::{Target, NETNS_RUN_DIR};

/// One target found, and what netshim would do with it.
#[derive(Debug, Clone)]
pub struct Found {
    pub target: String,
    pub source: String,
    /// `net:[INODE]`, when the namespace could be opened.
    pub netns: Option<String>,
    /// `user:[INODE]` and its owner's UID, when it could be asked.
    pub owner: Option<(String, Option<u32>)>,
    /// `join-userns`, `drop-uid`, or `impossible`.
    pub plan: String,
    /// Why, when impossible or not inspectable.
    pub reason: Option<String>,
}

fn examine(target: Target, source: &str, caller: &Caller) -> Found {
    let label = target.to_string();
    let mut f = Found {
        target: label.clone(),
        source: source.to_string(),
        netns: None,
        owner: None,
        plan: "impossible".into(),
        reason: None,
    };
    let resolved = match target.resolve() {
        Ok(r) => r,
        Err(e) => {
            f.reason = Some(e.to_string());
            return f;
        }
    };
    f.netns = resolved.netns.id().ok().map(|i| format!("net:{i}"));
    if let Ok(u) = resolved.netns.owner_userns() {
        let uid = u.parent_userns().ok().and(u.owner_uid().ok());
        f.owner = u.id().ok().map(|i| (format!("user:{i}"), uid));
    }
    match plan::classify(&label, &resolved.netns, caller) {
        Ok(p @ (Plan::JoinUserns { .. } | Plan::DropUid)) => f.plan = p.name().into(),
        Err(PlanError::Impossible(i)) => {
            // The first sentence is the reason; the rest is advice.
            let s = i.to_string();
            f.reason = Some(s.split(".\n").next().unwrap_or(&s).to_string());
        }
        Err(e) => f.reason = Some(e.to_string()),
    }
    f
}

/// Docker sockets worth asking: $DOCKER_HOST, the caller's rootless one, the
/// rootful one (deduplicated, existing ones only).
fn docker_sockets() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(s) = docker::default_socket() {
        v.push(s);
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(Path::new(&x).join("docker.sock"));
    }
    v.push(PathBuf::from("/var/run/docker.sock"));
    let mut seen = Vec::new();
    v.retain(|p| {
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let keep = p.exists() && !seen.contains(&key);
        seen.push(key);
        keep
    });
    v
}

/// Everything the caller can see, each with its plan.
pub fn discover() -> Result<Vec<Found>, PlanError> {
    let caller = Caller::current()?;
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(NETNS_RUN_DIR) {
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            out.push(examine(Target::Netns(n), "ip netns", &caller));
        }
    }
    let default = docker::default_socket().ok();
    for sock in docker_sockets() {
        let client = docker::Client::new(&sock);
        // `docker:NAME` reaches only the caller's default daemon; containers
        // of another daemon are named by their init PID.
        let by_name = default.as_ref() == Some(&sock);
        let source = format!("docker at {}", sock.display());
        match client.list_running() {
            Ok(names) => {
                for n in names {
                    // Resolve through the same socket as the listing.
                    let t = Target::Docker(n.clone());
                    let f = match client.inspect(&n) {
                        Ok(info) => {
                            let mut f = examine(Target::Pid(info.pid), &source, &caller);
                            if by_name {
                                f.target = t.to_string();
                            } else {
                                f.source = format!("{source} ({t})");
                            }
                            f
                        }
                        Err(e) => Found {
                            target: t.to_string(),
                            source: source.clone(),
                            netns: None,
                            owner: None,
                            plan: "impossible".into(),
                            reason: Some(e.to_string()),
                        },
                    };
                    out.push(f);
                }
            }
            Err(e) => tracing::debug!(socket = %sock.display(), error = %e, "docker not reachable"),
        }
    }
    // containerd ($CONTAINERD_ADDRESS, else the rootful socket): pods of its
    // CRI plugin by name, other tasks as containerd:NAMESPACE/ID. Docker's
    // own namespace (moby) is listed through Docker above.
    if let Some(tasks) = crate::target::containerd::list_running() {
        let cri = if tasks.iter().any(|t| t.0 == "k8s.io") {
            crate::target::containerd::cri_containers().unwrap_or_default()
        } else {
            Vec::new()
        };
        for (ns, id, _pid) in tasks {
            let target = match ns.as_str() {
                "moby" => continue,
                "k8s.io" => match cri.iter().find(|c| c.id == id) {
                    Some(c) if c.container.is_none() => Target::K8s {
                        namespace: c.pod_namespace.clone(),
                        pod: c.pod.clone(),
                        container: None,
                    },
                    // A pod's container: its pod is listed.
                    Some(_) => continue,
                    None => Target::Containerd { namespace: ns, id },
                },
                _ => Target::Containerd { namespace: ns, id },
            };
            out.push(examine(target, "containerd", &caller));
        }
    }
    if let Some(names) = crate::target::podman::list_running() {
        for n in names {
            out.push(examine(Target::Podman(n), "podman", &caller));
        }
    }
    Ok(out)
}
