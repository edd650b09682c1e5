//! DNS over UDP port 53, as tcpdump 4.99 prints it: the ID and flags, the
//! question, the section counts and the answers (with `-v` their owner
//! names, with `-vv` the question of a response and the authority and
//! additional sections). Written from tcpdump's output on messages the
//! tests make, not from its code. A message that cannot be read ends the
//! line with `[|domain]`.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::be16;

const RCODES: [&str; 16] = [
    "",
    " FormErr",
    " ServFail",
    " NXDomain",
    " NotImp",
    " Refused",
    " YXDomain",
    " YXRRSet",
    " NXRRSet",
    " NotAuth",
    " NotZone",
    " Resp11",
    " Resp12",
    " Resp13",
    " Resp14",
    " Resp15",
];

const OPCODES: [&str; 16] = [
    "", " inv_q", " stat", " op3", " notify", " update", " op6", " op7", " op8", " op9", " op10",
    " op11", " op12", " op13", " op14", " op15",
];

fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        13 => "HINFO".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        35 => "NAPTR".into(),
        39 => "DNAME".into(),
        41 => "OPT".into(),
        43 => "DS".into(),
        46 => "RRSIG".into(),
        47 => "NSEC".into(),
        48 => "DNSKEY".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        99 => "SPF".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        257 => "CAA".into(),
        t => format!("Type{t}"),
    }
}

/// A domain name at `at` of `msg` (compression pointers followed, at most
/// 64 of them, so a loop ends): the name printed, and where the name ends
/// in place.
fn name(msg: &[u8], mut at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut end = None;
    let mut jumps = 0;
    let mut any = false;
    loop {
        let len = *msg.get(at)? as usize;
        match len & 0xc0 {
            0 if len == 0 => {
                if !any {
                    out.push(b'.');
                }
                return Some(end.unwrap_or(at + 1));
            }
            0 => {
                for &c in msg.get(at + 1..at + 1 + len)? {
                    // As the line printer does: nothing from the wire reaches
                    // the terminal as a control character.
                    if c.is_ascii_graphic() {
                        out.push(c);
                    } else {
                        let _ = write!(out, "\\{c:03}");
                    }
                }
                out.push(b'.');
                any = true;
                at += 1 + len;
            }
            0xc0 => {
                jumps += 1;
                if jumps > 64 {
                    return None;
                }
                let ptr = (be16(msg, at)? & 0x3fff) as usize;
                end.get_or_insert(at + 2);
                at = ptr;
            }
            _ => return None,
        }
    }
}

/// One question, ` TYPE? NAME`; where it ends.
fn question(msg: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut n = Vec::new();
    let after = name(msg, at, &mut n)?;
    let t = be16(msg, after)?;
    be16(msg, after + 2)?;
    let _ = write!(out, " {}? ", type_name(t));
    out.extend_from_slice(&n);
    Some(after + 4)
}

/// One resource record, ` [OWNER ]TYPE DATA`; where it ends.
fn record(msg: &[u8], at: usize, out: &mut Vec<u8>, verbose: u8) -> Option<usize> {
    let mut owner = Vec::new();
    let after = name(msg, at, &mut owner)?;
    let t = be16(msg, after)?;
    let class = be16(msg, after + 2)?;
    let rdlen = be16(msg, after + 8)? as usize;
    let data_at = after + 10;
    let data = msg.get(data_at..data_at + rdlen)?;
    out.push(b' ');
    if verbose > 0 {
        out.extend_from_slice(&owner);
        out.push(b' ');
    }
    out.extend_from_slice(type_name(t).as_bytes());
    match t {
        1 if rdlen == 4 => {
            let _ = write!(
                out,
                " {}",
                Ipv4Addr::new(data[0], data[1], data[2], data[3])
            );
        }
        28 if rdlen == 16 => {
            let a = <[u8; 16]>::try_from(data).ok()?;
            let _ = write!(out, " {}", Ipv6Addr::from(a));
        }
        2 | 5 | 12 | 39 => {
            out.push(b' ');
            name(msg, data_at, out)?;
        }
        15 => {
            out.push(b' ');
            name(msg, data_at + 2, out)?;
            let _ = write!(out, " {}", be16(data, 0)?);
        }
        16 => {
            let mut d = data;
            while let Some((&l, rest)) = d.split_first() {
                let s = rest.get(..l as usize)?;
                out.extend_from_slice(b" \"");
                for &c in s {
                    if (0x20..0x7f).contains(&c) {
                        out.push(c);
                    } else {
                        let _ = write!(out, "\\{c:03}");
                    }
                }
                out.push(b'"');
                d = &rest[l as usize..];
            }
        }
        6 => {
            out.push(b' ');
            let a = name(msg, data_at, out)?;
            out.push(b' ');
            let b = name(msg, a, out)?;
            for i in 0..5 {
                let _ = write!(out, " {}", super::be32(msg, b + 4 * i)?);
            }
        }
        33 => {
            out.push(b' ');
            name(msg, data_at + 6, out)?;
            let _ = write!(
                out,
                ":{} {} {}",
                be16(data, 4)?,
                be16(data, 0)?,
                be16(data, 2)?
            );
        }
        41 => {
            // EDNS: the class is the UDP payload size.
            let _ = write!(out, " UDPsize={class}");
            let ttl = super::be32(msg, after + 4)?;
            if ttl & 0x8000 != 0 {
                out.extend_from_slice(b" DO");
            }
        }
        _ => {}
    }
    Some(data_at + rdlen)
}

/// Appends tcpdump's text for the DNS message `msg` (a UDP payload of
/// `len` bytes): all of it or, where it cannot be read, `[|domain]`.
pub(super) fn print(out: &mut Vec<u8>, msg: &[u8], len: usize, verbose: u8) {
    if print_message(out, msg, verbose).is_none() {
        out.extend_from_slice(b" [|domain]");
        return;
    }
    let _ = write!(out, " ({len})");
}

fn print_message(out: &mut Vec<u8>, msg: &[u8], verbose: u8) -> Option<()> {
    let (id, flags) = (be16(msg, 0)?, be16(msg, 2)?);
    let (qd, an, ns, ar) = (be16(msg, 4)?, be16(msg, 6)?, be16(msg, 8)?, be16(msg, 10)?);
    let opcode = OPCODES[((flags >> 11) & 0xf) as usize];
    let mut at = 12;
    if flags & 0x8000 != 0 {
        let _ = write!(
            out,
            "{id}{opcode}{}{}{}{}",
            RCODES[(flags & 0xf) as usize],
            if flags & 0x0400 != 0 { "*" } else { "" },
            if flags & 0x0080 != 0 { "" } else { "-" },
            if flags & 0x0200 != 0 { "|" } else { "" },
        );
        if verbose > 1 && qd > 0 {
            out.extend_from_slice(b" q:");
        }
        for _ in 0..qd {
            let mut q = Vec::new();
            at = question(msg, at, &mut q)?;
            if verbose > 1 {
                out.extend_from_slice(&q);
            }
        }
        let _ = write!(out, " {an}/{ns}/{ar}");
        at = records(msg, at, an, out, verbose, "")?;
        if verbose > 1 {
            at = records(msg, at, ns, out, verbose, " ns:")?;
            records(msg, at, ar, out, verbose, " ar:")?;
        }
    } else {
        let _ = write!(
            out,
            "{id}{opcode}{}{}",
            if flags & 0x0100 != 0 { "+" } else { "" },
            if flags & 0x0010 != 0 { "%" } else { "" },
        );
        if flags & 0x6cf != 0 {
            let _ = write!(out, " [b2&3=0x{flags:x}]");
        }
        if opcode == " inv_q" {
            if qd > 0 {
                let _ = write!(out, " [{qd}q]");
            }
            if an != 1 {
                let _ = write!(out, " [{an}a]");
            }
        } else {
            if an > 0 {
                let _ = write!(out, " [{an}a]");
            }
            if qd != 1 {
                let _ = write!(out, " [{qd}q]");
            }
        }
        if ns > 0 {
            let _ = write!(out, " [{ns}n]");
        }
        if ar > 0 {
            let _ = write!(out, " [{ar}au]");
        }
        for _ in 0..qd {
            at = question(msg, at, out)?;
        }
        if verbose > 1 {
            at = records(msg, at, an, out, verbose, "")?;
            at = records(msg, at, ns, out, verbose, " ns:")?;
            records(msg, at, ar, out, verbose, " ar:")?;
        }
    }
    Some(())
}

/// `n` records from `at`, after `head` (when there are any), separated by
/// commas; where they end.
fn records(
    msg: &[u8],
    mut at: usize,
    n: u16,
    out: &mut Vec<u8>,
    verbose: u8,
    head: &str,
) -> Option<usize> {
    if n > 0 {
        out.extend_from_slice(head.as_bytes());
    }
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        at = record(msg, at, out, verbose)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pointer_loop_or_a_cut_message_ends_with_domain_truncated() {
        // One question whose name points at itself.
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut out = Vec::new();
        print(&mut out, &m, m.len(), 2);
        assert_eq!(String::from_utf8(out).unwrap(), "1+ [|domain]");
        for cut in 0..m.len() {
            let mut out = Vec::new();
            print(&mut out, &m[..cut], cut, 0);
            assert!(out.ends_with(b"[|domain]"), "{cut}");
        }
    }

    #[test]
    fn control_bytes_in_names_are_escaped() {
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[3, b'a', 0x1b, b'b', 0, 0, 1, 0, 1]);
        let mut out = Vec::new();
        print(&mut out, &m, m.len(), 0);
        assert_eq!(String::from_utf8(out).unwrap(), "1+ A? a\\027b. (21)");
    }
}
