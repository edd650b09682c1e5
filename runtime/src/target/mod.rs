//! Target forms (`/path`, `pid:PID`, `netns:NAME`, `docker:NAME|ID`) and
//! their resolution to an open network-namespace file.

pub mod containerd;
pub mod discover;
pub mod docker;
pub mod podman;
pub mod select;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;

use crate::kernel::ns::NsFile;

/// Where iproute2 keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A network-namespace file: `/proc/PID/ns/net`, `/run/netns/NAME`, any nsfs bind mount.
    Path(PathBuf),
    /// The network namespace of a process.
    Pid(i32),
    /// An iproute2 named namespace (`ip netns add NAME`).
    Netns(String),
    /// A Docker container, by name or ID, through the Engine API.
    Docker(String),
    /// A Podman container, by name or ID, through the Podman CLI.
    Podman(String),
    /// A containerd container's task: `containerd:NAMESPACE/ID`.
    Containerd { namespace: String, id: String },
    /// A nerdctl container by name (containerd label `nerdctl/name`).
    Nerdctl(String),
    /// A Kubernetes pod (its sandbox) or one of its containers, through the
    /// labels containerd's CRI plugin sets: `k8s:NAMESPACE/POD[/CONTAINER]`.
    K8s {
        namespace: String,
        pod: String,
        container: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "cannot understand target {0:?}: use a network-namespace path (/proc/PID/ns/net, \
         /run/netns/NAME), pid:PID, netns:NAME, docker:NAME, podman:NAME, containerd:NAMESPACE/ID, \
         nerdctl:NAME or k8s:NAMESPACE/POD[/CONTAINER]"
    )]
    BadForm(String),
    #[error("target {target}: {path} does not exist{hint}")]
    NotFound {
        target: String,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("target {target}: process {pid} does not exist (it may have exited): check the PID with `ps -p {pid}`")]
    NoProcess { target: String, pid: i32 },
    #[error(
        "target {target}: permission denied opening {path}: the namespace belongs to another user; \
         run netshim as that user, or as root"
    )]
    Denied { target: String, path: PathBuf },
    #[error("target {target}: process {pid} exited while netshim opened its namespace; start the target again")]
    Gone { target: String, pid: i32 },
    #[error("target {target}: {path} is a symbolic link; give the namespace file itself")]
    Symlink { target: String, path: PathBuf },
    #[error("target {target}: {path} is not a network-namespace file{hint}")]
    NotNetns {
        target: String,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("target {target}: cannot open {path}: {errno}")]
    Open {
        target: String,
        path: PathBuf,
        errno: Errno,
    },
    #[error("target {target}: {source}")]
    Podman {
        target: String,
        #[source]
        source: crate::target::podman::PodmanError,
    },
    #[error("target {target}: {source}")]
    Containerd {
        target: String,
        #[source]
        source: crate::target::containerd::ContainerdError,
    },
    #[error("target {target}: {source}")]
    Docker {
        target: String,
        #[source]
        source: docker::DockerError,
    },
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TargetError::BadForm(s.to_string());
        if let Some(p) = s.strip_prefix("pid:") {
            let pid: i32 = p.parse().map_err(|_| bad())?;
            if pid <= 0 {
                return Err(bad());
            }
            return Ok(Target::Pid(pid));
        }
        if let Some(n) = s.strip_prefix("netns:") {
            if n.is_empty() || n.contains('/') || n == "." || n == ".." {
                return Err(bad());
            }
            return Ok(Target::Netns(n.to_string()));
        }
        if let Some(n) = s.strip_prefix("podman:") {
            if n.is_empty() {
                return Err(bad());
            }
            return Ok(Target::Podman(n.to_string()));
        }
        let word = |w: &str| !w.is_empty() && w != "." && w != "..";
        if let Some(n) = s.strip_prefix("containerd:") {
            let (namespace, id) = n.split_once('/').unwrap_or(("default", n));
            if !word(namespace) || !word(id) || id.contains('/') {
                return Err(bad());
            }
            return Ok(Target::Containerd {
                namespace: namespace.into(),
                id: id.into(),
            });
        }
        if let Some(n) = s.strip_prefix("nerdctl:") {
            if !word(n) {
                return Err(bad());
            }
            return Ok(Target::Nerdctl(n.into()));
        }
        if let Some(n) = s.strip_prefix("k8s:") {
            let parts: Vec<&str> = n.split('/').collect();
            return match parts[..] {
                [ns, pod] if word(ns) && word(pod) => Ok(Target::K8s {
                    namespace: ns.into(),
                    pod: pod.into(),
                    container: None,
                }),
                [ns, pod, c] if word(ns) && word(pod) && word(c) => Ok(Target::K8s {
                    namespace: ns.into(),
                    pod: pod.into(),
                    container: Some(c.into()),
                }),
                _ => Err(bad()),
            };
        }
        if let Some(n) = s.strip_prefix("docker:") {
            if n.is_empty() {
                return Err(bad());
            }
            return Ok(Target::Docker(n.to_string()));
        }
        if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
            return Ok(Target::Path(PathBuf::from(s)));
        }
        Err(bad())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Path(p) => write!(f, "{}", p.display()),
            Target::Pid(p) => write!(f, "pid:{p}"),
            Target::Netns(n) => write!(f, "netns:{n}"),
            Target::Docker(n) => write!(f, "docker:{n}"),
            Target::Podman(n) => write!(f, "podman:{n}"),
            Target::Containerd { namespace, id } => write!(f, "containerd:{namespace}/{id}"),
            Target::Nerdctl(n) => write!(f, "nerdctl:{n}"),
            Target::K8s {
                namespace,
                pod,
                container: None,
            } => write!(f, "k8s:{namespace}/{pod}"),
            Target::K8s {
                namespace,
                pod,
                container: Some(c),
            } => write!(f, "k8s:{namespace}/{pod}/{c}"),
        }
    }
}

/// A target whose network namespace is open.
#[derive(Debug)]
pub struct Resolved {
    pub target: Target,
    pub netns: NsFile,
    /// A process known to live in the target (its init), when there is one.
    pub pid: Option<i32>,
}

impl Target {
    /// Opens the target's network namespace and checks that it is one.
    pub fn resolve(&self) -> Result<Resolved, TargetError> {
        let t = self.to_string();
        let (path, follow, pid, hint): (PathBuf, bool, Option<i32>, &'static str) = match self {
            Target::Path(p) => {
                // /proc/PID/ns/* are magic links and must be followed; any
                // other path must be the namespace file itself.
                let follow = p.starts_with("/proc/");
                (p.clone(), follow, None, "")
            }
            Target::Pid(pid) => (
                PathBuf::from(format!("/proc/{pid}/ns/net")),
                true,
                Some(*pid),
                "",
            ),
            Target::Netns(name) => (
                Path::new(NETNS_RUN_DIR).join(name),
                false,
                None,
                ": list the named namespaces with `ip netns list`",
            ),
            Target::Podman(name) => {
                let pid = crate::target::podman::container_pid(name).map_err(|source| {
                    TargetError::Podman {
                        target: t.clone(),
                        source,
                    }
                })?;
                (
                    PathBuf::from(format!("/proc/{pid}/ns/net")),
                    true,
                    Some(pid),
                    "",
                )
            }
            Target::Containerd { .. } | Target::Nerdctl(_) | Target::K8s { .. } => {
                use crate::target::containerd;
                let pid = match self {
                    Target::Containerd { namespace, id } => {
                        containerd::container_pid(namespace, id)
                    }
                    Target::Nerdctl(n) => containerd::nerdctl_pid(n),
                    Target::K8s {
                        namespace,
                        pod,
                        container,
                    } => containerd::k8s_pid(namespace, pod, container.as_deref()),
                    _ => unreachable!("matched above"),
                }
                .map_err(|source| TargetError::Containerd {
                    target: t.clone(),
                    source,
                })?;
                tracing::debug!(pid, "containerd task resolved");
                (
                    PathBuf::from(format!("/proc/{pid}/ns/net")),
                    true,
                    Some(pid),
                    "",
                )
            }
            Target::Docker(name) => {
                let sock = docker::default_socket().map_err(|source| TargetError::Docker {
                    target: t.clone(),
                    source,
                })?;
                let info = docker::Client::new(sock).inspect(name).map_err(|source| {
                    TargetError::Docker {
                        target: t.clone(),
                        source,
                    }
                })?;
                tracing::debug!(id = %info.id, pid = info.pid, "docker container resolved");
                (
                    PathBuf::from(format!("/proc/{}/ns/net", info.pid)),
                    true,
                    Some(info.pid),
                    "",
                )
            }
        };
        // PID targets: pin the process with a pidfd before opening its
        // namespace, and check it is still alive after. If the PID had been
        // reused in between, the pidfd (of the original process) would report
        // it gone, so the namespace opened is really that process's.
        let pinned = match pid {
            Some(p) => match crate::kernel::ns::pidfd_open(p) {
                Ok(fd) => Some(fd),
                Err(Errno::ESRCH) => {
                    return Err(TargetError::NoProcess {
                        target: t.clone(),
                        pid: p,
                    })
                }
                Err(_) => None, // pidfd_open unsupported (Linux < 5.3)
            },
            None => None,
        };
        let netns = NsFile::open(&path, follow).map_err(|errno| match errno {
            Errno::ENOENT | Errno::ESRCH => match pid {
                Some(pid) => TargetError::NoProcess {
                    target: t.clone(),
                    pid,
                },
                None => TargetError::NotFound {
                    target: t.clone(),
                    path: path.clone(),
                    hint,
                },
            },
            Errno::EACCES | Errno::EPERM => TargetError::Denied {
                target: t.clone(),
                path: path.clone(),
            },
            Errno::ELOOP => TargetError::Symlink {
                target: t.clone(),
                path: path.clone(),
            },
            errno => TargetError::Open {
                target: t.clone(),
                path: path.clone(),
                errno,
            },
        })?;
        if let (Some(fd), Some(p)) = (&pinned, pid) {
            if !crate::kernel::ns::pidfd_alive(fd) {
                return Err(TargetError::Gone {
                    target: t.clone(),
                    pid: p,
                });
            }
        }
        match netns.ns_type() {
            Ok(libc::CLONE_NEWNET) => {}
            _ => {
                return Err(TargetError::NotNetns {
                    target: t,
                    path,
                    hint: match self {
                        Target::Netns(_) => {
                            ": is it an iproute2 namespace? `ip netns list` shows them"
                        }
                        _ => ": give /proc/PID/ns/net or a bind mount of one",
                    },
                })
            }
        }
        Ok(Resolved {
            target: self.clone(),
            netns,
            pid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse() {
        assert_eq!("pid:42".parse::<Target>().unwrap(), Target::Pid(42));
        assert_eq!(
            "netns:blue".parse::<Target>().unwrap(),
            Target::Netns("blue".into())
        );
        assert_eq!(
            "docker:web".parse::<Target>().unwrap(),
            Target::Docker("web".into())
        );
        assert_eq!(
            "podman:db".parse::<Target>().unwrap(),
            Target::Podman("db".into())
        );
        assert_eq!(
            "/proc/1/ns/net".parse::<Target>().unwrap(),
            Target::Path("/proc/1/ns/net".into())
        );
        for bad in [
            "pid:",
            "pid:-1",
            "pid:x",
            "netns:",
            "netns:a/b",
            "netns:..",
            "docker:",
            "podman:",
            "containerd:",
            "containerd:ns/",
            "containerd:a/b/c",
            "nerdctl:",
            "k8s:default",
            "k8s:default/",
            "k8s:a/b/c/d",
            "k8s:../pod",
            "web",
            "",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(
            "containerd:web".parse::<Target>().unwrap().to_string(),
            "containerd:default/web"
        );
        assert_eq!(
            "k8s:kube-system/coredns-1/coredns"
                .parse::<Target>()
                .unwrap(),
            Target::K8s {
                namespace: "kube-system".into(),
                pod: "coredns-1".into(),
                container: Some("coredns".into())
            }
        );
        for s in [
            "pid:7",
            "netns:x",
            "docker:y",
            "podman:w",
            "/run/netns/z",
            "containerd:k8s.io/abc",
            "nerdctl:web",
            "k8s:default/web",
            "k8s:default/web/tools",
        ] {
            assert_eq!(s.parse::<Target>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn own_process_resolves() {
        let me = std::process::id() as i32;
        let r = Target::Pid(me).resolve().unwrap();
        assert_eq!(r.pid, Some(me));
        assert_eq!(
            r.netns.id().unwrap(),
            crate::kernel::ns::own_netns().unwrap().id().unwrap()
        );
    }

    #[test]
    fn missing_and_wrong_targets_say_why() {
        let e = Target::Netns("netshim-no-such-ns".into())
            .resolve()
            .unwrap_err();
        assert!(e.to_string().contains("ip netns list"), "{e}");
        let e = Target::Pid(i32::MAX).resolve().unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = Target::Path("/proc/self/ns/user".into())
            .resolve()
            .unwrap_err();
        assert!(
            e.to_string().contains("not a network-namespace file"),
            "{e}"
        );
        let e = Target::Path("/etc/hostname".into()).resolve().unwrap_err();
        assert!(
            e.to_string().contains("not a network-namespace file"),
            "{e}"
        );
    }

    #[test]
    fn symlinked_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ns");
        std::os::unix::fs::symlink("/proc/self/ns/net", &link).unwrap();
        let e = Target::Path(link).resolve().unwrap_err();
        assert!(matches!(e, TargetError::Symlink { .. }), "{e}");
    }
}
