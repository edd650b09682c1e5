//! `kill`: a signal to the container's init (or, with `--all`, to every
//! process), named as runc names them.

use super::*;

impl Runtime {
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), OciError> {
        validate_id(id)?;
        let sig = parse_signal(signal)?;
        let mut c = self.load(id)?;
        match c.status() {
            ContainerStatus::Stopped if !all => return Err(OciError::NotRunning(id.into())),
            ContainerStatus::Creating => return Err(OciError::NotRunning(id.into())),
            _ => {}
        }
        c.kill(sig, all).map_err(|e| match e {
            LibcontainerError::IncorrectStatus(_) => OciError::NotRunning(id.into()),
            e => OciError::lc("kill", id)(e),
        })
    }
}

/// Parses `TERM`, `SIGTERM`, `sigterm` or `15`, as runc does.
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, OciError> {
    use std::str::FromStr;
    let bad = || OciError::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        use nix::sys::signal::Signal;
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sighup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("FOO").is_err());
        assert!(parse_signal("0").is_err());
    }
}
