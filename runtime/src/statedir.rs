//! The one rule for the directories netshim keeps state in (`netshim run`'s
//! and the OCI runtime's): created for this user only (0700, parents
//! included), and an existing one used only if it is a directory this user
//! owns that nobody else can write. Another user who could write there could
//! plant a state file or a symlink that a root netshim would then follow.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// Creates `path` (and missing parents) with mode 0700, or checks an
/// existing one: a directory (not a symlink) owned by this user and not
/// writable by group or others.
pub fn private_dir(path: &Path) -> Result<(), StateDirError> {
    let uid = nix::unistd::geteuid().as_raw();
    let io_err = |source| StateDirError::Io {
        path: path.into(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err)?;
    let md = fs::symlink_metadata(path).map_err(io_err)?;
    if !md.is_dir() || md.uid() != uid || md.permissions().mode() & 0o022 != 0 {
        return Err(StateDirError::Unsafe {
            path: path.into(),
            uid,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_private_and_refused_when_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b");
        private_dir(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        private_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(private_dir(&p), Err(StateDirError::Unsafe { .. })));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("a"), &link).unwrap();
        assert!(matches!(
            private_dir(&link),
            Err(StateDirError::Unsafe { .. })
        ));
    }
}
