//! IPv4, IPv6, TCP, UDP and ICMP as tcpdump 4.99 prints them, with `-v`
//! and `-vv`: the IP header in parentheses, TCP's relative sequence
//! numbers and options, checksums, and the packet an ICMP error quotes.
//! Written from tcpdump's output on the same packets (the tests compare
//! whole lines with tcpdump's), not from its code.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, be32, hex_lines_indented, Printer};

/// Conversations whose first sequence numbers the printer keeps for
/// relative numbering; past this many the table starts again, so a flood of
/// new connections costs bounded memory (tcpdump's table grows without
/// bound). A conversation whose entry went then prints from its next packet
/// on relative to that packet, as tcpdump does for one it saw start late.
const MAX_CONVERSATIONS: usize = 65_536;

/// One TCP conversation in both directions, in tcpdump's order: the lower
/// port first (or the lower address on equal ports).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Conversation {
    a: [u8; 16],
    b: [u8; 16],
    ports: u32,
}

/// The sequence numbers a conversation's relative numbers count from: the
/// first-seen side's `seq` and the other side's `ack - 1`.
#[derive(Clone, Copy, Default)]
pub(super) struct Base {
    seq: u32,
    ack: u32,
}

pub(super) type Conversations = HashMap<Conversation, Base>;

/// The addresses and payload of one IP packet, for the layer above.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// What was captured of the payload.
    l4: &'a [u8],
    /// The payload's length by the IP header.
    l4_len: usize,
    /// A fragment other than the first: nothing above IP to read.
    later_fragment: bool,
    /// A first fragment: checksums cannot be checked.
    fragmented: bool,
    /// The IP layer printed `SRC > DST: ` already (IPv6 before extension
    /// headers, as tcpdump does for protocols without ports).
    addrs_done: bool,
}

impl Ip<'_> {
    fn addrs(&self, out: &mut Vec<u8>) {
        if !self.addrs_done {
            let _ = write!(out, "{} > {}: ", self.src, self.dst);
        }
    }
}

fn proto_name(p: u8) -> &'static str {
    match p {
        0 => "Options",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        8 => "EGP",
        17 => "UDP",
        33 => "DCCP",
        41 => "IPv6",
        43 => "Routing",
        44 => "Fragment",
        46 => "RSVP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        88 => "EIGRP",
        89 => "OSPF",
        103 => "PIM",
        108 => "Compressed IP",
        112 => "VRRP",
        132 => "SCTP",
        _ => "unknown",
    }
}

/// The one's complement sum of `b` (big-endian 16-bit words, an odd last
/// byte padded with zero), added to `acc` without folding.
fn sum16(mut acc: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    acc
}

fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum a TCP, UDP or ICMPv6 segment should carry over the IP
/// pseudo-header, and whether the one it carries (at `at`) is right.
/// `None` when the segment was not captured whole.
fn l4_checksum(ip: &Ip, at: usize) -> Option<(u16, u16, bool)> {
    let seg = ip.l4.get(..ip.l4_len)?;
    let carried = be16(seg, at)?;
    let mut acc = match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum16(sum16(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum16(sum16(0, &s.octets()), &d.octets()),
        _ => return None,
    };
    acc += ip.proto as u64 + (ip.l4_len as u64 >> 16) + (ip.l4_len as u64 & 0xffff);
    let without = sum16(sum16(acc, &seg[..at]), &seg[at + 2..]);
    let ok = fold(without + carried as u64) == 0xffff;
    Some((carried, !fold(without), ok))
}

/// The IPv4 header checksum over `hdr`, for ICMP's own (no pseudo-header).
fn plain_checksum_ok(b: &[u8]) -> (u16, bool) {
    let carried = be16(b, 2).unwrap_or(0);
    let without = sum16(sum16(0, &b[..2.min(b.len())]), b.get(4..).unwrap_or(&[]));
    (!fold(without), fold(without + carried as u64) == 0xffff)
}

impl Printer {
    pub(super) fn ipv4(&self, out: &mut Vec<u8>, b: &[u8]) {
        let (Some(&vihl), Some(total), Some(&proto)) = (b.first(), be16(b, 2), b.get(9)) else {
            let _ = write!(out, "IP [|ip]");
            return;
        };
        let ihl = ((vihl & 0x0f) as usize) * 4;
        let (Some(s), Some(dst)) = (be32(b, 12), be32(b, 16)) else {
            let _ = write!(out, "IP [|ip]");
            return;
        };
        let (s, dst) = (Ipv4Addr::from(s), Ipv4Addr::from(dst));
        if ihl < 20 {
            let _ = write!(out, "IP {s} > {dst}: [bad hdr length {ihl}]");
            return;
        }
        let off = be16(b, 6).unwrap_or(0);
        if self.verbose > 0 {
            let tos = b.get(1).copied().unwrap_or(0);
            let _ = write!(out, "IP (tos 0x{tos:x}");
            match tos & 3 {
                1 => out.extend_from_slice(b",ECT(1)"),
                2 => out.extend_from_slice(b",ECT(0)"),
                3 => out.extend_from_slice(b",CE"),
                _ => {}
            }
            let ttl = b.get(8).copied().unwrap_or(0);
            if ttl >= 1 {
                let _ = write!(out, ", ttl {ttl}");
            }
            let mut flags = Vec::new();
            for (bit, name) in [(0x2000, "+"), (0x4000, "DF"), (0x8000, "rsvd")] {
                if off & bit != 0 {
                    flags.push(name);
                }
            }
            let _ = write!(
                out,
                ", id {}, offset {}, flags [{}], proto {} ({proto}), length {total}",
                be16(b, 4).unwrap_or(0),
                (off & 0x1fff) as u32 * 8,
                if flags.is_empty() {
                    "none".to_string()
                } else {
                    flags.join(", ")
                },
                proto_name(proto),
            );
            // The header checksum, when the whole header was captured.
            if let Some(hdr) = b.get(..ihl) {
                if fold(sum16(0, hdr)) != 0xffff {
                    let carried = be16(b, 10).unwrap_or(0);
                    let expected = !fold(sum16(sum16(0, &hdr[..10]), &hdr[12..]));
                    let _ = write!(out, ", bad cksum {carried:x} (->{expected:x})!");
                }
            }
            out.extend_from_slice(b")\n    ");
        } else {
            out.extend_from_slice(b"IP ");
        }
        let ip = Ip {
            src: s.into(),
            dst: dst.into(),
            proto,
            l4: b
                .get(ihl..(total as usize).max(ihl))
                .or(b.get(ihl..))
                .unwrap_or(&[]),
            l4_len: (total as usize).saturating_sub(ihl),
            later_fragment: off & 0x1fff != 0,
            fragmented: off & 0x3fff != 0,
            addrs_done: false,
        };
        if ip.later_fragment {
            let _ = write!(out, "{s} > {dst}: ip-proto-{proto}");
            return;
        }
        self.transport(out, &ip);
    }

    pub(super) fn ipv6(&self, out: &mut Vec<u8>, b: &[u8]) {
        let (Some(flow), Some(plen), Some(&next), Some(s), Some(dst)) = (
            be32(b, 0),
            be16(b, 4),
            b.get(6),
            b.get(8..24).and_then(|x| <[u8; 16]>::try_from(x).ok()),
            b.get(24..40).and_then(|x| <[u8; 16]>::try_from(x).ok()),
        ) else {
            let _ = write!(out, "IP6 [|ip6]");
            return;
        };
        if self.verbose > 0 {
            out.extend_from_slice(b"IP6 (");
            if flow & 0x0ff0_0000 != 0 {
                let _ = write!(out, "class 0x{:02x}, ", (flow & 0x0ff0_0000) >> 20);
            }
            if flow & 0x000f_ffff != 0 {
                let _ = write!(out, "flowlabel 0x{:05x}, ", flow & 0x000f_ffff);
            }
            let _ = write!(
                out,
                "hlim {}, next-header {} ({next}) payload length: {plen}) ",
                b.get(7).copied().unwrap_or(0),
                proto_name(next)
            );
        } else {
            out.extend_from_slice(b"IP6 ");
        }
        let end = (40 + plen as usize).min(b.len());
        let mut payload = b.get(40..end).unwrap_or(&[]);
        let (mut next, mut len, mut fragmented) = (next, plen as usize, false);
        let addrs_done = !matches!(next, 6 | 17);
        if addrs_done {
            let _ = write!(out, "{} > {}: ", Ipv6Addr::from(s), Ipv6Addr::from(dst));
        }
        // Extension headers, as tcpdump names them before the protocol.
        loop {
            match next {
                0 | 60 => {
                    let (Some(&nh), Some(&units)) = (payload.first(), payload.get(1)) else {
                        let _ = write!(out, "{} [|ip6]", if next == 0 { "HBH" } else { "DSTOPT" });
                        return;
                    };
                    let hl = (units as usize + 1) * 8;
                    out.extend_from_slice(if next == 0 { b"HBH " } else { b"DSTOPT " });
                    if self.verbose > 0 {
                        ipv6_options(out, payload.get(2..hl).unwrap_or(&[]));
                    }
                    next = nh;
                    payload = payload.get(hl..).unwrap_or(&[]);
                    len = len.saturating_sub(hl);
                }
                44 => {
                    let (Some(&nh), Some(offlg), Some(id)) =
                        (payload.first(), be16(payload, 2), be32(payload, 4))
                    else {
                        out.extend_from_slice(b"frag [|frag6]");
                        return;
                    };
                    let off = offlg & 0xfff8;
                    len = len.saturating_sub(8);
                    if self.verbose > 0 {
                        let _ = write!(out, "frag (0x{id:08x}:{off}|{len})");
                    } else {
                        let _ = write!(out, "frag ({off}|{len})");
                    }
                    if off != 0 {
                        return;
                    }
                    out.push(b' ');
                    fragmented = true;
                    next = nh;
                    payload = payload.get(8..).unwrap_or(&[]);
                }
                _ => break,
            }
        }
        let ip = Ip {
            src: Ipv6Addr::from(s).into(),
            dst: Ipv6Addr::from(dst).into(),
            proto: next,
            l4: payload,
            l4_len: len,
            later_fragment: false,
            fragmented,
            addrs_done,
        };
        self.transport(out, &ip);
    }

    fn transport(&self, out: &mut Vec<u8>, ip: &Ip) {
        let (s, d) = (ip.src, ip.dst);
        match ip.proto {
            6 => self.tcp(out, ip),
            17 => {
                let (Some(sp), Some(dp)) = (be16(ip.l4, 0), be16(ip.l4, 2)) else {
                    ip.addrs(out);
                    out.extend_from_slice(b"[|udp]");
                    return;
                };
                let _ = write!(out, "{s}.{sp} > {d}.{dp}: ");
                let v6 = ip.src.is_ipv6();
                if !ip.fragmented && (self.verbose > 1 || (self.verbose > 0 && v6)) {
                    match (be16(ip.l4, 6), l4_checksum(ip, 6)) {
                        (Some(0), _) if !v6 => out.extend_from_slice(b"[no cksum] "),
                        (_, Some((_, _, true))) => out.extend_from_slice(b"[udp sum ok] "),
                        (_, Some((carried, want, false))) => {
                            let _ =
                                write!(out, "[bad udp cksum 0x{carried:04x} -> 0x{want:04x}!] ");
                        }
                        _ => {}
                    }
                }
                let len = ip.l4_len.saturating_sub(8);
                if !self.quiet && (sp == 53 || dp == 53) && len > 0 {
                    let end = ip.l4_len.min(ip.l4.len()).max(8);
                    super::dns::print(out, &ip.l4[8.min(end)..end], len, self.verbose);
                    return;
                }
                let _ = write!(out, "UDP, length {len}");
            }
            1 => self.icmp(out, ip),
            58 => self.icmp6(out, ip),
            p => {
                ip.addrs(out);
                let _ = write!(out, "ip-proto-{p} {}", ip.l4_len);
            }
        }
    }

    fn tcp(&self, out: &mut Vec<u8>, ip: &Ip) {
        let (s, d) = (ip.src, ip.dst);
        let l4 = ip.l4;
        let (Some(sp), Some(dp), Some(&doff), Some(&flags)) =
            (be16(l4, 0), be16(l4, 2), l4.get(12), l4.get(13))
        else {
            ip.addrs(out);
            out.extend_from_slice(b"[|tcp]");
            return;
        };
        let hl = ((doff >> 4) as usize) * 4;
        let _ = write!(out, "{s}.{sp} > {d}.{dp}: ");
        if self.quiet {
            let _ = write!(out, "tcp {}", ip.l4_len.saturating_sub(hl));
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
        out.push(b']');
        let (Some(mut seq), Some(mut ack), Some(win), Some(urp)) =
            (be32(l4, 4), be32(l4, 8), be16(l4, 14), be16(l4, 18))
        else {
            out.extend_from_slice(b" [|tcp]");
            return;
        };
        if hl < 20 {
            let _ = write!(
                out,
                " tcp {} [bad hdr length {hl} - too short, < 20]",
                ip.l4_len.saturating_sub(hl)
            );
            return;
        }
        // Relative sequence numbers (tcpdump without -S): from the first
        // packet with ACK set of each conversation, or its SYN-ACK.
        let (mut base, mut rev) = (Base::default(), false);
        if !self.absolute_seq && flags & 0x10 != 0 {
            let octets = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            let (sa, da) = (octets(s), octets(d));
            rev = sp > dp || (sp == dp && sa > da);
            let key = if rev {
                Conversation {
                    a: da,
                    b: sa,
                    ports: (dp as u32) << 16 | sp as u32,
                }
            } else {
                Conversation {
                    a: sa,
                    b: da,
                    ports: (sp as u32) << 16 | dp as u32,
                }
            };
            let mut table = self.conversations.borrow_mut();
            match table.get(&key) {
                Some(b) if flags & 0x02 == 0 => {
                    base = *b;
                    if rev {
                        seq = seq.wrapping_sub(b.ack);
                        ack = ack.wrapping_sub(b.seq);
                    } else {
                        seq = seq.wrapping_sub(b.seq);
                        ack = ack.wrapping_sub(b.ack);
                    }
                }
                _ => {
                    if table.len() >= MAX_CONVERSATIONS {
                        table.clear();
                    }
                    base = if rev {
                        Base {
                            seq: ack.wrapping_sub(1),
                            ack: seq,
                        }
                    } else {
                        Base {
                            seq,
                            ack: ack.wrapping_sub(1),
                        }
                    };
                    table.insert(key, base);
                }
            }
        }
        if hl > ip.l4_len {
            let _ = write!(out, " [bad hdr length {hl} - too long, > {}]", ip.l4_len);
            return;
        }
        if self.verbose > 0 && !ip.fragmented {
            if let Some((carried, want, ok)) = l4_checksum(ip, 16) {
                let _ = write!(out, ", cksum 0x{carried:04x}");
                if ok {
                    out.extend_from_slice(b" (correct)");
                } else {
                    let _ = write!(out, " (incorrect -> 0x{want:04x})");
                }
            }
        }
        let len = ip.l4_len - hl;
        if self.verbose > 1 || len > 0 || flags & 0x07 != 0 {
            let _ = write!(out, ", seq {seq}");
            if len > 0 {
                let _ = write!(out, ":{}", seq.wrapping_add(len as u32));
            }
        }
        if flags & 0x10 != 0 {
            let _ = write!(out, ", ack {ack}");
        }
        let _ = write!(out, ", win {win}");
        if flags & 0x20 != 0 {
            let _ = write!(out, ", urg {urp}");
        }
        if hl > 20 {
            let Some(opts) = l4.get(20..hl) else {
                out.extend_from_slice(b", options [|tcp]");
                return;
            };
            out.extend_from_slice(b", options [");
            if !tcp_options(out, opts, base, rev) {
                out.extend_from_slice(b"[bad opt]]");
                return;
            }
            out.push(b']');
        }
        let _ = write!(out, ", length {len}");
    }

    fn icmp(&self, out: &mut Vec<u8>, ip: &Ip) {
        let l4 = ip.l4;
        ip.addrs(out);
        out.extend_from_slice(b"ICMP ");
        let (Some(&t), Some(&code)) = (l4.first(), l4.get(1)) else {
            out.extend_from_slice(b"[|icmp]");
            return;
        };
        // The packet an error quotes: its destination, protocol and port.
        let quoted = l4.get(8..).unwrap_or(&[]);
        let q_ihl = quoted.first().map_or(0, |v| ((v & 0x0f) as usize) * 4);
        let q_dst = be32(quoted, 16).map(Ipv4Addr::from);
        let q_proto = quoted.get(9).copied();
        let q_dport = be16(quoted, q_ihl + 2);
        let is_error = matches!(t, 3 | 4 | 5 | 11 | 12);
        match (t, code) {
            (0 | 8, _) => {
                let (Some(id), Some(sq)) = (be16(l4, 4), be16(l4, 6)) else {
                    out.extend_from_slice(b"[|icmp]");
                    return;
                };
                let what = if t == 8 { "echo request" } else { "echo reply" };
                let _ = write!(out, "{what}, id {id}, seq {sq}");
            }
            (3, _) if q_dst.is_none() => out.extend_from_slice(b"[|icmp]"),
            (3, 3) => {
                let dst = q_dst.expect("checked");
                match (q_proto, q_dport) {
                    (Some(6), Some(p)) => write_ok(write!(out, "{dst} tcp port {p} unreachable")),
                    (Some(17), Some(p)) => write_ok(write!(out, "{dst} udp port {p} unreachable")),
                    (Some(pr), Some(p)) => {
                        write_ok(write!(out, "{dst} protocol {pr} port {p} unreachable"))
                    }
                    _ => out.extend_from_slice(b"[|icmp]"),
                }
            }
            (3, code) => {
                let dst = q_dst.expect("checked");
                let _ = match code {
                    0 => write!(out, "net {dst} unreachable"),
                    1 => write!(out, "host {dst} unreachable"),
                    2 => write!(out, "{dst} protocol {} unreachable", q_proto.unwrap_or(0)),
                    4 => write!(
                        out,
                        "{dst} unreachable - need to frag (mtu {})",
                        be16(l4, 6).unwrap_or(0)
                    ),
                    9 => write!(out, "net {dst} unreachable - admin prohibited"),
                    10 => write!(out, "host {dst} unreachable - admin prohibited"),
                    13 => write!(out, "host {dst} unreachable - admin prohibited filter"),
                    c => write!(out, "{dst} unreachable - #{c}"),
                };
            }
            (11, 0) => out.extend_from_slice(b"time exceeded in-transit"),
            (11, 1) => out.extend_from_slice(b"ip reassembly time exceeded"),
            (11, c) => write_ok(write!(out, "time exceeded-#{c}")),
            (t, _) => write_ok(write!(out, "type-#{t}")),
        }
        let _ = write!(out, ", length {}", ip.l4_len);
        if self.verbose > 0 && !ip.fragmented && l4.len() >= ip.l4_len {
            let (want, ok) = plain_checksum_ok(&l4[..ip.l4_len]);
            if !ok {
                let _ = write!(
                    out,
                    " (wrong icmp cksum {:x} (->{want:x})!)",
                    be16(l4, 2).unwrap_or(0)
                );
            }
        }
        if self.verbose > 0 && is_error && quoted.len() >= 20 && !self.quoting.get() {
            out.extend_from_slice(b"\n\t");
            let at = out.len();
            self.quoting.set(true);
            self.ipv4(out, quoted);
            self.quoting.set(false);
            // With -e tcpdump leaves out the protocol word, here too.
            if self.link_header && out[at..].starts_with(b"IP ") {
                out.drain(at..at + 3);
            }
        }
    }

    fn icmp6(&self, out: &mut Vec<u8>, ip: &Ip) {
        let l4 = ip.l4;
        ip.addrs(out);
        if self.verbose > 0 && !ip.fragmented {
            match l4_checksum(ip, 2) {
                Some((_, _, true)) => out.extend_from_slice(b"[icmp6 sum ok] "),
                Some((carried, want, false)) => {
                    let _ = write!(out, "[bad icmp6 cksum 0x{carried:04x} -> 0x{want:04x}!] ");
                }
                None => {}
            }
        }
        out.extend_from_slice(b"ICMP6, ");
        let (Some(&t), Some(&code)) = (l4.first(), l4.get(1)) else {
            out.extend_from_slice(b"[|icmp6]");
            return;
        };
        // The packet an error quotes: its destination, protocol and port.
        let quoted = l4.get(8..).unwrap_or(&[]);
        let q_dst = quoted
            .get(24..40)
            .and_then(|x| <[u8; 16]>::try_from(x).ok())
            .map(Ipv6Addr::from);
        let q_proto = quoted.get(6).copied();
        let q_dport = be16(quoted, 42);
        let addr_at = |o: usize| {
            l4.get(o..o + 16)
                .and_then(|x| <[u8; 16]>::try_from(x).ok())
                .map(Ipv6Addr::from)
        };
        match (t, code) {
            (128 | 129, _) => {
                let what = if t == 128 {
                    "echo request"
                } else {
                    "echo reply"
                };
                match (be16(l4, 4), be16(l4, 6)) {
                    (Some(id), Some(sq)) => write_ok(write!(out, "{what}, id {id}, seq {sq}")),
                    _ => write_ok(write!(out, "{what}")),
                }
            }
            (1, code) => {
                out.extend_from_slice(b"destination unreachable, ");
                let Some(dst) = q_dst else {
                    out.extend_from_slice(b"[|icmp6]");
                    return;
                };
                let _ = match code {
                    0 => write!(out, "unreachable route {dst}"),
                    1 => write!(out, "unreachable prohibited {dst}"),
                    2 => write!(out, "beyond scope {dst}"),
                    3 => write!(out, "unreachable address {dst}"),
                    4 => match (q_proto, q_dport) {
                        (Some(6), Some(p)) => write!(out, "unreachable port, {dst} tcp port {p}"),
                        (Some(17), Some(p)) => write!(out, "unreachable port, {dst} udp port {p}"),
                        _ => write!(out, "unreachable port, {dst}"),
                    },
                    c => write!(out, "unknown unreach code ({c})"),
                };
            }
            (2, _) => write_ok(write!(
                out,
                "packet too big, mtu {}",
                be32(l4, 4).unwrap_or(0)
            )),
            (3, 0) => match q_dst {
                Some(dst) => write_ok(write!(out, "time exceeded in-transit for {dst}")),
                None => out.extend_from_slice(b"time exceeded in-transit"),
            },
            (3, 1) => out.extend_from_slice(b"ip6 reassembly time exceeded"),
            // Neighbor discovery: with -v the length comes first and the
            // options follow, one per line.
            (133 | 135 | 136, _) => {
                let (what, opts_at) = match t {
                    133 => ("router solicitation", 8),
                    135 => ("neighbor solicitation", 24),
                    _ => ("neighbor advertisement", 24),
                };
                out.extend_from_slice(what.as_bytes());
                if self.verbose > 0 {
                    let _ = write!(out, ", length {}", ip.l4_len);
                }
                if t != 133 {
                    let Some(a) = addr_at(8) else {
                        out.extend_from_slice(b" [|icmp6]");
                        return;
                    };
                    let _ = if t == 135 {
                        write!(out, ", who has {a}")
                    } else {
                        write!(out, ", tgt is {a}")
                    };
                    if t == 136 && self.verbose > 0 {
                        let f = l4.get(4).copied().unwrap_or(0);
                        let names: Vec<&str> =
                            [(0x80, "router"), (0x40, "solicited"), (0x20, "override")]
                                .iter()
                                .filter(|(bit, _)| f & bit != 0)
                                .map(|(_, n)| *n)
                                .collect();
                        let _ = write!(
                            out,
                            ", Flags [{}]",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        );
                    }
                }
                if self.verbose > 0 {
                    let end = ip.l4_len.min(l4.len());
                    self.nd_options(out, l4.get(opts_at..end).unwrap_or(&[]));
                    return;
                }
            }
            (134, _) => out.extend_from_slice(b"router advertisement"),
            (143, _) => {
                let n = be16(l4, 6).unwrap_or(0);
                let _ = write!(out, "multicast listener report v2, {n} group record(s)");
                if self.verbose > 0 {
                    mld2_records(
                        out,
                        l4.get(8..ip.l4_len.min(l4.len())).unwrap_or(&[]),
                        n,
                        self.verbose,
                    );
                }
            }
            (t, _) => write_ok(write!(out, "type-#{t}")),
        }
        if self.verbose == 0 {
            let _ = write!(out, ", length {}", ip.l4_len);
        }
    }
}

impl Printer {
    /// Neighbor discovery options, each on a line of its own (tcpdump -v),
    /// with their bytes in hex under them for -vv and for unknown ones.
    fn nd_options(&self, out: &mut Vec<u8>, mut b: &[u8]) {
        while let (Some(&kind), Some(&units)) = (b.first(), b.get(1)) {
            let len = units as usize * 8;
            if len == 0 || len > b.len() {
                out.extend_from_slice(b"[|icmp6]");
                return;
            }
            let data = &b[2..len];
            let name = match kind {
                1 => "source link-address option",
                2 => "destination link-address option",
                5 => "mtu option",
                _ => "unknown option",
            };
            let _ = write!(out, "\n\t  {name} ({kind}), length {len} ({units}): ");
            let known = match kind {
                1 | 2 => {
                    let mac: Vec<String> = data
                        .iter()
                        .take(6.max(data.len()))
                        .map(|x| format!("{x:02x}"))
                        .collect();
                    out.extend_from_slice(mac.join(":").as_bytes());
                    true
                }
                5 => {
                    let _ = write!(out, " {}", be32(data, 2).unwrap_or(0));
                    true
                }
                _ => false,
            };
            if self.verbose > 1 || !known {
                let indent = if self.verbose > 1 { "\t    " } else { "\t  " };
                let mut hex = Vec::new();
                hex_lines_indented(&mut hex, data, false, indent);
                for line in hex.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                    out.push(b'\n');
                    out.extend_from_slice(line);
                }
            }
            b = &b[len..];
        }
    }
}

/// IPv6 hop-by-hop and destination options (tcpdump -v).
fn ipv6_options(out: &mut Vec<u8>, mut b: &[u8]) {
    while let Some(&kind) = b.first() {
        if kind == 0 {
            out.extend_from_slice(b"(pad1) ");
            b = &b[1..];
            continue;
        }
        let Some(&len) = b.get(1) else {
            out.extend_from_slice(b"[|hbhopt] ");
            return;
        };
        let data = b.get(2..2 + len as usize).unwrap_or(&[]);
        let _ = match kind {
            1 => write!(out, "(padn) "),
            5 => write!(out, "(rtalert: 0x{:04x}) ", be16(data, 0).unwrap_or(0)),
            0xc2 => write!(out, "(jumbo: {}) ", be32(data, 0).unwrap_or(0)),
            k => write!(out, "(opt_type 0x{k:02x}: len={len}) "),
        };
        b = b.get(2 + len as usize..).unwrap_or(&[]);
    }
}

/// MLDv2 report records (tcpdump -v; -vv lists their sources).
fn mld2_records(out: &mut Vec<u8>, mut b: &[u8], n: u16, verbose: u8) {
    for _ in 0..n {
        let (Some(&rtype), Some(&aux), Some(nsrc)) = (b.first(), b.get(1), be16(b, 2)) else {
            out.extend_from_slice(b"[|icmp6]");
            return;
        };
        let Some(group) = b.get(4..20).and_then(|x| <[u8; 16]>::try_from(x).ok()) else {
            out.extend_from_slice(b"[|icmp6]");
            return;
        };
        let kind = match rtype {
            1 => "is_in",
            2 => "is_ex",
            3 => "to_in",
            4 => "to_ex",
            5 => "allow",
            6 => "block",
            _ => "unknown",
        };
        let _ = write!(out, " [gaddr {} {kind}", Ipv6Addr::from(group));
        let srcs = b.get(20..20 + 16 * nsrc as usize).unwrap_or(&[]);
        if verbose > 1 {
            out.extend_from_slice(b" {");
            for s in srcs.chunks_exact(16) {
                let a = <[u8; 16]>::try_from(s).expect("16 bytes");
                let _ = write!(out, " {}", Ipv6Addr::from(a));
            }
            out.extend_from_slice(b" }]");
        } else {
            let _ = write!(out, ", {nsrc} source(s)]");
        }
        b = b
            .get(20 + 16 * nsrc as usize + 4 * aux as usize..)
            .unwrap_or(&[]);
    }
}

/// Discards the result of a `write!` into a `Vec`, which cannot fail.
fn write_ok(_: std::io::Result<()>) {}

/// TCP options as tcpdump prints them; false on a malformed option list
/// (tcpdump's `[bad opt]`).
fn tcp_options(out: &mut Vec<u8>, mut b: &[u8], base: Base, rev: bool) -> bool {
    let mut first = true;
    while let Some((&kind, rest)) = b.split_first() {
        if !first {
            out.push(b',');
        }
        first = false;
        let (len, data) = if kind <= 1 {
            (1, &[][..])
        } else {
            let Some(&len) = rest.first() else {
                return false;
            };
            let len = len as usize;
            if len < 2 || len - 1 > rest.len() {
                return false;
            }
            (len, &rest[1..len - 1])
        };
        let name = match kind {
            0 => "eol",
            1 => "nop",
            2 => "mss",
            3 => "wscale",
            4 => "sackOK",
            5 => "sack",
            6 => "echo",
            7 => "echoreply",
            8 => "TS",
            11 => "cc",
            12 => "ccnew",
            13 => "",
            19 => "md5",
            20 => "scps",
            28 => "uto",
            29 => "tcp-ao",
            30 => "mptcp",
            34 => "tfo",
            254 => "exp",
            _ => "",
        };
        if name.is_empty() {
            let _ = write!(out, "unknown-{kind}");
        } else {
            out.extend_from_slice(name.as_bytes());
        }
        let fixed = |n: usize| data.len() >= n;
        match kind {
            0 | 1 | 4 => {}
            2 if fixed(2) => write_ok(write!(out, " {}", be16(data, 0).unwrap_or(0))),
            3 if fixed(1) => write_ok(write!(out, " {}", data[0])),
            5 => {
                if data.len() % 8 != 0 {
                    out.extend_from_slice(b" invalid sack");
                } else {
                    let _ = write!(out, " {} ", data.len() / 8);
                    for c in data.chunks_exact(8) {
                        let (mut s, mut e) = (be32(c, 0).unwrap_or(0), be32(c, 4).unwrap_or(0));
                        let from = if rev { base.seq } else { base.ack };
                        s = s.wrapping_sub(from);
                        e = e.wrapping_sub(from);
                        let _ = write!(out, "{{{s}:{e}}}");
                    }
                }
            }
            6 | 7 | 11 | 12 | 13 if fixed(4) => {
                write_ok(write!(out, " {}", be32(data, 0).unwrap_or(0)))
            }
            8 if fixed(8) => write_ok(write!(
                out,
                " val {} ecr {}",
                be32(data, 0).unwrap_or(0),
                be32(data, 4).unwrap_or(0)
            )),
            2 | 3 | 6 | 7 | 8 | 11 | 12 | 13 => return false,
            _ => {
                if !data.is_empty() {
                    out.extend_from_slice(b" 0x");
                    for x in data {
                        let _ = write!(out, "{x:02x}");
                    }
                }
            }
        }
        let expected = match kind {
            0 | 1 => 1,
            2 => 4,
            3 => 3,
            4 => 2,
            6 | 7 | 11 | 12 | 13 => 6,
            8 => 10,
            _ => len,
        };
        if expected != len {
            let _ = write!(out, "[len {len}]");
        }
        b = &b[len.min(b.len())..];
        if kind == 0 {
            break;
        }
    }
    true
}
