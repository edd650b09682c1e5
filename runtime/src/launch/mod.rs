//! Launching a process into a target with libcontainer: state directories,
//! the create → verify → start → wait cycle, signal forwarding, TTY, and
//! cleanup (including state left by a crashed run).

pub mod spec;
pub mod tty;

use crate::supervise::is_dev_null;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::kernel::caps::{CapMask, ProcCreds};
use crate::kernel::ns::NsFile;
use crate::kernel::userns::IdMap;
use crate::plan::Plan;
use crate::supervise::{end_leftovers, forwarding_signals, start_time, wait_forwarding};
use spec::{Placement, RunRequest};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot prepare netshim's state directory {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "state directory {path} is not safe to use: it must be a directory owned by you (UID {uid}) \
         and not writable by others; remove it or set XDG_RUNTIME_DIR to a private directory"
    )]
    UnsafeState { path: PathBuf, uid: u32 },
    #[error("cannot write the OCI bundle in {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("libcontainer could not create the process in the target: {source}{hint}")]
    Create {
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
        hint: String,
    },
    #[error("command not found in the target's view of the host: {0:?} (PATH is /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin); give its full path or install it")]
    CommandNotFound(String),
    #[error("command {0:?} is not executable; check its permissions")]
    CommandNotExecutable(String),
    #[error("libcontainer could not start the process: {0}")]
    Start(#[source] Box<libcontainer::error::LibcontainerError>),
    #[error(
        "the process in the target does not hold the privileges netshim planned, so it was stopped:\n  {}\n\
         this is a bug or an unexpected kernel or security-module policy; please report it with the output of \
         `netshim --debug run ...`",
        .0.join("\n  ")
    )]
    Verify(Vec<String>),
    #[error("cannot read the credentials of the process in the target: {0}")]
    ReadCreds(#[source] io::Error),
    #[error("cannot join the target's user namespace: {0}; check that you own it (`netshim run --debug` shows the plan)")]
    EnterUserns(#[source] Errno),
    #[error("cannot prepare netshim's private view of /sys/fs/cgroup (a mount namespace of its own): {0}")]
    CgroupView(#[source] Errno),
    #[error("waiting for the process failed: {0}")]
    Wait(#[source] Errno),
    #[error("cannot set up the terminal: {0}")]
    Tty(#[source] io::Error),
}

/// Where netshim keeps its state: `/run/netshim` for root,
/// `$XDG_RUNTIME_DIR/netshim` for a user (else `/tmp/netshim-UID`).
#[derive(Debug, Clone)]
pub struct StateDirs {
    pub root: PathBuf,
}

impl StateDirs {
    pub fn for_caller() -> Result<StateDirs, LaunchError> {
        let uid = nix::unistd::geteuid().as_raw();
        let root = if uid == 0 {
            PathBuf::from("/run/netshim")
        } else if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            PathBuf::from(x).join("netshim")
        } else {
            PathBuf::from(format!("/tmp/netshim-{uid}"))
        };
        Self::at(root)
    }

    pub fn at(root: PathBuf) -> Result<StateDirs, LaunchError> {
        let s = StateDirs { root };
        for d in [s.root.clone(), s.containers(), s.bundles()] {
            ensure_private_dir(&d)?;
        }
        Ok(s)
    }

    /// libcontainer's state root.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn bundles(&self) -> PathBuf {
        self.root.join("bundles")
    }
}

fn ensure_private_dir(path: &Path) -> Result<(), LaunchError> {
    crate::statedir::private_dir(path).map_err(|e| match e {
        crate::statedir::StateDirError::Io { path, source } => LaunchError::State { path, source },
        crate::statedir::StateDirError::Unsafe { path, uid } => {
            LaunchError::UnsafeState { path, uid }
        }
    })
}

/// The file in a run's bundle naming its init process: `PID STARTTIME`.
const INIT_RECORD: &str = "init";

/// Kills the init process of an abandoned run (and its process group) if
/// the recorded process still runs, by PID and start time.
fn end_abandoned(bundle: &Path) {
    let Ok(rec) = fs::read_to_string(bundle.join(INIT_RECORD)) else {
        return;
    };
    let mut it = rec.split_whitespace();
    let (Some(Ok(pid)), Some(Ok(st))) = (
        it.next().map(str::parse::<i32>),
        it.next().map(str::parse::<u64>),
    ) else {
        return;
    };
    if pid <= 1 || start_time(pid) != Some(st) {
        return;
    }
    let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    // It is not our child: wait until the kernel has ended it.
    for _ in 0..200 {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) if start_time(pid) == Some(st) && !s.contains(") Z ") => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            _ => break,
        }
    }
}

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A run's container ID: `run-<netshim pid>-<its start time>-<n>`. The
/// owner's identity in the name lets a later run tell stale state (owner
/// gone) from a run in progress.
fn new_run_id() -> String {
    let pid = std::process::id() as i32;
    format!(
        "run-{pid}-{}-{}",
        start_time(pid).unwrap_or(0),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn owner_alive(id: &str) -> bool {
    let mut it = id.strip_prefix("run-").unwrap_or("").split('-');
    let (Some(pid), Some(st)) = (it.next(), it.next()) else {
        return false;
    };
    let (Ok(pid), Ok(st)) = (pid.parse::<i32>(), st.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(st)
}

/// Removes what runs whose netshim process is gone left behind (after a
/// SIGKILL of netshim, say): their processes are killed, their cgroups and
/// state removed. Returns the IDs cleaned.
pub fn clean_stale(state: &StateDirs) -> Vec<String> {
    let mut cleaned = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for dir in [state.containers(), state.bundles()] {
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                if let Ok(n) = e.file_name().into_string() {
                    if n.starts_with("run-") && !ids.contains(&n) {
                        ids.push(n);
                    }
                }
            }
        }
    }
    for id in ids {
        if owner_alive(&id) {
            continue;
        }
        end_abandoned(&state.bundles().join(&id));
        let cdir = state.containers().join(&id);
        if cdir.exists() {
            match Container::load(cdir.clone()) {
                Ok(mut c) => {
                    if let Err(e) = c.delete(true) {
                        tracing::warn!(%id, error = %e, "could not delete stale container; removing its state");
                        let _ = fs::remove_dir_all(&cdir);
                    }
                }
                Err(_) => {
                    let _ = fs::remove_dir_all(&cdir);
                }
            }
        }
        let _ = fs::remove_dir_all(state.bundles().join(&id));
        tracing::info!(%id, "cleaned state left by an earlier run that did not finish");
        cleaned.push(id);
    }
    cleaned
}

/// Everything a run needs, planned and checked.
pub struct Launch<'a> {
    pub netns: &'a NsFile,
    pub plan: &'a Plan,
    pub request: RunRequest,
    /// The UID map of the target's user namespace (join-userns), for
    /// checking the process's outside UID.
    pub uid_map: Option<IdMap>,
    /// A descriptor for the process's stdin instead of netshim's own.
    pub stdin: Option<std::os::fd::OwnedFd>,
    /// A file for the process's stdout instead of netshim's own (an output
    /// file netshim opened as the caller, before any privilege change).
    pub stdout: Option<std::os::fd::OwnedFd>,
    /// A process of the target (its init): when it exits, the target is
    /// gone, and the command is asked to end (SIGTERM).
    pub watch: Option<i32>,
    /// A child of netshim's own that is not part of the run (the capture
    /// file writer): never reaped or ended with the run's leftovers.
    pub spare: Option<i32>,
}

/// Removes a run's container and bundle however the run ends.
struct Cleanup {
    state: StateDirs,
    id: String,
    container: Option<Container>,
    /// The init process while it may still run.
    init: Option<i32>,
    spare: Option<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.init.take() {
            // A run abandoned between create and exit (verification failed,
            // start failed): end its processes before deleting the state.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            end_leftovers(pid, self.spare);
        }
        if let Some(c) = self.container.as_mut() {
            if let Err(e) = c.delete(true) {
                tracing::warn!(id = %self.id, error = %e, "could not delete the run's container");
            }
        }
        let cdir = self.state.containers().join(&self.id);
        if cdir.exists() {
            let _ = fs::remove_dir_all(&cdir);
        }
        let _ = fs::remove_dir_all(self.state.bundles().join(&self.id));
    }
}

impl Launch<'_> {
    /// Runs the command to completion; returns its exit status (128+N for a
    /// signal), as a shell would.
    pub fn run(mut self, state: &StateDirs) -> Result<i32, LaunchError> {
        for id in clean_stale(state) {
            tracing::debug!(%id, "stale run cleaned");
        }
        let id = new_run_id();
        let bundle = state.bundles().join(&id);
        let mut cleanup = Cleanup {
            state: state.clone(),
            id: id.clone(),
            container: None,
            init: None,
            spare: self.spare,
        };
        let bundle_err = |source| LaunchError::Bundle {
            path: bundle.clone(),
            source,
        };
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&bundle)
            .map_err(bundle_err)?;
        spec::prepare_rootfs(&bundle.join("rootfs"), Path::new("/")).map_err(bundle_err)?;

        // libcontainer joins namespaces by path in its child processes, which
        // inherit our descriptors: /proc/self/fd/N names them there.
        // join-userns: root can hand libcontainer the user namespace by path;
        // an unprivileged caller must already be inside it (see
        // plan::enter_userns), and then the spec names no user namespace.
        let pre_join =
            matches!(self.plan, Plan::JoinUserns { .. }) && !nix::unistd::geteuid().is_root();
        let userns_path = match self.plan {
            Plan::JoinUserns { userns } if !pre_join => Some(userns.proc_self_path()),
            _ => None,
        };
        let place = Placement {
            netns_path: self.netns.proc_self_path(),
            userns_path,
            cgroups_path: cgroups_path(&id),
        };
        let spec = spec::build(&self.request, &place, Path::new("/")).map_err(bundle_err)?;
        spec.save(bundle.join("config.json"))
            .map_err(|e| bundle_err(io::Error::other(e)))?;

        // libcontainer's init process is our grandchild.
        crate::supervise::become_subreaper().map_err(LaunchError::Wait)?;

        if let (true, Plan::JoinUserns { userns }) = (pre_join, self.plan) {
            crate::privilege::enter::enter_userns(userns).map_err(LaunchError::EnterUserns)?;
        }
        crate::privilege::enter::private_cgroup_view(!pre_join).map_err(LaunchError::CgroupView)?;

        let console = if self.request.tty {
            Some(tty::ConsoleSocket::bind(&bundle.join("console.sock")).map_err(LaunchError::Tty)?)
        } else {
            None
        };

        let mut builder = ContainerBuilder::new(id.clone(), SyscallType::default())
            .with_root_path(state.containers())
            .map_err(|source| LaunchError::Create {
                source: Box::new(source),
                hint: String::new(),
            })?
            .with_console_socket(console.as_ref().map(|c| c.path().to_path_buf()));
        builder.stdout = self.stdout.take();
        builder.stdin = self.stdin.take();
        // A /dev/null stdout or stderr gets a stand-in that also discards
        // (see `supervise::discarding_output`).
        let stdout_is_null = match &builder.stdout {
            Some(fd) => is_dev_null(fd.as_raw_fd()),
            None => is_dev_null(1),
        };
        let discarding = || {
            crate::supervise::discarding_output().map_err(|e| {
                LaunchError::Wait(e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))
            })
        };
        if stdout_is_null {
            builder.stdout = Some(discarding()?);
        }
        if is_dev_null(2) {
            builder.stderr = Some(discarding()?);
        }
        let created = builder
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(self.request.tty)
            .build();
        let container = match created {
            Ok(c) => c,
            Err(source) => {
                // libcontainer checks the executable before the process is
                // created; report that as a shell would (exit status 127).
                let text = source.to_string();
                let cmd = self.request.args.first().cloned().unwrap_or_default();
                if text.contains("not found in $PATH") {
                    return Err(LaunchError::CommandNotFound(cmd));
                }
                if text.contains("does not have correct permissions") {
                    return Err(LaunchError::CommandNotExecutable(cmd));
                }
                let hint = create_hint(&source);
                return Err(LaunchError::Create {
                    source: Box::new(source),
                    hint,
                });
            }
        };
        let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
        cleanup.container = Some(container);
        cleanup.init = Some(pid);
        // Which process is this run's init, for a later run that finds this
        // one abandoned: the start time tells it from a reused PID.
        fs::write(
            bundle.join(INIT_RECORD),
            format!("{pid} {}\n", start_time(pid).unwrap_or(0)),
        )
        .map_err(bundle_err)?;
        tracing::debug!(%id, pid, plan = %self.plan, "created");

        // libcontainer sets every capability set before it waits for start,
        // but only logs a warning if raising the ambient set fails: check
        // what the kernel says before the command runs.
        self.verify(pid, pre_join)?;

        // From here on, signals arrive through a signalfd; the init process
        // was created with them unblocked.
        let (mask, mut sfd) = forwarding_signals().map_err(LaunchError::Wait)?;

        cleanup
            .container
            .as_mut()
            .expect("container set above")
            .start()
            .map_err(|e| LaunchError::Start(Box::new(e)))?;

        let mut term = match console {
            Some(c) => Some(tty::Proxy::start(c).map_err(LaunchError::Tty)?),
            None => None,
        };

        let watch = self
            .watch
            .and_then(|p| match crate::kernel::ns::pidfd_open(p) {
                Ok(fd) => Some((p, fd)),
                Err(e) => {
                    tracing::debug!(pid = p, error = %e, "cannot watch the target process");
                    None
                }
            });
        let spare = self.spare;
        let status = wait_forwarding(Pid::from_raw(pid), &mut sfd, term.as_mut(), watch, spare)
            .map_err(LaunchError::Wait)?;
        cleanup.init = None;
        end_leftovers(pid, spare);
        if let Some(t) = term {
            t.finish();
        }
        let _ = mask.thread_unblock();
        drop(cleanup);
        Ok(status)
    }

    /// `inside`: netshim itself runs in the target's user namespace, so
    /// /proc shows the process's UIDs as the target sees them.
    fn verify(&self, pid: i32, inside: bool) -> Result<(), LaunchError> {
        let creds = ProcCreds::read(pid).map_err(LaunchError::ReadCreds)?;
        let want = CapMask::of(&self.request.caps);
        let mut diffs = creds.differences(want);
        let want_uid = match (&self.plan, &self.uid_map) {
            (Plan::JoinUserns { .. }, Some(map)) if !inside => map
                .0
                .iter()
                .find(|r| self.request.uid >= r.inside && self.request.uid - r.inside < r.count)
                .map(|r| r.outside + (self.request.uid - r.inside)),
            _ => Some(self.request.uid),
        };
        if want_uid.is_some_and(|u| creds.uid != [u; 4]) || creds.uid.contains(&0) {
            diffs.push(format!(
                "Uid is {:?}, expected {} (UID {} in the target)",
                creds.uid,
                want_uid.map_or("mapped".into(), |u| u.to_string()),
                self.request.uid
            ));
        }
        if diffs.is_empty() {
            tracing::debug!(pid, uid = ?creds.uid, caps = %creds.eff, "verified");
            Ok(())
        } else {
            Err(LaunchError::Verify(diffs))
        }
    }
}

/// The spec names a per-run cgroup, but libcontainer never creates it:
/// `plan::private_cgroup_view` shows it no hierarchy it may use (a run needs
/// no limits, and a cgroup migration costs ~10 ms). The path stays unique so
/// that no run could ever name a shared cgroup, whose removal would kill
/// every process in it.
fn cgroups_path(id: &str) -> Option<String> {
    Some(format!("/netshim/{id}"))
}

fn create_hint(e: &libcontainer::error::LibcontainerError) -> String {
    let s = format!("{e:?}");
    if s.contains("EPERM") || s.contains("EACCES") {
        "\nthe kernel refused an operation; run with --debug to see which, and check that the target still exists"
            .into()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn run_ids_name_their_owner() {
        let id = new_run_id();
        assert!(owner_alive(&id), "{id}");
        assert!(!owner_alive("run-999999999-1-0"));
        assert!(!owner_alive("run-1-0-0"), "PID 1 did not start at tick 0");
        assert!(!owner_alive("other"));
        assert_ne!(new_run_id(), id);
    }

    #[test]
    fn state_dirs_are_private_and_checked() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDirs::at(t.path().join("ns")).unwrap();
        let mode = fs::metadata(&s.root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(s.containers().is_dir() && s.bundles().is_dir());
        fs::set_permissions(&s.root, fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDirs::at(s.root.clone()).unwrap_err();
        assert!(e.to_string().contains("not safe"), "{e}");
    }

    #[test]
    fn stale_state_of_dead_owners_is_removed_and_live_kept() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDirs::at(t.path().join("ns")).unwrap();
        let dead = "run-999999999-5-0";
        fs::create_dir(s.bundles().join(dead)).unwrap();
        fs::create_dir(s.containers().join(dead)).unwrap();
        let live = new_run_id();
        fs::create_dir(s.bundles().join(&live)).unwrap();
        let cleaned = clean_stale(&s);
        assert_eq!(cleaned, vec![dead.to_string()]);
        assert!(!s.bundles().join(dead).exists());
        assert!(!s.containers().join(dead).exists());
        assert!(s.bundles().join(&live).exists());
    }
}
