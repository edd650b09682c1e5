//! The OCI spec netshim synthesizes for `netshim run`.
//!
//! The process sees the host's files, but libcontainer is never pointed at
//! the host's `/` itself: it populates `/dev` (device nodes, `/dev/ptmx`,
//! `/dev/kcore` symlinks), and devtmpfs is shared by every mount namespace,
//! so doing that on the host's `/dev` would change the host. Instead the
//! rootfs is an empty directory of netshim's own on which netshim, in its
//! private mount namespace, binds the host's `/` recursively
//! ([`crate::privilege::enter::bind_host_root`]); the spec then mounts only
//! a fresh tmpfs on `/dev`, with `/dev/pts` and `/dev/shm` in it. `/sys`
//! is the host's, as it comes with that bind, remounted
//! `nosuid,nodev,noexec` there.
//!
//! The process gets a PID namespace of its own and a fresh procfs on
//! `/proc` (`nosuid,nodev,noexec`), mounted by libcontainer's init once it
//! is in that namespace: the host's `/proc` of the bind is covered, and no
//! other process of the host, of any UID, is visible or reachable through
//! it (`/proc/PID/environ`, `mem`, `root`). The process libcontainer starts
//! is netshim's init ([`super::init`]) from its sealed copy, which starts
//! the command as PID 2.

use std::io;
use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::kernel::caps::Cap;

/// What one `netshim run` asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub args: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub caps: Vec<Cap>,
    pub tty: bool,
    pub env: Vec<String>,
    pub cwd: String,
}

/// Namespaces and cgroup the spec points at, decided by the plan.
#[derive(Debug, Clone)]
pub struct Placement {
    pub netns_path: String,
    pub userns_path: Option<String>,
    pub cgroups_path: Option<String>,
    /// The init's executable as the process sees it (the sealed copy of
    /// netshim, `/proc/self/fd/N`).
    pub init_exe: String,
}

/// The environment a run starts with: a fixed PATH, the caller's TERM, and
/// HOME=/ (the unprivileged UID has no home of its own).
pub fn default_env(term: Option<&str>) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/".to_string(),
    ];
    if let Some(t) = term.filter(|t| !t.is_empty()) {
        env.push(format!("TERM={t}"));
    }
    env
}

/// Builds the spec.
pub fn build(req: &RunRequest, place: &Placement) -> io::Result<Spec> {
    let caps: Vec<String> = req.caps.iter().map(|c| c.to_string()).collect();
    let mut namespaces = vec![
        json!({"type": "mount"}),
        json!({"type": "pid"}),
        json!({"type": "network", "path": place.netns_path}),
    ];
    if let Some(u) = &place.userns_path {
        namespaces.push(json!({"type": "user", "path": u}));
    }
    // Over the bind of the host's `/` that the rootfs already is.
    let mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": [],
        "readonlyPaths": [],
        "seccomp": crate::privilege::seccomp::default_profile(),
    });
    if let Some(cg) = &place.cgroups_path {
        linux["cgroupsPath"] = Value::String(cg.clone());
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": false},
        "hostname": Value::Null,
        "process": {
            "terminal": req.tty,
            "user": {"uid": req.uid, "gid": req.gid, "additionalGids": []},
            "args": super::init::argv(&place.init_exe, &req.args),
            "env": req.env,
            "cwd": req.cwd,
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": caps, "ambient": caps,
            },
        },
        "mounts": mounts,
        "linux": linux,
    });
    serde_json::from_value(spec).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Creates the bundle's rootfs: an empty directory, on which
/// [`crate::privilege::enter::bind_host_root`] binds the host's `/`. Mode
/// 0711 whatever the umask, as the directories above it.
pub fn prepare_rootfs(rootfs: &Path) -> io::Result<()> {
    crate::statedir::make_dirs(rootfs, 0o711)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::caps::NET_RAW;
    use oci_spec::runtime::LinuxNamespaceType;

    fn req() -> RunRequest {
        RunRequest {
            args: vec!["ip".into(), "addr".into()],
            uid: 65534,
            gid: 65534,
            caps: vec![NET_RAW],
            tty: false,
            env: default_env(Some("xterm")),
            cwd: "/".into(),
        }
    }

    #[test]
    fn spec_has_exactly_the_requested_privileges() {
        let place = Placement {
            netns_path: "/proc/self/fd/7".into(),
            userns_path: Some("/proc/self/fd/8".into()),
            cgroups_path: None,
            init_exe: "/proc/self/fd/9".into(),
        };
        let spec = build(&req(), &place).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.user().uid(), 65534);
        assert_eq!(p.no_new_privileges(), Some(true));
        let c = p.capabilities().as_ref().unwrap();
        for set in [
            c.bounding(),
            c.effective(),
            c.permitted(),
            c.inheritable(),
            c.ambient(),
        ] {
            let set = set.as_ref().unwrap();
            assert_eq!(set.len(), 1);
            assert!(set.contains(&oci_spec::runtime::Capability::NetRaw));
        }
        assert!(p
            .env()
            .as_ref()
            .unwrap()
            .contains(&"TERM=xterm".to_string()));
        let ns = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap();
        let find = |t| ns.iter().find(|n| n.typ() == t);
        assert!(find(LinuxNamespaceType::Mount).unwrap().path().is_none());
        assert_eq!(
            find(LinuxNamespaceType::Network).unwrap().path().as_deref(),
            Some(Path::new("/proc/self/fd/7"))
        );
        assert_eq!(
            find(LinuxNamespaceType::User).unwrap().path().as_deref(),
            Some(Path::new("/proc/self/fd/8"))
        );
        // A PID namespace of its own, with the init first.
        assert!(find(LinuxNamespaceType::Pid).unwrap().path().is_none());
        assert_eq!(
            p.args().as_ref().unwrap(),
            &["/proc/self/fd/9", super::super::init::COMMAND, "ip", "addr"]
        );
        let proc = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/proc"))
            .unwrap();
        assert_eq!(proc.typ().as_deref(), Some("proc"));
        let opts = proc.options().as_ref().unwrap();
        for o in ["nosuid", "nodev", "noexec"] {
            assert!(opts.iter().any(|x| x == o), "{o}");
        }
    }

    #[test]
    fn host_dev_is_never_bound() {
        let place = Placement {
            netns_path: "/run/netns/x".into(),
            userns_path: None,
            cgroups_path: Some("/netshim/x".into()),
            init_exe: "/proc/self/fd/9".into(),
        };
        let spec = build(&req(), &place).unwrap();
        let mounts = spec.mounts().as_ref().unwrap();
        let dev = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/dev"))
            .unwrap();
        assert_eq!(dev.typ().as_deref(), Some("tmpfs"));
        assert!(mounts
            .iter()
            .all(|m| m.source().as_deref() != Some(Path::new("/dev"))));
        // Nothing of the host is bound by the spec: the rootfs is the bind.
        assert!(mounts.iter().all(|m| m.typ().as_deref() != Some("bind")));
        assert_eq!(
            spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
            Some(Path::new("/netshim/x"))
        );
    }
}
