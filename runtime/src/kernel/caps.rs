//! Capability names, the sets `netshim run` may grant, and reading a
//! process's capability sets back from `/proc/PID/status`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use oci_spec::runtime::Capability;

/// A capability netshim knows by name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cap {
    pub bit: u8,
    pub name: &'static str,
}

/// All capabilities of Linux 6.x, by bit number (`<linux/capability.h>`).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

pub const NET_BIND_SERVICE: Cap = Cap {
    bit: 10,
    name: "NET_BIND_SERVICE",
};
pub const NET_ADMIN: Cap = Cap {
    bit: 12,
    name: "NET_ADMIN",
};
pub const NET_RAW: Cap = Cap {
    bit: 13,
    name: "NET_RAW",
};
pub const SYS_ADMIN: Cap = Cap {
    bit: 21,
    name: "SYS_ADMIN",
};

/// What `netshim run --cap` may add. Everything else is refused: these are
/// the network capabilities a troubleshooting command can need, and none of
/// them reaches outside the target's network namespace.
pub const RUN_ALLOWED: [Cap; 3] = [NET_RAW, NET_ADMIN, NET_BIND_SERVICE];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown capability {0:?}: use a name such as NET_RAW or CAP_NET_RAW (see capabilities(7))"
)]
pub struct UnknownCap(pub String);

impl FromStr for Cap {
    type Err = UnknownCap;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("CAP_").unwrap_or(&up);
        NAMES
            .iter()
            .position(|n| *n == bare)
            .map(|i| Cap {
                bit: i as u8,
                name: NAMES[i],
            })
            .ok_or_else(|| UnknownCap(s.to_string()))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.name)
    }
}

impl Cap {
    pub fn from_bit(bit: u8) -> Option<Cap> {
        NAMES.get(bit as usize).map(|name| Cap { bit, name })
    }

    /// The oci-spec value for this capability.
    pub fn to_oci(self) -> Capability {
        // oci-spec's serde names are the spec's "CAP_NET_RAW" strings (its
        // FromStr wants other spellings); every name in NAMES is one it knows,
        // which a unit test checks.
        serde_json::from_value(serde_json::Value::String(self.to_string()))
            .expect("oci-spec knows every Linux capability name")
    }
}

/// A set of capabilities as the kernel shows it: a 64-bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapMask(pub u64);

impl CapMask {
    pub fn of<'a>(caps: impl IntoIterator<Item = &'a Cap>) -> Self {
        CapMask(caps.into_iter().fold(0u64, |m, c| m | (1u64 << c.bit)))
    }

    pub fn caps(&self) -> BTreeSet<Cap> {
        (0..64u8)
            .filter(|b| self.0 & (1u64 << b) != 0)
            .map(|b| {
                Cap::from_bit(b).unwrap_or(Cap {
                    bit: b,
                    name: "UNKNOWN",
                })
            })
            .collect()
    }
}

impl fmt::Display for CapMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)?;
        let names: Vec<String> = self.caps().iter().map(|c| c.to_string()).collect();
        if !names.is_empty() {
            write!(f, " ({})", names.join(","))?;
        }
        Ok(())
    }
}

/// The identity and capability lines of `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcCreds {
    /// Real, effective, saved and filesystem UIDs.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub inh: CapMask,
    pub prm: CapMask,
    pub eff: CapMask,
    pub bnd: CapMask,
    pub amb: CapMask,
    pub no_new_privs: bool,
}

impl ProcCreds {
    pub fn parse(status: &str) -> Option<ProcCreds> {
        let mut c = ProcCreds::default();
        let mut seen = 0u32;
        for line in status.lines() {
            let Some((key, val)) = line.split_once(':') else {
                continue;
            };
            let val = val.trim();
            let hex = || u64::from_str_radix(val, 16).ok().map(CapMask);
            let ids = || -> Option<[u32; 4]> {
                let v: Vec<u32> = val
                    .split_whitespace()
                    .map(|x| x.parse().ok())
                    .collect::<Option<_>>()?;
                v.try_into().ok()
            };
            match key {
                "Uid" => c.uid = ids()?,
                "Gid" => c.gid = ids()?,
                "CapInh" => c.inh = hex()?,
                "CapPrm" => c.prm = hex()?,
                "CapEff" => c.eff = hex()?,
                "CapBnd" => c.bnd = hex()?,
                "CapAmb" => c.amb = hex()?,
                "NoNewPrivs" => c.no_new_privs = val == "1",
                _ => continue,
            }
            seen += 1;
        }
        (seen == 8).then_some(c)
    }

    pub fn read(pid: i32) -> std::io::Result<ProcCreds> {
        let path = format!("/proc/{pid}/status");
        let s = crate::kernel::ns::read_small(Path::new(&path))?;
        ProcCreds::parse(&s).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{path} lacks the Uid/Gid/Cap*/NoNewPrivs lines"),
            )
        })
    }

    /// Checks that every capability set equals `want` and no_new_privs is on.
    /// Returns a description of each difference.
    pub fn differences(&self, want: CapMask) -> Vec<String> {
        let mut d = Vec::new();
        for (name, got) in [
            ("CapEff", self.eff),
            ("CapPrm", self.prm),
            ("CapInh", self.inh),
            ("CapAmb", self.amb),
            ("CapBnd", self.bnd),
        ] {
            if got != want {
                d.push(format!("{name} is {got}, expected {want}"));
            }
        }
        if !self.no_new_privs {
            d.push("NoNewPrivs is 0, expected 1".into());
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        for s in ["NET_RAW", "CAP_NET_RAW", "net_raw", " cap_net_raw "] {
            assert_eq!(s.parse::<Cap>().unwrap(), NET_RAW, "{s}");
        }
        assert_eq!("SYS_ADMIN".parse::<Cap>().unwrap(), SYS_ADMIN);
        assert_eq!("CHECKPOINT_RESTORE".parse::<Cap>().unwrap().bit, 40);
        assert!("NET_RAWR".parse::<Cap>().is_err());
    }

    #[test]
    fn net_raw_mask_is_what_the_kernel_prints() {
        assert_eq!(
            CapMask::of(&[NET_RAW]).to_string(),
            "0000000000002000 (CAP_NET_RAW)"
        );
        assert_eq!(CapMask::of(&[NET_RAW, NET_ADMIN]).0, 0x3000);
    }

    #[test]
    fn every_name_converts_to_oci() {
        for (i, _) in NAMES.iter().enumerate() {
            let c = Cap::from_bit(i as u8).unwrap();
            let oci = c.to_oci();
            assert_eq!(
                serde_json::to_value(oci).unwrap(),
                serde_json::Value::String(format!("CAP_{}", c.name))
            );
        }
    }

    const STATUS: &str =
        "Name:\tcat\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n\
CapInh:\t0000000000002000\nCapPrm:\t0000000000002000\nCapEff:\t0000000000002000\n\
CapBnd:\t0000000000002000\nCapAmb:\t0000000000002000\nNoNewPrivs:\t1\nSeccomp:\t0\n";

    #[test]
    fn status_parses_and_compares() {
        let c = ProcCreds::parse(STATUS).unwrap();
        assert_eq!(c.uid, [65534; 4]);
        assert!(c.no_new_privs);
        assert!(c.differences(CapMask::of(&[NET_RAW])).is_empty());
        let d = c.differences(CapMask::of(&[NET_RAW, NET_ADMIN]));
        assert_eq!(d.len(), 5, "{d:?}");
        assert!(d[0].starts_with("CapEff is 0000000000002000"));
    }

    #[test]
    fn truncated_status_is_rejected() {
        assert!(ProcCreds::parse("Uid:\t1\t1\t1\t1\n").is_none());
    }

    #[test]
    fn own_status_is_readable() {
        let c = ProcCreds::read(std::process::id() as i32).unwrap();
        assert_eq!(c.uid[1], nix::unistd::geteuid().as_raw());
    }
}
