//! netshim as an OCI runtime, driven by the real engines: a private
//! containerd through `ctr run --runc-binary` (the runc v2 shim's
//! BinaryName path), the harness's private rootful Docker and the test
//! user's rootless Docker with `--runtime netshim`; runc is the control.
//!
//! The ping tests use `ping_group_range = "1 0"` (the kernel's default in a
//! new network namespace; Docker 20.10 widens it) so that ping needs a raw
//! socket, that is CAP_NET_RAW, as it would in any pod.

use netshim_integration::*;
use std::process::Command;

const PING: &str =
    "grep -E 'CapAmb|NoNewPrivs|Seccomp:' /proc/self/status; id -u; ping -c 1 -W 2 127.0.0.1";
const ANN: &str = "netshim.io/ambient-capabilities";

fn write_spec(dir: &std::path::Path, spec: &serde_json::Value) -> String {
    let p = dir.join(format!("{}.json", unique("spec")));
    std::fs::write(&p, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
    p.display().to_string()
}

fn ctr_run(ctd: &Containerd, runtime: &str, spec: &str, id: &str) -> Ran {
    run(Command::new("timeout").arg("60").args([
        "ctr",
        "--address",
        &ctd.address,
        "run",
        "--rm",
        "--config",
        spec,
        "--runc-binary",
        runtime,
        id,
    ]))
}

#[test]
fn ctr_run_gives_a_non_root_no_new_privs_container_ambient_net_raw() {
    let ctd = Containerd::start("", false);
    let rootfs = busybox_rootfs(ctd.dir.path());
    let spec = non_root_spec(&rootfs, &["sh", "-c", PING], &[(ANN, "NET_RAW")]);
    let spec = write_spec(ctd.dir.path(), &spec);
    let netshim = netshim().display().to_string();

    let ran = ctr_run(&ctd, &netshim, &spec, &unique("ns"));
    let f = status_fields(&ran.stdout);
    assert_eq!(ran.code, Some(0), "{ran:#?}");
    assert_eq!(
        f.get("CapAmb").map(String::as_str),
        Some("0000000000002000"),
        "{ran:#?}"
    );
    assert_eq!(f.get("NoNewPrivs").map(String::as_str), Some("1"));
    assert!(
        ran.stdout.contains("\n1000\n"),
        "runs as UID 1000: {ran:#?}"
    );
    assert!(ran.stdout.contains("1 packets received"), "{ran:#?}");

    // The control: runc runs the same spec with no ambient set, so the
    // non-root process loses CAP_NET_RAW at exec and ping is refused.
    let ran = ctr_run(&ctd, "/usr/sbin/runc", &spec, &unique("rc"));
    let f = status_fields(&ran.stdout);
    assert_eq!(
        f.get("CapAmb").map(String::as_str),
        Some("0000000000000000"),
        "{ran:#?}"
    );
    assert_ne!(ran.code, Some(0), "ping must fail under runc: {ran:#?}");
    assert!(ran.stderr.contains("permission denied"), "{ran:#?}");
}

#[test]
fn ctr_refuses_dangerous_or_unbounded_requests_and_leaves_nothing() {
    let ctd = Containerd::start("", false);
    let rootfs = busybox_rootfs(ctd.dir.path());
    let netshim = netshim().display().to_string();
    for (ann, cap_in_bounding, expect) in [
        ("NET_RAW,SYS_ADMIN", "CAP_SYS_ADMIN", "restricted"),
        ("DAC_OVERRIDE", "CAP_DAC_OVERRIDE", "restricted"),
        ("NET_ADMIN", "CAP_NET_ADMIN", "allow-list"),
        ("NET_BIND_SERVICE", "CAP_NET_RAW", "bounding set"),
        ("NET_RAWR", "CAP_NET_RAW", "NET_RAWR"),
    ] {
        let mut spec = non_root_spec(&rootfs, &["true"], &[(ANN, ann)]);
        spec["process"]["capabilities"]["bounding"] =
            serde_json::json!(["CAP_NET_RAW", cap_in_bounding]);
        let spec = write_spec(ctd.dir.path(), &spec);
        let id = unique("bad");
        let ran = ctr_run(&ctd, &netshim, &spec, &id);
        assert_ne!(ran.code, Some(0), "{ann}: {ran:#?}");
        assert!(
            ran.stderr.contains(expect),
            "{ann}: want {expect:?} in {ran:#?}"
        );
        assert!(ran.stderr.contains("OCI runtime create failed"), "{ran:#?}");
        assert!(
            !std::path::Path::new("/run/containerd/runc/default")
                .join(&id)
                .exists(),
            "{ann}: state left behind"
        );
    }
    let left = run(&mut ctd.ctr(&["containers", "ls", "-q"])).ok();
    assert_eq!(left.stdout.trim(), "", "containers left: {left:#?}");
}

#[test]
fn ctr_detached_task_exec_ps_pause_kill_and_delete_work_as_with_runc() {
    let ctd = Containerd::start("", false);
    let rootfs = busybox_rootfs(ctd.dir.path());
    let spec = non_root_spec(&rootfs, &["sleep", "1000"], &[(ANN, "NET_RAW")]);
    let spec = write_spec(ctd.dir.path(), &spec);
    let netshim = netshim().display().to_string();
    let id = unique("det");
    let nerdctl_name = unique("web");
    let label = format!("nerdctl/name={nerdctl_name}");
    run(&mut ctd.ctr(&[
        "run",
        "-d",
        "--label",
        &label,
        "--config",
        &spec,
        "--runc-binary",
        &netshim,
        &id,
    ]))
    .ok();

    let ls = run(&mut ctd.ctr(&["task", "ls"])).ok();
    assert!(
        ls.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "{ls:#?}"
    );

    // exec gets the same policy: ambient NET_RAW for a non-root process.
    let ex = run(&mut ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        &format!("{PING}; exit 7"),
    ]));
    assert_eq!(ex.code, Some(7), "exec's exit status comes back: {ex:#?}");
    assert_eq!(
        status_fields(&ex.stdout).get("CapAmb").map(String::as_str),
        Some("0000000000002000")
    );
    assert!(ex.stdout.contains("1 packets received"), "{ex:#?}");

    let ps = run(&mut ctd.ctr(&["task", "ps", &id])).ok();
    let init: i32 = ls
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    assert!(ps.stdout.contains(&init.to_string()), "{ps:#?}");

    // The task as a `netshim run` target: containerd:NS/ID and nerdctl:NAME.
    let want = std::fs::read_link(format!("/proc/{init}/ns/net")).unwrap();
    for t in [
        format!("containerd:default/{id}"),
        format!("nerdctl:{nerdctl_name}"),
    ] {
        let r = run(Command::new(&netshim)
            .env("CONTAINERD_ADDRESS", &ctd.address)
            .args([
                "run",
                "--target-netns",
                &t,
                "--",
                "readlink",
                "/proc/self/ns/net",
            ]))
        .ok();
        assert_eq!(r.stdout.trim(), want.to_str().unwrap(), "{t}");
    }
    let r = run(Command::new(&netshim)
        .env("CONTAINERD_ADDRESS", &ctd.address)
        .args([
            "run",
            "--target-netns",
            "containerd:default/nope",
            "--",
            "true",
        ]));
    assert!(r.stderr.contains("no container \"nope\""), "{r:#?}");

    run(&mut ctd.ctr(&["task", "pause", &id])).ok();
    let st = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let ls = run(&mut ctd.ctr(&["task", "ls"])).ok();
    assert!(ls.stdout.contains("PAUSED"), "{ls:#?} {st}");
    run(&mut ctd.ctr(&["task", "resume", &id])).ok();

    // The runtime's own view, through runc's command line.
    let root = "/run/containerd/runc/default";
    let state = run(Command::new(&netshim).args(["--root", root, "state", &id])).ok();
    let v: serde_json::Value = serde_json::from_str(&state.stdout).unwrap();
    assert_eq!(v["status"], "running");
    assert_eq!(v["pid"], init);
    assert_eq!(v["annotations"][ANN], "NET_RAW");
    assert!(
        !v["bundle"].as_str().unwrap().contains(".netshim"),
        "the real bundle: {v}"
    );

    run(&mut ctd.ctr(&["task", "kill", "-s", "KILL", &id])).ok();
    assert!(wait_gone(init), "the init ends on SIGKILL");
    run(&mut ctd.ctr(&["task", "rm", &id])).ok();
    run(&mut ctd.ctr(&["containers", "rm", &id])).ok();
    assert!(
        !std::path::Path::new(root).join(&id).exists(),
        "state removed"
    );
}

#[test]
fn runtime_cli_errors_are_those_containerd_matches_and_clear() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let ns = |args: &[&str]| run(Command::new(netshim()).args(["--root", root]).args(args));

    let r = ns(&["state", "nope"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("container nope does not exist"), "{r:#?}");
    assert_eq!(
        ns(&["delete", "--force", "nope"]).code,
        Some(0),
        "runc deletes a missing container with --force"
    );
    assert!(ns(&["kill", "nope", "KILL"])
        .stderr
        .contains("does not exist"));
    assert!(ns(&["kill", "nope", "NOSIG"])
        .stderr
        .contains("invalid signal"));

    // A malformed config.json: a clear error in the log file, in the JSON
    // form containerd's shim reads, and nothing created.
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    let log = dir.path().join("log.json");
    // `create` with a JSON log file; its result and the log's last line.
    let create_logged = |bundle: &std::path::Path, id: &str| {
        let r = run(Command::new(netshim())
            .args(["--root", root, "--log"])
            .arg(&log)
            .args(["--log-format", "json", "create", "--bundle"])
            .arg(bundle)
            .arg(id));
        let text = std::fs::read_to_string(&log).unwrap();
        let last: serde_json::Value =
            serde_json::from_str(text.lines().last().expect("a log line")).expect("JSON log lines");
        (r, last)
    };
    let (r, last) = create_logged(&bundle, "m1");
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stderr.contains("malformed") && r.stderr.contains("config.json"),
        "{r:#?}"
    );
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("malformed"),
        "{last}"
    );
    assert!(
        last["time"].as_str().unwrap().contains('T'),
        "RFC 3339 time: {last}"
    );
    assert!(!std::path::Path::new(root).join("m1").exists());

    // The container's init fails (a bind mount of a missing source): its
    // own record of the cause, which libcontainer hands the runtime only as
    // "failed to prepare rootfs", is in the error containerd reads.
    let bad = dir.path().join("bad-mount");
    std::fs::create_dir(&bad).unwrap();
    let bad_rootfs = busybox_rootfs(&bad);
    let mut spec = non_root_spec(&bad_rootfs, &["true"], &[]);
    spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
        {"destination": "/x", "type": "bind", "source": "/nonexistent-netshim-test", "options": ["rbind"]}
    ));
    std::fs::write(bad.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    let (r, last) = create_logged(&bad, "m2");
    assert_eq!(r.code, Some(1), "{r:#?}");
    let msg = last["msg"].as_str().unwrap();
    assert!(
        msg.contains("failed to prepare rootfs (the container's init logged: ")
            && msg.contains("NotFound"),
        "{last}"
    );
    assert!(r.stderr.contains("NotFound"), "{r:#?}");
    assert!(!std::path::Path::new(root).join("m2").exists());

    // A create/start/state/kill/delete cycle straight from the command line.
    let rootfs = busybox_rootfs(dir.path());
    let spec = non_root_spec(&rootfs, &["sleep", "1000"], &[(ANN, "NET_RAW")]);
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let pidfile = dir.path().join("pid");
    // The container inherits create's stdio (as with runc): give it files,
    // not the pipes a captured run would wait on.
    let out = std::fs::File::create(dir.path().join("c1.out")).unwrap();
    let status = Command::new(netshim())
        .args(["--root", root, "create", "--bundle"])
        .arg(&bundle)
        .arg("--pid-file")
        .arg(&pidfile)
        .arg("c1")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(dir.path().join("c1.out")).unwrap()
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let st: serde_json::Value = serde_json::from_str(&ns(&["state", "c1"]).ok().stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    let before = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_fields(&before)["CapAmb"],
        "0000000000002000",
        "ambient set before start"
    );
    ns(&["start", "c1"]).ok();
    assert!(
        ns(&["start", "c1"]).stderr.contains("is running"),
        "a second start is refused"
    );
    let list = ns(&["list", "--format", "json"]).ok();
    assert!(list.stdout.contains("\"c1\""), "{list:#?}");
    let r = ns(&["delete", "c1"]);
    assert_ne!(
        r.code,
        Some(0),
        "a running container is not deleted without --force"
    );
    ns(&["kill", "c1", "KILL"]).ok();
    assert!(wait_gone(pid));
    let r = ns(&["kill", "c1", "TERM"]);
    assert!(r.stderr.contains("container not running"), "{r:#?}");
    ns(&["delete", "c1"]).ok();
    assert!(ns(&["state", "c1"]).stderr.contains("does not exist"));

    // `run` in the foreground: the container's output and exit status, and
    // nothing left afterwards.
    let spec = non_root_spec(
        &rootfs,
        &["sh", "-c", "grep CapAmb /proc/self/status; exit 3"],
        &[(ANN, "NET_RAW")],
    );
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let r = run(Command::new(netshim())
        .args(["--root", root, "run", "--bundle"])
        .arg(&bundle)
        .arg("r1"));
    assert_eq!(r.code, Some(3), "{r:#?}");
    assert_eq!(status_fields(&r.stdout)["CapAmb"], "0000000000002000");
    assert!(ns(&["state", "r1"]).stderr.contains("does not exist"));
}

fn docker_ping_args(runtime: &str) -> Vec<&str> {
    vec![
        "run",
        "--rm",
        "--runtime",
        runtime,
        "--network",
        "none",
        "--user",
        "1000:1000",
        "--security-opt",
        "no-new-privileges",
        "--sysctl",
        "net.ipv4.ping_group_range=1 0",
        "netshim-busybox",
        "sh",
        "-c",
        PING,
    ]
}

fn check_docker(docker: &dyn Fn(&[&str]) -> Command) {
    let ok = run(&mut docker(&docker_ping_args("netshim")));
    assert_eq!(ok.code, Some(0), "{ok:#?}");
    let f = status_fields(&ok.stdout);
    assert_eq!(f["CapAmb"], "0000000000002000", "{ok:#?}");
    assert_eq!(f["NoNewPrivs"], "1");
    assert!(
        ok.stdout.contains("Seccomp:\t2"),
        "Docker's seccomp profile applies: {ok:#?}"
    );
    assert!(ok.stdout.contains("1 packets received"), "{ok:#?}");

    let ctl = run(&mut docker(&docker_ping_args("runc")));
    assert_ne!(ctl.code, Some(0), "ping must fail under runc: {ctl:#?}");
    assert_eq!(status_fields(&ctl.stdout)["CapAmb"], "0000000000000000");

    // Output, stderr and exit codes as with runc, side by side. Docker's
    // client adds its own lines to stderr that depend on the host (e.g.
    // "WARNING: IPv4 forwarding is disabled" where net.ipv4.ip_forward is 0,
    // as on a fresh machine), so netshim's stderr is compared with runc's
    // from the same run rather than with a fixed string.
    let mut seen = Vec::new();
    for rt in ["runc", "netshim"] {
        let r = run(&mut docker(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            "netshim-busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 42",
        ]));
        assert_eq!(r.code, Some(42), "{rt}: {r:#?}");
        assert_eq!(r.stdout, "out\n", "{rt}");
        assert!(r.stderr.ends_with("err\n"), "{rt}: {r:#?}");
        seen.push(r.stderr);
    }
    assert_eq!(seen[1], seen[0], "netshim's stderr differs from runc's");

    // A detached container: exec (exit status, policy), stop, rm.
    let name = unique("dk");
    run(&mut docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        "netshim",
        "--user",
        "1000:1000",
        "netshim-busybox",
        "sleep",
        "1000",
    ]))
    .ok();
    let ex = run(&mut docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "grep CapAmb /proc/self/status; exit 3",
    ]));
    assert_eq!(ex.code, Some(3), "{ex:#?}");
    assert_eq!(status_fields(&ex.stdout)["CapAmb"], "0000000000002000");
    let ex = run(&mut docker(&[
        "exec",
        "-u",
        "0",
        &name,
        "sh",
        "-c",
        "grep CapAmb /proc/self/status",
    ]))
    .ok();
    assert_eq!(
        status_fields(&ex.stdout)["CapAmb"],
        "0000000000000000",
        "root processes are left alone"
    );
    let top = run(&mut docker(&["top", &name])).ok();
    assert!(top.stdout.contains("sleep 1000"), "{top:#?}");
    // sleep as PID 1 ignores SIGTERM: stop ends it with SIGKILL, as with runc.
    run(&mut docker(&["stop", "-t", "1", &name])).ok();
    let code = run(&mut docker(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}}",
        &name,
    ]))
    .ok();
    assert_eq!(code.stdout.trim(), "137");
    run(&mut docker(&["rm", &name])).ok();

    // A terminal (the shim's console socket) for run and exec.
    let t = run(&mut docker(&[
        "run",
        "--rm",
        "-t",
        "--runtime",
        "netshim",
        "netshim-busybox",
        "tty",
    ]))
    .ok();
    assert!(t.stdout.starts_with("/dev/pts/"), "{t:#?}");
    let name = unique("dkt");
    run(&mut docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        "netshim",
        "netshim-busybox",
        "sleep",
        "1000",
    ]))
    .ok();
    let t = run(&mut docker(&["exec", "-t", &name, "tty"]));
    let _ = run(&mut docker(&["rm", "-f", &name]));
    assert!(t.ok().stdout.starts_with("/dev/pts/"));
}

#[test]
fn rootful_docker_runtime_netshim() {
    check_docker(&|args| rootful_docker(args));
}

#[test]
fn rootless_docker_runtime_netshim() {
    require_docker();
    check_docker(&|args| {
        let mut all = vec!["/usr/bin/docker"];
        all.extend_from_slice(args);
        as_user(&all)
    });
}

/// `ctr run --null-io` gives the runtime /dev/null as the container's
/// stdio; writes to it must succeed, as under runc.
#[test]
fn null_io_containers_can_write_as_with_runc() {
    let ctd = Containerd::start("", false);
    let rootfs = busybox_rootfs(ctd.dir.path());
    let spec = non_root_spec(&rootfs, &["sh", "-c", "echo hello && echo oops >&2"], &[]);
    let spec = write_spec(ctd.dir.path(), &spec);
    for runtime in [netshim().display().to_string(), "/usr/sbin/runc".into()] {
        let r = run(Command::new("timeout").arg("60").args([
            "ctr",
            "--address",
            &ctd.address,
            "run",
            "--rm",
            "--null-io",
            "--config",
            &spec,
            "--runc-binary",
            &runtime,
            &unique("null"),
        ]));
        assert_eq!(r.code, Some(0), "{runtime}: {r:#?}");
    }
}
