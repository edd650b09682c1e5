//! The suite's core tests on a pure cgroup v2 host: a Debian 12 guest this
//! machine boots itself (integration/guest/: debootstrap, Debian's kernel,
//! Debian's QEMU in software emulation), with `cgroup_no_v1=all
//! systemd.unified_cgroup_hierarchy=1` and cgroup2 alone at /sys/fs/cgroup,
//! as Debian 12, Ubuntu 22.04 and later, AL2023 and Bottlerocket boot. The
//! host itself boots hybrid v1 and cannot be switched.
//!
//! The test binaries built here (the same Debian 12 libraries as the guest)
//! and netshim's binary are shared with the guest over 9p; its init runs
//! [`PLAN`] with `--test-threads=1` and the results come back through the
//! same directory. Each guest test's result is printed here, and this test
//! fails if any failed, if a binary ran fewer tests than [`PLAN`] names, or
//! if the guest did not finish. The guest is built once per machine and kept
//! under `${XDG_CACHE_HOME:-$HOME/.cache}/netshim/guest/` (build.sh).
//!
//! `NETSHIM_GUEST_ONLY=NAME[,NAME]` runs only those binaries of the plan;
//! `NETSHIM_TEARDOWN_RUNS` passes to oci_teardown (default here 20);
//! `NETSHIM_GUEST_KEEP=1` keeps the stage directory with every output.

use netshim_integration::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Each test binary run in the guest, with the exact names of its tests
/// (empty: all of them) and the tests it skips (they need Docker or
/// Podman, which the guest does not have).
const PLAN: &[(&str, &[&str], &[&str])] = &[
    (
        "run_root",
        &[
            "process_has_uid_65534_and_only_ambient_net_raw",
            "command_sees_the_targets_addresses_not_the_hosts",
            "host_tcpdump_captures_veth_traffic_as_nobody",
            "exit_status_is_the_commands",
            "sigkill_of_the_command_is_reported_and_state_removed",
            "root_joins_a_user_namespace_where_root_is_unmapped",
            "drop_uid_and_join_userns_give_no_supplementary_group",
            "the_run_sees_the_hosts_tree_with_proc_and_sys_restricted",
            "seccomp_refuses_new_user_namespaces_and_ptrace_with_eperm",
        ],
        &[],
    ),
    (
        "run_rootless",
        &[
            "user_joining_its_userns_gets_no_supplementary_group",
            "host_owned_netns_is_refused_with_the_ownership_rule",
        ],
        &[],
    ),
    (
        "capture_root",
        &[
            "count_and_filter_give_exactly_the_matching_packets_in_pcapng",
            "the_engine_runs_as_nobody_with_only_net_raw",
            "sealed_engine_holds_no_capability_and_still_captures",
        ],
        &[],
    ),
    ("runc_parity", &[], &[]),
    (
        "oci_runtime",
        // The other containerd tests took 180 s more under emulation.
        &["ctr_run_gives_a_non_root_no_new_privs_container_ambient_net_raw"],
        &[],
    ),
    ("oci_teardown", &[], &[]),
];

/// The test user the guest image has (build.sh makes it, UID 1000).
const GUEST_USER: &str = "netshim-test";

/// The newest test executable `name-HASH` in the deps directory.
fn test_binary(deps: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}-");
    std::fs::read_dir(deps)
        .unwrap()
        .flatten()
        .filter(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            f.strip_prefix(&prefix)
                .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| {
            panic!(
                "no test binary {name}-HASH in {}: build them with `cargo test --workspace --no-run` \
                 (integration/run.sh does)",
                deps.display()
            )
        })
}

/// Shares `src` with the guest as `stage/bin/NAME` (a hard link, else a copy).
fn stage_file(src: &Path, stage: &Path, name: &str) {
    let dst = stage.join("bin").join(name);
    if std::fs::hard_link(src, &dst).is_err() {
        std::fs::copy(src, &dst).unwrap();
    }
}

/// The guest's script: each binary's output in out/NAME.txt, its exit
/// status in out/NAME.status.
fn plan_script(plan: &[&(&str, &[&str], &[&str])]) -> String {
    let runs = std::env::var("NETSHIM_TEARDOWN_RUNS").unwrap_or_else(|_| "20".into());
    let mut s = format!(
        "#!/bin/sh\n\
         # Written by integration/tests/cgroup_v2_guest.rs; run by the guest's init.\n\
         # The tests run in a leaf cgroup, as under systemd's scopes (processes\n\
         # never sit in a v2 cgroup whose controllers are enabled for children).\n\
         mkdir -p /sys/fs/cgroup/netshim-tests.scope\n\
         echo $$ >/sys/fs/cgroup/netshim-tests.scope/cgroup.procs\n\
         install -d -m 0700 -o {GUEST_USER} -g {GUEST_USER} /run/user/1000\n\
         mkdir -p out\n\
         export HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin RUST_BACKTRACE=1\n\
         export NETSHIM_BIN=/mnt/stage/bin/netshim NETSHIM_TEST_USER={GUEST_USER}\n\
         export NETSHIM_TEST_RUNTIME_DIR=/run/user/1000 NETSHIM_TEARDOWN_RUNS={runs}\n\
         export NETSHIM_TEARDOWN_REPORT=/mnt/stage/out/teardown.txt\n\
         cd /tmp\n"
    );
    for (name, only, skip) in plan {
        let mut args = String::from("--test-threads=1");
        if !only.is_empty() {
            args.push_str(" --exact");
            for t in *only {
                args.push_str(&format!(" {t}"));
            }
        }
        for t in *skip {
            args.push_str(&format!(" --skip {t}"));
        }
        s.push_str(&format!(
            "start=$(cut -d' ' -f1 /proc/uptime)\n\
             timeout 900 /mnt/stage/bin/{name} {args} >/mnt/stage/out/{name}.txt 2>&1\n\
             echo $? >/mnt/stage/out/{name}.status\n\
             echo \"{name}: $(cut -d' ' -f1 /proc/uptime) - $start s\" >>/mnt/stage/out/times\n"
        ));
    }
    s
}

/// libtest's result lines (`test NAME ... ok`), from output that may have
/// the tests' own stderr interleaved.
fn results(out: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for l in out.lines() {
        let Some(rest) = l.strip_prefix("test ") else {
            continue;
        };
        let Some((name, res)) = rest.split_once(" ... ") else {
            continue;
        };
        let res = ["ok", "FAILED", "ignored"]
            .into_iter()
            .find(|r| res.trim_end().ends_with(r))
            .unwrap_or("unknown");
        v.push((name.to_string(), res.to_string()));
    }
    v
}

#[test]
fn the_core_tests_pass_in_a_pure_cgroup_v2_guest() {
    require_root();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let netshim = netshim();
    let deps = netshim.parent().unwrap().join("deps");
    let only: Option<Vec<String>> = std::env::var("NETSHIM_GUEST_ONLY")
        .ok()
        .map(|v| v.split(',').map(String::from).collect());
    let plan: Vec<_> = PLAN
        .iter()
        .filter(|(n, _, _)| only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .collect();
    assert!(
        !plan.is_empty(),
        "NETSHIM_GUEST_ONLY names no binary of the plan"
    );

    // NETSHIM_GUEST_KEEP=1 keeps the stage directory (outputs, console).
    let keep = std::env::var_os("NETSHIM_GUEST_KEEP").is_some();
    let stage = tempfile::Builder::new()
        .prefix("netshim-guest")
        .disable_cleanup(keep)
        .tempdir_in("/tmp")
        .unwrap();
    let sp = stage.path();
    if keep {
        eprintln!("guest: stage kept in {}", sp.display());
    }
    std::fs::create_dir(sp.join("bin")).unwrap();
    std::fs::create_dir(sp.join("out")).unwrap();
    stage_file(&netshim, sp, "netshim");
    for (name, _, _) in &plan {
        stage_file(&test_binary(&deps, name), sp, name);
    }
    std::fs::write(sp.join("plan.sh"), plan_script(&plan)).unwrap();
    run(Command::new("chmod").args(["-R", "a+rX,u+w"]).arg(sp)).ok();
    run(Command::new("chmod").arg("0755").arg(sp.join("plan.sh"))).ok();

    // Build (or reuse) the guest, then boot it: two steps, timed apart.
    let t = Instant::now();
    let built = run(&mut Command::new(repo.join("integration/guest/build.sh")));
    assert_eq!(built.code, Some(0), "building the guest failed: {built:#?}");
    let build_secs = t.elapsed().as_secs();
    let t = Instant::now();
    let booted = run(Command::new(repo.join("integration/guest/boot.sh"))
        .arg(sp)
        .arg("1500"));
    let run_secs = t.elapsed().as_secs();
    let console = std::fs::read_to_string(sp.join("console.log")).unwrap_or_default();
    let status = std::fs::read_to_string(sp.join("plan.status")).unwrap_or_default();
    assert_eq!(
        status.trim(),
        "0",
        "the guest did not finish its plan (boot.sh: {booted:#?}); its console's end:\n{}\nplan output:\n{}",
        console.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"),
        std::fs::read_to_string(sp.join("plan.out")).unwrap_or_default()
    );
    let init_line = console
        .lines()
        .find(|l| l.starts_with("guest: init up"))
        .unwrap_or("guest: (no init line on the console)")
        .to_string();
    assert_eq!(
        init_line
            .split_once("cgroup mounts: ")
            .map(|(_, m)| m.trim()),
        Some("cgroup2 /sys/fs/cgroup"),
        "the guest must have cgroup2 alone at /sys/fs/cgroup: {init_line}"
    );

    let mut failed = Vec::new();
    let mut total = 0;
    eprintln!("{init_line}");
    eprintln!(
        "guest: built or reused in {build_secs} s, booted, ran and powered off in {run_secs} s"
    );
    for f in ["out/times", "out/teardown.txt"] {
        for l in std::fs::read_to_string(sp.join(f))
            .unwrap_or_default()
            .lines()
        {
            eprintln!("guest: {l}");
        }
    }
    for (name, only, _) in &plan {
        let out = std::fs::read_to_string(sp.join(format!("out/{name}.txt"))).unwrap_or_default();
        let code =
            std::fs::read_to_string(sp.join(format!("out/{name}.status"))).unwrap_or_default();
        let res = results(&out);
        for (t, r) in &res {
            eprintln!("guest: {name}::{t} ... {r}");
        }
        total += res.len();
        let bad = res.iter().any(|(_, r)| r != "ok");
        let short = !only.is_empty() && res.len() < only.len();
        if code.trim() != "0" || bad || short || res.is_empty() {
            failed.push(format!(
                "{name} (exit status {:?}, {} results{}):\n{out}",
                code.trim(),
                res.len(),
                if short {
                    ", fewer than the plan names"
                } else {
                    ""
                }
            ));
        }
    }
    eprintln!("guest: {total} tests run");
    assert!(
        failed.is_empty(),
        "tests failed in the pure cgroup v2 guest:\n{}",
        failed.join("\n\n")
    );
}
