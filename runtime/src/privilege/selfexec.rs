//! A sealed copy of netshim's own binary, for running netshim itself in a
//! target (the capture engine) without the target ever holding the host's
//! file (the runc CVE-2019-5736 class: a process in a container that could
//! open `/proc/PID/exe` of a host binary for writing could replace it).
//!
//! Kernel rules: a memfd lives only in memory; `F_SEAL_WRITE`, `F_SEAL_GROW`
//! and `F_SEAL_SHRINK` make its contents immutable and `F_SEAL_SEAL` makes
//! that permanent (memfd_create(2), fcntl(2) "File Sealing"). execve(2)
//! refuses a file open for writing (ETXTBSY), so the copy is reopened
//! read-only through `/proc/self/fd` and the writable descriptor closed. The
//! process that executes it shows `/memfd:netshim (deleted)` as its exe.
//!
//! The OCI runtime's commands that start or enter a container (`create`,
//! `run`, `exec`) re-execute netshim from a copy no one can write before
//! anything else ([`reexec_sealed`]): a read-only bind mount of the binary
//! detached from every mount namespace where the caller may make one (no
//! copy of the bytes), else such a memfd. Why: libcontainer forks the container's processes from
//! netshim without executing anything, so until the container's command is
//! executed, `/proc/self/exe` of a container process is whatever netshim
//! runs from. A container entrypoint `#!/proc/self/exe` makes the kernel
//! execute that file again, inside the container, as the container's user;
//! with the host's binary there, a root container could keep a descriptor
//! to it and write it once it is no longer busy (CVE-2019-5736). From the
//! sealed copy it gets only the copy, which no one can change.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

/// Every seal [`sealed_copy_of_self`] adds.
const ALL_SEALS: i32 =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Set in the environment of the re-executed process, so that a copy that
/// somehow does not look sealed fails instead of re-executing for ever.
const REEXEC_MARK: &str = "_NETSHIM_SEALED_REEXEC";

/// Whether this process runs from a sealed copy: its executable is a file
/// with every seal (only a memfd can carry seals).
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS takes no argument and only reads the descriptor's
    // seals; `exe` is open for the duration of the call.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & ALL_SEALS == ALL_SEALS
}

/// Makes sure this process runs from a copy of its binary that no process
/// can write: returns at once when it already does; otherwise executes the
/// copy with the same arguments and environment (descriptors not marked
/// close-on-exec stay open, as the callers of an OCI runtime need:
/// `--preserve-fds`, console and sync sockets), and returns only on failure.
///
/// The copy is a read-only bind mount of the binary where this process may
/// make one (root, or root of a rootless user namespace: no copy of the
/// bytes, as runc 1.1 does), else a sealed memfd ([`sealed_copy_of_self`]).
pub fn reexec_sealed(argv: &[OsString]) -> io::Result<()> {
    // What the process runs from decides, never its environment (whoever
    // starts the runtime sets that): a sealed memfd, or a read-only mount
    // that is in no mount namespace (the detached bind made below; a
    // read-only mount of the host could be made writable again).
    if running_sealed() || running_from_detached_read_only_mount() {
        std::env::remove_var(REEXEC_MARK);
        name_after(argv);
        return Ok(());
    }
    if std::env::var_os(REEXEC_MARK).is_some() {
        return Err(io::Error::other(
            "the re-executed copy of netshim is neither sealed nor a detached read-only mount",
        ));
    }
    let copy = match read_only_bind_of_self() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(
                "no read-only bind of netshim's binary ({e}); copying it to a sealed memfd"
            );
            sealed_copy_of_self()?
        }
    };
    let cstr =
        |v: Vec<u8>| CString::new(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let args = argv
        .iter()
        .map(|a| cstr(a.clone().into_vec()))
        .collect::<io::Result<Vec<_>>>()?;
    let mut env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            cstr(kv)
        })
        .collect::<io::Result<Vec<_>>>()?;
    env.push(cstr(format!("{REEXEC_MARK}=1").into_bytes())?);
    // The copy's descriptor is close-on-exec: execveat(AT_EMPTY_PATH) reads
    // an ELF file through it before the close (execve(2) notes this fails
    // only for interpreted scripts, which netshim is not).
    let e = nix::unistd::fexecve(copy.as_raw_fd(), &args, &env).unwrap_err();
    Err(e.into())
}

/// Gives the process the name of its first argument's file, as a plain
/// exec does: before Linux 6.x, an exec through a descriptor names the
/// process after the descriptor's number ("3"), which `ps`, `pgrep` and
/// the engines' logs would show.
fn name_after(argv: &[OsString]) {
    use std::os::unix::ffi::OsStrExt;
    let Some(first) = argv.first() else { return };
    let base = std::path::Path::new(first)
        .file_name()
        .map(|b| b.as_bytes().to_vec())
        .unwrap_or_default();
    let mut name: Vec<u8> = base.into_iter().filter(|b| *b != 0).take(15).collect();
    if name.is_empty() {
        return;
    }
    name.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16
    // bytes, which `name` is, for the duration of the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Whether this process's executable lies on a read-only mount that is in
/// no mount namespace: its mount ID (statx(2) `STATX_MNT_ID`) is not among
/// those `/proc/self/mountinfo` lists, and statvfs(3) says read-only.
fn running_from_detached_read_only_mount() -> bool {
    let read_only = nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    if !read_only {
        return false;
    }
    // SAFETY: libc::statx is plain data, for which all-zero bytes are valid.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx writes only into `stx`, a statx of the right type; the
    // path is a NUL-terminated literal.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            0,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if r != 0 || stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return false;
    }
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let id = stx.stx_mnt_id.to_string();
    !mountinfo
        .lines()
        .any(|l| l.split(' ').next() == Some(id.as_str()))
}

// From <linux/mount.h> (Linux 5.12): open_tree(2) and mount_setattr(2).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A read-only bind mount of this process's binary, detached from every
/// mount namespace, as an `O_PATH` descriptor to execute.
///
/// Kernel rules: open_tree(OPEN_TREE_CLONE) needs CAP_SYS_ADMIN over the
/// owner of this process's mount namespace and makes a bind mount that is
/// in no namespace of anyone's (open_tree(2)); mount_setattr(2) makes it
/// read-only. When the last descriptor of it is closed (here: at exec,
/// close-on-exec) the kernel unmounts it (`dissolve_on_fput`), but a file
/// open through it (the executable of the process) keeps it alive, still
/// read-only, and no longer in any namespace, so mount_setattr(2) cannot
/// reach it again (EINVAL). Opening that file for writing, through
/// `/proc/PID/exe` or a descriptor of it, fails with EROFS.
pub fn read_only_bind_of_self() -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: the path is a NUL-terminated literal; the call returns a new
    // descriptor or -1 and touches no memory of ours otherwise.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` is a live mount_attr of the size passed; the empty
    // path with AT_EMPTY_PATH names the descriptor itself.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A sealed copy a child process is still making (see
/// [`start_sealed_copy_of_self`]).
pub struct PendingCopy {
    ro: OwnedFd,
    /// The size a whole copy has; None for a copy made already.
    size: Option<u64>,
    copier: Option<nix::unistd::Pid>,
}

impl AsRawFd for PendingCopy {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ro.as_raw_fd()
    }
}

impl From<OwnedFd> for PendingCopy {
    /// A copy made already (by [`sealed_copy_of_self`]).
    fn from(ro: OwnedFd) -> Self {
        PendingCopy {
            ro,
            size: None,
            copier: None,
        }
    }
}

/// Starts a sealed copy of `/proc/self/exe` in a forked child, so that the
/// copy (~3 ms for netshim's ~11 MB, most of the start-up a run's init
/// adds) overlaps with the rest of a run's set-up. The read-only
/// descriptor exists at once; [`PendingCopy::finish`] returns it once the
/// copy is complete and sealed.
///
/// Kernel rules: as [`sealed_copy_of_self`]; the write seal may be added
/// while a descriptor is open for writing, not while a shared writable
/// mapping exists (none does: the child copies with sendfile). Must be
/// called while the process is single-threaded.
pub fn start_sealed_copy_of_self() -> io::Result<PendingCopy> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd = memfd_create(
        c"netshim",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let exe = File::open("/proc/self/exe")?;
    let size = exe.metadata()?.len();
    let ro: OwnedFd = File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?.into();
    // SAFETY: the caller is single-threaded; the child makes system calls
    // on descriptors it holds and _exits, never returning.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            let ok = copy_and_seal(exe.as_raw_fd(), fd.as_raw_fd(), size);
            // SAFETY: ends the child without running the parent's
            // destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => Ok(PendingCopy {
            ro,
            size: Some(size),
            copier: Some(child),
        }),
    }
}

/// The copier's work: system calls only (it runs in a forked child).
fn copy_and_seal(from: i32, to: i32, size: u64) -> bool {
    let mut done: u64 = 0;
    while done < size {
        // SAFETY: sendfile between two descriptors this process holds, from
        // the current offsets.
        let n = unsafe { libc::sendfile(to, from, std::ptr::null_mut(), (size - done) as usize) };
        if n <= 0 {
            return false;
        }
        done += n as u64;
    }
    // SAFETY: F_ADD_SEALS takes an integer.
    unsafe { libc::fcntl(to, libc::F_ADD_SEALS, ALL_SEALS) == 0 }
}

impl PendingCopy {
    /// Waits for the copier and returns the read-only descriptor of the
    /// copy, once it is sealed and whole: the seals are added only after
    /// the whole binary was copied, and nothing can change it after them.
    pub fn finish(mut self) -> io::Result<OwnedFd> {
        let Some(size) = self.size else {
            return self.ro.try_clone();
        };
        if let Some(pid) = self.copier.take() {
            // ECHILD: reaped by someone else; the seals below still say.
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        let seals = nix::fcntl::fcntl(self.ro.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS)?;
        let len = File::from(self.ro.try_clone()?).metadata()?.len();
        if seals & ALL_SEALS != ALL_SEALS || len != size {
            return Err(io::Error::other(
                "the sealed copy of netshim was not completed",
            ));
        }
        self.ro.try_clone()
    }
}

impl Drop for PendingCopy {
    fn drop(&mut self) {
        if let Some(pid) = self.copier.take() {
            // Only while it is still our unreaped child: a clean-up that
            // reaped every child first (launch's) may have freed its PID
            // for reuse. waitid(WNOWAIT) leaves a child's state as it is and
            // fails with ECHILD for a PID that is no child of ours.
            let still_ours = nix::sys::wait::waitid(
                nix::sys::wait::Id::Pid(pid),
                nix::sys::wait::WaitPidFlag::WEXITED
                    | nix::sys::wait::WaitPidFlag::WNOHANG
                    | nix::sys::wait::WaitPidFlag::WNOWAIT,
            )
            .is_ok();
            if still_ours {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
        }
    }
}

/// Returns a read-only descriptor of a sealed in-memory copy of
/// `/proc/self/exe`.
pub fn sealed_copy_of_self() -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let name = c"netshim";
    let fd = memfd_create(
        name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let mut copy = File::from(fd);
    let mut exe = File::open("/proc/self/exe")?;
    io::copy(&mut exe, &mut copy)?;
    fcntl(
        copy.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SEAL
                | SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_WRITE,
        ),
    )?;
    let ro = File::open(format!("/proc/self/fd/{}", copy.as_raw_fd()))?;
    drop(copy);
    Ok(ro.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_test_binary_does_not_run_sealed() {
        assert!(!running_sealed(), "cargo's test binary is a plain file");
    }

    #[test]
    fn a_copy_made_by_a_child_is_sealed_and_whole() {
        let fd = start_sealed_copy_of_self().unwrap().finish().unwrap();
        let seals = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(seals & ALL_SEALS, ALL_SEALS);
        let mut copy = Vec::new();
        File::from(fd).read_to_end(&mut copy).unwrap();
        assert_eq!(copy, std::fs::read("/proc/self/exe").unwrap());
    }

    #[test]
    fn the_copy_is_sealed_read_only_and_identical() {
        let fd = sealed_copy_of_self().unwrap();
        let seals = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(
            seals & 0xf,
            0xf,
            "seal, shrink, grow and write seals: {seals:#x}"
        );
        let mut f = File::from(fd);
        assert!(f.write_all(b"x").is_err(), "opened read-only");
        let path = format!("/proc/self/fd/{}", f.as_raw_fd());
        // Reopening it for writing may succeed (for root); writing cannot.
        if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&path) {
            assert!(w.write_all(b"x").is_err(), "the write seal holds");
        }
        let mut head = [0u8; 4];
        f.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"\x7fELF");
        let want = std::fs::metadata("/proc/self/exe").unwrap().len();
        assert_eq!(f.metadata().unwrap().len(), want);
    }
}
