//! `netshim capture -r`: files made in the test by tcpdump (pcap in µs and
//! ns, Ethernet and the Linux cooked headers v1 and v2, raw IP from a tun
//! interface) and converted by tshark and by netshim itself (pcapng), read
//! by tcpdump and by netshim in the same run with the same filters: the
//! counts must agree. Conversions keep every packet (capinfos agrees);
//! a cut file ends with what was read and a clear error; flags tcpdump users
//! type that netshim does not take are refused as flags.

use std::path::Path;
use std::process::Command;

use netshim_integration::*;

/// Traffic between the namespace and its peer, both directions: ICMP, UDP
/// to two ports, TCP (refused: SYN and RST), IPv6 ICMP and a fragmented
/// ICMP datagram. (VLAN tags come from a file made by hand below: this
/// kernel may lack the 8021q module.)
fn traffic(ns: &Netns) {
    let peer = ns.peer.as_ref().unwrap();
    let v = &ns.veth;
    sh(&format!(
        "set -e; ip -n {n} addr add fd00:198:18::1/64 dev {v} nodad; \
         ip -n {p} addr add fd00:198:18::2/64 dev {v}p nodad",
        n = ns.name,
        p = peer
    ))
    .ok();
    let script = format!(
        "ping -c 3 -i 0.1 {a} >/dev/null; \
         ping -6 -c 2 -i 0.1 fd00:198:18::1 >/dev/null; ping -c 1 -s 3000 {a} >/dev/null; \
         for port in 5000 5001 5000; do echo t > /dev/udp/{a}/$port; done; \
         (echo x > /dev/tcp/{a}/7) 2>/dev/null || true; sleep 0.2",
        a = ns.addr
    );
    run(Command::new("ip").args(["netns", "exec", peer, "bash", "-c", &script])).ok();
}

/// Runs tcpdump in `ns` writing `file` with `args` while `traffic` runs.
fn tcpdump_capture(ns: &Netns, args: &[&str], file: &Path, make: impl FnOnce()) {
    let mut c = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "tcpdump",
            "--immediate-mode",
            "-U",
            "-w",
        ])
        .arg(file)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on" once its socket is open.
    let mut err = std::io::BufReader::new(c.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("listening on") {
        let n = std::io::BufRead::read_line(&mut err, &mut said).unwrap();
        assert!(n > 0, "tcpdump ended: {said}");
    }
    make();
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = c.wait().unwrap();
    std::io::Read::read_to_string(&mut err, &mut said).unwrap();
    assert!(st.success(), "tcpdump: {st}: {said}");
}

/// Waits until the veth pair carries traffic (a ping from the peer is
/// answered), so that the first capture sees what the test sends.
fn wait_until_it_carries(ns: &Netns) {
    let up = run(Command::new("ip").args([
        "netns",
        "exec",
        ns.peer.as_ref().unwrap(),
        "ping",
        "-c",
        "1",
        "-w",
        "5",
        &ns.addr,
    ]));
    assert_eq!(
        up.code,
        Some(0),
        "the veth pair does not carry traffic: {up:#?}"
    );
}

/// `tcpdump -n FLAGS -r FILE` and `netshim capture -n FLAGS -r FILE`, both
/// successful.
fn read_both(file: &Path, flags: &[&str]) -> (Ran, Ran) {
    let t = run(Command::new("tcpdump")
        .arg("-n")
        .args(flags)
        .arg("-r")
        .arg(file))
    .ok();
    let n = run(Command::new(netshim())
        .args(["capture", "-n"])
        .args(flags)
        .arg("-r")
        .arg(file))
    .ok();
    (t, n)
}

fn count_lines(out: &str) -> usize {
    out.lines().count()
}

const FILTERS: [&str; 8] = [
    "",
    "icmp",
    "udp",
    "udp port 5001",
    "tcp",
    "ip6",
    "ip[6:2] & 0x1fff != 0 or ip[6] & 0x20 != 0",
    "icmp6 or udp port 5000",
];

/// Every filter: tcpdump and netshim print the same number of lines; the
/// unfiltered count is not zero.
fn same_counts(file: &Path) -> usize {
    let mut total = 0;
    for f in FILTERS {
        let mut t = Command::new("tcpdump");
        t.args(["-n", "-r"]).arg(file);
        let mut n = Command::new(netshim());
        n.args(["capture", "-n", "-r"]).arg(file);
        if !f.is_empty() {
            t.arg(f);
            n.arg(f);
        }
        let (t, n) = (run(&mut t), run(&mut n));
        assert_eq!(t.code, Some(0), "tcpdump -r {} {f}: {t:#?}", file.display());
        assert_eq!(n.code, Some(0), "netshim -r {} {f}: {n:#?}", file.display());
        assert_eq!(
            count_lines(&n.stdout),
            count_lines(&t.stdout),
            "{} [{f}]: netshim printed\n{}\ntcpdump printed\n{}",
            file.display(),
            n.stdout,
            t.stdout
        );
        if f.is_empty() {
            total = count_lines(&t.stdout);
        }
    }
    assert!(total > 10, "{}: only {total} packets", file.display());
    total
}

fn capinfos_count(file: &Path) -> usize {
    let r = run(Command::new("capinfos").args(["-c", "-M"]).arg(file)).ok();
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Number of packets:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("capinfos: {r:#?}"))
}

#[test]
fn files_read_as_tcpdump_reads_them_in_every_format_and_link_type() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::with_peer();
    wait_until_it_carries(&ns);
    let mut files = Vec::new();
    for (name, args) in [
        ("eth-us.pcap", vec!["-i", ns.veth.as_str()]),
        (
            "eth-ns.pcap",
            vec!["-i", ns.veth.as_str(), "--time-stamp-precision=nano"],
        ),
        ("sll2.pcap", vec!["-i", "any"]),
        ("sll.pcap", vec!["-i", "any", "-y", "LINUX_SLL"]),
        ("snap.pcap", vec!["-i", ns.veth.as_str(), "-s", "60"]),
    ] {
        let f = dir.path().join(name);
        tcpdump_capture(&ns, &args, &f, || traffic_once(&ns));
        files.push(f);
    }
    // pcapng by tshark, several sections by concatenating two.
    let ng = dir.path().join("tshark.pcapng");
    run(Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(&files[0])
        .arg(&ng))
    .ok();
    files.push(ng.clone());
    for f in &files {
        same_counts(f);
    }

    // netshim converts: pcap -> pcapng and pcapng -> pcap, every packet
    // kept (capinfos counts them), and the result reads the same again.
    for (src, fmt, out) in [
        (&files[2], "pcapng", "conv.pcapng"),
        (&ng, "pcap", "conv.pcap"),
    ] {
        let out = dir.path().join(out);
        let r = run(Command::new(netshim())
            .args(["capture", "-r"])
            .arg(src)
            .args(["--format", fmt, "-w"])
            .arg(&out));
        assert_eq!(r.code, Some(0), "{r:#?}");
        assert_eq!(
            capinfos_count(&out),
            capinfos_count(src),
            "{}",
            out.display()
        );
        same_counts(&out);
    }

    // A filter with -w keeps exactly what tcpdump keeps; -c stops early.
    let icmp = dir.path().join("icmp.pcapng");
    run(Command::new(netshim())
        .args(["capture", "-r"])
        .arg(&files[0])
        .arg("-w")
        .arg(&icmp)
        .arg("icmp"))
    .ok();
    let t = run(Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&files[0])
        .arg("icmp"))
    .ok();
    assert_eq!(capinfos_count(&icmp), count_lines(&t.stdout));
    let c = run(Command::new(netshim())
        .args(["capture", "-n", "-c", "4", "-r"])
        .arg(&files[0]))
    .ok();
    assert_eq!(count_lines(&c.stdout), 4);

    // Reading from stdin.
    let r = run(Command::new("sh").arg("-c").arg(format!(
        "{} capture -n -r - icmp < {}",
        netshim().display(),
        files[0].display()
    )))
    .ok();
    assert_eq!(count_lines(&r.stdout), count_lines(&t.stdout));
}

fn traffic_once(ns: &Netns) {
    // The IPv6 addresses are made once; later captures send the same
    // traffic again.
    if !run(Command::new("ip").args(["-n", &ns.name, "addr", "show", &ns.veth]))
        .stdout
        .contains("fd00:198:18::1")
    {
        traffic(ns);
    } else {
        let peer = ns.peer.as_ref().unwrap();
        let script = format!(
            "ping -c 3 -i 0.1 {a} >/dev/null; \
             ping -6 -c 2 -i 0.1 fd00:198:18::1 >/dev/null; ping -c 1 -s 3000 {a} >/dev/null; \
             for port in 5000 5001 5000; do echo t > /dev/udp/{a}/$port; done; \
             (echo x > /dev/tcp/{a}/7) 2>/dev/null || true; sleep 0.2",
            a = ns.addr
        );
        run(Command::new("ip").args(["netns", "exec", peer, "bash", "-c", &script])).ok();
    }
}

/// Raw IP: tcpdump on a tun interface writes LINKTYPE_RAW.
#[test]
fn raw_ip_from_a_tun_interface_reads_as_tcpdump_reads_it() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new();
    let tun = tun_in(&ns, "tn0", "198.18.250.1");
    let f = dir.path().join("raw.pcap");
    tcpdump_capture(&ns, &["-i", "tn0"], &f, || {
        // Nobody reads the tun device: pings out of it are captured and
        // dropped after.
        let _ = run(Command::new("ip").args([
            "netns",
            "exec",
            &ns.name,
            "ping",
            "-c",
            "3",
            "-i",
            "0.1",
            "-W",
            "1",
            "198.18.250.2",
        ]));
        let _ = run(Command::new("ip").args([
            "netns",
            "exec",
            &ns.name,
            "bash",
            "-c",
            "echo t > /dev/udp/198.18.250.3/5000",
        ]));
    });
    let head = run(Command::new("tcpdump")
        .args(["-r"])
        .arg(&f)
        .args(["-c", "1"]));
    assert!(head.stderr.contains("RAW"), "{head:#?}");
    for filt in ["", "icmp", "udp", "udp port 5000", "tcp"] {
        let mut t = Command::new("tcpdump");
        t.args(["-n", "-r"]).arg(&f);
        let mut n = Command::new(netshim());
        n.args(["capture", "-n", "-r"]).arg(&f);
        if !filt.is_empty() {
            t.arg(filt);
            n.arg(filt);
        }
        let (t, n) = (run(&mut t).ok(), run(&mut n).ok());
        assert_eq!(count_lines(&n.stdout), count_lines(&t.stdout), "[{filt}]");
    }
    let all = run(Command::new(netshim())
        .args(["capture", "-n", "-r"])
        .arg(&f))
    .ok();
    assert!(all.stdout.contains("ICMP echo request"), "{all:#?}");
    drop(tun);
}

/// 802.1Q: a file made by hand of tagged and double-tagged frames (UDP to
/// port 5000 in VLAN 7, ICMP in VLAN 8 inside 100, and one untagged), read
/// by both.
#[test]
fn vlan_tags_read_as_tcpdump_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vlan.pcap");
    let ip_udp = [
        0x45u8, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 0x9c, 0x40, 0x13,
        0x88, 0, 12, 0, 0, b't', b'e', b's', b't',
    ];
    let ip_icmp = [
        0x45u8, 0, 0, 28, 0, 2, 0, 0, 64, 1, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1, 8, 0, 0, 0, 0, 1,
        0, 1,
    ];
    let macs = [2u8, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut tagged = macs.to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x08, 0x00]);
    tagged.extend_from_slice(&ip_udp);
    frames.push(tagged);
    let mut qinq = macs.to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x08, 0x08, 0x00]);
    qinq.extend_from_slice(&ip_icmp);
    frames.push(qinq);
    let mut plain = macs.to_vec();
    plain.extend_from_slice(&[0x08, 0x00]);
    plain.extend_from_slice(&ip_udp);
    frames.push(plain);
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ]);
    for (i, fr) in frames.iter().enumerate() {
        b.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        b.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        b.extend_from_slice(fr);
    }
    std::fs::write(&f, &b).unwrap();
    for filt in [
        "",
        "vlan",
        "vlan 7 and udp port 5000",
        "vlan and vlan 8 and icmp",
        "udp",
        "not vlan",
    ] {
        let mut t = Command::new("tcpdump");
        t.args(["-n", "-r"]).arg(&f);
        let mut n = Command::new(netshim());
        n.args(["capture", "-n", "-r"]).arg(&f);
        if !filt.is_empty() {
            t.arg(filt);
            n.arg(filt);
        }
        let (t, n) = (run(&mut t).ok(), run(&mut n).ok());
        assert_eq!(
            count_lines(&n.stdout),
            count_lines(&t.stdout),
            "[{filt}]\n{}\n{}",
            n.stdout,
            t.stdout
        );
    }
    // Whole lines: tcpdump shows the tags with -e only (ID, priority,
    // ethertype), and the rest of the line is the same.
    for flags in [&[][..], &["-e"], &["-v"], &["-e", "-v"]] {
        let (t, n) = read_both(&f, flags);
        assert_eq!(n.stdout, t.stdout, "{flags:?}");
        if flags == ["-e"] {
            assert!(
                t.stdout.contains("vlan 7, p 0, ethertype IPv4"),
                "{}",
                t.stdout
            );
        }
    }
}

#[test]
fn a_cut_file_gives_what_was_read_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // A file of netshim's own making (no capture needed): pcap of 3 records.
    let f = dir.path().join("whole.pcap");
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0,
    ]);
    for i in 0..3u32 {
        let pkt = [
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 0x13, 0x88,
            0x13, 0x88, 0, 8, 0, 0,
        ];
        b.extend_from_slice(&i.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        b.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        b.extend_from_slice(&pkt);
    }
    std::fs::write(&f, &b).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &b[..b.len() - 10]).unwrap();
    let t = run(Command::new("tcpdump").args(["-n", "-r"]).arg(&cut));
    let n = run(Command::new(netshim())
        .args(["capture", "-n", "-r"])
        .arg(&cut));
    assert_ne!(n.code, Some(0));
    assert_eq!(count_lines(&n.stdout), 2, "{n:#?}");
    assert_eq!(count_lines(&t.stdout), 2, "tcpdump also reads two: {t:#?}");
    assert!(n.stderr.contains("cut short"), "{n:#?}");
    // Converting a cut file keeps what was read, in a valid file.
    let out = dir.path().join("out.pcapng");
    let c = run(Command::new(netshim())
        .args(["capture", "-r"])
        .arg(&cut)
        .arg("-w")
        .arg(&out));
    assert_ne!(c.code, Some(0));
    assert_eq!(capinfos_count(&out), 2);
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"GIF89a and more").unwrap();
    let j = run(Command::new(netshim()).args(["capture", "-r"]).arg(&junk));
    assert!(j.stderr.contains("not a pcap or pcapng file"), "{j:#?}");
}

#[test]
fn tcpdump_flags_netshim_does_not_take_are_refused_as_flags() {
    for (flag, says) in [
        ("-Z", "option -Z is not supported"),
        ("-j", "option -j is not supported"),
        ("-K", "option -K is not supported"),
        ("--bogus", "unknown option --bogus"),
    ] {
        let r = run(Command::new(netshim()).args(["capture", "-r", "/dev/null", flag, "icmp"]));
        assert_ne!(r.code, Some(0), "{flag}");
        assert!(r.stderr.contains(says), "{flag}: {r:#?}");
        assert!(!r.stderr.contains("invalid filter"), "{flag}: {r:#?}");
    }
    let r = run(Command::new(netshim()).args(["capture", "-n", "icmp", "-K"]));
    assert!(r.stderr.contains("option -K is not supported"), "{r:#?}");
    // A flag netshim takes, typed after the expression (as tcpdump allows).
    let r = run(Command::new(netshim()).args(["capture", "-r", "/dev/null", "icmp", "-v"]));
    assert!(
        r.stderr
            .contains("option -v comes after the filter expression \"icmp\""),
        "{r:#?}"
    );
}

/// A TCP conversation with data both ways and options (a busybox nc
/// server, bash's /dev/tcp client), an iperf3 transfer, ICMP echo, a
/// fragmented echo, ECN and TTL 1, UDP to a closed port and its ICMP and
/// ICMPv6 errors, IPv6 echo, and what the kernel sends by itself on a new
/// veth (neighbor discovery, MLDv2 reports behind a hop-by-hop header).
fn conversation_traffic(ns: &Netns) {
    let peer = ns.peer.as_ref().unwrap();
    let (n, v, a) = (&ns.name, &ns.veth, &ns.addr);
    sh(&format!(
        "set -e; ip -n {n} addr add fd00:198:18::1/64 dev {v} nodad; \
         ip -n {peer} addr add fd00:198:18::2/64 dev {v}p nodad"
    ))
    .ok();
    sh(&format!(
        "ip netns exec {n} iperf3 -s -1 -p 5301 >/dev/null 2>&1 & \
         (echo pong; sleep 0.5) | ip netns exec {n} busybox nc -l -p 7000 >/dev/null & \
         sleep 0.3; \
         ip netns exec {peer} bash -c 'exec 3<>/dev/tcp/{a}/7000; echo hello >&3; read -t 2 x <&3; exec 3>&-'; \
         ip netns exec {peer} iperf3 -c {a} -p 5301 -n 64K -l 8K >/dev/null 2>&1; \
         ip netns exec {peer} bash -c 'ping -c 2 -i 0.1 {a}; ping -6 -c 2 -i 0.1 fd00:198:18::1; \
           ping -c 1 -s 3000 {a}; ping -c 1 -Q 0x02 {a}; ping -c 1 -t 1 {a}; \
           echo t > /dev/udp/{a}/5000; echo t > /dev/udp/fd00:198:18::1/5000; \
           busybox nslookup -timeout=1 example.test {a}; \
           (echo x > /dev/tcp/{a}/7) 2>/dev/null; sleep 0.2' >/dev/null 2>&1; wait"
    ))
    .ok();
}

/// Whole lines, every one, are tcpdump's: plain, -v, -vv, -vvv, -S, -q,
/// -e with and without -v, --time-stamp-precision, on TCP (relative and absolute sequence numbers,
/// options, checksums), UDP, ICMP and ICMPv6 (echo, errors with the packet
/// they quote, neighbor discovery), fragments, IPv6 hop-by-hop headers,
/// MLDv2 and ARP.
#[test]
fn every_line_is_tcpdumps_with_its_verbosity_flags() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::with_peer();
    let f = dir.path().join("conv.pcap");
    let nano = ["-i", ns.veth.as_str(), "--time-stamp-precision=nano"];
    tcpdump_capture(&ns, &nano, &f, || {
        wait_until_it_carries(&ns);
        conversation_traffic(&ns)
    });
    let plain = run(Command::new("tcpdump").args(["-n", "-r"]).arg(&f)).ok();
    for want in [
        "Flags [S.], seq ",
        ", ack 1, win ",
        "options [mss ",
        "Flags [P.], seq 1:",
        "udp port 5000 unreachable",
        "ICMP6, echo request",
        "HBH ICMP6, multicast listener report v2",
        "ARP, Request",
        "A? example.test. (",
    ] {
        assert!(
            plain.stdout.contains(want),
            "the capture lacks {want:?}: {}",
            plain.stdout
        );
    }
    for flags in [
        &[][..],
        &["-v"],
        &["-vv"],
        &["-vvv"],
        &["-S"],
        &["-S", "-v"],
        &["-q"],
        &["-e"],
        &["-e", "-v"],
        &["--time-stamp-precision=nano"],
        &["--time-stamp-precision=nano", "-ttt"],
        &["--time-stamp-precision=micro", "-tt"],
    ] {
        let (t, n) = read_both(&f, flags);
        assert!(count_lines(&t.stdout) > 60, "{flags:?}: {}", t.stdout);
        let differ: Vec<(&str, &str)> = t
            .stdout
            .lines()
            .zip(n.stdout.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .collect();
        assert!(
            differ.is_empty(),
            "{flags:?}: tcpdump, then netshim:\n{differ:#?}"
        );
        assert_eq!(count_lines(&n.stdout), count_lines(&t.stdout), "{flags:?}");
    }
    // --print beside -w: the lines on stdout and every packet in the file,
    // converted to pcap with tcpdump's default (microsecond) magic.
    let out = dir.path().join("out.pcap");
    let n = run(Command::new(netshim())
        .args(["capture", "-n", "--print", "--format", "pcap", "-r"])
        .arg(&f)
        .arg("-w")
        .arg(&out))
    .ok();
    let t = run(Command::new("tcpdump").args(["-n", "-r"]).arg(&f)).ok();
    assert_eq!(n.stdout, t.stdout);
    assert_eq!(capinfos_count(&out), count_lines(&t.stdout));
    let again = run(Command::new("tcpdump").args(["-n", "-r"]).arg(&out)).ok();
    assert_eq!(again.stdout, t.stdout, "micro timestamps keep the lines");
    let r = run(Command::new(netshim())
        .args(["capture", "--print", "-w", "-", "-r"])
        .arg(&f));
    assert!(r.stderr.contains("--print with -w - would mix"), "{r:#?}");
}

#[test]
fn a_filter_file_is_read_with_its_comments() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "udp # only UDP\n and port 5000\n").unwrap();
    let bad = run(Command::new(netshim())
        .args(["capture", "-r", "/dev/null", "-F"])
        .arg(&f)
        .arg("icmp"));
    assert!(bad.stderr.contains("-F gives the filter"), "{bad:#?}");
    // A filter file with a syntax error names it.
    std::fs::write(&f, "udp and and\n").unwrap();
    let r = run(Command::new(netshim())
        .args(["capture", "-i", "lo", "-F"])
        .arg(&f));
    assert!(r.stderr.contains("invalid filter expression"), "{r:#?}");
}

/// The time stamp at the start of a line (all of it before the protocol).
fn stamp(line: &str) -> &str {
    let at = ["IP ", "IP6 ", "ARP", "ethertype", "vlan"]
        .iter()
        .filter_map(|w| line.find(w))
        .min()
        .unwrap_or(line.len());
    &line[..at]
}

/// `-t` … `-ttttt` give tcpdump's time stamps, and `-x`, `-xx`, `-X`,
/// `-XX` its dumps, byte for byte; `-A` the same text under each line; `-e`
/// and plain lines are tcpdump's for ICMP echo, ARP and UDP; `--count`
/// prints tcpdump's count.
#[test]
fn time_formats_dumps_link_headers_and_counts_are_tcpdumps() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::with_peer();
    wait_until_it_carries(&ns);
    let f = dir.path().join("t.pcap");
    tcpdump_capture(&ns, &["-i", ns.veth.as_str()], &f, || traffic_once(&ns));
    let both = |args: &[&str]| {
        let t = run(Command::new("tcpdump")
            .arg("-n")
            .args(args)
            .arg("-r")
            .arg(&f))
        .ok();
        let n = run(Command::new(netshim())
            .args(["capture", "-n"])
            .args(args)
            .arg("-r")
            .arg(&f))
        .ok();
        (t.stdout, n.stdout)
    };
    for t in ["-t", "-tt", "-ttt", "-tttt", "-ttttt"] {
        let (a, b) = both(&[t]);
        let sa: Vec<&str> = a.lines().map(stamp).collect();
        let sb: Vec<&str> = b.lines().map(stamp).collect();
        assert!(sa.len() > 10, "{t}: {a}");
        assert_eq!(sb, sa, "{t}");
    }
    for x in ["-x", "-xx", "-X", "-XX"] {
        let (a, b) = both(&[x]);
        let da: Vec<&str> = a.lines().filter(|l| l.starts_with("\t0x")).collect();
        let db: Vec<&str> = b.lines().filter(|l| l.starts_with("\t0x")).collect();
        assert!(da.len() > 20, "{x}: {a}");
        assert_eq!(db, da, "{x}");
    }
    // Whole lines, with and without -e, for the protocols whose line
    // netshim prints in full (ICMP echo, ARP, UDP).
    let f_full = "arp or icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply or udp";
    for e in [None, Some("-e")] {
        let args: Vec<&str> = e.into_iter().chain([f_full]).collect();
        let t = run(Command::new("tcpdump")
            .arg("-n")
            .arg("-r")
            .arg(&f)
            .args(&args))
        .ok();
        let n = run(Command::new(netshim())
            .args(["capture", "-n", "-r"])
            .arg(&f)
            .args(&args))
        .ok();
        assert!(count_lines(&t.stdout) > 5, "{t:#?}");
        assert_eq!(n.stdout, t.stdout, "{args:?}");
    }
    // --count: the number alone.
    for filt in ["", "icmp", "udp port 5001"] {
        let t = run(Command::new("tcpdump")
            .args(["-n", "--count", "-r"])
            .arg(&f)
            .arg(filt))
        .ok();
        let n = run(Command::new(netshim())
            .args(["capture", "-n", "--count", "-r"])
            .arg(&f)
            .arg(filt))
        .ok();
        assert_eq!(n.stdout, t.stdout, "--count {filt}");
    }
    // -A: what is printed under the lines (the lines themselves are those
    // of a plain read).
    let (plain_t, plain_n) = both(&[]);
    let (a, b) = both(&["-A"]);
    let under = |out: &str, plain: &str| -> Vec<String> {
        let heads: std::collections::HashSet<&str> = plain.lines().collect();
        out.lines()
            .filter(|l| !heads.contains(l))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(under(&b, &plain_n), under(&a, &plain_t));
}

/// A resource record: owner (`None` for a pointer to the first question),
/// type, data.
type Rr<'a> = (Option<&'a str>, u16, Vec<u8>);

/// A domain name in DNS's wire form, uncompressed.
fn dns_name(n: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// A DNS message as a UDP payload: header, one question, three sections.
fn dns_message(id: u16, flags: u16, question: (&str, u16), sections: [&[Rr]; 3]) -> Vec<u8> {
    let name = dns_name;
    let mut m = Vec::new();
    for x in [
        id,
        flags,
        1,
        sections[0].len() as u16,
        sections[1].len() as u16,
        sections[2].len() as u16,
    ] {
        m.extend_from_slice(&x.to_be_bytes());
    }
    m.extend(name(question.0));
    m.extend_from_slice(&question.1.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    for section in sections {
        for (owner, t, data) in section {
            match owner {
                Some(o) => m.extend(name(o)),
                None => m.extend_from_slice(&0xc00cu16.to_be_bytes()),
            }
            let class: u16 = if *t == 41 { 1232 } else { 1 };
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&class.to_be_bytes());
            m.extend_from_slice(&300u32.to_be_bytes());
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        }
    }
    m
}

/// DNS queries and answers (A, AAAA, CNAME, PTR, MX, TXT, NS, SRV, SOA,
/// EDNS; NXDomain, ServFail, truncated, authoritative) print as tcpdump
/// prints them, plain, -v and -vv, from a file the test writes.
#[test]
fn dns_lines_are_tcpdumps() {
    let dir = tempfile::tempdir().unwrap();
    let enc = dns_name;
    let opt: &[Rr] = &[(Some("."), 41, vec![])];
    let none: &[Rr] = &[];
    let soa = [
        enc("ns.test"),
        enc("admin.test"),
        (1u32..=5).flat_map(|x| x.to_be_bytes()).collect(),
    ]
    .concat();
    let msgs: Vec<(bool, Vec<u8>)> = vec![
        (
            true,
            dns_message(0x1234, 0x0100, ("example.test", 1), [none, none, none]),
        ),
        (
            true,
            dns_message(0x1235, 0x0100, ("example.test", 28), [none, none, opt]),
        ),
        (
            false,
            dns_message(
                0x1234,
                0x8180,
                ("example.test", 1),
                [
                    &[
                        (None, 1, vec![198, 18, 0, 9]),
                        (None, 1, vec![198, 18, 0, 10]),
                    ],
                    none,
                    none,
                ],
            ),
        ),
        (
            false,
            dns_message(
                0x1235,
                0x8180,
                ("example.test", 28),
                [&[(None, 28, (0u8..16).collect())], none, opt],
            ),
        ),
        (
            false,
            dns_message(
                0x1236,
                0x8183,
                ("nope.test", 1),
                [none, &[(Some("test"), 6, soa)], none],
            ),
        ),
        (
            true,
            dns_message(
                0x1237,
                0x0000,
                ("9.0.18.198.in-addr.arpa", 12),
                [none, none, none],
            ),
        ),
        (
            false,
            dns_message(
                0x1237,
                0x8400,
                ("9.0.18.198.in-addr.arpa", 12),
                [&[(None, 12, enc("host.example.test"))], none, none],
            ),
        ),
        (
            false,
            dns_message(
                0x1238,
                0x8180,
                ("www.example.test", 1),
                [
                    &[
                        (None, 5, enc("example.test")),
                        (Some("example.test"), 1, vec![198, 18, 0, 9]),
                    ],
                    none,
                    none,
                ],
            ),
        ),
        (
            false,
            dns_message(
                0x1239,
                0x8180,
                ("example.test", 15),
                [
                    &[(None, 15, [vec![0, 10], enc("mx.example.test")].concat())],
                    none,
                    none,
                ],
            ),
        ),
        (
            false,
            dns_message(
                0x123a,
                0x8180,
                ("example.test", 16),
                [&[(None, 16, b"\x05hello\x02hi".to_vec())], none, none],
            ),
        ),
        (
            false,
            dns_message(0x123b, 0x8182, ("example.test", 1), [none, none, none]),
        ),
        (
            true,
            dns_message(0x123c, 0x0120, ("example.test", 2), [none, none, none]),
        ),
        (
            false,
            dns_message(
                0x123c,
                0x8580,
                ("example.test", 2),
                [
                    &[(None, 2, enc("ns1.example.test"))],
                    none,
                    &[(Some("ns1.example.test"), 1, vec![198, 18, 0, 53])],
                ],
            ),
        ),
        (
            false,
            dns_message(
                0x123d,
                0x8180,
                ("example.test", 33),
                [
                    &[(
                        None,
                        33,
                        [vec![0, 1, 0, 2, 1, 187], enc("srv.example.test")].concat(),
                    )],
                    none,
                    none,
                ],
            ),
        ),
        (
            false,
            dns_message(0x123e, 0x8380, ("example.test", 1), [none, none, none]),
        ),
    ];
    // Each message in an Ethernet frame, UDP between 198.18.0.2 and port 53.
    let mut file = Vec::new();
    for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend_from_slice(&x.to_le_bytes());
    }
    for (i, (query, m)) in msgs.iter().enumerate() {
        let (src, dst, sp, dp) = if *query {
            ([198, 18, 0, 2], [198, 18, 0, 1], 40000 + i as u16, 53u16)
        } else {
            ([198, 18, 0, 1], [198, 18, 0, 2], 53, 40000)
        };
        let mut udp = Vec::new();
        for x in [sp, dp, 8 + m.len() as u16, 0] {
            udp.extend_from_slice(&x.to_be_bytes());
        }
        udp.extend_from_slice(m);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[0, i as u8, 0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let mut frame = [[2u8; 6], [4u8; 6]].concat();
        frame.extend_from_slice(&[8, 0]);
        frame.extend(ip);
        frame.extend(udp);
        for x in [
            1_700_000_000u32,
            i as u32 * 1000,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            file.extend_from_slice(&x.to_le_bytes());
        }
        file.extend(frame);
    }
    let f = dir.path().join("dns.pcap");
    std::fs::write(&f, file).unwrap();
    for flags in [&[][..], &["-v"], &["-vv"], &["-q"]] {
        let (t, n) = read_both(&f, flags);
        let packets = t.stdout.lines().filter(|l| !l.starts_with(' ')).count();
        assert_eq!(packets, msgs.len(), "{}", t.stdout);
        if flags.is_empty() {
            for want in [
                "4660+ A? example.test. (30)",
                "NXDomain 0/1/0",
                "CNAME example.test.",
                "4670| 0/0/0",
            ] {
                assert!(t.stdout.contains(want), "tcpdump printed {}", t.stdout);
            }
        }
        assert_eq!(n.stdout, t.stdout, "{flags:?}");
    }
}

/// An IPv4 header (no options) for `payload` of protocol `proto`, with a
/// correct checksum.
fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], id: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = !ones_sum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

/// The one's-complement sum of `b` (as 16-bit words), folded.
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    for x in [sp, dp, 8 + payload.len() as u16, 0] {
        u.extend_from_slice(&x.to_be_bytes());
    }
    u.extend_from_slice(payload);
    u
}

/// An Ethernet frame of `ethertype` around `l3`.
fn ether(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut f = [[2u8; 6], [4u8; 6]].concat();
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    f
}

/// A pcap file (µs, Ethernet) of `frames`, each written once for every
/// captured length in `cuts(frame)` (the length on the wire is the
/// frame's), as a capture with that snap length would hold it.
fn cut_pcap(frames: &[Vec<u8>], cuts: impl Fn(&[u8]) -> Vec<usize>) -> (Vec<u8>, usize) {
    let mut file = Vec::new();
    for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend_from_slice(&x.to_le_bytes());
    }
    let mut n = 0u32;
    for f in frames {
        for cut in cuts(f) {
            let cut = cut.min(f.len());
            for x in [1_700_000_000u32, n, cut as u32, f.len() as u32] {
                file.extend_from_slice(&x.to_le_bytes());
            }
            file.extend_from_slice(&f[..cut]);
            n += 1;
        }
    }
    (file, n as usize)
}

/// A packet cut by the snap length prints what can be read and then
/// `[|proto]`, as tcpdump prints it: TCP options (`options [mss
/// 1460,sackOK, [|tcp]`), IPv6 extension headers, DNS, and the packet an
/// ICMP error quotes, at every captured length from the end of the
/// Ethernet header to the whole frame.
#[test]
fn cut_packets_print_what_can_be_read_as_tcpdump() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = ([198, 18, 0, 2], [198, 18, 0, 1]);
    // A SYN with Linux's options: mss, sackOK, TS, nop, wscale.
    let mut syn = Vec::new();
    for x in [40000u16, 80] {
        syn.extend_from_slice(&x.to_be_bytes());
    }
    syn.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    syn.extend_from_slice(&0u32.to_be_bytes());
    syn.extend_from_slice(&[0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    syn.extend_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
    syn.extend_from_slice(&[0, 0, 0x30, 0x39, 0, 0, 0, 0, 1, 3, 3, 7]);
    let syn = ether(0x0800, &ipv4(6, a, b, 1, &syn));
    // IPv6: hop-by-hop (router alert, PadN), destination options (PadN
    // and an unknown option), UDP with 4 bytes.
    let mut v6 = vec![0x60, 0, 0, 0];
    let hbh = [60, 0, 5, 2, 0, 0, 1, 0];
    let dst = [17, 1, 1, 4, 0, 0, 0, 0, 0x1e, 2, 0xaa, 0xbb, 1, 2, 0, 0];
    let u = udp(40001, 5000, b"ping");
    let plen = (hbh.len() + dst.len() + u.len()) as u16;
    v6.extend_from_slice(&plen.to_be_bytes());
    v6.extend_from_slice(&[0, 64]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(2));
    v6.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(2));
    v6.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&hbh);
    v6.extend_from_slice(&dst);
    v6.extend_from_slice(&u);
    let v6 = ether(0x86dd, &v6);
    // A DNS query and its answer.
    let none: &[Rr] = &[];
    let q = dns_message(0x1234, 0x0100, ("www.example.test", 1), [none, none, none]);
    let r = dns_message(
        0x1234,
        0x8180,
        ("www.example.test", 1),
        [
            &[
                (None, 5, dns_name("example.test")),
                (Some("example.test"), 1, vec![198, 18, 0, 9]),
            ],
            none,
            none,
        ],
    );
    let query = ether(0x0800, &ipv4(17, a, b, 2, &udp(40002, 53, &q)));
    let answer = ether(0x0800, &ipv4(17, b, a, 3, &udp(53, 40002, &r)));
    // Port unreachable, quoting the UDP datagram it answers.
    let quoted = ipv4(17, a, b, 4, &udp(40003, 33434, &[0x55; 12]));
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let sum = !ones_sum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let unreach = ether(0x0800, &ipv4(1, b, a, 5, &icmp));
    // Each frame with the end of its IP header: it is cut at every length
    // from there to its whole length.
    let frames = [
        (syn, 34),
        (v6, 54),
        (query, 34),
        (answer, 34),
        (unreach, 34),
    ];
    let ends: Vec<usize> = frames.iter().map(|f| f.1).collect();
    let frames: Vec<Vec<u8>> = frames.into_iter().map(|f| f.0).collect();
    let (file, n) = cut_pcap(&frames, |f| {
        let i = frames.iter().position(|x| x == f).unwrap();
        (ends[i]..=f.len()).collect()
    });
    let f = dir.path().join("cut.pcap");
    std::fs::write(&f, file).unwrap();
    for flags in [&[][..], &["-v"], &["-q"], &["-S"]] {
        let (t, ns) = read_both(&f, flags);
        let (t, ns): (Vec<&str>, Vec<&str>) =
            (t.stdout.lines().collect(), ns.stdout.lines().collect());
        assert!(t.len() >= n, "tcpdump printed a line per packet");
        let differ: Vec<String> = t
            .iter()
            .zip(&ns)
            .filter(|(t, n)| t != n)
            .map(|(t, n)| format!("tcpdump: {t}\nnetshim: {n}"))
            .collect();
        assert!(
            differ.is_empty() && t.len() == ns.len(),
            "{flags:?}: {} of {} lines differ:\n{}",
            differ.len(),
            t.len(),
            differ.join("\n")
        );
        let wants: &[&str] = if flags == ["-q"] {
            &[]
        } else {
            &[
                "options [mss 1460,sackOK, [|tcp]",
                "TS [|tcp]>",
                ".40002 > 198.18.0.1.53:  [|udp]",
                "4660+ [|domain]",
                // IPv6: after extension headers, the ports alone.
                "2001:db8:2001:db8::1:  [|hbhopt]",
                "  [|dstopt]",
                " 40001 > 5000:  [|udp]",
                " 40001 > 5000: UDP, length 4",
                "4660 2/0/0 ",
                "CNAME [|domain]",
                "CNAME example.test., ",
                " A [|domain]",
                "198.18.0.1 > 198.18.0.2:  [|icmp]",
            ]
        };
        for want in wants {
            assert!(
                t.iter().any(|l| l.contains(want)),
                "the cuts make tcpdump print {want:?}"
            );
        }
    }
}
