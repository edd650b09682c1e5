//! What runc does with cgroups that libcontainer's cgroupfs managers do not:
//! the named v1 and hybrid v2 hierarchies, and `disableOOMKiller`.

use super::*;
use std::os::unix::fs::DirBuilderExt;

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
    extra_hierarchies_in(cgroup_path, &mountinfo, &own)
}

/// [`extra_hierarchies`] from the runtime's mountinfo and
/// `/proc/self/cgroup` texts.
fn extra_hierarchies_in(
    cgroup_path: &Path,
    mountinfo: &str,
    own: &str,
) -> Vec<(String, PathBuf, PathBuf)> {
    let cleaned = clean_cgroups_path(&cgroup_path.to_string_lossy());
    let cgroup_path = Path::new(&cleaned);
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
        // The first mount of a hierarchy is the runtime's; later ones are
        // binds made since, as by a container that has no mount namespace
        // of its own and so mounts in the runtime's (under its rootfs).
        if out.iter().any(|(k, _, _)| *k == key) {
            continue;
        }
        let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
        let dir = if cgroup_path.is_absolute() {
            point.join(rel)
        } else {
            point
                .join(own_cgroup(own, &key).trim_start_matches('/'))
                .join(rel)
        };
        out.push((key, point, dir));
    }
    out
}

/// `linux.cgroupsPath` cleaned as runc cleans it for its cgroupfs driver
/// (`utils.CleanPath`): lexically, as if rooted at `/`, so that no `..` can
/// climb above a hierarchy's root (an absolute path) or above the runtime's
/// own cgroup (a relative one, which stays relative; nothing left is `.`).
/// No path is resolved: a cgroup hierarchy holds no symbolic links.
pub(super) fn clean_cgroups_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    match (path.starts_with('/'), parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
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

/// On a pure cgroup v2 host (cgroup2 at `/sys/fs/cgroup`), a relative
/// `cgroupsPath` made absolute as runc's cgroupfs v2 driver takes it: from
/// the parent of the runtime's own cgroup (its own one most likely holds
/// processes, so no controllers can be enabled below it). None on other
/// hosts, and for absolute paths. libcontainer would take it from the root,
/// and for a spec with a user namespace it hands a relative path to its
/// systemd manager, which netshim does not build ("systemd cgroup feature
/// is required"): such a container could not start on a v2 host.
pub(super) fn v2_absolute(cgroups_path: &str) -> Option<String> {
    if cgroups_path.starts_with('/') || !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    Some(v2_absolute_in(cgroups_path, &own))
}

fn v2_absolute_in(relative: &str, proc_self_cgroup: &str) -> String {
    let own = own_cgroup(proc_self_cgroup, "");
    let parent = Path::new(&own).parent().unwrap_or(Path::new("/"));
    parent.join(relative).to_string_lossy().into_owned()
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
            let joined = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
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

/// The v1 controllers libcontainer's cgroupfs manager moves a container into
/// (libcgroups 0.7, `v1::controller_type::CONTROLLERS`).
const MANAGED_V1: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// Rootful on a cgroup v1 host, a `cgroup` mount written out as runc makes
/// it: a tmpfs at the destination, and in it, for each v1 hierarchy mounted
/// under `/sys/fs/cgroup`, a bind of the container's own cgroup there with
/// the mount's options (runc's default spec asks `ro,nosuid,noexec,nodev`).
///
/// libcontainer does this itself when handed the `cgroup` mount, but (0.7)
/// binds read-write, ignoring the options, so a root container could rewrite
/// its own limits; and it looks its PID up in the host's `/proc` before
/// `pivot_root`, which fails when the container joins an existing PID
/// namespace and its PID there is not also a PID on the host (a kubelet's
/// debug container with `--target`, a pod sharing its PID namespace).
/// Mounts netshim writes out are plain binds, which libcontainer makes as
/// asked.
///
/// The source in each hierarchy is where the container's init will be:
/// libcontainer's manager puts it at `cgroup_path` under the hierarchy's
/// root for the controllers it manages; [`ExtraCgroups`] puts it in the
/// named ones; elsewhere it stays in the runtime's own cgroup.
/// With a cgroup namespace runc mounts each hierarchy itself (still with
/// the options); a bind of the container's cgroup shows the same in the
/// container's mountinfo (root `/`, same filesystem and options), and
/// libcontainer would again bind read-write. Left as it is: a host with v2
/// only, systemd cgroup paths.
pub(super) fn write_out_v1_cgroup_mounts(spec: &mut Value, cgroup_path: &Path) {
    if cgroup2_at_root() || cgroup_path.to_string_lossy().contains(':') {
        return;
    }
    let (Ok(mountinfo), Ok(own)) = (
        fs::read_to_string("/proc/self/mountinfo"),
        fs::read_to_string("/proc/self/cgroup"),
    ) else {
        return;
    };
    v1_cgroup_mounts_in(spec, cgroup_path, &mountinfo, &own);
}

/// [`write_out_v1_cgroup_mounts`] from the runtime's mountinfo and
/// `/proc/self/cgroup` texts.
pub(super) fn v1_cgroup_mounts_in(
    spec: &mut Value,
    cgroup_path: &Path,
    mountinfo: &str,
    own: &str,
) {
    let hierarchies = v1_hierarchies(cgroup_path, mountinfo, own);
    if hierarchies.is_empty() {
        return;
    }
    let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return;
    };
    let mut out = Vec::with_capacity(mounts.len() + hierarchies.len());
    for m in mounts.drain(..) {
        if m.get("type").and_then(Value::as_str) != Some("cgroup") {
            out.push(m);
            continue;
        }
        let dest = m
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or("/sys/fs/cgroup")
            .trim_end_matches('/')
            .to_string();
        let mut opts = vec![Value::String("rbind".into())];
        opts.extend(
            m.get("options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|o| o.as_str().is_some_and(|o| o != "bind" && o != "rbind"))
                .cloned(),
        );
        out.push(serde_json::json!({
            "destination": dest,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["noexec", "nosuid", "nodev", "mode=755"]
        }));
        for (names, source) in &hierarchies {
            for name in names {
                out.push(serde_json::json!({
                    "destination": format!("{dest}/{name}"),
                    "type": "bind",
                    "source": source,
                    "options": opts,
                }));
            }
        }
    }
    *mounts = out;
}

/// The host's v1 hierarchies under `/sys/fs/cgroup`, in mount order: the
/// names the container sees each under (the mount point's own name, then
/// for co-mounted controllers each controller's name where the host has it
/// e.g. `cpu` and `cpuacct` for `cpu,cpuacct`), and the container's directory.
fn v1_hierarchies(cgroup_path: &Path, mountinfo: &str, own: &str) -> Vec<(Vec<String>, PathBuf)> {
    let cleaned = clean_cgroups_path(&cgroup_path.to_string_lossy());
    let cgroup_path = Path::new(&cleaned);
    let root = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (fstype, _, superopts) = (r.next(), r.next(), r.next().unwrap_or(""));
        if fstype != Some("cgroup") {
            continue;
        }
        let Some(point) = left.split(' ').nth(4).map(PathBuf::from) else {
            continue;
        };
        let Some(name) = point
            .strip_prefix(root)
            .ok()
            .filter(|p| p.components().count() == 1)
            .map(|p| p.to_string_lossy().into_owned())
        else {
            continue;
        };
        let opts: Vec<&str> = superopts.split(',').collect();
        // This hierarchy's line of /proc/self/cgroup: the one naming one of
        // its controllers (or its `name=`).
        let Some((key, own_path)) = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next();
            let (key, path) = (f.next()?, f.next()?);
            (!key.is_empty() && key.split(',').any(|k| opts.contains(&k)))
                .then(|| (key.to_string(), path.to_string()))
        }) else {
            continue;
        };
        let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
        let own_dir = match own_path.trim_start_matches('/') {
            "" => point.clone(),
            p => point.join(p),
        };
        let source = if key.split(',').any(|k| MANAGED_V1.contains(&k)) {
            if cgroup_path.as_os_str().is_empty() {
                own_dir
            } else {
                point.join(rel)
            }
        } else if key.starts_with("name=") && !cgroup_path.as_os_str().is_empty() {
            if cgroup_path.is_absolute() {
                point.join(rel)
            } else {
                own_dir.join(rel)
            }
        } else {
            own_dir
        };
        // runc links each co-mounted controller's name to the hierarchy;
        // a bind is the nearest a list of mounts can come.
        let mut names = vec![name.clone()];
        if name.contains(',') {
            names.extend(
                name.split(',')
                    .filter(|c| !c.starts_with("name="))
                    .map(String::from),
            );
        }
        out.push((names, source));
    }
    out
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

    const MOUNTINFO: &str = "\
25 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/rdma rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,rdma
37 30 0:33 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:18 - cgroup2 cgroup2 rw
";
    const OWN: &str = "7:rdma:/\n5:memory:/system.slice/x.service\n4:cpu,cpuacct:/system.slice/x.service\n1:name=systemd:/system.slice/x.service\n0::/system.slice/x.service\n";

    fn spec_with(mounts: Value) -> Value {
        serde_json::json!({"mounts": mounts, "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}})
    }

    #[test]
    fn a_v1_cgroup_mount_is_written_out_as_runc_makes_it() {
        let mut spec = spec_with(serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/h", "options": ["rbind", "ro"]}
        ]));
        v1_cgroup_mounts_in(&mut spec, Path::new("/k8s.io/c1"), MOUNTINFO, OWN);
        let m = spec["mounts"].as_array().unwrap();
        let dests: Vec<&str> = m
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/sys/fs/cgroup",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/rdma",
                "/etc/hosts"
            ]
        );
        assert_eq!(m[1]["type"], "tmpfs");
        let src = |i: usize| m[i]["source"].as_str().unwrap().to_string();
        // Managed and named hierarchies: the container's cgroup; others
        // (rdma): the runtime's own, where the init stays.
        assert_eq!(src(2), "/sys/fs/cgroup/systemd/k8s.io/c1");
        assert_eq!(src(3), "/sys/fs/cgroup/cpu,cpuacct/k8s.io/c1");
        assert_eq!(src(5), "/sys/fs/cgroup/cpu,cpuacct/k8s.io/c1");
        assert_eq!(src(6), "/sys/fs/cgroup/memory/k8s.io/c1");
        assert_eq!(src(7), "/sys/fs/cgroup/rdma");
        assert_eq!(
            m[6]["options"],
            serde_json::json!(["rbind", "nosuid", "noexec", "nodev", "relatime", "ro"])
        );
    }

    #[test]
    fn relative_paths_follow_where_each_manager_puts_the_init() {
        let mut spec = spec_with(serde_json::json!([
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}
        ]));
        v1_cgroup_mounts_in(&mut spec, Path::new("c1"), MOUNTINFO, OWN);
        let m = spec["mounts"].as_array().unwrap();
        // libcontainer's manager: from the hierarchy's root; the named ones
        // (joined by netshim as runc joins them): from the runtime's own.
        assert_eq!(
            m[1]["source"],
            "/sys/fs/cgroup/systemd/system.slice/x.service/c1"
        );
        assert_eq!(m[5]["source"], "/sys/fs/cgroup/memory/c1");
    }

    #[test]
    fn cgroups_paths_are_cleaned_as_runc_cleans_them() {
        for (given, want) in [
            ("", ""),
            ("/a/b", "/a/b"),
            ("/../../netshim-x", "/netshim-x"),
            ("/a/../../b/./c/", "/b/c"),
            ("/..", "/"),
            ("a/b", "a/b"),
            ("../../c1", "c1"),
            ("a/../../..", "."),
            ("./a//b/..", "a"),
        ] {
            assert_eq!(clean_cgroups_path(given), want, "{given:?}");
        }
    }

    /// A `..` in cgroupsPath once reached the host's `/sys/fs/cgroup` (or
    /// `/sys/fs`, or `/`): the runtime made the directory, wrote its PID to
    /// a `cgroup.procs` there, and bound it into the container.
    #[test]
    fn dot_dot_in_cgroups_path_stays_inside_each_hierarchy() {
        let dirs: Vec<PathBuf> =
            extra_hierarchies_in(Path::new("/../../../netshim-x"), MOUNTINFO, OWN)
                .into_iter()
                .map(|(_, _, d)| d)
                .collect();
        assert_eq!(
            dirs,
            [
                PathBuf::from("/sys/fs/cgroup/systemd/netshim-x"),
                PathBuf::from("/sys/fs/cgroup/unified/netshim-x")
            ]
        );
        let rel: Vec<PathBuf> = extra_hierarchies_in(Path::new("../../../c1"), MOUNTINFO, OWN)
            .into_iter()
            .map(|(_, _, d)| d)
            .collect();
        assert_eq!(
            rel[0],
            Path::new("/sys/fs/cgroup/systemd/system.slice/x.service/c1")
        );
        let mut spec = spec_with(serde_json::json!([
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}
        ]));
        v1_cgroup_mounts_in(&mut spec, Path::new("/../../../netshim-x"), MOUNTINFO, OWN);
        for m in spec["mounts"].as_array().unwrap().iter().skip(1) {
            let src = m["source"].as_str().unwrap();
            assert!(!src.contains(".."), "{src}");
            assert!(src.starts_with("/sys/fs/cgroup/"), "{src}");
        }
        assert_eq!(
            spec["mounts"][5]["source"],
            "/sys/fs/cgroup/memory/netshim-x"
        );
    }

    /// A container without a mount namespace of its own mounts in the
    /// runtime's: its cgroup binds under its rootfs were once taken for the
    /// hierarchies themselves, and `delete` tried to remove its cgroup there.
    #[test]
    fn a_containers_binds_in_the_runtimes_namespace_are_not_hierarchies() {
        let with_binds = format!(
            "{MOUNTINFO}\
90 80 0:27 /c1 /tmp/b/rootfs/sys/fs/cgroup/systemd ro,nosuid - cgroup cgroup rw,xattr,name=systemd
91 80 0:33 /c1 /tmp/b/rootfs/sys/fs/cgroup/unified ro,nosuid - cgroup2 cgroup2 rw
"
        );
        let points: Vec<PathBuf> = extra_hierarchies_in(Path::new("/c1"), &with_binds, OWN)
            .into_iter()
            .map(|(_, p, _)| p)
            .collect();
        assert_eq!(
            points,
            [
                PathBuf::from("/sys/fs/cgroup/systemd"),
                PathBuf::from("/sys/fs/cgroup/unified")
            ]
        );
    }

    #[test]
    fn v2_relative_paths_start_from_the_parent_of_the_runtimes_cgroup() {
        let own = "0::/system.slice/containerd.service\n";
        assert_eq!(v2_absolute_in("c1", own), "/system.slice/c1");
        assert_eq!(v2_absolute_in("a/b", "0::/\n"), "/a/b");
        assert_eq!(v2_absolute_in("x", "0::/netshim-tests.scope\n"), "/x");
        assert_eq!(v2_absolute("/abs"), None);
    }

    #[test]
    fn hosts_without_v1_are_left_to_libcontainer() {
        let mounts = serde_json::json!([{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]);
        let mut spec = spec_with(mounts.clone());
        let v2_only = "37 30 0:33 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        v1_cgroup_mounts_in(&mut spec, Path::new("/a"), v2_only, "0::/\n");
        assert_eq!(spec["mounts"], mounts);
    }
}
