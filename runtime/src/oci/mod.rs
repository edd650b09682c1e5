//! netshim as a runc-compatible OCI runtime on libcontainer, for containerd's
//! runc v2 shim (`BinaryName`) and dockerd (`runtimes` in daemon.json), with
//! KEP 2763 ambient capabilities applied to every non-root process.
//!
//! What netshim adds to libcontainer, and why:
//! - the policy ([`policy`]) rewrites `process.capabilities` of a copy of the
//!   bundle's config.json before libcontainer reads it; the bundle itself is
//!   never modified, and the container's recorded bundle is the original;
//! - the ambient set is checked in `/proc/PID/status` after create, before
//!   the command runs (libcontainer only logs a warning when raising it fails);
//! - loopback is brought up in a network namespace the container creates, as
//!   runc does (containerd's `ctr run` and Docker rely on it);
//! - rootless (root in a user namespace, as under rootlesskit) on a cgroup v1
//!   host gets a cgroup v2 view in a private mount namespace, where
//!   libcontainer leaves the container in its parent cgroup as runc does
//!   rootless (see [`crate::plan::private_cgroup_view`]);
//! - errors name the container and say what to do, with the words
//!   containerd's shim matches on ("does not exist", "container not running").

pub mod config;
pub mod policy;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use serde_json::Value;

use crate::caps::{CapMask, ProcCreds};
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

fn annotations_of(spec: &Value) -> BTreeMap<String, String> {
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
fn creates_netns(spec: &Value) -> bool {
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

/// Creates `path` (and its parents) for this user only.
fn private_dir(path: &Path) -> Result<(), OciError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| OciError::Write {
            path: path.into(),
            source,
        })
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), OciError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| OciError::Write {
        path: path.into(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(data).map_err(err)
}

/// Whether `id` can name a directory of the root: not empty, no path
/// separator, and not netshim's own `.netshim` (no leading dot).
fn names_a_container(id: &str) -> bool {
    !id.is_empty() && !id.contains('/') && !id.starts_with('.')
}

fn cgroup2_at_root() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Rootless on a cgroup v1 host, a `cgroup` mount cannot be made (the
/// kernel allows cgroup mounts only to a user namespace that owns the cgroup
/// namespace, and these hosts' v1 hierarchies belong to the initial one).
/// runc binds the host's hierarchies instead; netshim binds its own view of
/// `/sys/fs/cgroup` (the v2 hierarchy), read-only, which is what libcontainer
/// manages here.
fn bind_cgroup_view(spec: &mut Value) {
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

/// libcontainer 0.7 replaces any stdio descriptor that is `/dev/null` with
/// the container's `/dev/null` opened read-only, so a container whose
/// stdout or stderr the engine set to `/dev/null` (`ctr run --null-io`)
/// fails its writes with EBADF, where runc's reopened one is writable. A
/// write-only `/dev/zero` discards writes too and is left alone.
fn keep_null_output_writable() -> Result<(), OciError> {
    for fd in [1, 2] {
        if crate::launch::is_dev_null(fd) {
            let zero = fs::OpenOptions::new()
                .write(true)
                .open("/dev/zero")
                .map_err(|source| OciError::Read {
                    path: PathBuf::from("/dev/zero"),
                    source,
                })?;
            nix::unistd::dup2(zero.as_raw_fd(), fd).map_err(OciError::Wait)?;
        }
    }
    Ok(())
}

/// Checks what the kernel shows for a created (not yet started) process:
/// its ambient set holds every capability netshim added. The spec's own
/// sets are libcontainer's to apply, as runc applies them, and are not
/// checked here.
fn verify_ambient(id: &str, pid: i32, decision: &Decision) -> Result<(), OciError> {
    if decision.root || decision.added.is_empty() {
        return Ok(());
    }
    let creds = ProcCreds::read(pid).map_err(|source| OciError::ReadCreds {
        id: id.into(),
        source,
    })?;
    let want = CapMask::of(&decision.added);
    if creds.amb.0 & want.0 != want.0 {
        return Err(OciError::AmbientMismatch {
            id: id.into(),
            want: want.to_string(),
            got: creds.amb.to_string(),
        });
    }
    tracing::debug!(id, pid, ambient = %creds.amb, "ambient set verified");
    Ok(())
}

/// Removes the poststop hooks from libcontainer's record of a container
/// (`youki_config.json` in its state directory) and returns them.
fn take_poststop_hooks(dir: &Path) -> Option<Vec<oci_spec::runtime::Hook>> {
    use libcontainer::config::YoukiConfig;
    let mut cfg = YoukiConfig::load(dir).ok()?;
    let hooks = cfg.hooks.as_mut()?;
    let taken = hooks.poststop().clone().filter(|h| !h.is_empty())?;
    hooks.set_poststop(None);
    if let Err(e) = cfg.save(dir) {
        tracing::warn!(dir = %dir.display(), "cannot rewrite the container's record: {e}");
        return None;
    }
    Some(taken)
}

/// The hierarchies runc's cgroupfs driver joins and libcontainer's does
/// not: the named v1 ones (`name=systemd`, mounted without a controller)
/// and, on a hybrid host, the v2 one beside them. For each, the key of its
/// line in `/proc/self/cgroup` (`name=systemd`, or empty for v2), where it
/// is mounted, and the container's directory at `cgroup_path`: an absolute
/// path from the hierarchy's root, a relative one from this process's own
/// cgroup there, as runc takes them.
fn extra_hierarchies(cgroup_path: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    if cgroup_path.as_os_str().is_empty()
        || cgroup_path.to_string_lossy().contains(':')
        || cgroup2_at_root()
    {
        return Vec::new();
    }
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (fstype, _, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
        let key = match fstype {
            Some("cgroup") => match opts.split(',').find(|o| o.starts_with("name=")) {
                Some(name) => name.to_string(),
                None => continue,
            },
            Some("cgroup2") => String::new(),
            _ => continue,
        };
        let Some(point) = left.split(' ').nth(4).map(PathBuf::from) else {
            continue;
        };
        let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
        let dir = if cgroup_path.is_absolute() {
            point.join(rel)
        } else {
            point
                .join(own_cgroup(&own, &key).trim_start_matches('/'))
                .join(rel)
        };
        out.push((key, point, dir));
    }
    out
}

/// This process's cgroup in the hierarchy whose `/proc/self/cgroup` line
/// has `key` as its second field.
fn own_cgroup(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next();
            (f.next() == Some(key)).then(|| f.next().unwrap_or("/").to_string())
        })
        .unwrap_or_else(|| "/".into())
}

/// The extra hierarchies a container is being created in (see
/// [`extra_hierarchies`]). The runtime joins them itself before libcontainer
/// forks the container's init, so that the init starts there, and goes
/// back once the container is created: joined afterwards, a container with
/// a cgroup namespace would see its path from outside the namespace's root.
struct ExtraCgroups {
    /// The runtime's own directories, to go back to.
    back: Vec<PathBuf>,
}

impl ExtraCgroups {
    /// As with runc's, a failure here fails the create.
    fn enter(cgroup_path: &Path) -> Result<ExtraCgroups, String> {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut me = ExtraCgroups { back: Vec::new() };
        for (key, point, dir) in extra_hierarchies(cgroup_path) {
            let back = point.join(own_cgroup(&own, &key).trim_start_matches('/'));
            let joined = fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))
                .and_then(|()| {
                    fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
                        .map_err(|e| format!("joining {}: {e}", dir.display()))
                });
            if let Err(e) = joined {
                me.leave();
                return Err(e);
            }
            me.back.push(back);
        }
        Ok(me)
    }

    /// Puts the runtime back where it was; the container stays.
    fn leave(&self) {
        for back in &self.back {
            if let Err(e) = fs::write(back.join("cgroup.procs"), std::process::id().to_string()) {
                tracing::warn!(cgroup = %back.display(), "cannot return to the runtime's own cgroup: {e}");
            }
        }
    }

    /// Removes what was made, once nothing is in it any more.
    fn remove(cgroup_path: &Path) {
        for (_, _, dir) in extra_hierarchies(cgroup_path) {
            if let Err(e) = fs::remove_dir(&dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), "cannot remove the container's cgroup: {e}");
                }
            }
        }
    }
}

/// The cgroup v1 memory hierarchy path of `pid`, from `/proc/PID/cgroup`
/// (`ID:memory:/path`, controllers comma-separated), when it has one.
fn memory_cgroup(pid: i32) -> Option<String> {
    memory_cgroup_in(&fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

fn memory_cgroup_in(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        ctrl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })
}

/// `linux.resources.memory.disableOOMKiller`, which libcontainer 0.7 drops
/// (it always passes `false`): runc writes 1 to the cgroup v1
/// `memory.oom_control` of the container's memory cgroup and fails the
/// create when it cannot. cgroup v2 has no such file and runc ignores the
/// field there; so does netshim. Rootless, runc ignores cgroup errors.
fn disable_oom_killer(spec: &Value, pid: i32) -> Result<(), String> {
    if spec.pointer("/linux/resources/memory/disableOOMKiller") != Some(&Value::Bool(true)) {
        return Ok(());
    }
    let Some(rel) = memory_cgroup(pid) else {
        tracing::debug!(
            pid,
            "no cgroup v1 memory hierarchy: disableOOMKiller ignored, as runc does"
        );
        return Ok(());
    };
    let file = Path::new("/sys/fs/cgroup/memory")
        .join(rel.trim_start_matches('/'))
        .join("memory.oom_control");
    match fs::write(&file, "1") {
        Ok(()) => Ok(()),
        Err(e) if !privileged() => {
            tracing::warn!(file = %file.display(), "disableOOMKiller not applied (rootless): {e}");
            Ok(())
        }
        Err(e) => Err(format!("writing 1 to {}: {e}", file.display())),
    }
}

/// Sets `lo` up in the network namespace of `pid`, as runc does for a
/// network namespace it creates. Kernel rules: `setns(CLONE_NEWNET)` on one
/// thread needs CAP_SYS_ADMIN over the namespace's owner and changes only
/// that thread; SIOCSIFFLAGS needs CAP_NET_ADMIN over the socket's
/// namespace, which the runtime (root, or root of the owning rootless user
/// namespace) holds.
fn loopback_up(pid: i32) -> Result<(), Errno> {
    let ns = fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO))?;
    std::thread::spawn(move || -> Result<(), Errno> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own;
        // the socket is a valid descriptor for the call's duration.
        unsafe {
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
                return Err(Errno::last());
            }
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
                return Err(Errno::last());
            }
        }
        Ok(())
    })
    .join()
    .unwrap_or(Err(Errno::EIO))
}

impl Runtime {
    /// Prepares the root directory and, for a rootless runtime on a cgroup
    /// v1 host, netshim's cgroup view. Call once per command, before any
    /// thread is started.
    pub fn new(root: PathBuf, systemd_cgroup: bool, policy: Policy) -> Result<Runtime, OciError> {
        private_dir(&root)?;
        let mut cgroup_view = false;
        if !privileged() && nix::unistd::geteuid().is_root() && !cgroup2_at_root() {
            crate::plan::private_cgroup_view(false).map_err(OciError::CgroupView)?;
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
        self.root.join(".netshim").join(id)
    }

    fn load(&self, id: &str) -> Result<Container, OciError> {
        let dir = self.root.join(id);
        if !names_a_container(id) || !dir.join("state.json").exists() {
            return Err(OciError::NotFound(id.into()));
        }
        let mut c = Container::load(dir).map_err(OciError::lc("loading the state", id))?;
        c.refresh_status()
            .map_err(OciError::lc("reading the status", id))?;
        Ok(c)
    }

    /// `create`: reads the bundle, applies the ambient-capability policy to
    /// a copy of its config.json, creates the container with libcontainer,
    /// checks the ambient set and brings up loopback.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container, OciError> {
        self.create_inner(id, opts, true)
    }

    fn create_inner(
        &self,
        id: &str,
        opts: &CreateOptions,
        detach: bool,
    ) -> Result<Container, OciError> {
        if self.root.join(id).exists() {
            return Err(OciError::Exists(id.into()));
        }
        let bundle = fs::canonicalize(&opts.bundle).map_err(|source| OciError::Read {
            path: opts.bundle.clone(),
            source,
        })?;
        let config_path = bundle.join("config.json");
        let mut spec = read_json(&config_path)?;
        if !spec.is_object() {
            return Err(OciError::Malformed {
                path: config_path,
                reason: "the top level is not an object".into(),
            });
        }
        let annotations = annotations_of(&spec);
        let original = spec.clone();
        // runc runs a spec without `process` as far as `create`; libcontainer
        // needs one to build the init, so the policy sees an empty object.
        let decision = match spec.get_mut("process") {
            Some(process) => policy::apply(&self.policy, process, &annotations)?,
            None => Decision::default(),
        };
        if !decision.skipped_defaults.is_empty() {
            tracing::info!(id, skipped = %policy::names(&decision.skipped_defaults),
                "runtime default ambient capabilities left out: not in the container's bounding set");
        }
        tracing::debug!(id, added = %policy::names(&decision.added), root = decision.root, "policy applied");
        // runc's cgroupfs driver puts a container without `cgroupsPath` at
        // `<id>` (relative); libcontainer would use `:youki:<id>`.
        if privileged() && !self.systemd_cgroup && spec.pointer("/linux/cgroupsPath").is_none() {
            if let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) {
                linux.insert("cgroupsPath".into(), Value::String(id.to_string()));
            }
        }
        // libcontainer parses it again; parse here first for a clear message.
        if let Err(e) = serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone()) {
            return Err(OciError::Malformed {
                path: config_path,
                reason: e.to_string(),
            });
        }
        let new_netns = creates_netns(&spec);
        if self.cgroup_view {
            bind_cgroup_view(&mut spec);
        }

        let staging = self.staging(id);
        let result = (|| {
            // libcontainer reads BUNDLE/config.json. When netshim changed
            // nothing, it reads the bundle itself; otherwise the changed copy.
            let read_from = if spec == original {
                bundle.clone()
            } else {
                self.stage(id, &bundle, &mut spec)?
            };
            keep_null_output_writable()?;
            // runc runs in the bundle: relative mount sources and hook
            // paths resolve against it.
            std::env::set_current_dir(&bundle).map_err(|source| OciError::Read {
                path: bundle.clone(),
                source,
            })?;
            let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
                .with_root_path(&self.root)
                .map_err(OciError::lc("create", id))?
                .with_pid_file(opts.pid_file.clone())
                .map_err(OciError::lc("create", id))?
                .with_console_socket(opts.console_socket.clone())
                .with_preserved_fds(opts.preserve_fds)
                .validate_id()
                .map_err(OciError::lc("create", id))?;
            let cgroup_path = spec
                .pointer("/linux/cgroupsPath")
                .and_then(Value::as_str)
                .filter(|_| privileged() && !self.systemd_cgroup)
                .map(PathBuf::from);
            let extra = match &cgroup_path {
                Some(p) => ExtraCgroups::enter(p).map_err(|reason| {
                    ExtraCgroups::remove(p);
                    OciError::Cgroup {
                        id: id.into(),
                        reason,
                    }
                }),
                None => Ok(ExtraCgroups { back: Vec::new() }),
            };
            let built = extra.and_then(|extra| {
                let built = builder
                    .as_init(&read_from)
                    .with_systemd(self.systemd_cgroup)
                    .with_detach(detach)
                    .with_no_pivot(opts.no_pivot)
                    .build()
                    .map_err(OciError::lc("create", id));
                extra.leave();
                built
            });
            let mut container = match built {
                Ok(c) => c,
                Err(e) => {
                    if let Some(p) = &cgroup_path {
                        ExtraCgroups::remove(p);
                    }
                    return Err(e);
                }
            };
            if read_from != bundle {
                // Record the real bundle: `state`, later hooks and `exec`
                // (which re-reads the spec) use it.
                container.state.bundle = bundle.clone();
                container.save().map_err(OciError::lc("create", id))?;
            }
            let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
            let checked = verify_ambient(id, pid, &decision);
            let checked = checked
                .and_then(|()| -> Result<(), OciError> {
                    let cgroup = |reason| OciError::Cgroup {
                        id: id.into(),
                        reason,
                    };
                    disable_oom_killer(&spec, pid).map_err(cgroup)
                })
                .and_then(|()| {
                    if new_netns {
                        loopback_up(pid).map_err(|source| OciError::Loopback {
                            id: id.into(),
                            source,
                        })
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = checked {
                let _ = container.delete(true);
                return Err(e);
            }
            tracing::info!(id, pid, added = %policy::names(&decision.added), "created");
            Ok(container)
        })();
        let _ = fs::remove_dir_all(&staging);
        // Empty unless another create is under way: runc leaves nothing.
        let _ = fs::remove_dir(self.root.join(".netshim"));
        result
    }

    /// Writes the changed spec where libcontainer will read it and returns
    /// the directory to give it. First choice: the copy shown over
    /// `BUNDLE/config.json` in a mount namespace of this process's own, so
    /// that libcontainer, hooks and `state` see the real bundle, as with
    /// runc. Where that cannot be done (no CAP_SYS_ADMIN over this mount
    /// namespace), the staging directory itself, with the root made
    /// absolute; hooks then see the staging directory as `bundle`.
    fn stage(&self, id: &str, bundle: &Path, spec: &mut Value) -> Result<PathBuf, OciError> {
        let staging = self.staging(id);
        private_dir(&staging)?;
        let copy = staging.join("config.json");
        write_private(
            &copy,
            &serde_json::to_vec(&*spec).expect("a Value serializes"),
        )?;
        match crate::plan::show_file_over(&copy, &bundle.join("config.json")) {
            Ok(()) => return Ok(bundle.to_path_buf()),
            Err(e) => tracing::warn!(
                id,
                "cannot show the changed spec at the bundle's path ({e}); hooks will see bundle {}",
                staging.display()
            ),
        }
        let root = spec
            .pointer("/root/path")
            .and_then(Value::as_str)
            .map(|r| bundle.join(r).to_string_lossy().into_owned());
        if let Some(root) = root {
            spec["root"]["path"] = Value::String(root);
        }
        write_private(
            &copy,
            &serde_json::to_vec(&*spec).expect("a Value serializes"),
        )?;
        Ok(staging)
    }

    pub fn start(&self, id: &str) -> Result<(), OciError> {
        let mut c = self.load(id)?;
        if c.status() != ContainerStatus::Created {
            return Err(OciError::WrongStatus {
                id: id.into(),
                status: status_name(c.status()).into(),
                what: "start",
                need: "created",
            });
        }
        c.start().map_err(OciError::lc("start", id))
    }

    pub fn state(&self, id: &str) -> Result<State, OciError> {
        let c = self.load(id)?;
        Ok(state_of(&c))
    }

    pub fn list(&self) -> Vec<State> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.root) else {
            return out;
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        for id in ids {
            if let Ok(c) = self.load(&id) {
                out.push(state_of(&c));
            }
        }
        out
    }

    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), OciError> {
        let sig = parse_signal(signal)?;
        let mut c = self.load(id)?;
        match c.status() {
            ContainerStatus::Stopped if !all => return Err(OciError::NotRunning(id.into())),
            ContainerStatus::Creating => return Err(OciError::NotRunning(id.into())),
            _ => {}
        }
        c.kill(sig, all).map_err(|e| match e {
            LibcontainerError::IncorrectStatus(_) => OciError::NotRunning(id.into()),
            e => OciError::lc("kill", id)(e),
        })
    }

    /// `delete`: with `force`, a container that is not stopped is killed
    /// first, and a missing container is not an error (as with runc).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        let _ = fs::remove_dir_all(self.staging(id));
        let mut c = match self.load(id) {
            Ok(c) => c,
            Err(OciError::NotFound(_)) => {
                // An aborted create can leave a directory without state.
                let dir = self.root.join(id);
                if names_a_container(id) && dir.is_dir() {
                    let _ = fs::remove_dir_all(&dir);
                }
                return if force {
                    Ok(())
                } else {
                    Err(OciError::NotFound(id.into()))
                };
            }
            Err(e) => return Err(e),
        };
        if !force
            && !matches!(
                c.status(),
                ContainerStatus::Stopped | ContainerStatus::Created
            )
        {
            return Err(OciError::WrongStatus {
                id: id.into(),
                status: status_name(c.status()).into(),
                what: "delete without --force",
                need: "stopped (or use --force)",
            });
        }
        // runc deletes a created container without --force by killing it.
        let force = force || c.status() == ContainerStatus::Created;
        // The runtime spec: a poststop hook that fails is logged and the
        // delete goes on (runc logs it and exits 0). libcontainer fails the
        // delete instead, and every later one, so the hooks are taken out of
        // its record here and run once the container is gone.
        let poststop = take_poststop_hooks(&self.root.join(id));
        let cgroup_path = libcontainer::config::YoukiConfig::load(self.root.join(id))
            .ok()
            .map(|c| c.cgroup_path);
        c.delete(force).map_err(OciError::lc("delete", id))?;
        if let Some(p) = cgroup_path.filter(|_| privileged() && !self.systemd_cgroup) {
            ExtraCgroups::remove(&p);
        }
        if let Some(hooks) = poststop {
            // As runc: a stopped container's state has no pid.
            let mut state = c.state.clone();
            state.status = ContainerStatus::Stopped;
            state.pid = None;
            if let Err(e) =
                libcontainer::hooks::run_hooks(Some(&hooks), Some(&state), None, None, None)
            {
                tracing::error!(id, "poststop hook failed (the container is deleted): {e}");
            }
        }
        Ok(())
    }

    pub fn pause(&self, id: &str) -> Result<(), OciError> {
        let mut c = self.load(id)?;
        c.pause().map_err(OciError::lc("pause", id))
    }

    pub fn resume(&self, id: &str) -> Result<(), OciError> {
        let mut c = self.load(id)?;
        c.resume().map_err(OciError::lc("resume", id))
    }

    pub fn events(&self, id: &str, interval: u32, stats: bool) -> Result<(), OciError> {
        let mut c = self.load(id)?;
        c.events(interval, stats)
            .map_err(OciError::lc("events", id))
    }

    fn cgroup_manager(
        &self,
        c: &Container,
    ) -> Result<libcgroups::common::AnyCgroupManager, OciError> {
        let id = c.id().to_string();
        let cfg = c.spec().map_err(OciError::lc("reading the cgroup", &id))?;
        libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: cfg.cgroup_path,
            systemd_cgroup: c.systemd(),
            container_name: id.clone(),
        })
        .map_err(|e| OciError::Cgroup {
            id,
            reason: e.to_string(),
        })
    }

    /// The PIDs in the container's cgroup (the init alone when it has none).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, OciError> {
        use libcgroups::common::CgroupManager;
        let c = self.load(id)?;
        let mut pids: Vec<i32> = self
            .cgroup_manager(&c)
            .and_then(|m| {
                m.get_all_pids().map_err(|e| OciError::Cgroup {
                    id: id.into(),
                    reason: e.to_string(),
                })
            })
            .map(|v| v.into_iter().map(|p| p.as_raw()).collect())
            .unwrap_or_default();
        if pids.is_empty() {
            if let Some(p) = c.pid().filter(|_| c.status() != ContainerStatus::Stopped) {
                pids.push(p.as_raw());
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// `update --resources`: applies a LinuxResources JSON to the cgroup.
    pub fn update(&self, id: &str, resources: &Value) -> Result<(), OciError> {
        use libcgroups::common::{CgroupManager, ControllerOpt};
        let res: oci_spec::runtime::LinuxResources = serde_json::from_value(resources.clone())
            .map_err(|e| OciError::Malformed {
                path: PathBuf::from("the resources"),
                reason: e.to_string(),
            })?;
        let c = self.load(id)?;
        let m = self.cgroup_manager(&c)?;
        m.apply(&ControllerOpt {
            resources: &res,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| OciError::Cgroup {
            id: id.into(),
            reason: e.to_string(),
        })
    }

    /// `exec`: runs another process in a running container, with the same
    /// ambient-capability policy as its init. Returns its PID.
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32, OciError> {
        let c = self.load(id)?;
        if c.status() != ContainerStatus::Running {
            return Err(OciError::WrongStatus {
                id: id.into(),
                status: status_name(c.status()).into(),
                what: "exec",
                need: "running",
            });
        }
        let config_path = c.bundle().join("config.json");
        let spec = read_json(&config_path)?;
        let annotations = annotations_of(&spec);
        let mut process = match &opts.process {
            Some(p) => read_json(p)?,
            None => exec_process(&spec, opts)?,
        };
        let decision = policy::apply(&self.policy, &mut process, &annotations)?;
        tracing::debug!(id, added = %policy::names(&decision.added), "exec policy applied");
        let staging = self.staging(id);
        private_dir(&staging)?;
        keep_null_output_writable()?;
        let file = staging.join(format!("exec-{}.json", std::process::id()));
        write_private(
            &file,
            &serde_json::to_vec(&process).expect("a Value serializes"),
        )?;
        let built = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.root)
            .and_then(|b| b.with_pid_file(opts.pid_file.clone()))
            .map(|b| {
                b.with_console_socket(opts.console_socket.clone())
                    .with_preserved_fds(opts.preserve_fds)
                    .as_tenant()
                    .with_process(Some(&file))
                    .with_detach(opts.detach)
                    .build()
            });
        let _ = fs::remove_file(&file);
        let _ = fs::remove_dir(&staging);
        let _ = fs::remove_dir(self.root.join(".netshim"));
        let pid = built.and_then(|r| r).map_err(OciError::lc("exec", id))?;
        Ok(pid.as_raw())
    }
}

/// A process.json for `exec` without `--process`: the init's process, with
/// the arguments, environment, directory, user and capabilities given.
fn exec_process(spec: &Value, o: &ExecOptions) -> Result<Value, OciError> {
    let mut p = spec.get("process").cloned().unwrap_or(Value::Null);
    if !p.is_object() {
        p = serde_json::json!({"user": {"uid": 0, "gid": 0}, "cwd": "/"});
    }
    if o.args.is_empty() {
        return Err(OciError::Malformed {
            path: PathBuf::from("the exec command line"),
            reason: "no command given".into(),
        });
    }
    p["args"] = serde_json::json!(o.args);
    p["terminal"] = Value::Bool(o.tty);
    if let Some(cwd) = &o.cwd {
        p["cwd"] = Value::String(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env: Vec<Value> = p
            .get("env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in &o.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|v| v.as_str().is_none_or(|s| s.split('=').next() != Some(key)));
            env.push(Value::String(e.clone()));
        }
        p["env"] = Value::Array(env);
    }
    if let Some(u) = &o.user {
        let bad = || OciError::Malformed {
            path: PathBuf::from("--user"),
            reason: format!("{u:?} is not UID[:GID]"),
        };
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (
                a.parse::<u32>().map_err(|_| bad())?,
                b.parse::<u32>().map_err(|_| bad())?,
            ),
            None => (u.parse::<u32>().map_err(|_| bad())?, 0),
        };
        p["user"] = serde_json::json!({"uid": uid, "gid": gid});
    }
    if o.no_new_privs {
        p["noNewPrivileges"] = Value::Bool(true);
    }
    if !o.caps.is_empty() {
        // As runc: --cap adds to the bounding, effective and permitted sets.
        let caps = p
            .as_object_mut()
            .expect("object")
            .entry("capabilities")
            .or_insert_with(|| serde_json::json!({}));
        for set in ["bounding", "effective", "permitted"] {
            let mut have: Vec<Value> = caps
                .get(set)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for name in &o.caps {
                let cap: crate::caps::Cap =
                    name.parse()
                        .map_err(|e: crate::caps::UnknownCap| OciError::Malformed {
                            path: PathBuf::from("--cap"),
                            reason: e.to_string(),
                        })?;
                let v = Value::String(cap.to_string());
                if !have.contains(&v) {
                    have.push(v);
                }
            }
            caps[set] = Value::Array(have);
        }
    }
    Ok(p)
}

fn state_of(c: &Container) -> State {
    let status = c.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    let rootfs = read_json(&c.bundle().join("config.json"))
        .ok()
        .and_then(|s| Some(c.bundle().join(s.pointer("/root/path")?.as_str()?)))
        .unwrap_or_default();
    State {
        oci_version: oci_spec::runtime::VERSION.to_string(),
        id: c.id().to_string(),
        pid,
        status: status_name(status).into(),
        bundle: c.bundle().clone(),
        rootfs,
        created: c
            .created()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner: String::new(),
        annotations: c
            .state
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

/// Parses `TERM`, `SIGTERM`, `sigterm` or `15`, as runc does.
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, OciError> {
    use std::str::FromStr;
    let bad = || OciError::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| bad())
}

/// The OCI features document (`netshim features`).
pub fn features() -> Value {
    let caps: Vec<String> = (0..=40u8)
        .filter_map(crate::caps::Cap::from_bit)
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

/// `spec`: a default config.json in `bundle`, as `runc spec` writes it.
pub fn write_default_spec(bundle: &Path, rootless: bool) -> Result<PathBuf, OciError> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(OciError::Write {
            path,
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "config.json exists already; remove it first",
            ),
        });
    }
    let spec = if rootless {
        oci_spec::runtime::Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        oci_spec::runtime::Spec::default()
    };
    let text = serde_json::to_vec_pretty(&spec).expect("a spec serializes");
    fs::write(&path, text).map_err(|source| OciError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// `run` in the foreground: create, start, forward signals and wait; the
/// exit status is the container's, as a shell reports it.
pub fn run_foreground(rt: &Runtime, id: &str, opts: &CreateOptions) -> Result<i32, OciError> {
    // The init is our grandchild (its parent exits once it is set up); as
    // subreaper, netshim adopts and reaps it.
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and changes only
    // which process adopts our orphaned descendants.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(OciError::Wait(Errno::last()));
    }
    let mut c = rt.create_inner(id, opts, false)?;
    let pid = c.pid().map(|p| p.as_raw()).unwrap_or(0);
    let (mask, mut sfd) = crate::launch::forwarding_signals().map_err(OciError::Wait)?;
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(OciError::lc("start", id)(e));
    }
    let status =
        crate::launch::wait_forwarding(nix::unistd::Pid::from_raw(pid), &mut sfd, None, None, None)
            .map_err(OciError::Wait)?;
    let _ = mask.thread_unblock();
    if let Err(e) = rt.delete(id, true) {
        tracing::warn!(id, "removing the container after its run: {e}");
    }
    Ok(status)
}

/// Waits for a non-detached `exec` process (our child) and returns its
/// status as a shell reports it.
pub fn wait_exec(pid: i32) -> Result<i32, OciError> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(OciError::Wait(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cgroup_is_found_among_joined_controllers() {
        let text = "12:pids:/a\n5:cpuset,memory:/c1\n1:name=systemd:/x\n0::/u\n";
        assert_eq!(memory_cgroup_in(text).as_deref(), Some("/c1"));
        assert_eq!(memory_cgroup_in("0::/only-v2\n"), None);
        assert_eq!(memory_cgroup_in("3:memoryx:/no\n"), None);
    }

    #[test]
    fn signals_parse_like_runc() {
        use nix::sys::signal::Signal;
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sighup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("FOO").is_err());
        assert!(parse_signal("0").is_err());
    }

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
    fn exec_process_overrides_the_init_process() {
        let spec = serde_json::json!({"process": {"user": {"uid": 1000, "gid": 1000}, "args": ["sleep"],
            "env": ["PATH=/bin", "A=1"], "cwd": "/", "capabilities": {"bounding": ["CAP_NET_RAW"]}}});
        let o = ExecOptions {
            args: vec!["ping".into()],
            env: vec!["A=2".into()],
            user: Some("1001:1002".into()),
            caps: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        };
        let p = exec_process(&spec, &o).unwrap();
        assert_eq!(p["args"], serde_json::json!(["ping"]));
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "A=2"]));
        assert_eq!(p["user"]["uid"], 1001);
        assert_eq!(p["user"]["gid"], 1002);
        assert_eq!(
            p["capabilities"]["bounding"],
            serde_json::json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])
        );
        assert!(exec_process(&spec, &ExecOptions::default()).is_err());
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

    #[test]
    fn features_name_the_annotation() {
        let f = features();
        assert!(f["annotations"][policy::ANNOTATION].is_string());
        assert!(f["x-netshim"]["linux.resources.memory.disableOOMKiller"].is_string());
        assert_eq!(f["linux"]["capabilities"].as_array().unwrap().len(), 41);
    }
}
