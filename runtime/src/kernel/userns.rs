//! Whether this host lets an unprivileged user create user namespaces, and
//! if not, which knob says no.

use std::fmt;
use std::path::Path;

use nix::errno::Errno;

use crate::kernel::ns::NsFile;

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

/// One line of `/proc/PID/uid_map`: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMap(pub Vec<IdRange>);

impl IdMap {
    pub fn parse(s: &str) -> Option<IdMap> {
        s.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Vec<u32> = l
                    .split_whitespace()
                    .map(|x| x.parse().ok())
                    .collect::<Option<_>>()?;
                match v[..] {
                    [inside, outside, count] => Some(IdRange {
                        inside,
                        outside,
                        count,
                    }),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()
            .map(IdMap)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.0
            .iter()
            .any(|r| id >= r.inside && (id - r.inside) < r.count)
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}-{}", r.inside, r.inside as u64 + r.count as u64 - 1))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Reads the UID and GID maps of a user namespace.
///
/// The kernel shows a user namespace's maps only through a process inside
/// it, so a short-lived child joins it (`setns(CLONE_NEWUSER)`, which needs a
/// single-threaded caller that does not share its `fs` struct: a fresh
/// `fork` child is both) and reads `/proc/self/{uid,gid}_map`.
pub fn read_id_maps(userns: &NsFile) -> Result<(IdMap, IdMap), Errno> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let (rd, wr) = nix::unistd::pipe()?;
    // SAFETY: netshim is single-threaded here (it has not started any thread
    // before planning), so the child may allocate; it only calls setns, reads
    // two /proc files, writes to a pipe and exits without returning.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let mut out = std::fs::File::from(wr);
            let code = match nix::sched::setns(userns.fd(), nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => {
                    let u = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
                    let g = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
                    let _ = write!(out, "{u}\0{g}");
                    0
                }
                Err(e) => e as i32,
            };
            let _ = out.flush();
            // SAFETY: _exit ends the forked child without running the
            // parent's atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut buf = String::new();
            let mut f = std::fs::File::from(rd);
            let _ = f.read_to_string(&mut buf);
            let status = nix::sys::wait::waitpid(child, None)?;
            if let nix::sys::wait::WaitStatus::Exited(_, code) = status {
                if code != 0 {
                    return Err(Errno::from_raw(code));
                }
            }
            let _ = f.as_raw_fd();
            let (u, g) = buf.split_once('\0').ok_or(Errno::EIO)?;
            Ok((
                IdMap::parse(u).ok_or(Errno::EINVAL)?,
                IdMap::parse(g).ok_or(Errno::EINVAL)?,
            ))
        }
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

    #[test]
    fn id_maps_parse_and_answer_membership() {
        let m =
            IdMap::parse("         0       1000          1\n         1     100000      65536\n")
                .unwrap();
        assert!(m.contains(0));
        assert!(m.contains(1));
        assert!(m.contains(65534));
        assert!(m.contains(65536));
        assert!(!m.contains(65537));
        assert_eq!(m.to_string(), "0-0, 1-65536");
        assert!(IdMap::parse("0 1\n").is_none());
        assert!(!IdMap::default().contains(0));
    }

    #[test]
    fn a_user_namespaces_maps_are_read_back() {
        use std::os::fd::AsRawFd;
        // A child makes a user namespace of its own; the parent (its owner)
        // writes its maps, then reads them back through the namespace.
        let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
        let (go_r, go_w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only calls unshare, write, read and _exit, which
        // are safe after fork in a multithreaded process.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
                let _ = nix::unistd::write(&ready_w, &[ok as u8]);
                let mut b = [0u8];
                let _ = nix::unistd::read(go_r.as_raw_fd(), &mut b);
                // SAFETY: ends the forked child without running destructors.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(ready_w);
                let mut b = [0u8];
                nix::unistd::read(ready_r.as_raw_fd(), &mut b).unwrap();
                let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
                let result = (|| {
                    assert_eq!(b[0], 1, "unshare(CLONE_NEWUSER) failed in the child");
                    std::fs::write(format!("/proc/{child}/uid_map"), format!("0 {uid} 1"))?;
                    std::fs::write(format!("/proc/{child}/setgroups"), "deny")?;
                    std::fs::write(format!("/proc/{child}/gid_map"), format!("0 {gid} 1"))?;
                    let ns = NsFile::open(Path::new(&format!("/proc/{child}/ns/user")), true)
                        .map_err(std::io::Error::from)?;
                    read_id_maps(&ns).map_err(std::io::Error::from)
                })();
                nix::unistd::write(&go_w, &[1]).unwrap();
                nix::sys::wait::waitpid(child, None).unwrap();
                let (u, g) = result.expect("writing and reading back the maps");
                let one = |outside| IdRange {
                    inside: 0,
                    outside,
                    count: 1,
                };
                assert_eq!(u, IdMap(vec![one(uid.as_raw())]));
                assert_eq!(g, IdMap(vec![one(gid.as_raw())]));
                // Our own user namespace cannot be joined (EINVAL): an
                // error, never a bogus map.
                let own = crate::kernel::ns::own_userns().unwrap();
                assert!(read_id_maps(&own).is_err());
            }
        }
    }
}
