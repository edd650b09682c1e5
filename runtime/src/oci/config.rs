//! The runtime's configuration file (default `/etc/netshim/config.toml`):
//!
//! ```toml
//! [ambient]
//! # what a container may ask to have ambient: NET_RAW and NET_BIND_SERVICE
//! # (the capabilities KEP 2763 is about) or a subset; anything else is refused
//! allow = ["NET_RAW", "NET_BIND_SERVICE"]
//! # what every non-root container gets, where its bounding set holds it
//! default = []
//! # a non-root, no_new_privs process whose bounding set holds only allowed
//! # capabilities gets them ambient (the narrowed-bounding rule)
//! narrowed = true
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::policy::{Policy, PolicyError};
use crate::kernel::caps::Cap;

pub const DEFAULT_PATH: &str = "/etc/netshim/config.toml";

/// Config files are a few lines; anything larger is refused unread.
const MAX_SIZE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is larger than 64 KiB; it should be a few lines")]
    TooLarge { path: PathBuf },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {source}")]
    Policy {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    ambient: Ambient,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ambient {
    allow: Option<Vec<String>>,
    #[serde(default)]
    default: Vec<String>,
    narrowed: Option<bool>,
}

fn caps(path: &Path, key: &str, names: &[String]) -> Result<BTreeSet<Cap>, ConfigError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Cap>().map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: format!("ambient.{key}: {e}"),
            })
        })
        .collect()
}

/// Parses a config file's text.
pub fn parse(path: &Path, text: &str) -> Result<Policy, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    let mut policy = Policy {
        origin: path.display().to_string(),
        ..Policy::default()
    };
    if let Some(allow) = &file.ambient.allow {
        policy.allow = caps(path, "allow", allow)?;
    }
    policy.defaults = caps(path, "default", &file.ambient.default)?;
    if let Some(n) = file.ambient.narrowed {
        policy.narrowed = n;
    }
    policy.validate().map_err(|source| ConfigError::Policy {
        path: path.into(),
        source,
    })?;
    Ok(policy)
}

/// Loads the policy: from `path` if given (it must exist), else from the
/// default path if that exists, else the built-in policy.
pub fn load(path: Option<&Path>) -> Result<Policy, ConfigError> {
    let (path, required) = match path {
        Some(p) => (p, true),
        None => (Path::new(DEFAULT_PATH), false),
    };
    let read = || -> std::io::Result<Option<String>> {
        use std::io::Read;
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut s = String::new();
        f.take(MAX_SIZE + 1).read_to_string(&mut s)?;
        Ok(Some(s))
    };
    match read() {
        Ok(None) => Ok(Policy::default()),
        Ok(Some(s)) if s.len() as u64 > MAX_SIZE => {
            Err(ConfigError::TooLarge { path: path.into() })
        }
        Ok(Some(s)) => parse(path, &s),
        Err(source) => Err(ConfigError::Read {
            path: path.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let p = parse(Path::new("c.toml"), "").unwrap();
        assert_eq!(p.allow, Policy::default().allow);
        let p = parse(
            Path::new("c.toml"),
            "[ambient]\nallow = [\"NET_RAW\", \"NET_BIND_SERVICE\"]\ndefault = [\"CAP_NET_RAW\"]\n",
        )
        .unwrap();
        assert_eq!(p.allow.len(), 2);
        assert_eq!(p.defaults.len(), 1);
        assert_eq!(p.origin, "c.toml");
    }

    #[test]
    fn bad_files_name_the_problem() {
        for (text, needle) in [
            ("[ambient]\nallow = [\"SYS_ADMIN\"]\n", "restricted"),
            ("[ambient]\nallow = [\"NET_RAWR\"]\n", "NET_RAWR"),
            ("[ambient]\nalow = []\n", "alow"),
            ("[ambient\n", "c.toml"),
            (
                "[ambient]\ndefault = [\"NET_BIND_SERVICE\"]\nallow = [\"NET_RAW\"]\n",
                "allow-list",
            ),
            (
                "[ambient]\nallow = [\"CHOWN\"]\n",
                "NET_RAW, NET_BIND_SERVICE",
            ),
            ("[ambient]\nallow = [\"SYSLOG\"]\n", "KEP 2763"),
            ("[ambient]\nallow = [\"LINUX_IMMUTABLE\"]\n", "KEP 2763"),
            (
                "[ambient]\nallow = [\"NET_RAW\", \"NET_ADMIN\"]\n",
                "KEP 2763",
            ),
            ("[ambient]\ndefault = [\"NET_ADMIN\"]\n", "KEP 2763"),
        ] {
            let e = parse(Path::new("c.toml"), text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn missing_default_file_is_fine_missing_named_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(Some(&dir.path().join("nope.toml"))).is_err());
        let big = dir.path().join("big.toml");
        std::fs::write(&big, "#".repeat(70_000)).unwrap();
        assert!(matches!(
            load(Some(&big)),
            Err(ConfigError::TooLarge { .. })
        ));
    }
}
