//! docs/kubernetes.md, as a new operator types it, on a real kube-apiserver
//! and kubelet (integration/src/kube.rs) whose node has netshim as its
//! default handler (`netshim install containerd --default`) and a sandbox
//! image whose config has no `Env`.
//!
//! Every command in a `sh` block of the page runs as written, in order,
//! through bash in the repository's root, with two substitutions the page
//! states: `REGISTRY/netshim:TAG` is netshim's image imported into the
//! node, and `wireshark -k -i -` is `tee FILE | tshark -l -i -`. Each
//! command's outcome is checked (exit status, and what it must show); the
//! live stream runs five times and must give a whole pcapng each time; the
//! fixed-length file five times. Then what the page promises around them:
//! the unprepared app container gains nothing (CapAmb 0) while the debug
//! container holds exactly NET_RAW; Pod Security `baseline` (the namespace's
//! enforced level) admits the documented debug container and refuses
//! `--profile=general`; a capture whose kubectl was killed is gone once its
//! debug container's `sleep` ends, and nothing reached the container's log.
//!
//! Without `KUBE_BIN_DIR` the test says it was SKIPPED, and why.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netshim_integration::kube::{Cluster, Options, NETSHIM_IMAGE};
use netshim_integration::*;

/// The commands of the `sh` blocks of docs/kubernetes.md, in order; a
/// command continued with `\` is one.
fn documented() -> Vec<String> {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/kubernetes.md"),
    )
    .unwrap();
    let (mut out, mut block, mut cur) = (Vec::new(), None::<bool>, String::new());
    for line in page.lines() {
        let fence = line.trim_start().starts_with("```");
        match (block, fence) {
            (None, true) => block = Some(line.trim() == "```sh"),
            (Some(_), true) => block = None,
            (Some(true), false) if !line.trim().is_empty() => {
                cur.push_str(line);
                if line.ends_with('\\') {
                    cur.push('\n');
                } else {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => {}
        }
    }
    assert!(
        out.len() >= 8,
        "docs/kubernetes.md has too few commands: {out:?}"
    );
    out
}

fn as_run(cmd: &str, live: &Path) -> String {
    as_run_with(cmd, live, "-i -")
}

/// With tshark reading the stream `how`: `-i -` as Wireshark's `-k -i -`
/// does (through dumpcap), or `-r -` (tshark parses the pipe itself).
fn as_run_with(cmd: &str, live: &Path, how: &str) -> String {
    cmd.replace("REGISTRY/netshim:TAG", NETSHIM_IMAGE).replace(
        "wireshark -k -i -",
        &format!(
            "tee {} | tshark -l {how} -T fields -e frame.time_epoch",
            live.display()
        ),
    )
}

/// `bash -c CMD` as the admin, in `dir` (the repository's root unless
/// given), within `secs`.
fn shell(c: &Cluster, cmd: &str, dir: Option<&Path>, secs: u32) -> Ran {
    let mut sh = c.shell(&format!("timeout {secs} bash -c {}", shell_quote(cmd)));
    // The plugin (`kubectl netshim`) on PATH, as `cargo install --path
    // kubectl` puts it.
    sh.env(
        "PATH",
        format!(
            "{}:{}",
            netshim_integration::plugin::plugin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    if let Some(d) = dir {
        sh.current_dir(d);
    }
    let t = Instant::now();
    let r = run(&mut sh);
    println!(
        "$ {cmd}\n  exit {:?} in {:.1} s\n  stdout: {}\n  stderr: {}",
        r.code,
        t.elapsed().as_secs_f64(),
        r.stdout.trim_end().replace('\n', "\n          "),
        r.stderr.trim_end().replace('\n', "\n          ")
    );
    r
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Host PIDs whose command line is exactly `argv`, outermost first (a
/// process whose parent has the same command line comes after it).
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok().as_deref() == Some(&want[..]))
        .collect();
    pids.sort_by_key(|p| pids_contains_parent(*p, argv));
    pids
}

fn pids_contains_parent(p: i32, argv: &[&str]) -> bool {
    ppid(p).is_some_and(|pp| {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read(format!("/proc/{pp}/cmdline")).ok().as_deref() == Some(&want[..])
    })
}

fn wait_for_pid(argv: &[&str], secs: u64) -> i32 {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if let Some(p) = pids_running(argv).first() {
            return *p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no process {argv:?} on the host within {secs} s");
}

/// tshark's verdict on a file: packets read, or its complaint.
fn tshark_reads(path: &Path) -> Result<usize, String> {
    let r = run(Command::new("tshark").arg("-r").arg(path));
    // Its one line about running as root is not about the file.
    let complaint: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.contains("Running as user") && !l.trim().is_empty())
        .collect();
    if r.code != Some(0) || !complaint.is_empty() {
        return Err(format!("tshark -r: exit {:?}: {}", r.code, r.stderr));
    }
    Ok(r.stdout.lines().count())
}

fn starts_with_shb(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]))
}

/// The documented live stream, once: the pipeline as written, with
/// tshark reading it live; ended, after `packets` packets reached tshark,
/// by SIGINT to the capture (what `-c` or a Ctrl-C in `kubectl exec -it`
/// does), so the stream must end whole. Returns the latencies (s) from
/// each packet's time stamp to tshark printing it.
fn live_stream(c: &Cluster, cmd: &str, dir: &Path, packets: usize, how: &str) -> Vec<f64> {
    let live = dir.join("live.pcapng");
    let _ = std::fs::remove_file(&live);
    let mut sh = c.shell(&as_run_with(cmd, &live, how));
    let mut child = sh
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let argv = [
        "netshim", "capture", "-i", "any", "-w", "-", "tcp", "port", "8080",
    ];
    let capture = wait_for_pid(&argv, 60);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lat = Vec::new();
    while lat.len() < packets {
        let l = lines
            .next()
            .unwrap_or_else(|| panic!("the stream ended after {} packets", lat.len()))
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        lat.push(now - l.trim().parse::<f64>().unwrap());
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(capture),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    for l in lines.map_while(Result::ok) {
        if let Ok(ts) = l.trim().parse::<f64>() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            lat.push(now - ts);
        }
    }
    let st = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(st.success(), "the documented pipeline failed: {st}\n{err}");
    assert!(
        starts_with_shb(&live),
        "the stream does not begin with a Section Header Block"
    );
    let n = tshark_reads(&live).unwrap_or_else(|e| panic!("the stream is not whole: {e}"));
    assert_eq!(n, lat.len(), "tshark live and tshark on the file disagree");
    assert!(err.contains("packets captured"), "no statistics: {err}");
    lat
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The checks one documented command gets (beyond exit status 0).
fn check_command(c: &Cluster, cmd: &str, dir: &Path, lat: &mut Vec<f64>) {
    if cmd.contains("| wireshark") {
        for i in 0..5 {
            let mut l = live_stream(c, cmd, dir, 5, "-i -");
            println!(
                "live stream {}: {} packets, latency median {:.1} ms, max {:.1} ms",
                i + 1,
                l.len(),
                percentile(&mut l, 0.5) * 1e3,
                percentile(&mut l, 1.0) * 1e3
            );
            lat.extend(l);
        }
        // The same stream read by tshark itself (`-r -`, no dumpcap between):
        // what the pipe from kubectl delivers, without the reader's own delay.
        let mut l = live_stream(c, cmd, dir, 5, "-r -");
        println!(
            "the same stream into `tshark -l -r -`: {} packets, latency median {:.1} ms, max {:.1} ms",
            l.len(),
            percentile(&mut l, 0.5) * 1e3,
            percentile(&mut l, 1.0) * 1e3
        );
        return;
    }
    if cmd.contains("> app.pcapng") {
        for i in 0..5 {
            let r = shell(c, &as_run(cmd, Path::new("/")), Some(dir), 60);
            assert_eq!(r.code, Some(0), "{r:#?}");
            let f = dir.join("app.pcapng");
            assert!(
                starts_with_shb(&f),
                "run {}: no Section Header Block first",
                i + 1
            );
            let n = tshark_reads(&f).unwrap_or_else(|e| panic!("run {}: {e}", i + 1));
            assert!(n > 0, "run {}: no packet in 5 s of a fetch a second", i + 1);
            assert!(r.stderr.contains("packets captured"), "{r:#?}");
            println!("fixed-length file {}: {n} packets, read whole", i + 1);
        }
        return;
    }
    if cmd.contains("kubectl netshim capture") {
        let r = shell(c, &as_run(cmd, Path::new("/")), Some(dir), 120);
        assert_eq!(r.code, Some(0), "{r:#?}");
        let f = dir.join("demo.pcapng");
        let n = tshark_reads(&f).unwrap_or_else(|e| panic!("demo.pcapng: {e}"));
        assert_eq!(n, 20, "{r:#?}");
        let names = run(Command::new("tshark").arg("-r").arg(&f).args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
        ]));
        assert!(
            names.stdout.lines().all(|l| l.starts_with("default/app/")),
            "{names:#?}"
        );
        assert!(
            r.stderr.contains("20 packets captured from 1 pod "),
            "{r:#?}"
        );
        return;
    }
    let r = shell(c, &as_run(cmd, Path::new("/")), None, 120);
    assert_eq!(
        r.code,
        Some(0),
        "a documented command failed: {cmd}\n{r:#?}"
    );
    if cmd.contains("capture -i any -n -c 10") {
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), 10, "{r:#?}");
        assert!(lines.iter().all(|l| l.contains("127.0.0.1.8080")), "{r:#?}");
        assert!(r.stderr.contains("10 packets captured"), "{r:#?}");
    }
    if cmd.contains("kubectl netshim doctor app") {
        assert!(r.stdout.contains("default/app (node "), "{r:#?}");
        assert!(r.stdout.contains("can be captured"), "{r:#?}");
    }
    if cmd.contains("grep CapAmb") {
        assert!(r.stdout.contains("0000000000002000"), "{r:#?}");
    }
}

fn status_of(c: &Cluster, container: &str) -> std::collections::BTreeMap<String, String> {
    let r = run(&mut c.kubectl(&[
        "exec",
        "app",
        "-c",
        container,
        "--",
        "cat",
        "/proc/self/status",
    ]))
    .ok();
    status_fields(&r.stdout)
}

/// The app (no RuntimeClass, no annotation) runs under the default handler,
/// netshim, with runc's process; the debug container holds exactly NET_RAW.
fn check_what_each_container_holds(c: &Cluster) {
    let app = status_of(c, "app");
    let dbg = status_of(c, "netshim");
    println!("app: {app:?}\ndebug: {dbg:?}");
    assert_eq!(app["CapAmb"], "0000000000000000");
    assert_eq!(app["CapEff"], "0000000000000000");
    assert_ne!(app["CapBnd"], "0000000000002000", "the app is not narrowed");
    for k in ["CapAmb", "CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(dbg[k], "0000000000002000", "{k}");
    }
    assert!(dbg["Uid"].starts_with("65534"), "{dbg:?}");
    assert_eq!(dbg["NoNewPrivs"], "1");
    let logs = run(&mut c.kubectl(&["logs", "app", "-c", "netshim"])).ok();
    assert!(
        logs.stdout.is_empty(),
        "the debug container's log: {:?}",
        logs.stdout
    );
}

/// The page's debug container, named `name`, in `pod`, with `profile` and
/// `sleep secs`.
fn debug(c: &Cluster, pod: &str, name: &str, profile: &str, secs: u32) -> Ran {
    shell(
        c,
        &format!(
            "kubectl debug {pod} --target=app --image={NETSHIM_IMAGE} --container={name} \
             --profile={profile} --custom=examples/kubernetes/debug-netshim.json -- sleep {secs}"
        ),
        None,
        60,
    )
}

/// `--profile=general` adds SYS_PTRACE: the namespace's `baseline` refuses it.
fn check_general_profile_is_refused(c: &Cluster) {
    let r = debug(c, "app", "general", "general", 10);
    assert_ne!(
        r.code,
        Some(0),
        "baseline admitted --profile=general: {r:#?}"
    );
    assert!(r.stderr.contains("SYS_PTRACE"), "{r:#?}");
}

/// The same debug container in a pod under RuntimeClass `runc`: no
/// capability, and `netshim capture` says why it cannot capture.
fn check_runc_pod_cannot_capture(c: &Cluster) {
    let app = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes/app.yaml"),
    )
    .unwrap()
    .replace("name: app\n  labels", "name: app-runc\n  labels")
    .replace("spec:\n", "spec:\n  runtimeClassName: runc\n");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app-runc.yaml");
    let rc = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: runc\nhandler: runc\n---\n";
    std::fs::write(&f, format!("{rc}{app}")).unwrap();
    run(&mut c.kubectl(&["apply", "-f", f.to_str().unwrap()])).ok();
    c.wait_pod_ready("default", "app-runc", 60);
    let r = shell(
        c,
        &format!(
            "kubectl debug app-runc --target=app --image={NETSHIM_IMAGE} --container=netshim \
             --profile=baseline --custom=examples/kubernetes/debug-netshim.json -- sleep 60 && \
             kubectl wait --for=jsonpath='{{.status.ephemeralContainerStatuses[0].state.running}}' pod/app-runc && \
             kubectl exec app-runc -c netshim -- grep CapAmb /proc/self/status && \
             kubectl exec app-runc -c netshim -- netshim capture -i any -n -c 1"
        ),
        None,
        90,
    );
    assert!(r.stdout.contains("CapAmb:\t0000000000000000"), "{r:#?}");
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("cannot open a packet socket"), "{r:#?}");
}

/// A capture whose kubectl is killed: the page's bound is the debug
/// container's `sleep`; when it ends, the capture is gone, and nothing of
/// it reached the container's log.
fn check_a_cut_capture_ends(c: &Cluster) {
    let r = debug(c, "app", "cut", "baseline", 30);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let started = Instant::now();
    while run(&mut c.kubectl(&["exec", "app", "-c", "cut", "--", "sleep", "0"])).code != Some(0) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the container `cut` never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut k = c
        .kubectl(&[
            "exec", "-i", "app", "-c", "cut", "--", "netshim", "capture", "-i", "any", "-w", "-",
            "tcp", "port", "8080",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let argv = [
        "netshim", "capture", "-i", "any", "-w", "-", "tcp", "port", "8080",
    ];
    let mut got = vec![0u8; 64];
    k.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
    let capture = wait_for_pid(&argv, 30);
    sigkill(k.id() as i32);
    let _ = k.wait();
    let cut = Instant::now();
    let gone = wait_gone_within(capture, 60);
    println!(
        "cut capture: kubectl killed {:.1} s after the container started; the capture was gone \
         {:.1} s later ({:.1} s after the start: its `sleep 30` is the bound)",
        cut.duration_since(started).as_secs_f64(),
        gone.as_secs_f64(),
        (cut.duration_since(started) + gone).as_secs_f64()
    );
    assert!(
        cut.duration_since(started) + gone < Duration::from_secs(45),
        "the capture outlived its container's bound"
    );
    let logs = run(&mut c.kubectl(&["logs", "app", "-c", "cut"])).ok();
    assert!(
        logs.stdout.is_empty(),
        "the container's log holds {} bytes",
        logs.stdout.len()
    );
}

fn wait_gone_within(pid: i32, secs: u64) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the capture (host PID {pid}) was still running {secs} s after its kubectl was killed");
}

#[test]
fn every_command_of_docs_kubernetes_md_works_as_written_on_a_real_kubelet() {
    let opts = Options {
        install_args: vec!["--default".into()],
        pause_without_env: true,
        ..Options::default()
    };
    let Some(c) = Cluster::start_with_or_skip("kube_docs", opts) else {
        return;
    };
    c.namespace("default", Some("baseline"));
    let dir = tempfile::tempdir().unwrap();
    let mut lat = Vec::new();
    let t = Instant::now();
    for cmd in documented() {
        check_command(&c, &cmd, dir.path(), &mut lat);
        if cmd.contains("ephemeralContainerStatuses") {
            check_what_each_container_holds(&c);
        }
    }
    println!(
        "live latency over {} packets of 5 streams: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        lat.len(),
        percentile(&mut lat, 0.5) * 1e3,
        percentile(&mut lat, 0.95) * 1e3,
        percentile(&mut lat, 1.0) * 1e3
    );
    check_general_profile_is_refused(&c);
    check_runc_pod_cannot_capture(&c);
    check_a_cut_capture_ends(&c);
    println!(
        "the page's commands and checks took {:.1} s (cluster up in {:.1} s)",
        t.elapsed().as_secs_f64(),
        c.started_in.as_secs_f64()
    );
}
