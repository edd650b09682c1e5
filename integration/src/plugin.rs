//! `kubectl netshim` (the plugin, kubectl/) as the real-cluster tests run
//! it: on PATH, through kubectl, against a [`Cluster`]; and what they check
//! on the machine around it (the captures it started, its process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::kube::{Cluster, Options, APP_IMAGE, NETSHIM_IMAGE, NODE, NODE2};
use crate::{descends_from, netshim, run};

/// The plugin's directory, for PATH: `NETSHIM_PLUGIN_DIR` if set (a
/// release build, for a benchmark), else the directory of the netshim
/// under test (target/debug).
pub fn plugin_dir() -> PathBuf {
    let dir = match std::env::var_os("NETSHIM_PLUGIN_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => netshim().parent().unwrap().to_path_buf(),
    };
    assert!(
        dir.join("kubectl-netshim").exists(),
        "{} has no kubectl-netshim: build the workspace (`cargo build --workspace`; integration/run.sh does)",
        dir.display()
    );
    dir
}

/// The plugin's cluster: two nodes, netshim the default handler on both
/// (`netshim install containerd --default`) and the nodes labelled so
/// (`netshim.io/default-runtime=true`), namespace `default` at Pod
/// Security `baseline`; `None` when the test is SKIPPED (no KUBE_BIN_DIR).
pub fn two_node_cluster_or_skip(test: &str) -> Option<Cluster> {
    let opts = Options {
        install_args: vec!["--default".into()],
        second_node: true,
        ..Options::default()
    };
    let c = Cluster::start_with_or_skip(test, opts)?;
    c.namespace("default", Some("baseline"));
    for n in [NODE, NODE2] {
        run(&mut c.kubectl(&["label", "node", n, "netshim.io/default-runtime=true"])).ok();
    }
    Some(c)
}

/// `kubectl netshim ARGS` with the plugin on PATH, as the admin or with
/// `kubeconfig`.
pub fn plugin(c: &Cluster, kubeconfig: Option<&Path>, args: &[&str]) -> Command {
    let mut all = vec!["netshim"];
    all.extend_from_slice(args);
    let mut k = match kubeconfig {
        Some(kc) => c.kubectl_as(kc, &all),
        None => c.kubectl(&all),
    };
    let path = format!(
        "{}:{}",
        plugin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    k.env("PATH", path);
    k
}

/// `--image=` netshim's image under test.
pub fn image_flag() -> String {
    format!("--image={NETSHIM_IMAGE}")
}

/// A pod of the busybox app image running `command` as UID 1000 with no
/// capability (Pod Security `baseline` and `restricted` admit it), on
/// `node`, labelled `app: LABEL`.
pub fn app_pod(
    name: &str,
    ns: &str,
    node: &str,
    label: &str,
    command: &[&str],
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": label}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": APP_IMAGE,
                "command": command,
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

/// A pod that serves HTTP on its loopback (busybox httpd, UID 1000) and
/// fetches from itself ten times a second.
pub fn demo_pod(
    name: &str,
    ns: &str,
    node: &str,
    label: &str,
    runtime_class: Option<&str>,
) -> serde_json::Value {
    let mut p = app_pod(
        name,
        ns,
        node,
        label,
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && \
             httpd -p 127.0.0.1:8080 -h /tmp/www && \
             while :; do wget -q -O /dev/null http://127.0.0.1:8080/; sleep 0.1; done",
        ],
    );
    if let Some(rc) = runtime_class {
        p["spec"]["runtimeClassName"] = rc.into();
    }
    p
}

/// `kubectl apply` of one object.
pub fn apply(c: &Cluster, what: &serde_json::Value) {
    let f = c.dir.join(format!(
        "apply-{}-{}.json",
        what["metadata"]["namespace"].as_str().unwrap_or("cluster"),
        what["metadata"]["name"].as_str().unwrap()
    ));
    std::fs::write(&f, what.to_string()).unwrap();
    run(&mut c.kubectl(&["apply", "-f", f.to_str().unwrap()])).ok();
}

/// Host PIDs of `netshim capture` processes run by the plugin (`-w -`
/// after `capture`): both nodes' containers are host processes.
pub fn captures_running() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"netshim\0capture\0-w\0-\0"))
        })
        .collect()
}

/// Waits until no capture runs; how long that took.
pub fn wait_no_capture(what: &str, secs: u64) -> Duration {
    let t = Instant::now();
    loop {
        let v = captures_running();
        if v.is_empty() {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{what}: captures still running {secs} s later: {v:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The plugin's PID: `root` or a process under it whose command is
/// kubectl-netshim (kubectl execs its plugins in its own place).
pub fn plugin_under(root: i32) -> i32 {
    let is_plugin = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .is_ok_and(|c| c.trim() == "kubectl-netshim")
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|p| is_plugin(*p) && (*p == root || descends_from(*p, root)))
        .unwrap_or_else(|| panic!("no kubectl-netshim process under PID {root}"))
}

/// The wall clock, in seconds since the epoch (as packet time stamps).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `p` quantile (0..=1) of `v`, sorting it.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The ephemeral containers of `ns/pod`: (name, its log).
pub fn debug_containers(c: &Cluster, ns: &str, pod: &str) -> Vec<(String, String)> {
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

/// The runtime's default capabilities but NET_RAW: what the debug
/// container drops (examples/kubernetes/debug-netshim.json,
/// kubectl/src/debug.rs). Pod Security `baseline` admits any drop but no
/// `add` of NET_RAW; netshim answers the narrowed set of a non-root UID
/// with NET_RAW ambient.
pub const DROP_ALL_BUT_NET_RAW: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
