//! The steps that change the calling process's own namespaces and mounts:
//! entering a user namespace it owns, and the private mount namespaces in
//! which netshim gives libcontainer a cgroup view or a changed spec. Each
//! says the kernel rule it relies on.

use nix::errno::Errno;

use crate::kernel::ns::NsFile;

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

/// Empties the calling process's supplementary group list, so that the
/// run's init, which libcontainer forks from it, starts with none: the
/// spec's `additionalGids` is empty and libcontainer then calls no
/// `setgroups` at all, so the command would keep the caller's groups
/// (join-userns: the caller's own group, 0 in a namespace where the caller
/// is root). Returns false, having changed nothing, where the kernel
/// forbids it.
///
/// Kernel rules (`user_namespaces(7)`): `setgroups(2)` needs `CAP_SETGID`
/// in the caller's user namespace (root has it; so does a caller after
/// [`enter_userns`]), and inside a user namespace it fails with EPERM while
/// `/proc/self/setgroups` is "deny" (written before an unprivileged
/// `gid_map`, so that no one there can drop a group that denies access).
/// In the initial user namespace the file says "allow" and cannot change.
pub fn drop_supplementary_groups() -> Result<bool, Errno> {
    let state = std::fs::read_to_string("/proc/self/setgroups")
        .map_err(|e| e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO))?;
    if state.trim() == "deny" {
        return Ok(false);
    }
    nix::unistd::setgroups(&[])?;
    Ok(true)
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
    if !privileged && cgroup_v2_at_root()? {
        return Ok(());
    }
    private_mount_namespace()?;
    run_cgroup_view(privileged)
}

fn cgroup_v2_at_root() -> Result<bool, Errno> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    Ok(statfs("/sys/fs/cgroup")?.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// Moves the calling process into a mount namespace of its own, in which
/// every mount is a slave of the one it was copied from.
///
/// Kernel rules: `unshare(CLONE_NEWNS)` needs `CAP_SYS_ADMIN` in the user
/// namespace that owns the caller's mount namespace, and an `fs` struct no
/// other thread shares. The copies start in their originals' peer groups;
/// `MS_REC | MS_SLAVE` on `/` makes them receive the host's mount events and
/// send none, so nothing mounted here reaches the host.
pub fn private_mount_namespace() -> Result<(), Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    make_root_slave()
}

/// Makes every mount of the caller's (new) mount namespace a slave of its
/// original: host mount events still arrive, nothing mounted here leaves
/// (mount_namespaces(7), `MS_REC | MS_SLAVE`).
pub fn make_root_slave() -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
}

/// Shows the host's whole file tree at `rootfs` (an empty directory of the
/// run's bundle), in the caller's private mount namespace only: one
/// recursive bind of `/`, made before libcontainer creates the container's
/// mount namespace as a copy of this one. libcontainer then mounts only
/// `/dev` (a fresh tmpfs, so it never populates the host's devtmpfs),
/// `/dev/pts` and `/dev/shm` over it. One bind here replaces one
/// libcontainer bind per top-level host directory, each of which costs ~60
/// system calls of libpathrs' checked path walk (~1,000 per run).
///
/// Kernel rules: binding needs `CAP_SYS_ADMIN` in the user namespace owning
/// the caller's mount namespace (root, or the owner of the joined user
/// namespace). In a mount namespace owned by a less privileged user
/// namespace the copied mounts are locked together; a bind of `/` must then
/// be recursive (`MS_REC`), which it is, so that no locked mount is
/// uncovered. The caller's namespace is a slave of the host's
/// ([`private_mount_namespace`]), so the bind stays in it.
///
/// `/proc` and `/sys` in the bind are then made `nosuid,nodev,noexec`, as
/// runc's default spec mounts them, whatever the host's own flags (a
/// remount of a bind changes that mount alone). A remount must keep the
/// flags it does not mean to change (in a less privileged mount namespace
/// the kernel refuses to clear a locked `ro` or change locked atime
/// flags), so they are read back with `statvfs` and passed again.
pub fn bind_host_root(rootfs: &std::path::Path) -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    use nix::sys::statvfs::{statvfs, FsFlags};
    use std::os::unix::fs::MetadataExt;
    mount(
        Some("/"),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let dev_of = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.dev())
            .map_err(|e| e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO))
    };
    let root_dev = dev_of(rootfs)?;
    for sub in ["proc", "sys"] {
        let path = rootfs.join(sub);
        // Only a mount point: a remount of a plain directory would remount
        // the mount holding it, the rootfs.
        if dev_of(&path)? == root_dev {
            continue;
        }
        let have = statvfs(&path)?.flags();
        let mut flags = MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        for (st, ms) in [
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if have.contains(st) {
                flags |= ms;
            }
        }
        mount(None::<&str>, &path, None::<&str>, flags, None::<&str>)?;
    }
    hide_other_procfs(rootfs)
}

/// Hides every procfs mounted in the bound tree other than its `/proc`
/// (which the run's own procfs covers): a chroot's, a build root's or
/// another container's `/proc` shows the processes of the PID namespace it
/// was mounted from, and through it a command could reach a process of its
/// own UID there (`environ`, `mem`, `root`) despite its PID namespace.
///
/// Kernel rules: a mount can be detached (umount2 `MNT_DETACH`) unless it
/// is locked, as mounts copied into a mount namespace owned by a less
/// privileged user namespace are (EINVAL); a locked mount can still be
/// covered, so it is covered with an empty read-only tmpfs instead.
fn hide_other_procfs(rootfs: &std::path::Path) -> Result<(), Errno> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|_| Errno::EIO)?;
    let own_proc = rootfs.join("proc");
    let mut found: Vec<std::path::PathBuf> = text
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("proc"))
                .then(|| left.split(' ').nth(4).map(unescape_octal))?
        })
        .map(std::path::PathBuf::from)
        .filter(|p| p.starts_with(rootfs) && !p.starts_with(&own_proc))
        .collect();
    // Deepest first, so a detach never leaves a mount below it uncovered;
    // a path listed twice (stacked mounts) is handled twice.
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in found {
        if umount2(&p, MntFlags::MNT_DETACH).is_ok() {
            continue;
        }
        mount(
            Some("tmpfs"),
            &p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=4k,mode=0000"),
        )?;
    }
    Ok(())
}

/// The part of [`private_cgroup_view`] done inside the private mount
/// namespace, for a caller that has made it already (a `netshim run`,
/// [`private_mount_namespace`]); nothing changes where
/// [`private_cgroup_view`] would change nothing.
pub fn run_cgroup_view(privileged: bool) -> Result<(), Errno> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    use std::path::Path;

    let root = Path::new("/sys/fs/cgroup");
    let is_v2 = cgroup_v2_at_root()?;
    if !privileged && is_v2 {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
