//! netshim behind containerd's CRI API, as a kubelet drives it for a pod with
//! `runtimeClassName: netshim`: a private containerd whose CRI plugin has
//! the `netshim` handler that `netshim install containerd` wrote (the one of
//! examples/containerd/config-v2.toml), a pod
//! sandbox and a non-root container with `drop: [ALL]`, `add: [NET_RAW]`,
//! `allowPrivilegeEscalation: false` and the pod annotation; the same pod
//! under the `runc` handler is the control.
//!
//! The pods get a bridge network (the CNI bridge plugin, 198.18.200.0/24, no
//! gateway, no masquerade) whose bridge the test removes at the end; the
//! test's traffic stays on the pod's loopback.

use std::collections::HashMap;
use std::process::Command;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use netshim_integration::kube;
use netshim_integration::*;
use tonic::transport::Channel;

const BRIDGE: &str = "nshcri0";
const IMAGE: &str = "docker.io/library/netshim-busybox:latest";
/// The sandbox image: its config has no `Env` (run.sh makes it so, and
/// `Cri::start` checks), so every pod here also proves that a process
/// without `PATH` and with an absolute `args[0]` runs, as under runc.
const PAUSE: &str = "docker.io/library/netshim-pause-noenv:latest";
const ANN: &str = "netshim.io/ambient-capabilities";

struct Cri {
    ctd: Containerd,
    cni: std::path::PathBuf,
    /// containerd's config before `netshim install containerd`.
    config_before: String,
}

/// The CRI tests run in parallel, each with its own containerd, and share
/// the CNI bridge and /run/netns. The last of them to end removes what the
/// pods of all of them left (a failed assertion leaves its pod): the
/// bridge, and the pod network namespaces (/run/netns/cni-*) that did not
/// exist when the first began. One that ended earlier would remove the
/// namespace of a pod another test is still starting.
static LIVE: std::sync::Mutex<(usize, Vec<String>)> = std::sync::Mutex::new((0, Vec::new()));

impl Cri {
    fn start() -> Cri {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("nscni")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let extra =
            kube::cri_plugin_config(&dir, "netshim-cri-test", BRIDGE, "198.18.200.0/24", PAUSE);
        // The `netshim` handler, as a node gets it: `netshim install
        // containerd`, pointing at the binary under test.
        let mut config_before = String::new();
        let ctd = Containerd::start_with(&extra, true, |cfg| {
            config_before = std::fs::read_to_string(cfg).unwrap();
            let r = run(Command::new(netshim())
                .args(["install", "containerd", "--binary"])
                .arg(netshim())
                .arg("--config")
                .arg(cfg))
            .ok();
            assert!(
                r.stderr
                    .contains("containerd reads it: handler \"netshim\""),
                "{r:#?}"
            );
        });
        // The images, from the harness's rootful Docker.
        let env = run(&mut rootful_docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Env}}",
            "netshim-pause-noenv",
        ]))
        .ok();
        assert_eq!(env.stdout.trim(), "null", "the pause image has an Env");
        let tar = ctd.dir.path().join("images.tar");
        run(rootful_docker(&[
            "save",
            "-o",
            tar.to_str().unwrap(),
            "netshim-busybox",
            "netshim-pause-noenv",
        ])
        .stdin(std::process::Stdio::null()))
        .ok();
        run(&mut ctd.ctr(&["-n", "k8s.io", "images", "import", tar.to_str().unwrap()])).ok();
        // Counted from here on: no pod exists before, and Drop runs.
        {
            let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            if live.0 == 0 {
                live.1 = kube::cni_netns();
            }
            live.0 += 1;
        }
        Cri {
            ctd,
            cni: dir,
            config_before,
        }
    }

    /// The pods' log directory.
    fn log_dir(&self) -> String {
        let d = self.ctd.dir.path().join("pods");
        std::fs::create_dir_all(&d).unwrap();
        d.to_str().unwrap().to_string()
    }

    async fn channel(&self) -> Channel {
        kube::cri_channel(&self.ctd.address)
            .await
            .expect("containerd's CRI API answers on its socket")
    }
}

/// Runs a test's conversation with containerd on a runtime of its own.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl Drop for Cri {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.0 -= 1;
        if live.0 == 0 {
            // The bridge is the one host-side change the pods made.
            let _ = sh(&format!("ip link del {BRIDGE} 2>/dev/null"));
            // A pod that was not removed (a failed assertion) leaves its netns.
            for n in kube::cni_netns() {
                if !live.1.contains(&n) {
                    let _ = sh(&format!("ip netns del {n}"));
                }
            }
        }
        drop(live);
        let _ = std::fs::remove_dir_all(&self.cni);
        // The pods' parent cgroup, empty once they are gone (rmdir only).
        let _ = sh(
            "for d in /sys/fs/cgroup/*/netshim-cri-test /sys/fs/cgroup/netshim-cri-test; do \
                    [ -d \"$d\" ] && rmdir \"$d\"; done 2>/dev/null",
        );
    }
}

/// What a kubelet asks for a pod without shareProcessNamespace: network and
/// IPC per pod, PID per container.
fn kubelet_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

fn pod_config(name: &str, log_dir: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: unique("uid"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.into(),
        annotations: HashMap::from([(ANN.to_string(), "NET_RAW".to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: "/netshim-cri-test".into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(kubelet_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config() -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "tools".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "1000".into()],
        log_path: "tools.log".into(),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                run_as_user: Some(Int64Value { value: 1000 }),
                run_as_group: Some(Int64Value { value: 1000 }),
                no_new_privs: true,
                capabilities: Some(Capability {
                    add_capabilities: vec!["NET_RAW".into()],
                    drop_capabilities: vec!["ALL".into()],
                    ..Default::default()
                }),
                namespace_options: Some(kubelet_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A pod sandbox made through CRI as a kubelet makes one, with the
/// containers started in it, removed with [`Pod::remove`].
struct Pod {
    id: String,
    name: String,
    config: PodSandboxConfig,
    handler: String,
    containers: Vec<String>,
}

impl Pod {
    async fn run(
        rt: &mut RuntimeServiceClient<Channel>,
        prefix: &str,
        handler: &str,
        log_dir: &str,
    ) -> Pod {
        let ann = HashMap::from([(ANN.to_string(), "NET_RAW".to_string())]);
        Pod::run_annotated(rt, prefix, handler, log_dir, ann).await
    }

    /// [`Pod::run`] with these pod annotations (none: a pod that asks
    /// netshim for nothing).
    async fn run_annotated(
        rt: &mut RuntimeServiceClient<Channel>,
        prefix: &str,
        handler: &str,
        log_dir: &str,
        annotations: HashMap<String, String>,
    ) -> Pod {
        let name = unique(prefix);
        let mut config = pod_config(&name, log_dir);
        config.annotations = annotations;
        let id = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox under {handler}: {e}"))
            .into_inner()
            .pod_sandbox_id;
        Pod {
            id,
            name,
            config,
            handler: handler.into(),
            containers: Vec::new(),
        }
    }

    /// CreateContainer and StartContainer; the container's ID.
    async fn start(
        &mut self,
        rt: &mut RuntimeServiceClient<Channel>,
        cfg: ContainerConfig,
    ) -> String {
        let handler = self.handler.clone();
        self.try_start(rt, cfg)
            .await
            .unwrap_or_else(|e| panic!("CreateContainer/StartContainer under {handler}: {e}"))
    }

    /// CreateContainer and StartContainer, returning StartContainer's
    /// error (the container is removed with the pod either way).
    async fn try_start(
        &mut self,
        rt: &mut RuntimeServiceClient<Channel>,
        cfg: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        let id = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(cfg),
                sandbox_config: Some(self.config.clone()),
            })
            .await?
            .into_inner()
            .container_id;
        self.containers.push(id.clone());
        rt.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await?;
        Ok(id)
    }

    /// Stop and remove the containers (last first), then the sandbox.
    async fn remove(self, rt: &mut RuntimeServiceClient<Channel>) {
        for id in self.containers.into_iter().rev() {
            rt.stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: 2,
            })
            .await
            .unwrap();
            rt.remove_container(RemoveContainerRequest { container_id: id })
                .await
                .unwrap();
        }
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: self.id.clone(),
        })
        .await
        .unwrap();
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: self.id,
        })
        .await
        .unwrap();
    }
}

struct PodResult {
    init_status: String,
    ping: ExecSyncResponse,
}

/// RunPodSandbox → CreateContainer → StartContainer → ExecSync → Stop/Remove,
/// as a kubelet does it, under `handler`.
async fn pod_lifecycle(
    rt: &mut RuntimeServiceClient<Channel>,
    handler: &str,
    log_dir: &str,
    address: &str,
) -> PodResult {
    let mut pod = Pod::run(rt, "pod", handler, log_dir).await;
    let ctr = pod.start(rt, container_config()).await;
    let status = rt
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(
        status.state,
        ContainerState::ContainerRunning as i32,
        "{status:?}"
    );

    let exec = |cmd: &str| ExecSyncRequest {
        container_id: ctr.clone(),
        cmd: vec!["sh".into(), "-c".into(), cmd.into()],
        timeout: 20,
    };
    let init = rt
        .exec_sync(exec("cat /proc/1/status"))
        .await
        .unwrap()
        .into_inner();
    let ping = rt
        .exec_sync(exec(
            "grep CapAmb /proc/self/status; ping -c 1 -W 2 127.0.0.1",
        ))
        .await
        .unwrap()
        .into_inner();
    if handler == "netshim" {
        check_pod_targets(&pod.name, &ctr, address);
    }
    pod.remove(rt).await;
    PodResult {
        init_status: String::from_utf8_lossy(&init.stdout).into_owned(),
        ping,
    }
}

/// The pod as a `netshim run` target: `k8s:NS/POD`, `k8s:NS/POD/CONTAINER`
/// and `containerd:k8s.io/ID` reach the pod's network namespace (its bridge
/// address), and `netshim targets` lists the pod with the drop-uid plan.
fn check_pod_targets(pod: &str, ctr_id: &str, address: &str) {
    let mut inode = None;
    for t in [
        format!("k8s:default/{pod}"),
        format!("k8s:default/{pod}/tools"),
        format!("containerd:k8s.io/{ctr_id}"),
    ] {
        let r = run(std::process::Command::new(netshim())
            .env("CONTAINERD_ADDRESS", address)
            .args([
                "run",
                "--target-netns",
                &t,
                "--",
                "sh",
                "-c",
                "ip -o -4 addr show eth0; readlink /proc/self/ns/net",
            ]))
        .ok();
        assert!(r.stdout.contains("inet 198.18.200."), "{t}: {r:#?}");
        let ns = r.stdout.lines().last().unwrap().to_string();
        assert_eq!(
            inode.get_or_insert(ns.clone()),
            &ns,
            "{t} is the pod's netns"
        );
    }
    let r = run(std::process::Command::new(netshim())
        .env("CONTAINERD_ADDRESS", address)
        .args([
            "run",
            "--target-netns",
            "k8s:default/no-such-pod",
            "--",
            "true",
        ]));
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("no pod default/no-such-pod"), "{r:#?}");
    // The namespace as a selector stands for its pods (once each).
    let r = run(std::process::Command::new(netshim())
        .env("CONTAINERD_ADDRESS", address)
        .args(["targets", "--expand", "k8s:default/*"]))
    .ok();
    let line = format!("k8s:default/{pod}\tkubernetes pod {pod} (namespace default)");
    assert_eq!(r.stdout.lines().filter(|l| *l == line).count(), 1, "{r:#?}");
    let r = run(std::process::Command::new(netshim())
        .env("CONTAINERD_ADDRESS", address)
        .args(["targets", "--expand", "k8s:no-such-namespace/*"]));
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("no running container or pod matches it"),
        "{r:#?}"
    );
    let r = run(std::process::Command::new(netshim())
        .env("CONTAINERD_ADDRESS", address)
        .args(["targets", "--json"]))
    .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let me = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == format!("k8s:default/{pod}"))
        .unwrap_or_else(|| panic!("the pod is listed: {v:#}"));
    assert_eq!(me["plan"], "drop-uid", "{me}");
}

#[test]
fn cri_pod_with_runtime_handler_netshim_gets_ambient_net_raw() {
    let cri = Cri::start();
    let log_dir = cri.log_dir();
    block_on(async {
        let channel = cri.channel().await;
        let mut rt = RuntimeServiceClient::new(channel.clone());
        let v = rt
            .version(VersionRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.runtime_name, "containerd");
        let mut img = ImageServiceClient::new(channel);
        let listed = img
            .list_images(ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(
            listed
                .images
                .iter()
                .any(|i| i.repo_tags.iter().any(|t| t == IMAGE)),
            "the busybox image is imported: {listed:?}"
        );

        let ns = pod_lifecycle(&mut rt, "netshim", &log_dir, &cri.ctd.address).await;
        let init = status_fields(&ns.init_status);
        assert_eq!(
            init["Uid"].split_whitespace().next(),
            Some("1000"),
            "{}",
            ns.init_status
        );
        assert_eq!(init["CapAmb"], "0000000000002000", "{}", ns.init_status);
        assert_eq!(init["NoNewPrivs"], "1");
        let out = String::from_utf8_lossy(&ns.ping.stdout);
        assert_eq!(
            ns.ping.exit_code,
            0,
            "{out} {}",
            String::from_utf8_lossy(&ns.ping.stderr)
        );
        assert!(out.contains("CapAmb:\t0000000000002000"), "{out}");
        assert!(out.contains("1 packets received"), "{out}");

        let rc = pod_lifecycle(&mut rt, "runc", &log_dir, &cri.ctd.address).await;
        assert_eq!(status_fields(&rc.init_status)["CapAmb"], "0000000000000000");
        assert_ne!(rc.ping.exit_code, 0, "ping must fail under runc");
        assert!(String::from_utf8_lossy(&rc.ping.stderr).contains("permission denied"));

        let left = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(left.items.is_empty(), "pods left: {left:?}");
    });
}

const DEBUG_IMAGE: &str = "docker.io/library/netshim:cri-test";
const TCPDUMP_IMAGE: &str = "docker.io/library/netshim-tcpdump:cri-test";

/// A toolbox image as operators bring their own: Debian's tcpdump (no file
/// capabilities, which no_new_privs would ignore anyway), its libraries and
/// a static busybox; imported into the harness's rootful Docker and saved
/// into containerd.
fn import_tcpdump_image(cri: &Cri) {
    let root = cri.ctd.dir.path().join("tcpdump-root");
    let script = format!(
        "set -e; R={r}; mkdir -p $R/bin $R/usr/bin $R/etc $R/tmp; cp /bin/busybox $R/bin/; \
         for a in sh sleep timeout cat; do ln -s busybox $R/bin/$a; done; \
         cp /usr/bin/tcpdump $R/usr/bin/; \
         for l in $(ldd /usr/bin/tcpdump | grep -o '/[^ ]*'); do mkdir -p $R$(dirname $l); cp -L $l $R$l; done; \
         printf 'root:x:0:0::/:/bin/sh\\nnobody:x:65534:65534::/:/bin/sh\\n' > $R/etc/passwd; \
         tar -C $R -cf $R.tar .",
        r = root.display()
    );
    sh(&script).ok();
    let tar = format!("{}.tar", root.display());
    let img = TCPDUMP_IMAGE.trim_start_matches("docker.io/library/");
    run(&mut rootful_docker(&[
        "import",
        "--change",
        "ENV PATH=/usr/bin:/bin",
        &tar,
        img,
    ]))
    .ok();
    let saved = format!("{}.saved.tar", root.display());
    run(&mut rootful_docker(&["save", "-o", &saved, img])).ok();
    let _ = run(&mut rootful_docker(&["rmi", img]));
    run(&mut cri.ctd.ctr(&["-n", "k8s.io", "images", "import", &saved])).ok();
}

/// A container as the kubelet makes an ephemeral debug container for
/// `kubectl debug POD --target=app --custom=examples/kubernetes/debug-netshim.json`:
/// in the app's PID namespace (TARGET) and the pod's network, UID 65534,
/// no_new_privs, every capability dropped but NET_RAW, seccomp
/// RuntimeDefault.
fn debug_container_config(target: &str, caps: &Capability, image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: if image == DEBUG_IMAGE {
                "debugger".into()
            } else {
                "toolbox".into()
            },
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sleep".into(), "1000".into()],
        log_path: "debugger.log".into(),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                run_as_user: Some(Int64Value { value: 65534 }),
                run_as_group: Some(Int64Value { value: 65534 }),
                no_new_privs: true,
                capabilities: Some(caps.clone()),
                seccomp: Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                    ..Default::default()
                }),
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Target as i32,
                    ipc: NamespaceMode::Pod as i32,
                    target_id: target.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn drop_all_add_net_raw() -> Capability {
    Capability {
        add_capabilities: vec!["NET_RAW".into()],
        drop_capabilities: vec!["ALL".into()],
        ..Default::default()
    }
}

/// The capabilities of examples/kubernetes/debug-netshim.json: Pod
/// Security's baseline level refuses any `add` outside its list (NET_RAW is
/// not in it), but any drop is allowed, so every capability of the
/// runtime's default set but NET_RAW is dropped.
fn baseline_caps() -> Capability {
    Capability {
        drop_capabilities: netshim_integration::plugin::DROP_ALL_BUT_NET_RAW
            .map(String::from)
            .to_vec(),
        ..Default::default()
    }
}

struct DebugResult {
    status: String,
    ps: String,
    capture: ExecSyncResponse,
    /// tcpdump in a second debug container, from a toolbox image.
    tcpdump: ExecSyncResponse,
    /// With `streams`: the capture streamed and ended by SIGINT, then one
    /// whose stream was cut, and `ps` after that.
    streamed: Option<(Streamed, Streamed, String)>,
}

/// A pod whose non-root app pings its loopback, then a debug container in
/// it (see [`debug_container_config`]) that captures with netshim's engine.
async fn debug_pod(
    rt: &mut RuntimeServiceClient<Channel>,
    handler: &str,
    log_dir: &str,
    caps: &Capability,
    streams: bool,
) -> DebugResult {
    let mut pod = Pod::run(rt, "dbg", handler, log_dir).await;
    let mut app = container_config();
    app.metadata = Some(ContainerMetadata {
        name: "app".into(),
        attempt: 0,
    });
    app.command = vec![
        "sh".into(),
        "-c".into(),
        "while :; do ping -c 1 -W 1 127.0.0.1; sleep 0.2; done".into(),
    ];
    let app_id = pod.start(rt, app).await;
    let debugger = pod
        .start(rt, debug_container_config(&app_id, caps, DEBUG_IMAGE))
        .await;
    // An operator's own toolbox image: the distribution's tcpdump.
    let toolbox = pod
        .start(rt, debug_container_config(&app_id, caps, TCPDUMP_IMAGE))
        .await;
    let tcpdump = rt
        .exec_sync(ExecSyncRequest {
            container_id: toolbox,
            cmd: [
                "timeout", "20", "tcpdump", "-i", "lo", "-n", "-c", "4", "icmp",
            ]
            .map(String::from)
            .to_vec(),
            timeout: 30,
        })
        .await
        .unwrap()
        .into_inner();
    let exec = |cmd: &str, timeout: i64| ExecSyncRequest {
        container_id: debugger.clone(),
        cmd: vec!["sh".into(), "-c".into(), cmd.into()],
        timeout,
    };
    let status = rt
        .exec_sync(exec("cat /proc/self/status", 10))
        .await
        .unwrap()
        .into_inner();
    let ps = rt
        .exec_sync(exec("ps -o pid,user,args", 10))
        .await
        .unwrap()
        .into_inner();
    let capture = rt
        .exec_sync(exec(
            "timeout 20 /usr/local/bin/netshim capture -i lo -c 4 icmp",
            30,
        ))
        .await
        .unwrap()
        .into_inner();
    let streamed = if streams {
        let capture = |extra: &[&'static str]| -> Vec<&'static str> {
            let mut c = vec!["/usr/local/bin/netshim", "capture", "-i", "lo", "-w", "-"];
            c.extend_from_slice(extra);
            c.push("icmp");
            c
        };
        let cmd = capture(&[]);
        // Ctrl-C, as an operator's terminal would send it: SIGINT to the
        // capture, which then ends its file and exits.
        let interrupted = stream_capture(rt, &debugger, &cmd, 20, async |rt| {
            let k = rt
                .exec_sync(exec(
                    "for p in $(ps -o pid,args | grep '[n]etshim capture -i lo -w -' | \
                     while read pid rest; do echo $pid; done); do kill -INT $p; done",
                    10,
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(k.exit_code, 0, "{k:?}");
            false
        })
        .await;
        // The operator closes the stream (kubectl ends, Wireshark quits).
        // containerd keeps the exec running, its stdout a pipe its shim
        // holds open and nobody reads (kubernetes/kubernetes#89031): the
        // capture fills it, and --stall-timeout ends it. Large pings fill
        // the pipe in a second or two.
        let cut_cmd = capture(&["--stall-timeout", "3"]);
        let cut = stream_capture(rt, &debugger, &cut_cmd, 6, async |rt| {
            let p = rt
                .exec_sync(exec("ping -c 20 -s 60000 127.0.0.1 >/dev/null 2>&1 &", 10))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(p.exit_code, 0, "{p:?}");
            true
        })
        .await;
        let closed = std::time::Instant::now();
        // The capture must not outlive its stream for long.
        let mut left = String::new();
        for _ in 0..150 {
            let ps = rt
                .exec_sync(exec("ps -o pid,args", 10))
                .await
                .unwrap()
                .into_inner();
            left = String::from_utf8_lossy(&ps.stdout).into_owned();
            if !left.contains("netshim capture -i lo -w -") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        println!(
            "the capture whose stream was closed ended {:.1} s later",
            closed.elapsed().as_secs_f64()
        );
        Some((interrupted, cut, left))
    } else {
        None
    };
    pod.remove(rt).await;
    DebugResult {
        status: String::from_utf8_lossy(&status.stdout).into_owned(),
        ps: String::from_utf8_lossy(&ps.stdout).into_owned(),
        capture,
        tcpdump,
        streamed,
    }
}

/// What came of `netshim capture -w -` in a container, carried to this
/// test as kubectl carries it: the CRI `Exec` URL of containerd's streaming
/// server, over a WebSocket with Kubernetes' channel protocol
/// (`v4.channel.k8s.io`: one byte of channel — 1 stdout, 2 stderr, 3 the
/// end status — then the data), its stdout fed live into tshark.
struct Streamed {
    /// The bytes of stdout, as received.
    pcapng: Vec<u8>,
    stderr: String,
    /// Channel 3: the exec's end status (JSON), empty if the stream was cut.
    status: String,
    /// tshark's lines (`frame.time_epoch`, `frame.interface_name`) with
    /// when each reached this test: arrival minus time stamp is the latency.
    lines: Vec<(f64, String)>,
    tshark_code: Option<i32>,
    tshark_stderr: String,
}

/// Runs `cmd` in `container` through the streaming API. `stop` is called
/// (once) when tshark has printed `after` packets; it returns whether to
/// cut the stream there (close the WebSocket) rather than read it to its
/// end.
async fn stream_capture(
    rt: &mut RuntimeServiceClient<Channel>,
    container: &str,
    cmd: &[&str],
    after: usize,
    mut stop: impl AsyncFnMut(&mut RuntimeServiceClient<Channel>) -> bool,
) -> Streamed {
    use futures_util::StreamExt;
    use std::io::{BufRead, Write};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

    let url = rt
        .exec(ExecRequest {
            container_id: container.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "containerd's streaming server on loopback: {url}"
    );
    let mut req = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("the exec URL {url} takes a WebSocket: {e}"));
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap()),
        Some("v4.channel.k8s.io")
    );

    let mut tshark = std::process::Command::new("tshark")
        .args([
            "-l",
            "-r",
            "-",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.interface_name",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tshark (package tshark)");
    let mut to_tshark = tshark.stdin.take().unwrap();
    let out = tshark.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            if tx.send((now, line)).is_err() {
                break;
            }
        }
    });
    let mut got = Streamed {
        pcapng: Vec::new(),
        stderr: String::new(),
        status: String::new(),
        lines: Vec::new(),
        tshark_code: None,
        tshark_stderr: String::new(),
    };
    let mut stopped = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("the stream neither reached {after} packets nor ended in 40 s"),
            Ok(None) => break,
            Ok(Some(Err(e))) => panic!("the stream failed: {e}"),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Binary(b) if b.len() > 1 => match b[0] {
                1 => {
                    got.pcapng.extend_from_slice(&b[1..]);
                    to_tshark.write_all(&b[1..]).unwrap();
                    to_tshark.flush().unwrap();
                }
                2 => got.stderr.push_str(&String::from_utf8_lossy(&b[1..])),
                3 => got.status.push_str(&String::from_utf8_lossy(&b[1..])),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
        got.lines.extend(rx.try_iter().filter_map(|(t, l)| {
            l.split_once('\t')
                .map(|(ts, i)| (t - ts.parse::<f64>().unwrap(), i.to_string()))
        }));
        if !stopped && got.lines.len() >= after {
            stopped = true;
            if stop(rt).await {
                ws.close(None).await.ok();
                break;
            }
        }
    }
    drop(ws);
    drop(to_tshark);
    let status = tshark.wait().unwrap();
    reader.join().unwrap();
    got.lines.extend(rx.try_iter().filter_map(|(t, l)| {
        l.split_once('\t')
            .map(|(ts, i)| (t - ts.parse::<f64>().unwrap(), i.to_string()))
    }));
    got.tshark_code = status.code();
    let mut e = String::new();
    use std::io::Read;
    tshark.stderr.take().unwrap().read_to_string(&mut e).ok();
    got.tshark_stderr = e;
    got
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The job netshim is for: on a cluster where nothing may run as root or
/// escalate, an operator's debug container (UID 65534, NET_RAW only,
/// no_new_privs, seccomp RuntimeDefault, the app's PID namespace) captures
/// the app's traffic with netshim's engine from netshim's own image (built
/// reproducibly by examples/image/build.sh). Under the runc handler the
/// same container holds no capability and cannot open a packet socket.
#[test]
fn an_ephemeral_debug_container_captures_the_apps_traffic_without_root() {
    let cri = Cri::start();
    let log_dir = cri.log_dir();
    let tar = cri.ctd.dir.path().join("netshim-image.tar");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/image/build.sh");
    let mut digests = Vec::new();
    for _ in 0..2 {
        let b = run(std::process::Command::new("bash")
            .arg(&script)
            .arg(&tar)
            .arg(netshim())
            .arg("netshim:cri-test"))
        .ok();
        digests.push(b.stderr.clone());
    }
    assert_eq!(
        digests[0], digests[1],
        "the same inputs give the same image"
    );
    run(&mut cri
        .ctd
        .ctr(&["-n", "k8s.io", "images", "import", tar.to_str().unwrap()]))
    .ok();
    // The same tarball is a `docker save` archive: Docker loads and runs it
    // (as 65534, netshim as the entrypoint).
    let t = tar.to_str().unwrap();
    let docker = |args: &[&str]| {
        let mut c = rootful_docker(args);
        c.stdin(std::process::Stdio::null());
        run(&mut c)
    };
    docker(&["load", "-i", t]).ok();
    let v = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "netshim:cri-test",
        "--version",
    ])
    .ok();
    assert!(v.stdout.starts_with("netshim "), "{v:#?}");
    let u = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/id",
        "netshim:cri-test",
    ])
    .ok();
    assert!(u.stdout.starts_with("uid=65534"), "{u:#?}");
    let _ = docker(&["rmi", "netshim:cri-test"]);
    import_tcpdump_image(&cri);
    // And root's Podman loads it too.
    let podman = |args: &[&str]| {
        run(std::process::Command::new("podman")
            .args(args)
            .current_dir("/tmp"))
    };
    let l = podman(&["load", "-i", t]).ok();
    let loaded = l
        .stdout
        .lines()
        .find_map(|x| x.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load names the image: {l:#?}"))
        .trim()
        .to_string();
    assert!(loaded.ends_with("netshim:cri-test"), "{l:#?}");
    let v = podman(&[
        "run",
        "--rm",
        "--pull",
        "never",
        // As in run_root.rs: crun refuses these hosts' hybrid cgroups, and
        // root here lacks CAP_SYS_RESOURCE for Podman's raised ulimits.
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        "--network",
        "none",
        &loaded,
        "--version",
    ])
    .ok();
    assert!(v.stdout.starts_with("netshim "), "{v:#?}");
    let _ = podman(&["rmi", &loaded]);
    block_on(async {
        let channel = cri.channel().await;
        let mut rt = RuntimeServiceClient::new(channel);

        // The issue's form (drop ALL, add NET_RAW), and the form Pod
        // Security admission's baseline level accepts (no add: every
        // capability of containerd's default set dropped but NET_RAW).
        for (caps, streams) in [(drop_all_add_net_raw(), true), (baseline_caps(), false)] {
            let ns = debug_pod(&mut rt, "netshim", &log_dir, &caps, streams).await;
            let st = status_fields(&ns.status);
            assert_eq!(
                st["Uid"].split_whitespace().next(),
                Some("65534"),
                "{}",
                ns.status
            );
            assert_eq!(st["CapAmb"], "0000000000002000", "{}", ns.status);
            assert_eq!(st["CapEff"], "0000000000002000", "{}", ns.status);
            assert_eq!(st["NoNewPrivs"], "1");
            assert!(
                ns.ps.contains("while :; do ping"),
                "the app's processes: {}",
                ns.ps
            );
            let out = String::from_utf8_lossy(&ns.capture.stdout);
            let err = String::from_utf8_lossy(&ns.capture.stderr);
            assert_eq!(ns.capture.exit_code, 0, "{out}\n{err}");
            let icmp = out
                .lines()
                // One interface: tcpdump's lines, without its name.
                .filter(|l| l.contains(" IP 127.0.0.1 > 127.0.0.1: ICMP echo"))
                .count();
            assert_eq!(icmp, 4, "{out}\n{err}");
            assert!(err.contains("4 packets captured"), "{err}");
            // The toolbox's own tcpdump, as UID 65534, captures too.
            let t_out = String::from_utf8_lossy(&ns.tcpdump.stdout);
            let t_err = String::from_utf8_lossy(&ns.tcpdump.stderr);
            assert_eq!(ns.tcpdump.exit_code, 0, "{t_out}\n{t_err}");
            assert_eq!(
                t_out
                    .lines()
                    .filter(|l| l.contains("IP 127.0.0.1 > 127.0.0.1: ICMP echo"))
                    .count(),
                4,
                "{t_out}\n{t_err}"
            );
            if let Some((int, cut, left)) = &ns.streamed {
                check_streams(int, cut, left);
            }
        }

        let rc = debug_pod(&mut rt, "runc", &log_dir, &drop_all_add_net_raw(), false).await;
        assert_eq!(
            status_fields(&rc.status)["CapAmb"],
            "0000000000000000",
            "{}",
            rc.status
        );
        assert!(rc.ps.contains("while :; do ping"), "{}", rc.ps);
        let err = String::from_utf8_lossy(&rc.capture.stderr);
        assert_ne!(rc.capture.exit_code, 0, "{err}");
        assert!(err.contains("cannot open a packet socket on lo"), "{err}");
        let t_err = String::from_utf8_lossy(&rc.tcpdump.stderr);
        assert_ne!(rc.tcpdump.exit_code, 0, "{t_err}");
        assert!(t_err.contains("Operation not permitted"), "{t_err}");
    });
}

/// `kubectl debug … -- netshim capture -w - | wireshark -k -i -`, at the
/// CRI level: the pcapng arrives live, tshark reads it, Ctrl-C (SIGINT)
/// ends it with a whole file and status Success, and a closed stream ends
/// the capture.
fn check_streams(int: &Streamed, cut: &Streamed, left: &str) {
    assert_eq!(
        int.tshark_code,
        Some(0),
        "tshark read the streamed file: {}",
        int.tshark_stderr
    );
    // Nothing but its warning about running as root.
    assert!(
        int.tshark_stderr
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with("Running as user")),
        "{}",
        int.tshark_stderr
    );
    assert!(int.lines.len() >= 20, "{} packets", int.lines.len());
    assert!(int.lines.iter().all(|(_, i)| i == "lo"), "{:?}", int.lines);
    assert!(
        int.status.contains("Success"),
        "the exec ended with status 0: {:?} {}",
        int.status,
        int.stderr
    );
    let counted = captured_count(&int.stderr);
    assert_eq!(
        counted as usize,
        int.lines.len(),
        "netshim counted what tshark read: {}",
        int.stderr
    );
    // Whole blocks to the end, the last an Interface Statistics Block.
    let mut o = 0;
    let mut last = 0;
    while o + 12 <= int.pcapng.len() {
        last = u32::from_le_bytes(int.pcapng[o..o + 4].try_into().unwrap());
        o += u32::from_le_bytes(int.pcapng[o + 4..o + 8].try_into().unwrap()) as usize;
    }
    assert_eq!(o, int.pcapng.len(), "the stream ends on a block boundary");
    assert_eq!(last, 5, "the stream ends with the statistics block");
    let lat: Vec<f64> = int.lines.iter().map(|(l, _)| *l).collect();
    let (med, max) = (median(lat.clone()), lat.iter().cloned().fold(0.0, f64::max));
    println!(
        "streamed through CRI Exec: {} packets, {} bytes, latency from time stamp to tshark: median {:.1} ms, max {:.1} ms",
        int.lines.len(),
        int.pcapng.len(),
        med * 1e3,
        max * 1e3
    );
    assert!(
        max < 2.0,
        "each packet reached tshark within 2 s of its time stamp (max {max:.3} s)"
    );
    assert!(
        cut.lines.len() >= 6,
        "{} packets before the stream was cut",
        cut.lines.len()
    );
    assert!(
        !left.contains("netshim capture -i lo -w -"),
        "the capture ended with its stream:\n{left}"
    );
}

/// The CRI plugin's runtimes as containerd reports them (`Status`, verbose:
/// the config it runs with).
/// The fields of `/proc/self/status` of a process exec'd (ExecSync) in
/// container `id`.
async fn status_of(
    rt: &mut RuntimeServiceClient<Channel>,
    id: String,
) -> std::collections::BTreeMap<String, String> {
    let st = rt
        .exec_sync(ExecSyncRequest {
            container_id: id,
            cmd: vec!["cat".into(), "/proc/self/status".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    status_fields(&String::from_utf8_lossy(&st.stdout))
}

async fn cri_runtimes(rt: &mut RuntimeServiceClient<Channel>) -> serde_json::Value {
    let s = rt
        .status(StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let cfg: serde_json::Value = serde_json::from_str(&s.info["config"]).unwrap();
    cfg["containerd"]["runtimes"].clone()
}

#[test]
fn netshim_install_containerd_round_trips_and_containerd_loads_it() {
    let mut cri = Cri::start();
    let cfg = cri.ctd.config();
    let installed = std::fs::read_to_string(&cfg).unwrap();
    let bin = std::fs::canonicalize(netshim())
        .unwrap()
        .display()
        .to_string();
    // What install added is the example's handler, key for key.
    let example: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/containerd/config-v2.toml"),
        )
        .unwrap()
        .replace("/usr/local/bin/netshim", &bin),
    )
    .unwrap();
    let got: toml::Table = toml::from_str(&installed).unwrap();
    let handler = |t: &toml::Table| {
        t["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["netshim"].clone()
    };
    assert_eq!(handler(&got), handler(&example), "{installed}");
    assert!(
        installed.starts_with(cri.config_before.trim_end()),
        "the rest is kept:\n{installed}"
    );

    let runtimes = |cri: &Cri| {
        block_on(async {
            let mut rt = RuntimeServiceClient::new(cri.channel().await);
            cri_runtimes(&mut rt).await
        })
    };
    // The daemon has it.
    let r = runtimes(&cri);
    assert!(r["netshim"].to_string().contains(&bin), "{r:#}");
    assert!(r.get("runc").is_some(), "{r:#}");

    // Twice is once; a dry run of the uninstall writes nothing.
    let again = run(Command::new(netshim())
        .args(["install", "containerd", "--binary", &bin, "--config"])
        .arg(&cfg))
    .ok();
    assert!(again.stderr.contains("nothing to change"), "{again:#?}");
    let dry = run(Command::new(netshim())
        .args([
            "install",
            "containerd",
            "--uninstall",
            "--dry-run",
            "--config",
        ])
        .arg(&cfg))
    .ok();
    assert!(
        dry.stdout
            .contains("-[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.netshim]"),
        "{dry:#?}"
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), installed);

    let un = run(Command::new(netshim())
        .args(["install", "containerd", "--uninstall", "--config"])
        .arg(&cfg))
    .ok();
    println!(
        "netshim install containerd --uninstall said:\n{}",
        un.stderr
    );
    assert!(un.stderr.contains("back as it was"), "{un:#?}");
    assert!(
        un.stderr
            .contains("containerd reads no handler \"netshim\""),
        "{un:#?}"
    );
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(now, cri.config_before, "the round trip changed the config");
    println!(
        "{}: identical to before install ({} bytes)",
        cfg.display(),
        now.len()
    );

    // After a restart the daemon has no such handler, and a pod asking
    // for it is refused.
    cri.ctd.restart();
    let r = runtimes(&cri);
    assert!(
        r.get("netshim").is_none() && r.get("runc").is_some(),
        "{r:#}"
    );
    block_on(async {
        let mut rt = RuntimeServiceClient::new(cri.channel().await);
        let e = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod_config("uninstalled", &cri.log_dir())),
                runtime_handler: "netshim".into(),
            })
            .await
            .expect_err("no netshim handler after uninstall");
        assert!(e.message().contains("netshim"), "{e:?}");
    });

    // `--default`: the handler of a pod that names none. A narrowed
    // container of such a pod (no annotation, no handler) gets NET_RAW
    // ambient, which only netshim gives; runc stays listed.
    let def = run(Command::new(netshim())
        .args([
            "install",
            "containerd",
            "--default",
            "--binary",
            &bin,
            "--config",
        ])
        .arg(&cfg))
    .ok();
    assert!(
        def.stderr.contains("default_runtime_name = \"netshim\""),
        "{def:#?}"
    );
    cri.ctd.restart();
    block_on(async {
        let mut rt = RuntimeServiceClient::new(cri.channel().await);
        let s = rt
            .status(StatusRequest { verbose: true })
            .await
            .unwrap()
            .into_inner();
        let cfg: serde_json::Value = serde_json::from_str(&s.info["config"]).unwrap();
        assert_eq!(
            cfg["containerd"]["defaultRuntimeName"], "netshim",
            "{cfg:#}"
        );
        assert!(
            cfg["containerd"]["runtimes"].get("runc").is_some(),
            "{cfg:#}"
        );
        let log_dir = cri.log_dir();
        let mut pod = Pod::run_annotated(&mut rt, "default", "", &log_dir, HashMap::new()).await;
        let id = pod.start(&mut rt, container_config()).await;
        let f = status_of(&mut rt, id).await;
        println!(
            "a pod with no handler, narrowed container: CapAmb={}",
            f["CapAmb"]
        );
        assert_eq!(
            f["CapAmb"], "0000000000002000",
            "the default handler is not netshim"
        );
        pod.remove(&mut rt).await;
    });
    let un = run(Command::new(netshim())
        .args(["install", "containerd", "--uninstall", "--config"])
        .arg(&cfg))
    .ok();
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        cri.config_before,
        "install --default then --uninstall changed the config: {un:#?}"
    );
}

/// Bad requests through CRI: a container that asks (by annotation) for a
/// restricted capability, or for NET_RAW its bounding set lacks, is refused
/// by StartContainer with netshim's reason in the CRI error; under the
/// runc handler the same containers start (runc reads no annotation). A
/// pod without the annotation gets exactly runc's capabilities.
#[test]
fn cri_refusals_carry_the_reason_and_a_pod_without_the_annotation_is_runc() {
    let cri = Cri::start();
    let log_dir = cri.log_dir();
    block_on(async {
        let mut rt = RuntimeServiceClient::new(cri.channel().await);
        let restricted = || {
            let mut c = container_config();
            c.metadata = Some(ContainerMetadata {
                name: "restricted".into(),
                attempt: 0,
            });
            c.annotations = HashMap::from([(ANN.to_string(), "NET_RAW,SYS_ADMIN".to_string())]);
            c
        };
        let unbounded = || {
            let mut c = container_config();
            c.metadata = Some(ContainerMetadata {
                name: "unbounded".into(),
                attempt: 0,
            });
            c.linux
                .as_mut()
                .unwrap()
                .security_context
                .as_mut()
                .unwrap()
                .capabilities = Some(Capability {
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            });
            c
        };
        let mut pod = Pod::run(&mut rt, "refused", "netshim", &log_dir).await;
        let e = pod
            .try_start(&mut rt, restricted())
            .await
            .expect_err("SYS_ADMIN is refused");
        println!("restricted: {}", e.message());
        assert!(
            e.message().contains("refusing ambient CAP_SYS_ADMIN")
                && e.message().contains("restricted capability"),
            "{e:?}"
        );
        let e = pod
            .try_start(&mut rt, unbounded())
            .await
            .expect_err("NET_RAW outside the bounding set is refused");
        println!("not in bounding: {}", e.message());
        assert!(
            e.message().contains("refusing ambient CAP_NET_RAW")
                && e.message().contains("bounding set does not hold it"),
            "{e:?}"
        );
        pod.remove(&mut rt).await;

        let mut pod = Pod::run(&mut rt, "refused", "runc", &log_dir).await;
        pod.try_start(&mut rt, restricted())
            .await
            .expect("runc starts it");
        pod.try_start(&mut rt, unbounded())
            .await
            .expect("runc starts it");
        pod.remove(&mut rt).await;

        // No annotation, and an app container with the runtime's default
        // capabilities: netshim adds nothing; the process's capability sets
        // are runc's, field for field. Then a narrowed one (drop ALL, add
        // NET_RAW, no_new_privs): the narrowed-bounding rule makes NET_RAW
        // ambient under netshim, runc gives it nothing.
        let default_caps = || {
            let mut c = container_config();
            let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
            sc.capabilities = None;
            sc.no_new_privs = false;
            c
        };
        let mut caps = Vec::new();
        for (handler, config) in [
            ("netshim", default_caps()),
            ("runc", default_caps()),
            ("netshim", container_config()),
            ("runc", container_config()),
        ] {
            let mut pod =
                Pod::run_annotated(&mut rt, "plain", handler, &log_dir, HashMap::new()).await;
            let id = pod.start(&mut rt, config).await;
            let f = status_of(&mut rt, id).await;
            caps.push(
                [
                    "CapInh",
                    "CapPrm",
                    "CapEff",
                    "CapBnd",
                    "CapAmb",
                    "NoNewPrivs",
                    "Uid",
                ]
                .map(|k| format!("{k}={}", f[k])),
            );
            pod.remove(&mut rt).await;
        }
        println!(
            "without the annotation, default capabilities: netshim {:?}, runc {:?}",
            caps[0], caps[1]
        );
        assert_eq!(caps[0], caps[1]);
        assert!(caps[0].contains(&"CapAmb=0000000000000000".to_string()));
        assert!(!caps[0].contains(&"CapBnd=0000000000002000".to_string()));
        println!(
            "without the annotation, narrowed to NET_RAW: netshim {:?}, runc {:?}",
            caps[2], caps[3]
        );
        for k in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert!(caps[2].contains(&format!("{k}=0000000000002000")), "{k}");
            assert!(caps[3].contains(&format!("{k}=0000000000000000")), "{k}");
        }
        assert!(caps[2].contains(&"NoNewPrivs=1".to_string()));
    });
}
