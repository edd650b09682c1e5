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
//! `run`, `exec`) re-execute netshim from such a copy before anything else
//! ([`reexec_sealed`]): libcontainer forks the container's processes from
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

/// Makes sure this process runs from a sealed copy of its own binary:
/// returns at once when it already does; otherwise executes the copy with
/// the same arguments and environment (descriptors not marked close-on-exec
/// stay open, as the callers of an OCI runtime need: `--preserve-fds`,
/// console and sync sockets), and returns only on failure.
pub fn reexec_sealed(argv: &[OsString]) -> io::Result<()> {
    if running_sealed() {
        // Nothing netshim starts needs the mark (a container's environment
        // comes from its spec; hooks get theirs from it too).
        std::env::remove_var(REEXEC_MARK);
        return Ok(());
    }
    if std::env::var_os(REEXEC_MARK).is_some() {
        return Err(io::Error::other(
            "the re-executed sealed copy of netshim does not carry its seals",
        ));
    }
    let copy = sealed_copy_of_self()?;
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
