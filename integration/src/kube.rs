//! A real one-node Kubernetes cluster for the tests: etcd (Debian's
//! etcd-server), kube-apiserver and a kubelet from `KUBE_BIN_DIR`, and a
//! private containerd whose CRI plugin has the `netshim` handler that
//! `netshim install containerd --config PATH` wrote, as a user installs it.
//!
//! What a cluster has, and what it lacks:
//! - a CA and certificates made with openssl; the API server serves on the
//!   node's address (198.18.211.1 on an interface the harness makes:
//!   a kubelet refuses a loopback node IP; a veth pair, as these kernels
//!   have no `dummy` links) with Node,RBAC authorization and
//!   the default admission plugins (PodSecurity among them) plus
//!   NodeRestriction; ServiceAccount tokens are signed;
//! - no controller-manager: what it would make for a namespace (its
//!   `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap) the
//!   harness makes in [`Cluster::namespace`] (`default` is made at start),
//!   so pods mount their token as on a real cluster;
//! - no scheduler: a binder (a `kubectl get pods --watch` for pods without
//!   a node, and a Binding for each) puts every pod on the node, so
//!   `kubectl run` and `kubectl apply -f examples/kubernetes/pod.yaml` work
//!   as written;
//! - images built here and imported into containerd's `k8s.io` namespace:
//!   netshim's ([`NETSHIM_IMAGE`], by examples/image/build.sh), a busybox
//!   ([`APP_IMAGE`], the image examples/kubernetes/pod.yaml names) and the
//!   sandbox ("pause") image, with `Env` or, by [`Options::pause_without_env`],
//!   without;
//! - pods on a CNI bridge of their own (nshkube0, 198.18.210.0/24, no
//!   gateway, no masquerade);
//! - the kubelet (cgroupfs driver, its own cgroup root and root directory)
//!   runs in a mount namespace of its own where the six kernel sysctls it
//!   insists on read as it wants them: it would otherwise set
//!   kernel.panic_on_oops=1 and vm.overcommit_memory=1 on the shared host.
//!   Its root directory is a shared mount, so the volumes it mounts reach
//!   containerd.
//!
//! Everything is undone on drop: the processes it started (by PID), the
//! pods' sandboxes (through CRI, so their network namespaces go too), the
//! mounts under the kubelet's root directory, the node's interface, the
//! bridge, the cgroups, the pods' log directories under /var/log/pods and
//! /var/log/containers, and the temporary directories.
//!
//! One cluster at a time in a test process: [`Cluster::start`] waits for
//! the previous one to be dropped.
//!
//! The binaries: Kubernetes v1.26.x's `cmd/kube-apiserver` and
//! `cmd/kubelet`, built outside this repository (Go 1.19 from Debian 12
//! builds them in vendor mode with `-tags providerless`), in `KUBE_BIN_DIR`;
//! integration/run.sh sets it to ~/.cache/netshim/kube/v1.26.1/bin when that
//! directory exists. kubectl is the one on PATH.
//!
//! Use: `let Some(c) = Cluster::start_or_skip("NAME") else { return };`, then
//! `c.kubectl(&[...])` / `c.shell("kubectl ...")` (admin, in the
//! repository's root), `c.namespace(NS, Some("baseline"))`,
//! `c.user_kubeconfig(USER, GROUPS)` with `c.kubectl_as(...)`,
//! `c.wait_pod_ready(NS, POD, SECS)`, `c.log("kubelet")`. With
//! `NETSHIM_KEEP_KUBE=1` the cluster's files (logs, certificates) are kept.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{netshim, require_root, run, sh, Containerd};

/// The Kubernetes version the harness is written for.
pub const KUBE_VERSION: &str = "v1.26.1";
/// netshim's image (examples/image/build.sh of the binary under test).
pub const NETSHIM_IMAGE: &str = "docker.io/library/netshim:kube-test";
/// A busybox app image, under the name examples/kubernetes/pod.yaml uses.
pub const APP_IMAGE: &str = "docker.io/library/busybox:1.36";
/// The sandbox image whose config has `Env` (PATH).
pub const PAUSE_IMAGE: &str = "docker.io/library/netshim-pause:kube";
/// The sandbox image whose config has no `Env` at all.
pub const PAUSE_IMAGE_NO_ENV: &str = "docker.io/library/netshim-pause:kube-no-env";

/// The node's name.
pub const NODE: &str = "netshim-node";
const NODE_IP: &str = "198.18.211.1";
const DUMMY: &str = "nshkubed0";
const BRIDGE: &str = "nshkube0";
const POD_SUBNET: &str = "198.18.210.0/24";
/// The second node's name ([`Options::second_node`]).
pub const NODE2: &str = "netshim-node-2";
const NODE2_IP: &str = "198.18.213.1";
const DUMMY2: &str = "nshkubed1";
const BRIDGE2: &str = "nshkube1";
const POD_SUBNET2: &str = "198.18.214.0/24";
const CGROUP2: &str = "netshim-kube2";
/// Services get addresses here (objects only: no kube-proxy routes them).
const SERVICE_RANGE: &str = "198.18.219.0/24";
const SERVICE_IP: &str = "198.18.219.1";
const CGROUP: &str = "netshim-kube";

/// What may differ between clusters.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Extra arguments for `netshim install containerd` (e.g. `--default`).
    pub install_args: Vec<String>,
    /// The sandbox image is [`PAUSE_IMAGE_NO_ENV`] (its config has no `Env`).
    pub pause_without_env: bool,
    /// A second node, [`NODE2`] (see [`Cluster::start_second_node`]).
    pub second_node: bool,
}

/// The directory holding kube-apiserver and kubelet, from `KUBE_BIN_DIR`;
/// `None` (after saying loudly, past the test harness's capture, that the
/// test is SKIPPED and why) when it is unset. Set but without the two
/// binaries, the test fails.
pub fn bin_dir_or_skip(test: &str) -> Option<PathBuf> {
    let Some(d) = std::env::var_os("KUBE_BIN_DIR").filter(|d| !d.is_empty()) else {
        // Straight to the descriptor: libtest captures eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test}: KUBE_BIN_DIR is not set, so no kube-apiserver and kubelet \
             ({KUBE_VERSION}) to start a cluster with; build them (see the module documentation of integration/src/kube.rs) \
             and set KUBE_BIN_DIR, or put them in ~/.cache/netshim/kube/{KUBE_VERSION}/bin \
             where integration/run.sh finds them"
        );
        return None;
    };
    let d = PathBuf::from(d);
    for b in ["kube-apiserver", "kubelet"] {
        assert!(
            d.join(b).is_file(),
            "KUBE_BIN_DIR={} has no {b}: build Kubernetes {KUBE_VERSION}'s {b} into it",
            d.display()
        );
    }
    let k = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        k.map(|o| o.status.success()).unwrap_or(false),
        "KUBE_BIN_DIR is set but there is no kubectl on PATH: install kubectl (as users have it)"
    );
    Some(d)
}

/// One cluster at a time per test process (they share the node address,
/// the bridge and the cgroup root).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running cluster; torn down on drop.
pub struct Cluster {
    /// The cluster's files: pki/, logs (NAME.log), kubeconfigs, the kubelet's
    /// root directory (kubelet/).
    pub dir: PathBuf,
    /// `https://ADDRESS:PORT` of the API server.
    pub server: String,
    /// The admin's kubeconfig (system:masters).
    pub kubeconfig: PathBuf,
    /// The node's containerd (CRI socket: `ctd.address`).
    pub ctd: Option<Containerd>,
    /// The sandbox image containerd runs pods with.
    pub pause_image: &'static str,
    /// From the call of [`Cluster::start`] to the node being Ready.
    pub started_in: Duration,
    procs: Vec<(&'static str, Child)>,
    etcd_dir: Option<tempfile::TempDir>,
    netns_before: Vec<String>,
    logs_before: Vec<PathBuf>,
    /// The second node's containerd: (PID, CRI socket).
    node2: Option<(i32, String)>,
    _one: MutexGuard<'static, ()>,
}

fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
}

/// A free TCP port on `ip` (bound, then released for the daemon to take).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
        .port()
}

fn spawn_logged(dir: &Path, name: &str, cmd: &mut Command) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"))
}

impl Cluster {
    /// Starts a cluster with the default [`Options`], or returns `None`
    /// after saying why the test is SKIPPED (no `KUBE_BIN_DIR`).
    pub fn start_or_skip(test: &str) -> Option<Cluster> {
        Self::start_with_or_skip(test, Options::default())
    }

    /// [`Cluster::start_or_skip`] with `opts`.
    pub fn start_with_or_skip(test: &str, opts: Options) -> Option<Cluster> {
        let bin = bin_dir_or_skip(test)?;
        Some(Self::start(&bin, opts))
    }

    /// Starts etcd, the API server, containerd (netshim installed, images
    /// imported) and the kubelet from `bin`, and waits until the node is
    /// Ready.
    pub fn start(bin: &Path, opts: Options) -> Cluster {
        require_root();
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("nskube")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let etcd_dir = tempfile::Builder::new()
            .prefix("nskube-etcd")
            .tempdir_in("/dev/shm")
            .unwrap();
        let mut c = Cluster {
            server: String::new(),
            kubeconfig: dir.join("admin.kubeconfig"),
            dir,
            ctd: None,
            pause_image: if opts.pause_without_env {
                PAUSE_IMAGE_NO_ENV
            } else {
                PAUSE_IMAGE
            },
            started_in: Duration::ZERO,
            procs: Vec::new(),
            etcd_dir: Some(etcd_dir),
            netns_before: cni_netns(),
            logs_before: pod_logs(),
            node2: None,
            _one: one,
        };
        // From here on, Drop undoes whatever was done.
        host_setup();
        make_pki(&c.dir);
        c.start_control_plane(bin);
        let t_cp = t0.elapsed();
        c.start_node(bin, &opts);
        let t_node = t0.elapsed();
        c.wait_api_ready();
        if opts.second_node {
            c.start_second_node(bin, &opts);
        }
        c.namespace("default", None);
        c.start_binder();
        c.wait_node_ready();
        if opts.second_node {
            c.wait_until("the second node Ready", 90, |c| c.node_ready(NODE2));
        }
        c.started_in = t0.elapsed();
        println!(
            "cluster: control plane spawned at {:.1} s, containerd with images and kubelet at {:.1} s, \
             node Ready at {:.1} s",
            t_cp.as_secs_f64(),
            t_node.as_secs_f64(),
            c.started_in.as_secs_f64()
        );
        c
    }

    fn start_control_plane(&mut self, bin: &Path) {
        let d = self.dir.clone();
        let etcd = self.etcd_dir.as_ref().unwrap().path().to_path_buf();
        let (client, peer) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = spawn_logged(
            &d,
            "etcd",
            Command::new("etcd")
                .arg("--name=default")
                .arg(format!("--data-dir={}", etcd.join("data").display()))
                .arg(format!("--listen-client-urls={etcd_url}"))
                .arg(format!("--advertise-client-urls={etcd_url}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster=default={peer_url}")),
        );
        self.procs.push(("etcd", child));
        let port = free_port(NODE_IP);
        self.server = format!("https://{NODE_IP}:{port}");
        let p = |f: &str| d.join("pki").join(f).display().to_string();
        let child = spawn_logged(
            &d,
            "kube-apiserver",
            Command::new(bin.join("kube-apiserver")).args([
                format!("--etcd-servers={etcd_url}"),
                format!("--bind-address={NODE_IP}"),
                format!("--advertise-address={NODE_IP}"),
                format!("--secure-port={port}"),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                format!("--client-ca-file={}", p("ca.crt")),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-cluster-ip-range={SERVICE_RANGE}"),
                "--authorization-mode=Node,RBAC".into(),
                "--enable-admission-plugins=NodeRestriction".into(),
                "--allow-privileged=true".into(),
                format!(
                    "--kubelet-client-certificate={}",
                    p("apiserver-kubelet.crt")
                ),
                format!("--kubelet-client-key={}", p("apiserver-kubelet.key")),
                format!("--kubelet-certificate-authority={}", p("ca.crt")),
                "--kubelet-preferred-address-types=InternalIP".into(),
                format!("--cert-dir={}", d.join("pki/apiserver-generated").display()),
                "--profiling=false".into(),
            ]),
        );
        self.procs.push(("kube-apiserver", child));
        write_kubeconfig(&self.kubeconfig, &self.server, &d.join("pki"), "admin");
        write_kubeconfig(
            &d.join("kubelet.kubeconfig"),
            &self.server,
            &d.join("pki"),
            "kubelet",
        );
    }

    fn start_node(&mut self, bin: &Path, opts: &Options) {
        let ctd = start_containerd(&self.dir, self.pause_image, &opts.install_args);
        import_images(&ctd, &self.dir);
        let socket = ctd.address.clone();
        self.ctd = Some(ctd);
        let root = self.dir.join("kubelet");
        std::fs::create_dir_all(&root).unwrap();
        // The kubelet's root is a shared mount (the kubelet would make it so
        // itself), so that what it mounts there from its own mount
        // namespace reaches containerd's.
        sh(&format!(
            "mount --bind {r} {r} && mount --make-rshared {r}",
            r = root.display()
        ))
        .ok();
        let kport = free_port(NODE_IP);
        std::fs::write(
            self.dir.join("kubelet.yaml"),
            kubelet_config(&self.dir, kport),
        )
        .unwrap();
        // The sysctls the kubelet checks, as it wants them, in its own mount
        // namespace only (/proc is a private mount here).
        let binds = sysctl_binds(&self.dir.join("sysctl"));
        let d = self.dir.display();
        let script = format!(
            "{binds}exec {kubelet} --config={d}/kubelet.yaml --kubeconfig={d}/kubelet.kubeconfig \
             --root-dir={d}/kubelet --cert-dir={d}/kubelet/pki \
             --container-runtime-endpoint=unix://{socket} --node-ip={NODE_IP} \
             --hostname-override={NODE} --v=2",
            kubelet = bin.join("kubelet").display()
        );
        // unshare execs sh, which execs the kubelet: the PID is the kubelet's.
        let child = spawn_logged(
            &self.dir,
            "kubelet",
            Command::new("unshare").args([
                "--mount",
                "--propagation",
                "unchanged",
                "--",
                "sh",
                "-c",
                &script,
            ]),
        );
        self.procs.push(("kubelet", child));
    }

    /// Panics with the log's tail if one of the daemons has ended.
    fn check_alive(&mut self) {
        for (name, child) in self.procs.iter_mut() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "{name} exited ({st}); the end of its log:\n{}",
                    tail(&self.dir.join(format!("{name}.log")), 40)
                );
            }
        }
    }

    fn wait_until(&mut self, what: &str, secs: u64, mut done: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            self.check_alive();
            if Instant::now() > deadline {
                panic!(
                    "{what} not within {secs} s; the ends of the logs:\n{}\n{}",
                    tail(&self.dir.join("kube-apiserver.log"), 20),
                    tail(&self.dir.join("kubelet.log"), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn wait_api_ready(&mut self) {
        self.wait_until("the API server ready (/readyz)", 90, |c| {
            run(&mut c.kubectl(&["get", "--raw", "/readyz"])).code == Some(0)
        });
    }

    fn wait_node_ready(&mut self) {
        self.wait_until("the node Ready", 90, |c| {
            let r = run(&mut c.kubectl(&[
                "get",
                "node",
                NODE,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]));
            r.stdout.trim() == "True"
        });
    }

    /// The binder: every pod without a node is bound to this one.
    fn start_binder(&mut self) {
        let mut watch = self
            .kubectl(&[
                "get",
                "pods",
                "--all-namespaces",
                "--watch",
                "--field-selector=spec.nodeName=",
                "-o",
                "jsonpath={.metadata.namespace} {.metadata.name}{\"\\n\"}",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl (from PATH) is missing: run integration/run.sh");
        let out = watch.stdout.take().unwrap();
        let kubeconfig = self.kubeconfig.clone();
        let binding = self.dir.join("binding");
        std::fs::create_dir_all(&binding).unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let Some((ns, pod)) = line.split_once(' ') else {
                    continue;
                };
                let f = binding.join(format!("{ns}_{pod}.json"));
                let b = serde_json::json!({"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": pod}, "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}});
                std::fs::write(&f, b.to_string()).unwrap();
                // Deleted pods and those already bound come by too: their
                // Binding is refused, which is fine.
                let _ = run(Command::new("kubectl")
                    .env("KUBECONFIG", &kubeconfig)
                    .args(["create", "--raw"])
                    .arg(format!("/api/v1/namespaces/{ns}/pods/{pod}/binding"))
                    .arg("-f")
                    .arg(&f));
            }
        });
        self.procs.push(("binder", watch));
    }

    /// `kubectl` (from PATH) as the admin, in the repository's root (so
    /// examples/... paths work as written).
    pub fn kubectl(&self, args: &[&str]) -> Command {
        self.kubectl_as(&self.kubeconfig, args)
    }

    /// `kubectl` with another kubeconfig (see [`Cluster::user_kubeconfig`]).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.args(args);
        self.with_env(&mut c, kubeconfig);
        c
    }

    /// `bash -c SCRIPT` in the repository's root with `KUBECONFIG` set to the
    /// admin's: a documented command runs as written.
    pub fn shell(&self, script: &str) -> Command {
        let mut c = Command::new("bash");
        c.args(["-c", script]);
        self.with_env(&mut c, &self.kubeconfig);
        c
    }

    fn with_env(&self, c: &mut Command, kubeconfig: &Path) {
        c.env("KUBECONFIG", kubeconfig)
            // Not root's ~/.kube/cache.
            .env("KUBECACHEDIR", self.dir.join("kubectl-cache"))
            .current_dir(repo());
    }

    /// Makes namespace `name` as a controller-manager would leave it (its
    /// `default` ServiceAccount, the `kube-root-ca.crt` ConfigMap) with, if
    /// given, Pod Security's `enforce` level (`baseline`, `restricted`...).
    pub fn namespace(&self, name: &str, enforce: Option<&str>) {
        let ca = std::fs::read_to_string(self.dir.join("pki/ca.crt")).unwrap();
        let mut ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name}});
        if let Some(level) = enforce {
            ns["metadata"]["labels"] =
                serde_json::json!({ "pod-security.kubernetes.io/enforce": level });
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            ns,
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "default", "namespace": name}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "kube-root-ca.crt", "namespace": name},
             "data": {"ca.crt": ca}},
        ]});
        let f = self.dir.join(format!("namespace-{name}.json"));
        std::fs::write(&f, list.to_string()).unwrap();
        run(&mut self.kubectl(&["apply", "-f", f.to_str().unwrap()])).ok();
    }

    /// A kubeconfig for user `user` in `groups`, with a client certificate of
    /// the cluster's CA: what it may do is what RBAC grants it (e.g.
    /// `kubectl create role ...` and `kubectl create rolebinding ...
    /// --user=USER`; the aggregated ClusterRoles view, edit and admin are
    /// empty here, as no controller-manager aggregates them).
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> PathBuf {
        let name = format!("user-{user}");
        let subject: String = groups
            .iter()
            .map(|g| format!("/O={g}"))
            .chain([format!("/CN={user}")])
            .collect();
        sh(&format!(
            "set -e; cd {}/pki; {PKI_FUNCS} cert '{name}' '{subject}' 'extendedKeyUsage=clientAuth'",
            self.dir.display()
        ))
        .ok();
        let path = self.dir.join(format!("{name}.kubeconfig"));
        write_kubeconfig(&path, &self.server, &self.dir.join("pki"), &name);
        path
    }

    /// Waits up to `secs` for pod `ns/name` to be Ready; on failure the
    /// test fails with `kubectl describe` and the kubelet's log.
    pub fn wait_pod_ready(&self, ns: &str, name: &str, secs: u32) {
        let r = run(&mut self.kubectl(&[
            "-n",
            ns,
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            &format!("--timeout={secs}s"),
        ]));
        if r.code != Some(0) {
            panic!(
                "pod {ns}/{name} not Ready within {secs} s: {}\n{}\nthe kubelet's log:\n{}",
                r.stderr,
                self.describe(ns, name),
                tail(&self.dir.join("kubelet.log"), 30)
            );
        }
    }

    /// `kubectl describe pod` (for a failing test's message).
    pub fn describe(&self, ns: &str, pod: &str) -> String {
        let r = run(&mut self.kubectl(&["-n", ns, "describe", "pod", pod]));
        format!("{}{}", r.stdout, r.stderr)
    }

    /// The log of `etcd`, `kube-apiserver`, `kubelet` or `containerd`.
    pub fn log(&self, name: &str) -> String {
        let p = match (name, &self.ctd) {
            ("containerd", Some(c)) => c.dir.path().join("containerd.log"),
            _ => self.dir.join(format!("{name}.log")),
        };
        std::fs::read_to_string(p).unwrap_or_default()
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- {} ---\n{}",
        path.display(),
        lines[lines.len().saturating_sub(n)..].join("\n")
    )
}

/// The node's interface with its address, and the cgroup root. The
/// interface is one end of a veth pair (both ends on the host): these
/// machines' kernels have no `dummy` link type.
fn host_setup() {
    sh(&format!("ip link del {DUMMY} 2>/dev/null; true")).ok();
    sh(&format!(
        "set -e; ip link add {DUMMY} type veth peer name {DUMMY}p; \
         ip addr add {NODE_IP}/32 dev {DUMMY}; ip link set {DUMMY}p up; ip link set {DUMMY} up"
    ))
    .ok();
    make_cgroup_root(CGROUP);
}

/// The cgroup `name` in every hierarchy (cpuset's with its parent's CPUs
/// and memory nodes).
fn make_cgroup_root(name: &str) {
    for h in cgroup_hierarchies() {
        let d = h.join(name);
        let _ = std::fs::create_dir(&d);
        if h.ends_with("cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(h.join(f)).unwrap();
                std::fs::write(d.join(f), v.trim()).unwrap();
            }
        }
    }
}

/// The sysctls the kubelet checks, as it wants them, as files in `dir`;
/// the `mount --bind` commands (each followed by `&&`) that show them in
/// a mount namespace of the kubelet's own (/proc is a private mount).
fn sysctl_binds(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let mut binds = String::new();
    for (k, v) in [
        ("vm/overcommit_memory", "1"),
        ("vm/panic_on_oom", "0"),
        ("kernel/panic", "10"),
        ("kernel/panic_on_oops", "1"),
        ("kernel/keys/root_maxkeys", "1000000"),
        ("kernel/keys/root_maxbytes", "25000000"),
    ] {
        let f = dir.join(k.replace('/', "."));
        std::fs::write(&f, format!("{v}\n")).unwrap();
        binds += &format!("mount --bind {} /proc/sys/{k} && ", f.display());
    }
    binds
}

/// The mounted cgroup hierarchies (v1 controllers and the unified one).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// Shell functions making the CA's certificates (in the current directory).
const PKI_FUNCS: &str = r#"
cert() { # NAME SUBJECT EXTENSIONS
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
};"#;

/// The CA, the servers' and clients' certificates and the ServiceAccount
/// signing key, in DIR/pki.
fn make_pki(dir: &Path) {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let server_san = format!(
        "subjectAltName=IP:{NODE_IP},IP:127.0.0.1,IP:{SERVICE_IP},DNS:localhost,DNS:kubernetes,\
         DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth"
    );
    let kubelet_san =
        format!("subjectAltName=IP:{NODE_IP},DNS:{NODE}\nextendedKeyUsage=serverAuth");
    let script = format!(
        "set -e; cd {p}; {PKI_FUNCS}
         openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
           -keyout ca.key -out ca.crt -days 2 -subj /CN=netshim-test-ca 2>/dev/null
         cert apiserver /CN=kube-apiserver '{server_san}'
         cert kubelet-serving /CN={NODE} '{kubelet_san}'
         cert admin /O=system:masters/CN=netshim-admin extendedKeyUsage=clientAuth
         cert kubelet /O=system:nodes/CN=system:node:{NODE} extendedKeyUsage=clientAuth
         cert apiserver-kubelet /O=system:masters/CN=kube-apiserver-kubelet-client extendedKeyUsage=clientAuth
         openssl ecparam -name prime256v1 -genkey -noout -out sa.key
         openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null",
        p = pki.display()
    );
    let r = sh(&script);
    assert_eq!(
        r.code,
        Some(0),
        "making the certificates with openssl: {r:#?}"
    );
}

fn write_kubeconfig(path: &Path, server: &str, pki: &Path, user: &str) {
    let p = |f: &str| pki.join(f).display().to_string();
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: netshim-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
         users:\n- name: {user}\n  user:\n    client-certificate: {crt}\n    client-key: {key}\n\
         contexts:\n- name: netshim-test\n  context:\n    cluster: netshim-test\n    user: {user}\n    namespace: default\n\
         current-context: netshim-test\n",
        ca = p("ca.crt"),
        crt = p(&format!("{user}.crt")),
        key = p(&format!("{user}.key")),
    );
    std::fs::write(path, text).unwrap();
}

/// The kubelet's configuration: x509 and webhook authentication, webhook
/// authorization, its own serving certificate, cgroupfs under the
/// harness's cgroup root, no swap check, no iptables chains, eviction and
/// image garbage collection that never act on a shared machine's disk.
fn kubelet_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: {port}
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {d}/pki/ca.crt}}
authorization: {{mode: Webhook}}
tlsCertFile: {d}/pki/kubelet-serving.crt
tlsPrivateKeyFile: {d}/pki/kubelet-serving.key
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP}
failSwapOn: false
protectKernelDefaults: true
makeIPTablesUtilChains: false
volumePluginDir: {d}/kubelet/volume-plugins
evictionHard: {{"memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
"#
    )
}

/// The CRI plugin's part of a containerd config (for
/// [`Containerd::start_with`]): pods on a CNI bridge `bridge` in `subnet`
/// (no gateway, no masquerade; the network config `name` is written to
/// DIR/net.d, its addresses kept in DIR/ipam), `pause` as the sandbox
/// image, and a `runc` runtime.
pub fn cri_plugin_config(
    dir: &Path,
    name: &str,
    bridge: &str,
    subnet: &str,
    pause: &str,
) -> String {
    let d = dir.display();
    std::fs::create_dir_all(dir.join("net.d")).unwrap();
    std::fs::write(
        dir.join(format!("net.d/10-{name}.conflist")),
        format!(
            r#"{{"cniVersion": "1.0.0", "name": "{name}", "plugins": [
              {{"type": "bridge", "bridge": "{bridge}", "isGateway": false, "ipMasq": false,
                "ipam": {{"type": "host-local", "dataDir": "{d}/ipam",
                          "ranges": [[{{"subnet": "{subnet}"}}]]}}}}]}}"#
        ),
    )
    .unwrap();
    // restrict_oom_score_adj: these machines' root lacks CAP_SYS_RESOURCE,
    // so the sandbox's default oom_score_adj (-998) could not be set by any
    // runtime; containerd then clamps it to its own.
    format!(
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{pause}\"\n  disable_apparmor = true\n  restrict_oom_score_adj = true\n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  conf_dir = \"{d}/net.d\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
    )
}

/// containerd with the CRI plugin (the pods' CNI bridge, the sandbox image)
/// and netshim installed into its config by `netshim install containerd`.
fn start_containerd(dir: &Path, pause: &str, install_args: &[String]) -> Containerd {
    let extra = cri_plugin_config(dir, "netshim-kube", BRIDGE, POD_SUBNET, pause);
    Containerd::start_with(&extra, true, |cfg| {
        // As a user installs it: this netshim, the config's path.
        let r = run(Command::new(netshim())
            .args(["install", "containerd", "--config"])
            .arg(cfg)
            .args(install_args));
        assert!(
            r.code == Some(0)
                && r.stderr
                    .contains("containerd reads it: handler \"netshim\""),
            "netshim install containerd: {r:#?}"
        );
    })
}

/// netshim's image (examples/image/build.sh), and one OCI archive with the
/// busybox app image and both sandbox images, into `k8s.io`.
fn import_images(ctd: &Containerd, dir: &Path) {
    let img = dir.join("images");
    std::fs::create_dir_all(&img).unwrap();
    let netshim_tar = img.join("netshim.tar");
    let tag = NETSHIM_IMAGE.trim_start_matches("docker.io/library/");
    run(Command::new("bash")
        .arg(repo().join("examples/image/build.sh"))
        .arg(&netshim_tar)
        .arg(netshim())
        .arg(tag))
    .ok();
    let base_tar = img.join("base.tar");
    busybox_images(&img, &base_tar);
    for t in [&netshim_tar, &base_tar] {
        run(&mut ctd.ctr(&["-n", "k8s.io", "images", "import", t.to_str().unwrap()])).ok();
    }
}

/// An OCI image archive of one busybox layer (every applet of Debian's
/// busybox-static) under three names: [`APP_IMAGE`] (`Cmd sh`, PATH),
/// [`PAUSE_IMAGE`] (sleeps, PATH) and [`PAUSE_IMAGE_NO_ENV`] (sleeps, by
/// absolute path, and no `Env`).
fn busybox_images(work: &Path, out: &Path) {
    let root = work.join("rootfs");
    let layout = work.join("layout");
    let script = format!(
        "set -e; R={r}; mkdir -p $R/bin $R/etc $R/tmp $R/proc $R/sys $R/dev {l}/blobs/sha256
         cp /bin/busybox $R/bin/
         for a in $(/bin/busybox --list); do [ $a = busybox ] || ln -sf busybox $R/bin/$a; done
         printf 'root:x:0:0:root:/:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/sh\\n' > $R/etc/passwd
         printf 'root:x:0:\\nnogroup:x:65534:\\n' > $R/etc/group
         chmod 1777 $R/tmp
         tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C $R -cf {w}/layer.tar .",
        r = root.display(),
        l = layout.display(),
        w = work.display()
    );
    sh(&script).ok();
    let layer = blob(&layout, &std::fs::read(work.join("layer.tar")).unwrap());
    let sleep = serde_json::json!(["/bin/sleep", "2147483647"]);
    let path =
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
    let images = [
        (APP_IMAGE, serde_json::json!({"Env": path, "Cmd": ["sh"]})),
        (
            PAUSE_IMAGE,
            serde_json::json!({"Env": path, "Entrypoint": sleep}),
        ),
        (PAUSE_IMAGE_NO_ENV, serde_json::json!({"Entrypoint": sleep})),
    ];
    let mut manifests = Vec::new();
    for (name, config) in images {
        let cfg = serde_json::json!({"architecture": "amd64", "os": "linux",
            "created": "1970-01-01T00:00:00Z", "config": config,
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", layer.0)]}});
        let c = blob(&layout, cfg.to_string().as_bytes());
        let m = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": format!("sha256:{}", c.0), "size": c.1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": format!("sha256:{}", layer.0), "size": layer.1}]});
        let m = blob(&layout, m.to_string().as_bytes());
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", m.0), "size": m.1,
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(':').next()}}));
    }
    let index = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(out)
        .arg("."))
    .ok();
}

/// Stores `data` as a blob of the OCI layout; its digest (hex) and size.
fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, data).unwrap();
    let r = run(Command::new("sha256sum").arg(&tmp)).ok();
    let hex = r.stdout.split_whitespace().next().unwrap().to_string();
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
    (hex, data.len())
}

/// The pods' network namespaces (made by containerd's CRI plugin):
/// /run/netns/cni-*.
pub fn cni_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("cni-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The entries of the kubelet's fixed log directories.
fn pod_logs() -> Vec<PathBuf> {
    ["/var/log/pods", "/var/log/containers"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect()
}

/// SIGTERM to a child the cluster started, SIGKILL after `secs`, reaped.
fn end(name: &str, child: &mut Child, secs: u64) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{name} (PID {pid}) did not end on SIGTERM within {secs} s: SIGKILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// Unmounts every mount at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(String::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A gRPC channel to the CRI API on the unix socket `socket`, as a kubelet
/// talks to containerd.
pub async fn cri_channel(
    socket: &str,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let socket = socket.to_string();
    tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let s = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(s).await?,
                ))
            }
        }))
        .await
}

/// Stops and removes every pod sandbox through CRI, as a kubelet would
/// (containerd tears down their networks and mounts).
fn remove_sandboxes(socket: &str) {
    use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
    use k8s_cri::v1::*;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let Ok(channel) = cri_channel(socket).await else {
            return;
        };
        let mut c = RuntimeServiceClient::new(channel);
        let Ok(list) = c.list_pod_sandbox(ListPodSandboxRequest::default()).await else {
            return;
        };
        for s in list.into_inner().items {
            let id = s.id;
            let _ = c
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            let _ = c
                .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await;
        }
    });
}

/// Removes the cgroup tree under `dir`, deepest first (rmdir only: the
/// processes are gone by now).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let t0 = Instant::now();
        // The binder and the kubelets first: nothing starts pods any more.
        for name in ["binder", "kubelet", "kubelet-2"] {
            if let Some((_, c)) = self.procs.iter_mut().find(|(n, _)| *n == name) {
                end(name, c, 15);
            }
        }
        if let Some(ctd) = self.ctd.take() {
            remove_sandboxes(&ctd.address);
            let ctd_dir = ctd.dir.path().to_path_buf();
            drop(ctd);
            // What a task left mounted in containerd's directory, and the
            // directory (its removal stopped at a mount).
            if ctd_dir.exists() {
                unmount_under(&ctd_dir);
                let _ = std::fs::remove_dir_all(&ctd_dir);
            }
        }
        self.stop_second_node();
        for (name, c) in self.procs.iter_mut().rev() {
            if *name != "binder" && *name != "kubelet" && *name != "kubelet-2" {
                end(name, c, 15);
            }
        }
        unmount_under(&self.dir.join("kubelet"));
        for n in cni_netns() {
            if !self.netns_before.contains(&n) {
                let _ = sh(&format!("ip netns del {n}"));
            }
        }
        let _ = sh(&format!(
            "ip link del {BRIDGE} 2>/dev/null; ip link del {DUMMY} 2>/dev/null"
        ));
        for h in cgroup_hierarchies() {
            remove_cgroup_tree(&h.join(CGROUP));
        }
        for p in pod_logs() {
            if !self.logs_before.contains(&p) {
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
        drop(self.etcd_dir.take());
        if std::env::var_os("NETSHIM_KEEP_KUBE").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept the cluster's files in {}", self.dir.display());
        }
        println!("cluster: torn down in {:.1} s", t0.elapsed().as_secs_f64());
    }
}

/// The second node ([`Options::second_node`]): a kubelet named [`NODE2`]
/// on its own address (198.18.213.1, on a veth of its own) with its own
/// root directory, cgroup root, certificates and containerd (a kubelet
/// kills the pods of its runtime that it does not know, so two kubelets
/// cannot share one), whose pods are on a bridge of their own (nshkube1,
/// 198.18.214.0/24).
///
/// That containerd and the kubelet run in one mount namespace of their
/// own, where /var/log/pods and /var/log/containers are directories of the
/// node's: Kubernetes 1.26 fixes the pods' log directory, and a kubelet's
/// garbage collection removes the log directories of pods it does not know,
/// the other node's included. Its pods' network namespaces are mounted
/// there too. The scheduler-less binder leaves pods on [`NODE`]: a pod is
/// put on this node by `spec.nodeName`.
impl Cluster {
    fn start_second_node(&mut self, bin: &Path, opts: &Options) {
        let d2 = self.dir.join("node2");
        for sub in ["logs/pods", "logs/containers", "kubelet", "ctd", "sysctl"] {
            std::fs::create_dir_all(d2.join(sub)).unwrap();
        }
        let pki = self.dir.join("pki");
        let san = format!("subjectAltName=IP:{NODE2_IP},DNS:{NODE2}\nextendedKeyUsage=serverAuth");
        sh(&format!(
            "set -e; cd {}; {PKI_FUNCS} cert kubelet-serving-2 /CN={NODE2} '{san}'
             cert kubelet-2 /O=system:nodes/CN=system:node:{NODE2} extendedKeyUsage=clientAuth",
            pki.display()
        ))
        .ok();
        write_kubeconfig(
            &d2.join("kubelet.kubeconfig"),
            &self.server,
            &pki,
            "kubelet-2",
        );
        sh(&format!(
            "ip link del {DUMMY2} 2>/dev/null; set -e; ip link add {DUMMY2} type veth peer name {DUMMY2}p; \
             ip addr add {NODE2_IP}/32 dev {DUMMY2}; ip link set {DUMMY2}p up; ip link set {DUMMY2} up"
        ))
        .ok();
        make_cgroup_root(CGROUP2);
        let ctd = d2.join("ctd");
        let sock = format!("{}/containerd.sock", ctd.display());
        let extra = cri_plugin_config(&d2, "netshim-kube2", BRIDGE2, POD_SUBNET2, self.pause_image);
        let config = ctd.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{c}/root\"\nstate = \"{c}/state\"\n\
                 [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  level = \"info\"\n{extra}\n",
                c = ctd.display()
            ),
        )
        .unwrap();
        let r = run(Command::new(netshim())
            .args(["install", "containerd", "--config"])
            .arg(&config)
            .args(&opts.install_args));
        assert_eq!(
            r.code,
            Some(0),
            "netshim install containerd (node 2): {r:#?}"
        );
        let kport = free_port(NODE2_IP);
        let yaml = kubelet_config(&self.dir, kport)
            .replace(
                &format!("address: {NODE_IP}"),
                &format!("address: {NODE2_IP}"),
            )
            .replace("kubelet-serving.", "kubelet-serving-2.")
            .replace(
                &format!("cgroupRoot: /{CGROUP}"),
                &format!("cgroupRoot: /{CGROUP2}"),
            )
            .replace(
                &format!("{}/kubelet/volume-plugins", self.dir.display()),
                &format!("{}/kubelet/volume-plugins", d2.display()),
            );
        std::fs::write(d2.join("kubelet.yaml"), yaml).unwrap();
        let binds = sysctl_binds(&d2.join("sysctl"));
        let d = d2.display();
        let script = format!(
            "set -e; mount --bind {d}/logs/pods /var/log/pods; \
             mount --bind {d}/logs/containers /var/log/containers; \
             mount --bind {d}/kubelet {d}/kubelet; mount --make-rshared {d}/kubelet; \
             containerd --config {cfg} >{d}/containerd.log 2>&1 & echo $! > {d}/containerd.pid; \
             while [ ! -S {sock} ]; do sleep 0.1; done; \
             {binds}exec {kubelet} --config={d}/kubelet.yaml --kubeconfig={d}/kubelet.kubeconfig \
             --root-dir={d}/kubelet --cert-dir={d}/kubelet/pki \
             --container-runtime-endpoint=unix://{sock} --node-ip={NODE2_IP} \
             --hostname-override={NODE2} --v=2",
            cfg = config.display(),
            kubelet = bin.join("kubelet").display()
        );
        let child = spawn_logged(
            &self.dir,
            "kubelet-2",
            Command::new("unshare").args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
            ]),
        );
        self.procs.push(("kubelet-2", child));
        let t = Instant::now();
        while !Path::new(&sock).exists() || !d2.join("containerd.pid").exists() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "node 2's containerd did not start: {}",
                tail(&d2.join("containerd.log"), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid: i32 = std::fs::read_to_string(d2.join("containerd.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        self.node2 = Some((pid, sock.clone()));
        // The images node 1 was given, already built.
        for t in ["netshim.tar", "base.tar"] {
            let tar = self.dir.join("images").join(t);
            run(Command::new("ctr")
                .args(["--address", &sock, "-n", "k8s.io", "images", "import"])
                .arg(&tar))
            .ok();
        }
    }

    /// Whether node `name` is Ready.
    fn node_ready(&self, name: &str) -> bool {
        let r = run(&mut self.kubectl(&[
            "get",
            "node",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]));
        r.stdout.trim() == "True"
    }

    /// The nodes: [`NODE`], and [`NODE2`] when it was asked for.
    pub fn nodes(&self) -> Vec<&'static str> {
        if self.node2.is_some() {
            vec![NODE, NODE2]
        } else {
            vec![NODE]
        }
    }

    /// The second node's containerd and what it made (its kubelet has been
    /// ended): the pods' sandboxes through CRI, then containerd, the
    /// bridge, the interface and the cgroups. The mounts were its mount
    /// namespace's, gone with its last process.
    fn stop_second_node(&mut self) {
        let Some((pid, sock)) = self.node2.take() else {
            return;
        };
        remove_sandboxes(&sock);
        let p = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
        let t = Instant::now();
        while PathBuf::from(format!("/proc/{pid}")).exists()
            && t.elapsed() < Duration::from_secs(15)
        {
            // Reaped by init once the kubelet (its parent) is gone.
            std::thread::sleep(Duration::from_millis(100));
        }
        if PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = sh(&format!(
            "ip link del {BRIDGE2} 2>/dev/null; ip link del {DUMMY2} 2>/dev/null"
        ));
        for h in cgroup_hierarchies() {
            remove_cgroup_tree(&h.join(CGROUP2));
        }
    }
}
