//! `netshim install docker`: against the harness's two Docker daemons (the
//! private rootful one as root, the test user's rootless one as that
//! user). netshim finds each daemon's daemon.json from the daemon itself
//! (its `--config-file`), registers a runtime there, makes the daemon
//! reload, and a container runs with it; `--uninstall` leaves the file as
//! it was, byte for byte, and the daemon without the runtime.
//! (`netshim install containerd` is tested with the CRI tests, in
//! oci_cri.rs, whose containerd gets its handler that way.)

use std::process::Command;

use netshim_integration::*;

const NAME: &str = "netshim-installed";

/// Runs the whole round trip against one daemon; `cmd` makes a command
/// run as the daemon's user, `docker` a docker CLI command for the daemon.
fn round_trip(
    what: &str,
    config: &str,
    cmd: &dyn Fn(&[&str]) -> Command,
    docker: &dyn Fn(&[&str]) -> Command,
    install: &[&str],
) {
    let before = std::fs::read(config).unwrap();
    let bin = std::fs::canonicalize(netshim())
        .unwrap()
        .display()
        .to_string();
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![bin.clone(), "install".into(), "docker".into()];
        v.extend(install.iter().map(|s| s.to_string()));
        v.extend(["--name".into(), NAME.into(), "--binary".into(), bin.clone()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let ns = |extra: &[&str]| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        run(&mut cmd(&args))
    };
    let runtimes = || {
        run(&mut docker(&["info", "--format", "{{json .Runtimes}}"]))
            .ok()
            .stdout
    };
    assert!(!runtimes().contains(NAME), "{what}: not there before");

    // A dry run shows the change and writes nothing.
    let dry = ns(&["--dry-run"]).ok();
    assert!(
        dry.stdout.contains(&format!("+    \"{NAME}\": {{")),
        "{what}: {dry:#?}"
    );
    assert_eq!(
        std::fs::read(config).unwrap(),
        before,
        "{what}: a dry run wrote"
    );

    let inst = ns(&[]).ok();
    println!("{what}: netshim install docker said:\n{}", inst.stderr);
    assert!(
        inst.stderr
            .contains(&format!("runs {bin} for --runtime {NAME}")),
        "{what}: {inst:#?}"
    );
    assert!(
        inst.stderr.contains(config),
        "{what}: the daemon's own --config-file: {inst:#?}"
    );
    let r = runtimes();
    assert!(
        r.contains(NAME) && r.contains(&bin),
        "{what}: docker info: {r}"
    );
    // The rest of the file is kept: the harness's own runtime is there.
    let after = std::fs::read_to_string(config).unwrap();
    assert!(after.contains("\"netshim\""), "{what}: {after}");
    let again = ns(&[]).ok();
    assert!(
        again.stderr.contains("nothing to change"),
        "{what}: {again:#?}"
    );

    // A container under the installed runtime: a non-root process with
    // ambient CAP_NET_RAW, as under the harness's registration.
    let c = run(&mut docker(&[
        "run",
        "--rm",
        "--runtime",
        NAME,
        "--network",
        "none",
        "--user",
        "1000:1000",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_RAW",
        "--security-opt",
        "no-new-privileges",
        "netshim-busybox",
        "grep",
        "-E",
        "^Cap(Amb|Eff)",
        "/proc/self/status",
    ]));
    assert_eq!(c.code, Some(0), "{what}: {c:#?}");
    let f = status_fields(&c.stdout);
    assert_eq!(f["CapAmb"], "0000000000002000", "{what}: {c:#?}");
    assert_eq!(f["CapEff"], "0000000000002000", "{what}: {c:#?}");

    let un = ns(&["--uninstall"]).ok();
    println!(
        "{what}: netshim install docker --uninstall said:\n{}",
        un.stderr
    );
    assert!(un.stderr.contains("back as it was"), "{what}: {un:#?}");
    assert!(
        un.stderr
            .contains(&format!("has no runtime {NAME} any more")),
        "{what}: {un:#?}"
    );
    let now = std::fs::read(config).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&now),
        String::from_utf8_lossy(&before),
        "{what}: the round trip changed {config}"
    );
    println!(
        "{what}: {config} after install and uninstall: identical ({} bytes)",
        now.len()
    );
    assert!(!std::path::Path::new(&format!("{config}.netshim-backup")).exists());
    assert!(!runtimes().contains(NAME), "{what}: still loaded");
    let gone = run(&mut docker(&[
        "run",
        "--rm",
        "--runtime",
        NAME,
        "netshim-busybox",
        "true",
    ]));
    assert_ne!(gone.code, Some(0), "{what}: {gone:#?}");
    assert!(gone.stderr.contains("runtime"), "{what}: {gone:#?}");
}

#[test]
fn netshim_install_docker_round_trips_on_rootful_and_rootless_docker() {
    require_docker();
    let host = std::env::var("NETSHIM_TEST_ROOTFUL_DOCKER").unwrap();
    let rootful = std::env::var("NETSHIM_TEST_ROOTFUL_DAEMON_JSON")
        .expect("NETSHIM_TEST_ROOTFUL_DAEMON_JSON is not set: run the suite with `sudo ./integration/run.sh`");
    let rootless = std::env::var("NETSHIM_TEST_ROOTLESS_DAEMON_JSON")
        .expect("NETSHIM_TEST_ROOTLESS_DAEMON_JSON is not set: run the suite with `sudo ./integration/run.sh`");
    round_trip(
        "rootful",
        &rootful,
        &|args| {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        },
        &|args| rootful_docker(args),
        &["--host", &host],
    );
    round_trip(
        "rootless",
        &rootless,
        &|args| as_user(args),
        &|args| {
            let mut all = vec!["/usr/bin/docker"];
            all.extend_from_slice(args);
            as_user(&all)
        },
        &["--rootless"],
    );
}
