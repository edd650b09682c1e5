//! One line per packet, in tcpdump's manner:
//! `05:01:13.372139 eth0 In  IP 198.18.0.2.40000 > 198.18.0.1.5000: UDP, length 4`
//!
//! Packet contents are hostile input: every field is read through bounds
//! checks, and a truncated or malformed header ends the line early with
//! what could be read. Addresses are always numeric (netshim resolves no
//! names, so `-n` changes nothing).

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::format::{Direction, Packet};

pub struct Printer {
    /// Seconds east of UTC, for local time of day as tcpdump prints it.
    utc_offset: i64,
    quiet: bool,
}

fn be16(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn be32(b: &[u8], o: usize) -> Option<u32> {
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
        }
    }

    /// Appends the line for `p` (with its newline) to `out`.
    pub fn line(&self, out: &mut Vec<u8>, ifname: &str, p: &Packet) {
        self.time_and_iface(out, ifname, p);
        self.link(out, p);
        out.push(b'\n');
    }

    fn time_and_iface(&self, out: &mut Vec<u8>, ifname: &str, p: &Packet) {
        let secs = (p.ts_ns / 1_000_000_000) as i64 + self.utc_offset;
        let day = secs.rem_euclid(86400);
        let _ = write!(
            out,
            "{:02}:{:02}:{:02}.{:06} ",
            day / 3600,
            day / 60 % 60,
            day % 60,
            p.ts_ns % 1_000_000_000 / 1000,
        );
        // An interface name is chosen by whoever holds CAP_NET_ADMIN in the
        // target, and the kernel allows control bytes in it: print those
        // escaped, so that no name can drive the operator's terminal.
        escape_into(out, ifname.as_bytes());
        let _ = write!(
            out,
            " {} ",
            match p.direction() {
                Direction::In => "In ",
                Direction::Out => "Out",
            }
        );
    }

    fn link(&self, out: &mut Vec<u8>, p: &Packet) {
        let d = p.data;
        let Some(mut ethertype) = be16(d, 12) else {
            let _ = write!(out, "[|ether] length {}", p.orig_len);
            return;
        };
        let mut off = 14;
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            let Some(tci) = be16(d, off) else {
                let _ = write!(out, "[|vlan]");
                return;
            };
            let _ = write!(out, "vlan {} ", tci & 0x0fff);
            let Some(t) = be16(d, off + 2) else {
                let _ = write!(out, "[|vlan]");
                return;
            };
            ethertype = t;
            off += 4;
        }
        let rest = &d[off.min(d.len())..];
        self.network(out, ethertype, rest, p.orig_len);
    }

    fn network(&self, out: &mut Vec<u8>, ethertype: u16, rest: &[u8], orig_len: u32) {
        match ethertype {
            0x0800 => self.ipv4(out, rest),
            0x86dd => self.ipv6(out, rest),
            0x0806 => Self::arp(out, rest),
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

    fn ipv4(&self, out: &mut Vec<u8>, b: &[u8]) {
        let (Some(&vihl), Some(total), Some(&proto)) = (b.first(), be16(b, 2), b.get(9)) else {
            let _ = write!(out, "IP [|ip]");
            return;
        };
        let ihl = ((vihl & 0x0f) as usize) * 4;
        let (Some(s), Some(dst)) = (be32(b, 12), be32(b, 16)) else {
            let _ = write!(out, "IP [|ip]");
            return;
        };
        if ihl < 20 {
            let _ = write!(
                out,
                "IP {} > {}: [bad hdr length {ihl}]",
                Ipv4Addr::from(s),
                Ipv4Addr::from(dst)
            );
            return;
        }
        let frag = be16(b, 6).unwrap_or(0) & 0x1fff != 0;
        let l4 = b.get(ihl..).unwrap_or(&[]);
        let l4_len = (total as usize).saturating_sub(ihl);
        if frag {
            let _ = write!(
                out,
                "IP {} > {}: ip-proto-{proto} (fragment)",
                Ipv4Addr::from(s),
                Ipv4Addr::from(dst)
            );
            return;
        }
        self.transport(
            out,
            "IP",
            &Ipv4Addr::from(s),
            &Ipv4Addr::from(dst),
            proto,
            l4,
            l4_len,
        );
    }

    fn ipv6(&self, out: &mut Vec<u8>, b: &[u8]) {
        let (Some(plen), Some(&next), Some(s), Some(dst)) = (
            be16(b, 4),
            b.get(6),
            b.get(8..24).and_then(|x| <[u8; 16]>::try_from(x).ok()),
            b.get(24..40).and_then(|x| <[u8; 16]>::try_from(x).ok()),
        ) else {
            let _ = write!(out, "IP6 [|ip6]");
            return;
        };
        let l4 = b.get(40..).unwrap_or(&[]);
        self.transport(
            out,
            "IP6",
            &Ipv6Addr::from(s),
            &Ipv6Addr::from(dst),
            next,
            l4,
            plen as usize,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &self,
        out: &mut Vec<u8>,
        fam: &str,
        s: &dyn std::fmt::Display,
        d: &dyn std::fmt::Display,
        proto: u8,
        l4: &[u8],
        l4_len: usize,
    ) {
        match proto {
            6 => {
                let (Some(sp), Some(dp), Some(&doff), Some(&flags)) =
                    (be16(l4, 0), be16(l4, 2), l4.get(12), l4.get(13))
                else {
                    let _ = write!(out, "{fam} {s} > {d}: [|tcp]");
                    return;
                };
                let hl = ((doff >> 4) as usize) * 4;
                let _ = write!(out, "{fam} {s}.{sp} > {d}.{dp}: ");
                if self.quiet {
                    let _ = write!(out, "tcp {}", l4_len.saturating_sub(hl));
                    return;
                }
                out.extend_from_slice(b"Flags [");
                for (bit, c) in [
                    (0x02, b'S'),
                    (0x01, b'F'),
                    (0x04, b'R'),
                    (0x08, b'P'),
                    (0x20, b'U'),
                    (0x40, b'E'),
                    (0x80, b'W'),
                ] {
                    if flags & bit != 0 {
                        out.push(c);
                    }
                }
                if flags & 0x10 != 0 {
                    out.push(b'.');
                }
                if flags == 0 {
                    out.extend_from_slice(b"none");
                }
                let _ = write!(out, "], length {}", l4_len.saturating_sub(hl));
            }
            17 => match (be16(l4, 0), be16(l4, 2)) {
                (Some(sp), Some(dp)) => {
                    let _ = write!(
                        out,
                        "{fam} {s}.{sp} > {d}.{dp}: UDP, length {}",
                        l4_len.saturating_sub(8)
                    );
                }
                _ => {
                    let _ = write!(out, "{fam} {s} > {d}: [|udp]");
                }
            },
            1 | 58 => {
                let _ = write!(out, "{fam} {s} > {d}: ");
                let t = l4.first().copied();
                let what = match (proto, t) {
                    (1, Some(8)) | (58, Some(128)) => "echo request",
                    (1, Some(0)) | (58, Some(129)) => "echo reply",
                    (1, Some(3)) | (58, Some(1)) => "unreachable",
                    (1, Some(11)) | (58, Some(3)) => "time exceeded",
                    (58, Some(133)) => "router solicitation",
                    (58, Some(134)) => "router advertisement",
                    (58, Some(135)) => "neighbor solicitation",
                    (58, Some(136)) => "neighbor advertisement",
                    (_, Some(_)) => "type",
                    (_, None) => "[|icmp]",
                };
                let name = if proto == 1 { "ICMP" } else { "ICMP6" };
                match (what, t, be16(l4, 4), be16(l4, 6)) {
                    ("echo request" | "echo reply", _, Some(id), Some(seq)) => {
                        let _ = write!(out, "{name} {what}, id {id}, seq {seq}, length {l4_len}");
                    }
                    ("type", Some(t), _, _) => {
                        let _ = write!(out, "{name} type {t}, length {l4_len}");
                    }
                    _ => {
                        let _ = write!(out, "{name} {what}, length {l4_len}");
                    }
                }
            }
            p => {
                let _ = write!(out, "{fam} {s} > {d}: ip-proto-{p} {l4_len}");
            }
        }
    }

    fn arp(out: &mut Vec<u8>, b: &[u8]) {
        let (Some(op), Some(spa), Some(tpa)) = (be16(b, 6), be32(b, 14), be32(b, 24)) else {
            let _ = write!(out, "ARP [|arp]");
            return;
        };
        let (s, t) = (Ipv4Addr::from(spa), Ipv4Addr::from(tpa));
        let _ = match op {
            1 => write!(out, "ARP, Request who-has {t} tell {s}"),
            2 => write!(out, "ARP, Reply {s} is-at"),
            o => write!(out, "ARP, op {o}"),
        };
        if op == 2 {
            if let Some(m) = b.get(8..14) {
                let _ = write!(
                    out,
                    " {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                );
            }
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
        let pr = Printer {
            utc_offset: 0,
            quiet: false,
        };
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
            "01:02:03.000456 eth0 In  IP 198.18.0.2.40000 > 198.18.0.1.5000: UDP, length 4\n"
        );
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&443u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&50000u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x12;
        let l = show(&frame(0x0800, &ipv4(6, &tcp)), libc::PACKET_OUTGOING);
        assert!(
            l.ends_with("Out IP 198.18.0.2.443 > 198.18.0.1.50000: Flags [S.], length 0\n"),
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
            l.contains("vlan 42 ARP, Request who-has 198.18.0.1 tell 198.18.0.2"),
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
}
