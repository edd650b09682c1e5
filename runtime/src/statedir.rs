//! The one rule for the directories netshim keeps state in (`netshim run`'s
//! and the OCI runtime's): created for this user only (0700, parents
//! included), and an existing one used only if it is a directory this user
//! owns that nobody else can write. Another user who could write there could
//! plant a state file or a symlink that a root netshim would then follow.
//!
//! `netshim run` keeps each run's libcontainer state and bundle under
//! [`StateDirs`], named by a run ID that names the netshim process that
//! owns it; [`clean_stale`] removes what runs whose netshim is gone left.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use libcontainer::container::Container;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::supervise::start_time;

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot create the state directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "state directory {path} is not safe to use: it must be a directory owned by you (UID {uid}) \
         and not writable by others; remove it or choose another (XDG_RUNTIME_DIR, or --root)"
    )]
    Unsafe { path: PathBuf, uid: u32 },
}

/// The mount a directory is on (statx's `stx_mnt_id`, Linux 5.8), so that a
/// removal can tell a mount point from a plain directory even when both
/// are on the same filesystem (a bind mount).
fn mount_id(dir: &std::os::fd::OwnedFd) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: statx is plain old data; all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a NUL-terminated empty string, used with
    // AT_EMPTY_PATH on a descriptor this function borrows; statx writes only
    // into `stx`, which it owns.
    let rc = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel does not report mount IDs (statx STATX_MNT_ID, Linux 5.8)",
        ));
    }
    Ok(stx.stx_mnt_id)
}

/// Removes the directory `path` and everything in it, without ever leaving
/// the mount `path` is on: a directory that is a mount point (a bind of a
/// host directory left in a run's bundle, say) is not entered, and the
/// removal fails there with EBUSY, having removed nothing beyond the
/// mount. Symbolic links are removed, never followed. This is the only
/// recursive removal netshim does, because a bundle's rootfs holds a bind
/// of the host's `/` while a run lasts (in netshim's private mount
/// namespace and the container's): a plain recursive removal from inside
/// either would empty the host.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let root = match open(path, flags, Mode::empty()) {
        Ok(fd) => {
            // SAFETY: open returned a new descriptor nothing else owns.
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        }
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mnt = mount_id(&root)?;
    remove_contents(root, mnt, path)?;
    fs::remove_dir(path)
}

/// Empties the directory `dir` (at `path`, for messages), staying on mount `mnt`.
fn remove_contents(dir: std::os::fd::OwnedFd, mnt: u64, path: &Path) -> io::Result<()> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{fstatat, Mode, SFlag};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut entries = nix::dir::Dir::from_fd(nix::unistd::dup(dir.as_raw_fd())?)?;
    let names: Vec<std::ffi::CString> = entries
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let st = fstatat(
            Some(dir.as_raw_fd()),
            name.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        if is_dir {
            let fd = openat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
                Mode::empty(),
            )?;
            // SAFETY: openat returned a new descriptor nothing else owns.
            let child = unsafe { OwnedFd::from_raw_fd(fd) };
            let sub = path.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
            if mount_id(&child)? != mnt {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("{} is a mount point: not removed", sub.display()),
                ));
            }
            remove_contents(child, mnt, &sub)?;
            unlinkat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                UnlinkatFlags::RemoveDir,
            )?;
        } else {
            unlinkat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                UnlinkatFlags::NoRemoveDir,
            )?;
        }
    }
    Ok(())
}

/// Creates `path` (and missing parents) with mode 0700, or checks an
/// existing one: a directory (not a symlink) owned by this user and not
/// writable by group or others.
pub fn private_dir(path: &Path) -> Result<(), StateDirError> {
    dir_of_ours(path, 0o700).map(|_| ())
}

/// [`private_dir`], but others may pass through (mode 0711): they can
/// neither list it nor create in it. For the directories above a run's
/// rootfs, which the container's init must resolve by path. In a target's
/// user namespace where host root is not mapped (a rootless container's,
/// joined by root) that init is an unprivileged stranger to root's files:
/// the kernel grants `CAP_DAC_OVERRIDE` only over inodes whose owner is
/// mapped, so a 0700 directory of root's fails its `mount(rootfs, rootfs)`
/// with EACCES. An existing directory gets the search bits it lacks.
pub fn traversable_dir(path: &Path) -> Result<(), StateDirError> {
    let have = dir_of_ours(path, 0o711)?;
    if have & 0o111 != 0o111 {
        fs::set_permissions(path, fs::Permissions::from_mode(have | 0o111)).map_err(|source| {
            StateDirError::Io {
                path: path.into(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Makes `path` with `mode` if missing and checks it is a directory of
/// ours that others cannot write; returns its permission bits. An existing
/// directory keeps its mode (an OCI runtime's `--root` is the caller's).
fn dir_of_ours(path: &Path, mode: u32) -> Result<u32, StateDirError> {
    let uid = nix::unistd::geteuid().as_raw();
    let io_err = |source| StateDirError::Io {
        path: path.into(),
        source,
    };
    make_dirs(path, mode).map_err(io_err)?;
    let md = fs::symlink_metadata(path).map_err(io_err)?;
    if !md.is_dir() || md.uid() != uid || md.permissions().mode() & 0o022 != 0 {
        return Err(StateDirError::Unsafe {
            path: path.into(),
            uid,
        });
    }
    Ok(md.permissions().mode() & 0o7777)
}

/// Creates `path` and its missing parents with exactly `mode`, whatever the
/// umask (which `DirBuilder::mode` is subject to: 0711 under umask 077 would
/// be 0700, and the directories above a rootfs must be traversable).
/// Directories that exist are left alone.
pub(crate) fn make_dirs(path: &Path, mode: u32) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut p = path;
    while fs::symlink_metadata(p).is_err() {
        missing.push(p);
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `data` to `path` for this user only: mode 0600 whatever the umask,
/// set on the open descriptor (so no other process can open it writable in
/// between), and an existing file is made 0600 too.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(data)
}

/// libcontainer makes a container's state directory and files with the
/// process's umask; they are set as runc sets its own: the directory 0711,
/// the files in it (state.json, libcontainer's config) 0600. Sockets keep
/// their mode (a socket is connected to by the runtime's own user).
pub(crate) fn tighten_container_state(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o711))?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            fs::set_permissions(e.path(), fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// Where netshim keeps its state: `/run/netshim` for root,
/// `$XDG_RUNTIME_DIR/netshim` for a user (else `/tmp/netshim-UID`).
#[derive(Debug, Clone)]
pub struct StateDirs {
    pub root: PathBuf,
}

impl StateDirs {
    pub fn for_caller() -> Result<StateDirs, StateDirError> {
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

    pub fn at(root: PathBuf) -> Result<StateDirs, StateDirError> {
        let s = StateDirs { root };
        traversable_dir(&s.root)?;
        private_dir(&s.containers())?;
        traversable_dir(&s.bundles())?;
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

/// The file in a run's bundle naming its init process: `PID STARTTIME`.
const INIT_RECORD: &str = "init";

/// Records which process is a run's init, for a later run that finds this
/// one abandoned: the start time tells it from a reused PID.
pub(crate) fn record_init(bundle: &Path, pid: i32) -> io::Result<()> {
    write_private(
        &bundle.join(INIT_RECORD),
        format!("{pid} {}\n", start_time(pid).unwrap_or(0)).as_bytes(),
    )
}

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
pub(crate) fn new_run_id() -> String {
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
                        let _ = remove_tree(&cdir);
                    }
                }
                Err(_) => {
                    let _ = remove_tree(&cdir);
                }
            }
        }
        if let Err(e) = remove_tree(&state.bundles().join(&id)) {
            tracing::warn!(%id, error = %e, "could not remove the bundle of an earlier run");
        }
        tracing::info!(%id, "cleaned state left by an earlier run that did not finish");
        cleaned.push(id);
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory bind-mounted inside the tree is not entered: the removal
    /// stops there with an error and what the mount shows survives. Run in
    /// a forked child with user and mount namespaces of its own (no root
    /// needed, nothing mounted outside it).
    #[test]
    fn removal_never_crosses_a_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, victim) = (dir.path().join("bundle"), dir.path().join("host-etc"));
        fs::create_dir_all(tree.join("rootfs/etc")).unwrap();
        fs::create_dir_all(tree.join("rootfs/a/b")).unwrap();
        fs::write(tree.join("rootfs/a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&victim, tree.join("rootfs/link")).unwrap();
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("passwd"), "root").unwrap();
        // SAFETY: the child only makes namespaces, mounts, removes files and
        // leaves with _exit; it never returns into the test harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                use nix::mount::{mount, MsFlags};
                use nix::sched::{unshare, CloneFlags};
                let code = (|| -> Option<i32> {
                    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).ok()?;
                    mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )
                    .ok()?;
                    mount(
                        Some(&victim),
                        &tree.join("rootfs/etc"),
                        None::<&str>,
                        MsFlags::MS_BIND,
                        None::<&str>,
                    )
                    .ok()?;
                    let e = remove_tree(&tree).err()?;
                    Some(if e.kind() == io::ErrorKind::ResourceBusy {
                        0
                    } else {
                        2
                    })
                })()
                .unwrap_or(3);
                // SAFETY: ends the child without the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(
                    st,
                    nix::sys::wait::WaitStatus::Exited(child, 0),
                    "the removal crossed the mount or set-up failed"
                );
            }
        }
        assert_eq!(fs::read_to_string(victim.join("passwd")).unwrap(), "root");
        // Without the mount, the same tree goes whole; the link's target stays.
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert!(victim.join("passwd").exists());
        remove_tree(&tree).unwrap();
    }

    #[test]
    fn made_private_and_refused_when_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b");
        private_dir(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // An existing directory keeps its mode (an OCI runtime's --root).
        fs::set_permissions(&p, fs::Permissions::from_mode(0o711)).unwrap();
        private_dir(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o711
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(private_dir(&p), Err(StateDirError::Unsafe { .. })));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("a"), &link).unwrap();
        assert!(matches!(
            private_dir(&link),
            Err(StateDirError::Unsafe { .. })
        ));
    }

    /// With umask 000, what netshim creates still gets its own mode: the
    /// state directories, a run's bundle and rootfs, the `init` record that
    /// `clean_stale` trusts to pick a PID to kill, and the console socket.
    /// Once 0666, 0777 and 0777. Run in a forked child, as the umask is the
    /// whole process's.
    #[test]
    fn modes_hold_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ns");
        // SAFETY: the child only sets its umask, creates files and leaves
        // with _exit; it never returns into the test harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                nix::sys::stat::umask(nix::sys::stat::Mode::empty());
                let code = (|| -> io::Result<()> {
                    let s = StateDirs::at(root.clone()).map_err(io::Error::other)?;
                    let bundle = s.bundles().join("run-x");
                    make_dirs(&bundle, 0o711)?;
                    crate::launch::spec::prepare_rootfs(&bundle.join("rootfs"))?;
                    record_init(&bundle, std::process::id() as i32)?;
                    write_private(&bundle.join("config.json"), b"{}")?;
                    let sock =
                        crate::launch::tty::ConsoleSocket::bind(&bundle.join("console.sock"))?;
                    std::mem::forget(sock);
                    let c = s.containers().join("c");
                    fs::DirBuilder::new().mode(0o777).create(&c)?;
                    fs::write(c.join("state.json"), "{}")?;
                    tighten_container_state(&c)
                })()
                .map_or(3, |()| 0);
                // SAFETY: ends the child without the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        let mode = |p: &str| {
            fs::symlink_metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        for (p, want) in [
            ("", 0o711),
            ("containers", 0o700),
            ("bundles", 0o711),
            ("bundles/run-x", 0o711),
            ("bundles/run-x/rootfs", 0o711),
            ("bundles/run-x/init", 0o600),
            ("bundles/run-x/config.json", 0o600),
            ("bundles/run-x/console.sock", 0o600),
            ("containers/c", 0o711),
            ("containers/c/state.json", 0o600),
        ] {
            assert_eq!(mode(p), want, "{p}: {:o}", mode(p));
        }
    }

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
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // Others may pass through to a run's rootfs, not list or read.
        assert_eq!(mode(&s.root), 0o711);
        assert_eq!(mode(&s.bundles()), 0o711);
        assert_eq!(mode(&s.containers()), 0o700);
        // A state root an earlier version made 0700 is opened up the same.
        fs::set_permissions(&s.root, fs::Permissions::from_mode(0o700)).unwrap();
        StateDirs::at(s.root.clone()).unwrap();
        assert_eq!(mode(&s.root), 0o711);
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
