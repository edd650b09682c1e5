//! Live differential tests: tcpdump 4.99.3 and `netshim capture` run at the
//! same time in a network namespace the test makes, on the same traffic,
//! and must agree: the packets their files hold (counted by capinfos, and
//! each packet as tshark reads it), the statistics they print and, without
//! `-w`, the lines they print after the time stamp (`-n`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netshim_integration::*;

/// A capture running in the background, its stdout and stderr in files.
struct Running {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

fn spawn(mut cmd: Command, dir: &Path, tag: &str) -> Running {
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}.err"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Running { child, out, err }
}

impl Running {
    /// Waits until the capture says on stderr that it listens.
    #[track_caller]
    fn wait_ready(&mut self, word: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if std::fs::read_to_string(&self.err).is_ok_and(|e| e.contains(word)) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "the capture ended at once ({st}): {}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {word:?} on the capture's stderr within 20 s");
    }

    /// SIGINT by PID, as Ctrl-C; returns (exit code, stdout, stderr).
    fn interrupt(mut self) -> (Option<i32>, String, String) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code();
            }
            if Instant::now() > until {
                stop(self.child);
                panic!("the capture did not end within 20 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (
            code,
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default(),
        )
    }
}

/// The number after which a statistics line ends with `suffix`.
fn stat(stderr: &str, suffix: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(suffix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {suffix:?} line in: {stderr}"))
}

/// capinfos's packet count of a file.
fn packets_in(f: &Path) -> u64 {
    let info = capinfos(f);
    info.lines()
        .find_map(|l| l.strip_prefix("Number of packets:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packet count from capinfos: {info}"))
}

/// A printed line without its time stamp.
fn after_time(l: &str) -> &str {
    l.split_once(' ').map_or(l, |(_, rest)| rest)
}

/// What one side saw.
#[derive(Debug)]
struct Side {
    captured: u64,
    received: u64,
    in_file: Option<u64>,
    /// With `-w`: each packet of the file as tshark reads it, sorted (see
    /// [`packet_fields`]).
    packets: Vec<String>,
    lines: Vec<String>,
}

/// One row of the differential: tcpdump's side and netshim's.
#[derive(Debug)]
struct Row {
    name: String,
    tcpdump: Side,
    netshim: Side,
}

impl Row {
    fn agrees(&self) -> bool {
        let (t, n) = (&self.tcpdump, &self.netshim);
        // libpcap opens its socket before it sets the filter, and the
        // kernel counts what arrives in between (a veth's IPv6 chatter):
        // tcpdump's "received by filter" may be a few more.
        t.captured == n.captured
            && (n.received..=n.received + 3).contains(&t.received)
            && t.in_file == n.in_file
            && t.packets == n.packets
            && t.lines == n.lines
    }
}

/// The interfaces of network namespace `ns`: (index, name, MAC address).
fn links(ns: &str) -> Vec<(u64, String, String)> {
    let out = run(Command::new("ip").args(["-j", "-n", ns, "link"]))
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["ifindex"].as_u64().unwrap(),
                l["ifname"].as_str().unwrap().to_string(),
                l["address"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Each packet of a file captured in `ns` on `iface`, as tshark reads it,
/// in one line: interface, direction, source, destination, protocol,
/// length above the link layer, VLAN IDs and a hash of the payload; sorted
/// (two captures of `-i any` may take packets of two CPUs in another
/// order). What a file does not record is what the capture means: a pcap
/// of one interface names none (the one captured on) and has no direction
/// (out when the frame's source is the interface's own address; on
/// loopback only the incoming copy is kept); LINUX_SLL2 (tcpdump's `-i
/// any`) has an interface index and packet type; pcapng has a name and
/// direction flags.
fn packet_fields(f: &Path, ns: &Netns, iface: &str) -> Vec<String> {
    let fields = [
        "frame.interface_name",
        "frame.packet_flags_direction",
        "sll.ifindex",
        "sll.pkttype",
        "eth.src",
        "ip.src",
        "ipv6.src",
        "ip.dst",
        "ipv6.dst",
        "_ws.col.Protocol",
        "frame.len",
        "vlan.id",
        "udp.payload",
        "tcp.payload",
        "data.data",
    ];
    let mut c = Command::new("tshark");
    c.arg("-r")
        .arg(f)
        .args(["-T", "fields", "-E", "separator=|"]);
    for e in fields {
        c.args(["-e", e]);
    }
    let links = links(&ns.name);
    let mut out: Vec<String> = run(&mut c)
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split('|').collect();
            assert_eq!(v.len(), fields.len(), "{l}");
            let sll = !v[2].is_empty();
            let name = if !v[0].is_empty() {
                v[0].to_string()
            } else if sll {
                let i: u64 = v[2].parse().unwrap();
                links.iter().find(|l| l.0 == i).unwrap().1.clone()
            } else {
                iface.to_string()
            };
            let own_mac = links.iter().find(|l| l.1 == name).map(|l| l.2.as_str());
            let out = match (v[1], sll) {
                (d, _) if !d.is_empty() => d.ends_with('2'),
                (_, true) => v[3] == "4",
                _ => name != "lo" && own_mac == Some(v[4]),
            };
            let vlans = v[11].split(',').filter(|x| !x.is_empty()).count();
            let link_len = if sll { 20 } else { 14 + 4 * vlans };
            let len: usize = v[10].parse().unwrap();
            let payload = [v[12], v[13], v[14]]
                .into_iter()
                .find(|p| !p.is_empty())
                .unwrap_or("");
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                payload.hash(&mut h);
                h.finish()
            };
            format!(
                "{name} {} {}{} > {}{} {} {} vlan [{}] {hash:016x}",
                if out { "Out" } else { "In" },
                v[5],
                v[6],
                v[7],
                v[8],
                v[9],
                len - link_len,
                v[11]
            )
        })
        .collect();
    out.sort();
    out
}

/// Runs tcpdump and netshim in `ns` with the same interface and filter,
/// with `-w` (each to its own file) or printing lines, while `traffic`
/// runs; both are stopped by SIGINT once it is over.
fn differential(ns: &Netns, iface: &str, filter: &str, write: bool, traffic: impl FnOnce()) -> Row {
    differential_with(ns, iface, &[], filter, write, traffic)
}

/// [`differential`] with more flags for both (`-e`).
fn differential_with(
    ns: &Netns,
    iface: &str,
    flags: &[&str],
    filter: &str,
    write: bool,
    traffic: impl FnOnce(),
) -> Row {
    let d = tempfile::tempdir().unwrap();
    let (tf, nf) = (d.path().join("t.pcap"), d.path().join("n.pcapng"));
    let mut t = Command::new("ip");
    t.args(["netns", "exec", &ns.name, "tcpdump", "-n", "-i", iface])
        .args(flags);
    let mut n = netshim_with_timeout(120);
    n.args(["capture", "--target-netns", &ns.target(), "-n", "-i", iface])
        .args(flags);
    if write {
        t.arg("-w").arg(&tf);
        n.arg("-w").arg(&nf);
    }
    t.arg(filter);
    n.arg(filter);
    let mut t = spawn(t, d.path(), "tcpdump");
    let mut n = spawn(n, d.path(), "netshim");
    t.wait_ready("listening on");
    n.wait_ready("capturing on");
    traffic();
    // Past tcpdump's 1 s ring timeout: both have every packet.
    std::thread::sleep(Duration::from_millis(1500));
    let side = |(code, out, err): (Option<i32>, String, String), f: &Path| {
        assert_eq!(code, Some(0), "{err}");
        Side {
            captured: stat(&err, " packets captured"),
            received: stat(&err, " packets received by filter"),
            in_file: write.then(|| packets_in(f)),
            packets: if write {
                packet_fields(f, ns, iface)
            } else {
                Vec::new()
            },
            // tcpdump ends its output with an empty line when interrupted
            // (for the terminal's `^C`); netshim keeps stdout to packets.
            lines: out
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| after_time(l).to_string())
                .collect(),
        }
    };
    let tcpdump = side(t.interrupt(), &tf);
    let netshim = side(n.interrupt(), &nf);
    Row {
        name: format!(
            "{iface} {}{filter:?}{}",
            flags.iter().map(|f| format!("{f} ")).collect::<String>(),
            if write { " -w" } else { "" }
        ),
        tcpdump,
        netshim,
    }
}

fn ping_lo(ns: &Netns) {
    run(Command::new("ip").args([
        "netns",
        "exec",
        &ns.name,
        "ping",
        "-q",
        "-c",
        "10",
        "-i",
        "0.05",
        "127.0.0.1",
    ]))
    .ok();
}

fn udp_veth(ns: &Netns) {
    let mut g = ns.udp_from_peer(&[5000], 2);
    g.wait().unwrap();
}

/// Runs `f` on a thread that joined network namespace `ns` (by name).
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// One whole TCP conversation from network namespace `client_ns` to
/// `server:port` in `server_ns`: the handshake, a request, the client's
/// FIN, the answer and the server's FIN. Returns once both ends closed.
fn tcp_conversation(server_ns: &str, server: &str, client_ns: &str, port: u16) {
    let (ready, listening) = std::sync::mpsc::channel();
    let addr = format!("{server}:{port}");
    let srv = in_netns(server_ns, {
        let addr = addr.clone();
        move || {
            let l = TcpListener::bind(&addr).unwrap();
            ready.send(()).unwrap();
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut req = Vec::new();
            c.read_to_end(&mut req).unwrap();
            assert_eq!(req, b"request from the client\n");
            c.write_all(b"answer from the server\n").unwrap();
        }
    });
    listening.recv().unwrap();
    in_netns(client_ns, move || {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"request from the client\n").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"answer from the server\n");
    })
    .join()
    .unwrap();
    srv.join().unwrap();
}

/// TCP on the target's loopback.
fn tcp_lo(ns: &Netns) {
    tcp_conversation(&ns.name, "127.0.0.1", &ns.name, 41000);
}

/// UDP and TCP both ways on the target's veth.
fn both_ways_veth(ns: &Netns) {
    let peer = ns.peer.as_deref().unwrap();
    let (mut a, mut b) = (ns.udp_from_peer(&[5000], 1), ns.udp_to_peer(&[5001], 1));
    tcp_conversation(&ns.name, &ns.addr, peer, 41001);
    tcp_conversation(peer, &ns.peer_addr, &ns.name, 41002);
    a.wait().unwrap();
    b.wait().unwrap();
}

#[track_caller]
fn assert_rows(rows: &[Row]) {
    for r in rows {
        eprintln!(
            "{:<40} tcpdump {:>4} captured {:>4} received {:>9} in file {:>4} lines | netshim {:>4} {:>4} {:>9} {:>4} | {}",
            r.name,
            r.tcpdump.captured,
            r.tcpdump.received,
            format!("{:?}", r.tcpdump.in_file),
            r.tcpdump.lines.len(),
            r.netshim.captured,
            r.netshim.received,
            format!("{:?}", r.netshim.in_file),
            r.netshim.lines.len(),
            if r.agrees() { "same" } else { "DIFFERENT" }
        );
    }
    for r in rows {
        assert!(r.agrees(), "{r:#?}");
    }
}

/// `ping -c 10 127.0.0.1` in the target: 20 packets, each once, as tcpdump
/// keeps them (the kernel shows each loopback packet going out and coming
/// back in; only the incoming copy is kept).
#[test]
fn loopback_ping_as_tcpdump() {
    let ns = Netns::new();
    let rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|w| differential(&ns, "lo", "icmp", w, || ping_lo(&ns)))
        .collect();
    assert_rows(&rows);
    assert_eq!(rows[0].netshim.in_file, Some(20), "{:#?}", rows[0]);
    assert_eq!(rows[1].netshim.lines.len(), 20, "{:#?}", rows[1]);
}

/// UDP from the peer on the target's veth.
#[test]
fn veth_udp_as_tcpdump() {
    let ns = Netns::with_peer();
    let rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|w| differential(&ns, &ns.veth, "udp port 5000", w, || udp_veth(&ns)))
        .collect();
    assert_rows(&rows);
    assert!(rows[0].netshim.captured > 20, "{:#?}", rows[0]);
}

/// `-i any` across loopback ICMP and the veth's UDP at the same time.
#[test]
fn any_across_lo_and_veth_as_tcpdump() {
    let ns = Netns::with_peer();
    let rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|w| {
            differential(&ns, "any", "icmp or udp port 5000", w, || {
                let g = ns.udp_from_peer(&[5000], 1);
                ping_lo(&ns);
                let mut g = g;
                g.wait().unwrap();
            })
        })
        .collect();
    assert_rows(&rows);
    assert!(
        rows[1].netshim.lines.iter().any(|l| l.starts_with("lo ")),
        "{:#?}",
        rows[1]
    );
}

/// A TCP conversation on the target's loopback (handshake, data both ways,
/// both FINs), each packet once.
#[test]
fn loopback_tcp_as_tcpdump() {
    let ns = Netns::new();
    quiet_ports(&ns.name);
    let rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|w| differential(&ns, "lo", "tcp", w, || tcp_lo(&ns)))
        .collect();
    assert_rows(&rows);
    // SYN, SYN-ACK, ACK, the request, the FINs and the answer at least.
    assert!(rows[0].netshim.in_file >= Some(8), "{:#?}", rows[0]);
    assert!(
        rows[1]
            .netshim
            .lines
            .iter()
            .any(|l| l.contains("Flags [S]")),
        "{:#?}",
        rows[1]
    );
}

/// UDP and TCP both ways on the target's veth: packets in and out.
#[test]
fn veth_udp_and_tcp_both_ways_as_tcpdump() {
    let ns = Netns::with_peer();
    quiet_ports(&ns.name);
    quiet_ports(ns.peer.as_deref().unwrap());
    let rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|w| differential(&ns, &ns.veth, "udp or tcp", w, || both_ways_veth(&ns)))
        .collect();
    assert_rows(&rows);
    let p = &rows[0].netshim.packets;
    for (dir, proto) in [("In", "UDP"), ("Out", "UDP"), ("In", "TCP"), ("Out", "TCP")] {
        assert!(
            p.iter()
                .any(|l| l.contains(&format!(" {dir} ")) && l.contains(&format!(" {proto} "))),
            "no {proto} {dir}: {p:#?}"
        );
    }
}

/// `-i any` across the loopback (ICMP, TCP) and the veth (UDP and TCP both
/// ways) at the same time.
#[test]
fn any_across_lo_and_veth_tcp_udp_as_tcpdump() {
    let ns = Netns::with_peer();
    quiet_ports(&ns.name);
    quiet_ports(ns.peer.as_deref().unwrap());
    let rows: Vec<Row> = [true, false]
        .into_iter()
        .map(|w| {
            differential(&ns, "any", "icmp or udp or tcp", w, || {
                let g = ns.udp_from_peer(&[5000], 1);
                tcp_lo(&ns);
                ping_lo(&ns);
                both_ways_veth(&ns);
                let mut g = g;
                g.wait().unwrap();
            })
        })
        .collect();
    assert_rows(&rows);
    let p = &rows[0].netshim.packets;
    assert!(p.iter().any(|l| l.starts_with("lo In ")), "{p:#?}");
    assert!(
        p.iter()
            .any(|l| l.starts_with(&format!("{} Out ", ns.veth))),
        "{p:#?}"
    );
}

/// Sends `n` UDP frames from network namespace `ns`'s `iface` with 802.1Q
/// tags `tags` (`20` or `20,30`), by mausezahn (raw frames through a
/// packet socket: the tags are in the frame's bytes on the way out).
#[allow(clippy::too_many_arguments)]
fn tagged_udp(
    ns: &str,
    iface: &str,
    macs: (&str, &str),
    ips: (&str, &str),
    tags: &str,
    ports: &str,
    text: &str,
) {
    run(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "mausezahn",
        iface,
        "-c",
        "3",
        "-d",
        "20msec",
        "-Q",
        tags,
        "-a",
        macs.0,
        "-b",
        macs.1,
        "-A",
        ips.0,
        "-B",
        ips.1,
        "-t",
        "udp",
        ports,
        "-P",
        text,
    ]))
    .ok();
}

/// Where the kernel has 802.1Q sub-interfaces: VLAN 10 over the veth on
/// both sides, 198.19.N.1/30 and .2; the address to ping through it.
fn vlan_subinterfaces(ns: &Netns) -> Option<String> {
    let octet = ns.addr.split('.').nth(2).unwrap();
    let (a, b) = (format!("198.19.{octet}.1"), format!("198.19.{octet}.2"));
    let r = sh(&format!(
        "set -e; ip -n {n} link add link {v} name {v}.10 type vlan id 10; \
         ip -n {p} link add link {v}p name {v}p.10 type vlan id 10; \
         ip -n {n} addr add {a}/30 dev {v}.10; ip -n {p} addr add {b}/30 dev {v}p.10; \
         ip -n {n} link set {v}.10 up; ip -n {p} link set {v}p.10 up",
        n = ns.name,
        p = ns.peer.as_deref().unwrap(),
        v = ns.veth
    ));
    if r.code == Some(0) {
        return Some(b);
    }
    eprintln!(
        "NOTE: this kernel makes no 802.1Q sub-interface ({}): only tags in the frames \
         mausezahn sends are covered, not tags the kernel adds on the way out",
        r.stderr.trim()
    );
    None
}

/// 802.1Q-tagged frames on the veth (capture on the veth itself, so the
/// tags show): frames tagged by the peer, whose tag the kernel takes out
/// into the packet's metadata on the way in (both put it back, as libpcap
/// does), one of them tagged twice; frames tagged in the target's own
/// bytes on the way out; where the kernel has VLAN sub-interfaces, a ping
/// through VLAN 10, tagged by the kernel on the way out. Files (tshark's
/// `vlan.id`), lines, and lines with `-e`, which print the tags.
#[test]
fn vlan_tagged_frames_as_tcpdump() {
    let ns = Netns::with_peer();
    let peer = ns.peer.clone().unwrap();
    let peer_veth = format!("{}p", ns.veth);
    let mac = |n: &str, i: &str| links(n).into_iter().find(|l| l.1 == i).unwrap().2;
    let (tmac, pmac) = (mac(&ns.name, &ns.veth), mac(&peer, &peer_veth));
    let sub = vlan_subinterfaces(&ns);
    let traffic = || {
        let (to_target, to_peer) = ((&*pmac, &*tmac), (&*tmac, &*pmac));
        let (ips_in, ips_out) = ((&*ns.peer_addr, &*ns.addr), (&*ns.addr, &*ns.peer_addr));
        tagged_udp(
            &peer,
            &peer_veth,
            to_target,
            ips_in,
            "20",
            "sp=40002,dp=5002",
            "tagged by the peer",
        );
        tagged_udp(
            &peer,
            &peer_veth,
            to_target,
            ips_in,
            "20,30",
            "sp=40003,dp=5003",
            "twice",
        );
        tagged_udp(
            &ns.name,
            &ns.veth,
            to_peer,
            ips_out,
            "20",
            "sp=5002,dp=40002",
            "tagged here",
        );
        if let Some(addr) = &sub {
            run(Command::new("ip").args([
                "netns", "exec", &ns.name, "ping", "-q", "-c", "5", "-i", "0.05", addr,
            ]))
            .ok();
        }
    };
    let filter = "udp or icmp or ether proto 0x8100";
    let rows: Vec<Row> = [(&[][..], true), (&[][..], false), (&["-e"][..], false)]
        .into_iter()
        .map(|(flags, w)| differential_with(&ns, &ns.veth, flags, filter, w, traffic))
        .collect();
    assert_rows(&rows);
    let p = &rows[0].netshim.packets;
    assert!(
        p.iter()
            .any(|l| l.contains(" In ") && l.contains("vlan [20]")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|l| l.contains(" In ") && l.contains("vlan [20,30]")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|l| l.contains(" Out ") && l.contains("vlan [20]")),
        "{p:#?}"
    );
    if sub.is_some() {
        assert!(
            p.iter()
                .any(|l| l.contains(" Out ") && l.contains("ICMP") && l.contains("vlan [10]")),
            "{p:#?}"
        );
    }
    let e = &rows[2].netshim.lines;
    assert!(
        e.iter().any(|l| l.contains(
            "vlan 20, p 0, ethertype 802.1Q (0x8100), vlan 30, p 0, ethertype IPv4 (0x0800)"
        )),
        "{e:#?}"
    );

    // `-i any` differs on purpose (docs/usage.md): tcpdump's LINUX_SLL2
    // records lose the tag the kernel took out (libpcap puts it back only
    // in Ethernet and LINUX_SLL headers), netshim's pcapng keeps each
    // interface's Ethernet frames, tag included. The rest is the same.
    // (`udp`: with `-i any` tcpdump's filter reads cooked headers and
    // netshim's Ethernet frames, which differ for a frame tagged twice.)
    let mut any = differential(&ns, "any", "udp", true, traffic);
    let untagged = |p: &[String]| -> Vec<String> {
        p.iter()
            .map(|l| {
                let (a, b) = l.split_once(" vlan [").unwrap();
                format!("{a} {}", b.split_once("] ").unwrap().1)
            })
            .collect()
    };
    let (t, n) = (&any.tcpdump.packets, &any.netshim.packets);
    assert_eq!(untagged(t), untagged(n), "{any:#?}");
    assert!(!t.iter().any(|l| l.contains("vlan [20")), "{t:#?}");
    assert!(
        n.iter()
            .any(|l| l.contains(" In ") && l.contains("vlan [20]")),
        "{n:#?}"
    );
    any.name.push_str(" (tags: differs on purpose)");
    any.tcpdump.packets.clone_from(&any.netshim.packets);
    assert_rows(&[any]);
}

/// `-Q out` on `lo` captures nothing, as tcpdump's: the outgoing copy of a
/// loopback packet is never kept.
#[test]
fn loopback_out_only_captures_nothing() {
    let ns = Netns::new();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("out.pcapng");
    let mut n = netshim_with_timeout(120);
    n.args([
        "capture",
        "--target-netns",
        &ns.target(),
        "-i",
        "lo",
        "-Q",
        "out",
        "-w",
    ])
    .arg(&f)
    .arg("icmp");
    let mut n = spawn(n, d.path(), "netshim");
    n.wait_ready("capturing on");
    ping_lo(&ns);
    std::thread::sleep(Duration::from_millis(500));
    let (code, _, err) = n.interrupt();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(stat(&err, " packets captured"), 0, "{err}");
    assert_eq!(stat(&err, " packets received by filter"), 40, "{err}");
    assert_eq!(packets_in(&f), 0);
}

/// Repeated `-i` spans several interfaces: each line names its interface
/// and direction as tcpdump's `-i any` lines do. Its pcapng (an IDB per
/// interface) read back with `-r` prints as `tcpdump -r` prints it: no
/// interface nor direction, with one IDB or several.
#[test]
fn several_interfaces_name_lines_and_files_read_as_tcpdump() {
    let ns = Netns::with_peer();
    let d = tempfile::tempdir().unwrap();
    let traffic = || {
        let mut p = ns.ping_from_peer(1);
        ping_lo(&ns);
        p.wait().unwrap();
    };
    let mut lines = Vec::new();
    for (tag, ifaces) in [("two", vec!["lo", &ns.veth]), ("one", vec![&ns.veth])] {
        let f = d.path().join(format!("{tag}.pcapng"));
        for write in [false, true] {
            let mut n = netshim_with_timeout(120);
            n.args(["capture", "--target-netns", &ns.target(), "-n"]);
            for i in &ifaces {
                n.args(["-i", i]);
            }
            if write {
                n.arg("-w").arg(&f);
            }
            n.arg("icmp");
            let mut n = spawn(n, d.path(), tag);
            n.wait_ready("capturing on");
            traffic();
            std::thread::sleep(Duration::from_millis(300));
            let (code, out, err) = n.interrupt();
            assert_eq!(code, Some(0), "{err}");
            if !write {
                lines.push(out);
            }
        }
        let t = run(Command::new("tcpdump").arg("-n").arg("-r").arg(&f)).ok();
        let r = run(Command::new(netshim())
            .args(["capture", "-n", "-r"])
            .arg(&f))
        .ok();
        assert!(t.stdout.lines().count() >= 20, "{t:#?}");
        assert_eq!(r.stdout, t.stdout, "{tag}: -r prints as tcpdump -r");
    }
    let (two, one) = (&lines[0], &lines[1]);
    assert!(
        two.lines()
            .any(|l| after_time(l)
                .starts_with("lo    In  IP 127.0.0.1 > 127.0.0.1: ICMP echo request")),
        "{two}"
    );
    assert!(
        two.lines().any(|l| after_time(l).starts_with(&format!(
            "{} Out IP {} > {}: ICMP echo reply",
            ns.veth, ns.addr, ns.peer_addr
        ))),
        "{two}"
    );
    assert!(
        one.lines().all(|l| after_time(l).starts_with("IP ")),
        "{one}"
    );
}

/// Pings 127.0.0.1 in `ns` every 50 ms for `secs`; ends by itself.
fn ping_lo_for(ns: &Netns, secs: u32) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, "ping", "-q", "-i", "0.05", "-w"])
        .arg(secs.to_string())
        .arg("127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// dumpcap's `-a`: duration, filesize, files (with -G) and packets end the
/// capture with a valid file, statistics and exit status 0; malformed
/// conditions are refused with the reason.
#[test]
fn stop_conditions_as_dumpcap() {
    let ns = Netns::new();
    let d = tempfile::tempdir().unwrap();
    let cap = |args: &[&str]| {
        let mut c = netshim_with_timeout(60);
        c.args(["capture", "--target-netns", &ns.target(), "-i", "lo"])
            .args(args);
        c
    };
    let ping = ping_lo_for(&ns, 30);
    std::thread::sleep(Duration::from_millis(300));

    let f = d.path().join("d.pcapng");
    let t0 = Instant::now();
    let r = run(&mut cap(&[
        "-a",
        "duration:2",
        "-w",
        f.to_str().unwrap(),
        "icmp",
    ]))
    .ok();
    let took = t0.elapsed().as_secs_f64();
    assert!((1.0..=3.5).contains(&took), "took {took} s: {}", r.stderr);
    let n = captured_count(&r.stderr);
    assert!(n > 10, "{}", r.stderr);
    assert_eq!(packets_in(&f), n);

    let f = d.path().join("s.pcapng");
    let r = run(&mut cap(&[
        "-a",
        "filesize:3",
        "-w",
        f.to_str().unwrap(),
        "icmp",
    ]))
    .ok();
    let len = std::fs::metadata(&f).unwrap().len();
    assert!(
        (3000..3000 + 1500).contains(&len),
        "{len} bytes: {}",
        r.stderr
    );
    assert_eq!(packets_in(&f), captured_count(&r.stderr));

    let r = run(&mut cap(&["-a", "packets:7", "-a", "duration:20", "icmp"])).ok();
    assert_eq!(r.stdout.lines().count(), 7, "{}", r.stdout);
    assert_eq!(captured_count(&r.stderr), 7);

    let r = run(&mut cap(&["-a", "packets:5", "-w", "-", "icmp"])).ok();
    assert!(r.stdout.len() > 5 * 64, "pcapng on stdout");

    let base = d.path().join("g-%s.pcapng");
    let r = run(&mut cap(&[
        "-G",
        "1",
        "-a",
        "files:2",
        "-w",
        base.to_str().unwrap(),
        "icmp",
    ]))
    .ok();
    let files: Vec<PathBuf> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("g-"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}: {}", r.stderr);
    for f in &files {
        capinfos(f);
    }
    stop(ping);

    for (bad, why) in [
        (
            "duration:0",
            "the duration must be a number of seconds above 0",
        ),
        (
            "duration:soon",
            "the duration must be a number of seconds above 0",
        ),
        (
            "filesize:-1",
            "the file size in kB must be a whole number above 0",
        ),
        (
            "packets:",
            "the number of packets must be a whole number above 0",
        ),
        ("files:2", "needs -C or -G"),
        ("size:10", "unknown condition \"size\""),
        ("packets", "no ':'"),
    ] {
        let r = run(&mut cap(&[
            "-a",
            bad,
            "-w",
            d.path().join("x").to_str().unwrap(),
            "icmp",
        ]));
        assert_ne!(r.code, Some(0), "{bad}");
        assert!(r.stderr.contains(why), "{bad}: {}", r.stderr);
    }
    let r = run(&mut cap(&["-a", "filesize:10", "icmp"]));
    assert!(r.stderr.contains("it needs -w"), "{}", r.stderr);
}

/// Sends bulk data over TCP on the target's loopback to `port` until
/// `stop` is set.
fn bulk_tcp_lo(
    ns: &Netns,
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (ready, listening) = std::sync::mpsc::channel();
    let srv = in_netns(&ns.name, move || {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        ready.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        std::io::copy(&mut c, &mut std::io::sink()).unwrap();
    });
    listening.recv().unwrap();
    in_netns(&ns.name, move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let chunk = vec![0x5au8; 1 << 20];
        let until = Instant::now() + Duration::from_secs(30);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
            c.write_all(&chunk).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(c);
        srv.join().unwrap();
    })
}

/// Waits up to 30 s for a capture to end by itself; its exit code and
/// stderr.
fn ends_by_itself(mut r: Running) -> (Option<i32>, String) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            return (
                st.code(),
                std::fs::read_to_string(&r.err).unwrap_or_default(),
            );
        }
        if Instant::now() > until {
            stop(r.child);
            panic!(
                "the capture did not end by itself: {}",
                std::fs::read_to_string(&r.err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `-a files:N` with `-C` stops after N files, as dumpcap's `-a files:N`
/// with `-b filesize`, run at the same time on the same bulk TCP transfer:
/// each ends by itself with status 0 after three files. With a `-W 2` ring
/// as well, three files are written over the ring's two names.
#[test]
fn files_autostop_with_size_rotation_as_dumpcap() {
    let ns = Netns::new();
    let d = tempfile::tempdir().unwrap();
    let filter = "tcp port 41003";
    let netshim_cap = |tag: &str, flags: &[&str]| {
        let mut c = netshim_with_timeout(60);
        c.args([
            "capture",
            "--target-netns",
            &ns.target(),
            "-i",
            "lo",
            "-C",
            "1",
        ])
        .args(flags)
        .args(["-a", "files:3", "-w"])
        .arg(d.path().join(format!("{tag}.pcapng")))
        .arg(filter);
        let mut r = spawn(c, d.path(), tag);
        r.wait_ready("capturing on");
        r
    };
    let n = netshim_cap("n", &[]);
    let ring = netshim_cap("r", &["-W", "2"]);
    let mut dc = Command::new("ip");
    dc.args([
        "netns", "exec", &ns.name, "timeout", "60", "dumpcap", "-q", "-i", "lo", "-f",
    ])
    .arg(filter)
    .args(["-b", "filesize:1000", "-a", "files:3", "-w"])
    .arg(d.path().join("d.pcapng"));
    let mut dc = spawn(dc, d.path(), "dumpcap");
    dc.wait_ready("Capturing on");
    let stop_sending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = bulk_tcp_lo(&ns, 41003, stop_sending.clone());
    let ended: Vec<(Option<i32>, String)> = [n, ring, dc].into_iter().map(ends_by_itself).collect();
    stop_sending.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    for (code, err) in &ended {
        assert_eq!(*code, Some(0), "{err}");
    }
    assert!(
        ended[0].1.contains("made the 3 files asked for"),
        "{}",
        ended[0].1
    );
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".pcapng"))
        .collect();
    names.sort();
    let dumpcap_files = names.iter().filter(|n| n.starts_with("d_")).count();
    assert_eq!(dumpcap_files, 3, "dumpcap: {names:?}");
    let ours: Vec<&String> = names.iter().filter(|n| !n.starts_with("d_")).collect();
    assert_eq!(
        ours,
        [
            "n.pcapng",
            "n.pcapng1",
            "n.pcapng2",
            "r.pcapng0",
            "r.pcapng1"
        ],
        "{names:?}"
    );
    for f in &ours[..3] {
        let p = d.path().join(f);
        let len = std::fs::metadata(&p).unwrap().len();
        // Filled up to 1 MB: the next packet (at most 64 KiB and a
        // little on loopback) would have passed it.
        assert!((900_000..=1_000_000).contains(&len), "{f}: {len} bytes");
        assert!(packets_in(&p) > 10, "{f}");
    }
}
