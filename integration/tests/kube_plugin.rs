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
//! - after each, no capture runs on the machine (both nodes' processes are
//!   host processes: /proc), and no debug container's log holds a byte.
//!
//! Without `KUBE_BIN_DIR` the test says it was SKIPPED, and why.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netshim_integration::kube::{Cluster, Options, NODE, NODE2};
use netshim_integration::plugin::*;
use netshim_integration::*;

/// The ephemeral containers of `ns/pod`: (name, its log).
fn debug_containers(c: &Cluster, ns: &str, pod: &str) -> Vec<(String, String)> {
    let r = run(&mut c.kubectl(&["-n", ns, "get", "pod", pod, "-o", "json"])).ok();
    let p: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<String> = p["spec"]["ephemeralContainers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    names
        .into_iter()
        .map(|n| {
            let l = run(&mut c.kubectl(&["-n", ns, "logs", pod, "-c", &n]));
            (n, l.stdout + &l.stderr)
        })
        .collect()
}

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

#[test]
fn kubectl_netshim_captures_pods_on_two_nodes_into_one_pcapng() {
    let opts = Options {
        install_args: vec!["--default".into()],
        second_node: true,
        ..Options::default()
    };
    let Some(c) = Cluster::start_with_or_skip("kube_plugin", opts) else {
        return;
    };
    c.namespace("default", Some("baseline"));
    c.namespace("locked", Some("restricted"));
    for n in [NODE, NODE2] {
        run(&mut c.kubectl(&["label", "node", n, "netshim.io/default-runtime=true"])).ok();
    }
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
    killed(&c, dir.path());
    assert_logs_empty(&c, &["demo-a", "demo-b"]);
    println!(
        "the plugin's checks took {:.1} s (cluster of two nodes up in {:.1} s)",
        t.elapsed().as_secs_f64(),
        c.started_in.as_secs_f64()
    );
}
