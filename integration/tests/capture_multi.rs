//! `netshim capture` of several targets at once: one engine per target, one
//! merged pcapng, read back by tshark (interface names, descriptions,
//! timestamp order) and walked block by block (statistics at the end).

use std::path::Path;
use std::process::{Command, Stdio};

use netshim_integration::*;

/// The blocks of a pcapng file: (type, body after type and length).
fn pcapng_blocks(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    let mut v = Vec::new();
    let mut o = 0;
    while o + 12 <= b.len() {
        let kind = u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[o + 4..o + 8].try_into().unwrap()) as usize;
        assert!(len >= 12 && o + len <= b.len(), "a whole block at {o}");
        v.push((kind, b[o + 8..o + len - 4].to_vec()));
        o += len;
    }
    assert_eq!(o, b.len(), "the file ends on a block boundary");
    v
}

/// Waits until a packet socket is open in the network namespace `name`
/// (`/proc/net/packet` read there lists one): the engine of a capture in
/// it is up. Fixed sleeps missed every packet when engines started slowly
/// on a loaded machine.
fn wait_for_engine_in(name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", name, "cat", "/proc/net/packet"])
            .output()
            .expect("reading /proc/net/packet in the namespace");
        if String::from_utf8_lossy(&out.stdout).lines().count() > 1 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no engine opened a packet socket in {name} within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A shell script for a short-lived target in a network namespace of its
/// own: once a capture's engine has a packet socket there (at most 30 s),
/// it pings its loopback `count` times, 0.1 s apart, and exits.
fn pings_once_captured(count: u32) -> String {
    format!(
        "ip link set lo up; i=0; \
         while [ $(wc -l < /proc/net/packet) -lt 2 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         ping -q -i 0.1 -c {count} 127.0.0.1 >/dev/null"
    )
}

/// Each packet's interface name and epoch time, as tshark reads them.
fn packets(path: &Path) -> Vec<(String, f64)> {
    let r = run(Command::new("tshark").arg("-r").arg(path).args([
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "frame.time_epoch",
    ]))
    .ok();
    r.stdout
        .lines()
        .map(|l| {
            let (n, t) = l.split_once('\t').unwrap();
            (n.to_string(), t.parse().unwrap())
        })
        .collect()
}

fn non_decreasing(p: &[(String, f64)]) -> bool {
    p.windows(2).all(|w| w[0].1 <= w[1].1)
}

/// The interface descriptions tshark reads from the IDBs.
fn descriptions(path: &Path) -> String {
    let r = run(Command::new("capinfos").arg("-I").arg(path)).ok();
    r.stdout
}

fn ping_in(pid: i32, secs: u32) -> std::process::Child {
    Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "ping",
            "-q",
            "-i",
            "0.1",
            "-w",
        ])
        .arg(secs.to_string())
        .arg("127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for the short-lived target to exit, checks that the capture
/// `child` goes on 2 s later, then ends it with SIGINT: its output.
fn goes_on_after(
    mut short: std::process::Child,
    child: std::process::Child,
) -> std::process::Output {
    let npid = child.id() as i32;
    short.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        std::fs::read(format!("/proc/{npid}/status")).is_ok(),
        "the capture went on after a target exited"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(npid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait_with_output().unwrap()
}

/// Root: two named namespaces with veth traffic and a containerd task with
/// loopback traffic, in one file; tshark sees every target's packets on
/// interfaces named TARGET/IFACE, in timestamp order; the IDBs describe the
/// targets and every interface has its statistics at the end.
#[test]
fn root_merges_two_named_netns_and_a_containerd_task() {
    let a = Netns::with_peer();
    let b = Netns::with_peer();
    let ctd = Containerd::start("", false);
    let rootfs = busybox_rootfs(ctd.dir.path());
    let id = unique("mt");
    run(&mut ctd.ctr(&[
        "run",
        "-d",
        "--rootfs",
        rootfs.to_str().unwrap(),
        &id,
        "/bin/sleep",
        "1000",
    ]))
    .ok();
    let ls = run(&mut ctd.ctr(&["task", "ls"])).ok();
    let task_pid: i32 = ls
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("the task runs: {ls:#?}"));
    run(Command::new("nsenter").args([
        "-t",
        &task_pid.to_string(),
        "-n",
        "ip",
        "link",
        "set",
        "lo",
        "up",
    ]))
    .ok();
    let pa = a.ping_from_peer(30);
    let pb = b.ping_from_peer(30);
    let pt = ping_in(task_pid, 30);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("m.pcapng");
    let task = format!("containerd:default/{id}");
    let r = run(netshim_with_timeout(60)
        .env("CONTAINERD_ADDRESS", &ctd.address)
        .args([
            "capture",
            "--target-netns",
            &a.target(),
            "--target-netns",
            &b.target(),
            "--target-netns",
            &task,
            "-i",
            "any",
            "-c",
            "90",
            "-w",
            f.to_str().unwrap(),
            "icmp",
        ]));
    stop(pa);
    stop(pb);
    stop(pt);
    let r = r.ok();
    assert!(r.stderr.contains("90 packets captured"), "{}", r.stderr);
    let p = packets(&f);
    assert_eq!(p.len(), 90, "{p:?}");
    for t in [a.target(), b.target(), task.clone()] {
        let n = p
            .iter()
            .filter(|(i, _)| i.starts_with(&format!("{t}/")))
            .count();
        assert!(n > 0, "packets of {t}: {p:?}");
    }
    assert!(
        p.iter()
            .any(|(i, _)| *i == format!("{}/{}", a.target(), a.veth)),
        "{p:?}"
    );
    assert!(p.iter().any(|(i, _)| *i == format!("{task}/lo")), "{p:?}");
    assert!(non_decreasing(&p), "time order: {p:?}");
    let desc = descriptions(&f);
    assert!(
        desc.contains(&format!("named network namespace {}", a.name)),
        "{desc}"
    );
    assert!(
        desc.contains(&format!("containerd container {id} (namespace default)")),
        "{desc}"
    );
    let blocks = pcapng_blocks(&f);
    let idbs = blocks.iter().filter(|(k, _)| *k == 1).count();
    let isbs: Vec<usize> = blocks
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == 5)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(isbs.len(), idbs, "an ISB per interface");
    assert!(
        isbs[0] > blocks.iter().rposition(|(k, _)| *k == 6).unwrap(),
        "ISBs at the end"
    );
    run(&mut ctd.ctr(&["task", "kill", "-s", "KILL", &id])).ok();
}

/// A target that exits ends its stream (its statistics still written) and
/// the capture goes on with the other; SIGINT then ends it with a valid
/// file. When every target has exited the capture ends by itself.
#[test]
fn a_target_that_exits_leaves_the_others_and_the_last_ends_the_capture() {
    require_root();
    let a = Netns::with_peer();
    let pa = a.ping_from_peer(30);
    // A short-lived target: a process in a network namespace of its own
    // that, once the capture's engine has a packet socket there (at most
    // 30 s), pings its loopback and is gone about 2 s later.
    let short = Command::new("unshare")
        .args(["-n", "sh", "-c", &pings_once_captured(20)])
        .spawn()
        .unwrap();
    let spid = short.id() as i32;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("exit.pcapng");
    let child = netshim_with_timeout(60)
        .args([
            "capture",
            "--target-netns",
            &a.target(),
            "--target-netns",
            &format!("pid:{spid}"),
            "-i",
            "any",
            "-w",
            f.to_str().unwrap(),
            "icmp",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_engine_in(&a.name);
    let out = goes_on_after(short, child);
    stop(pa);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let p = packets(&f);
    let short_label = format!("pid:{spid}/lo");
    let of_short: Vec<&(String, f64)> = p.iter().filter(|(i, _)| *i == short_label).collect();
    assert!(!of_short.is_empty(), "{p:?}");
    let last_short = of_short.last().unwrap().1;
    assert!(
        p.iter()
            .any(|(i, t)| i.starts_with(&a.target()) && *t > last_short + 1.0),
        "packets of the other target after the short one exited: {p:?}"
    );
    assert!(non_decreasing(&p));
    let blocks = pcapng_blocks(&f);
    let isbs = blocks.iter().filter(|(k, _)| *k == 5).count();
    let idbs = blocks.iter().filter(|(k, _)| *k == 1).count();
    assert_eq!(
        isbs, idbs,
        "statistics of every interface, the exited one's too: {err}"
    );
    // The closing counts are per ring: the exited target's `any`.
    assert!(err.contains(&format!("  pid:{spid}/any: ")), "{err}");

    // Two short targets: the capture ends when the last has exited.
    let shorts: Vec<std::process::Child> = (0..2)
        .map(|k| {
            Command::new("unshare")
                .args(["-n", "sh", "-c", &pings_once_captured(10 + 10 * k)])
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    let r = run(netshim_with_timeout(30).args([
        "capture",
        "--target-netns",
        &format!("pid:{}", shorts[0].id()),
        "--target-netns",
        &format!("pid:{}", shorts[1].id()),
        "-i",
        "lo",
        "-w",
        f.to_str().unwrap(),
    ]));
    for mut s in shorts {
        let _ = s.wait();
    }
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(t0.elapsed().as_secs() < 15, "ended with its targets");
    assert!(!packets(&f).is_empty());
}

/// The line printer names each packet's target and interface; -c counts
/// across targets; with --sealed, each target's engine holds no capability
/// (its sockets made by netshim in the target).
#[test]
fn lines_name_the_target_and_interface() {
    let a = Netns::with_peer();
    let b = Netns::with_peer();
    let pa = a.ping_from_peer(20);
    let pb = b.ping_from_peer(20);
    let r = run(netshim_with_timeout(60).args([
        "capture",
        "--sealed",
        "--target-netns",
        &a.target(),
        "--target-netns",
        &b.target(),
        "-c",
        "40",
        "icmp",
    ]));
    stop(pa);
    stop(pb);
    let r = r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 40, "{r:#?}");
    for (ns, veth) in [(&a, &a.veth), (&b, &b.veth)] {
        let tag = format!(
            " {}/{veth} In  IP {} > {}: ICMP echo request",
            ns.target(),
            ns.peer_addr,
            ns.addr
        );
        assert!(lines.iter().any(|l| l.contains(&tag)), "{tag}: {lines:#?}");
    }
    assert!(r.stderr.contains("40 packets captured"), "{}", r.stderr);
}

/// Ctrl-C to the process group of a merged capture that prints lines:
/// every packet counted is printed, and it ends with status 0.
#[test]
fn ctrl_c_ends_a_merged_capture_with_every_line_printed() {
    use std::os::unix::process::CommandExt;
    let a = Netns::with_peer();
    let b = Netns::with_peer();
    let pa = a.ping_from_peer(30);
    let pb = b.ping_from_peer(30);
    let c = Command::new(netshim())
        .args([
            "capture",
            "--target-netns",
            &a.target(),
            "--target-netns",
            &b.target(),
            "icmp",
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_engine_in(&a.name);
    wait_for_engine_in(&b.name);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = c.wait_with_output().unwrap();
    stop(pa);
    stop(pb);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    let captured = captured_count(&err) as usize;
    assert!(captured >= 20, "{err}");
    assert_eq!(text.lines().count(), captured, "{err}\n{text}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// An unprivileged user: two of its rootless containers in one stream to
/// tshark, chosen by a Compose project label; `targets --expand` lists
/// them; a target it cannot join (a namespace of root's) is refused before
/// anything starts, or left out with --skip-unreachable.
#[test]
fn user_captures_its_compose_project_and_is_refused_roots_netns() {
    let project = unique("proj");
    let label = format!("com.docker.compose.project={project}");
    let mut cs = Vec::new();
    for _ in 0..2 {
        let name = unique("nsc");
        run(&mut as_user(&[
            "/usr/bin/docker",
            "run",
            "-d",
            "--label",
            &label,
            "--name",
            &name,
            "netshim-busybox",
            "ping",
            "-i",
            "0.1",
            "127.0.0.1",
        ]))
        .ok();
        cs.push(UserContainer { name });
    }
    let bin = netshim();
    let sel = format!("docker-compose:{project}");
    let r = run(&mut as_user(&[
        bin.to_str().unwrap(),
        "targets",
        "--expand",
        &sel,
    ]))
    .ok();
    for c in &cs {
        assert!(
            r.stdout
                .contains(&format!("{}\tdocker container {}", c.target(), c.name)),
            "{r:#?}"
        );
    }
    let script = format!(
        "timeout 60 {} capture --target-netns {sel} -i lo -c 40 -w - icmp \
         | tshark -r - -T fields -e frame.interface_name -e frame.time_epoch -e frame.interface_description",
        bin.display()
    );
    let r = run(&mut as_user(&["sh", "-c", &script])).ok();
    let rows: Vec<Vec<&str>> = r.stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 40, "{r:#?}");
    for c in &cs {
        let name = format!("{}/lo", c.target());
        let row = rows.iter().find(|x| x[0] == name);
        let row = row.unwrap_or_else(|| panic!("packets of {name}: {r:#?}"));
        assert!(row[2].contains("image netshim-busybox"), "{row:?}");
    }
    let ts: Vec<f64> = rows.iter().map(|x| x[1].parse().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    assert!(
        r.stderr.contains(&format!("{sel} stands for 2 target(s)")),
        "{}",
        r.stderr
    );

    // A network namespace of root's: refused up front, nothing written.
    let roots = Netns::new();
    let (user, _) = test_user();
    let path = format!("/home/{user}/{}.pcapng", unique("refused"));
    let r = run(&mut as_user(&[
        "timeout",
        "60",
        bin.to_str().unwrap(),
        "capture",
        "--target-netns",
        &cs[0].target(),
        "--target-netns",
        &roots.target(),
        "-i",
        "lo",
        "-c",
        "4",
        "-w",
        &path,
    ]));
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stderr
            .contains(&format!("cannot capture in {}", roots.target())),
        "{r:#?}"
    );
    assert!(r.stderr.contains("--skip-unreachable"), "{r:#?}");
    assert!(!Path::new(&path).exists(), "nothing was started");
    let r = run(&mut as_user(&[
        "timeout",
        "60",
        bin.to_str().unwrap(),
        "capture",
        "--skip-unreachable",
        "--target-netns",
        &cs[0].target(),
        "--target-netns",
        &roots.target(),
        "-i",
        "lo",
        "-c",
        "4",
        "-w",
        &path,
        "icmp",
    ]))
    .ok();
    assert!(
        r.stderr.contains(&format!("skipping {}", roots.target())),
        "{r:#?}"
    );
    let p = packets(Path::new(&path));
    let _ = std::fs::remove_file(&path);
    assert_eq!(p.len(), 4);
    assert!(
        p.iter()
            .all(|(i, _)| *i == format!("{}/lo", cs[0].target())),
        "{p:?}"
    );
}

/// The engines (`netshim capture-engine`, after their exec) that descend
/// from `pid`.
fn engines_under(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{p}/cmdline")) else {
            continue;
        };
        let second = cmd.split(|b| *b == 0).nth(1).unwrap_or_default();
        if second == b"capture-engine" && descends_from(p, pid) {
            v.push(p);
        }
    }
    v
}

fn netns_of(pid: i32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap()
}

fn named_netns(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/run/netns/{name}"))
        .unwrap()
        .ino();
    std::path::PathBuf::from(format!("net:[{ino}]"))
}

/// Runs a packet-socket attempt in the engine's user and network
/// namespaces with `creds` (nsenter's own flags); true when it succeeded.
fn packet_socket_in_engine(engine: i32, creds: &[&str]) -> bool {
    let r = run(Command::new("nsenter")
        .args(["-t", &engine.to_string()])
        .args(creds)
        .args([
            "/usr/bin/python3",
            "-c",
            "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
        ]));
    if r.code != Some(0) {
        assert!(r.stderr.contains("PermissionError"), "{r:#?}");
    }
    r.code == Some(0)
}

/// Four targets at once — two named netns with veth traffic, a process in
/// a network namespace of its own that exits mid-capture, and another that
/// stays — read by one engine that holds every target's sockets and no
/// privilege: CapEff 0 (every set empty), NoNewPrivs 1, a seccomp filter,
/// UID 65534, a network namespace that is none of the targets' nor the
/// host's and holds only its loopback and no packet socket, where its
/// credentials cannot open a packet socket (root's can: the control). The
/// exited target's interfaces end (their statistics written) while the
/// others go on; tshark reads every target's packets, named TARGET/IFACE,
/// in timestamp order.
#[test]
fn four_targets_one_engine_without_privilege_one_exits_mid_capture() {
    require_root();
    let a = Netns::with_peer();
    let b = Netns::with_peer();
    let pa = a.ping_from_peer(40);
    let pb = b.ping_from_peer(40);
    let short = Command::new("unshare")
        .args(["-n", "sh", "-c", &pings_once_captured(20)])
        .spawn()
        .unwrap();
    let long = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up; exec ping -q -i 0.1 -w 40 127.0.0.1 >/dev/null",
        ])
        .spawn()
        .unwrap();
    let (spid, lpid) = (short.id() as i32, long.id() as i32);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let target_nets = [
        named_netns(&a.name),
        named_netns(&b.name),
        netns_of(spid),
        netns_of(lpid),
    ];
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("four.pcapng");
    let (ts, tl) = (format!("pid:{spid}"), format!("pid:{lpid}"));
    let child = netshim_with_timeout(90)
        .args(["capture", "-i", "any", "-w", f.to_str().unwrap()])
        .args(["--target-netns", &a.target(), "--target-netns", &b.target()])
        .args(["--target-netns", &ts, "--target-netns", &tl, "icmp"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let npid = child.id() as i32;
    let engine = wait_for_descendant_running(npid, &["capture-engine", "--write=pcapng"]);
    assert_eq!(engines_under(npid), [engine], "one engine for four targets");
    let status = std::fs::read_to_string(format!("/proc/{engine}/status")).unwrap();
    let fields = status_fields(&status);
    for k in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(fields[k], "0000000000000000", "{k}: {status}");
    }
    assert_eq!(fields["Uid"], "65534 65534 65534 65534", "{status}");
    assert_eq!(fields["NoNewPrivs"], "1", "{status}");
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "{status}");
    let own = netns_of(engine);
    assert_ne!(own, netns_of(std::process::id() as i32), "not the host's");
    for t in &target_nets {
        assert_ne!(&own, t, "not a target's network namespace");
    }
    let links =
        run(Command::new("nsenter").args(["-t", &engine.to_string(), "-n", "ip", "-o", "link"]))
            .ok();
    assert_eq!(links.stdout.lines().count(), 1, "{}", links.stdout);
    assert!(links.stdout.contains(": lo:"), "{}", links.stdout);
    let packet = std::fs::read_to_string(format!("/proc/{engine}/net/packet")).unwrap();
    assert_eq!(
        packet.lines().count(),
        1,
        "no packet socket in its own: {packet}"
    );
    assert!(
        !packet_socket_in_engine(engine, &["-U", "-n", "-S", "65534", "-G", "65534"]),
        "the engine's credentials in its namespaces cannot open a packet socket"
    );
    assert!(
        packet_socket_in_engine(engine, &["-n"]),
        "control: root can, in the same network namespace"
    );
    let out = goes_on_after(short, child);
    stop(pa);
    stop(pb);
    stop(long);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("the process of {ts} exited")),
        "{err}"
    );
    let p = packets(&f);
    for (t, iface) in [
        (a.target(), a.veth.clone()),
        (b.target(), b.veth.clone()),
        (ts.clone(), "lo".to_string()),
        (tl.clone(), "lo".to_string()),
    ] {
        let name = format!("{t}/{iface}");
        assert!(
            p.iter().any(|(i, _)| *i == name),
            "packets of {name}: {p:?}"
        );
    }
    assert!(non_decreasing(&p), "time order: {p:?}");
    let last_short = p
        .iter()
        .filter(|(i, _)| i.starts_with(&format!("{ts}/")))
        .map(|(_, t)| *t)
        .fold(0.0, f64::max);
    assert!(
        p.iter()
            .any(|(i, t)| i.starts_with(&format!("{tl}/")) && *t > last_short + 1.0),
        "the staying target after the exited one: {p:?}"
    );
    let blocks = pcapng_blocks(&f);
    let idbs = blocks.iter().filter(|(k, _)| *k == 1).count();
    let isbs = blocks.iter().filter(|(k, _)| *k == 5).count();
    assert!(idbs >= 4, "{idbs} interfaces");
    assert_eq!(
        isbs, idbs,
        "statistics of every interface, the exited one's too"
    );
    let desc = descriptions(&f);
    assert!(
        desc.contains(&format!("named network namespace {}", b.name)),
        "{desc}"
    );
}
