//! Whether this host lets an unprivileged user create user namespaces, and
//! if not, which knob says no.

use std::path::Path;

/// One setting that stops unprivileged user namespaces, with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub setting: String,
    pub fix: String,
}

/// Reads the knobs: Debian's `kernel.unprivileged_userns_clone`,
/// `user.max_user_namespaces`, and Ubuntu's AppArmor
/// `kernel.apparmor_restrict_unprivileged_userns`.
pub fn creation_blockers() -> Vec<Blocker> {
    blockers_in(Path::new("/proc/sys"))
}

fn blockers_in(sys: &Path) -> Vec<Blocker> {
    let read = |p: &str| {
        std::fs::read_to_string(sys.join(p))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut v = Vec::new();
    if read("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        v.push(Blocker {
            setting: "kernel.unprivileged_userns_clone = 0".into(),
            fix: "sysctl -w kernel.unprivileged_userns_clone=1".into(),
        });
    }
    if read("user/max_user_namespaces").as_deref() == Some("0") {
        v.push(Blocker {
            setting: "user.max_user_namespaces = 0".into(),
            fix: "sysctl -w user.max_user_namespaces=15000".into(),
        });
    }
    if read("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        v.push(Blocker {
            setting: "kernel.apparmor_restrict_unprivileged_userns = 1".into(),
            fix: "give netshim an AppArmor profile with `userns,` or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".into(),
        });
    }
    v
}

/// The caller's subordinate ID range, `(start, count)`, from `/etc/subuid`
/// or `/etc/subgid`: the first `NAME:START:COUNT` or `UID:START:COUNT` line.
pub fn subordinate_range(path: &Path, user: &str, uid: u32) -> Option<(u32, u32)> {
    parse_subordinate(&std::fs::read_to_string(path).ok()?, user, uid)
}

fn parse_subordinate(text: &str, user: &str, uid: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let who = f.next()?;
        if who != user && who != uid.to_string() {
            return None;
        }
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// A paragraph explaining why creating a user namespace failed.
pub fn explain_creation_failure(errno: nix::errno::Errno) -> String {
    let b = creation_blockers();
    if b.is_empty() {
        format!(
            "creating a user namespace failed ({errno}); no sysctl forbids it, so a seccomp filter or security \
             module of the calling environment (a container?) may: run netshim directly on the host"
        )
    } else {
        let lines: Vec<String> = b
            .iter()
            .map(|b| format!("  - {} (fix: {})", b.setting, b.fix))
            .collect();
        format!(
            "creating a user namespace failed ({errno}): unprivileged user namespaces are switched off on this host:\n{}",
            lines.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_uid() {
        let t = "alice:100000:65536\n1001:200000:70000\nbad line\n";
        assert_eq!(parse_subordinate(t, "alice", 1000), Some((100000, 65536)));
        assert_eq!(parse_subordinate(t, "bob", 1001), Some((200000, 70000)));
        assert_eq!(parse_subordinate(t, "carol", 1002), None);
    }

    #[test]
    fn each_knob_is_reported_with_its_fix() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("kernel")).unwrap();
        std::fs::create_dir_all(d.path().join("user")).unwrap();
        assert!(blockers_in(d.path()).is_empty());
        std::fs::write(d.path().join("kernel/unprivileged_userns_clone"), "0\n").unwrap();
        std::fs::write(d.path().join("user/max_user_namespaces"), "0\n").unwrap();
        std::fs::write(
            d.path()
                .join("kernel/apparmor_restrict_unprivileged_userns"),
            "1\n",
        )
        .unwrap();
        let b = blockers_in(d.path());
        assert_eq!(b.len(), 3);
        assert!(b[1].fix.contains("max_user_namespaces"));
        std::fs::write(d.path().join("user/max_user_namespaces"), "100\n").unwrap();
        assert_eq!(blockers_in(d.path()).len(), 2);
    }
}
