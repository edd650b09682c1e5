//! `netshim capture` as root into `ip netns` targets, on real veth traffic,
//! checked by tshark and capinfos.

use std::process::{Command, Stdio};

use netshim_integration::*;

fn capture(ns: &Netns, args: &[&str]) -> Command {
    let mut c = netshim_with_timeout(60);
    c.args(["capture", "--target-netns", &ns.target()])
        .args(args);
    c
}

fn tmp(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    (d, p)
}

#[test]
fn count_and_filter_give_exactly_the_matching_packets_in_pcapng() {
    let ns = Netns::with_peer();
    let (_d, f) = tmp("f.pcapng");
    let gen = ns.udp_from_peer(&[5000, 5001], 30);
    let r = run(&mut capture(
        &ns,
        &[
            "-i",
            &ns.veth,
            "-c",
            "300",
            "-w",
            f.to_str().unwrap(),
            "udp port 5000",
        ],
    ));
    stop(gen);
    let r = r.ok();
    assert!(r.stderr.contains("300 packets captured"), "{}", r.stderr);
    assert_eq!(tshark_lines(&f, None).len(), 300);
    assert_eq!(tshark_lines(&f, Some("udp.dstport == 5000")).len(), 300);
    let info = capinfos(&f);
    assert!(info.contains("pcapng"), "{info}");
    assert!(info.contains(&format!("Name = {}", ns.veth)), "{info}");
    assert!(info.contains("Time precision = nanoseconds (9)"), "{info}");
    assert!(info.contains("Filter string = udp port 5000"), "{info}");
    assert!(
        info.contains("Number of stat entries = 1"),
        "an ISB is written at close: {info}"
    );
    // Direction flags: the datagrams come in from the peer.
    let dirs =
        run(Command::new("tshark")
            .arg("-r")
            .arg(&f)
            .args(["-T", "fields", "-e", "frame.p2p_dir"]))
        .ok();
    assert!(
        dirs.stdout.lines().all(|l| l.trim() == "1"),
        "all inbound: {}",
        dirs.stdout
    );
}

/// `--format pcap` writes tcpdump's microsecond magic unless
/// `--time-stamp-precision=nano` asks for nanoseconds, as tcpdump -w does;
/// `--print` prints each packet's line on stdout while the file is written.
#[test]
fn pcap_format_has_tcpdumps_magic_and_print_prints_beside_it() {
    let ns = Netns::with_peer();
    let gen = ns.udp_from_peer(&[5000], 60);
    for (precision, magic, says) in [
        (None, [0xd4, 0xc3, 0xb2, 0xa1], "microseconds"),
        (
            Some("--time-stamp-precision=nano"),
            [0x4d, 0x3c, 0xb2, 0xa1],
            "nanoseconds",
        ),
    ] {
        let (_d, f) = tmp("f.pcap");
        let mut args = vec!["-i", &ns.veth, "-c", "50", "--format", "pcap"];
        args.extend(precision);
        args.extend(["--print", "-w", f.to_str().unwrap(), "udp"]);
        let r = run(&mut capture(&ns, &args)).ok();
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(&bytes[..4], &magic, "{precision:?}");
        let info = capinfos(&f);
        assert!(info.contains("Number of packets:   50"), "{info}");
        assert!(info.contains(says), "{info}");
        // The printed lines are the file's packets, as tcpdump -r prints them
        // (one interface: no interface nor direction, as tcpdump's).
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), 50, "{}", r.stdout);
        let mut t = Command::new("tcpdump");
        t.arg("-n").args(precision).arg("-r").arg(&f);
        let t = run(&mut t).ok();
        let theirs: Vec<&str> = t.stdout.lines().collect();
        assert_eq!(lines, theirs, "{precision:?}");
    }
    stop(gen);
}

#[test]
fn several_interfaces_get_one_idb_each() {
    let ns = Netns::with_peer();
    let (_d, f) = tmp("two.pcapng");
    let mut ping = ns.ping_from_peer(20);
    // Loopback traffic inside the target at the same time.
    let lo = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "ping",
            "-q",
            "-i",
            "0.1",
            "-w",
            "20",
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let r = run(&mut capture(
        &ns,
        &[
            "-i",
            &ns.veth,
            "-i",
            "lo",
            "-c",
            "40",
            "-w",
            f.to_str().unwrap(),
            "icmp",
        ],
    ));
    let _ = ping.kill();
    let _ = ping.wait();
    stop(lo);
    r.ok();
    let info = capinfos(&f);
    assert!(info.contains("Number of interfaces in file: 2"), "{info}");
    let names = run(Command::new("tshark").arg("-r").arg(&f).args([
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
    ]))
    .ok();
    assert!(names.stdout.lines().any(|l| l == "lo"), "{}", names.stdout);
    assert!(
        names.stdout.lines().any(|l| l == ns.veth),
        "{}",
        names.stdout
    );
}

#[test]
fn sigint_mid_capture_leaves_a_valid_file_with_statistics() {
    let ns = Netns::with_peer();
    let (_d, f) = tmp("int.pcapng");
    let gen = ns.udp_from_peer(&[5000], 30);
    let c = Command::new(netshim())
        .args([
            "capture",
            "--target-netns",
            &ns.target(),
            "-i",
            &ns.veth,
            "-w",
            f.to_str().unwrap(),
            "udp",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = c.wait_with_output().unwrap();
    stop(gen);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let captured = captured_count(&err);
    assert!(captured > 50, "traffic flowed for 1.5 s: {err}");
    let info = capinfos(&f);
    assert!(
        info.contains(&format!("Number of packets:   {captured}"))
            || info.contains(&format!("Number of packets = {captured}")),
        "{info}"
    );
    assert!(info.contains("Number of stat entries = 1"), "{info}");
}

/// Ctrl-C reaches the whole foreground process group, the forked writer
/// too: with rotation, every packet netshim counts is in the files.
#[test]
fn ctrl_c_to_the_process_group_loses_nothing_with_rotation() {
    use std::os::unix::process::CommandExt;
    let ns = Netns::with_peer();
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("rot.pcapng");
    let gen = ns.udp_from_peer(&[5000], 30);
    let c = Command::new(netshim())
        .args([
            "capture",
            "--target-netns",
            &ns.target(),
            "-i",
            &ns.veth,
            "-C",
            "1",
            "-w",
            base.to_str().unwrap(),
            "udp",
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = c.wait_with_output().unwrap();
    stop(gen);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let captured = captured_count(&err);
    assert!(captured > 50, "{err}");
    let mut in_files = 0u64;
    for e in std::fs::read_dir(d.path()).unwrap() {
        let r = run(Command::new("capinfos")
            .args(["-c", "-M"])
            .arg(e.unwrap().path()))
        .ok();
        in_files += r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Number of packets:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap();
    }
    assert_eq!(in_files, captured, "{err}");
}

#[test]
fn live_stream_into_tshark() {
    let ns = Netns::with_peer();
    let mut ping = ns.ping_from_peer(20);
    let cmd = format!(
        "timeout 60 {} capture --target-netns {} -i {} -c 6 -w - icmp | tshark -r -",
        netshim().display(),
        ns.target(),
        ns.veth
    );
    let r = sh(&cmd);
    let _ = ping.kill();
    let _ = ping.wait();
    let r = r.ok();
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("ICMP")).collect();
    assert_eq!(lines.len(), 6, "{r:#?}");
}

#[test]
fn summary_lines_without_w() {
    let ns = Netns::with_peer();
    let gen = ns.udp_from_peer(&[5000], 30);
    let r = run(&mut capture(&ns, &["-n", "-i", &ns.veth, "-c", "4", "udp"]));
    stop(gen);
    let r = r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    for l in lines {
        assert!(
            l.contains(&format!(" IP {}.", ns.peer_addr)) && !l.contains(&ns.veth),
            "{l}"
        );
        assert!(
            l.contains(&format!("> {}.5000: UDP, length 13", ns.addr)),
            "{l}"
        );
    }
}

#[test]
fn snaplen_cuts_packets_but_keeps_their_length() {
    let ns = Netns::with_peer();
    let (_d, f) = tmp("s.pcapng");
    let mut ping = ns.ping_from_peer(20);
    let r = run(&mut capture(
        &ns,
        &[
            "-i",
            &ns.veth,
            "-s",
            "60",
            "-c",
            "4",
            "-w",
            f.to_str().unwrap(),
            "icmp",
        ],
    ));
    let _ = ping.kill();
    let _ = ping.wait();
    r.ok();
    let t = run(Command::new("tshark").arg("-r").arg(&f).args([
        "-T",
        "fields",
        "-e",
        "frame.cap_len",
        "-e",
        "frame.len",
    ]))
    .ok();
    for l in t.stdout.lines() {
        let v: Vec<u32> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(v, vec![60, 98], "{}", t.stdout);
    }
}

#[test]
fn the_engine_runs_as_nobody_with_only_net_raw() {
    let ns = Netns::with_peer();
    let c = Command::new(netshim())
        .args([
            "capture",
            "--target-netns",
            &ns.target(),
            "-i",
            &ns.veth,
            "-w",
            "/dev/null",
            "udp",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The engine after its exec: `netshim capture-engine ... --write=pcapng`
    // (the outer netshim is `netshim capture ... -w /dev/null`).
    let engine = wait_for_descendant_running(c.id() as i32, &["capture-engine", "--write=pcapng"]);
    // Once set up, the engine adds its allow-list to the deny-list it was
    // started with: two stacked filters.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        let s = std::fs::read_to_string(format!("/proc/{engine}/status")).unwrap();
        if s.contains("Seccomp_filters:\t2") || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.contains("Seccomp_filters:\t2"), "{status}");
    // The engine runs from a sealed in-memory copy of netshim, never the
    // host's file (the runc CVE-2019-5736 class).
    let exe = std::fs::read_link(format!("/proc/{engine}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:netshim"),
        "engine exe is {exe:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = c.wait_with_output();
    assert_least_privilege(&status);
}

#[test]
fn bad_filters_fail_with_libpcaps_message() {
    let ns = Netns::new();
    let r = run(&mut capture(&ns, &["-i", "lo", "-c", "1", "udp", "port"]));
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("invalid filter expression \"udp port\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("syntax error"), "{}", r.stderr);
}

#[test]
fn binary_output_to_a_terminal_is_refused() {
    let ns = Netns::new();
    let cmd = format!(
        "{} capture --target-netns {} -i lo -w -",
        netshim().display(),
        ns.target()
    );
    let r = run(Command::new("script").args(["-qec", &cmd, "/dev/null"]));
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout
            .contains("refusing to write binary capture data to a terminal"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_full_disk_leaves_a_readable_file() {
    let ns = Netns::with_peer();
    let d = tempfile::tempdir().unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=256k netshim-test-full {}",
        d.path().display()
    ))
    .ok();
    let f = d.path().join("full.pcapng");
    let gen = ns.udp_from_peer(&[5000], 60);
    let r = run(&mut capture(
        &ns,
        &["-i", &ns.veth, "-w", f.to_str().unwrap(), "udp"],
    ));
    stop(gen);
    let info = run(Command::new("capinfos").arg(&f));
    let in_file = tshark_lines(&f, None).len() as u64;
    let _ = sh(&format!("umount {}", d.path().display()));
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("no space left"), "{}", r.stderr);
    assert_eq!(
        info.code,
        Some(0),
        "capinfos must read the cut file: {info:#?}"
    );
    assert!(info.stdout.contains("Number of packets"), "{}", info.stdout);
    assert_full_disk_summary(&r.stderr, &f, in_file);
}

/// The closing counts after a full disk say what the file holds and what
/// was captured but lost: "N packets written to FILE; M packets captured
/// but not written: no space left on device", N the packets in the file
/// and N + M the packets captured.
#[track_caller]
fn assert_full_disk_summary(stderr: &str, f: &std::path::Path, in_file: u64) {
    let captured = captured_count(stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains(" packets written to "))
        .unwrap_or_else(|| panic!("no \"packets written to\" line in: {stderr}"));
    let want_tail = "packets captured but not written: no space left on device";
    let (written, rest) = line
        .split_once(&format!(" packets written to {}; ", f.display()))
        .unwrap_or_else(|| panic!("{line:?} names the file"));
    let lost = rest
        .strip_suffix(want_tail)
        .unwrap_or_else(|| panic!("{line:?} ends with the cause"));
    let written: u64 = written.parse().unwrap();
    let lost: u64 = lost.trim().parse().unwrap();
    assert!(in_file > 0, "the file holds packets: {stderr}");
    assert_eq!(
        written, in_file,
        "the summary counts the file's packets: {stderr}"
    );
    assert_eq!(written + lost, captured, "{stderr}");
    assert!(lost > 0, "a full disk loses what was buffered: {stderr}");
}

/// The same on a ping flood with the engine in this process (no target)
/// and a pcap file: the count said is the count in the file, and the exit
/// status is 1.
#[test]
fn a_full_disk_says_how_many_packets_the_file_holds() {
    let ns = Netns::with_peer();
    for format in ["pcap", "pcapng"] {
        let d = tempfile::tempdir().unwrap();
        sh(&format!(
            "mount -t tmpfs -o size=512k netshim-test-full {}",
            d.path().display()
        ))
        .ok();
        let f = d.path().join(format!("flood.{format}"));
        let flood = flood_from_peer(&ns);
        let r = run(Command::new("ip")
            .args(["netns", "exec", &ns.name, "timeout", "60"])
            .arg(netshim())
            .args(["capture", "-i", &ns.veth, "--format", format, "-w"])
            .arg(&f)
            .arg("icmp"));
        stop(flood);
        let in_file = tshark_lines(&f, None).len() as u64;
        let _ = sh(&format!("umount {}", d.path().display()));
        assert_eq!(r.code, Some(1), "{format}: {r:#?}");
        assert_full_disk_summary(&r.stderr, &f, in_file);
    }
}

/// A ping flood of ~1 kB packets from the peer to the target, for 20 s at
/// most (stop it with `stop`).
fn flood_from_peer(ns: &Netns) -> std::process::Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.peer.as_ref().unwrap(),
            "ping",
            "-q",
            "-f",
            "-s",
            "1000",
            "-w",
            "20",
            &ns.addr,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn size_rotation_keeps_a_ring_of_readable_files() {
    let ns = Netns::with_peer();
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("ring.pcapng");
    let flood = flood_from_peer(&ns);
    // 4000 packets of ~1 kB: about 4 MB, so the 3-file ring of 1 MB wraps.
    let r = run(&mut capture(
        &ns,
        &[
            "-i",
            &ns.veth,
            "-C",
            "1",
            "-W",
            "3",
            "-c",
            "4000",
            "-w",
            base.to_str().unwrap(),
            "icmp",
        ],
    ));
    stop(flood);
    let r = r.ok();
    assert!(r.stderr.contains("wrote"), "{}", r.stderr);
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["ring.pcapng0", "ring.pcapng1", "ring.pcapng2"]);
    for n in names {
        let p = d.path().join(&n);
        assert!(
            std::fs::metadata(&p).unwrap().len() <= 1_000_000,
            "{n} is larger than -C 1"
        );
        let info = capinfos(&p);
        assert!(info.contains("pcapng"), "{n}: {info}");
        assert!(
            info.contains(&format!("Name = {}", ns.veth)),
            "{n} starts with its own IDB: {info}"
        );
    }
}

#[test]
fn time_rotation_names_files_by_strftime_and_stops_after_w() {
    let ns = Netns::with_peer();
    let d = tempfile::tempdir().unwrap();
    let pattern = d.path().join("t-%H%M%S.pcapng");
    let mut ping = ns.ping_from_peer(30);
    let r = run(&mut capture(
        &ns,
        &[
            "-i",
            &ns.veth,
            "-G",
            "1",
            "-W",
            "2",
            "-w",
            pattern.to_str().unwrap(),
            "icmp",
        ],
    ));
    let _ = ping.kill();
    let _ = ping.wait();
    let r = r.ok();
    assert!(
        r.stderr.contains("made the 2 files asked for"),
        "{}",
        r.stderr
    );
    let files: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        let n = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            n.starts_with("t-") && n.ends_with(".pcapng") && !n.contains('%'),
            "{n}"
        );
        assert!(capinfos(&f).contains("Number of packets"), "{n}");
    }
}

#[test]
fn rotation_needs_a_file_name() {
    let ns = Netns::new();
    let r = run(&mut capture(&ns, &["-i", "lo", "-C", "1", "-w", "-"]));
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("give them a name with -w FILE"),
        "{}",
        r.stderr
    );
    // A file name in a directory of the test's own: a fixed name under /tmp
    // could be anything another user or an earlier run left there.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    let r = run(&mut capture(
        &ns,
        &["-i", "lo", "-W", "3", "-w", file.to_str().unwrap()],
    ));
    assert!(r.stderr.contains("-W needs -C or -G"), "{}", r.stderr);
    assert!(!file.exists(), "a refused capture creates no file");
}

/// Whoever holds CAP_NET_ADMIN in a target names its interfaces, and the
/// kernel lets a name hold terminal control bytes: the engine's lines and
/// messages print them escaped.
#[test]
fn a_hostile_interface_name_cannot_drive_the_terminal() {
    let ns = Netns::new();
    let name = "e\x1b]0;x\x07";
    let ok = Command::new("ip")
        .args([
            "-n", &ns.name, "link", "add", name, "type", "veth", "peer", "name", "hp0",
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "ip link add with control bytes in the name");
    let n = &ns.name;
    let h = "\"$(printf 'e\\033]0;x\\007')\"";
    sh(&format!(
        "ip -n {n} addr add 198.18.9.1/30 dev {h} && ip -n {n} link set dev {h} up && \
         ip -n {n} link set hp0 up"
    ))
    .ok();
    let c = capture(&ns, &["-i", "any", "-c", "1", "arp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // ARP for 198.18.9.2 goes out of the hostile interface (no one answers).
    sh(&format!(
        "ip netns exec {n} ping -c 1 -W 1 198.18.9.2 >/dev/null 2>&1"
    ));
    let out = c.wait_with_output().unwrap();
    let text = [out.stdout, out.stderr].concat();
    assert!(
        !text.contains(&0x1b) && !text.contains(&0x07),
        "raw control bytes reached the terminal: {:?}",
        String::from_utf8_lossy(&text)
    );
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("e\\x1b]0;x\\x07"), "{text}");
}

/// `--sealed` as root (drop-uid): the engine runs as 65534 of a user
/// namespace of its own, with every capability set empty and an empty
/// network namespace, from the sealed memfd, and captures the veth traffic.
#[test]
fn sealed_engine_holds_no_capability_and_still_captures() {
    let ns = Netns::with_peer();
    let mut ping = ns.ping_from_peer(30);
    let (_d, path) = tmp("sealed.pcapng");
    let c = capture(
        &ns,
        &[
            "--sealed",
            "-i",
            &ns.veth,
            "-c",
            "8",
            "-w",
            path.to_str().unwrap(),
            "icmp",
        ],
    )
    .stdin(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let engine = wait_for_descendant_running(c.id() as i32, &["capture-engine", "--write=pcapng"]);
    let status = std::fs::read_to_string(format!("/proc/{engine}/status")).unwrap();
    let exe = std::fs::read_link(format!("/proc/{engine}/exe")).unwrap();
    let engine_ns = [
        std::fs::read_link(format!("/proc/{engine}/ns/net")).unwrap(),
        std::fs::read_link(format!("/proc/{engine}/ns/user")).unwrap(),
    ];
    let target_net = {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(format!("/run/netns/{}", ns.name))
            .unwrap()
            .ino();
        std::path::PathBuf::from(format!("net:[{ino}]"))
    };
    let host_user = std::fs::read_link("/proc/self/ns/user").unwrap();
    let out = c.wait_with_output().unwrap();
    let _ = ping.kill();
    let _ = ping.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let f = status_fields(&status);
    for k in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(f[k], "0000000000000000", "{k}: {status}");
    }
    assert_eq!(f["Uid"], "65534 65534 65534 65534");
    assert_eq!(f["NoNewPrivs"], "1");
    assert!(
        exe.to_string_lossy().starts_with("/memfd:netshim"),
        "{exe:?}"
    );
    assert_ne!(engine_ns[1], host_user, "a user namespace of its own");
    assert_ne!(engine_ns[0], target_net, "not the target's netns");
    assert!(
        capinfos(&path).contains("Number of packets:   8"),
        "{}",
        capinfos(&path)
    );
}

#[test]
fn sealed_needs_a_target() {
    let r = run(Command::new(netshim()).args(["capture", "--sealed", "-i", "lo", "-c", "1"]));
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("--sealed needs --target-netns"), "{r:#?}");
}

/// tcpdump's `-z`: each file rotation closes is handed to the command, run
/// as the caller outside the target (here gzip, as tcpdump's manual shows);
/// without rotation `-z` is refused.
#[test]
fn post_rotate_command_gets_each_closed_file() {
    let ns = Netns::with_peer();
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("z.pcapng");
    let r = run(&mut capture(
        &ns,
        &["-i", "lo", "-z", "gzip", "-w", base.to_str().unwrap()],
    ));
    assert!(
        r.stderr.contains("-z runs a command after each rotation"),
        "{r:#?}"
    );
    let flood = flood_from_peer(&ns);
    // About 3 MB in files of 1 MB: two or more rotations.
    let r = run(&mut capture(
        &ns,
        &[
            "-i",
            &ns.veth,
            "-C",
            "1",
            "-c",
            "3000",
            "-z",
            "gzip",
            "-w",
            base.to_str().unwrap(),
            "icmp",
        ],
    ));
    stop(flood);
    r.ok();
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let gz: Vec<&String> = names.iter().filter(|n| n.ends_with(".gz")).collect();
    assert!(gz.len() >= 2, "{names:?}");
    assert!(
        names.iter().any(|n| !n.ends_with(".gz")),
        "the last file stays: {names:?}"
    );
    // A compressed file is a whole capture.
    let first = d.path().join(gz[0]);
    let text = run(Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc {} | capinfos -c -M -", first.display())))
    .ok();
    assert!(text.stdout.contains("Number of packets"), "{text:#?}");
}

/// `-D` in a target lists what tcpdump -D lists there (its Bluetooth,
/// netfilter and D-Bus pseudo-devices aside, which netshim does not
/// capture on), in the same order with the same states, as the interfaces
/// come up.
#[test]
fn list_interfaces_in_a_target_as_tcpdump_does() {
    let ns = Netns::with_peer();
    sh(&format!("ip -n {} link set lo down", ns.name)).ok();
    for step in 0..2 {
        if step == 1 {
            sh(&format!("ip -n {} link set lo up", ns.name)).ok();
        }
        let t = run(Command::new("ip").args(["netns", "exec", &ns.name, "tcpdump", "-D"])).ok();
        let want: Vec<String> = t
            .stdout
            .lines()
            .filter_map(|l| l.split_once('.').map(|(_, rest)| rest.to_string()))
            .filter(|l| {
                !["bluetooth", "nflog", "nfqueue", "dbus"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        let n =
            run(Command::new(netshim()).args(["capture", "--target-netns", &ns.target(), "-D"]))
                .ok();
        let got: Vec<String> = n
            .stdout
            .lines()
            .map(|l| l.split_once('.').unwrap().1.to_string())
            .collect();
        assert_eq!(got, want, "step {step}");
        assert!(n.stdout.starts_with("1."), "{n:#?}");
    }
}

/// A tun interface (raw IP, no link-layer header, as WireGuard's) is
/// captured live: pcapng and pcap say LINKTYPE_RAW, the filter is compiled
/// for raw IP, the printed lines are tcpdump's for the file; a link-layer
/// filter is refused for it with the reason.
#[test]
fn a_tun_interface_is_captured_as_raw_ip() {
    let ns = Netns::new();
    let tun = tun_in(&ns, "tn0", "198.18.251.1");
    for format in ["pcapng", "pcap"] {
        let (_d, f) = tmp("tun.cap");
        // Pings out of the tun interface: nobody reads them, they are
        // captured on their way out.
        let ping = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ping", "-c", "40", "-i", "0.1"])
            .arg("198.18.251.2")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let r = run(&mut capture(
            &ns,
            &[
                "-i",
                "tn0",
                "-c",
                "3",
                "--format",
                format,
                "--print",
                "-w",
                f.to_str().unwrap(),
                "icmp",
            ],
        ))
        .ok();
        stop(ping);
        let info = capinfos(&f);
        assert!(info.contains("Raw IP"), "{format}: {info}");
        let t = run(Command::new("tcpdump").args(["-n", "-r"]).arg(&f)).ok();
        assert_eq!(t.stdout.lines().count(), 3, "{}", t.stdout);
        assert!(
            t.stdout
                .contains("IP 198.18.251.1 > 198.18.251.2: ICMP echo request"),
            "{}",
            t.stdout
        );
        let ours: Vec<&str> = r.stdout.lines().collect();
        let theirs: Vec<&str> = t.stdout.lines().collect();
        assert_eq!(ours, theirs, "{format}");
    }
    let r = run(&mut capture(&ns, &["-i", "tn0", "-c", "1", "arp"]));
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("does not apply to tn0"), "{r:#?}");
    drop(tun);
}

/// `--write-interval MS` with `-w -`: the stream comes in fewer, larger
/// writes, at least MS apart (the header first, the statistics last), and
/// is the same whole stream; without it, each batch comes at once.
#[test]
fn write_interval_writes_a_live_stream_in_fewer_pieces() {
    use std::io::Read;
    let ns = Netns::with_peer();
    let gen = ns.udp_from_peer(&[5000], 30);
    let mut pieces = Vec::new();
    for interval in ["0", "250"] {
        let mut child = capture(
            &ns,
            &[
                "-i",
                &ns.veth,
                "-c",
                "300",
                "-w",
                "-",
                "--write-interval",
                interval,
                "udp port 5000",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut out = child.stdout.take().unwrap();
        let (mut data, mut at) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            at.push(std::time::Instant::now());
            data.extend_from_slice(&buf[..n]);
        }
        assert!(child.wait().unwrap().success());
        let (_d, f) = tmp("s.pcapng");
        std::fs::write(&f, &data).unwrap();
        let r = run(Command::new("tshark").arg("-r").arg(&f)).ok();
        assert_eq!(
            r.stdout.lines().count(),
            300,
            "--write-interval {interval}: {r:#?}"
        );
        // The gaps between the pieces after the header, before the last.
        let gaps: Vec<u128> = at
            .windows(2)
            .skip(1)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        let inner = &gaps[..gaps.len().saturating_sub(1)];
        println!(
            "--write-interval {interval}: {} pieces, gaps {gaps:?} ms",
            at.len()
        );
        if interval == "250" {
            assert!(
                inner.iter().all(|g| *g >= 200),
                "pieces closer than 250 ms: {gaps:?}"
            );
        }
        pieces.push(at.len());
    }
    stop(gen);
    assert!(
        pieces[0] > 2 * pieces[1],
        "each batch at once {} pieces, every 250 ms {}",
        pieces[0],
        pieces[1]
    );
}
