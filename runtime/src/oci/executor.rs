//! How the container's process finds its executable: runc's rule, not
//! libcontainer's default.
//!
//! libcontainer's default executor refuses any process whose environment has
//! no `PATH` ("PATH environment variable is not set"), even when `args[0]` is
//! an absolute path. runc resolves `args[0]` with Go's `exec.LookPath` after
//! the process's environment has been replaced by the spec's: a name holding
//! a `/` is used as it is (relative to `cwd`), and only a bare name is
//! searched for in the spec's `PATH` (none: not found). A pod sandbox image
//! whose config has no `Env` (so the pause container gets none) therefore
//! runs under runc, and must run under netshim. The executor then `execv`s
//! exactly the path it resolved, with the environment libcontainer already
//! set from the spec, as runc does (`unix.Exec(name, args, os.Environ())`).

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

#[derive(Clone, Default)]
pub struct RuncExecutor;

/// The process's `args`, or the reason there are none.
fn args_of(spec: &Spec) -> Result<&[String], String> {
    match spec.process().as_ref().and_then(|p| p.args().as_ref()) {
        Some(a) if !a.is_empty() => Ok(a),
        _ => Err("the spec's process has no args: args[0] must name the executable".into()),
    }
}

/// The spec's `PATH`, as the process will see it: the last `PATH=` wins, as
/// when each entry is set in turn.
fn path_of(spec: &Spec) -> Option<String> {
    let env = spec.process().as_ref()?.env().as_ref()?;
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH=").map(str::to_owned))
}

/// Go's `findExecutable`: a regular file (or a link to one) with any
/// execute bit; a directory or a file without one is "permission denied".
fn check_executable(p: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("stat {}: {e}", p.display()))?;
    if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{}: permission denied", p.display()));
    }
    Ok(())
}

/// `exec.LookPath(name)` with `PATH` taken from the spec.
pub fn look_path(name: &str, path: Option<&str>) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return check_executable(&p)
            .map(|()| p)
            .map_err(|e| format!("exec: {name:?}: {e}"));
    }
    // Go's LookPath: an empty entry is the current directory, and a name
    // found through a relative entry is refused (Go >= 1.19's ErrDot, which
    // runc keeps): a file planted in the working directory must not shadow
    // a command.
    for dir in path.into_iter().flat_map(|p| p.split(':')) {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(name);
        if check_executable(&p).is_ok() {
            if p.is_relative() {
                return Err(format!(
                    "exec: {name:?}: cannot run executable found relative to current directory"
                ));
            }
            return Ok(p);
        }
    }
    Err(match path {
        Some(_) => format!("exec: {name:?}: executable file not found in $PATH"),
        None => format!(
            "exec: {name:?}: executable file not found in $PATH (the process's environment \
             sets no PATH: give args[0] as an absolute path, or set PATH in the process's env)"
        ),
    })
}

impl Executor for RuncExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let args = args_of(spec).map_err(ExecutorValidationError::ArgValidationError)?;
        look_path(&args[0], path_of(spec).as_deref())
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = args_of(spec).map_err(ExecutorError::Other)?;
        let path = look_path(&args[0], path_of(spec).as_deref()).map_err(ExecutorError::Other)?;
        let cpath = CString::new(path.into_os_string().into_encoded_bytes())
            .map_err(|_| ExecutorError::InvalidArg)?;
        let argv = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        // On success execv does not return; the environment is the one
        // libcontainer set from the spec (`setup_envs`).
        let err = nix::unistd::execv(&cpath, &argv).unwrap_err();
        // After start nobody reads the runtime's log but an engine's; the
        // container's own stderr gets the reason, as under runc ("exec
        // /a/noshebang: exec format error").
        let msg = format!(
            "exec {}: {}",
            cpath.to_string_lossy(),
            err.desc().to_lowercase()
        );
        let _ = nix::unistd::write(std::io::stderr(), format!("{msg}\n").as_bytes());
        Err(ExecutorError::Other(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_names_need_no_path_and_bare_names_do() {
        assert_eq!(
            look_path("/bin/sh", None).unwrap(),
            PathBuf::from("/bin/sh")
        );
        let e = look_path("sh", None).unwrap_err();
        assert!(
            e.contains("not found in $PATH") && e.contains("sets no PATH"),
            "{e}"
        );
        assert!(look_path("sh", Some("/nonexistent:/bin")).is_ok());
        let e = look_path("sh", Some("")).unwrap_err();
        assert!(e.contains("not found in $PATH"), "{e}");
    }

    #[test]
    fn relative_path_entries_are_refused_as_go_refuses_them() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("planted");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The directory named relative to the current one (which the test
        // does not change: other tests run beside it).
        let up = "../".repeat(std::env::current_dir().unwrap().components().count() - 1);
        let rel = format!(
            "{up}{}",
            d.path().display().to_string().trim_start_matches('/')
        );
        let relative = look_path("planted", Some(&format!("{rel}:/bin")));
        let empty = look_path("sh", Some(":/nonexistent"));
        let abs = look_path("planted", Some(d.path().to_str().unwrap()));
        assert!(empty.is_err());
        let e = relative.unwrap_err();
        assert!(e.contains("relative to current directory"), "{e}");
        assert_eq!(abs.unwrap(), f);
    }

    #[test]
    fn directories_and_missing_files_are_refused_with_the_reason() {
        let e = look_path("/tmp", None).unwrap_err();
        assert!(e.contains("permission denied"), "{e}");
        let e = look_path("/nonexistent/x", None).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }
}
