//! netshim's runtime library: resolve a target network namespace, choose the
//! least-privileged plan the kernel allows, synthesize an OCI spec and launch
//! a process there with youki's libcontainer; and the runc-compatible OCI
//! runtime.
//!
//! A map, by concern:
//! - [`target`] — what a target names and how it resolves;
//! - [`kernel`] — what netshim reads from the kernel, changing nothing;
//! - [`plan`] — the least-privileged plan for a target (pure);
//! - [`privilege`] — the few steps that change privilege, each commented with
//!   the kernel rule it relies on;
//! - [`launch`] — `netshim run`: the spec libcontainer executes (where the
//!   credential change is decided), the create → verify → start → wait
//!   cycle, TTY;
//! - [`sealed`] — `netshim capture --sealed`;
//! - [`statedir`] — the one rule for state directories, `netshim run`'s
//!   state and the removal of what a killed run left;
//! - [`supervise`] — becoming subreaper, signal forwarding, reaping adopted
//!   orphans, ending a run's leftovers, exit statuses, the `/dev/null`
//!   stand-in: what every launcher shares (tested in a forked child);
//! - [`oci`] — the OCI runtime, one file per operation;
//! - [`install`] — `netshim install`: the containerd and Docker config edits;
//! - [`fuzzing`] — properties shared by the fuzz targets and `cargo test`.

pub mod fuzzing;
pub mod install;
pub mod kernel;
pub mod launch;
pub mod oci;
pub mod plan;
pub mod privilege;
pub mod sealed;
pub mod statedir;
pub mod supervise;
pub mod target;

use kernel::caps::{Cap, RUN_ALLOWED};
use kernel::userns::IdMap;
use plan::{Caller, Plan};
use target::Target;

/// The default UID and GID of the process in the target: `nobody`.
pub const DEFAULT_ID: u32 = 65534;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Target(#[from] target::TargetError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("refusing to run as {kind} 0: netshim runs commands as an unprivileged {kind}; pick another with --{flag} (default 65534)")]
    RootId {
        kind: &'static str,
        flag: &'static str,
    },
    #[error(
        "refusing capability {0}: `netshim run` grants only CAP_NET_RAW, CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, \
         which reach no further than the target's network namespace"
    )]
    CapNotAllowed(Cap),
    #[error(
        "{kind} {id} is not mapped in the user namespace of {target} (mapped: {map}).\n\
         A process can only take an ID its user namespace maps. Pick one from the mapped ranges with --{flag}; \
         for rootless Docker or Podman, the ranges come from /etc/sub{flag}"
    )]
    Unmapped {
        kind: &'static str,
        flag: &'static str,
        id: u32,
        map: IdMap,
        target: String,
    },
    #[error(
        "the user namespace of {target} maps no {kind} 0 (mapped: {map}); libcontainer needs root inside a user \
         namespace it joins to set up the process. Rootless Docker, Podman and nerdctl map it; for a namespace \
         made by hand, map 0 (e.g. `unshare --map-root-user`, or newuidmap with a subordinate range)"
    )]
    NoRootInUserns {
        kind: &'static str,
        map: IdMap,
        target: String,
    },
    #[error("cannot read the ID maps of the user namespace of {target}: {errno}")]
    IdMaps {
        target: String,
        errno: nix::errno::Errno,
    },
    #[error(transparent)]
    Launch(#[from] launch::LaunchError),
    #[error(transparent)]
    StateDir(#[from] statedir::StateDirError),
}

impl RunError {
    /// The exit status netshim should end with: 127 and 126 as a shell
    /// reports a command it cannot find or execute, 125 for netshim's own
    /// failures (as docker and podman do).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Launch(launch::LaunchError::CommandNotFound(_)) => 127,
            RunError::Launch(launch::LaunchError::CommandNotExecutable(_)) => 126,
            _ => 125,
        }
    }
}

/// A `netshim run` request before planning.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: Target,
    pub uid: u32,
    pub gid: u32,
    /// Capabilities beyond CAP_NET_RAW (which is always granted).
    pub extra_caps: Vec<Cap>,
    pub tty: bool,
    pub args: Vec<String>,
}

/// A target with its plan, ready to launch.
pub struct Prepared {
    pub resolved: target::Resolved,
    pub plan: Plan,
    pub caps: Vec<Cap>,
    pub uid_map: Option<IdMap>,
}

/// Resolves and plans a run, checking everything that can be checked
/// before libcontainer is involved.
pub fn prepare(opts: &RunOptions) -> Result<Prepared, RunError> {
    if opts.uid == 0 {
        return Err(RunError::RootId {
            kind: "UID",
            flag: "uid",
        });
    }
    if opts.gid == 0 {
        return Err(RunError::RootId {
            kind: "GID",
            flag: "gid",
        });
    }
    let mut caps = vec![kernel::caps::NET_RAW];
    for c in &opts.extra_caps {
        if !RUN_ALLOWED.contains(c) {
            return Err(RunError::CapNotAllowed(*c));
        }
        if !caps.contains(c) {
            caps.push(*c);
        }
    }
    caps.sort();
    let resolved = opts.target.resolve()?;
    let label = opts.target.to_string();
    let caller = Caller::current()?;
    let plan = plan::classify(&label, &resolved.netns, &caller)?;
    let uid_map = match &plan {
        Plan::DropUid => None,
        Plan::JoinUserns { userns } => {
            let (u, g) =
                kernel::userns::read_id_maps(userns).map_err(|errno| RunError::IdMaps {
                    target: label.clone(),
                    errno,
                })?;
            for (kind, map) in [("UID", &u), ("GID", &g)] {
                if !map.contains(0) {
                    return Err(RunError::NoRootInUserns {
                        kind,
                        map: map.clone(),
                        target: label.clone(),
                    });
                }
            }
            for (kind, flag, id, map) in
                [("UID", "uid", opts.uid, &u), ("GID", "gid", opts.gid, &g)]
            {
                if !map.contains(id) {
                    return Err(RunError::Unmapped {
                        kind,
                        flag,
                        id,
                        map: map.clone(),
                        target: label.clone(),
                    });
                }
            }
            Some(u)
        }
    };
    tracing::info!(target = %label, plan = %plan, netns = %resolved.netns.id().map(|i| i.to_string()).unwrap_or_default(), "planned");
    Ok(Prepared {
        resolved,
        plan,
        caps,
        uid_map,
    })
}

/// What a run connects to besides its target.
#[derive(Default)]
pub struct RunIo {
    /// Replaces netshim's own stdin for the command (the sealed binary the
    /// capture engine is executed from, see [`privilege::selfexec`]).
    pub stdin: Option<std::os::fd::OwnedFd>,
    /// Replaces netshim's own stdout for the command.
    pub stdout: Option<std::os::fd::OwnedFd>,
    /// A child of the caller's that is not part of the run (it is neither
    /// reaped nor ended with the run).
    pub spare: Option<i32>,
    /// The sealed copy of netshim the run's init executes from, when the
    /// caller has one already (see [`launch::init`]).
    pub init_exe: Option<std::os::fd::OwnedFd>,
}

/// Runs a command in a prepared target; returns its exit status.
pub fn run(opts: &RunOptions, prepared: Prepared, io: RunIo) -> Result<i32, RunError> {
    let state = statedir::StateDirs::for_caller()?;
    let term = std::env::var("TERM").ok();
    let launch = launch::Launch {
        netns: &prepared.resolved.netns,
        plan: &prepared.plan,
        request: launch::spec::RunRequest {
            args: opts.args.clone(),
            uid: opts.uid,
            gid: opts.gid,
            caps: prepared.caps.clone(),
            tty: opts.tty,
            env: launch::spec::default_env(term.as_deref()),
            cwd: "/".into(),
        },
        uid_map: prepared.uid_map.clone(),
        stdin: io.stdin,
        stdout: io.stdout,
        watch: prepared.resolved.pid,
        spare: io.spare,
        init_exe: io.init_exe,
    };
    Ok(launch.run(&state)?)
}
