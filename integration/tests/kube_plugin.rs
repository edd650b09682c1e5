//! `kubectl netshim` (the plugin, kubectl/) on a real cluster of two nodes
//! (integration/src/kube.rs with a second kubelet and containerd), netshim
//! the default handler on both (`netshim install containerd --default`),
//! run as users run it: `kubectl netshim ...` with the plugin on PATH.
//!
//! - bad input (an unknown pod, a selector matching nothing, a bad filter,
//!   a kubeconfig without access) is refused with the reason, and creates
//!   nothing (no ephemeral container, no output file);
//! - a pod under `runc` and a pod in a `restricted` namespace are refused
//!   up front with the reason;
//! - `-l app=demo -w out.pcapng -c 200` over pods on both nodes gives one
//!   pcapng tshark reads whole, with 200 packets, every pod named in
//!   `frame.interface_name`, time stamps non-decreasing;
//! - the same live to `tshark -i -` (latency from a packet's time stamp
//!   to tshark printing it), ended by SIGINT to the plugin (Ctrl-C);
//! - `-a duration:5` ends by itself; a SIGKILLed plugin's captures end
//!   (the exec's stdin is their lifeline);
//! - a closed pipe (`| head -c`) stops every capture, and `-q` leaves
//!   only the closing line on stderr;
//! - `-G 2 -W 3` writes three files and stops, as tcpdump beside it
//!   does; each file is whole on its own;
//! - of three pods captured together, one deleted ends its interfaces
//!   with its capture's statistics, one whose capture is killed gets the
//!   merge's, and the third goes on;
//! - after each, no capture runs on the machine (both nodes' processes are
//!   host processes: /proc), and no debug container's log holds a byte.
//!
//! Without `KUBE_BIN_DIR` the test says it was SKIPPED, and why.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netshim_integration::kube::{Cluster, NODE, NODE2};
use netshim_integration::plugin::*;
use netshim_integration::*;

fn wait_captures(n: usize, secs: u64) -> Vec<i32> {
    let t = Instant::now();
    loop {
        let v = captures_running();
        if v.len() >= n {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{n} captures not running within {secs} s (running: {v:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// tshark on a file: (interface name, epoch time) of each packet, or its
/// complaint.
fn tshark_fields(path: &Path) -> Vec<(String, f64)> {
    let r = run(Command::new("tshark").arg("-r").arg(path).args([
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "frame.time_epoch",
    ]));
    // tshark's one remark when run as root is not about the file.
    let complaints: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Running as user"))
        .collect();
    assert!(
        r.code == Some(0) && complaints.is_empty(),
        "tshark does not read {} whole: {r:#?}",
        path.display()
    );
    r.stdout
        .lines()
        .map(|l| {
            let (i, t) = l.split_once('\t').unwrap();
            (i.to_string(), t.trim().parse().unwrap())
        })
        .collect()
}

fn check_merged(path: &Path, pods: &[&str]) -> usize {
    let f = tshark_fields(path);
    let names: BTreeSet<&str> = f.iter().map(|(i, _)| i.as_str()).collect();
    for p in pods {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("default/{p}/"))),
            "no interface of {p} in {names:?}"
        );
    }
    let out_of_order = f.windows(2).filter(|w| w[1].1 < w[0].1).count();
    assert_eq!(out_of_order, 0, "time stamps go back {out_of_order} times");
    println!(
        "{}: {} packets, interfaces {names:?}, time stamps non-decreasing",
        path.display(),
        f.len()
    );
    f.len()
}

fn assert_logs_empty(c: &Cluster, pods: &[&str]) {
    for p in pods {
        for (n, log) in debug_containers(c, "default", p) {
            assert!(
                log.is_empty(),
                "the log of {p}'s debug container {n}: {log:?}"
            );
        }
    }
}

/// Bad input: the reason, and nothing created.
fn bad_input_creates_nothing(c: &Cluster, dir: &Path) {
    let out = dir.join("bad.pcapng");
    let o = out.to_str().unwrap();
    let img = image_flag();
    let mallory = c.user_kubeconfig("mallory", &[]);
    let cases: Vec<(Vec<&str>, Option<&Path>, &str)> = vec![
        (
            vec!["capture", "nosuch", "-w", o, &img],
            None,
            "pod default/nosuch not found",
        ),
        (
            vec!["capture", "-l", "app=nothing", "-w", o, &img],
            None,
            "no pod matches -l app=nothing",
        ),
        (
            vec!["capture", "-l", "", "-w", o, &img],
            None,
            "the selector is empty",
        ),
        (
            vec!["capture", "-l", "app=demo", "-w", o, &img, "tcp", "port"],
            None,
            "invalid filter expression",
        ),
        (
            vec!["capture", "-l", "app=demo", "-w", o, &img],
            Some(&mallory),
            "forbidden",
        ),
    ];
    for (args, kc, want) in cases {
        let r = run(&mut plugin(c, kc, &args));
        println!(
            "kubectl netshim {args:?}: exit {:?}\n  {}",
            r.code,
            r.stderr.trim()
        );
        assert_eq!(r.code, Some(1), "{r:#?}");
        assert!(r.stderr.contains(want), "expected {want:?}: {r:#?}");
        assert!(!out.exists(), "{args:?} created the output");
    }
    for p in ["demo-a", "demo-b"] {
        assert!(
            debug_containers(c, "default", p).is_empty(),
            "bad input created a debug container in {p}"
        );
    }
}

/// A pod under runc and one in a restricted namespace: refused up front.
fn refusals(c: &Cluster, dir: &Path) {
    let out = dir.join("refused.pcapng");
    let o = out.to_str().unwrap();
    let img = image_flag();
    let r = run(&mut plugin(
        c,
        None,
        &["capture", "demo-runc", "-w", o, &img],
    ));
    println!("runc pod: {}", r.stderr.trim());
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stderr
            .contains("RuntimeClass runc (handler runc), not netshim"),
        "{r:#?}"
    );
    let r = run(&mut plugin(
        c,
        None,
        &["capture", "-n", "locked", "demo-r", "-w", o, &img],
    ));
    println!("restricted namespace: {}", r.stderr.trim());
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stderr.contains("enforces Pod Security \"restricted\""),
        "{r:#?}"
    );
    assert!(!out.exists());
    assert!(debug_containers(c, "default", "demo-runc").is_empty());
    assert!(debug_containers(c, "locked", "demo-r").is_empty());
    // doctor says the same, and that the demo pods can be captured.
    let r = run(&mut plugin(c, None, &["doctor", "-A", "-l", "app"]));
    println!("doctor:\n{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("default/demo-a (node netshim-node): can be captured"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("default/demo-b (node netshim-node-2): can be captured"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("default/demo-runc (node netshim-node): cannot be captured"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("locked/demo-r (node netshim-node): cannot be captured"),
        "{r:#?}"
    );
}

/// `-l app=demo -w out.pcapng -c 200`.
fn count_to_file(c: &Cluster, dir: &Path) {
    let out = dir.join("out.pcapng");
    let t = Instant::now();
    let r = run(&mut plugin(
        c,
        None,
        &[
            "capture",
            "-l",
            "app=demo",
            "-w",
            out.to_str().unwrap(),
            "-c",
            "200",
            &image_flag(),
            "--lifetime",
            "300",
        ],
    ));
    println!(
        "-c 200: exit {:?} in {:.1} s\n{}",
        r.code,
        t.elapsed().as_secs_f64(),
        r.stderr
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(check_merged(&out, &["demo-a", "demo-b"]), 200);
    assert!(
        r.stderr.contains("200 packets captured from 2 pods"),
        "{r:#?}"
    );
    let gone = wait_no_capture("-c 200", 20);
    println!(
        "-c 200: no capture running {:.1} s after the plugin exited",
        gone.as_secs_f64()
    );
}

/// Live to tshark, ended by SIGINT to the plugin; the latencies (s).
fn live_to_tshark(c: &Cluster, dir: &Path, packets: usize, window_ms: u32) -> Vec<f64> {
    let live = dir.join("live.pcapng");
    let script = format!(
        "kubectl netshim capture -l app=demo -w - {} --lifetime 300 --reorder-window {window_ms} | tee {} \
         | tshark -l -i - -T fields -e frame.time_epoch",
        image_flag(),
        live.display()
    );
    let mut sh = c.shell(&script);
    let path = format!(
        "{}:{}",
        plugin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = sh
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lat = Vec::new();
    while lat.len() < packets {
        let l = lines
            .next()
            .unwrap_or_else(|| panic!("the live stream ended after {} packets", lat.len()))
            .unwrap();
        lat.push(now() - l.trim().parse::<f64>().unwrap());
    }
    // Ctrl-C: SIGINT to the plugin only (tshark ends when its stream does).
    let plugin_pid = plugin_under(child.id() as i32);
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(plugin_pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    for l in lines.map_while(Result::ok) {
        if let Ok(ts) = l.trim().parse::<f64>() {
            lat.push(now() - ts);
        }
    }
    let st = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    println!(
        "live: ended {:.1} s after SIGINT, {st}\n{err}",
        t.elapsed().as_secs_f64()
    );
    assert!(err.contains("packets captured from 2 pods"), "{err}");
    let n = check_merged(&live, &["demo-a", "demo-b"]);
    assert_eq!(n, lat.len(), "tshark live and tshark on the file disagree");
    let gone = wait_no_capture("Ctrl-C", 20);
    println!(
        "Ctrl-C: no capture running {:.1} s after the plugin exited",
        gone.as_secs_f64()
    );
    lat
}

/// `-a duration:5`: ends by itself, whole.
fn duration(c: &Cluster, dir: &Path) {
    let out = dir.join("dur.pcapng");
    let t = Instant::now();
    let r = run(&mut plugin(
        c,
        None,
        &[
            "capture",
            "-l",
            "app=demo",
            "-w",
            out.to_str().unwrap(),
            "-a",
            "duration:5",
            &image_flag(),
            "--lifetime",
            "300",
        ],
    ));
    println!(
        "-a duration:5: exit {:?} in {:.1} s\n{}",
        r.code,
        t.elapsed().as_secs_f64(),
        r.stderr
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(check_merged(&out, &["demo-a", "demo-b"]) > 20);
    wait_no_capture("-a duration:5", 20);
}

/// A SIGKILLed plugin: its captures end (lifeline), nothing is left.
fn killed(c: &Cluster, dir: &Path) {
    let out = dir.join("killed.pcapng");
    let mut p = plugin(
        c,
        None,
        &[
            "capture",
            "-l",
            "app=demo",
            "-w",
            out.to_str().unwrap(),
            &image_flag(),
            "--lifetime",
            "300",
            "-q",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let pids = wait_captures(2, 90);
    std::thread::sleep(Duration::from_secs(2));
    let kubectl = p.id() as i32;
    let plugin_pid = plugin_under(kubectl);
    sigkill(plugin_pid);
    let _ = p.wait();
    let gone = wait_no_capture("a killed plugin", 60);
    println!(
        "killed plugin: its {} captures (host PIDs {pids:?}) were gone {:.1} s after SIGKILL",
        pids.len(),
        gone.as_secs_f64()
    );
}

/// tcpdump's `-G 2 -W 3` beside the plugin's: both write three files
/// named through strftime(3) and stop by themselves. Every file of the
/// plugin is whole on its own (its interfaces described in each), and
/// the files follow each other in time.
fn rotation_like_tcpdump(c: &Cluster, dir: &Path) {
    let rot = dir.join("rot");
    std::fs::create_dir(&rot).unwrap();
    let td = dir.join("td");
    std::fs::create_dir(&td).unwrap();
    // The host's loopback carries the cluster's own chatter.
    let mut tcpdump = Command::new("tcpdump")
        // -Z root: Debian's tcpdump drops to its own user before it
        // makes the next file, in a directory only root may write.
        .args(["-Z", "root", "-i", "lo", "-G", "2", "-W", "3", "-w"])
        .arg(td.join("lo-%H%M%S.pcap"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let pattern = rot.join("demo-%H%M%S.pcapng");
    let r = run(&mut plugin(
        c,
        None,
        &[
            "capture",
            "-l",
            "app=demo",
            "-w",
            pattern.to_str().unwrap(),
            "-G",
            "2",
            "-W",
            "3",
            &image_flag(),
            "--lifetime",
            "300",
        ],
    ));
    println!(
        "-G 2 -W 3: exit {:?} in {:.1} s\n{}",
        r.code,
        t.elapsed().as_secs_f64(),
        r.stderr
    );
    let td_status = tcpdump.wait().unwrap();
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(td_status.success(), "tcpdump -G 2 -W 3: {td_status}");
    let files = |d: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let (ours, theirs) = (files(&rot), files(&td));
    println!("plugin: {ours:?}\ntcpdump: {theirs:?}");
    assert_eq!(theirs.len(), 3, "tcpdump's files");
    assert_eq!(ours.len(), 3, "the plugin's files, as tcpdump's");
    let mut last = 0.0;
    for f in &ours {
        let fields = tshark_fields(f);
        assert!(!fields.is_empty(), "{} has no packet", f.display());
        check_merged(f, &["demo-a", "demo-b"]);
        assert!(
            fields[0].1 >= last,
            "{} starts before the previous file ends",
            f.display()
        );
        last = fields.last().unwrap().1;
    }
    assert!(r.stderr.contains("files written:"), "{r:#?}");
    assert!(r.stderr.contains("made the 3 files asked for"), "{r:#?}");
    wait_no_capture("-G 2 -W 3", 20);
}

/// The output's reader goes away (`| head -c`): every capture is
/// stopped, the plugin exits 0; with `-q` its stderr holds only the
/// closing line.
fn closed_pipe(c: &Cluster, dir: &Path) {
    let st = dir.join("pipe.status");
    let script = format!(
        "{{ kubectl netshim capture -l app=demo -w - {} --lifetime 300 -q 2>{err}; echo $? >{st}; }} \
         | head -c 20000 >/dev/null",
        image_flag(),
        err = dir.join("pipe.err").display(),
        st = st.display()
    );
    let path = format!(
        "{}:{}",
        plugin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t = Instant::now();
    let r = run(c.shell(&script).env("PATH", path));
    let err = std::fs::read_to_string(dir.join("pipe.err")).unwrap();
    let status = std::fs::read_to_string(&st).unwrap();
    println!(
        "| head -c 20000: plugin exit {} in {:.1} s\n{err}",
        status.trim(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(status.trim(), "0", "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "-q: one closing line: {err}");
    assert!(lines[0].contains("packets captured from 2 pods"), "{err}");
    let gone = wait_no_capture("a closed pipe", 20);
    println!(
        "closed pipe: no capture running {:.1} s after the plugin exited",
        gone.as_secs_f64()
    );
}

/// The interface statistics blocks of a pcapng file: (interface name,
/// option codes, comment).
fn statistics_blocks(path: &Path) -> Vec<(String, Vec<u16>, Option<String>)> {
    let b = std::fs::read(path).unwrap();
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let options = |start: usize, end: usize| {
        let mut v = Vec::new();
        let mut o = start;
        while o + 4 <= end && u16_at(o) != 0 {
            let len = u16_at(o + 2) as usize;
            v.push((u16_at(o), b[o + 4..o + 4 + len].to_vec()));
            o += 4 + len.div_ceil(4) * 4;
        }
        v
    };
    let (mut names, mut isbs) = (Vec::new(), Vec::new());
    let mut o = 0;
    while o + 12 <= b.len() {
        let (kind, len) = (u32_at(o), u32_at(o + 4));
        match kind {
            1 => {
                let opts = options(o + 16, o + len - 4);
                let name = opts.iter().find(|(c, _)| *c == 2).map(|(_, v)| v.clone());
                names.push(String::from_utf8_lossy(&name.unwrap_or_default()).into_owned());
            }
            5 => {
                let opts = options(o + 20, o + len - 4);
                let comment = opts
                    .iter()
                    .find(|(c, _)| *c == 1)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                let name = names[u32_at(o + 8)].clone();
                isbs.push((name, opts.iter().map(|(c, _)| *c).collect(), comment));
            }
            _ => {}
        }
        o += len;
    }
    isbs
}

/// Host PIDs of the captures running in `ns/pod` (its UID is in their
/// cgroup path: the kubelet's cgroupfs driver).
fn captures_of(c: &Cluster, ns: &str, pod: &str) -> Vec<i32> {
    let r = run(&mut c.kubectl(&[
        "-n",
        ns,
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.metadata.uid}",
    ]))
    .ok();
    let uid = r.stdout.trim().to_string();
    assert!(!uid.is_empty());
    captures_running()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                .is_ok_and(|cg| cg.contains(&uid) || cg.contains(&uid.replace('-', "_")))
        })
        .collect()
}

/// Three pods captured together: one is deleted (its debug container's
/// init stops its capture: the capture's own statistics), one's capture
/// is killed (as when its node is lost: the merge's statistics, saying
/// so), and the third goes on until Ctrl-C.
fn pod_goes_away(c: &Cluster, dir: &Path) {
    for (p, node) in [("gone-a", NODE), ("gone-b", NODE2), ("gone-c", NODE)] {
        apply(c, &demo_pod(p, "default", node, "gone", None));
    }
    for p in ["gone-a", "gone-b", "gone-c"] {
        c.wait_pod_ready("default", p, 120);
    }
    let out = dir.join("gone.pcapng");
    let err = std::fs::File::create(dir.join("gone.err")).unwrap();
    let mut p = plugin(
        c,
        None,
        &[
            "capture",
            "-l",
            "app=gone",
            "-w",
            out.to_str().unwrap(),
            &image_flag(),
            "--lifetime",
            "300",
        ],
    )
    .stdout(Stdio::null())
    .stderr(err)
    .spawn()
    .unwrap();
    wait_captures(3, 90);
    std::thread::sleep(Duration::from_secs(2));
    let killed_c = captures_of(c, "default", "gone-c");
    assert_eq!(killed_c.len(), 1, "gone-c's capture: {killed_c:?}");
    let t_del = now();
    run(&mut c.kubectl(&["delete", "pod", "gone-b", "--wait=false"])).ok();
    let t = Instant::now();
    while captures_running().len() > 2 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "gone-b's capture did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "gone-b deleted: its capture ended {:.1} s later",
        t.elapsed().as_secs_f64()
    );
    sigkill(killed_c[0]);
    let t_kill = now();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(captures_running().len(), 1, "gone-a's capture goes on");
    let plugin_pid = plugin_under(p.id() as i32);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(plugin_pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = p.wait().unwrap();
    let err = std::fs::read_to_string(dir.join("gone.err")).unwrap();
    println!("pod gone: {st}\n{err}");
    assert!(st.success(), "{err}");
    let f = tshark_fields(&out);
    for pod in ["gone-a", "gone-b", "gone-c"] {
        assert!(
            f.iter()
                .any(|(i, _)| i.starts_with(&format!("default/{pod}/"))),
            "no packet of {pod}"
        );
    }
    let after = f
        .iter()
        .filter(|(i, ts)| i.starts_with("default/gone-a/") && *ts > t_kill + 1.0)
        .count();
    assert!(after > 5, "gone-a: {after} packets after the others ended");
    assert!(
        !f.iter()
            .any(|(i, ts)| i.starts_with("default/gone-b/") && *ts > t_del + 5.0),
        "gone-b has packets long after its deletion"
    );
    let isbs = statistics_blocks(&out);
    println!("statistics: {isbs:#?}");
    for (i, codes, comment) in &isbs {
        let own = codes.contains(&4) && comment.is_none();
        if i.starts_with("default/gone-c/") {
            assert!(
                !own && comment
                    .as_deref()
                    .is_some_and(|c| c.contains("without its statistics")),
                "{i}"
            );
        } else {
            assert!(own, "{i}: its capture's own statistics");
        }
    }
    let named: BTreeSet<&str> = isbs.iter().map(|(i, _, _)| i.as_str()).collect();
    for pod in ["gone-a", "gone-b", "gone-c"] {
        assert!(
            named
                .iter()
                .any(|i| i.starts_with(&format!("default/{pod}/"))),
            "no statistics of {pod}"
        );
    }
    assert!(
        err.contains("default/gone-b: the capture ended: the pod"),
        "{err}"
    );
    assert!(err.contains("default/gone-c: the capture failed"), "{err}");
    assert!(
        err.contains("its capture was killed before its statistics"),
        "{err}"
    );
    wait_no_capture("a pod gone", 20);
    assert_logs_empty(c, &["gone-a", "gone-c"]);
}

#[test]
fn kubectl_netshim_captures_pods_on_two_nodes_into_one_pcapng() {
    let Some(c) = two_node_cluster_or_skip("kube_plugin") else {
        return;
    };
    c.namespace("locked", Some("restricted"));
    apply(
        &c,
        &serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "runc"}, "handler": "runc"}),
    );
    apply(&c, &demo_pod("demo-a", "default", NODE, "demo", None));
    apply(&c, &demo_pod("demo-b", "default", NODE2, "demo", None));
    apply(
        &c,
        &demo_pod("demo-runc", "default", NODE, "other", Some("runc")),
    );
    apply(&c, &demo_pod("demo-r", "locked", NODE, "other", None));
    for (ns, p) in [
        ("default", "demo-a"),
        ("default", "demo-b"),
        ("default", "demo-runc"),
        ("locked", "demo-r"),
    ] {
        c.wait_pod_ready(ns, p, 120);
    }
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    bad_input_creates_nothing(&c, dir.path());
    refusals(&c, dir.path());
    count_to_file(&c, dir.path());
    for window in [200, 20] {
        let mut lat = live_to_tshark(&c, dir.path(), 200, window);
        println!(
            "live latency over {} packets (packet time stamp to tshark, reorder window {window} ms): \
             median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            lat.len(),
            percentile(&mut lat, 0.5) * 1e3,
            percentile(&mut lat, 0.95) * 1e3,
            percentile(&mut lat, 1.0) * 1e3
        );
    }
    duration(&c, dir.path());
    rotation_like_tcpdump(&c, dir.path());
    closed_pipe(&c, dir.path());
    killed(&c, dir.path());
    pod_goes_away(&c, dir.path());
    assert_logs_empty(&c, &["demo-a", "demo-b"]);
    println!(
        "the plugin's checks took {:.1} s (cluster of two nodes up in {:.1} s)",
        t.elapsed().as_secs_f64(),
        c.started_in.as_secs_f64()
    );
}
