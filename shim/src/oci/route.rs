//! Which command lines are meant for the OCI runtime (runc's) and which
//! for netshim's own commands.

use std::ffi::OsString;

/// Commands that only the OCI runtime has.
const OCI_COMMANDS: [&str; 16] = [
    "create",
    "start",
    "state",
    "kill",
    "delete",
    "exec",
    "features",
    "ps",
    "spec",
    "list",
    "pause",
    "resume",
    "events",
    "update",
    "checkpoint",
    "restore",
];

/// Global flags that take a value (runc's, and netshim's own).
const VALUE_FLAGS: [&str; 7] = [
    "--root",
    "--log",
    "--log-format",
    "--rootless",
    "--ambient-caps",
    "--config",
    "--criu",
];

/// Whether a command line is meant for the OCI runtime: its first word is an
/// OCI command, a runc global flag comes first, or it is `run` without
/// netshim's `--target-netns`.
pub fn wants_oci(argv: &[OsString]) -> bool {
    let mut it = argv.iter().skip(1).map(|a| a.to_string_lossy());
    let mut runc_flag = false;
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--") {
            let name = format!("--{}", flag.split('=').next().unwrap_or_default());
            if name == "--help" || name == "--version" {
                return runc_flag;
            }
            if name != "--debug" {
                runc_flag = true;
            }
            if VALUE_FLAGS.contains(&name.as_str()) && !a.contains('=') {
                it.next();
            }
            continue;
        }
        if a.starts_with('-') {
            return runc_flag;
        }
        if OCI_COMMANDS.contains(&a.as_ref()) {
            return true;
        }
        if a == "run" {
            // netshim's own `run` has --target-netns; its help stays its own.
            let rest: Vec<_> = it.take_while(|x| x != "--").collect();
            let ours = rest.iter().any(|x| {
                x == "--target-netns"
                    || x.starts_with("--target-netns=")
                    || x == "--help"
                    || x == "-h"
            });
            return runc_flag || (!rest.is_empty() && !ours);
        }
        return runc_flag;
    }
    runc_flag
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A command line as the shell would split it, after `netshim`.
    pub(in crate::oci) fn argv(s: &str) -> Vec<OsString> {
        std::iter::once("netshim")
            .chain(s.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn runc_command_lines_go_to_the_oci_runtime() {
        for s in [
            "--root /run/x --log /b/log.json --log-format json create --bundle /b --pid-file /b/p id",
            "--root=/run/x start id",
            "delete --force id",
            "state id",
            "--systemd-cgroup kill id 9",
            "exec --process /tmp/p --detach id",
            "features",
            "run -b /b id",
            "--debug run id",
        ] {
            assert!(wants_oci(&argv(s)), "{s}");
        }
    }

    #[test]
    fn netshim_command_lines_stay() {
        for s in [
            "run --target-netns netns:x -- ip a",
            "run --help",
            "run",
            "--debug run --target-netns=pid:1 -- sh",
            "capture -i any",
            "doctor --json",
            "--help",
            "--version",
            "",
        ] {
            assert!(!wants_oci(&argv(s)), "{s}");
        }
    }
}
