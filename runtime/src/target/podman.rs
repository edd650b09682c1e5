//! `podman:NAME|ID`: resolved through the Podman CLI, run as the caller, so
//! that rootless and rootful Podman follow Podman's own defaults. The binary
//! is `podman` from PATH, or `$NETSHIM_PODMAN`.

use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum PodmanError {
    #[error("cannot run {bin}: {source}; install Podman (apt-get install podman) or set NETSHIM_PODMAN to its path")]
    Missing {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no Podman container named {0:?} for this user: list them with `podman ps`")]
    NotFound(String),
    #[error(
        "Podman container {name:?} is not running (state {state:?}): start it, then try again"
    )]
    NotRunning { name: String, state: String },
    #[error("`podman inspect {name}` failed: {detail}")]
    Inspect { name: String, detail: String },
}

fn binary() -> String {
    std::env::var("NETSHIM_PODMAN").unwrap_or_else(|_| "podman".into())
}

/// Runs `podman ARGS` as the caller, its stdin empty; its output.
fn podman(args: &[&str]) -> Result<std::process::Output, PodmanError> {
    let bin = binary();
    Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PodmanError::Missing { bin, source })
}

/// Names of the caller's running Podman containers; `None` when there is no
/// Podman to ask.
pub fn list_running() -> Option<Vec<String>> {
    let out = Command::new(binary())
        .args(["ps", "--format", "{{.Names}}"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    })
}

/// The caller's running Podman containers with label `key=value`:
/// (name, ID, image).
pub fn running_with_label(
    key: &str,
    value: &str,
) -> Result<Vec<(String, String, String)>, PodmanError> {
    let out = podman(&[
        "ps",
        "--filter",
        &format!("label={key}={value}"),
        "--format",
        "{{.Names}}\t{{.ID}}\t{{.Image}}",
    ])?;
    if !out.status.success() {
        return Err(PodmanError::Inspect {
            name: format!("label={key}={value}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            Some((
                it.next()?.trim().to_string(),
                it.next()?.trim().to_string(),
                it.next().unwrap_or_default().trim().to_string(),
            ))
        })
        .filter(|(n, _, _)| !n.is_empty())
        .collect())
}

/// The init PID of a running Podman container.
pub fn container_pid(name: &str) -> Result<i32, PodmanError> {
    let out = podman(&[
        "container",
        "inspect",
        "--format",
        "{{.State.Pid}} {{.State.Status}}",
        "--",
        name,
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("no such container") || stderr.contains("no such object") {
            return Err(PodmanError::NotFound(name.into()));
        }
        return Err(PodmanError::Inspect {
            name: name.into(),
            detail: stderr.trim().to_string(),
        });
    }
    parse(name, &String::from_utf8_lossy(&out.stdout))
}

fn parse(name: &str, text: &str) -> Result<i32, PodmanError> {
    let mut it = text.split_whitespace();
    let pid: i32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let state = it.next().unwrap_or("unknown").to_string();
    if pid <= 0 || state != "running" {
        return Err(PodmanError::NotRunning {
            name: name.into(),
            state,
        });
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_gives_pid_or_state() {
        assert_eq!(parse("a", "4242 running\n").unwrap(), 4242);
        let e = parse("a", "0 exited\n").unwrap_err();
        assert!(
            e.to_string().contains("not running (state \"exited\")"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_get_one() {
        std::env::set_var("NETSHIM_PODMAN", "/nonexistent/podman");
        let e = container_pid("x").unwrap_err();
        std::env::remove_var("NETSHIM_PODMAN");
        assert!(e.to_string().contains("NETSHIM_PODMAN"), "{e}");
    }
}
