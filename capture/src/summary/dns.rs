//! DNS over UDP port 53, as tcpdump 4.99 prints it: the ID and flags, the
//! question, the section counts and the answers (with `-v` their owner
//! names, with `-vv` the question of a response and the authority and
//! additional sections). Written from tcpdump's output on messages the
//! tests make; where a cut message stops being read follows tcpdump
//! 4.99.3's print-domain.c as read (no code taken from it). A message that
//! cannot be read ends the line with `[|domain]`.

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

fn class_name(c: u16) -> String {
    match c {
        3 => "CHAOS".into(),
        4 => "HS".into(),
        255 => "ANY".into(),
        c => format!("(Class {c})"),
    }
}

/// Why a message's text ends early: `[|domain]` follows.
struct Cut;

/// The length of the label whose first byte is `b` (a pointer's first
/// byte counts as its length, as tcpdump counts it); an extended or
/// reserved label type ends the name.
fn label_len(b: u8) -> Result<usize, Cut> {
    match b & 0xc0 {
        0x00 | 0xc0 => Ok(b as usize),
        _ => Err(Cut),
    }
}

/// Prints the domain name at `at` of the captured `msg` as tcpdump 4.99
/// does, as much as was captured (a cut label prints its captured bytes,
/// then the name ends in [`Cut`]); a compression pointer must point back
/// in the message, so a loop ends. Returns where the name ends in place,
/// which may be past what was captured.
fn fqdn(msg: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, Cut> {
    const MAX_NAME: usize = 255;
    let mut i = *msg.get(at).ok_or(Cut)?;
    let mut l = label_len(i)?;
    let mut max_offset = at;
    let mut cp = at + 1;
    let mut rp = (i & 0xc0 != 0xc0).then_some(cp + l);
    let mut pointed = false;
    let mut chars = 0;
    if i == 0 {
        out.push(b'.');
        return rp.ok_or(Cut);
    }
    while i != 0 && cp < msg.len() {
        if i & 0xc0 == 0xc0 {
            if !pointed {
                rp = Some(cp + 1);
                pointed = true;
            }
            let offset = ((i as usize) << 8 | *msg.get(cp).ok_or(Cut)? as usize) & 0x3fff;
            if offset >= max_offset {
                out.extend_from_slice(b"<BAD PTR>");
                return Err(Cut);
            }
            max_offset = offset;
            cp = offset;
            i = *msg.get(cp).ok_or(Cut)?;
            l = label_len(i)?;
            cp += 1;
            continue;
        }
        let shown = l.min(MAX_NAME.saturating_sub(chars));
        let label = &msg[cp.min(msg.len())..(cp + shown).min(msg.len())];
        for &c in label {
            // As the line printer does: nothing from the wire reaches the
            // terminal as a control character.
            if c.is_ascii_graphic() {
                out.push(c);
            } else {
                let _ = write!(out, "\\{c:03}");
            }
        }
        if label.len() < shown {
            return Err(Cut);
        }
        chars += l;
        cp += l;
        if chars <= MAX_NAME {
            out.push(b'.');
        }
        chars += 1;
        i = *msg.get(cp).ok_or(Cut)?;
        l = label_len(i)?;
        cp += 1;
        if let (false, Some(r)) = (pointed, rp.as_mut()) {
            *r += l + 1;
        }
    }
    if chars > MAX_NAME {
        out.extend_from_slice(b"<DOMAIN NAME TOO LONG>");
    }
    rp.ok_or(Cut)
}

/// Where the name at `at` ends, without printing it; `None` when that
/// cannot be read.
fn skip_name(msg: &[u8], at: usize) -> Option<usize> {
    let mut cp = at;
    loop {
        let b = *msg.get(cp)?;
        cp += 1;
        match b & 0xc0 {
            _ if b == 0 => return Some(cp),
            0xc0 => return Some(cp + 1),
            0x00 => cp += b as usize,
            _ => return None,
        }
    }
}

/// One question, ` TYPE[ CLASS]? NAME`; where it ends.
fn question(msg: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, Cut> {
    let after = skip_name(msg, at).ok_or(Cut)?;
    let (Some(t), Some(class)) = (be16(msg, after), be16(msg, after + 2)) else {
        return Err(Cut);
    };
    let _ = write!(out, " {}", type_name(t));
    if class != 1 {
        let _ = write!(out, " {}", class_name(class));
    }
    out.extend_from_slice(b"? ");
    fqdn(msg, at, out)?;
    Ok(after + 4)
}

/// One resource record, ` [OWNER ]TYPE DATA`, as tcpdump reads it:
/// where it ends, or the end of `msg` when its owner (without -v) or fixed
/// fields were not captured (tcpdump then ends the section quietly).
fn record(msg: &[u8], at: usize, out: &mut Vec<u8>, verbose: u8) -> Result<usize, Cut> {
    let after = if verbose > 0 {
        out.push(b' ');
        Some(fqdn(msg, at, out)?)
    } else {
        skip_name(msg, at)
    };
    let Some(after) = after.filter(|a| msg.len() >= a + 10) else {
        return Ok(msg.len());
    };
    let (t, class) = (
        be16(msg, after).ok_or(Cut)?,
        be16(msg, after + 2).ok_or(Cut)?,
    );
    let rdlen = be16(msg, after + 8).ok_or(Cut)? as usize;
    if class != 1 && t != 41 {
        let _ = write!(out, " {}", class_name(class));
    }
    let data_at = after + 10;
    let _ = write!(out, " {}", type_name(t));
    // As tcpdump: the data must have been captured whole.
    let data = msg.get(data_at..data_at + rdlen).ok_or(Cut)?;
    rdata(msg, t, class, after, data_at, data, out).ok_or(Cut)?;
    Ok(data_at + rdlen)
}

/// The data of a record of type `t` at `data_at` (the record's fixed fields
/// at `after`), captured whole in `data`.
fn rdata(
    msg: &[u8],
    t: u16,
    class: u16,
    after: usize,
    data_at: usize,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Option<()> {
    let rdlen = data.len();
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
            fqdn(msg, data_at, out).ok()?;
        }
        15 => {
            out.push(b' ');
            fqdn(msg, data_at + 2, out).ok()?;
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
            let a = fqdn(msg, data_at, out).ok()?;
            out.push(b' ');
            let b = fqdn(msg, a, out).ok()?;
            for i in 0..5 {
                let _ = write!(out, " {}", super::be32(msg, b + 4 * i)?);
            }
        }
        33 => {
            out.push(b' ');
            fqdn(msg, data_at + 6, out).ok()?;
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
    Some(())
}

/// Appends tcpdump's text for the DNS message `msg` (a UDP payload of
/// `len` bytes, as much of it as was captured): all of it or, where tcpdump
/// stops reading, `[|domain]`.
pub(super) fn print(out: &mut Vec<u8>, msg: &[u8], len: usize, verbose: u8) {
    if print_message(out, msg, verbose).is_err() {
        out.extend_from_slice(b" [|domain]");
        return;
    }
    let _ = write!(out, " ({len})");
}

fn print_message(out: &mut Vec<u8>, msg: &[u8], verbose: u8) -> Result<(), Cut> {
    let field = |o| be16(msg, o).ok_or(Cut);
    let (id, flags) = (field(0)?, field(2)?);
    let (qd, an, ns, ar) = (field(4)?, field(6)?, field(8)?, field(10)?);
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
        if qd != 1 {
            let _ = write!(out, " [{qd}q]");
        }
        // As tcpdump: without -vv a question's name is skipped, and its
        // type and class are not read.
        for i in 0..qd {
            if i > 0 {
                out.push(b',');
            }
            at = if verbose > 1 {
                out.extend_from_slice(b" q:");
                question(msg, at, out)?
            } else {
                skip_name(msg, at).ok_or(Cut)? + 4
            };
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
        let mut left = qd;
        while left > 0 && (left == qd || at < msg.len()) {
            at = question(msg, at, out)?;
            left -= 1;
        }
        if left > 0 {
            return Err(Cut);
        }
        if verbose > 1 {
            at = records(msg, at, an, out, verbose, "")?;
            at = records(msg, at, ns, out, verbose, " ns:")?;
            records(msg, at, ar, out, verbose, " ar:")?;
        }
    }
    Ok(())
}

/// `n` records from `at`, after `head`, separated by commas, as tcpdump
/// reads them: the first always, the others while something is left of
/// what was captured; records that were not all read end the line with
/// [`Cut`]. Where they end.
fn records(
    msg: &[u8],
    mut at: usize,
    n: u16,
    out: &mut Vec<u8>,
    verbose: u8,
    head: &str,
) -> Result<usize, Cut> {
    // The authority and additional sections start only on what is left.
    if n == 0 || (!head.is_empty() && at >= msg.len()) {
        return if n == 0 { Ok(at) } else { Err(Cut) };
    }
    out.extend_from_slice(head.as_bytes());
    let mut left = n;
    while left > 0 && (left == n || at < msg.len()) {
        if left < n {
            out.push(b',');
        }
        at = record(msg, at, out, verbose)?;
        left -= 1;
    }
    if left > 0 {
        return Err(Cut);
    }
    Ok(at)
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
        // As tcpdump 4.99.3: a pointer must point back.
        assert_eq!(String::from_utf8(out).unwrap(), "1+ A? <BAD PTR> [|domain]");
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
