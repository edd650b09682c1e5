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
