//! `netshim doctor` on this host, as root and as the unprivileged user, and
//! with user namespaces switched off (inside a user namespace of the test's,
//! whose own limit its owner may set).

use std::process::Command;

use netshim_integration::*;

fn doctor_json(cmd: &mut Command) -> (Option<i32>, serde_json::Value) {
    let r = run(cmd);
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:#?}"));
    (r.code, v)
}

fn finding<'a>(v: &'a serde_json::Value, check_prefix: &str) -> &'a serde_json::Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"].as_str().unwrap().starts_with(check_prefix))
        .unwrap_or_else(|| panic!("no finding {check_prefix:?} in {v:#}"))
}

#[test]
fn doctor_explains_this_host_in_sequence() {
    require_docker();
    // As root.
    let (code, v) = doctor_json(Command::new(netshim()).args(["doctor", "--json"]));
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["usable"], true);
    for c in [
        "NS_GET_USERNS",
        "ambient capabilities",
        "pidfd_open",
        "TPACKET_V3",
    ] {
        assert_eq!(finding(&v, c)["status"], "ok", "{c}: {v:#}");
    }
    // As the user, with its rootless Docker running.
    let bin = netshim();
    let (code, v) = doctor_json(&mut as_user(&[bin.to_str().unwrap(), "doctor", "--json"]));
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(finding(&v, "docker (rootless)")["status"], "ok", "{v:#}");
    assert_eq!(finding(&v, "/etc/subuid range")["status"], "ok", "{v:#}");
    assert!(
        v["summary"].as_str().unwrap().contains("rootless engine"),
        "{v:#}"
    );

    // With user namespaces switched off. This sandbox refuses writes to the
    // host's /proc/sys/user/max_user_namespaces even for root, but the user.*
    // limits are per user namespace and its owner may set them: switch
    // creation off inside a user namespace made for the test and run the
    // doctor there.
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} doctor --json",
        bin.display()
    );
    let (_, v) = doctor_json(Command::new("unshare").args([
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        &script,
    ]));
    let f = finding(&v, "creating one without privilege");
    assert_ne!(f["status"], "ok", "{v:#}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains("user.max_user_namespaces = 0"),
        "{v:#}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("sysctl -w user.max_user_namespaces"),
        "{v:#}"
    );
    assert_eq!(finding(&v, "NS_GET_USERNS")["status"], "ok", "{v:#}");
    // Outside that namespace nothing changed: the user can still make one.
    let (_, v) = doctor_json(&mut as_user(&[bin.to_str().unwrap(), "doctor", "--json"]));
    assert_eq!(
        finding(&v, "creating one without privilege")["status"],
        "ok"
    );
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let r = run(Command::new(netshim()).args(["completions", "bash"])).ok();
    assert!(
        r.stdout.contains("netshim") && r.stdout.contains("--target-netns"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    let r = run(Command::new(netshim()).args(["completions", "man"])).ok();
    assert!(
        r.stdout.contains(".TH netshim"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    let r = run(Command::new(netshim()).args(["completions", "tcsh"]));
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("choose bash, zsh, fish or man"),
        "{}",
        r.stderr
    );
}
