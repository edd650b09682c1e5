//! `containerd:NAMESPACE/ID`, `nerdctl:NAME` and `k8s:NAMESPACE/POD[/CONTAINER]`:
//! resolved through containerd's API with its own client, `ctr` (or
//! `$NETSHIM_CTR`), which follows `$CONTAINERD_ADDRESS` (default
//! `/run/containerd/containerd.sock`).
//!
//! Kubernetes pods are found by the annotations containerd's CRI plugin puts
//! in the spec of every container it makes in the `k8s.io` namespace
//! (`io.kubernetes.cri.sandbox-namespace`, `io.kubernetes.cri.sandbox-name`,
//! `io.kubernetes.cri.container-name`, `io.kubernetes.cri.container-type` =
//! `sandbox` or `container`): they are there whatever labels the CRI client
//! set. nerdctl names containers with the label `nerdctl/name`.
//! The result is the init PID of the running task, which the caller pins
//! with a pidfd before opening its namespace.

use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("cannot run {bin}: {source}; install containerd's client (apt-get install containerd) or set NETSHIM_CTR to its path")]
    Missing {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd is not reachable: {detail}; run as root, or set CONTAINERD_ADDRESS to the socket (default /run/containerd/containerd.sock)")]
    Unreachable { detail: String },
    #[error("no {what} in containerd namespace {namespace:?}: list them with `ctr -n {namespace} containers ls`")]
    NotFound { what: String, namespace: String },
    #[error("{what} in containerd namespace {namespace:?} has no running task (status {status}): start it, then try again")]
    NotRunning {
        what: String,
        namespace: String,
        status: String,
    },
    #[error("`ctr {args}` failed: {detail}")]
    Ctr { args: String, detail: String },
}

fn binary() -> String {
    std::env::var("NETSHIM_CTR").unwrap_or_else(|_| "ctr".into())
}

fn ctr(args: &[&str]) -> Result<String, ContainerdError> {
    let bin = binary();
    let out = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ContainerdError::Missing {
            bin: bin.clone(),
            source,
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        if stderr.contains("connect: permission denied")
            || stderr.contains("connect: no such file")
            || stderr.contains("connection refused")
            || stderr.contains("context deadline exceeded")
        {
            return Err(ContainerdError::Unreachable { detail: stderr });
        }
        return Err(ContainerdError::Ctr {
            args: args.join(" "),
            detail: stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The tasks of a namespace: (container ID, PID, status).
fn tasks(namespace: &str) -> Result<Vec<(String, i32, String)>, ContainerdError> {
    Ok(parse_tasks(&ctr(&["-n", namespace, "tasks", "ls"])?))
}

fn parse_tasks(text: &str) -> Vec<(String, i32, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next()?.to_string();
            let pid = f.next()?.parse().ok()?;
            let status = f.next().unwrap_or("UNKNOWN").to_string();
            Some((id, pid, status))
        })
        .collect()
}

/// IDs of the containers whose labels match all of `labels`.
fn containers_with(
    namespace: &str,
    labels: &[(&str, &str)],
) -> Result<Vec<String>, ContainerdError> {
    let filter = labels
        .iter()
        .map(|(k, v)| format!("labels.\"{k}\"=={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let out = ctr(&["-n", namespace, "containers", "ls", "-q", &filter])?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The PID of the running task among `ids` (a pod can have old sandboxes).
fn running_pid(namespace: &str, what: &str, ids: &[String]) -> Result<i32, ContainerdError> {
    if ids.is_empty() {
        return Err(ContainerdError::NotFound {
            what: what.into(),
            namespace: namespace.into(),
        });
    }
    let all = tasks(namespace)?;
    let mut status = "no task".to_string();
    for (id, pid, st) in &all {
        if ids.contains(id) {
            if st == "RUNNING" && *pid > 0 {
                return Ok(*pid);
            }
            status = st.clone();
        }
    }
    Err(ContainerdError::NotRunning {
        what: what.into(),
        namespace: namespace.into(),
        status,
    })
}

/// `containerd:NAMESPACE/ID`.
pub fn container_pid(namespace: &str, id: &str) -> Result<i32, ContainerdError> {
    let what = format!("container {id:?}");
    let exists = ctr(&["-n", namespace, "containers", "ls", "-q"])?
        .lines()
        .any(|l| l.trim() == id);
    let ids = if exists { vec![id.to_string()] } else { vec![] };
    running_pid(namespace, &what, &ids)
}

/// `nerdctl:NAME`, in `$CONTAINERD_NAMESPACE` (nerdctl's default: `default`).
pub fn nerdctl_pid(name: &str) -> Result<i32, ContainerdError> {
    let ns = std::env::var("CONTAINERD_NAMESPACE").unwrap_or_else(|_| "default".into());
    let ids = containers_with(&ns, &[("nerdctl/name", name)])?;
    running_pid(&ns, &format!("nerdctl container {name:?}"), &ids)
}

/// What containerd's CRI plugin says of one of its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriContainer {
    pub id: String,
    pub pod_namespace: String,
    pub pod: String,
    /// `None` for the pod's sandbox.
    pub container: Option<String>,
}

fn cri_container(id: &str, info: &str) -> Option<CriContainer> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    let a = v.pointer("/Spec/annotations")?;
    let get = |k: &str| a.get(k).and_then(|x| x.as_str()).map(String::from);
    let kind = get("io.kubernetes.cri.container-type")?;
    Some(CriContainer {
        id: id.into(),
        pod_namespace: get("io.kubernetes.cri.sandbox-namespace")?,
        pod: get("io.kubernetes.cri.sandbox-name")?,
        container: match kind.as_str() {
            "sandbox" => None,
            _ => Some(get("io.kubernetes.cri.container-name")?),
        },
    })
}

/// The containers of containerd's CRI plugin (namespace `k8s.io`).
pub fn cri_containers() -> Result<Vec<CriContainer>, ContainerdError> {
    let ids = ctr(&["-n", "k8s.io", "containers", "ls", "-q"])?;
    Ok(ids
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|id| cri_container(id, &ctr(&["-n", "k8s.io", "containers", "info", id]).ok()?))
        .collect())
}

/// `k8s:NAMESPACE/POD[/CONTAINER]`: the pod's sandbox (its network
/// namespace is the pod's), or the named container.
pub fn k8s_pid(
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> Result<i32, ContainerdError> {
    let what = match container {
        Some(c) => format!("container {c:?} of pod {namespace}/{pod}"),
        None => format!("pod {namespace}/{pod}"),
    };
    let ids: Vec<String> = cri_containers()?
        .into_iter()
        .filter(|c| {
            c.pod_namespace == namespace && c.pod == pod && c.container.as_deref() == container
        })
        .map(|c| c.id)
        .collect();
    running_pid("k8s.io", &what, &ids)
}

/// Running tasks in every containerd namespace: (namespace, ID, PID);
/// `None` when containerd cannot be asked.
pub fn list_running() -> Option<Vec<(String, String, i32)>> {
    let nss = ctr(&["namespaces", "ls", "-q"]).ok()?;
    let mut out = Vec::new();
    for ns in nss.lines().map(str::trim).filter(|l| !l.is_empty()) {
        for (id, pid, st) in tasks(ns).unwrap_or_default() {
            if st == "RUNNING" {
                out.push((ns.to_string(), id, pid));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_listing_parses() {
        let t = parse_tasks(
            "TASK    PID     STATUS    \nweb     4242    RUNNING\nold     0       STOPPED\n",
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], ("web".into(), 4242, "RUNNING".into()));
        assert_eq!(t[1].2, "STOPPED");
    }

    #[test]
    fn cri_annotations_name_the_pod() {
        let sandbox = r#"{"ID": "abc", "Spec": {"annotations": {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-namespace": "default",
            "io.kubernetes.cri.sandbox-name": "web"}}}"#;
        let c = cri_container("abc", sandbox).unwrap();
        assert_eq!(
            (c.pod_namespace.as_str(), c.pod.as_str(), c.container),
            ("default", "web", None)
        );
        let ctr = sandbox.replace("\"sandbox\"", "\"container\"").replace(
            "\"web\"}",
            "\"web\", \"io.kubernetes.cri.container-name\": \"tools\"}",
        );
        assert_eq!(
            cri_container("d", &ctr).unwrap().container.as_deref(),
            Some("tools")
        );
        assert!(cri_container("e", r#"{"Spec": {"annotations": {}}}"#).is_none());
        assert!(cri_container("e", "not json").is_none());
    }

    #[test]
    fn a_missing_binary_says_how_to_get_one() {
        std::env::set_var("NETSHIM_CTR", "/nonexistent/ctr");
        let e = container_pid("default", "x").unwrap_err();
        std::env::remove_var("NETSHIM_CTR");
        assert!(e.to_string().contains("NETSHIM_CTR"), "{e}");
    }
}
