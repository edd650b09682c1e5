//! Live differential tests: tcpdump 4.99.3 and `netshim capture` run at the
//! same time in a network namespace the test makes, on the same traffic,
//! and must agree: the packets their files hold, the statistics they print
//! and, without `-w`, the lines they print after the time stamp (`-n`).

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
            && t.lines == n.lines
    }
}

/// Runs tcpdump and netshim in `ns` with the same interface and filter,
/// with `-w` (each to its own file) or printing lines, while `traffic`
/// runs; both are stopped by SIGINT once it is over.
fn differential(ns: &Netns, iface: &str, filter: &str, write: bool, traffic: impl FnOnce()) -> Row {
    let d = tempfile::tempdir().unwrap();
    let (tf, nf) = (d.path().join("t.pcap"), d.path().join("n.pcapng"));
    let mut t = Command::new("ip");
    t.args(["netns", "exec", &ns.name, "tcpdump", "-n", "-i", iface]);
    let mut n = netshim_with_timeout(120);
    n.args(["capture", "--target-netns", &ns.target(), "-n", "-i", iface]);
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
        name: format!("{iface} {filter:?}{}", if write { " -w" } else { "" }),
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

#[track_caller]
fn assert_rows(rows: &[Row]) {
    for r in rows {
        eprintln!(
            "{:<40} tcpdump {:>4} captured {:>4} received {:>9} in file | netshim {:>4} {:>4} {:>9} | {}",
            r.name,
            r.tcpdump.captured,
            r.tcpdump.received,
            format!("{:?}", r.tcpdump.in_file),
            r.netshim.captured,
            r.netshim.received,
            format!("{:?}", r.netshim.in_file),
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
        ("files:2", "needs -G"),
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
