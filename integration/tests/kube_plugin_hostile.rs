//! `kubectl netshim capture` against a hostile pod, on the real cluster of
//! integration/src/kube.rs (netshim the default handler).
//!
//! The pod's app runs as UID 65534 with its bounding set narrowed to
//! NET_RAW and no privilege escalation: Pod Security `baseline` admits it,
//! and netshim's narrowed-bounding rule gives it NET_RAW ambient — the very
//! credentials of a debug container running as 65534. Such an app shares
//! its PID namespace with the debug container, so with equal credentials
//! it could signal the capture, open `/proc/PID/fd/1` of the capture (the
//! exec's stdout, the pod's stream: forged packets) and `/proc/PID/fd/2`
//! (the plugin's stderr: terminal escape sequences on the user's terminal).
//! The app here tries all three, and says in its log what it managed; the
//! test asserts that it managed none, that the merged file holds no forged
//! packet, and that the plugin's stderr holds no control character. With
//! UID 65534 for the debug container (before kubectl/src/debug.rs's
//! `debug_id`), the app signalled every one of its processes: it cut the
//! capture's lifeline, and the capture outlived a killed plugin; it
//! stopped the capture, and Ctrl-C took 20 s and left it behind. (The
//! exec's pipes are root's, so their `/proc/PID/fd` stayed closed to it.)
//!
//! Also, each a check that failed before its fix in kubectl/src:
//! - a pod with NET_ADMIN names an interface with terminal escapes: they
//!   reach the user's stderr as text (`\u{1b}`), not as escapes;
//! - a setup that fails (an image that cannot be pulled) or is interrupted
//!   (Ctrl-C while the pull hangs) leaves an earlier `-w` file as it was,
//!   and no empty one;
//! - `-w` on a full file system: exit 1 with the reason, every capture
//!   stopped, the file whole, and the closing line says how many packets
//!   it holds;
//! - `-W 0`, a `-C` past u64 bytes and `-w DIR` are refused before any pod
//!   is touched.
//!
//! Without `KUBE_BIN_DIR` the test says it was SKIPPED, and why.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use netshim_integration::kube::{Cluster, Options, APP_IMAGE, NODE};
use netshim_integration::plugin::*;
use netshim_integration::*;

/// The payload of the packet the app forges (24 bytes).
const FORGED: &str = "FORGED-BY-A-HOSTILE-APP!";

/// The hostile app: traffic on its loopback, and for every `netshim`
/// process it sees (the capture in the debug container, which shares its
/// PID namespace), tries to signal it (`kill -0`), to write a line with
/// terminal escapes into its stderr and a forged EPB into its stdout. Its
/// log says what worked: `HOSTILE signal|stderr|stdout PID ok|denied`.
/// With `cut` in /tmp/mode it SIGKILLs the capture's lifeline (the
/// script's child that watches the exec's stdin); with `stop`, it
/// SIGSTOPs the capture.
const HOSTILE: &str = r#"mkdir -p /tmp/www && echo hello > /tmp/www/index.html
httpd -p 127.0.0.1:8080 -h /tmp/www
echo "HOSTILE self $(grep -E '^(Uid|CapEff|CapAmb)' /proc/self/status | tr -s '\t\n' '  ')"
le() { v=$1; for s in 0 8 16 24; do printf "\\$(printf %03o $(( (v >> s) & 255 )))"; done; }
while :; do
  wget -q -O /dev/null http://127.0.0.1:8080/
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ -e /tmp/seen-$p ] && continue
    cmd=$(tr '\0' ' ' <$d/cmdline 2>/dev/null)
    case "$(cat $d/comm 2>/dev/null)/$cmd" in
      netshim/*) what=capture ;;
      "sh/sh -c exec 3<&0"*) what=script ;;
      "sh/sh -c ours()"*) what=init ;;
      *) continue ;;
    esac
    touch /tmp/seen-$p
    echo "HOSTILE found $what $p $(grep -E '^(PPid|Uid|CapPrm)' $d/status | tr -s '\t\n' '  ') fds $(ls -l $d/fd 2>&1 | tr -s '\n' ' ')"
    if kill -0 $p 2>/dev/null; then echo "HOSTILE signal $what $p ok"; else echo "HOSTILE signal $what $p denied"; fi
    if [ $what = init ]; then
      if echo HOSTILE-IN-THE-LOG 2>/dev/null >$d/fd/1; then
        echo "HOSTILE log $what $p ok"; else echo "HOSTILE log $what $p denied"; fi
      continue
    fi
    if printf '\033]0;HOSTILE-TITLE\007\033[31mHOSTILE-LINE\033[0m\n' 2>/dev/null >$d/fd/2; then
      echo "HOSTILE stderr $what $p ok"; else echo "HOSTILE stderr $what $p denied"; fi
    ns=$(( $(date +%s) * 1000000000 ))
    { le 6; le 56; le 0; le $((ns >> 32)); le $((ns & 4294967295)); le 24; le 24; printf '%s' "$FORGED"; le 56; } >/tmp/blk
    if cat /tmp/blk 2>/dev/null >$d/fd/1; then echo "HOSTILE stdout $what $p ok"; else echo "HOSTILE stdout $what $p denied"; fi
  done
  mode=$(cat /tmp/mode 2>/dev/null)
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ -n "$mode" ] && [ ! -e /tmp/$mode-$p ] || continue
    cmd=$(tr '\0' ' ' <$d/cmdline 2>/dev/null)
    ppid=$(awk '/^PPid/{print $2}' $d/status 2>/dev/null)
    case "$mode/$(cat $d/comm 2>/dev/null)/$cmd" in
      stop/netshim/*) sig=STOP ;;
      cut/sh/"sh -c exec 3<&0"*) [ "$ppid" != 0 ] || continue; sig=KILL ;;
      *) continue ;;
    esac
    touch /tmp/$mode-$p
    if kill -$sig $p 2>/dev/null; then echo "HOSTILE $mode $p ok"; else echo "HOSTILE $mode $p denied"; fi
  done
  sleep 0.1
done"#;

fn hostile_pod(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "hostile"}},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": APP_IMAGE,
                "command": ["sh", "-c", HOSTILE],
                "env": [{"name": "FORGED", "value": FORGED}],
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": DROP_ALL_BUT_NET_RAW}}
            }]
        }
    })
}

/// The app's own account of what it managed.
fn hostile_log(c: &Cluster, pod: &str) -> Vec<String> {
    let r = run(&mut c.kubectl(&["logs", pod, "-c", "app"]));
    r.stdout
        .lines()
        .filter(|l| l.starts_with("HOSTILE"))
        .map(String::from)
        .collect()
}

/// Packets of the merged file whose bytes hold the forged payload: their
/// interface names.
fn forged_packets(path: &Path) -> Vec<String> {
    let r = run(Command::new("tshark").arg("-r").arg(path).args([
        "-Y",
        &format!("frame contains \"{FORGED}\""),
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
    ]));
    r.stdout.lines().map(String::from).collect()
}

/// Waits until no capture runs; the ones still running after `secs`.
fn captures_left(secs: u64) -> Vec<i32> {
    let t = Instant::now();
    loop {
        let v = captures_running();
        if v.is_empty() || t.elapsed() > Duration::from_secs(secs) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ends what a failed check left (the test's own captures, by host PID).
fn end_captures(left: &[i32]) {
    for p in left {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
}

/// Tells the app what to do next (`cut`, `stop`, or nothing).
fn set_mode(c: &Cluster, mode: &str) {
    let r = run(&mut c.kubectl(&[
        "exec",
        "hostile",
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        &format!("echo {mode} > /tmp/mode"),
    ]));
    assert_eq!(r.code, Some(0), "{r:#?}");
}

/// Waits until the app's log has a line starting with `prefix`.
fn wait_log(c: &Cluster, prefix: &str, secs: u64) -> Option<String> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if let Some(l) = hostile_log(c, "hostile")
            .into_iter()
            .find(|l| l.starts_with(prefix))
        {
            return Some(l);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    None
}

/// The plugin on the hostile pod, in the background, its stderr in
/// `NAME.err`.
fn spawn_plugin(c: &Cluster, dir: &Path, name: &str) -> std::process::Child {
    let out = dir.join(format!("{name}.pcapng"));
    let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
    let img = image_flag();
    plugin(
        c,
        None,
        &[
            "capture",
            "hostile",
            "-w",
            out.to_str().unwrap(),
            &img,
            "--lifetime",
            "120",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(err)
    .spawn()
    .unwrap()
}

/// The pod's app has the debug container's credentials but reaches none
/// of its processes; nothing of it reaches the user's terminal. The
/// problems found.
fn same_uid_app_reaches_nothing(c: &Cluster, dir: &Path) -> Vec<String> {
    let out = dir.join("hostile.pcapng");
    let img = image_flag();
    let o = out.to_str().unwrap();
    let r = run(&mut plugin(
        c,
        None,
        &[
            "capture",
            "hostile",
            "-w",
            o,
            "-a",
            "duration:8",
            &img,
            "--lifetime",
            "120",
        ],
    ));
    let log = hostile_log(c, "hostile");
    println!(
        "plugin: exit {:?}\nstderr (escaped): {:?}\napp's log:\n  {}",
        r.code,
        r.stderr,
        log.join("\n  ")
    );
    assert!(
        log.iter().any(|l| l.starts_with("HOSTILE found capture")),
        "the app never saw the capture: the test proves nothing ({log:?})"
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    let mut problems = Vec::new();
    let forged = forged_packets(&out);
    if !forged.is_empty() {
        problems.push(format!("forged packets in the merged file on {forged:?}"));
    }
    let logs = debug_containers(c, "default", "hostile");
    if logs.iter().any(|(_, l)| !l.is_empty()) {
        problems.push(format!("the debug containers' logs: {logs:?}"));
    }
    let reached: Vec<&String> = log.iter().filter(|l| l.ends_with(" ok")).collect();
    if !reached.is_empty() {
        problems.push(format!(
            "the app reached the debug container's processes: {reached:?}"
        ));
    }
    let controls: Vec<char> = r
        .stderr
        .chars()
        .filter(|ch| ch.is_control() && *ch != '\n' && *ch != '\t')
        .collect();
    if !controls.is_empty() {
        problems.push(format!(
            "control characters on the plugin's stderr: {controls:?}"
        ));
    }
    problems
}

/// The app acts on its capture (`mode`: `cut` SIGKILLs the capture's
/// lifeline, `stop` SIGSTOPs the capture), then the plugin gets `sig`
/// (SIGKILL: killed; SIGINT: Ctrl-C): the plugin ends in its bounds (5 s),
/// and the capture does not outlive it.
fn disturbed(c: &Cluster, dir: &Path, mode: &str, sig: Signal) -> Vec<String> {
    set_mode(c, mode);
    let mut child = spawn_plugin(c, dir, mode);
    let seen = wait_log(c, &format!("HOSTILE {mode}"), 30);
    std::thread::sleep(Duration::from_secs(1));
    let pid = plugin_under(child.id() as i32);
    let t = Instant::now();
    kill(Pid::from_raw(pid), sig).unwrap();
    let st = child.wait().unwrap();
    let took = t.elapsed();
    let left = captures_left(20);
    let err = std::fs::read_to_string(dir.join(format!("{mode}.err"))).unwrap();
    println!(
        "{mode}: the app: {seen:?}; the plugin ended ({st}) {:.1} s after {sig}; \
         captures running 20 s later: {left:?}\n{err}",
        took.as_secs_f64()
    );
    end_captures(&left);
    set_mode(c, "");
    let mut problems = Vec::new();
    if seen.as_deref().is_some_and(|l| l.ends_with(" ok")) {
        problems.push(format!("the app reached its capture: {seen:?}"));
    }
    if took > Duration::from_secs(5) {
        problems.push(format!(
            "{mode}: the plugin took {:.1} s to end after {sig}",
            took.as_secs_f64()
        ));
    }
    if !left.is_empty() {
        problems.push(format!(
            "{mode}: captures {left:?} outlived the plugin ({sig}) by 20 s"
        ));
    }
    problems
}

/// A pod that holds NET_ADMIN (a namespace at Pod Security `privileged`:
/// a CNI helper, a VPN, a mesh's init) names an interface of its network
/// namespace with terminal escapes (Linux refuses only '/', ':' and
/// white space in a name) and sends ARP on it.
fn escaping_pod(name: &str, ns: &str) -> serde_json::Value {
    let script = r#"n=$(printf 'x\033]0;PWN\007\033[2J')
ip link add name "$n" type veth
ip link set "$n" up && ip link set veth0 up && ip addr add 198.18.99.1/24 dev "$n"
ip -o link | grep -q PWN && echo "HOSTILE interface made"
while :; do arping -c 1 -w 1 -I "$n" 198.18.99.2 >/dev/null 2>&1; done"#;
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app", "image": APP_IMAGE,
                "command": ["sh", "-c", script],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}
            }]
        }
    })
}

/// The escape sequences in the pod's interface name reach the user's
/// terminal as text, never as escapes.
fn interface_names_are_shown_as_text(c: &Cluster, dir: &Path) -> Vec<String> {
    let out = dir.join("escapes.pcapng");
    let img = image_flag();
    let r = run(&mut plugin(
        c,
        None,
        &[
            "capture",
            "-n",
            "open",
            "escapes",
            "-w",
            out.to_str().unwrap(),
            "-a",
            "duration:4",
            &img,
            "--lifetime",
            "60",
        ],
    ));
    let names = run(Command::new("tshark").arg("-r").arg(&out).args([
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
    ]));
    let names: std::collections::BTreeSet<String> =
        names.stdout.lines().map(|l| format!("{l:?}")).collect();
    println!(
        "escapes: plugin exit {:?}\nstderr (escaped): {:?}\ninterface names in the merged file: {names:?}",
        r.code, r.stderr
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        names.iter().any(|n| n.contains("PWN")),
        "no packet on the pod's interface named with escapes: the check proves nothing"
    );
    let controls: Vec<char> = r
        .stderr
        .chars()
        .filter(|ch| ch.is_control() && *ch != '\n')
        .collect();
    let mut problems = Vec::new();
    if !controls.is_empty() {
        problems.push(format!(
            "the pod's interface name put control characters on the plugin's stderr: {controls:?}"
        ));
    } else if !r.stderr.contains("x\\u{1b}]0;PWN\\u{7}") {
        problems.push(format!(
            "the pod's interface is not named on stderr: {}",
            r.stderr
        ));
    }
    problems
}

/// A setup that fails (the debug container's image cannot be pulled)
/// leaves the file of `-w` as it was: an earlier capture of that name is
/// not lost, and no empty file is made.
fn failed_setup_keeps_the_output(c: &Cluster, dir: &Path) -> Vec<String> {
    let old = dir.join("earlier.pcapng");
    std::fs::write(&old, "AN EARLIER CAPTURE").unwrap();
    let new = dir.join("never.pcapng");
    let mut problems = Vec::new();
    for out in [&old, &new] {
        let r = run(&mut plugin(
            c,
            None,
            &[
                "capture",
                "hostile",
                "-w",
                out.to_str().unwrap(),
                // Refused at once: nothing listens on port 9.
                "--image=127.0.0.1:9/netshim:none",
            ],
        ));
        println!(
            "unpullable image, -w {}: exit {:?}\n{}",
            out.display(),
            r.code,
            r.stderr
        );
        assert_eq!(r.code, Some(1), "{r:#?}");
        assert!(r.stderr.contains("does not start"), "{r:#?}");
    }
    let kept = std::fs::read_to_string(&old).unwrap_or_default();
    if kept != "AN EARLIER CAPTURE" {
        problems.push(format!(
            "a failed setup replaced the earlier file of -w with {} bytes",
            kept.len()
        ));
    }
    if new.exists() {
        problems.push(format!(
            "a failed setup left an empty -w file ({} bytes)",
            std::fs::metadata(&new).unwrap().len()
        ));
    }
    problems
}

/// Ctrl-C while the debug container is still being made (its image pull
/// hangs on a port that accepts and never answers): the plugin ends at
/// once and leaves no output file.
fn interrupted_setup_leaves_no_file(c: &Cluster, dir: &Path) -> Vec<String> {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let out = dir.join("interrupted.pcapng");
    let err = std::fs::File::create(dir.join("interrupted.err")).unwrap();
    let before = debug_containers(c, "default", "hostile").len();
    let mut child = plugin(
        c,
        None,
        &[
            "capture",
            "hostile",
            "-w",
            out.to_str().unwrap(),
            &format!("--image=127.0.0.1:{port}/netshim:hangs"),
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(err)
    .spawn()
    .unwrap();
    // Until the pull has begun: the pod has a debug container more.
    let t = Instant::now();
    while debug_containers(c, "default", "hostile").len() == before {
        assert!(t.elapsed() < Duration::from_secs(30), "no debug container");
        std::thread::sleep(Duration::from_millis(300));
    }
    let pid = plugin_under(child.id() as i32);
    let t = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
    let st = child.wait().unwrap();
    let err = std::fs::read_to_string(dir.join("interrupted.err")).unwrap();
    println!(
        "Ctrl-C during the setup: {st} after {:.1} s\n{err}",
        t.elapsed().as_secs_f64()
    );
    drop(silent);
    let mut problems = Vec::new();
    if out.exists() {
        problems.push(format!(
            "Ctrl-C during the setup left the -w file ({} bytes)",
            std::fs::metadata(&out).unwrap().len()
        ));
    }
    if t.elapsed() > Duration::from_secs(5) {
        problems.push(format!(
            "Ctrl-C during the setup took {:.1} s",
            t.elapsed().as_secs_f64()
        ));
    }
    problems
}

/// `-w` on a full file system (a 64 KiB tmpfs): the plugin says so, stops
/// every capture, and the file holds whole blocks (tshark reads it).
fn full_disk(c: &Cluster, dir: &Path) -> Vec<String> {
    let small = dir.join("small");
    std::fs::create_dir(&small).unwrap();
    let m = run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "netshim-test"])
        .arg(&small));
    assert_eq!(m.code, Some(0), "{m:#?}");
    let out = small.join("full.pcapng");
    let t = Instant::now();
    let r = run(&mut plugin(
        c,
        None,
        &[
            "capture",
            "hostile",
            "-w",
            out.to_str().unwrap(),
            "-a",
            "duration:30",
            &image_flag(),
            "--lifetime",
            "60",
        ],
    ));
    let took = t.elapsed();
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let ts = run(Command::new("tshark").arg("-r").arg(&out).args([
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]));
    let read = ts.stdout.lines().count();
    let complaints: Vec<&str> = ts
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Running as user"))
        .collect();
    println!(
        "full disk: exit {:?} after {:.1} s; {size} bytes; tshark read {read} packets, said {complaints:?}\n{}",
        r.code,
        took.as_secs_f64(),
        r.stderr
    );
    let left = captures_left(20);
    end_captures(&left);
    run(Command::new("umount").arg(&small));
    let mut problems = Vec::new();
    if r.code != Some(1) || !r.stderr.to_lowercase().contains("no space") {
        problems.push(format!(
            "a full disk: exit {:?}, not said: {}",
            r.code, r.stderr
        ));
    }
    if !complaints.is_empty() || read == 0 {
        problems.push(format!(
            "a full disk left a file tshark does not read whole: {complaints:?}, {read} packets"
        ));
    }
    // The closing line says how many packets the file holds, as tshark
    // counts them (the merge wrote more before the disk filled).
    if !r.stderr.contains(&format!(" {read} in the file")) {
        problems.push(format!(
            "a full disk: the closing counts do not say the file holds {read} packets: {}",
            r.stderr
        ));
    }
    if took > Duration::from_secs(25) {
        problems.push(format!(
            "a full disk did not stop the capture: {:.1} s",
            took.as_secs_f64()
        ));
    }
    if !left.is_empty() {
        problems.push(format!(
            "captures {left:?} outlived the plugin after a full disk"
        ));
    }
    problems
}

/// Output flags that cannot work (`-W 0`: a ring of no file; `-C` past
/// what a u64 of bytes holds; `-w` naming a directory) are refused with
/// the reason before any pod is touched.
fn bad_output_creates_nothing(c: &Cluster, dir: &Path) -> Vec<String> {
    let base = dir.join("ring");
    let b = base.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let mut problems = Vec::new();
    for (flags, want) in [
        (vec!["-w", b, "-C", "1", "-W", "0"], "-W 0"),
        (
            vec!["-w", b, "-C", "18446744073709552", "-W", "2"],
            "-C 18446744073709552",
        ),
        (vec!["-w", d], "is a directory"),
    ] {
        let before = debug_containers(c, "default", "hostile").len();
        let img = image_flag();
        let mut args = vec!["capture", "hostile", &img, "-c", "50"];
        args.extend(&flags);
        let r = run(&mut plugin(c, None, &args));
        let after = debug_containers(c, "default", "hostile").len();
        println!(
            "{flags:?}: exit {:?}, debug containers {before} -> {after}\n{}",
            r.code, r.stderr
        );
        if r.code != Some(1) || !r.stderr.contains(want) || r.stderr.contains("panicked") {
            problems.push(format!(
                "{flags:?}: exit {:?}, not refused with the reason: {}",
                r.code, r.stderr
            ));
        }
        if after != before {
            problems.push(format!("{flags:?} created a debug container"));
        }
    }
    problems
}

#[test]
fn kubectl_netshim_withstands_a_hostile_pod() {
    let opts = Options {
        install_args: vec!["--default".into()],
        ..Options::default()
    };
    let Some(c) = Cluster::start_with_or_skip("kube_plugin_hostile", opts) else {
        return;
    };
    c.namespace("default", Some("baseline"));
    run(&mut c.kubectl(&["label", "node", NODE, "netshim.io/default-runtime=true"])).ok();
    apply(&c, &hostile_pod("hostile"));
    c.wait_pod_ready("default", "hostile", 120);
    let dir = tempfile::tempdir().unwrap();
    c.namespace("open", Some("privileged"));
    apply(&c, &escaping_pod("escapes", "open"));
    c.wait_pod_ready("open", "escapes", 120);
    let mut problems = interface_names_are_shown_as_text(&c, dir.path());
    problems.extend(same_uid_app_reaches_nothing(&c, dir.path()));
    problems.extend(disturbed(&c, dir.path(), "cut", Signal::SIGKILL));
    problems.extend(disturbed(&c, dir.path(), "stop", Signal::SIGINT));
    problems.extend(failed_setup_keeps_the_output(&c, dir.path()));
    problems.extend(interrupted_setup_leaves_no_file(&c, dir.path()));
    problems.extend(full_disk(&c, dir.path()));
    problems.extend(bad_output_creates_nothing(&c, dir.path()));
    let left = captures_left(20);
    end_captures(&left);
    assert!(left.is_empty(), "captures still running: {left:?}");
    assert!(
        problems.is_empty(),
        "hostile pods:\n  {}",
        problems.join("\n  ")
    );
}
