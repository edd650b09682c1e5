//! ICMP and ICMPv6 as tcpdump 4.99 prints them: echo, errors (with -v the
//! packet an error quotes), neighbor discovery (with -v its options),
//! MLDv2 reports, checksums.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::inet::{l4_checksum, plain_checksum_ok, write_ok, Ip};
use super::{be16, be32, hex_lines_indented, Printer};

impl Printer {
    pub(super) fn icmp(&self, out: &mut Vec<u8>, ip: &Ip) {
        let l4 = ip.l4;
        ip.addrs(out);
        // As tcpdump: the text is made before anything of it is printed,
        // so a field it needs that was not captured leaves ` [|icmp]`
        // alone after the addresses.
        let start = out.len();
        out.extend_from_slice(b"ICMP ");
        let (Some(&t), Some(&code)) = (l4.first(), l4.get(1)) else {
            out.truncate(start);
            out.extend_from_slice(b" [|icmp]");
            return;
        };
        let cut = |out: &mut Vec<u8>| {
            out.truncate(start);
            out.extend_from_slice(b" [|icmp]");
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
                    return cut(out);
                };
                let what = if t == 8 { "echo request" } else { "echo reply" };
                let _ = write!(out, "{what}, id {id}, seq {sq}");
            }
            (3, _) if q_dst.is_none() => return cut(out),
            (3, 4) if be16(l4, 6).is_none() => return cut(out),
            (3, 3) => {
                let dst = q_dst.expect("checked");
                match (q_proto, q_dport) {
                    (Some(6), Some(p)) => write_ok(write!(out, "{dst} tcp port {p} unreachable")),
                    (Some(17), Some(p)) => write_ok(write!(out, "{dst} udp port {p} unreachable")),
                    (Some(pr), Some(p)) => {
                        write_ok(write!(out, "{dst} protocol {pr} port {p} unreachable"))
                    }
                    _ => return cut(out),
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

    pub(super) fn icmp6(&self, out: &mut Vec<u8>, ip: &Ip) {
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
