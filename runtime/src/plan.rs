//! Privilege plans (docs/architecture.md, "The plans and the kernel rules
//! they rest on"): how netshim reaches a target's network namespace with the
//! least privilege the kernel allows. Pure classification: the steps that
//! change the process are in [`crate::privilege::enter`].
//!
//! Kernel rules this module relies on:
//! - `AF_PACKET`/raw sockets need `CAP_NET_RAW` in the user namespace that
//!   owns the network namespace (`ns_capable(net->user_ns, CAP_NET_RAW)`).
//! - `setns(CLONE_NEWNET)` needs `CAP_SYS_ADMIN` in the netns's owning user
//!   namespace and in the caller's own.
//! - A process whose euid owns a user namespace, and that lives in that user
//!   namespace's parent, holds every capability in it (and in its
//!   descendants); so does a process with `CAP_SYS_ADMIN` in the parent.
//!   `setns(CLONE_NEWUSER)` then grants the full set inside.

use std::fmt;

use nix::errno::Errno;
use nix::unistd::geteuid;

use crate::kernel::caps::{CapMask, ProcCreds};
use crate::kernel::ns::{own_userns, NsFile, NsId};

/// The plan netshim will use for a target.
#[derive(Debug)]
pub enum Plan {
    /// The caller owns the user namespace that owns the netns (rootless
    /// Docker/Podman/nerdctl, `hostUsers: false` pods): join that user
    /// namespace, then the netns.
    JoinUserns { userns: NsFile },
    /// The netns is owned by the caller's own user namespace and the caller is
    /// privileged there (root): join the netns without a new user namespace.
    DropUid,
}

impl Plan {
    pub fn name(&self) -> &'static str {
        match self {
            Plan::JoinUserns { .. } => "join-userns",
            Plan::DropUid => "drop-uid",
        }
    }
}

/// Why no plan can reach a target.
#[derive(Debug, thiserror::Error)]
pub enum Impossible {
    #[error(
        "cannot enter {target}: its network namespace is owned by your own user namespace (the host's), \
         and you are not privileged there.\n\
         The kernel lets a process open packet sockets in a network namespace only with CAP_NET_RAW in the \
         user namespace that owns it, and lets it join one only with CAP_SYS_ADMIN there; an unprivileged \
         user holds neither in the host's user namespace, and no user namespace of your own changes that.\n\
         What you can do instead:\n  \
         - run netshim as root (sudo netshim run ...): it still runs your command as an unprivileged UID with only CAP_NET_RAW;\n  \
         - run the workload under the netshim runtime (a containerd RuntimeClass or `docker run --runtime netshim`), which grants ambient CAP_NET_RAW to non-root containers;\n  \
         - target a container of your own rootless engine (docker:NAME with rootless Docker, or pid:PID of a process in it), whose network namespace your user namespace owns"
    )]
    HostOwned { target: String },
    #[error(
        "cannot enter {target}: its network namespace is owned by a user namespace of UID {owner_uid}, not yours (UID {caller}).\n\
         Only the owner of a user namespace (or root) holds capabilities in it, and the kernel checks CAP_NET_RAW \
         and CAP_SYS_ADMIN there. Run netshim as UID {owner_uid}, or as root"
    )]
    ForeignUserns {
        target: String,
        owner_uid: u32,
        caller: u32,
    },
    #[error(
        "cannot enter {target}: its network namespace is owned by a user namespace outside yours \
         (an ancestor of the one netshim runs in). A process in a child user namespace holds no capability \
         in its ancestors, so no plan can reach it from here: run netshim from the host's user namespace"
    )]
    Ancestor { target: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Impossible(#[from] Impossible),
    #[error("cannot inspect the user namespace of {target}: {what}: {errno}")]
    Inspect {
        target: String,
        what: &'static str,
        errno: Errno,
    },
}

/// What the caller is, as far as planning goes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub euid: u32,
    pub userns: NsId,
    /// CAP_SYS_ADMIN in the caller's own user namespace (root, sudo).
    pub sys_admin: bool,
}

impl Caller {
    pub fn current() -> Result<Caller, PlanError> {
        let inspect = |what, errno| PlanError::Inspect {
            target: "the caller".into(),
            what,
            errno,
        };
        let userns = own_userns()
            .and_then(|u| u.id())
            .map_err(|e| inspect("opening /proc/self/ns/user", e))?;
        let creds = ProcCreds::read(std::process::id() as i32).map_err(|e| {
            inspect(
                "reading /proc/self/status",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
        let sys_admin = creds.eff.0 & CapMask::of(&[crate::kernel::caps::SYS_ADMIN]).0 != 0;
        Ok(Caller {
            euid: geteuid().as_raw(),
            userns,
            sys_admin,
        })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Chooses the plan for a target's network namespace.
pub fn classify(target: &str, netns: &NsFile, caller: &Caller) -> Result<Plan, PlanError> {
    let inspect = |what, errno| PlanError::Inspect {
        target: target.to_string(),
        what,
        errno,
    };
    let owner = match netns.owner_userns() {
        Ok(o) => o,
        // NS_GET_USERNS fails with EPERM when the owner is outside our userns.
        Err(Errno::EPERM) => {
            return Err(Impossible::Ancestor {
                target: target.into(),
            }
            .into())
        }
        Err(e) => return Err(inspect("NS_GET_USERNS", e)),
    };
    let owner_id = owner.id().map_err(|e| inspect("fstat", e))?;
    if owner_id == caller.userns {
        return if caller.sys_admin {
            Ok(Plan::DropUid)
        } else {
            Err(Impossible::HostOwned {
                target: target.into(),
            }
            .into())
        };
    }
    // Walk up from the owning user namespace to the child of ours: that
    // child's owner (or a privileged caller) holds every capability in it
    // and in all its descendants.
    let mut top = owner.try_clone().map_err(|e| {
        inspect(
            "dup",
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
        )
    })?;
    loop {
        let parent = match top.parent_userns() {
            Ok(p) => p,
            Err(Errno::EPERM) => {
                return Err(Impossible::Ancestor {
                    target: target.into(),
                }
                .into())
            }
            Err(e) => return Err(inspect("NS_GET_PARENT", e)),
        };
        if parent.id().map_err(|e| inspect("fstat", e))? == caller.userns {
            break;
        }
        top = parent;
    }
    let owner_uid = top
        .owner_uid()
        .map_err(|e| inspect("NS_GET_OWNER_UID", e))?;
    if owner_uid == caller.euid || caller.sys_admin {
        Ok(Plan::JoinUserns { userns: owner })
    } else {
        Err(Impossible::ForeignUserns {
            target: target.into(),
            owner_uid,
            caller: caller.euid,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_netns_plan_depends_on_privilege() {
        let netns = crate::kernel::ns::own_netns().unwrap();
        let mut caller = Caller::current().unwrap();
        caller.sys_admin = true;
        assert!(matches!(
            classify("self", &netns, &caller).unwrap(),
            Plan::DropUid
        ));
        caller.sys_admin = false;
        let err = classify("self", &netns, &caller).unwrap_err();
        assert!(err.to_string().contains("user namespace"), "{err}");
        assert!(err.to_string().contains("rootless"), "{err}");
    }
}
