//! `spec`: a default config.json, as `runc spec` writes one.

use super::*;

/// `spec`: a default config.json in `bundle`, as `runc spec` writes it.
pub fn write_default_spec(bundle: &Path, rootless: bool) -> Result<PathBuf, OciError> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(OciError::Write {
            path,
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "config.json exists already; remove it first",
            ),
        });
    }
    let spec = if rootless {
        oci_spec::runtime::Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        oci_spec::runtime::Spec::default()
    };
    let text = serde_json::to_vec_pretty(&spec).expect("a spec serializes");
    fs::write(&path, text).map_err(|source| OciError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
