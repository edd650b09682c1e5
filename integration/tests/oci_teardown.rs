//! `ctr run --rm` in a loop through netshim as containerd's runtime (the
//! runc v2 shim's BinaryName, and the v1 runtime `io.containerd.runtime.v1.linux`),
//! with runc as the control (issue 28): every `delete` netshim ran must
//! have exited 0, and every container, its state and its cgroups be gone.
//!
//! The ground truth for "exited 0" is the kernel's process accounting
//! (acct(2)), switched on for the loop: containerd's own log is not, because
//! its runc v2 shim's clean-up (`containerd-shim-runc-v2 ... delete`, run
//! after every task delete) reaps children on SIGCHLD while go-runc waits
//! for the runtime, and when the reaper wins go-runc reports "exit status
//! 255: " with no output whatever the runtime exited with. That happens to
//! runc as well; the test counts it for both and fails on any other failed
//! delete containerd logs, and on any netshim process that exited non-zero.
//!
//! `NETSHIM_TEARDOWN_RUNS` sets the runs per runtime (default 40);
//! `NETSHIM_TEARDOWN_REPORT=FILE` appends the figures to FILE as well (the
//! cgroup v2 guest brings them back so).

use netshim_integration::*;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// Process accounting is one file for the whole machine: one test at a time.
static ACCT: Mutex<()> = Mutex::new(());

/// Prints a figure, and appends it to `NETSHIM_TEARDOWN_REPORT` if set.
fn report(line: &str) {
    eprintln!("{line}");
    if let Some(p) = std::env::var_os("NETSHIM_TEARDOWN_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

fn runs() -> usize {
    std::env::var("NETSHIM_TEARDOWN_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// One exited process, from the kernel's accounting file (struct acct_v3).
#[derive(Debug)]
struct Exit {
    pid: u32,
    ppid: u32,
    comm: String,
    code: u32,
    signal: u32,
}

/// Process accounting into a file of its own, switched off on drop.
struct Accounting {
    file: tempfile::NamedTempFile,
}

impl Accounting {
    fn on() -> Accounting {
        let file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        nix::unistd::acct::enable(file.path()).unwrap_or_else(|e| {
            panic!(
                "cannot switch on process accounting (acct(2), CONFIG_BSD_PROCESS_ACCT) to see netshim's \
                 exit statuses: {e}; this test needs root on a kernel with it (Debian's has it)"
            )
        });
        Accounting { file }
    }

    /// Every process that ended since [`Accounting::on`] (v3 records, 64 bytes).
    fn exits(&self) -> Vec<Exit> {
        let data = std::fs::read(self.file.path()).unwrap();
        assert!(
            data.len().is_multiple_of(64) && data.get(1).is_none_or(|v| *v == 3),
            "not an acct_v3 file ({} bytes, version {:?})",
            data.len(),
            data.get(1)
        );
        let u32_at = |r: &[u8], o: usize| u32::from_le_bytes(r[o..o + 4].try_into().unwrap());
        data.chunks(64)
            .map(|r| {
                let status = u32_at(r, 4);
                Exit {
                    pid: u32_at(r, 16),
                    ppid: u32_at(r, 20),
                    comm: String::from_utf8_lossy(r[48..64].split(|b| *b == 0).next().unwrap())
                        .into_owned(),
                    code: (status >> 8) & 0xff,
                    signal: status & 0x7f,
                }
            })
            .collect()
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        let _ = nix::unistd::acct::disable();
    }
}

/// The netshim processes containerd's shims ran (their parent is a shim).
fn netshim_exits(exits: &[Exit]) -> Vec<&Exit> {
    let shims: std::collections::HashSet<u32> = exits
        .iter()
        .filter(|e| e.comm.starts_with("containerd-shim"))
        .map(|e| e.pid)
        .collect();
    exits
        .iter()
        .filter(|e| e.comm == "netshim" && shims.contains(&e.ppid))
        .collect()
}

/// `ctr run --rm` of `true` under `runtime` args, `n` times; the IDs used.
fn loop_runs(ctd: &Containerd, ns: &str, args: &[&str], spec: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = unique("td");
        let mut c = Command::new("timeout");
        c.args([
            "60",
            "ctr",
            "--address",
            &ctd.address,
            "-n",
            ns,
            "run",
            "--rm",
        ])
        .args(["--config", spec])
        .args(args)
        .arg(&id);
        let ran = run(&mut c);
        assert_eq!(ran.code, Some(0), "ctr run --rm {args:?}: {ran:#?}");
        ids.push(id);
    }
    ids
}

/// The failed deletes containerd logged for `binary`: (the race's empty
/// "exit status 255: ", any other).
fn failed_deletes(log: &str, binary: &str) -> (usize, Vec<String>) {
    let mut race = 0;
    let mut other = Vec::new();
    for l in log
        .lines()
        .filter(|l| l.contains("did not terminate successfully"))
    {
        if !l.contains(&format!("{binary} did not terminate successfully")) {
            continue;
        }
        if l.contains("did not terminate successfully: exit status 255: \\\"") {
            race += 1;
        } else {
            other.push(l.to_string());
        }
    }
    (race, other)
}

/// Nothing of the containers left: state under the runtime root, cgroups.
fn assert_nothing_left(ctd: &Containerd, ns: &str, ids: &[String]) {
    let left = run(&mut ctd.ctr(&["-n", ns, "containers", "ls", "-q"])).ok();
    assert_eq!(left.stdout.trim(), "", "containers left: {left:#?}");
    let root = Path::new("/run/containerd/runc").join(ns);
    let hierarchies = [
        "", "pids", "memory", "cpu", "devices", "freezer", "unified", "systemd",
    ];
    for id in ids {
        assert!(
            !root.join(id).exists(),
            "state of {id} left in {}",
            root.display()
        );
        for h in hierarchies {
            let cg = Path::new("/sys/fs/cgroup").join(h).join(id);
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
    }
    // The runtimes' root for this namespace, empty now (runc leaves it too).
    let _ = std::fs::remove_dir(&root);
}

fn write_spec(dir: &Path) -> String {
    let rootfs = busybox_rootfs(dir);
    let spec = non_root_spec(&rootfs, &["true"], &[]);
    let p = dir.join("teardown.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    p.display().to_string()
}

/// Checks the accounting and containerd's log after a loop, prints the
/// figures, and returns the race's count for `binary`.
fn check(acct: &Accounting, ctd: &Containerd, binary: &str, what: &str, n: usize) -> usize {
    let exits = acct.exits();
    let ours = netshim_exits(&exits);
    let bad: Vec<_> = ours
        .iter()
        .filter(|e| e.code != 0 || e.signal != 0)
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: netshim processes exited non-zero: {bad:#?}"
    );
    // create, start, delete: at least three per run.
    assert!(
        ours.len() >= 3 * n,
        "{what}: only {} netshim processes under containerd's shims for {n} runs (accounting: {} records)",
        ours.len(),
        exits.len()
    );
    let log = std::fs::read_to_string(ctd.dir.path().join("containerd.log")).unwrap();
    let (race, other) = failed_deletes(&log, binary);
    assert!(other.is_empty(), "{what}: failed deletes: {other:#?}");
    report(&format!(
        "{what}: {n} runs, {} netshim processes all exited 0; containerd logged the shim clean-up's \
         \"exit status 255: \" {race} times",
        ours.len()
    ));
    race
}

#[test]
fn ctr_run_rm_through_the_v2_shim_never_fails_a_delete() {
    let _one = ACCT.lock().unwrap_or_else(|e| e.into_inner());
    let ctd = Containerd::start("", false);
    let spec = write_spec(ctd.dir.path());
    let ns = unique("tdv2");
    let netshim = netshim().display().to_string();
    let n = runs();

    let acct = Accounting::on();
    // Interleaved, so that both meet the same load.
    let (mut ids, mut control) = (Vec::new(), Vec::new());
    for _ in 0..n {
        ids.extend(loop_runs(&ctd, &ns, &["--runc-binary", &netshim], &spec, 1));
        control.extend(loop_runs(
            &ctd,
            &ns,
            &["--runc-binary", "/usr/sbin/runc"],
            &spec,
            1,
        ));
    }
    // The shim's clean-up runs after ctr returns: let the last one finish.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let race = check(
        &acct,
        &ctd,
        &netshim,
        "v2 (runc v2 shim, BinaryName netshim)",
        n,
    );
    drop(acct);

    let log = std::fs::read_to_string(ctd.dir.path().join("containerd.log")).unwrap();
    let (runc_race, runc_other) = failed_deletes(&log, "/usr/sbin/runc");
    // The race is containerd's and leaves nothing behind: its counts are
    // figures, not a verdict (under emulation netshim meets it more often
    // than runc; docs/runtime.md).
    report(&format!(
        "v2 control: runc, {n} runs: \"exit status 255: \" {runc_race} times (netshim: {race})"
    ));
    assert!(
        runc_other.is_empty(),
        "runc's failed deletes: {runc_other:#?}"
    );
    assert_nothing_left(&ctd, &ns, &ids);
    assert_nothing_left(&ctd, &ns, &control);
}

#[test]
fn ctr_run_rm_through_the_v1_runtime_never_fails_a_delete() {
    let _one = ACCT.lock().unwrap_or_else(|e| e.into_inner());
    let netshim = netshim().display().to_string();
    let extra =
        format!("[plugins.\"io.containerd.runtime.v1.linux\"]\n  runtime = \"{netshim}\"\n");
    let ctd = Containerd::start(&extra, false);
    let spec = write_spec(ctd.dir.path());
    let ns = unique("tdv1");
    let n = runs();
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        v1_runtime_needs_cgroup_v1(&ctd, &ns, &spec);
        return;
    }

    let acct = Accounting::on();
    let ids = loop_runs(
        &ctd,
        &ns,
        &["--runtime", "io.containerd.runtime.v1.linux"],
        &spec,
        n,
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    check(
        &acct,
        &ctd,
        &netshim,
        "v1 (io.containerd.runtime.v1.linux, runtime netshim)",
        n,
    );
    drop(acct);
    assert_nothing_left(&ctd, &ns, &ids);
}

/// On a pure cgroup v2 host containerd's v1 runtime starts no container at
/// all, with runc (its default) as with netshim: its shim manages cgroups
/// with the v1 library only. Shown with both; the loop cannot run there.
fn v1_runtime_needs_cgroup_v1(ctd: &Containerd, ns: &str, spec: &str) {
    let plain = Containerd::start("", false);
    for (c, who) in [(ctd, "netshim"), (&plain, "runc")] {
        let id = unique("td");
        let ran = run(Command::new("timeout").args([
            "60",
            "ctr",
            "--address",
            &c.address,
            "-n",
            ns,
            "run",
            "--rm",
            "--config",
            spec,
            "--runtime",
            "io.containerd.runtime.v1.linux",
            &id,
        ]));
        assert_ne!(ran.code, Some(0), "{who}: {ran:#?}");
        assert!(
            ran.stderr.contains("cgroup mountpoint does not exist"),
            "{who}: {ran:#?}"
        );
    }
    report(
        "SKIPPED the v1 loop: this host is pure cgroup v2, where containerd's v1 runtime \
         (io.containerd.runtime.v1.linux) fails every container, with runc as with netshim \
         (\"cgroup mountpoint does not exist\"); it runs on the hybrid v1 host",
    );
}
