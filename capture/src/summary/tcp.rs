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
        let (Some(sp), Some(dp)) = (be16(l4, 0), be16(l4, 2)) else {
            // The addresses, even after IPv6 extension headers that
            // printed them, as tcpdump.
            let _ = write!(out, "{s} > {d}: [|tcp]");
            return;
        };
        if ip.addrs_done {
            // After IPv6 extension headers, as tcpdump: the ports alone.
            let _ = write!(out, "{sp} > {dp}: ");
        } else {
            let _ = write!(out, "{s}.{sp} > {d}.{dp}: ");
        }
        // tcpdump reads nothing more (not even with -q) until the whole
        // fixed header was captured.
        let (Some(&doff), Some(&flags), true) = (l4.get(12), l4.get(13), l4.len() >= 20) else {
            out.extend_from_slice(b" [|tcp]");
            return;
        };
        let hl = ((doff >> 4) as usize) * 4;
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
        let (base, rev) = self.relative(ip, (sp, dp), flags, &mut seq, &mut ack);
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
            // What was captured of the options, and how long the header
            // says they are.
            let opts = l4.get(20..hl.min(l4.len())).unwrap_or(&[]);
            out.extend_from_slice(b", options [");
            match tcp_options(out, opts, hl - 20, base, rev) {
                Ok(()) => out.push(b']'),
                Err(OptEnd::Bad) => {
                    out.extend_from_slice(b"[bad opt]]");
                    return;
                }
                // As tcpdump: what could be read, then the mark; `>`
                // closes it when an option's own data was cut after the
                // first option.
                Err(OptEnd::Cut { gt }) => {
                    out.extend_from_slice(if gt { b" [|tcp]>" } else { b" [|tcp]" });
                    return;
                }
            }
        }
        let _ = write!(out, ", length {len}");
    }

    /// Relative sequence numbers (tcpdump without -S): `seq` and `ack`
    /// made relative to the conversation's base; the base, and whether the
    /// packet goes the conversation's reverse way.
    fn relative(
        &self,
        ip: &Ip,
        (sp, dp): (u16, u16),
        flags: u8,
        seq: &mut u32,
        ack: &mut u32,
    ) -> (Base, bool) {
        // Relative sequence numbers (tcpdump without -S): from the first
        // packet with ACK set of each conversation, or its SYN-ACK.
        let (mut base, mut rev) = (Base::default(), false);
        let (s, d) = (ip.src, ip.dst);
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
                        *seq = seq.wrapping_sub(b.ack);
                        *ack = ack.wrapping_sub(b.seq);
                    } else {
                        *seq = seq.wrapping_sub(b.seq);
                        *ack = ack.wrapping_sub(b.ack);
                    }
                }
                _ => {
                    if table.len() >= MAX_CONVERSATIONS {
                        table.clear();
                    }
                    base = if rev {
                        Base {
                            seq: ack.wrapping_sub(1),
                            ack: *seq,
                        }
                    } else {
                        Base {
                            seq: *seq,
                            ack: ack.wrapping_sub(1),
                        }
                    };
                    table.insert(key, base);
                }
            }
        }
        (base, rev)
    }
}

/// Why an option list ended before its end.
enum OptEnd {
    /// Malformed (tcpdump's `[bad opt]`).
    Bad,
    /// Cut by the snap length: in an option's kind or length (`gt` false)
    /// or in its data after the first option (`gt` true).
    Cut { gt: bool },
}

/// TCP options as tcpdump prints them: `cap` is what was captured of the
/// `hlen` bytes of options the header gives. A cut list prints every
/// option that could be read and the name of the one it cuts.
fn tcp_options(
    out: &mut Vec<u8>,
    cap: &[u8],
    hlen: usize,
    base: Base,
    rev: bool,
) -> Result<(), OptEnd> {
    let mut first = true;
    let mut i = 0;
    while i < hlen {
        if !first {
            out.push(b',');
        }
        let kind = *cap.get(i).ok_or(OptEnd::Cut { gt: false })?;
        let len = if kind <= 1 {
            1
        } else {
            let len = *cap.get(i + 1).ok_or(OptEnd::Cut { gt: false })? as usize;
            if len < 2 || len > hlen - i {
                return Err(OptEnd::Bad);
            }
            len
        };
        // The option's data, as far as it was captured.
        let data = cap
            .get(i + 2.min(len)..(i + len).min(cap.len()))
            .unwrap_or(&[]);
        let whole = len.saturating_sub(2);
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
        let cut = OptEnd::Cut { gt: !first };
        // tcpdump's check of an option's fixed data: too long for the
        // option is malformed, not captured is cut.
        let need = |n: usize| -> Result<(), OptEnd> {
            if whole < n {
                Err(OptEnd::Bad)
            } else if data.len() < n {
                Err(OptEnd::Cut { gt: !first })
            } else {
                Ok(())
            }
        };
        match kind {
            0 | 1 | 4 => {}
            2 => {
                need(2)?;
                write_ok(write!(out, " {}", be16(data, 0).unwrap_or(0)))
            }
            3 => {
                need(1)?;
                write_ok(write!(out, " {}", data[0]))
            }
            5 => {
                if whole % 8 != 0 {
                    out.extend_from_slice(b" invalid sack");
                } else {
                    let _ = write!(out, " {} ", whole / 8);
                    for k in 0..whole / 8 {
                        let (Some(mut s), Some(mut e)) = (be32(data, k * 8), be32(data, k * 8 + 4))
                        else {
                            return Err(cut);
                        };
                        let from = if rev { base.seq } else { base.ack };
                        s = s.wrapping_sub(from);
                        e = e.wrapping_sub(from);
                        let _ = write!(out, "{{{s}:{e}}}");
                    }
                }
            }
            6 | 7 | 11 | 12 | 13 => {
                need(4)?;
                write_ok(write!(out, " {}", be32(data, 0).unwrap_or(0)))
            }
            8 => {
                need(8)?;
                write_ok(write!(
                    out,
                    " val {} ecr {}",
                    be32(data, 0).unwrap_or(0),
                    be32(data, 4).unwrap_or(0)
                ))
            }
            _ => {
                if whole > 0 {
                    out.extend_from_slice(b" 0x");
                    for x in data {
                        let _ = write!(out, "{x:02x}");
                    }
                    if data.len() < whole {
                        return Err(cut);
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
        i += len;
        first = false;
        if kind == 0 {
            break;
        }
    }
    Ok(())
}
