//! IPv4 and IPv6 (with extension headers) and UDP as tcpdump 4.99 prints
//! them, with `-v` and `-vv`: the IP header in parentheses, checksums; TCP
//! is in [`super::tcp`], ICMP and ICMPv6 in [`super::icmp`], DNS in
//! [`super::dns`].
//! Written from tcpdump's output on the same packets (the tests compare
//! whole lines with tcpdump's), not from its code.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, be32, Printer};

/// The addresses and payload of one IP packet, for the layer above.
pub(super) struct Ip<'a> {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) proto: u8,
    /// What was captured of the payload.
    pub(super) l4: &'a [u8],
    /// The payload's length by the IP header.
    pub(super) l4_len: usize,
    /// A fragment other than the first: nothing above IP to read.
    pub(super) later_fragment: bool,
    /// A first fragment: checksums cannot be checked.
    pub(super) fragmented: bool,
    /// The IP layer printed `SRC > DST: ` already (IPv6 before extension
    /// headers, as tcpdump does for protocols without ports).
    pub(super) addrs_done: bool,
}

impl Ip<'_> {
    pub(super) fn addrs(&self, out: &mut Vec<u8>) {
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
pub(super) fn l4_checksum(ip: &Ip, at: usize) -> Option<(u16, u16, bool)> {
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
pub(super) fn plain_checksum_ok(b: &[u8]) -> (u16, bool) {
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
                    // As tcpdump: nothing of the header is printed unless
                    // all of it was captured.
                    let hl = payload.get(1).map(|&u| (u as usize + 1) * 8);
                    let (Some(&nh), Some(hdr)) =
                        (payload.first(), hl.and_then(|hl| payload.get(..hl)))
                    else {
                        let _ = write!(out, " [|{}]", if next == 0 { "hbhopt" } else { "dstopt" });
                        return;
                    };
                    let hbh = next == 0;
                    out.extend_from_slice(if hbh { b"HBH " } else { b"DSTOPT " });
                    // tcpdump checks hop-by-hop options always, and
                    // destination options only with -v.
                    let v = self.verbose > 0;
                    if (hbh || v) && !ipv6_options(out, &hdr[2..], v, hbh.then_some(plen)) {
                        let _ = write!(out, " [|{}]", if hbh { "hbhopt" } else { "dstopt" });
                        return;
                    }
                    next = nh;
                    payload = &payload[hdr.len()..];
                    len = len.saturating_sub(hdr.len());
                }
                44 => {
                    // tcpdump reads the offset (and with -v the id) only.
                    let id = be32(payload, 4);
                    let (Some(&nh), Some(offlg), true) = (
                        payload.first(),
                        be16(payload, 2),
                        self.verbose == 0 || id.is_some(),
                    ) else {
                        out.extend_from_slice(b" [|frag6]");
                        return;
                    };
                    let off = offlg & 0xfff8;
                    len = len.saturating_sub(8);
                    if let (true, Some(id)) = (self.verbose > 0, id) {
                        let _ = write!(out, "frag (0x{id:08x}:{off}|{len})");
                    } else {
                        let _ = write!(out, "frag ({off}|{len})");
                    }
                    if off != 0 {
                        return;
                    }
                    out.push(b' ');
                    // As tcpdump: nothing more unless something after the
                    // fragment header was captured.
                    let Some(rest) = payload.get(8..).filter(|r| !r.is_empty()) else {
                        return;
                    };
                    fragmented = true;
                    next = nh;
                    payload = rest;
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
                // A cut header, as tcpdump: the addresses, the ports if
                // they were captured, then ` [|udp]`.
                let (Some(sp), Some(dp)) = (be16(ip.l4, 0), be16(ip.l4, 2)) else {
                    ip.addrs(out);
                    out.extend_from_slice(b" [|udp]");
                    return;
                };
                if ip.addrs_done {
                    // After IPv6 extension headers tcpdump prints the
                    // ports alone: the addresses came before the headers.
                    let _ = write!(out, "{sp} > {dp}: ");
                } else {
                    let _ = write!(out, "{s}.{sp} > {d}.{dp}: ");
                }
                if ip.l4.len() < 8 {
                    out.extend_from_slice(b" [|udp]");
                    return;
                }
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
                    let end = ip.l4_len.min(ip.l4.len());
                    let msg = ip.l4.get(8..end).unwrap_or(&[]);
                    super::dns::print(out, msg, len, self.verbose);
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
}

/// IPv6 hop-by-hop or destination options as tcpdump 4.99 checks and
/// prints them: with `verbose`, each option in parentheses and a space
/// after the last. `plen` is the IPv6 payload length for hop-by-hop
/// options (`None` for destination options, where a jumbo payload option
/// is not valid). Returns false for an option that overruns the header or
/// has a wrong length for its type, after printing what tcpdump prints of
/// it whatever the verbosity: the caller then ends the line with
/// `[|hbhopt]` or `[|dstopt]`.
fn ipv6_options(out: &mut Vec<u8>, b: &[u8], verbose: bool, plen: Option<u16>) -> bool {
    if b.is_empty() {
        return true;
    }
    let mut i = 0;
    let mut jumbo_seen = false;
    while let Some(&kind) = b.get(i) {
        let rest = &b[i..];
        let olen = match (kind, rest.get(1)) {
            (0, _) => 1,
            (_, Some(&l)) => l as usize + 2,
            (_, None) => return false,
        };
        if olen > rest.len() {
            return false;
        }
        match kind {
            0 if verbose => out.extend_from_slice(b"(pad1)"),
            1 if verbose => out.extend_from_slice(b"(padn)"),
            0 | 1 => {}
            5 | 0xc2 => {
                let (name, want) = if kind == 5 {
                    ("rtalert", 4)
                } else {
                    ("jumbo", 6)
                };
                if rest.len() < want {
                    let _ = write!(out, "({name}: trunc)");
                    return false;
                }
                if olen != want {
                    let _ = write!(out, "({name}: invalid len {})", olen - 2);
                    return false;
                }
                if !verbose {
                } else if kind == 5 {
                    let _ = write!(out, "(rtalert: 0x{:04x}) ", be16(rest, 2).unwrap_or(0));
                } else {
                    let n = be32(rest, 2).unwrap_or(0);
                    let why = match plen {
                        _ if jumbo_seen => " - already seen",
                        None => " - not a hop-by-hop option",
                        Some(p) if p != 0 => " - payload len != 0",
                        Some(_) if n < 65536 => " - < 65536",
                        Some(_) => "",
                    };
                    let _ = write!(out, "(jumbo: {n}{why}) ");
                }
                jumbo_seen |= kind == 0xc2;
            }
            0xc9 => {
                if rest.len() < 18 {
                    out.extend_from_slice(b"(homeaddr: trunc)");
                    return false;
                }
                if olen < 18 {
                    let _ = write!(out, "(homeaddr: invalid len {})", olen - 2);
                    return false;
                }
                if verbose {
                    let a: [u8; 16] = rest[2..18].try_into().unwrap_or([0; 16]);
                    let _ = write!(out, "(homeaddr: {}", Ipv6Addr::from(a));
                    if olen > 18 && !ipv6_sub_options(out, &rest[18..olen]) {
                        return false;
                    }
                    out.push(b')');
                }
            }
            k if verbose => {
                let _ = write!(out, "(opt_type 0x{k:02x}: len={})", olen - 2);
            }
            _ => {}
        }
        i += olen;
    }
    if verbose {
        out.push(b' ');
    }
    true
}

/// The sub-options of a home address option, as tcpdump -v prints them;
/// false when one overruns the option.
fn ipv6_sub_options(out: &mut Vec<u8>, b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&kind) = b.get(i) {
        let olen = match (kind, b.get(i + 1)) {
            (0, _) => 1,
            (_, Some(&l)) => l as usize + 2,
            (_, None) => return false,
        };
        if i + olen > b.len() {
            return false;
        }
        let _ = match kind {
            0 => write!(out, ", pad1"),
            1 => write!(out, ", padn"),
            k => write!(out, ", sopt_type 0x{k:02x}: len={}", olen - 2),
        };
        i += olen;
    }
    true
}

/// Discards the result of a `write!` into a `Vec`, which cannot fail.
pub(super) fn write_ok(_: std::io::Result<()>) {}
