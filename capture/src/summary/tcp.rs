//! TCP as tcpdump 4.99 prints it: flags, relative (or with -S absolute)
//! sequence numbers, ack, window, urgent pointer, options, and with -v the
//! checksum.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;

use super::inet::{l4_checksum, write_ok, Ip};
use super::{be16, be32, Printer};

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

impl Printer {
    pub(super) fn tcp(&self, out: &mut Vec<u8>, ip: &Ip) {
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
}

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
