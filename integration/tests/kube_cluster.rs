//! netshim on a real node: kube-apiserver and kubelet (v1.26.1, from
//! `KUBE_BIN_DIR`), etcd, and a containerd where `netshim install
//! containerd` registered the `netshim` handler (integration/src/kube.rs).
//! kubectl is the one on PATH, as users have it.
//!
//! - examples/kubernetes/runtimeclass.yaml applies; an annotated non-root
//!   pod under the RuntimeClass runs with CAP_NET_RAW ambient, the same pod
//!   under runc with none;
//! - `kubectl debug` with netshim's image and examples/kubernetes/
//!   debug-netshim.json reaches the capture, in each of the ways of passing
//!   its arguments, and what `--profile=general` adds and what Pod Security
//!   `baseline` says of it are recorded.
//!
//! Without `KUBE_BIN_DIR` the test says it was SKIPPED, and why.

use std::process::Command;
use std::time::Instant;

use netshim_integration::kube::{Cluster, APP_IMAGE, NETSHIM_IMAGE};
use netshim_integration::*;

const ANN: &str = "netshim.io/ambient-capabilities";

/// A non-root app (UID 1000) that pings its loopback five times a second,
/// with NET_RAW in its bounding set and the annotation; under the netshim
/// RuntimeClass or, with `None`, the node's default (runc).
fn app_pod(name: &str, ns: &str, runtime_class: Option<&str>) -> serde_json::Value {
    app_pod_with(
        name,
        ns,
        runtime_class,
        serde_json::json!({"drop": ["ALL"], "add": ["NET_RAW"]}),
    )
}

/// Every capability of the runtime's default set dropped but NET_RAW, none
/// added: the form Pod Security `baseline` admits (its list of capabilities
/// that may be added lacks NET_RAW, so `drop: [ALL], add: [NET_RAW]` is
/// refused).
fn baseline_caps() -> serde_json::Value {
    serde_json::json!({"drop": ["AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
        "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]})
}

fn app_pod_with(
    name: &str,
    ns: &str,
    runtime_class: Option<&str>,
    caps: serde_json::Value,
) -> serde_json::Value {
    let mut pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": {ANN: "NET_RAW"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": APP_IMAGE,
                "command": ["sh", "-c", "while :; do ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1; sleep 0.2; done"],
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "capabilities": caps}
            }]
        }
    });
    if let Some(rc) = runtime_class {
        pod["spec"]["runtimeClassName"] = rc.into();
    }
    pod
}

fn apply(c: &Cluster, what: &serde_json::Value) -> Ran {
    let f = c.dir.join(format!(
        "{}-{}.json",
        what["metadata"]["namespace"].as_str().unwrap_or("x"),
        what["metadata"]["name"].as_str().unwrap()
    ));
    std::fs::write(&f, what.to_string()).unwrap();
    run(&mut c.kubectl(&["apply", "-f", f.to_str().unwrap()]))
}

/// `kubectl exec POD -c app -- cat /proc/1/status`, as fields.
fn init_status(c: &Cluster, ns: &str, pod: &str) -> std::collections::BTreeMap<String, String> {
    let r = run(&mut c.kubectl(&[
        "-n",
        ns,
        "exec",
        pod,
        "-c",
        "app",
        "--",
        "cat",
        "/proc/1/status",
    ]))
    .ok();
    status_fields(&r.stdout)
}

/// `kubectl debug -i POD --target=app --image=<netshim's> -c NAME ARGS...`
/// under `timeout SECS` (a container that never starts keeps `kubectl debug
/// -i` waiting: it prints the runtime's error as a warning and goes on
/// waiting).
fn debug(c: &Cluster, ns: &str, pod: &str, name: &str, secs: u32, args: &[&str]) -> Ran {
    let image = format!("--image={NETSHIM_IMAGE}");
    let secs = secs.to_string();
    let container = format!("--container={name}");
    let mut all = vec![
        secs.as_str(),
        "kubectl",
        "-n",
        ns,
        "debug",
        "-i",
        pod,
        "--target=app",
        &image,
        &container,
    ];
    all.extend_from_slice(args);
    let mut cmd = Command::new("timeout");
    cmd.args(&all);
    // The cluster's kubeconfig and the repository's root, as kubectl's own.
    let k = c.kubectl(&[]);
    for (key, v) in k.get_envs() {
        if let Some(v) = v {
            cmd.env(key, v);
        }
    }
    cmd.current_dir(k.get_current_dir().unwrap());
    let t = Instant::now();
    let r = run(&mut cmd);
    println!(
        "--- kubectl debug {name} {args:?}: exit {:?} in {:.1} s\nstdout:\n{}\nstderr:\n{}",
        r.code,
        t.elapsed().as_secs_f64(),
        r.stdout,
        r.stderr
    );
    r
}

/// The spec and status of ephemeral container `name` of `pod`.
fn ephemeral(
    c: &Cluster,
    ns: &str,
    pod: &str,
    name: &str,
) -> (serde_json::Value, serde_json::Value) {
    let r = run(&mut c.kubectl(&["-n", ns, "get", "pod", pod, "-o", "json"])).ok();
    let p: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let find = |k: &str| {
        p["spec"][k]
            .as_array()
            .or(p["status"][k].as_array())
            .and_then(|a| a.iter().find(|e| e["name"] == name).cloned())
            .unwrap_or_default()
    };
    (
        find("ephemeralContainers"),
        find("ephemeralContainerStatuses"),
    )
}

/// Lines of netshim's capture showing the app's pings.
fn icmp_lines(out: &str) -> usize {
    out.lines()
        .filter(|l| l.contains("IP 127.0.0.1 > 127.0.0.1: ICMP echo"))
        .count()
}

/// The app's pings that debug container `name` captured: (lines kubectl
/// debug printed, lines of the container's log once it has ended). The
/// log has them even when `kubectl debug -i` attached too late to see
/// them.
fn captured(c: &Cluster, ns: &str, pod: &str, name: &str, ran: &Ran) -> (usize, usize) {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, st) = ephemeral(c, ns, pod, name);
        if !st["state"]["terminated"].is_null() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let logs = run(&mut c.kubectl(&["-n", ns, "logs", pod, "-c", name]));
    let got = (icmp_lines(&ran.stdout), icmp_lines(&logs.stdout));
    println!(
        "{ns}/{pod} {name}: {} ICMP lines from kubectl debug, {} in the container's log",
        got.0, got.1
    );
    got
}

#[test]
fn a_real_kubelet_runs_netshim_pods_and_kubectl_debug_reaches_the_capture() {
    let t0 = Instant::now();
    let Some(c) = Cluster::start_or_skip("kube_cluster") else {
        return;
    };
    println!("cluster started in {:.1} s", c.started_in.as_secs_f64());
    let v = run(&mut c.kubectl(&["version"]));
    println!("kubectl version:\n{}{}", v.stdout, v.stderr);

    // The RuntimeClass, as the docs apply it.
    let r = run(&mut c.kubectl(&["apply", "-f", "examples/kubernetes/runtimeclass.yaml"])).ok();
    assert!(
        r.stdout.contains("runtimeclass.node.k8s.io/netshim"),
        "{r:#?}"
    );

    apply(&c, &app_pod("app", "default", Some("netshim"))).ok();
    apply(&c, &app_pod("app-runc", "default", None)).ok();
    c.wait_pod_ready("default", "app", 120);
    c.wait_pod_ready("default", "app-runc", 60);
    let ns_st = init_status(&c, "default", "app");
    let rc_st = init_status(&c, "default", "app-runc");
    println!("netshim: {ns_st:?}\nrunc: {rc_st:?}");
    assert_eq!(ns_st["Uid"], "1000 1000 1000 1000");
    assert_eq!(ns_st["CapAmb"], "0000000000002000");
    assert_eq!(ns_st["CapEff"], "0000000000002000");
    assert_eq!(rc_st["Uid"], "1000 1000 1000 1000");
    assert_eq!(rc_st["CapAmb"], "0000000000000000");
    assert_eq!(rc_st["CapEff"], "0000000000000000");

    as_users_write_them(&c);
    debug_variants(&c);
    pod_security_baseline(&c);
    println!(
        "test total {:.1} s (cluster start {:.1} s)",
        t0.elapsed().as_secs_f64(),
        c.started_in.as_secs_f64()
    );
}

/// With no scheduler and no controller-manager, what users type still
/// works: `kubectl apply -f examples/kubernetes/pod.yaml` and `kubectl run`
/// (the harness binds pods to the node, and made the namespace's
/// ServiceAccount and CA ConfigMap, so the token volume mounts). A user
/// with a kubeconfig of their own can do what RBAC grants, no more.
fn as_users_write_them(c: &Cluster) {
    run(&mut c.kubectl(&["apply", "-f", "examples/kubernetes/pod.yaml"])).ok();
    run(&mut c.kubectl(&[
        "run",
        "plain",
        "--image=busybox:1.36",
        "--",
        "sleep",
        "3600",
    ]))
    .ok();
    c.wait_pod_ready("default", "netdebug", 60);
    c.wait_pod_ready("default", "plain", 60);
    let st = status_fields(
        &run(&mut c.kubectl(&["exec", "netdebug", "--", "cat", "/proc/1/status"]))
            .ok()
            .stdout,
    );
    assert_eq!(st["CapAmb"], "0000000000002000", "{st:?}");
    let token = run(&mut c.kubectl(&[
        "exec",
        "plain",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
    ]))
    .ok();
    assert_eq!(token.stdout, "default");

    let alice = c.user_kubeconfig("alice", &["netshim-testers"]);
    let r = run(&mut c.kubectl_as(&alice, &["get", "pods"]));
    assert!(
        r.stderr.contains("forbidden") && r.stderr.contains("\"alice\""),
        "{r:#?}"
    );
    // A Role of its own: the aggregated ClusterRoles (view, edit, admin)
    // stay empty without a controller-manager to aggregate them.
    run(&mut c.kubectl(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]))
    .ok();
    run(&mut c.kubectl(&[
        "create",
        "rolebinding",
        "alice-reads",
        "--role=pod-reader",
        "--user=alice",
    ]))
    .ok();
    let r = run(&mut c.kubectl_as(&alice, &["get", "pods", "-o", "name"])).ok();
    assert!(r.stdout.contains("pod/netdebug"), "{r:#?}");
    let r = run(&mut c.kubectl_as(&alice, &["delete", "pod", "plain"]));
    assert!(r.stderr.contains("forbidden"), "{r:#?}");
    run(&mut c.kubectl(&["delete", "pod", "plain", "netdebug", "--wait=false"])).ok();
}

/// The three ways of giving netshim its arguments through `kubectl debug`.
fn debug_variants(c: &Cluster) {
    let custom = "--custom=examples/kubernetes/debug-netshim.json";
    let capture = ["capture", "-i", "lo", "-c", "5", "icmp"];
    // What follows `--` becomes the container's command.
    let mut a = vec!["--profile=general", custom, "--"];
    a.extend_from_slice(&capture);
    let ra = debug(c, "default", "app", "dbg-dashdash", 15, &a);
    let (spec, status) = ephemeral(c, "default", "app", "dbg-dashdash");
    println!("dbg-dashdash spec: {spec:#}\nstatus: {status:#}");

    // --arguments-only: the image's entrypoint (netshim) gets them.
    let mut b = vec!["--profile=general", custom, "--arguments-only", "--"];
    b.extend_from_slice(&capture);
    let rb = debug(c, "default", "app", "dbg-args", 40, &b);
    let (spec_b, _) = ephemeral(c, "default", "app", "dbg-args");
    println!("dbg-args spec: {spec_b:#}");

    // The command spelled out.
    let mut d = vec!["--profile=general", custom, "--", "netshim"];
    d.extend_from_slice(&capture);
    let rd = debug(c, "default", "app", "dbg-netshim", 40, &d);

    // kubectl 1.32: `--` makes the command (netshim's entrypoint is
    // replaced: `exec: "capture": executable file not found in $PATH`, as
    // runc words it), --arguments-only the
    // args; the general profile adds SYS_PTRACE to the custom profile.
    assert_eq!(spec["command"][0], "capture", "{spec:#}");
    let msg = status["state"]["waiting"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("exec: \"capture\": executable file not found in $PATH"),
        "{status:#}"
    );
    assert_eq!(icmp_lines(&ra.stdout), 0, "{ra:#?}");
    assert!(
        spec_b["command"].is_null() && spec_b["args"][0] == "capture",
        "{spec_b:#}"
    );
    assert_eq!(
        spec_b["securityContext"]["capabilities"]["add"],
        serde_json::json!(["SYS_PTRACE"])
    );
    assert_eq!(
        captured(c, "default", "app", "dbg-args", &rb).1,
        5,
        "{rb:#?}"
    );
    assert_eq!(
        captured(c, "default", "app", "dbg-netshim", &rd).1,
        5,
        "{rd:#?}"
    );
}

/// Pod Security `baseline`: the annotated pod is admitted; the general
/// profile's debug container is judged; `--custom` alone is admitted.
fn pod_security_baseline(c: &Cluster) {
    c.namespace("psa", Some("baseline"));
    let refused = apply(c, &app_pod("app", "psa", Some("netshim")));
    println!("baseline, drop ALL add NET_RAW: {refused:#?}");
    assert!(
        refused.code != Some(0) && refused.stderr.contains("must not include \"NET_RAW\""),
        "{refused:#?}"
    );
    apply(
        c,
        &app_pod_with("app", "psa", Some("netshim"), baseline_caps()),
    )
    .ok();
    c.wait_pod_ready("psa", "app", 120);
    let custom = "--custom=examples/kubernetes/debug-netshim.json";
    let capture = ["capture", "-i", "lo", "-c", "5", "icmp"];
    let mut g = vec!["--profile=general", custom, "--arguments-only", "--"];
    g.extend_from_slice(&capture);
    let rg = debug(c, "psa", "app", "dbg-general", 40, &g);
    let (spec_g, _) = ephemeral(c, "psa", "app", "dbg-general");
    println!("baseline, general: spec {spec_g:#}");
    let mut l = vec![custom, "--arguments-only", "--"];
    l.extend_from_slice(&capture);
    let rl = debug(c, "psa", "app", "dbg-custom", 40, &l);
    let (spec_l, _) = ephemeral(c, "psa", "app", "dbg-custom");
    println!("baseline, custom only: spec {spec_l:#}");
    assert_eq!(captured(c, "psa", "app", "dbg-custom", &rl).1, 5, "{rl:#?}");
    // The general profile's SYS_PTRACE is refused by baseline; the custom
    // profile alone (kubectl's default profile, "legacy", adds nothing) is
    // admitted.
    assert_ne!(rg.code, Some(0), "{rg:#?}");
    assert!(
        rg.stderr
            .contains("violates PodSecurity \"baseline:latest\"")
            && rg.stderr.contains("must not include \"SYS_PTRACE\""),
        "{rg:#?}"
    );
    assert!(
        spec_l["securityContext"]["capabilities"]["add"].is_null(),
        "{spec_l:#}"
    );
    // kubectl's own message goes to stdout, where the capture's data goes.
    assert!(
        rl.stdout.starts_with("Targeting container \"app\""),
        "{rl:#?}"
    );
}
