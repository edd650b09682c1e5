//! Reading capture files (`netshim capture -r FILE`): classic pcap
//! (microsecond and nanosecond, either byte order) and pcapng (any number of
//! sections, interfaces and link types; EPB, SPB and the obsolete Packet
//! Block; other blocks are passed over).
//!
//! Every file is hostile input: it is read as a stream in constant memory
//! (one record at a time, never more than [`MAX_RECORD`] bytes), every length
//! is checked before it is used, and a file that ends inside a record, or
//! holds a record that makes no sense, ends the read with an error that says
//! where, after every packet before it was delivered.

use std::io::{self, Read};

/// The largest record netshim reads: a pcapng block or a pcap record, with
/// headers. tcpdump's own largest snapshot length is 256 KiB; 16 MiB leaves
/// room for any real file and bounds memory for a hostile one.
pub const MAX_RECORD: usize = 16 << 20;

/// Link types (the tcpdump.org LINKTYPE_ registry) netshim knows by name.
pub mod linktype {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const LINUX_SLL2: u16 = 276;

    /// The name tcpdump prints for a link type.
    pub fn name(lt: u16) -> String {
        match lt {
            NULL => "NULL (BSD loopback)".into(),
            ETHERNET => "EN10MB (Ethernet)".into(),
            RAW => "RAW (Raw IP)".into(),
            LOOP => "LOOP (OpenBSD loopback)".into(),
            LINUX_SLL => "LINUX_SLL (Linux cooked v1)".into(),
            IPV4 => "IPV4 (Raw IPv4)".into(),
            IPV6 => "IPV6 (Raw IPv6)".into(),
            LINUX_SLL2 => "LINUX_SLL2 (Linux cooked v2)".into(),
            other => format!("link type {other}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the capture file: {0}")]
    Io(#[from] io::Error),
    #[error("not a pcap or pcapng file (it starts with {0:02x?}); netshim reads classic pcap and pcapng")]
    NotACapture(Vec<u8>),
    #[error("the file ends inside a {what} after {packets} packets: it was cut short (a capture still being written, or a full disk)")]
    Truncated { what: &'static str, packets: u64 },
    #[error("malformed capture file after {packets} packets: {reason}")]
    Malformed { reason: String, packets: u64 },
}

/// One interface of a file: its link type, snapshot length, name (pcapng
/// `if_name`, when the file gives one) and time resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub linktype: u16,
    pub snaplen: u32,
    pub name: Option<String>,
    /// Timestamp units per second.
    pub units: u64,
}

/// One packet, borrowed from the reader until the next call.
#[derive(Debug)]
pub struct Record<'a> {
    /// Index into [`Reader::interfaces`] (pcapng: across all sections).
    pub iface: usize,
    pub ts_ns: u64,
    pub data: &'a [u8],
    pub orig_len: u32,
    /// pcapng `epb_flags` (direction in bits 0-1), 0 when unknown.
    pub flags: u32,
    /// The interface it was captured on.
    pub info: &'a Interface,
}

enum Kind {
    Pcap { big: bool },
    Pcapng { big: bool, first_iface: usize },
}

pub struct Reader<R> {
    src: R,
    kind: Kind,
    buf: Vec<u8>,
    pub interfaces: Vec<Interface>,
    packets: u64,
}

const PCAP_US: u32 = 0xa1b2_c3d4;
const PCAP_NS: u32 = 0xa1b2_3c4d;
const SHB: u32 = 0x0A0D_0D0A;
const BOM: u32 = 0x1A2B_3C4D;

fn u16_at(b: &[u8], o: usize, big: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    })
}

fn u32_at(b: &[u8], o: usize, big: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    })
}

/// Reads exactly `buf.len()` bytes; Ok(false) at a clean end of file before
/// the first byte, Err(Truncated) inside.
fn fill<R: Read>(
    src: &mut R,
    buf: &mut [u8],
    what: &'static str,
    packets: u64,
) -> Result<bool, ReadError> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ReadError::Truncated { what, packets }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Reads exactly `n` bytes into `buf` (replacing its contents), growing it
/// only as the bytes arrive: a hostile length costs memory only for the
/// bytes the file really holds.
fn fill_vec<R: Read>(
    src: &mut R,
    buf: &mut Vec<u8>,
    n: usize,
    what: &'static str,
    packets: u64,
) -> Result<(), ReadError> {
    buf.clear();
    src.by_ref().take(n as u64).read_to_end(buf)?;
    if buf.len() < n {
        return Err(ReadError::Truncated { what, packets });
    }
    Ok(())
}

impl<R: Read> Reader<R> {
    /// Reads the file's header (and, for pcapng, its first section header).
    pub fn new(mut src: R) -> Result<Reader<R>, ReadError> {
        let mut head = [0u8; 4];
        if !fill(&mut src, &mut head, "file header", 0)? {
            return Err(ReadError::Truncated {
                what: "file header",
                packets: 0,
            });
        }
        let le = u32::from_le_bytes(head);
        let be = u32::from_be_bytes(head);
        let mut r = Reader {
            src,
            kind: Kind::Pcap { big: false },
            buf: Vec::new(),
            interfaces: Vec::new(),
            packets: 0,
        };
        if [le, be].iter().any(|m| *m == PCAP_US || *m == PCAP_NS) {
            let big = be == PCAP_US || be == PCAP_NS;
            let ns = (if big { be } else { le }) == PCAP_NS;
            let mut rest = [0u8; 20];
            if !fill(&mut r.src, &mut rest, "file header", 0)? {
                return Err(ReadError::Truncated {
                    what: "file header",
                    packets: 0,
                });
            }
            let snaplen = u32_at(&rest, 12, big).expect("20 bytes");
            let lt = u32_at(&rest, 16, big).expect("20 bytes");
            r.kind = Kind::Pcap { big };
            r.interfaces.push(Interface {
                // The upper bits carry FCS information (pcap-linktype(7)).
                linktype: (lt & 0x0fff_ffff) as u16,
                snaplen,
                name: None,
                units: if ns { 1_000_000_000 } else { 1_000_000 },
            });
            return Ok(r);
        }
        if le == SHB {
            let mut len = [0u8; 4];
            if !fill(&mut r.src, &mut len, "section header", 0)? {
                return Err(ReadError::Truncated {
                    what: "section header",
                    packets: 0,
                });
            }
            r.section_header_after(len)?;
            return Ok(r);
        }
        Err(ReadError::NotACapture(head.to_vec()))
    }

    fn malformed(&self, reason: impl Into<String>) -> ReadError {
        ReadError::Malformed {
            reason: reason.into(),
            packets: self.packets,
        }
    }

    /// The next packet, or None at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        match self.kind {
            Kind::Pcap { big } => self.next_pcap(big),
            Kind::Pcapng { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, big: bool) -> Result<Option<Record<'_>>, ReadError> {
        let mut h = [0u8; 16];
        if !fill(&mut self.src, &mut h, "packet record", self.packets)? {
            return Ok(None);
        }
        let secs = u32_at(&h, 0, big).expect("16") as u64;
        let frac = u32_at(&h, 4, big).expect("16") as u64;
        let caplen = u32_at(&h, 8, big).expect("16") as usize;
        let orig_len = u32_at(&h, 12, big).expect("16");
        if caplen > MAX_RECORD {
            return Err(self.malformed(format!("a record of {caplen} bytes")));
        }
        fill_vec(
            &mut self.src,
            &mut self.buf,
            caplen,
            "packet record",
            self.packets,
        )?;
        let units = self.interfaces[0].units;
        let frac_ns = if units == 1_000_000 {
            frac * 1000
        } else {
            frac
        };
        self.packets += 1;
        Ok(Some(Record {
            iface: 0,
            ts_ns: secs * 1_000_000_000 + frac_ns,
            data: &self.buf,
            orig_len,
            flags: 0,
            info: &self.interfaces[0],
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        loop {
            let Kind::Pcapng { big, first_iface } = self.kind else {
                unreachable!("called for pcapng only")
            };
            let mut h = [0u8; 8];
            if !fill(&mut self.src, &mut h, "block", self.packets)? {
                return Ok(None);
            }
            let btype_le = u32::from_le_bytes(h[0..4].try_into().expect("8"));
            if btype_le == SHB {
                // A new section: its own byte order and interfaces. The
                // header's length field is read again in that order.
                let mut rest = [0u8; 4];
                rest.copy_from_slice(&h[4..8]);
                self.section_header_after(rest)?;
                continue;
            }
            let btype = u32_at(&h, 0, big).expect("8");
            let total = u32_at(&h, 4, big).expect("8") as usize;
            if !(12..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
                return Err(self.malformed(format!("a block of type {btype:#x} and {total} bytes")));
            }
            fill_vec(
                &mut self.src,
                &mut self.buf,
                total - 8,
                "block",
                self.packets,
            )?;
            let body_len = total - 12;
            match btype {
                1 => self.interface_block(big, body_len)?,
                6 | 2 => {
                    // EPB: iface(4) ts_hi ts_lo caplen origlen data opts.
                    // Obsolete PB: iface(2) drops(2) ts_hi ts_lo caplen origlen.
                    let iface = if btype == 6 {
                        u32_at(&self.buf, 0, big).expect("checked below") as usize
                    } else {
                        u16_at(&self.buf, 0, big).unwrap_or(0) as usize
                    };
                    if body_len < 20 {
                        return Err(self.malformed("a packet block shorter than its header"));
                    }
                    let hi = u32_at(&self.buf, 4, big).expect("20") as u64;
                    let lo = u32_at(&self.buf, 8, big).expect("20") as u64;
                    let caplen = u32_at(&self.buf, 12, big).expect("20") as usize;
                    let orig_len = u32_at(&self.buf, 16, big).expect("20");
                    if 20 + caplen > body_len {
                        return Err(self.malformed(format!(
                            "a packet of {caplen} bytes in a block of {total}"
                        )));
                    }
                    let index = first_iface + iface;
                    let Some(i) = self.interfaces.get(index) else {
                        return Err(self.malformed(format!(
                            "a packet on interface {iface}, which the section never described"
                        )));
                    };
                    let ts = (hi << 32) | lo;
                    let ts_ns = scale(ts, i.units);
                    let flags = if btype == 6 {
                        epb_flags(
                            self.buf
                                .get(20 + caplen.div_ceil(4) * 4..body_len)
                                .unwrap_or(&[]),
                            big,
                        )
                    } else {
                        0
                    };
                    self.packets += 1;
                    return Ok(Some(Record {
                        iface: index,
                        ts_ns,
                        data: &self.buf[20..20 + caplen],
                        orig_len,
                        flags,
                        info: &self.interfaces[index],
                    }));
                }
                3 => {
                    // SPB: origlen, data; no timestamp; the section's first
                    // interface.
                    if body_len < 4 {
                        return Err(self.malformed("a simple packet block without a length"));
                    }
                    let Some(i) = self.interfaces.get(first_iface) else {
                        return Err(self.malformed("a simple packet block before any interface"));
                    };
                    let orig_len = u32_at(&self.buf, 0, big).expect("4");
                    let caplen = (orig_len as usize)
                        .min(i.snaplen.max(1) as usize)
                        .min(body_len - 4);
                    self.packets += 1;
                    return Ok(Some(Record {
                        iface: first_iface,
                        ts_ns: 0,
                        data: &self.buf[4..4 + caplen],
                        orig_len,
                        flags: 0,
                        info: &self.interfaces[first_iface],
                    }));
                }
                // ISB, NRB, DSB, custom and unknown blocks: nothing to print.
                _ => {}
            }
        }
    }

    /// A Section Header Block, after its type and length fields (the length
    /// is read in the byte order its byte-order magic gives).
    fn section_header_after(&mut self, len_bytes: [u8; 4]) -> Result<(), ReadError> {
        let mut bom = [0u8; 4];
        if !fill(&mut self.src, &mut bom, "section header", self.packets)? {
            return Err(ReadError::Truncated {
                what: "section header",
                packets: self.packets,
            });
        }
        let big = match u32::from_le_bytes(bom) {
            BOM => false,
            x if x.swap_bytes() == BOM => true,
            _ => return Err(self.malformed("a section header without the byte-order magic")),
        };
        let total = if big {
            u32::from_be_bytes(len_bytes)
        } else {
            u32::from_le_bytes(len_bytes)
        } as usize;
        if !(28..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
            return Err(self.malformed(format!("a section header of {total} bytes")));
        }
        fill_vec(
            &mut self.src,
            &mut self.buf,
            total - 12,
            "section header",
            self.packets,
        )?;
        // The body starts after the byte-order magic: major, minor version.
        let major = u16_at(&self.buf, 0, big).unwrap_or(0);
        if major != 1 {
            return Err(self.malformed(format!("pcapng version {major}, not 1")));
        }
        self.kind = Kind::Pcapng {
            big,
            first_iface: self.interfaces.len(),
        };
        Ok(())
    }

    fn interface_block(&mut self, big: bool, body_len: usize) -> Result<(), ReadError> {
        if body_len < 8 {
            return Err(self.malformed("an interface block shorter than its header"));
        }
        let linktype = u16_at(&self.buf, 0, big).expect("8");
        let snaplen = u32_at(&self.buf, 4, big).expect("8");
        let mut iface = Interface {
            linktype,
            snaplen,
            name: None,
            units: 1_000_000,
        };
        let mut o = 8;
        while o + 4 <= body_len {
            let code = u16_at(&self.buf, o, big).expect("4");
            let len = u16_at(&self.buf, o + 2, big).expect("4") as usize;
            if code == 0 {
                break;
            }
            let Some(v) = self
                .buf
                .get(o + 4..o + 4 + len)
                .filter(|_| o + 4 + len <= body_len)
            else {
                return Err(self.malformed("an interface option longer than its block"));
            };
            match code {
                2 => iface.name = Some(String::from_utf8_lossy(v).into_owned()),
                9 if len >= 1 => {
                    let r = v[0];
                    let exp = (r & 0x7f) as u32;
                    iface.units = if r & 0x80 == 0 {
                        10u64.checked_pow(exp)
                    } else {
                        1u64.checked_shl(exp)
                    }
                    .filter(|u| *u > 0)
                    .ok_or_else(|| self.malformed(format!("if_tsresol {r:#x}")))?;
                }
                _ => {}
            }
            o += 4 + len.div_ceil(4) * 4;
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// Packets delivered so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }
}

/// Timestamp units to nanoseconds, without overflow for any resolution.
fn scale(ts: u64, units: u64) -> u64 {
    if units == 1_000_000_000 {
        return ts;
    }
    ((ts as u128) * 1_000_000_000 / units as u128).min(u64::MAX as u128) as u64
}

/// `epb_flags` (option 2) from an EPB's options, 0 when absent.
fn epb_flags(opts: &[u8], big: bool) -> u32 {
    let mut o = 0;
    while o + 4 <= opts.len() {
        let code = u16_at(opts, o, big).unwrap_or(0);
        let len = u16_at(opts, o + 2, big).unwrap_or(0) as usize;
        if code == 0 {
            break;
        }
        if code == 2 && len == 4 {
            return u32_at(opts, o + 4, big).unwrap_or(0);
        }
        o += 4 + len.div_ceil(4) * 4;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{self, Packet};

    fn packet(ts_ns: u64, data: &[u8]) -> Packet<'_> {
        Packet {
            ts_ns,
            ifindex: 2,
            hatype: 1,
            pkttype: libc::PACKET_OUTGOING,
            data,
            orig_len: data.len() as u32 + 10,
        }
    }

    /// (iface, ts_ns, data, orig_len, flags) of one record.
    type Rec = (usize, u64, Vec<u8>, u32, u32);

    fn all(bytes: &[u8]) -> (Vec<Interface>, Vec<Rec>, Option<String>) {
        let mut r = match Reader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (vec![], vec![], Some(e.to_string())),
        };
        let mut v = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(p)) => v.push((p.iface, p.ts_ns, p.data.to_vec(), p.orig_len, p.flags)),
                Ok(None) => return (r.interfaces.clone(), v, None),
                Err(e) => return (r.interfaces.clone(), v, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn netshims_own_pcapng_and_pcap_read_back() {
        let mut b = Vec::new();
        format::pcapng_shb(&mut b, "test");
        format::pcapng_idb(&mut b, 1, 262144, "eth0", None);
        format::pcapng_epb(&mut b, 0, &packet(1_700_000_000_123_456_789, b"abcde"));
        format::pcapng_isb(&mut b, 0, 1, 2, &Default::default());
        // A second section, another link type and interface.
        format::pcapng_shb(&mut b, "test");
        format::pcapng_idb(&mut b, linktype::LINUX_SLL2, 65535, "any", None);
        format::pcapng_epb(&mut b, 0, &packet(5, b"xyz"));
        let (ifs, pkts, err) = all(&b);
        assert_eq!(err, None);
        assert_eq!(ifs.len(), 2);
        assert_eq!(ifs[1].linktype, linktype::LINUX_SLL2);
        assert_eq!(ifs[0].name.as_deref(), Some("eth0"));
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[0].1, 1_700_000_000_123_456_789);
        assert_eq!(pkts[0].2, b"abcde");
        assert_eq!(pkts[0].3, 15);
        assert_eq!(pkts[0].4 & 3, 2, "outbound");
        assert_eq!(pkts[1].0, 1);

        let mut p = Vec::new();
        format::pcap_header(&mut p, 65535, 1, format::Precision::Nano);
        format::pcap_record(
            &mut p,
            &packet(2_000_000_001, b"hello"),
            false,
            format::Precision::Nano,
        );
        let (ifs, pkts, err) = all(&p);
        assert_eq!(err, None);
        assert_eq!(ifs[0].units, 1_000_000_000);
        assert_eq!(pkts, vec![(0, 2_000_000_001, b"hello".to_vec(), 15, 0)]);
    }

    #[test]
    fn microsecond_big_endian_pcap_reads() {
        let mut p = Vec::new();
        p.extend_from_slice(&PCAP_US.to_be_bytes());
        p.extend_from_slice(&[
            0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 101,
        ]);
        p.extend_from_slice(&3u32.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&[0x45, 0]);
        let (ifs, pkts, err) = all(&p);
        assert_eq!(err, None);
        assert_eq!(ifs[0].linktype, linktype::RAW);
        assert_eq!(pkts[0].1, 3_000_007_000);
    }

    #[test]
    fn cut_and_hostile_files_end_with_what_was_read() {
        let mut b = Vec::new();
        format::pcapng_shb(&mut b, "t");
        format::pcapng_idb(&mut b, 1, 100, "e", None);
        format::pcapng_epb(&mut b, 0, &packet(1, b"one"));
        format::pcapng_epb(&mut b, 0, &packet(2, b"two"));
        let (_, pkts, err) = all(&b[..b.len() - 3]);
        assert_eq!(pkts.len(), 1);
        assert!(err.unwrap().contains("cut short"), "truncated");
        // Every prefix and every single-byte change: never a panic, never
        // more packets than were written.
        for n in 0..b.len() {
            assert!(all(&b[..n]).1.len() <= 2);
        }
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0xff;
            let _ = all(&m);
        }
        assert!(all(b"GIF89a").2.unwrap().contains("not a pcap"));
    }
}
