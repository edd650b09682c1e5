//! Launching a process into a target with libcontainer: the create →
//! verify → start → wait cycle, signal forwarding, TTY, and cleanup (state
//! directories and the removal of what a crashed run left are in
//! [`crate::statedir`]).

pub mod init;
pub mod spec;
pub mod tty;

use crate::supervise::is_dev_null;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

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
use crate::privilege::selfexec::{read_only_bind_of_self, start_sealed_copy_of_self, PendingCopy};
use crate::statedir::{clean_stale, new_run_id, record_init, StateDirs};
use crate::supervise::{end_leftovers, forwarding_signals, wait_forwarding};
use spec::{Placement, RunRequest};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
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
    #[error("cannot empty the supplementary group list before the command starts (setgroups; needs CAP_SETGID): {0}")]
    DropGroups(#[source] Errno),
    #[error("cannot make netshim's private mount namespace (unshare CLONE_NEWNS; needs CAP_SYS_ADMIN over the current one): {0}")]
    PrivateMounts(#[source] Errno),
    #[error("cannot prepare netshim's private view of /sys/fs/cgroup (a mount namespace of its own): {0}")]
    CgroupView(#[source] Errno),
    #[error(
        "cannot bind the host's / on the run's rootfs in netshim's private mount namespace: {0}"
    )]
    HostRoot(#[source] Errno),
    #[error("waiting for the process failed: {0}")]
    Wait(#[source] Errno),
    #[error("cannot set up the terminal: {0}")]
    Tty(#[source] io::Error),
    #[error("cannot make the sealed copy of netshim the run's init executes from: {0}")]
    InitExe(#[source] io::Error),
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
    /// The sealed copy of netshim the run's init executes from
    /// ([`crate::privilege::selfexec`]); made here when not given.
    pub init_exe: Option<std::os::fd::OwnedFd>,
}

/// Removes a run's container and bundle however the run ends.
struct Cleanup {
    /// The process that made this guard: only it cleans up. libcontainer
    /// forks its processes as copies of this one's stack, and a copy must
    /// never run this in the container's mount namespace.
    owner: u32,
    state: StateDirs,
    id: String,
    container: Option<Container>,
    /// The init process while it may still run.
    init: Option<i32>,
    spare: Option<i32>,
    /// The bundle's rootfs holds the bind of the host's `/` (in this
    /// process's private mount namespace).
    rootfs_bound: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::process::id() != self.owner {
            return;
        }
        if let Some(pid) = self.init.take() {
            // A run abandoned between create and exit (verification failed,
            // start failed): end its processes before deleting the state.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            end_leftovers(pid, self.spare);
        }
        // Not libcontainer's `delete`: its processes are ended and waited
        // for above, a run's spec has no hooks and a run has no cgroup, so
        // what is left is the state directory, removed here. `delete` would
        // also build a cgroup manager to look for a cgroup (~670 syscalls,
        // ~1.3 ms of each run on a cgroup v1 host).
        self.container = None;
        let bundle = self.state.bundles().join(&self.id);
        if self.rootfs_bound {
            // Detached first: the removal below never enters a mount point
            // (statedir::remove_tree), so the bind would only stop it.
            let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        }
        let cdir = self.state.containers().join(&self.id);
        if cdir.exists() {
            let _ = crate::statedir::remove_tree(&cdir);
        }
        if let Err(e) = crate::statedir::remove_tree(&bundle) {
            tracing::warn!(id = %self.id, error = %e, "could not remove the run's bundle");
        }
    }
}

impl Launch<'_> {
    /// Runs the command to completion; returns its exit status (128+N for a
    /// signal), as a shell would.
    pub fn run(mut self, state: &StateDirs) -> Result<i32, LaunchError> {
        // The init's copy of netshim: a read-only bind of the binary
        // detached from every mount namespace where this process may make
        // one (root: no bytes copied), else a sealed copy made by a child
        // meanwhile (started before anything here starts a thread), whole
        // and sealed before the init executes it at `start`.
        let init_exe = match self.init_exe.take() {
            Some(fd) => PendingCopy::from(fd),
            None => match read_only_bind_of_self() {
                Ok(fd) => PendingCopy::from(fd),
                Err(e) => {
                    tracing::debug!(error = %e, "no read-only bind of netshim; copying it");
                    start_sealed_copy_of_self().map_err(LaunchError::InitExe)?
                }
            },
        };
        for id in clean_stale(state) {
            tracing::debug!(%id, "stale run cleaned");
        }
        let id = new_run_id();
        let bundle = state.bundles().join(&id);
        let mut cleanup = Cleanup {
            owner: std::process::id(),
            state: state.clone(),
            id: id.clone(),
            container: None,
            init: None,
            spare: self.spare,
            rootfs_bound: false,
        };
        let bundle_err = |source| LaunchError::Bundle {
            path: bundle.clone(),
            source,
        };
        // 0711, and its state root and `bundles` too: the container's init
        // resolves the rootfs by path, and in a user namespace where host
        // root is unmapped it may only pass through root's directories
        // (statedir::traversable_dir). config.json is kept to root (0600).
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&bundle)
            .and_then(|()| fs::set_permissions(&bundle, fs::Permissions::from_mode(0o711)))
            .map_err(bundle_err)?;
        let rootfs = bundle.join("rootfs");
        spec::prepare_rootfs(&rootfs).map_err(bundle_err)?;

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
        // libcontainer checks the process's executable before creating it,
        // but that is the init now: check the command as it would.
        check_command(&self.request)?;
        // The init executes the sealed copy by this path in libcontainer's
        // init process, which inherits the descriptor (close-on-exec; an
        // ELF binary executed through /proc/self/fd may be, execve(2)).
        let place = Placement {
            netns_path: self.netns.proc_self_path(),
            userns_path,
            cgroups_path: cgroups_path(&id),
            init_exe: format!("/proc/self/fd/{}", init_exe.as_raw_fd()),
        };
        let spec = spec::build(&self.request, &place).map_err(bundle_err)?;
        let text = serde_json::to_vec(&spec).map_err(|e| bundle_err(io::Error::other(e)))?;
        crate::statedir::write_private(&bundle.join("config.json"), &text).map_err(bundle_err)?;

        // libcontainer's init process is our grandchild.
        crate::supervise::become_subreaper().map_err(LaunchError::Wait)?;

        if let (true, Plan::JoinUserns { userns }) = (pre_join, self.plan) {
            crate::privilege::enter::enter_userns(userns).map_err(LaunchError::EnterUserns)?;
        }
        // Before libcontainer forks the init: the command gets no
        // supplementary group in either plan (docs/security.md).
        match crate::privilege::enter::drop_supplementary_groups() {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                "the target's user namespace denies setgroups: the command keeps the caller's supplementary groups"
            ),
            Err(e) => return Err(LaunchError::DropGroups(e)),
        }
        crate::privilege::enter::private_mount_namespace().map_err(LaunchError::PrivateMounts)?;
        crate::privilege::enter::run_cgroup_view(!pre_join).map_err(LaunchError::CgroupView)?;
        crate::privilege::enter::bind_host_root(&rootfs).map_err(LaunchError::HostRoot)?;
        cleanup.rootfs_bound = true;

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
        let created = crate::supervise::with_default_sigpipe(|| {
            builder
                .as_init(&bundle)
                .with_systemd(false)
                .with_detach(self.request.tty)
                .build()
        });
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
        crate::statedir::tighten_container_state(&state.containers().join(&id))
            .map_err(bundle_err)?;
        cleanup.container = Some(container);
        cleanup.init = Some(pid);
        record_init(&bundle, pid).map_err(bundle_err)?;
        tracing::debug!(%id, pid, plan = %self.plan, "created");

        // libcontainer sets every capability set before it waits for start,
        // but only logs a warning if raising the ambient set fails: check
        // what the kernel says before the command runs.
        self.verify(pid, pre_join)?;

        let init_exe = init_exe.finish().map_err(LaunchError::InitExe)?;

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
        drop(init_exe);
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

/// The command's executable, found as libcontainer finds a process's (a
/// name with a `/` as it is, otherwise in the spec's PATH; netshim's view of
/// the files is the host's, which the run's rootfs binds), must be a file
/// with an execute bit: otherwise the run fails as a shell would (127, 126)
/// before anything is created.
fn check_command(req: &RunRequest) -> Result<(), LaunchError> {
    use std::path::Path;
    let cmd = req.args.first().cloned().unwrap_or_default();
    if cmd.starts_with("/proc/self/fd/") {
        // A descriptor the process is handed (the capture engine's sealed
        // copy), not one of netshim's: the init reports a failed exec.
        return Ok(());
    }
    let path_var = req
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or_default();
    let found = if cmd.contains('/') {
        Path::new(&cmd).exists().then(|| PathBuf::from(&cmd))
    } else if cmd.is_empty() {
        None
    } else {
        path_var
            .split(':')
            .map(|d| Path::new(d).join(&cmd))
            .find(|p| p.exists())
    };
    let Some(path) = found else {
        return Err(LaunchError::CommandNotFound(cmd));
    };
    match fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        _ => Err(LaunchError::CommandNotExecutable(cmd)),
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
