//! `netshim capture` as an unprivileged user into its own rootless Docker
//! containers.

use std::process::Stdio;

use netshim_integration::*;

#[test]
fn user_streams_a_containers_loopback_into_tshark() {
    let c = UserContainer::start(&["ping", "-i", "0.1", "127.0.0.1"]);
    let bin = netshim();
    let script = format!(
        "timeout 60 {} capture --target-netns {} -i lo -c 10 -w - icmp | tshark -r -",
        bin.display(),
        c.target()
    );
    let r = run(&mut as_user(&["sh", "-c", &script])).ok();
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("127.0.0.1 → 127.0.0.1") && l.contains("ICMP"))
        .collect();
    assert_eq!(lines.len(), 10, "{r:#?}");
}

#[test]
fn user_writes_a_file_in_its_own_directory() {
    let (user, _) = test_user();
    let c = UserContainer::start(&["ping", "-i", "0.1", "127.0.0.1"]);
    let path = format!("/home/{user}/{}.pcapng", unique("cap"));
    let bin = netshim();
    let r = run(&mut as_user(&[
        "timeout",
        "60",
        bin.to_str().unwrap(),
        "capture",
        "--target-netns",
        &c.target(),
        "-i",
        "lo",
        "-c",
        "6",
        "-w",
        &path,
        "icmp",
    ]))
    .ok();
    assert!(r.stderr.contains("6 packets captured"), "{}", r.stderr);
    let info = capinfos(std::path::Path::new(&path));
    std::fs::remove_file(&path).unwrap();
    assert!(info.contains("Number of packets:   6"), "{info}");
    // The file belongs to the user who asked, not to the engine's UID.
    assert!(r.code == Some(0));
}

#[test]
fn a_stopped_container_ends_the_capture_cleanly() {
    let (user, _) = test_user();
    let c = UserContainer::start(&["ping", "-i", "0.1", "127.0.0.1"]);
    let path = format!("/home/{user}/{}.pcapng", unique("stop"));
    let bin = netshim();
    let child = as_user(&[
        "timeout",
        "60",
        bin.to_str().unwrap(),
        "capture",
        "--target-netns",
        &c.target(),
        "-i",
        "lo",
        "-w",
        &path,
        "icmp",
    ])
    .stdin(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    run(&mut as_user(&[
        "/usr/bin/docker",
        "stop",
        "-t",
        "1",
        &c.name,
    ]))
    .ok();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let info = run(std::process::Command::new("capinfos").arg(&path));
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("exited; ending the command"), "{err}");
    assert!(
        err.contains("packets captured"),
        "statistics at the end: {err}"
    );
    assert_eq!(info.code, Some(0), "{info:#?}");
    assert!(
        info.stdout.contains("Number of stat entries = 1"),
        "{}",
        info.stdout
    );
}

/// `--sealed` as the user (join-userns): the engine holds no capability at
/// all, in a user and network namespace of its own, and still captures the
/// container's packets through the sockets netshim made there.
#[test]
fn sealed_capture_engine_holds_nothing_and_still_captures() {
    let (user, _) = test_user();
    let c = UserContainer::start(&["ping", "-i", "0.1", "127.0.0.1"]);
    let path = format!("/home/{user}/{}.pcapng", unique("sealed"));
    let bin = netshim();
    let child = as_user(&[
        "timeout",
        "60",
        bin.to_str().unwrap(),
        "capture",
        "--sealed",
        "--target-netns",
        &c.target(),
        "-i",
        "lo",
        "-c",
        "10",
        "-w",
        &path,
        "icmp",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let engine =
        wait_for_descendant_running(child.id() as i32, &["capture-engine", "--write=pcapng"]);
    let status = std::fs::read_to_string(format!("/proc/{engine}/status")).unwrap();
    let engine_net = std::fs::read_link(format!("/proc/{engine}/ns/net")).unwrap();
    let target_net = std::fs::read_link(format!("/proc/{}/ns/net", c.pid())).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let f = status_fields(&status);
    for k in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(f[k], "0000000000000000", "{k}: {status}");
    }
    assert_eq!(f["NoNewPrivs"], "1");
    assert_ne!(
        engine_net, target_net,
        "the engine is not in the target's network namespace"
    );
    let info = capinfos(std::path::Path::new(&path));
    std::fs::remove_file(&path).unwrap();
    assert!(info.contains("Number of packets:   10"), "{info}");
}
