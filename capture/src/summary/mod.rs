//! One line per packet, in tcpdump's manner:
//! `05:01:13.372139 eth0 In  IP 198.18.0.2.40000 > 198.18.0.1.5000: UDP, length 4`
//!
//! Packet contents are hostile input: every field is read through bounds
//! checks, and a truncated or malformed header ends the line early with
//! what could be read. Addresses are always numeric (netshim resolves no
//! names, so `-n` changes nothing).

use std::cell::Cell;
use std::io::Write;
use std::net::Ipv4Addr;

use crate::format::Packet;

mod dns;
mod icmp;
mod inet;
mod tcp;

pub struct Printer {
    /// Seconds east of UTC, for local time of day as tcpdump prints it.
    utc_offset: i64,
    quiet: bool,
    /// tcpdump's `-t` count: 0 time of day, 1 none, 2 seconds since the
    /// epoch, 3 delta from the previous packet, 4 date and time, 5 delta
    /// from the first packet.
    time: u8,
    dump: Dump,
    /// tcpdump's `-e`: the link-layer header on each line.
    link_header: bool,
    first_ts: Cell<Option<u64>>,
    prev_ts: Cell<Option<u64>>,
    /// tcpdump's `-v` count.
    verbose: u8,
    /// tcpdump's `-S`: TCP sequence numbers as they are, not relative.
    absolute_seq: bool,
    /// tcpdump's `--time-stamp-precision=nano`: nine digits of fraction.
    nano: bool,
    /// TCP conversations' first sequence numbers, for relative numbers.
    conversations: std::cell::RefCell<tcp::Conversations>,
    /// Inside the packet an ICMP error quotes (printed once, never deeper:
    /// a packet of nested errors cannot make the printer recurse).
    quoting: Cell<bool>,
}

/// tcpdump's packet-contents flags: `-x`/`-xx` (hex), `-X`/`-XX` (hex and
/// ASCII), `-A` (ASCII); `link` is the doubled form, which starts at the
/// link-layer header instead of the network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dump {
    #[default]
    None,
    Hex {
        link: bool,
    },
    HexAscii {
        link: bool,
    },
    Ascii,
}

impl Dump {
    /// From tcpdump's counts of `-x`, `-X` and `-A` (`-X` wins over `-x`,
    /// `-A` over both, as in tcpdump).
    pub fn from_counts(x: u8, big_x: u8, a: bool) -> Dump {
        if a {
            Dump::Ascii
        } else if big_x > 0 {
            Dump::HexAscii { link: big_x > 1 }
        } else if x > 0 {
            Dump::Hex { link: x > 1 }
        } else {
            Dump::None
        }
    }
}

pub(super) fn be16(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

pub(super) fn be32(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

fn local_offset() -> i64 {
    // SAFETY: time(NULL) and localtime_r write only into the locals given.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    }
}

/// tcpdump's hex dump: a line per 16 bytes, `\t0xOFFS:  ` then groups of
/// two bytes; with `ascii`, the hex padded to its full width, two spaces and
/// the bytes with '.' for what is not printable.
fn hex_lines(out: &mut Vec<u8>, b: &[u8], ascii: bool) {
    hex_lines_indented(out, b, ascii, "\t")
}

/// [`hex_lines`] with `indent` before each line's offset.
pub(super) fn hex_lines_indented(out: &mut Vec<u8>, b: &[u8], ascii: bool, indent: &str) {
    for (n, chunk) in b.chunks(16).enumerate() {
        let _ = write!(out, "{indent}0x{:04x}:  ", n * 16);
        let start = out.len();
        for (i, pair) in chunk.chunks(2).enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            for c in pair {
                let _ = write!(out, "{c:02x}");
            }
        }
        if ascii {
            while out.len() - start < 39 {
                out.push(b' ');
            }
            out.extend_from_slice(b"  ");
            for &c in chunk {
                // As tcpdump: a space shows as '.' here too.
                out.push(if (0x21..0x7f).contains(&c) { c } else { b'.' });
            }
        }
        out.push(b'\n');
    }
}

/// tcpdump's `-e` for Ethernet: `SRC > DST, ethertype NAME (0xTTTT),
/// length N: ` before the network layer, which then loses its own leading
/// protocol word (`IP `, `IP6 `, `ARP, `), as tcpdump prints it. `start` is
/// where the line's protocol part begins in `out`.
fn ether_header(out: &mut Vec<u8>, start: usize, p: &Packet) {
    let d = p.data;
    let (Some(dst), Some(src), Some(t)) = (d.get(0..6), d.get(6..12), be16(d, 12)) else {
        return;
    };
    let body = out.split_off(start);
    let mac = |m: &[u8]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let (name, word) = ethertype_words(t);
    let _ = write!(
        out,
        "{} > {}, ethertype {name} (0x{t:04x}), length {}: ",
        mac(src),
        mac(dst),
        p.orig_len
    );
    let rest = if !word.is_empty() && body.starts_with(word) {
        &body[word.len()..]
    } else {
        &body[..]
    };
    out.extend_from_slice(rest);
}

/// tcpdump's name of an ethertype with `-e`, and the protocol word the
/// layer above starts its text with (which `-e` leaves out).
fn ethertype_words(t: u16) -> (&'static str, &'static [u8]) {
    match t {
        0x0800 => ("IPv4", b"IP "),
        0x86dd => ("IPv6", b"IP6 "),
        0x0806 => ("ARP", b"ARP, "),
        0x8100 => ("802.1Q", b""),
        0x88a8 => ("802.1Q-QinQ", b""),
        _ => ("Unknown", b""),
    }
}

/// Year, month, day of a day count since 1970-01-01 (the proleptic
/// Gregorian calendar; Howard Hinnant's civil-from-days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `b`, printable ASCII as is and every other byte as `\xNN`.
pub fn escape_into(out: &mut Vec<u8>, b: &[u8]) {
    for &c in b {
        if (0x21..0x7f).contains(&c) && c != b'\\' {
            out.push(c);
        } else {
            let _ = write!(out, "\\x{c:02x}");
        }
    }
}

/// `name` made safe to print on a terminal (see [`escape_into`]).
/// tcpdump's word for a packet's type (`sll_pkttype`) in a line that names
/// its interface: `In`, `Out`, `B`roadcast, `M`ulticast, `P` (to another
/// host).
fn packet_type_word(p: &Packet) -> &'static str {
    match p.pkttype {
        libc::PACKET_HOST => "In",
        libc::PACKET_OUTGOING => "Out",
        libc::PACKET_BROADCAST => "B",
        libc::PACKET_MULTICAST => "M",
        libc::PACKET_OTHERHOST => "P",
        _ => "?",
    }
}

pub fn printable(name: &str) -> String {
    let mut v = Vec::with_capacity(name.len());
    escape_into(&mut v, name.as_bytes());
    String::from_utf8(v).expect("escape_into writes ASCII")
}

impl Printer {
    pub fn new(quiet: bool) -> Printer {
        Printer {
            utc_offset: local_offset(),
            quiet,
            time: 0,
            dump: Dump::None,
            link_header: false,
            first_ts: Cell::new(None),
            prev_ts: Cell::new(None),
            verbose: 0,
            absolute_seq: false,
            nano: false,
            conversations: Default::default(),
            quoting: Cell::new(false),
        }
    }

    /// tcpdump's `--time-stamp-precision`.
    pub fn with_precision(mut self, p: crate::format::Precision) -> Printer {
        self.nano = p == crate::format::Precision::Nano;
        self
    }

    /// tcpdump's `-v` count and `-S`.
    pub fn with_verbosity(mut self, verbose: u8, absolute_seq: bool) -> Printer {
        self.verbose = verbose;
        self.absolute_seq = absolute_seq;
        self
    }

    /// tcpdump's `-e`.
    pub fn with_link_header(mut self, on: bool) -> Printer {
        self.link_header = on;
        self
    }

    /// tcpdump's `-t` count (capped at 5, `-ttttt`) and contents dump.
    pub fn with_format(mut self, time: u8, dump: Dump) -> Printer {
        self.time = time.min(5);
        self.dump = dump;
        self
    }

    fn timestamp(&self, out: &mut Vec<u8>, ts_ns: u64) {
        // Ticks of the precision printed: microseconds, or nanoseconds.
        let (per_sec, width) = if self.nano {
            (1_000_000_000u64, 9)
        } else {
            (1_000_000, 6)
        };
        let t = ts_ns / (1_000_000_000 / per_sec);
        let first = self.first_ts.get().unwrap_or(t);
        self.first_ts.set(Some(first));
        let prev = self.prev_ts.replace(Some(t)).unwrap_or(t);
        let clock = |out: &mut Vec<u8>, secs: i64, frac: u64| {
            let day = secs.rem_euclid(86400);
            let _ = write!(
                out,
                "{:02}:{:02}:{:02}.{:0width$} ",
                day / 3600,
                day / 60 % 60,
                day % 60,
                frac
            );
        };
        let delta = |out: &mut Vec<u8>, from: u64| {
            // tcpdump leaves a column for the sign of a delta.
            let (sign, d) = if t >= from {
                (' ', t - from)
            } else {
                ('-', from - t)
            };
            out.push(sign as u8);
            clock(out, (d / per_sec) as i64, d % per_sec);
        };
        match self.time {
            1 => {}
            2 => {
                let _ = write!(out, "{}.{:0width$} ", t / per_sec, t % per_sec);
            }
            3 => delta(out, prev),
            4 => {
                let local = (t / per_sec) as i64 + self.utc_offset;
                let (y, m, d) = civil_from_days(local.div_euclid(86400));
                let _ = write!(out, "{y:04}-{m:02}-{d:02} ");
                clock(out, local, t % per_sec);
            }
            5 => delta(out, first),
            _ => clock(out, (t / per_sec) as i64 + self.utc_offset, t % per_sec),
        }
    }

    /// Appends the contents dump of a packet whose link-layer header is
    /// `link_len` bytes, in tcpdump's layout.
    fn dump_into(&self, out: &mut Vec<u8>, data: &[u8], link_len: usize) {
        let from = |link: bool| if link { 0 } else { link_len.min(data.len()) };
        match self.dump {
            Dump::None => {}
            Dump::Hex { link } => hex_lines(out, &data[from(link)..], false),
            Dump::HexAscii { link } => hex_lines(out, &data[from(link)..], true),
            Dump::Ascii => {
                let b = &data[from(false)..];
                for (i, &c) in b.iter().enumerate() {
                    // A CR before a LF is left out; what is not printable
                    // (escape sequences included) shows as '.'.
                    if c == b'\r' {
                        if b.get(i + 1) != Some(&b'\n') {
                            out.push(b'.');
                        }
                    } else if c.is_ascii_graphic() || c == b' ' || c == b'\t' || c == b'\n' {
                        out.push(c);
                    } else {
                        out.push(b'.');
                    }
                }
                out.push(b'\n');
            }
        }
    }

    /// Appends the line for `p` (with its newline) to `out`.
    pub fn line(&self, out: &mut Vec<u8>, ifname: &str, p: &Packet) {
        self.time_and_iface(out, ifname, p);
        let start = out.len();
        let link_len = self.link(out, p);
        if self.link_header {
            ether_header(out, start, p);
        }
        out.push(b'\n');
        self.dump_into(out, p.data, link_len);
    }

    fn time_and_iface(&self, out: &mut Vec<u8>, ifname: &str, p: &Packet) {
        self.timestamp(out, p.ts_ns);
        if ifname.is_empty() {
            // A packet read from a file that names no interface: tcpdump
            // prints neither interface nor direction then.
            return;
        }
        // An interface name is chosen by whoever holds CAP_NET_ADMIN in the
        // target, and the kernel allows control bytes in it: print those
        // escaped, so that no name can drive the operator's terminal.
        // As tcpdump prints a capture that spans several interfaces (`-i
        // any`): the name padded to five columns, then the packet type
        // padded to three.
        let at = out.len();
        escape_into(out, ifname.as_bytes());
        let width = out.len() - at;
        out.extend(std::iter::repeat_n(b' ', 5usize.saturating_sub(width)));
        let _ = write!(out, " {:<3} ", packet_type_word(p));
    }

    /// Prints the Ethernet frame; returns the length of its link-layer
    /// header (VLAN tags included).
    fn link(&self, out: &mut Vec<u8>, p: &Packet) -> usize {
        let d = p.data;
        let Some(mut ethertype) = be16(d, 12) else {
            let _ = write!(out, "[|ether] length {}", p.orig_len);
            return d.len();
        };
        let mut off = 14;
        // VLAN tags: tcpdump shows them with -e only, each as `vlan ID, p
        // PRIORITY[, DEI], ethertype NAME (0xTTTT), `.
        let mut tagged = false;
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            let (Some(tci), Some(t)) = (be16(d, off), be16(d, off + 2)) else {
                let _ = write!(out, "[|vlan]");
                return d.len();
            };
            if self.link_header {
                let _ = write!(out, "vlan {}, p {}", tci & 0x0fff, tci >> 13);
                if tci & 0x1000 != 0 {
                    out.extend_from_slice(b", DEI");
                }
                let _ = write!(out, ", ethertype {} (0x{t:04x}), ", ethertype_words(t).0);
            }
            tagged = true;
            ethertype = t;
            off += 4;
        }
        let rest = &d[off.min(d.len())..];
        let at = out.len();
        self.network(out, ethertype, rest, p.orig_len);
        // After a tag, -e leaves out the protocol word here too.
        let word = ethertype_words(ethertype).1;
        if tagged && self.link_header && !word.is_empty() && out[at..].starts_with(word) {
            out.drain(at..at + word.len());
        }
        off
    }

    fn network(&self, out: &mut Vec<u8>, ethertype: u16, rest: &[u8], orig_len: u32) {
        match ethertype {
            0x0800 => self.ipv4(out, rest),
            0x86dd => self.ipv6(out, rest),
            0x0806 => self.arp(out, rest),
            t => {
                let _ = write!(out, "ethertype 0x{t:04x}, length {orig_len}");
            }
        }
    }

    /// Appends the line for a packet read from a file whose interface has
    /// link type `linktype` (see [`crate::read::linktype`]); Ethernet is
    /// printed as a live capture's packets are.
    pub fn line_of_linktype(&self, out: &mut Vec<u8>, ifname: &str, linktype: u16, p: &Packet) {
        use crate::read::linktype as lt;
        if linktype == lt::ETHERNET {
            return self.line(out, ifname, p);
        }
        self.time_and_iface(out, ifname, p);
        let d = p.data;
        let by_version = |b: &[u8]| match b.first().map(|v| v >> 4) {
            Some(4) => 0x0800,
            Some(6) => 0x86dd,
            _ => 0,
        };
        let (ethertype, off) = match linktype {
            lt::LINUX_SLL => (be16(d, 14).unwrap_or(0), 16),
            lt::LINUX_SLL2 => (be16(d, 0).unwrap_or(0), 20),
            lt::RAW | lt::IPV4 | lt::IPV6 => (by_version(d), 0),
            lt::NULL | lt::LOOP => (by_version(d.get(4..).unwrap_or(&[])), 4),
            other => {
                let _ = writeln!(out, "[link type {other}] length {}", p.orig_len);
                self.dump_into(out, d, 0);
                return;
            }
        };
        if d.len() < off {
            let _ = writeln!(
                out,
                "[|{}] length {}",
                crate::read::linktype::name(linktype),
                p.orig_len
            );
            return;
        }
        self.network(out, ethertype, &d[off..], p.orig_len);
        out.push(b'\n');
    }

    fn arp(&self, out: &mut Vec<u8>, b: &[u8]) {
        let (Some(op), Some(spa), Some(tpa)) = (be16(b, 6), be32(b, 14), be32(b, 24)) else {
            let _ = write!(out, "ARP [|arp]");
            return;
        };
        let (s, t) = (Ipv4Addr::from(spa), Ipv4Addr::from(tpa));
        if self.verbose > 0 {
            // tcpdump -v names the hardware and protocol with their sizes.
            let hw = match be16(b, 0) {
                Some(1) => "Ethernet".to_string(),
                Some(h) => format!("Unknown Hardware ({h})"),
                None => String::new(),
            };
            let pr = match be16(b, 2) {
                Some(0x0800) => "IPv4".to_string(),
                Some(p) => format!("Unknown Protocol (0x{p:04x})"),
                None => String::new(),
            };
            let _ = write!(
                out,
                "ARP, {hw} (len {}), {pr} (len {}), ",
                b.get(4).copied().unwrap_or(0),
                b.get(5).copied().unwrap_or(0)
            );
            let _ = match op {
                1 => write!(out, "Request who-has {t} tell {s}"),
                2 => write!(out, "Reply {s} is-at"),
                o => write!(out, "op {o}"),
            };
        } else {
            let _ = match op {
                1 => write!(out, "ARP, Request who-has {t} tell {s}"),
                2 => write!(out, "ARP, Reply {s} is-at"),
                o => write!(out, "ARP, op {o}"),
            };
        }
        if op == 2 {
            if let Some(m) = b.get(8..14) {
                let _ = write!(
                    out,
                    " {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                );
            }
        }
        // As tcpdump: the ARP message's own length, from its address sizes
        // (Ethernet padding after it is not counted).
        if let (Some(&hln), Some(&pln)) = (b.get(4), b.get(5)) {
            let _ = write!(out, ", length {}", 8 + 2 * hln as usize + 2 * pln as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1,
        ];
        let total = (20 + l4.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(l4);
        h
    }

    fn show(data: &[u8], pkttype: u8) -> String {
        let p = Packet {
            ts_ns: 3_723_000_456_000,
            ifindex: 2,
            hatype: 1,
            pkttype,
            data,
            orig_len: data.len() as u32,
        };
        let mut pr = Printer::new(false);
        pr.utc_offset = 0;
        let mut out = Vec::new();
        pr.line(&mut out, "eth0", &p);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn udp_tcp_icmp_lines_look_like_tcpdump() {
        let mut udp = vec![0x9c, 0x40, 0x13, 0x88, 0, 12, 0, 0];
        udp.extend_from_slice(b"ping");
        let l = show(&frame(0x0800, &ipv4(17, &udp)), libc::PACKET_HOST);
        assert_eq!(
            l,
            "01:02:03.000456 eth0  In  IP 198.18.0.2.40000 > 198.18.0.1.5000: UDP, length 4\n"
        );
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&443u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&50000u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x12;
        let l = show(&frame(0x0800, &ipv4(6, &tcp)), libc::PACKET_OUTGOING);
        assert!(
            l.ends_with(
                "Out IP 198.18.0.2.443 > 198.18.0.1.50000: Flags [S.], seq 0, ack 0, win 0, length 0\n"
            ),
            "{l}"
        );
        let icmp = [8, 0, 0, 0, 0, 7, 0, 1];
        let l = show(&frame(0x0800, &ipv4(1, &icmp)), libc::PACKET_HOST);
        assert!(
            l.contains("ICMP echo request, id 7, seq 1, length 8"),
            "{l}"
        );
    }

    #[test]
    fn vlan_and_arp() {
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[198, 18, 0, 2]);
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[198, 18, 0, 1]);
        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a, 0x08, 0x06]);
        tagged.extend_from_slice(&arp);
        let l = show(&tagged, libc::PACKET_BROADCAST);
        assert!(
            l.contains("B   ARP, Request who-has 198.18.0.1 tell 198.18.0.2"),
            "{l}"
        );
    }

    #[test]
    fn hostile_and_truncated_packets_never_panic() {
        // Every prefix of every interesting packet, and junk of every length.
        let mut udp = vec![0x9c, 0x40, 0x13, 0x88, 0, 12, 0, 0];
        udp.extend_from_slice(b"ping");
        let samples = [
            frame(0x0800, &ipv4(17, &udp)),
            frame(0x86dd, &[0x60; 48]),
            frame(0x8100, &[0xff; 30]),
        ];
        for s in &samples {
            for n in 0..=s.len() {
                let l = show(&s[..n], libc::PACKET_HOST);
                assert!(l.ends_with('\n') && l.lines().count() == 1, "{l:?}");
            }
        }
        let mut bad_ihl = frame(0x0800, &ipv4(6, &[0; 20]));
        bad_ihl[14] = 0x41;
        assert!(show(&bad_ihl, 0).contains("bad hdr length 4"));
        for len in 0..80 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = show(&junk, 0);
        }
    }

    #[test]
    fn time_formats_and_dumps_follow_tcpdump() {
        let data = frame(
            0x0800,
            &ipv4(
                17,
                &[
                    0x13, 0x88, 0x13, 0x89, 0, 12, 0, 0, b' ', b'\x1b', b'A', b'\r',
                ],
            ),
        );
        let p = |ts_ns| Packet {
            ts_ns,
            ifindex: 1,
            hatype: 1,
            pkttype: 0,
            data: &data,
            orig_len: data.len() as u32,
        };
        let mut pr = Printer::new(false).with_format(3, Dump::HexAscii { link: false });
        pr.utc_offset = 0;
        let mut out = Vec::new();
        pr.line(&mut out, "e", &p(1_000_000_000));
        pr.line(&mut out, "e", &p(1_000_250_000));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(" 00:00:00.000000 e     In  IP "),
            "{text}"
        );
        assert!(text.contains("\n 00:00:00.000250 e     In  IP "), "{text}");
        assert!(lines[1].starts_with("\t0x0000:  4500 "), "{text}");
        // The ASCII column: '.' for space, escape and CR, as tcpdump.
        assert!(lines[2].ends_with("..A."), "{text}");
        assert!(!text.contains('\x1b'));
        for (t, want) in [
            (2, "1.000000 "),
            (4, "1970-01-01 00:00:01.000000 "),
            (1, "e     In  "),
        ] {
            let mut pr = Printer::new(false).with_format(t, Dump::None);
            pr.utc_offset = 0;
            let mut out = Vec::new();
            pr.line(&mut out, "e", &p(1_000_000_000));
            assert!(String::from_utf8(out).unwrap().starts_with(want), "-t x{t}");
        }
        assert_eq!(civil_from_days(20_425), (2025, 12, 3));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
