//! The seccomp profile of every process `netshim run` (and the capture
//! engine) starts in a target: everything a troubleshooting tool uses is
//! allowed; what Docker's default profile keeps from containers is refused
//! with EPERM.
//!
//! It is a deny-list, not Docker's allow-list, because the process already
//! holds no capability but CAP_NET_RAW: the profile's job is to close what an
//! unprivileged process can still reach in the kernel — creating user
//! namespaces (and with them capabilities over new namespaces), ptrace and
//! cross-process memory access, keyrings, BPF, perf events, userfaultfd,
//! io_uring, mount APIs, kernel modules and clocks — not to enumerate what
//! tcpdump, ip, ss and a shell need.
//!
//! Kernel rules: under `no_new_privs` an unprivileged process may install a
//! seccomp filter (seccomp(2)); the filter is inherited across fork and
//! execve and cannot be removed, and `/proc/PID/status` shows `Seccomp: 2`.
//! libcontainer installs it after the capability change, right before exec.

use serde_json::{json, Value};

/// Syscalls refused outright (names missing on this architecture are
/// skipped by libseccomp).
const DENIED: &[&str] = &[
    // Namespaces: no new user namespace (unshare/setns here; clone below).
    "unshare",
    "setns",
    // Other processes.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    // Kernel attack surface Docker also closes.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "lookup_dcookie",
    "personality",
    // Mounts and the filesystem tree.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "name_to_handle_at",
    "open_by_handle_at",
    "quotactl",
    "quotactl_fd",
    // The machine itself.
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "vhangup",
    "mbind",
    "set_mempolicy",
    "move_pages",
    "migrate_pages",
];

#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[&str] = &["ioperm", "iopl", "uselib", "ustat", "sysfs", "_sysctl"];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ARCH: &[&str] = &[];

/// The native architecture only: a syscall through another ABI (x86's
/// `int 0x80`, x32) does not match the filter's architecture and is killed
/// by libseccomp's default bad-architecture action, which is both stricter
/// than listing those ABIs and cheaper to compile (start-up time).
#[cfg(target_arch = "x86_64")]
const ARCHES: &[&str] = &["SCMP_ARCH_X86_64"];
#[cfg(target_arch = "aarch64")]
const ARCHES: &[&str] = &["SCMP_ARCH_AARCH64"];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCHES: &[&str] = &[];

/// Namespace flags of clone(2) (`<linux/sched.h>`).
const CLONE_NS_FLAGS: [u64; 7] = [
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The OCI `linux.seccomp` object.
pub fn default_profile() -> Value {
    let mut syscalls = vec![json!({
        "names": DENIED.iter().chain(DENIED_ARCH).collect::<Vec<_>>(),
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EPERM,
    })];
    // clone with any namespace flag (one rule per bit: the comparison a
    // rule can make is "flags & mask == value").
    for flag in CLONE_NS_FLAGS {
        syscalls.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    // clone3 passes its flags in memory, which seccomp cannot read: refuse it
    // with ENOSYS so that libc falls back to clone, which is checked (as
    // Docker does).
    syscalls.push(json!({
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": ENOSYS,
    }));
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ARCHES,
        "syscalls": syscalls,
    })
}

/// Installs the same profile on the calling process directly (for the
/// sealed engine, which libcontainer does not start). Needs `no_new_privs`.
pub fn install() -> Result<(), libseccomp::error::SeccompError> {
    use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow)?;
    for name in DENIED.iter().chain(DENIED_ARCH) {
        if let Ok(sc) = ScmpSyscall::from_name(name) {
            ctx.add_rule(ScmpAction::Errno(EPERM as i32), sc)?;
        }
    }
    let clone = ScmpSyscall::from_name("clone")?;
    for flag in CLONE_NS_FLAGS {
        ctx.add_rule_conditional(
            ScmpAction::Errno(EPERM as i32),
            clone,
            &[ScmpArgCompare::new(
                0,
                ScmpCompareOp::MaskedEqual(flag),
                flag,
            )],
        )?;
    }
    if let Ok(c3) = ScmpSyscall::from_name("clone3") {
        ctx.add_rule(ScmpAction::Errno(ENOSYS as i32), c3)?;
    }
    ctx.load()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_a_valid_oci_seccomp_object() {
        let p: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(default_profile()).expect("oci-spec accepts it");
        let rules = p.syscalls().as_ref().unwrap();
        assert!(rules[0].names().contains(&"unshare".to_string()));
        assert_eq!(rules.iter().filter(|r| r.names() == &["clone"]).count(), 7);
    }

    #[test]
    fn nothing_a_capture_needs_is_denied() {
        for needed in [
            "socket",
            "bind",
            "setsockopt",
            "getsockopt",
            "mmap",
            "poll",
            "ppoll",
            "read",
            "write",
            "signalfd4",
            "execve",
            "clone",
            "wait4",
            "ioctl",
            "sendto",
            "recvfrom",
        ] {
            assert!(!DENIED.contains(&needed), "{needed}");
        }
    }
}
