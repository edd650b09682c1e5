//! The properties the fuzz targets (`fuzz/`) check, shared with the stable
//! smoke tests below so that every `cargo test` exercises them too.
//!
//! Each function takes arbitrary bytes and panics only when a property
//! fails: no input may crash the filter path, the one-line printer or the
//! encoders, the printer never emits a control byte but its final newline,
//! and every record is as long as it says.

use crate::filter;
use crate::format::{self, Packet};
use crate::summary::Printer;

fn packet(data: &[u8]) -> Packet<'_> {
    let (head, body) = data.split_at(data.len().min(9));
    let mut ts = [0u8; 8];
    ts[..head.len().min(8)].copy_from_slice(&head[..head.len().min(8)]);
    Packet {
        ts_ns: u64::from_le_bytes(ts),
        ifindex: 2,
        hatype: 1,
        pkttype: head.get(8).copied().unwrap_or(0) % 8,
        data: body,
        orig_len: body.len() as u32 + (head.first().copied().unwrap_or(0) as u32),
    }
}

/// The filter path: a tcpdump expression (the bytes before the first NUL)
/// compiled by libpcap, patched, and run over a packet (the rest).
pub fn filter(data: &[u8]) {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let expr = String::from_utf8_lossy(&data[..cut.min(256)]);
    let pkt = data.get(cut + 1..).unwrap_or(&[]);
    const SNAP: u32 = 262_144;
    if let Ok(Some(prog)) = filter::compile(&expr, filter::LINKTYPE_ETHERNET, SNAP) {
        if let Some(n) = filter::accepts(&prog, pkt) {
            assert!(n <= SNAP, "{expr:?} accepted {n} bytes");
        }
    }
}

/// The one-line printer over hostile packet contents and interface names.
pub fn summary(data: &[u8]) {
    let n = data.first().copied().unwrap_or(0) as usize % 24;
    let name_bytes = data.get(1..1 + n).unwrap_or(&[]);
    let name = String::from_utf8_lossy(name_bytes);
    let p = packet(data.get(1 + n..).unwrap_or(&[]));
    let mut out = Vec::new();
    Printer::new(false).line(&mut out, &name, &p);
    Printer::new(true).line(&mut out, &name, &p);
    assert!(out.ends_with(b"\n"));
    let text = String::from_utf8(out).expect("the printer writes UTF-8");
    for line in text.lines() {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "a control character reached the terminal: {line:?}"
        );
    }
    assert_eq!(
        text.matches('\n').count(),
        2,
        "one line per packet: {text:?}"
    );
    // -v, -vv, -vvv, with -e and -S: more lines per packet (an ICMP error's
    // quoted packet, neighbor discovery options), tabs, never a control
    // character from the packet.
    let mut out = Vec::new();
    for (v, abs) in [(1, false), (2, true), (3, false)] {
        Printer::new(false)
            .with_verbosity(v, abs)
            .with_link_header(v == 2)
            .line(&mut out, &name, &p);
    }
    assert!(out.ends_with(b"\n"));
    let text = String::from_utf8(out).expect("the printer writes UTF-8");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "a control character reached the terminal: {text:?}"
    );
}

/// The pcapng and pcap encoders: every record's lengths agree with its
/// bytes.
pub fn records(data: &[u8]) {
    let p = packet(data);
    let mut b = Vec::new();
    format::pcapng_epb(&mut b, 0, &p);
    let u32at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(b.len() % 4, 0);
    assert_eq!(u32at(&b, 0), 6);
    assert_eq!(u32at(&b, 4) as usize, b.len());
    assert_eq!(u32at(&b, b.len() - 4) as usize, b.len());
    assert_eq!(u32at(&b, 20) as usize, p.data.len());
    for sll2 in [false, true] {
        let mut r = Vec::new();
        format::pcap_record(&mut r, &p, sll2, format::Precision::Nano);
        let incl = u32at(&r, 8) as usize;
        assert_eq!(incl, r.len() - 16, "sll2={sll2}");
        assert!(u32at(&r, 12) as usize >= incl.min(20) || !sll2);
        if sll2 {
            assert!(incl >= 20, "an SLL2 record holds its 20-byte header");
        }
    }
}

/// The file reader (`capture -r`) over arbitrary bytes: it never panics,
/// never hands out a record longer than the file, and every record it hands
/// out prints as one line, whatever its link type claims.
pub fn read(data: &[u8]) {
    let Ok(mut r) = crate::read::Reader::new(data) else {
        return;
    };
    thread_local! {
        static PRINTER: crate::summary::Printer =
            crate::summary::Printer::new(false).with_format(3, crate::summary::Dump::HexAscii { link: false });
    }
    let mut total = 0usize;
    let mut line = Vec::new();
    while let Ok(Some(rec)) = r.next_record() {
        total += rec.data.len();
        assert!(total <= data.len(), "records hold more bytes than the file");
        let p = format::Packet {
            ts_ns: rec.ts_ns,
            ifindex: rec.iface as i32,
            hatype: 1,
            pkttype: 0,
            data: rec.data,
            orig_len: rec.orig_len,
        };
        line.clear();
        PRINTER.with(|printer| printer.line_of_linktype(&mut line, "f", rec.info.linktype, &p));
        // One header line, then the dump: one line per 16 bytes after the
        // link-layer header at most.
        let lines = line.iter().filter(|&&c| c == b'\n').count();
        assert!(
            lines >= 1 && lines <= 1 + rec.data.len().div_ceil(16),
            "{lines} lines"
        );
        assert!(!line.contains(&0x1b), "no escape byte reaches the terminal");
    }
}

/// The merge of pcapng streams from elsewhere (`merge`): any bytes, split
/// into two streams and fed in pieces, never panic the merge, and what it
/// writes reads back as pcapng, every record whole, its time stamps in
/// order but for the packets it counted late.
pub fn merge(data: &[u8]) {
    use crate::merge::Merger;
    use crate::output::Output;
    use std::io::{Read, Seek};
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and flags; the
    // result is checked.
    let fd = unsafe { libc::memfd_create(c"merge".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: the descriptor was just made and nothing else owns it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut out = Output::new(file.try_clone().expect("dup")).expect("output");
    let mut m = Merger::new(std::time::Duration::ZERO, None);
    m.header(&mut out);
    let streams = [m.add_stream("pod/a", "pod a"), m.add_stream("pod/b", "")];
    let cut = data.first().map_or(0, |c| *c as usize * data.len() / 256);
    let step = data.get(1).map_or(7, |s| usize::from(*s % 61) + 1);
    let (x, y) = data.split_at(cut);
    let parts = [x, y];
    for k in 0..data.len().div_ceil(step) {
        for (s, part) in streams.iter().zip(parts) {
            if let Some(c) = part.chunks(step).nth(k) {
                let _ = m.feed_bytes(*s, c, &mut out);
            }
        }
        m.release(k as u64 * 1000, &mut out);
    }
    for s in streams {
        let _ = m.end_stream(s);
    }
    m.finish(&mut out);
    out.finish().expect("writing to memory");
    let mut bytes = Vec::new();
    file.rewind().expect("rewind");
    file.read_to_end(&mut bytes).expect("read back");
    let mut r = crate::read::Reader::new(&bytes[..]).expect("the merge writes pcapng");
    let (mut last, mut back) = (0u64, 0u64);
    let mut n = 0;
    while let Some(rec) = r
        .next_record()
        .expect("every record the merge wrote is whole")
    {
        if rec.ts_ns < last {
            back += 1;
        }
        last = last.max(rec.ts_ns);
        n += 1;
    }
    assert_eq!(n, m.written());
    assert!(
        back <= m.late(),
        "{back} steps back, {} counted late",
        m.late()
    );
}

/// A small deterministic generator for the smoke tests (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `base` with a few random byte edits, insertions and truncations.
    pub fn mutate(&mut self, base: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        for _ in 0..=(self.next_u64() % 6) {
            let r = self.next_u64();
            match r % 4 {
                0 if !v.is_empty() => {
                    let i = (r >> 8) as usize % v.len();
                    v[i] = (r >> 32) as u8;
                }
                1 => {
                    let i = (r >> 8) as usize % (v.len() + 1);
                    v.insert(i, (r >> 32) as u8);
                }
                2 if !v.is_empty() => v.truncate((r >> 8) as usize % v.len()),
                _ => v.extend_from_slice(&r.to_le_bytes()[..(r >> 60) as usize % 8]),
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP/IPv4 frame, a TCP/IPv6 one and an ARP one, as seeds.
    fn seeds() -> Vec<Vec<u8>> {
        let eth = |t: [u8; 2]| [[0xff; 6].as_slice(), &[2; 6], &t].concat();
        let ip4 = [
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 0x13, 0x88,
            0x13, 0x88, 0, 8, 0, 0,
        ];
        let ip6 = [
            [0x60, 0, 0, 0, 0, 20, 6, 64].as_slice(),
            &[0; 32],
            &[0, 80, 0, 81],
            &[0; 16],
        ]
        .concat();
        let arp = [
            0, 1, 8, 0, 6, 4, 0, 1, 2, 2, 2, 2, 2, 2, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0,
            2,
        ];
        vec![
            [eth([8, 0]).as_slice(), &ip4].concat(),
            [eth([0x86, 0xdd]).as_slice(), &ip6].concat(),
            [eth([8, 6]).as_slice(), &arp].concat(),
            [eth([0x81, 0]).as_slice(), &[0, 5, 8, 0], &ip4].concat(),
        ]
    }

    #[test]
    fn printer_and_encoders_survive_mutated_frames() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000 {
            let s = &seeds()[i % 4];
            let framed = [vec![0u8; 9], s.clone()].concat();
            let m = rng.mutate(&framed);
            records(&m);
            let named = [vec![5u8], b"e\x1b[2J".to_vec(), m].concat();
            summary(&named);
        }
    }

    /// Every cut of frames the printer decodes deeply (DNS over UDP, a
    /// SYN with options, an ICMP error quoting UDP, IPv6 extension
    /// headers): a snap length may end a packet anywhere.
    #[test]
    fn every_cut_of_a_decoded_frame_prints() {
        let eth = [[0xffu8; 6].as_slice(), &[2; 6], &[8, 0]].concat();
        let ip = |proto: u8, l4: &[u8]| {
            let mut v = vec![
                0x45,
                0,
                0,
                20 + l4.len() as u8,
                0,
                1,
                0x40,
                0,
                64,
                proto,
                0,
                0,
            ];
            v.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
            v.extend_from_slice(l4);
            v
        };
        let dns = [
            [0x9c, 0x40, 0, 53, 0, 38, 0, 0].as_slice(),
            &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            b"\x04test\x07example\x00",
            &[0, 1, 0, 1],
        ]
        .concat();
        let syn = [
            [
                0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 2, 0xfa, 0xf0, 0, 0, 0, 0,
            ]
            .as_slice(),
            &[
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
        ]
        .concat();
        let quoted = ip(17, &[0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0]);
        let unreach = [[3u8, 3, 0, 0, 0, 0, 0, 0].as_slice(), &quoted].concat();
        // IPv6: hop-by-hop (router alert, PadN), destination options (a
        // home address with a sub-option, Pad1s), a first fragment, UDP.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 52, 0, 64];
        v6.extend_from_slice(&[0x20; 32]);
        v6.extend_from_slice(&[60, 0, 5, 2, 0, 0, 1, 0]);
        v6.extend_from_slice(&[44, 2, 0xc9, 18]);
        v6.extend_from_slice(&[0x20; 16]);
        v6.extend_from_slice(&[1, 0, 0, 0]);
        v6.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
        v6.extend_from_slice(&[0x9c, 0x40, 0x13, 0x88, 0, 12, 0, 0, 1, 2, 3, 4]);
        let eth6 = [&eth[..12], &[0x86, 0xdd]].concat();
        for (eth, frame) in [
            (&eth, ip(17, &dns)),
            (&eth, ip(6, &syn)),
            (&eth, ip(1, &unreach)),
            (&eth6, v6),
        ] {
            let frame = [eth.as_slice(), &frame].concat();
            for cut in 0..=frame.len() {
                let framed = [vec![0u8; 9], frame[..cut].to_vec()].concat();
                summary(&[[0u8].as_slice(), &framed].concat());
            }
        }
    }

    #[test]
    fn a_hostile_interface_name_is_escaped() {
        let mut d = vec![8u8];
        d.extend_from_slice(b"\x1b]0;x\x07\n");
        d.extend_from_slice(&[0; 9]);
        d.extend_from_slice(&seeds()[0]);
        summary(&d);
    }

    #[test]
    fn the_file_reader_survives_mutated_files() {
        use crate::read::linktype;
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let frames = seeds();
        let mut files = Vec::new();
        for (lt, frame) in [
            (linktype::ETHERNET, frames[0].clone()),
            (
                linktype::LINUX_SLL2,
                [
                    vec![8, 0, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6],
                    vec![0; 8],
                    frames[0][14..].to_vec(),
                ]
                .concat(),
            ),
            (linktype::RAW, frames[1][14..].to_vec()),
            (
                linktype::NULL,
                [vec![2, 0, 0, 0], frames[0][14..].to_vec()].concat(),
            ),
        ] {
            let mut b = Vec::new();
            format::pcapng_shb(&mut b, "seed");
            format::pcapng_idb(&mut b, lt, 65535, "e", None);
            format::pcapng_epb(&mut b, 0, &packet(&[vec![0u8; 9], frame.clone()].concat()));
            files.push(b);
            let mut p = Vec::new();
            format::pcap_header(&mut p, 65535, lt, format::Precision::Nano);
            format::pcap_record(
                &mut p,
                &packet(&[vec![0u8; 9], frame].concat()),
                false,
                format::Precision::Nano,
            );
            files.push(p);
        }
        for f in &files {
            read(f);
        }
        for i in 0..20_000 {
            read(&rng.mutate(&files[i % files.len()]));
        }
    }

    #[test]
    fn filter_path_survives_mutated_expressions() {
        let exprs = [
            "udp port 5000",
            "tcp[tcpflags] & tcp-syn != 0",
            "vlan 5 and ip",
            "ip6 and tcp dst port 81",
            "arp or icmp",
            "ether[0:4] = 0xffffffff",
            "len > 60 and not host 198.18.0.1",
        ];
        let mut rng = Rng(42);
        // libpcap compiles ~300 expressions a second here (a dead handle each).
        for i in 0..300 {
            let e = rng.mutate(exprs[i % exprs.len()].as_bytes());
            let pkt = rng.mutate(&seeds()[i % 4]);
            filter(&[e.as_slice(), &[0], &pkt].concat());
        }
    }

    #[test]
    fn runt_frames_make_valid_sll2_records() {
        records(&[0; 12]);
        records(&[]);
    }
}
