//! What runc does with cgroups that libcontainer's cgroupfs managers do not:
//! the named v1 and hybrid v2 hierarchies, and `disableOOMKiller`.

use super::*;

/// The hierarchies runc's cgroupfs driver joins and libcontainer's does
/// not: the named v1 ones (`name=systemd`, mounted without a controller)
/// and, on a hybrid host, the v2 one beside them. For each, the key of its
/// line in `/proc/self/cgroup` (`name=systemd`, or empty for v2), where it
/// is mounted, and the container's directory at `cgroup_path`: an absolute
/// path from the hierarchy's root, a relative one from this process's own
/// cgroup there, as runc takes them.
pub(super) fn extra_hierarchies(cgroup_path: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    if cgroup_path.as_os_str().is_empty()
        || cgroup_path.to_string_lossy().contains(':')
        || cgroup2_at_root()
    {
        return Vec::new();
    }
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (fstype, _, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
        let key = match fstype {
            Some("cgroup") => match opts.split(',').find(|o| o.starts_with("name=")) {
                Some(name) => name.to_string(),
                None => continue,
            },
            Some("cgroup2") => String::new(),
            _ => continue,
        };
        let Some(point) = left.split(' ').nth(4).map(PathBuf::from) else {
            continue;
        };
        let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
        let dir = if cgroup_path.is_absolute() {
            point.join(rel)
        } else {
            point
                .join(own_cgroup(&own, &key).trim_start_matches('/'))
                .join(rel)
        };
        out.push((key, point, dir));
    }
    out
}

/// This process's cgroup in the hierarchy whose `/proc/self/cgroup` line
/// has `key` as its second field.
pub(super) fn own_cgroup(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next();
            (f.next() == Some(key)).then(|| f.next().unwrap_or("/").to_string())
        })
        .unwrap_or_else(|| "/".into())
}

/// The extra hierarchies a container is being created in (see
/// [`extra_hierarchies`]). The runtime joins them itself before libcontainer
/// forks the container's init, so that the init starts there, and goes
/// back once the container is created: joined afterwards, a container with
/// a cgroup namespace would see its path from outside the namespace's root.
pub(super) struct ExtraCgroups {
    /// The runtime's own directories, to go back to.
    pub(super) back: Vec<PathBuf>,
}

impl ExtraCgroups {
    /// As with runc's, a failure here fails the create.
    pub(super) fn enter(cgroup_path: &Path) -> Result<ExtraCgroups, String> {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut me = ExtraCgroups { back: Vec::new() };
        for (key, point, dir) in extra_hierarchies(cgroup_path) {
            let back = point.join(own_cgroup(&own, &key).trim_start_matches('/'));
            let joined = fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))
                .and_then(|()| {
                    fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
                        .map_err(|e| format!("joining {}: {e}", dir.display()))
                });
            if let Err(e) = joined {
                me.leave();
                return Err(e);
            }
            me.back.push(back);
        }
        Ok(me)
    }

    /// Puts the runtime back where it was; the container stays.
    pub(super) fn leave(&self) {
        for back in &self.back {
            if let Err(e) = fs::write(back.join("cgroup.procs"), std::process::id().to_string()) {
                tracing::warn!(cgroup = %back.display(), "cannot return to the runtime's own cgroup: {e}");
            }
        }
    }

    /// Removes what was made, once nothing is in it any more.
    pub(super) fn remove(cgroup_path: &Path) {
        for (_, _, dir) in extra_hierarchies(cgroup_path) {
            if let Err(e) = fs::remove_dir(&dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), "cannot remove the container's cgroup: {e}");
                }
            }
        }
    }
}

/// The cgroup v1 memory hierarchy path of `pid`, from `/proc/PID/cgroup`
/// (`ID:memory:/path`, controllers comma-separated), when it has one.
pub(super) fn memory_cgroup(pid: i32) -> Option<String> {
    memory_cgroup_in(&fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

pub(super) fn memory_cgroup_in(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        ctrl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })
}

/// `linux.resources.memory.disableOOMKiller`, which libcontainer 0.7 drops
/// (it always passes `false`): runc writes 1 to the cgroup v1
/// `memory.oom_control` of the container's memory cgroup and fails the
/// create when it cannot. cgroup v2 has no such file and runc ignores the
/// field there; so does netshim. Rootless, runc ignores cgroup errors.
pub(super) fn disable_oom_killer(spec: &Value, pid: i32) -> Result<(), String> {
    if spec.pointer("/linux/resources/memory/disableOOMKiller") != Some(&Value::Bool(true)) {
        return Ok(());
    }
    let Some(rel) = memory_cgroup(pid) else {
        tracing::debug!(
            pid,
            "no cgroup v1 memory hierarchy: disableOOMKiller ignored, as runc does"
        );
        return Ok(());
    };
    let file = Path::new("/sys/fs/cgroup/memory")
        .join(rel.trim_start_matches('/'))
        .join("memory.oom_control");
    match fs::write(&file, "1") {
        Ok(()) => Ok(()),
        Err(e) if !privileged() => {
            tracing::warn!(file = %file.display(), "disableOOMKiller not applied (rootless): {e}");
            Ok(())
        }
        Err(e) => Err(format!("writing 1 to {}: {e}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cgroup_is_found_among_joined_controllers() {
        let text = "12:pids:/a\n5:cpuset,memory:/c1\n1:name=systemd:/x\n0::/u\n";
        assert_eq!(memory_cgroup_in(text).as_deref(), Some("/c1"));
        assert_eq!(memory_cgroup_in("0::/only-v2\n"), None);
        assert_eq!(memory_cgroup_in("3:memoryx:/no\n"), None);
    }
}
