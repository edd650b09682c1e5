//! netshim as a runc-compatible OCI runtime on libcontainer, for containerd's
//! runc v2 shim (`BinaryName`) and dockerd (`runtimes` in daemon.json), with
//! KEP 2763 ambient capabilities applied to every non-root process.
//!
//! What netshim adds to libcontainer, and why:
//! - the policy ([`policy`]) adds the ambient capabilities asked for by the
//!   annotation or the runtime's defaults; the spec's own capabilities are
//!   applied as runc applies them, and the bundle itself is never modified
//!   (`create`);
//! - what libcontainer drops or does differently from runc is done here:
//!   `disableOOMKiller` and the hierarchies runc joins (`cgroups`),
//!   poststop hooks that fail (`delete`);
//! - the ambient set is checked in `/proc/PID/status` after create, before
//!   the command runs (libcontainer only logs a warning when raising it fails);
//! - loopback is brought up in a network namespace the container creates, as
//!   runc does (containerd's `ctr run` and Docker rely on it);
//! - rootless (root in a user namespace, as under rootlesskit) on a cgroup v1
//!   host gets a cgroup v2 view in a private mount namespace, where
//!   libcontainer leaves the container in its parent cgroup as runc does
//!   rootless (see [`crate::privilege::enter::private_cgroup_view`]);
//! - errors name the container and say what to do, with the words
//!   containerd's shim matches on ("does not exist", "container not running").
//!
//! One file per operation, as runc's and youki's command sets are laid out:
//! `create`, `start`, `state` (and `list`), `kill`, `delete`, `pause` (and
//! `resume`), `events`, `ps`, `update`, `exec`, `features`, `spec`, and
//! `foreground` (`run` without `--detach`); `bundle` reads a bundle, `cgroups`
//! holds the cgroup work libcontainer leaves to its caller.

mod bundle;
mod cgroups;
pub mod config;
mod create;
mod delete;
mod events;
mod exec;
mod executor;
mod features;
mod foreground;
mod kill;
mod pause;
pub mod policy;
mod ps;
mod spec;
mod start;
mod state;
mod update;

pub(crate) use bundle::annotations_of;
use bundle::private_dir;
pub use bundle::read_json;
pub use exec::wait_exec;
pub use features::features;
pub use foreground::run_foreground;
pub use kill::parse_signal;
pub use spec::write_default_spec;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use serde_json::Value;

use crate::kernel::caps::{CapMask, ProcCreds};
use policy::{Decision, Policy, PolicyError};

/// The largest config.json or process.json netshim reads. Real ones are a
/// few KiB; the limit keeps a hostile file from exhausting memory.
const MAX_SPEC: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists: choose another ID, or `delete` the old one first")]
    Exists(String),
    #[error("cannot signal container {0}: container not running")]
    NotRunning(String),
    #[error("container {id} is {status}; {what} needs a container that is {need}")]
    WrongStatus {
        id: String,
        status: String,
        what: &'static str,
        need: &'static str,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is larger than 4 MiB; an OCI spec is a few KiB")]
    TooLarge { path: PathBuf },
    #[error("malformed {path}: {reason}; fix the file (the OCI runtime spec describes it)")]
    Malformed { path: PathBuf, reason: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    StateDir(#[from] crate::statedir::StateDirError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} failed for container {id}: {source}")]
    Libcontainer {
        what: &'static str,
        id: String,
        #[source]
        source: Box<LibcontainerError>,
    },
    #[error(
        "container {id} does not hold the ambient capabilities netshim planned ({want}); CapAmb is {got}. \
         The container was removed. This is a kernel or security-module policy netshim did not expect; \
         report it with `netshim --debug create ...` output"
    )]
    AmbientMismatch {
        id: String,
        want: String,
        got: String,
    },
    #[error("cannot read the credentials of container {id}'s process: {source}")]
    ReadCreds {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot bring up loopback in container {id}'s network namespace: {source}")]
    Loopback {
        id: String,
        #[source]
        source: Errno,
    },
    #[error(
        "cannot prepare a cgroup view for a rootless runtime (a private mount namespace): {0}"
    )]
    CgroupView(#[source] Errno),
    #[error("cgroup operation failed for container {id}: {reason}")]
    Cgroup { id: String, reason: String },
    #[error(
        "invalid container ID format {id:?}: {reason}; use one or more letters, digits, \
         '_', '+', '-' or '.', and not \".\" or \"..\" (runc's rule)"
    )]
    InvalidId { id: String, reason: &'static str },
    #[error("invalid signal {0:?}: use a name (TERM, SIGKILL) or a number (1-64)")]
    BadSignal(String),
    #[error("waiting for the process failed: {0}")]
    Wait(#[source] Errno),
}

impl OciError {
    fn lc<'a>(what: &'static str, id: &'a str) -> impl FnOnce(LibcontainerError) -> OciError + 'a {
        move |e| OciError::Libcontainer {
            what,
            id: id.to_string(),
            source: Box::new(e),
        }
    }
}

/// The runtime-wide settings every command shares (runc's global flags).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub policy: Policy,
    /// Rootless on a cgroup v1 host: this process sees netshim's cgroup v2
    /// view (see [`Runtime::new`]).
    pub cgroup_view: bool,
}

/// True when this process is root in the initial user namespace. Anything
/// else (an unprivileged user, or root under rootlesskit) is rootless.
pub fn privileged() -> bool {
    nix::unistd::geteuid().is_root()
        && fs::read_to_string("/proc/self/uid_map")
            .map(|m| {
                let f: Vec<&str> = m.split_whitespace().collect();
                f == ["0", "0", "4294967295"]
            })
            .unwrap_or(false)
}

/// runc's defaults, under netshim's name: `/run/netshim/runtime` for root,
/// `$XDG_RUNTIME_DIR/netshim/runtime` otherwise.
pub fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() && privileged() {
        return PathBuf::from("/run/netshim/runtime");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        Some(x) => PathBuf::from(x).join("netshim/runtime"),
        None if nix::unistd::geteuid().is_root() => PathBuf::from("/run/netshim/runtime"),
        None => PathBuf::from(format!(
            "/tmp/netshim-{}/runtime",
            nix::unistd::geteuid().as_raw()
        )),
    }
}

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
}

/// Options of `exec`: a process.json, or the pieces of one.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub caps: Vec<String>,
    pub tty: bool,
    pub no_new_privs: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
}

/// The OCI state of a container, as `runc state` prints it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn status_name(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The directory of the root netshim stages changed specs in; no container
/// may take its name.
const STAGING: &str = ".netshim";

/// Checks a container ID before any path is built from it: runc's rule
/// (libcontainer's `validateID`: `^[\w+\-\.]+$` with ASCII `\w`, and not
/// `.` or `..`), plus netshim's own staging directory's name. Every command
/// that takes an ID calls this first, so that no ID can name a path outside
/// the root (`../../x`, `a/b`) or the root itself.
pub fn validate_id(id: &str) -> Result<(), OciError> {
    let bad = |reason| {
        Err(OciError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("the ID is empty");
    }
    if id == "." || id == ".." {
        return bad("the ID names a directory, not a container");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return bad("the ID holds a character outside the allowed set");
    }
    if id == STAGING {
        return bad("the name is reserved for netshim's own staging directory");
    }
    Ok(())
}

fn cgroup2_at_root() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

impl Runtime {
    /// Prepares the root directory and, for a rootless runtime on a cgroup
    /// v1 host, netshim's cgroup view. Call once per command, before any
    /// thread is started.
    pub fn new(root: PathBuf, systemd_cgroup: bool, policy: Policy) -> Result<Runtime, OciError> {
        private_dir(&root)?;
        let mut cgroup_view = false;
        if !privileged() && nix::unistd::geteuid().is_root() && !cgroup2_at_root() {
            crate::privilege::enter::private_cgroup_view(false).map_err(OciError::CgroupView)?;
            cgroup_view = true;
        }
        Ok(Runtime {
            root,
            systemd_cgroup,
            policy,
            cgroup_view,
        })
    }

    fn staging(&self, id: &str) -> PathBuf {
        self.root.join(STAGING).join(id)
    }

    fn load(&self, id: &str) -> Result<Container, OciError> {
        validate_id(id)?;
        let dir = self.root.join(id);
        if !dir.join("state.json").exists() {
            return Err(OciError::NotFound(id.into()));
        }
        let mut c = Container::load(dir).map_err(OciError::lc("loading the state", id))?;
        c.refresh_status()
            .map_err(OciError::lc("reading the status", id))?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rule() {
        for ok in ["a", "web-1", "k8s_POD.x+y", "...", ".a", "0"] {
            validate_id(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "", ".", "..", "../../x", "a/b", "/abs", "a b", "é", "a\0b", ".netshim", "x\n",
        ] {
            let e = validate_id(bad).unwrap_err();
            assert!(matches!(e, OciError::InvalidId { .. }), "{bad:?} gave {e}");
            assert!(e.to_string().starts_with("invalid container ID format"));
        }
    }

    /// `delete --force ../../x` once removed `ROOT/.netshim/../../x`, a
    /// directory beside the root, before the ID was refused.
    #[test]
    fn hostile_ids_touch_nothing_outside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("state/root");
        fs::create_dir_all(&root).unwrap();
        let sentinel = t.path().join("state/x");
        fs::create_dir_all(&sentinel).unwrap();
        fs::write(sentinel.join("keep"), "1").unwrap();
        let rt = Runtime {
            root: root.clone(),
            systemd_cgroup: false,
            policy: Policy::default(),
            cgroup_view: false,
        };
        let bundle = t.path().join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        fs::write(bundle.join("config.json"), "{}").unwrap();
        let opts = CreateOptions {
            bundle,
            ..Default::default()
        };
        for id in ["../../x", "../x", "..", "a/../../x"] {
            let e = rt.delete(id, true).unwrap_err();
            assert!(matches!(e, OciError::InvalidId { .. }), "{id}: {e}");
            let e = rt.create(id, &opts).unwrap_err();
            assert!(matches!(e, OciError::InvalidId { .. }), "{id}: {e}");
            for e in [
                rt.state(id).map(|_| ()),
                rt.start(id),
                rt.kill(id, "KILL", true),
                rt.pause(id),
                rt.resume(id),
                rt.pids(id).map(|_| ()),
                rt.update(id, &Value::Null),
                rt.exec(id, &ExecOptions::default()).map(|_| ()),
            ] {
                assert!(matches!(e, Err(OciError::InvalidId { .. })), "{id}: {e:?}");
            }
        }
        assert_eq!(fs::read_to_string(sentinel.join("keep")).unwrap(), "1");
        assert!(root.is_dir());
    }
}
