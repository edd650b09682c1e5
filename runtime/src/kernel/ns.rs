//! Namespace inspection: the nsfs ioctls netshim uses to classify a target.
//!
//! This is one of the few privilege-sensitive places of netshim. Nothing here
//! changes the caller's credentials; it only opens and asks about namespace
//! files. Kernel rules relied on (docs/security.md lists them with the tests that check them):
//!
//! - `ioctl(ns_fd, NS_GET_USERNS)` (Linux ≥ 4.9) returns a new fd for the user
//!   namespace that owns `ns_fd`'s namespace. It fails with `EPERM` when that
//!   user namespace is outside the caller's own (an ancestor of it).
//! - `ioctl(userns_fd, NS_GET_PARENT)` returns the parent user namespace, and
//!   `EPERM` when the parent is outside the caller's user namespace.
//! - `ioctl(userns_fd, NS_GET_OWNER_UID)` writes the owner's UID, as seen in
//!   the caller's user namespace.
//! - `ioctl(ns_fd, NS_GET_NSTYPE)` (Linux ≥ 4.11) returns the `CLONE_NEW*`
//!   constant of the namespace: netshim checks a target really is a network
//!   namespace before it plans anything with it.
//! - Two namespace files name the same namespace when their `st_dev` and
//!   `st_ino` are equal.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode};

/// `_IO(0xb7, nr)` from `<linux/nsfs.h>`.
const fn nsio(nr: libc::c_ulong) -> libc::c_ulong {
    (0xb7 << 8) | nr
}
const NS_GET_USERNS: libc::c_ulong = nsio(0x1);
const NS_GET_PARENT: libc::c_ulong = nsio(0x2);
const NS_GET_NSTYPE: libc::c_ulong = nsio(0x3);
const NS_GET_OWNER_UID: libc::c_ulong = nsio(0x4);

/// The identity of a namespace: the device and inode of its nsfs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl std::fmt::Display for NsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The form `readlink /proc/PID/ns/net` prints, minus the type.
        write!(f, "[{}]", self.ino)
    }
}

/// An open namespace file.
#[derive(Debug)]
pub struct NsFile {
    fd: OwnedFd,
}

impl NsFile {
    /// Opens a namespace file read-only, without following a final symlink
    /// unless `follow` is set (`/proc/PID/ns/*` entries are magic links and
    /// need following; user-given paths such as `/run/netns/NAME` are bind
    /// mounts and must not be symlinks to somewhere else).
    pub fn open(path: &Path, follow: bool) -> Result<Self, Errno> {
        let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        if !follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let raw = open(path, flags, Mode::empty())?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn id(&self) -> Result<NsId, Errno> {
        let st = fstat(self.fd.as_raw_fd())?;
        Ok(NsId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// The `CLONE_NEW*` type of this namespace, or `ENOTTY`/`EINVAL` when the
    /// file is not a namespace file at all.
    pub fn ns_type(&self) -> Result<libc::c_int, Errno> {
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), NS_GET_NSTYPE) };
        Errno::result(r)
    }

    /// The user namespace that owns this namespace.
    pub fn owner_userns(&self) -> Result<NsFile, Errno> {
        self.ioctl_fd(NS_GET_USERNS)
    }

    /// The parent of this user namespace.
    pub fn parent_userns(&self) -> Result<NsFile, Errno> {
        self.ioctl_fd(NS_GET_PARENT)
    }

    /// The UID that created this user namespace, as seen from the caller's.
    pub fn owner_uid(&self) -> Result<u32, Errno> {
        let mut uid: libc::uid_t = 0;
        // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer, which
        // points at a live, properly aligned local.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), NS_GET_OWNER_UID, &mut uid) };
        Errno::result(r)?;
        Ok(uid)
    }

    fn ioctl_fd(&self, req: libc::c_ulong) -> Result<NsFile, Errno> {
        // SAFETY: these nsfs ioctls take no argument and return a new file
        // descriptor (with O_CLOEXEC set by the kernel) or -1.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), req) };
        let raw = Errno::result(r)?;
        // SAFETY: the kernel just created this descriptor for us.
        Ok(NsFile::from_fd(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// A `/proc/self/fd/N` path naming this namespace, usable by a process
    /// that inherited the descriptor (libcontainer joins namespaces by path).
    pub fn proc_self_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// Clears `FD_CLOEXEC` so that the descriptor survives into libcontainer's
    /// child processes, which join the namespace through `proc_self_path`.
    pub fn keep_across_exec(&self) -> Result<(), Errno> {
        nix::fcntl::fcntl(
            self.fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )?;
        Ok(())
    }

    pub fn try_clone(&self) -> std::io::Result<NsFile> {
        Ok(NsFile::from_fd(self.fd.try_clone()?))
    }
}

/// The caller's own user namespace.
pub fn own_userns() -> Result<NsFile, Errno> {
    NsFile::open(Path::new("/proc/self/ns/user"), true)
}

/// The caller's own network namespace.
pub fn own_netns() -> Result<NsFile, Errno> {
    NsFile::open(Path::new("/proc/self/ns/net"), true)
}

/// `pidfd_open(2)` (Linux ≥ 5.3): a descriptor for one process, which PID
/// reuse cannot redirect, and which polls readable once the process exits.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just created this descriptor for us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Whether the process a pidfd refers to still runs (signal 0 only checks;
/// EPERM means it exists but may not be signalled by us).
pub fn pidfd_alive(fd: &OwnedFd) -> bool {
    // SAFETY: pidfd_send_signal with signal 0 sends nothing; it only reports
    // whether the process exists.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    r == 0 || Errno::last() == Errno::EPERM
}

/// Reads a whole small file; for `/proc` files.
pub(crate) fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    File::open(path)?.read_to_string(&mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_have_expected_types() {
        let net = own_netns().unwrap();
        assert_eq!(net.ns_type().unwrap(), libc::CLONE_NEWNET);
        let user = own_userns().unwrap();
        assert_eq!(user.ns_type().unwrap(), libc::CLONE_NEWUSER);
        // Our own netns is owned by our own user namespace (we created neither).
        assert_eq!(
            net.owner_userns().unwrap().id().unwrap(),
            user.id().unwrap()
        );
    }

    #[test]
    fn a_regular_file_is_not_a_namespace() {
        let f = NsFile::open(Path::new("/proc/self/status"), true).unwrap();
        assert!(f.ns_type().is_err());
    }

    #[test]
    fn a_pidfd_tells_a_dead_process_from_a_live_one() {
        let me = super::pidfd_open(std::process::id() as i32).unwrap();
        assert!(super::pidfd_alive(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let fd = super::pidfd_open(child.id() as i32).unwrap();
        child.wait().unwrap();
        // Reaped: the PID may now be reused, but the pidfd knows.
        assert!(!super::pidfd_alive(&fd));
    }

    #[test]
    fn ioctl_numbers_match_linux_nsfs_h() {
        assert_eq!(NS_GET_USERNS, 0xb701);
        assert_eq!(NS_GET_PARENT, 0xb702);
        assert_eq!(NS_GET_NSTYPE, 0xb703);
        assert_eq!(NS_GET_OWNER_UID, 0xb704);
    }
}
