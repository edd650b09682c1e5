//! Privilege plans (`shared/design.md` §3): how netshim reaches a target's
//! network namespace with the least privilege the kernel allows.
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

use crate::caps::{CapMask, ProcCreds};
use crate::ns::{own_userns, NsFile, NsId};

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
        let sys_admin = creds.eff.0 & CapMask::of(&[crate::caps::SYS_ADMIN]).0 != 0;
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

/// Moves the calling process into a user namespace it owns.
///
/// Used by the join-userns plan when the caller is unprivileged:
/// libcontainer 0.7 accepts a user namespace given by path only from root,
/// but accepts an unprivileged caller that already runs inside a user
/// namespace (as Podman runs it). Kernel rules: `setns(CLONE_NEWUSER)` needs
/// `CAP_SYS_ADMIN` in the target user namespace (its owner, in the parent,
/// has it) and a single-threaded caller whose `fs` struct is not shared
/// (`unshare(CLONE_FS)` makes sure); on success the caller holds every
/// capability inside the joined namespace and none outside it.
pub fn enter_userns(userns: &NsFile) -> Result<(), Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
    nix::sched::setns(userns.fd(), nix::sched::CloneFlags::CLONE_NEWUSER)
}

/// Gives libcontainer a view of `/sys/fs/cgroup` in which a run gets no
/// cgroup of its own, in a private mount namespace of netshim's.
///
/// Why: `netshim run` sets no resource limits, so a cgroup buys nothing, and
/// it costs: moving a process into a v1 or v2 cgroup takes the kernel's
/// `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace
/// period (~10 ms, more than half of a run's start-up). libcontainer's cgroup
/// v1 manager also has no rootless mode, and its removal kills every PID the
/// cgroup lists. netshim instead ends a run's processes itself (see
/// `launch`).
///
/// - `privileged` (root in the initial user namespace): netshim's private
///   mount namespace detaches the cgroup hierarchies and puts an empty
///   read-only tmpfs on `/sys/fs/cgroup`; libcontainer's manager then finds
///   no controller in `/proc/self/mountinfo` and does nothing.
/// - otherwise (already inside a user namespace it owns, after
///   [`enter_userns`]): mounts copied into a less privileged mount namespace
///   are locked and cannot be unmounted, but may be covered. On a v1 or
///   hybrid host netshim puts the cgroup v2 hierarchy on `/sys/fs/cgroup` (a
///   bind of the hybrid host's `/sys/fs/cgroup/unified`, or a fresh cgroup2
///   mount, which the kernel permits in a cgroup namespace this user
///   namespace owns); libcontainer's rootless v2 manager leaves the process
///   in its parent cgroup when it may not create one, as runc does rootless.
///
/// Kernel rules: `unshare(CLONE_NEWNS)` and mounting need `CAP_SYS_ADMIN` in
/// the user namespace owning the new mount namespace; it is made `MS_SLAVE`
/// recursively first, so nothing done here reaches the host's mounts.
pub fn private_cgroup_view(privileged: bool) -> Result<(), Errno> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    use std::path::Path;

    let root = Path::new("/sys/fs/cgroup");
    let is_v2 = statfs(root)?.filesystem_type() == CGROUP2_SUPER_MAGIC;
    if !privileged && is_v2 {
        return Ok(());
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    if privileged {
        match umount2(root, MntFlags::MNT_DETACH) {
            Ok(()) => {
                return mount(
                    Some("tmpfs"),
                    root,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some("size=4k,mode=0555"),
                );
            }
            // Root inside a user namespace (netshim in a container): the
            // mounts are locked; cover them as the unprivileged path does.
            Err(Errno::EINVAL | Errno::EPERM) if is_v2 => return Ok(()),
            Err(Errno::EINVAL | Errno::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    let unified = root.join("unified");
    if statfs(&unified).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
        mount(
            Some(&unified),
            root,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    } else {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)?;
        mount(
            Some("cgroup2"),
            root,
            Some("cgroup2"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
    }
}

/// Shows `file` at `over` (an existing file) to this process and to the
/// processes it starts from now on, and to no one else.
///
/// Why: libcontainer reads a bundle's spec only from `BUNDLE/config.json`
/// and gives hooks the directory it read it from as the state's `bundle`.
/// When netshim changes the spec (capabilities it adds, runc's default
/// cgroup path), showing the changed copy at the bundle's own path keeps
/// the bundle runc would report, for hooks and `state` alike.
///
/// Kernel rules: `unshare(CLONE_NEWNS)` needs `CAP_SYS_ADMIN` in the user
/// namespace that owns this process's mount namespace, and a process whose
/// `fs` struct no other thread shares. A new mount namespace starts with
/// copies of the caller's mounts in the same peer groups, so a mount made
/// under a shared mount would propagate back to the host: the one mount
/// that holds `over` is made `MS_SLAVE` first (it still receives the host's
/// mount events; its own do not leave). The bind of a file needs the target
/// to be a file.
pub fn show_file_over(file: &std::path::Path, over: &std::path::Path) -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    let over = std::fs::canonicalize(over).map_err(|e| {
        e.raw_os_error()
            .map(Errno::from_raw)
            .unwrap_or(Errno::ENOENT)
    })?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|_| Errno::EIO)?;
    let holder = mount_point_of(&mountinfo, &over).ok_or(Errno::ENOENT)?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        &holder,
        None::<&str>,
        MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    mount(
        Some(file),
        &over,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// The mount point (field 5 of `/proc/self/mountinfo`, octal escapes
/// undone) that holds `path`: the longest one that is a prefix of it, the
/// last mounted of equal ones.
fn mount_point_of(mountinfo: &str, path: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut best: Option<std::path::PathBuf> = None;
    for line in mountinfo.lines() {
        let Some(field) = line.split(' ').nth(4) else {
            continue;
        };
        let point = std::path::PathBuf::from(unescape_octal(field));
        if path.starts_with(&point)
            && best
                .as_ref()
                .is_none_or(|b| point.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some(point);
        }
    }
    best
}

/// Undoes the kernel's `\ooo` escapes of space, tab, newline and backslash.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/PID/uid_map`: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMap(pub Vec<IdRange>);

impl IdMap {
    pub fn parse(s: &str) -> Option<IdMap> {
        s.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Vec<u32> = l
                    .split_whitespace()
                    .map(|x| x.parse().ok())
                    .collect::<Option<_>>()?;
                match v[..] {
                    [inside, outside, count] => Some(IdRange {
                        inside,
                        outside,
                        count,
                    }),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()
            .map(IdMap)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.0
            .iter()
            .any(|r| id >= r.inside && (id - r.inside) < r.count)
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}-{}", r.inside, r.inside as u64 + r.count as u64 - 1))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Reads the UID and GID maps of a user namespace.
///
/// The kernel shows a user namespace's maps only through a process inside
/// it, so a short-lived child joins it (`setns(CLONE_NEWUSER)`, which needs a
/// single-threaded caller that does not share its `fs` struct: a fresh
/// `fork` child is both) and reads `/proc/self/{uid,gid}_map`.
pub fn read_id_maps(userns: &NsFile) -> Result<(IdMap, IdMap), Errno> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let (rd, wr) = nix::unistd::pipe()?;
    // SAFETY: netshim is single-threaded here (it has not started any thread
    // before planning), so the child may allocate; it only calls setns, reads
    // two /proc files, writes to a pipe and exits without returning.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let mut out = std::fs::File::from(wr);
            let code = match nix::sched::setns(userns.fd(), nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => {
                    let u = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
                    let g = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
                    let _ = write!(out, "{u}\0{g}");
                    0
                }
                Err(e) => e as i32,
            };
            let _ = out.flush();
            // SAFETY: _exit ends the forked child without running the
            // parent's atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut buf = String::new();
            let mut f = std::fs::File::from(rd);
            let _ = f.read_to_string(&mut buf);
            let status = nix::sys::wait::waitpid(child, None)?;
            if let nix::sys::wait::WaitStatus::Exited(_, code) = status {
                if code != 0 {
                    return Err(Errno::from_raw(code));
                }
            }
            let _ = f.as_raw_fd();
            let (u, g) = buf.split_once('\0').ok_or(Errno::EIO)?;
            Ok((
                IdMap::parse(u).ok_or(Errno::EINVAL)?,
                IdMap::parse(g).ok_or(Errno::EINVAL)?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_parse_and_answer_membership() {
        let m =
            IdMap::parse("         0       1000          1\n         1     100000      65536\n")
                .unwrap();
        assert!(m.contains(0));
        assert!(m.contains(1));
        assert!(m.contains(65534));
        assert!(m.contains(65536));
        assert!(!m.contains(65537));
        assert_eq!(m.to_string(), "0-0, 1-65536");
        assert!(IdMap::parse("0 1\n").is_none());
        assert!(!IdMap::default().contains(0));
    }

    #[test]
    fn own_netns_plan_depends_on_privilege() {
        let netns = crate::ns::own_netns().unwrap();
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

    #[test]
    fn own_user_namespace_maps_are_readable() {
        // Joining our own user namespace is refused by the kernel (EINVAL);
        // that refusal must come back as an error, not as a bogus map.
        let own = own_userns().unwrap();
        assert!(read_id_maps(&own).is_err());
    }

    #[test]
    fn the_mount_holding_a_path_is_the_longest_prefix() {
        let mi = "22 1 8:1 / / rw shared:1 - ext4 /dev/vda rw\n\
                  30 22 0:5 / /run rw shared:2 - tmpfs tmpfs rw\n\
                  31 30 0:6 / /run/a\\040b rw shared:3 - tmpfs tmpfs rw\n\
                  32 30 0:7 / /run/ab rw - tmpfs tmpfs rw\n";
        let at = |p: &str| mount_point_of(mi, std::path::Path::new(p)).unwrap();
        assert_eq!(at("/run/x/config.json"), std::path::PathBuf::from("/run"));
        assert_eq!(
            at("/run/a b/config.json"),
            std::path::PathBuf::from("/run/a b")
        );
        assert_eq!(at("/run/abc/config.json"), std::path::PathBuf::from("/run"));
        assert_eq!(at("/srv/b/config.json"), std::path::PathBuf::from("/"));
    }
}
