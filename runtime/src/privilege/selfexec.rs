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

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

const ALL_SEALS: i32 =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

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
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
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
