//! `netshim install`: netshim registered as a runtime of containerd (a CRI
//! runtime handler, for a Kubernetes RuntimeClass) or of Docker (`runtimes`
//! in `daemon.json`), and taken out again.
//!
//! The edits are pure functions from a config's text to its new text, so
//! that `--dry-run` shows exactly what would be written. They keep the rest
//! of the file: containerd's TOML through `toml_edit` (comments, order and
//! layout stay), Docker's JSON with its keys in their order. Registering
//! twice changes nothing. Installing keeps the original next to the config
//! (`PATH.netshim-backup`); uninstalling restores it byte for byte when the
//! file has not changed since, and otherwise takes out only netshim's entry.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use toml_edit::{value, Array, DocumentMut, Item, Table};

/// The pod annotations containerd passes to the runtime, so that
/// `netshim.io/ambient-capabilities` on a pod reaches netshim.
pub const ANNOTATIONS: &str = "netshim.io/*";

/// The arguments dockerd gives netshim before `create` and the others.
pub const DOCKER_RUNTIME_ARGS: [&str; 2] = ["--ambient-caps", "NET_RAW"];

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} cannot be edited: {detail}; fix it by hand, then run netshim install again")]
    Invalid { path: PathBuf, detail: String },
    #[error(
        "{path} is a containerd config of version {version}; netshim install edits versions 2 \
         (containerd 1.x) and 3 (containerd 2.x): migrate it (`containerd config migrate` in \
         containerd 2, or write `version = 2` and move the CRI plugin's sections under \
         plugins.\"io.containerd.grpc.v1.cri\"), then run netshim install again"
    )]
    Version { path: PathBuf, version: i64 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What is registered: the runtime's (handler's) name and netshim's path.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub binary: String,
    /// Also make it containerd's default CRI runtime handler
    /// (`default_runtime_name`): every pod that names no RuntimeClass then
    /// runs under netshim. (Docker has no such option here: its entry
    /// gives every non-root container NET_RAW, `--ambient-caps`.)
    pub make_default: bool,
}

/// Which daemon's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Containerd,
    Docker,
}

/// The CRI runtimes table of a containerd config of `version`.
fn runtimes_keys(version: i64) -> Option<[&'static str; 4]> {
    match version {
        2 => Some([
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "runtimes",
        ]),
        3 => Some([
            "plugins",
            "io.containerd.cri.v1.runtime",
            "containerd",
            "runtimes",
        ]),
        _ => None,
    }
}

/// Why a config could not be edited, before the path is known.
#[derive(Debug)]
pub enum EditError {
    Invalid(String),
    Version(i64),
}

impl EditError {
    fn at(self, path: &Path) -> InstallError {
        match self {
            EditError::Invalid(detail) => InstallError::Invalid {
                path: path.to_path_buf(),
                detail,
            },
            EditError::Version(version) => InstallError::Version {
                path: path.to_path_buf(),
                version,
            },
        }
    }
}

fn containerd_doc(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::Invalid(format!("it is not valid TOML: {}", e.to_string().trim())))
}

/// The config's version: `version`, or 1 when a non-empty config has none
/// (as containerd reads it).
fn containerd_version(doc: &DocumentMut) -> Result<Option<i64>, EditError> {
    match doc.get("version") {
        Some(v) => v
            .as_integer()
            .map(Some)
            .ok_or_else(|| EditError::Invalid("`version` is not a number".into())),
        None if doc.as_table().is_empty() => Ok(None),
        None => Ok(Some(1)),
    }
}

/// The name of the CRI plugin's default runtime (`runc` unless the
/// config says otherwise).
fn default_runtime(doc: &DocumentMut, keys: &[&str; 4]) -> String {
    let mut t = doc.as_table();
    for k in &keys[..3] {
        match t.get(k).and_then(|i| i.as_table()) {
            Some(c) => t = c,
            None => return "runc".into(),
        }
    }
    t.get("default_runtime_name")
        .and_then(|v| v.as_str())
        .unwrap_or("runc")
        .to_string()
}

/// The largest document position of `t` and the tables under it.
fn max_position(t: &Table) -> Option<usize> {
    let own = t.position();
    t.iter()
        .filter_map(|(_, i)| i.as_table().and_then(max_position))
        .chain(own)
        .max()
}

/// The table at `keys`, made (implicit, so that no empty header is
/// written) where missing.
fn table_at<'a>(mut t: &'a mut Table, keys: &[&str]) -> Result<&'a mut Table, EditError> {
    for k in keys {
        let item = t.entry(k).or_insert_with(|| {
            let mut n = Table::new();
            n.set_implicit(true);
            Item::Table(n)
        });
        t = item
            .as_table_mut()
            .ok_or_else(|| EditError::Invalid(format!("`{k}` is not a table of its own")))?;
    }
    Ok(t)
}

fn strings(item: Option<&Item>) -> Option<Vec<String>> {
    item?.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    })
}

/// Whether a runtime table already says what netshim's entry says.
fn containerd_entry_matches(t: &Table, e: &Entry) -> bool {
    let want = vec![ANNOTATIONS.to_string()];
    t.get("runtime_type").and_then(|v| v.as_str()) == Some("io.containerd.runc.v2")
        && strings(t.get("pod_annotations")).as_ref() == Some(&want)
        && strings(t.get("container_annotations")).as_ref() == Some(&want)
        && t.get("options")
            .and_then(|o| o.as_table())
            .and_then(|o| o.get("BinaryName"))
            .and_then(|v| v.as_str())
            == Some(e.binary.as_str())
}

/// Whether a runtime table is one netshim install wrote: it passes
/// `netshim.io/*` annotations, or runs a binary named netshim.
fn is_netshims(t: &Table) -> bool {
    let ann = strings(t.get("pod_annotations")).is_some_and(|a| a.iter().any(|x| x == ANNOTATIONS));
    let bin = t
        .get("options")
        .and_then(|o| o.as_table())
        .and_then(|o| o.get("BinaryName"))
        .and_then(|v| v.as_str())
        .and_then(|b| Path::new(b).file_name())
        .is_some_and(|f| f.to_string_lossy().starts_with("netshim"));
    ann || bin
}

/// containerd's config with netshim's runtime handler: the runc v2 shim
/// running netshim (`BinaryName`), with `netshim.io/*` annotations passed
/// through. `new_version` is the version a new (empty) config gets.
pub fn containerd_add(text: &str, e: &Entry, new_version: i64) -> Result<String, EditError> {
    let mut doc = containerd_doc(text)?;
    let version = match containerd_version(&doc)? {
        Some(v) => v,
        None => {
            doc.insert("version", value(new_version));
            new_version
        }
    };
    let keys = runtimes_keys(version).ok_or(EditError::Version(version))?;
    let default = default_runtime(&doc, &keys);
    let runtimes = table_at(doc.as_table_mut(), &keys)?;
    if let Some(t) = runtimes.get(&e.name).and_then(|i| i.as_table()) {
        if containerd_entry_matches(t, e) && (!e.make_default || default == e.name) {
            return Ok(text.to_string());
        }
        if !is_netshims(t) {
            return Err(EditError::Invalid(format!(
                "it already has a runtime named {:?} that is not netshim's; install would replace \
                 it: choose another --name",
                e.name
            )));
        }
    } else if default == e.name && !e.make_default {
        return Err(EditError::Invalid(format!(
            "{:?} is containerd's default runtime: a netshim handler of that name would run every \
             pod without a RuntimeClass; say so with --default (and another --name), or choose \
             another --name",
            e.name
        )));
    }
    // New tables go at the end of the file, after every table it has.
    let last = max_position(doc.as_table()).map_or(0, |p| p + 1);
    let runtimes = table_at(doc.as_table_mut(), &keys)?;
    let mut rt = Table::new();
    rt.set_position(last);
    rt.decor_mut().set_prefix(format!(
        "\n# netshim's runtime handler (RuntimeClass handler {:?}), added by `netshim install \
         containerd`;\n# `netshim install containerd --uninstall` takes it out.\n",
        e.name
    ));
    rt.insert("runtime_type", value("io.containerd.runc.v2"));
    rt.insert("pod_annotations", value(Array::from_iter([ANNOTATIONS])));
    rt.insert(
        "container_annotations",
        value(Array::from_iter([ANNOTATIONS])),
    );
    let mut opts = Table::new();
    opts.set_position(last + 1);
    opts.insert("BinaryName", value(e.binary.as_str()));
    rt.insert("options", Item::Table(opts));
    runtimes.insert(&e.name, Item::Table(rt));
    // A config that lists runtimes replaces containerd's built-in list, so
    // the default runtime (runc) has to be written out with netshim's, or
    // every pod without a RuntimeClass (or with RuntimeClass `runc`, once
    // netshim is the default) would fail.
    let runtimes = table_at(doc.as_table_mut(), &keys)?;
    if default != e.name && !runtimes.contains_key(&default) {
        let mut d = Table::new();
        d.set_position(last + 2);
        d.decor_mut().set_prefix(
            "\n# containerd's default runtime, written out by `netshim install containerd`: a config\n\
             # that lists runtimes replaces containerd's built-in list.\n",
        );
        d.insert("runtime_type", value("io.containerd.runc.v2"));
        runtimes.insert(&default, Item::Table(d));
    }
    if e.make_default && default != e.name {
        let end = max_position(doc.as_table()).map_or(0, |p| p + 1);
        let cri = table_at(doc.as_table_mut(), &keys[..3])?;
        if cri.is_implicit() {
            // A header made for the key goes at the end, after netshim's.
            cri.set_position(end);
        }
        cri.insert("default_runtime_name", value(e.name.as_str()));
        if let Some((mut key, _)) = cri.get_key_value_mut("default_runtime_name") {
            key.leaf_decor_mut().set_prefix(format!(
                "# netshim is the default runtime handler ({} before), set by `netshim install \
                 containerd --default`;\n# `--uninstall` puts {} back.\n",
                default, default
            ));
        }
    }
    Ok(doc.to_string())
}

/// containerd's config without the runtime handler `name` (and without
/// the tables that held only it). An empty config comes back empty.
pub fn containerd_remove(text: &str, name: &str) -> Result<String, EditError> {
    containerd_remove_restoring(text, name, None)
}

/// [`containerd_remove`]; where `name` is the default runtime, `previous`
/// (the default before install, from its backup) becomes it again, or
/// containerd's own (runc) when there is none.
pub fn containerd_remove_restoring(
    text: &str,
    name: &str,
    previous: Option<&str>,
) -> Result<String, EditError> {
    let mut doc = containerd_doc(text)?;
    let Some(version) = containerd_version(&doc)? else {
        return Ok(text.to_string());
    };
    let keys = runtimes_keys(version).ok_or(EditError::Version(version))?;
    // Walk down as far as the tables exist.
    fn remove_in(t: &mut Table, keys: &[&str], name: &str) -> bool {
        match keys.split_first() {
            None => t.remove(name).is_some(),
            Some((k, rest)) => {
                let Some(child) = t.get_mut(k).and_then(|i| i.as_table_mut()) else {
                    return false;
                };
                let removed = remove_in(child, rest, name);
                if removed && rest.is_empty() {
                    // The default runtime install wrote out, if it is all
                    // that is left: without it containerd has it built in.
                    let only_written_default = child.len() == 1
                        && child.iter().all(|(_, i)| {
                            i.as_table().is_some_and(|t| {
                                t.len() == 1
                                    && t.get("runtime_type").and_then(|v| v.as_str())
                                        == Some("io.containerd.runc.v2")
                            })
                        });
                    if only_written_default {
                        child.clear();
                    }
                }
                if removed && child.is_empty() && child.is_implicit() {
                    t.remove(k);
                }
                removed
            }
        }
    }
    let was_default = unset_default(doc.as_table_mut(), &keys[..3], name, previous);
    if !remove_in(doc.as_table_mut(), &keys, name) && !was_default {
        return Ok(text.to_string());
    }
    Ok(doc.to_string())
}

/// Where `default_runtime_name` names `name`: sets it back to `previous`
/// (not runc), else takes it out (containerd's default, runc, applies
/// again); whether it did.
fn unset_default(mut t: &mut Table, keys: &[&str], name: &str, previous: Option<&str>) -> bool {
    for k in keys {
        match t.get_mut(k).and_then(|i| i.as_table_mut()) {
            Some(c) => t = c,
            None => return false,
        }
    }
    if t.get("default_runtime_name").and_then(|v| v.as_str()) == Some(name) {
        if let Some(p) = previous.filter(|p| *p != name && *p != "runc") {
            t.insert("default_runtime_name", value(p));
            return true;
        }
        t.remove("default_runtime_name");
        // The header install made explicit for the key goes with it.
        if t.iter().all(|(_, i)| i.is_table()) {
            t.set_implicit(true);
        }
        return true;
    }
    false
}

/// Whether a containerd config holds nothing but its version.
fn containerd_is_empty(text: &str) -> bool {
    containerd_doc(text)
        .map(|d| d.as_table().iter().all(|(k, _)| k == "version"))
        .unwrap_or(false)
}

/// The `BinaryName` of runtime `name` in a containerd config as
/// `containerd config dump` prints it (either version's CRI table), and
/// whether the config's default runtime is defined.
pub fn containerd_dumped(text: &str, name: &str) -> Result<(Option<String>, bool), String> {
    containerd_dumped_default(text, name).map(|(b, ok, _)| (b, ok))
}

/// [`containerd_dumped`], and the name of the default runtime containerd
/// will use.
pub fn containerd_dumped_default(
    text: &str,
    name: &str,
) -> Result<(Option<String>, bool, String), String> {
    let v: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    for version in [2, 3] {
        let keys = runtimes_keys(version).expect("known versions");
        let mut cri = &v;
        let mut found = true;
        for k in &keys[..3] {
            match cri.get(*k).and_then(|x| x.as_table()) {
                Some(t) => cri = t,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let runtimes = cri.get("runtimes").and_then(|r| r.as_table());
        let binary = runtimes
            .and_then(|r| r.get(name))
            .and_then(|r| r.get("options"))
            .and_then(|o| o.get("BinaryName"))
            .and_then(|b| b.as_str())
            .map(String::from);
        let default = cri
            .get("default_runtime_name")
            .and_then(|d| d.as_str())
            .unwrap_or("runc");
        let default_ok = runtimes.is_some_and(|r| r.contains_key(default));
        return Ok((binary, default_ok, default.to_string()));
    }
    Ok((None, false, "runc".into()))
}

fn docker_doc(text: &str) -> Result<serde_json::Value, EditError> {
    if text.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| EditError::Invalid(format!("it is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(EditError::Invalid(
            "its top level is not a JSON object".into(),
        ));
    }
    Ok(v)
}

fn docker_text(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("a JSON value serializes");
    s.push('\n');
    s
}

/// Docker's `daemon.json` with `runtimes.NAME` running netshim.
pub fn docker_add(text: &str, e: &Entry) -> Result<String, EditError> {
    let mut v = docker_doc(text)?;
    let obj = v.as_object_mut().expect("checked: an object");
    let runtimes = obj
        .entry("runtimes")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or_else(|| EditError::Invalid("`runtimes` is not a JSON object".into()))?;
    let want = serde_json::json!({"path": e.binary, "runtimeArgs": DOCKER_RUNTIME_ARGS});
    if runtimes.get(&e.name) == Some(&want) {
        return Ok(text.to_string());
    }
    runtimes.insert(e.name.clone(), want);
    Ok(docker_text(&v))
}

/// Docker's `daemon.json` without `runtimes.NAME` (and without an empty
/// `runtimes`).
pub fn docker_remove(text: &str, name: &str) -> Result<String, EditError> {
    let mut v = docker_doc(text)?;
    let obj = v.as_object_mut().expect("checked: an object");
    let Some(runtimes) = obj.get_mut("runtimes").and_then(|r| r.as_object_mut()) else {
        return Ok(text.to_string());
    };
    if runtimes.remove(name).is_none() {
        return Ok(text.to_string());
    }
    if runtimes.is_empty() {
        obj.remove("runtimes");
    }
    Ok(docker_text(&v))
}

fn docker_is_empty(text: &str) -> bool {
    docker_doc(text)
        .map(|v| v.as_object().is_some_and(|o| o.is_empty()))
        .unwrap_or(false)
}

/// A config's content before and after; `None` is no file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Uninstall: the backup was put back (the file had not changed since
    /// netshim install wrote it).
    pub restored: bool,
}

impl Change {
    pub fn changes(&self) -> bool {
        self.before != self.after
    }
}

/// Where install keeps the config as it was.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".netshim-backup");
    PathBuf::from(s)
}

fn read_opt(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn add(daemon: Daemon, text: &str, e: &Entry, new_version: i64) -> Result<String, EditError> {
    match daemon {
        Daemon::Containerd => containerd_add(text, e, new_version),
        Daemon::Docker => docker_add(text, e),
    }
}

/// What installing `e` into the config at `path` would change.
pub fn plan_install(
    daemon: Daemon,
    path: &Path,
    e: &Entry,
    new_version: i64,
) -> Result<Change, InstallError> {
    let before = read_opt(path)?;
    let after =
        add(daemon, before.as_deref().unwrap_or(""), e, new_version).map_err(|x| x.at(path))?;
    Ok(Change {
        path: path.to_path_buf(),
        before,
        after: Some(after),
        restored: false,
    })
}

/// What uninstalling `e` from the config at `path` would change: the
/// backup back if the config is still what install made of it, else the
/// config without the entry (no file, if nothing else was in it and there
/// was none before).
pub fn plan_uninstall(
    daemon: Daemon,
    path: &Path,
    e: &Entry,
    new_version: i64,
) -> Result<Change, InstallError> {
    let before = read_opt(path)?;
    let backup = read_opt(&backup_path(path))?;
    let Some(current) = before.clone() else {
        return Ok(Change {
            path: path.to_path_buf(),
            before: None,
            after: None,
            restored: false,
        });
    };
    if let Some(orig) = &backup {
        let installed = |make_default| {
            let e = Entry {
                make_default,
                ..e.clone()
            };
            add(daemon, orig, &e, new_version).ok()
        };
        if [false, true]
            .into_iter()
            .any(|d| installed(d).as_deref() == Some(current.as_str()))
        {
            return Ok(Change {
                path: path.to_path_buf(),
                before,
                after: Some(orig.clone()),
                restored: true,
            });
        }
    }
    // The default before install, from the backup (the config as it was).
    let previous = backup.as_deref().and_then(|b| {
        let doc = containerd_doc(b).ok()?;
        let keys = runtimes_keys(containerd_version(&doc).ok()??)?;
        Some(default_runtime(&doc, &keys))
    });
    let after = match daemon {
        Daemon::Containerd => containerd_remove_restoring(&current, &e.name, previous.as_deref()),
        Daemon::Docker => docker_remove(&current, &e.name),
    }
    .map_err(|x| x.at(path))?;
    let empty = match daemon {
        Daemon::Containerd => containerd_is_empty(&after),
        Daemon::Docker => docker_is_empty(&after),
    };
    let after = if empty && backup.is_none() && after != current {
        None
    } else {
        Some(after)
    };
    Ok(Change {
        path: path.to_path_buf(),
        before,
        after,
        restored: false,
    })
}

/// Writes a change: a backup of the original first (install, once), the
/// new text through a temporary file renamed over the config (so that a
/// daemon never reads half a file), keeping the config's mode.
pub fn apply(change: &Change, install: bool) -> Result<(), InstallError> {
    let path = &change.path;
    let werr = |source| InstallError::Write {
        path: path.to_path_buf(),
        source,
    };
    let backup = backup_path(path);
    if install && change.before.is_some() && !backup.exists() {
        std::fs::copy(path, &backup).map_err(|source| InstallError::Write {
            path: backup.clone(),
            source,
        })?;
    }
    match &change.after {
        None => match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(werr(e)),
        },
        Some(text) if change.before.as_deref() != Some(text.as_str()) => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(werr)?;
            }
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(format!(".netshim-{}", std::process::id()));
            let tmp = PathBuf::from(tmp);
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
            };
            if let Err(e) = write() {
                let _ = std::fs::remove_file(&tmp);
                return Err(werr(e));
            }
        }
        Some(_) => {}
    }
    if !install {
        // The backup has been used (or is stale): uninstall leaves none.
        match std::fs::remove_file(&backup) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(InstallError::Write {
                    path: backup,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// A unified diff of two texts (whole lines, three lines of context), for
/// `--dry-run` and the closing message.
pub fn diff(a_name: &str, a: &str, b_name: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Longest common subsequence by dynamic programming: configs are small.
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (' ' | '-' | '+', line, a index, b index).
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i], i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i], i, j));
            i += 1;
        } else {
            ops.push(('+', b[j], i, j));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {a_name}\n+++ {b_name}\n");
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(3);
        let mut end = changed[k];
        while k < changed.len() && changed[k] <= end + 7 {
            end = changed[k];
            k += 1;
        }
        let end = (end + 3).min(ops.len() - 1);
        let hunk = &ops[start..=end];
        let a_len = hunk.iter().filter(|o| o.0 != '+').count();
        let b_len = hunk.iter().filter(|o| o.0 != '-').count();
        let a_start = hunk[0].2 + usize::from(a_len > 0);
        let b_start = hunk[0].3 + usize::from(b_len > 0);
        out.push_str(&format!("@@ -{a_start},{a_len} +{b_start},{b_len} @@\n"));
        for (c, line, _, _) in hunk {
            out.push(*c);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            name: "netshim".into(),
            binary: "/usr/local/bin/netshim".into(),
            make_default: false,
        }
    }

    const DEBIAN: &str = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    # keep me\n    sandbox_image = \"pause:3.6\"\n    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/var/lib/containerd/opt\"\n";

    #[test]
    fn containerd_add_keeps_the_rest_and_round_trips() {
        let added = containerd_add(DEBIAN, &entry(), 2).unwrap();
        assert!(added.starts_with(DEBIAN.trim_end()), "{added}");
        let v: toml::Table = toml::from_str(&added).unwrap();
        let rt = &v["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["netshim"];
        assert_eq!(rt["runtime_type"].as_str(), Some("io.containerd.runc.v2"));
        assert_eq!(rt["pod_annotations"][0].as_str(), Some("netshim.io/*"));
        assert_eq!(
            rt["options"]["BinaryName"].as_str(),
            Some("/usr/local/bin/netshim")
        );
        assert!(added.contains("# keep me"));
        // Twice is once.
        assert_eq!(containerd_add(&added, &entry(), 2).unwrap(), added);
        assert_eq!(containerd_remove(&added, "netshim").unwrap(), DEBIAN);
        assert_eq!(containerd_remove(DEBIAN, "netshim").unwrap(), DEBIAN);
        let (bin, default_ok) = containerd_dumped(&added, "netshim").unwrap();
        assert_eq!(bin.as_deref(), Some("/usr/local/bin/netshim"));
        // The default runtime is written out beside netshim's.
        assert!(default_ok, "{added}");
        // A config that already lists runc keeps its own.
        let own = format!("{DEBIAN}[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n");
        let added = containerd_add(&own, &entry(), 2).unwrap();
        assert_eq!(added.matches("runtimes.runc]").count(), 1, "{added}");
        assert_eq!(containerd_remove(&added, "netshim").unwrap(), own);
    }

    /// `--default`: the handler becomes the CRI default; runc stays listed
    /// (RuntimeClass `runc` keeps working); uninstall puts runc back.
    #[test]
    fn containerd_default_sets_the_handler_and_uninstall_takes_it_back() {
        let e = Entry {
            make_default: true,
            ..entry()
        };
        for (base, version) in [(DEBIAN, 2), ("", 2), ("", 3)] {
            let added = containerd_add(base, &e, version).unwrap();
            let v: toml::Table = toml::from_str(&added).unwrap();
            let cri = if version == 2 {
                &v["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
            } else {
                &v["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]
            };
            assert_eq!(
                cri["default_runtime_name"].as_str(),
                Some("netshim"),
                "{added}"
            );
            assert!(cri["runtimes"].get("runc").is_some(), "{added}");
            let (_, default_ok) = containerd_dumped(&added, "netshim").unwrap();
            assert!(default_ok, "{added}");
            assert_eq!(containerd_add(&added, &e, version).unwrap(), added);
            let removed = containerd_remove(&added, "netshim").unwrap();
            assert!(!removed.contains("default_runtime_name"), "{removed}");
            if !base.is_empty() {
                assert_eq!(removed, base);
            }
            // Installed without --default first, then with it: one change.
            let plain = containerd_add(base, &entry(), version).unwrap();
            let then = containerd_add(&plain, &e, version).unwrap();
            assert!(
                then.contains("default_runtime_name = \"netshim\""),
                "{then}"
            );
        }
    }

    /// A default other than runc comes back at uninstall, even after an
    /// unrelated edit (no byte-for-byte restore); an entry of another
    /// runtime, or the default's name without --default, is refused.
    #[test]
    fn containerd_default_round_trips_a_default_that_was_not_runc_and_refuses_takeovers() {
        let crun = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"crun\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options]\n  BinaryName = \"/usr/bin/crun\"\n";
        let e = Entry {
            make_default: true,
            ..entry()
        };
        let added = containerd_add(crun, &e, 2).unwrap();
        let edited = added.replace("version = 2\n", "version = 2\n# an unrelated edit\n");
        let removed = containerd_remove_restoring(&edited, "netshim", Some("crun")).unwrap();
        let v: toml::Table = toml::from_str(&removed).unwrap();
        let cri = &v["plugins"]["io.containerd.grpc.v1.cri"]["containerd"];
        assert_eq!(
            cri["default_runtime_name"].as_str(),
            Some("crun"),
            "{removed}"
        );
        assert!(cri["runtimes"].get("netshim").is_none(), "{removed}");
        let over = Entry {
            name: "crun".into(),
            ..entry()
        };
        let err = containerd_add(crun, &over, 2).unwrap_err();
        assert!(
            matches!(&err, EditError::Invalid(m) if m.contains("not netshim's")),
            "{err:?}"
        );
        let runc = Entry {
            name: "runc".into(),
            ..entry()
        };
        let err = containerd_add("version = 2\n", &runc, 2).unwrap_err();
        assert!(
            matches!(&err, EditError::Invalid(m) if m.contains("default runtime")),
            "{err:?}"
        );
    }

    #[test]
    fn containerd_versions() {
        let v3 = containerd_add("", &entry(), 3).unwrap();
        assert!(v3.starts_with("version = 3\n"), "{v3}");
        assert!(v3.contains("io.containerd.cri.v1.runtime"), "{v3}");
        assert!(containerd_is_empty(
            &containerd_remove(&v3, "netshim").unwrap()
        ));
        assert!(matches!(
            containerd_add("[plugins.cri]\n", &entry(), 2),
            Err(EditError::Version(1))
        ));
        assert!(matches!(
            containerd_add("version = [", &entry(), 2),
            Err(EditError::Invalid(_))
        ));
        // A different binary is an update, not a second entry.
        let a = containerd_add("", &entry(), 2).unwrap();
        let mut e2 = entry();
        e2.binary = "/opt/netshim".into();
        let b = containerd_add(&a, &e2, 2).unwrap();
        assert!(
            b.contains("/opt/netshim") && !b.contains("/usr/local/bin/netshim"),
            "{b}"
        );
    }

    #[test]
    fn docker_add_keeps_the_rest_in_order() {
        let orig = "{\n  \"log-level\": \"warn\",\n  \"runtimes\": {\n    \"crun\": {\n      \"path\": \"/usr/bin/crun\"\n    }\n  },\n  \"data-root\": \"/d\"\n}\n";
        let added = docker_add(orig, &entry()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&added).unwrap();
        assert_eq!(v["runtimes"]["netshim"]["path"], "/usr/local/bin/netshim");
        assert_eq!(v["runtimes"]["crun"]["path"], "/usr/bin/crun");
        assert!(added.find("log-level").unwrap() < added.find("data-root").unwrap());
        assert_eq!(docker_add(&added, &entry()).unwrap(), added);
        assert_eq!(docker_remove(&added, "netshim").unwrap(), orig);
        let fresh = docker_add("", &entry()).unwrap();
        assert!(docker_is_empty(&docker_remove(&fresh, "netshim").unwrap()));
        assert!(matches!(
            docker_add("[1]", &entry()),
            Err(EditError::Invalid(_))
        ));
        assert!(matches!(
            docker_add("{\"runtimes\": 3}", &entry()),
            Err(EditError::Invalid(_))
        ));
    }

    #[test]
    fn install_then_uninstall_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        // A file in its own (compact) layout, and no file at all.
        for (daemon, orig) in [
            (Daemon::Docker, Some("{\"debug\":true}")),
            (Daemon::Docker, None),
            (Daemon::Containerd, Some(DEBIAN)),
            (Daemon::Containerd, None),
        ] {
            let path = dir.path().join("cfg");
            let _ = std::fs::remove_file(&path);
            if let Some(o) = orig {
                std::fs::write(&path, o).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            let c = plan_install(daemon, &path, &entry(), 2).unwrap();
            assert!(c.changes());
            apply(&c, true).unwrap();
            assert_eq!(backup_path(&path).exists(), orig.is_some());
            if orig.is_some() {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
            let again = plan_install(daemon, &path, &entry(), 2).unwrap();
            assert!(!again.changes());
            let u = plan_uninstall(daemon, &path, &entry(), 2).unwrap();
            apply(&u, false).unwrap();
            assert_eq!(read_opt(&path).unwrap().as_deref(), orig, "{daemon:?}");
            assert!(!backup_path(&path).exists());
        }
    }

    #[test]
    fn uninstall_after_other_edits_takes_out_only_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, "{\"debug\": true}\n").unwrap();
        apply(
            &plan_install(Daemon::Docker, &path, &entry(), 2).unwrap(),
            true,
        )
        .unwrap();
        let edited = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"debug\": true", "\"debug\": false");
        std::fs::write(&path, &edited).unwrap();
        let u = plan_uninstall(Daemon::Docker, &path, &entry(), 2).unwrap();
        assert!(!u.restored);
        apply(&u, false).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"debug": false}));
    }

    #[test]
    fn diff_shows_the_added_lines() {
        let d = diff("a", "x\ny\nz\n", "b", "x\ny\nnew\nz\n");
        assert_eq!(d, "--- a\n+++ b\n@@ -1,3 +1,4 @@\n x\n y\n+new\n z\n");
        assert_eq!(diff("a", "same\n", "b", "same\n"), "");
        let d = diff("a", "", "b", "one\n");
        assert!(d.contains("@@ -0,0 +1,1 @@\n+one\n"), "{d}");
    }
}
