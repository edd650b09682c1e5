//! Encoders for pcapng and classic pcap (micro- or nanosecond), block by block,
//! into a byte buffer. Pure functions: the writer decides where bytes go.
//!
//! References: the pcapng draft (draft-ietf-opsawg-pcapng) for block and
//! option layouts, and tcpdump.org's LINKTYPE list for LINUX_SLL2 (276).

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// LINKTYPE_LINUX_SLL2: Linux "cooked" v2 header, for several interfaces in
/// one classic pcap file.
pub const LINKTYPE_LINUX_SLL2: u16 = 276;
/// LINKTYPE_RAW: packets that start with their IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u16 = 101;

/// Whether frames of this ARPHRD type are raw IP, with no link-layer
/// header: tun and WireGuard (ARPHRD_NONE), raw-IP devices and IP tunnels.
pub fn raw_ip(hatype: u16) -> bool {
    matches!(hatype, 0xfffe | 519 | 768 | 769 | 776)
}

/// Whether frames of this ARPHRD type start with an Ethernet header.
pub fn ethernet_framed(hatype: u16) -> bool {
    hatype == libc::ARPHRD_ETHER || hatype == libc::ARPHRD_LOOPBACK
}

/// The LINKTYPE of packets from an interface of this ARPHRD type.
pub fn linktype_of(hatype: u16) -> u16 {
    if raw_ip(hatype) {
        LINKTYPE_RAW
    } else {
        LINKTYPE_ETHERNET
    }
}

/// Magic of a classic pcap file with nanosecond timestamps.
pub const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Magic of a classic pcap file with microsecond timestamps.
pub const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;

/// Time-stamp precision of a classic pcap file (tcpdump's
/// `--time-stamp-precision`; microseconds unless nanoseconds are asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Micro,
    Nano,
}

/// Packet direction, from the kernel's `sll_pkttype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

/// What the writers need to know of one captured packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Nanoseconds since the epoch.
    pub ts_ns: u64,
    pub ifindex: i32,
    /// `sll_hatype` (ARPHRD_*).
    pub hatype: u16,
    /// `sll_pkttype` (PACKET_HOST, PACKET_OUTGOING, …).
    pub pkttype: u8,
    /// The captured bytes, link-layer header first.
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}

impl Packet<'_> {
    pub fn direction(&self) -> Direction {
        if self.pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        }
    }
}

fn pad4(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

pub(crate) fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    pad4(buf);
}

/// Writes a block: type, total length, body, total length again.
pub(crate) fn block(buf: &mut Vec<u8>, kind: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&kind.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    body(buf);
    pad4(buf);
    let total = (buf.len() - start + 4) as u32;
    buf[start + 4..start + 8].copy_from_slice(&total.to_le_bytes());
    buf.extend_from_slice(&total.to_le_bytes());
}

/// Section Header Block (little-endian, version 1.0, length unspecified).
pub fn pcapng_shb(buf: &mut Vec<u8>, user_appl: &str) {
    block(buf, 0x0A0D_0D0A, |b| {
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        option(b, 4, user_appl.as_bytes()); // shb_userappl
        option(b, 0, &[]);
    });
}

/// Interface Description Block with if_name, if_tsresol = 9 (ns) and, when
/// given, if_filter (type 0: a libpcap filter string).
pub fn pcapng_idb(
    buf: &mut Vec<u8>,
    linktype: u16,
    snaplen: u32,
    name: &str,
    filter: Option<&str>,
) {
    pcapng_idb_of(
        buf,
        &Idb {
            linktype,
            snaplen,
            name,
            description: None,
            filter,
        },
    )
}

/// What an Interface Description Block says of its interface.
pub struct Idb<'a> {
    pub linktype: u16,
    pub snaplen: u32,
    pub name: &'a str,
    /// `if_description`: what the target of a capture of several is.
    pub description: Option<&'a str>,
    /// `if_filter`: the filter's text.
    pub filter: Option<&'a str>,
}

/// [`pcapng_idb`] with every option [`Idb`] holds.
pub fn pcapng_idb_of(buf: &mut Vec<u8>, i: &Idb) {
    let Idb {
        linktype,
        snaplen,
        name,
        description,
        filter,
    } = *i;
    block(buf, 1, |b| {
        b.extend_from_slice(&linktype.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        option(b, 2, name.as_bytes()); // if_name
        if let Some(d) = description {
            option(b, 3, d.as_bytes()); // if_description
        }
        option(b, 9, &[9]); // if_tsresol: 10^-9
        if let Some(f) = filter {
            let mut v = vec![0u8];
            v.extend_from_slice(f.as_bytes());
            option(b, 11, &v); // if_filter
        }
        option(b, 0, &[]);
    });
}

/// epb_flags: direction (bits 0-1) and reception type (bits 2-4).
pub fn epb_flags(pkttype: u8) -> u32 {
    match pkttype {
        libc::PACKET_HOST => 0b001 << 2 | 0b01,
        libc::PACKET_BROADCAST => 0b011 << 2 | 0b01,
        libc::PACKET_MULTICAST => 0b010 << 2 | 0b01,
        libc::PACKET_OTHERHOST => 0b100 << 2 | 0b01,
        libc::PACKET_OUTGOING => 0b10,
        _ => 0,
    }
}

/// Enhanced Packet Block with epb_flags. The hot path of a capture: the
/// fixed header and trailer are built on the stack and copied in two pieces
/// around the packet bytes.
pub fn pcapng_epb(buf: &mut Vec<u8>, iface: u32, p: &Packet) {
    let caplen = p.data.len();
    let padded = (caplen + 3) & !3;
    // 28 bytes of header, the padded data, epb_flags (8), end of options
    // (4), the trailing total length (4).
    let total = (28 + padded + 16) as u32;
    let mut h = [0u8; 28];
    h[0..4].copy_from_slice(&6u32.to_le_bytes());
    h[4..8].copy_from_slice(&total.to_le_bytes());
    h[8..12].copy_from_slice(&iface.to_le_bytes());
    h[12..16].copy_from_slice(&((p.ts_ns >> 32) as u32).to_le_bytes());
    h[16..20].copy_from_slice(&(p.ts_ns as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(caplen as u32).to_le_bytes());
    h[24..28].copy_from_slice(&p.orig_len.to_le_bytes());
    let mut t = [0u8; 19];
    let pad = padded - caplen;
    // t[..pad] stays zero: the padding of the data.
    t[pad..pad + 2].copy_from_slice(&2u16.to_le_bytes());
    t[pad + 2..pad + 4].copy_from_slice(&4u16.to_le_bytes());
    t[pad + 4..pad + 8].copy_from_slice(&epb_flags(p.pkttype).to_le_bytes());
    // t[pad + 8..pad + 12]: opt_endofopt, zero.
    t[pad + 12..pad + 16].copy_from_slice(&total.to_le_bytes());
    buf.reserve(total as usize);
    buf.extend_from_slice(&h);
    buf.extend_from_slice(p.data);
    buf.extend_from_slice(&t[..pad + 16]);
}

/// Counters for an Interface Statistics Block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfaceCounters {
    /// Packets the kernel passed the filter (PACKET_STATISTICS tp_packets).
    pub received: u64,
    /// Packets the kernel dropped for lack of ring space (tp_drops).
    pub dropped: u64,
    /// Packets written by netshim.
    pub delivered: u64,
}

/// Interface Statistics Block: isb_starttime, isb_endtime, isb_ifrecv,
/// isb_osdrop, isb_usrdeliv. (The kernel counts only packets the filter
/// accepted, so ifrecv here is "received after filtering".)
pub fn pcapng_isb(buf: &mut Vec<u8>, iface: u32, start_ns: u64, end_ns: u64, c: &IfaceCounters) {
    let ts = |b: &mut Vec<u8>, t: u64| {
        b.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(t as u32).to_le_bytes());
    };
    block(buf, 5, |b| {
        b.extend_from_slice(&iface.to_le_bytes());
        ts(b, end_ns);
        let mut t = Vec::new();
        ts(&mut t, start_ns);
        option(b, 2, &t);
        t.clear();
        ts(&mut t, end_ns);
        option(b, 3, &t);
        option(b, 4, &(c.received + c.dropped).to_le_bytes()); // isb_ifrecv
        option(b, 7, &c.dropped.to_le_bytes()); // isb_osdrop
        option(b, 8, &c.delivered.to_le_bytes()); // isb_usrdeliv
        option(b, 0, &[]);
    });
}

/// Classic pcap global header, version 2.4, with the magic of `prec`.
pub fn pcap_header(buf: &mut Vec<u8>, snaplen: u32, linktype: u16, prec: Precision) {
    let magic = match prec {
        Precision::Micro => PCAP_MAGIC_US,
        Precision::Nano => PCAP_MAGIC_NS,
    };
    buf.extend_from_slice(&magic.to_le_bytes());
    buf.extend_from_slice(&2u16.to_le_bytes());
    buf.extend_from_slice(&4u16.to_le_bytes());
    buf.extend_from_slice(&0i32.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&snaplen.to_le_bytes());
    buf.extend_from_slice(&(linktype as u32).to_le_bytes());
}

/// Classic pcap record. With `sll2`, the Ethernet header is replaced by a
/// LINKTYPE_LINUX_SLL2 header carrying interface and direction.
pub fn pcap_record(buf: &mut Vec<u8>, p: &Packet, sll2: bool, prec: Precision) {
    let secs = (p.ts_ns / 1_000_000_000) as u32;
    let frac = match prec {
        // Truncated, as libpcap scales nanoseconds to microseconds.
        Precision::Micro => (p.ts_ns % 1_000_000_000 / 1000) as u32,
        Precision::Nano => (p.ts_ns % 1_000_000_000) as u32,
    };
    buf.extend_from_slice(&secs.to_le_bytes());
    buf.extend_from_slice(&frac.to_le_bytes());
    if !sll2 {
        buf.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        buf.extend_from_slice(&p.orig_len.to_le_bytes());
        buf.extend_from_slice(p.data);
        return;
    }
    let raw = raw_ip(p.hatype);
    if raw || p.data.len() < 14 {
        // No link-layer address, the bytes as the payload: raw IP (the
        // protocol from the IP version), or a runt frame without a whole
        // Ethernet header (AF_PACKET can send one; protocol 0).
        let proto: u16 = match (raw, p.data.first().map(|v| v >> 4)) {
            (true, Some(6)) => 0x86dd,
            (true, _) => 0x0800,
            (false, _) => 0,
        };
        buf.extend_from_slice(&((20 + p.data.len()) as u32).to_le_bytes());
        buf.extend_from_slice(&p.orig_len.saturating_add(20).to_le_bytes());
        buf.extend_from_slice(&proto.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&(p.ifindex as u32).to_be_bytes());
        buf.extend_from_slice(&p.hatype.to_be_bytes());
        buf.push(p.pkttype);
        buf.push(0);
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(p.data);
        return;
    }
    // SLL2: protocol, reserved, ifindex, hatype, pkttype, addr len, addr[8];
    // then the packet after its 14-byte Ethernet header.
    let payload = &p.data[14..];
    buf.extend_from_slice(&((20 + payload.len()) as u32).to_le_bytes());
    buf.extend_from_slice(&(p.orig_len.saturating_sub(14) + 20).to_le_bytes());
    buf.extend_from_slice(&p.data[12..14]);
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&(p.ifindex as u32).to_be_bytes());
    buf.extend_from_slice(&p.hatype.to_be_bytes());
    buf.push(p.pkttype);
    buf.push(6);
    buf.extend_from_slice(&p.data[6..12]);
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(data: &[u8], pkttype: u8) -> Packet<'_> {
        Packet {
            ts_ns: 1_700_000_000_123_456_789,
            ifindex: 3,
            hatype: 1,
            pkttype,
            data,
            orig_len: data.len() as u32 + 10,
        }
    }

    /// Walks pcapng blocks, checking each one's two length fields agree.
    fn blocks(buf: &[u8]) -> Vec<(u32, &[u8])> {
        let mut v = Vec::new();
        let mut off = 0;
        while off < buf.len() {
            let kind = u32::from_le_bytes(buf[off..off + 4].try_into().unwrap());
            let len = u32::from_le_bytes(buf[off + 4..off + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            let tail =
                u32::from_le_bytes(buf[off + len - 4..off + len].try_into().unwrap()) as usize;
            assert_eq!(len, tail, "block at {off}");
            v.push((kind, &buf[off + 8..off + len - 4]));
            off += len;
        }
        v
    }

    #[test]
    fn pcapng_blocks_are_well_formed() {
        let mut b = Vec::new();
        pcapng_shb(&mut b, "netshim test");
        pcapng_idb(&mut b, LINKTYPE_ETHERNET, 262144, "eth0", Some("udp"));
        let data = [0xaau8; 61];
        pcapng_epb(&mut b, 0, &pkt(&data, libc::PACKET_OUTGOING));
        pcapng_isb(
            &mut b,
            0,
            1,
            2,
            &IfaceCounters {
                received: 5,
                dropped: 1,
                delivered: 5,
            },
        );
        let bl = blocks(&b);
        assert_eq!(
            bl.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![0x0A0D0D0A, 1, 6, 5]
        );
        let epb = bl[2].1;
        assert_eq!(u32::from_le_bytes(epb[12..16].try_into().unwrap()), 61);
        assert_eq!(u32::from_le_bytes(epb[16..20].try_into().unwrap()), 71);
        let ts = ((u32::from_le_bytes(epb[4..8].try_into().unwrap()) as u64) << 32)
            | u32::from_le_bytes(epb[8..12].try_into().unwrap()) as u64;
        assert_eq!(ts, 1_700_000_000_123_456_789);
        // epb_flags after the padded data: code 2, length 4, value 0b10.
        let opt = &epb[20 + 64..];
        assert_eq!(&opt[..8], &[2, 0, 4, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn reception_flags_follow_pkttype() {
        assert_eq!(epb_flags(libc::PACKET_HOST), 0b00101);
        assert_eq!(epb_flags(libc::PACKET_BROADCAST), 0b01101);
        assert_eq!(epb_flags(libc::PACKET_OUTGOING), 0b00010);
    }

    #[test]
    fn pcap_uses_the_nanosecond_magic_and_sll2() {
        let mut b = Vec::new();
        pcap_header(&mut b, 65535, LINKTYPE_LINUX_SLL2, Precision::Nano);
        assert_eq!(&b[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 276);
        let mut frame = vec![0u8; 14 + 20];
        frame[6..12].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let start = b.len();
        pcap_record(
            &mut b,
            &pkt(&frame, libc::PACKET_HOST),
            true,
            Precision::Nano,
        );
        let r = &b[start..];
        assert_eq!(u32::from_le_bytes(r[4..8].try_into().unwrap()), 123_456_789);
        assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), 40);
        let sll = &r[16..36];
        assert_eq!(&sll[0..2], &[0x08, 0x00]);
        assert_eq!(&sll[4..8], &3u32.to_be_bytes());
        assert_eq!(&sll[12..18], &[1, 2, 3, 4, 5, 6]);
    }
}

/// Round trips through libpcap's own reader: an independent check that the
/// files are what other tools will read.
#[cfg(test)]
mod libpcap_reads_it {
    use super::*;

    fn packets() -> Vec<(u64, Vec<u8>, u32)> {
        (0..5u64)
            .map(|i| {
                let mut f = vec![0u8; 14 + 20 + i as usize * 7];
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[20] = i as u8;
                (1_700_000_000_000_000_000 + i * 1_000_000_001, f, 1500)
            })
            .collect()
    }

    fn read_back(bytes: &[u8]) -> Vec<(u64, Vec<u8>, u32)> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, bytes).unwrap();
        let mut cap = pcap::Capture::from_file_with_precision(&p, pcap::Precision::Nano).unwrap();
        let mut v = Vec::new();
        while let Ok(pkt) = cap.next_packet() {
            let h = pkt.header;
            let ts = h.ts.tv_sec as u64 * 1_000_000_000 + h.ts.tv_usec as u64;
            v.push((ts, pkt.data.to_vec(), h.len));
        }
        v
    }

    #[test]
    fn pcapng_round_trips() {
        let mut b = Vec::new();
        pcapng_shb(&mut b, "t");
        pcapng_idb(&mut b, LINKTYPE_ETHERNET, 262144, "eth0", Some("ip"));
        for (ts, data, len) in packets() {
            let p = Packet {
                ts_ns: ts,
                ifindex: 2,
                hatype: 1,
                pkttype: 0,
                data: &data,
                orig_len: len,
            };
            pcapng_epb(&mut b, 0, &p);
        }
        pcapng_isb(
            &mut b,
            0,
            1,
            2,
            &IfaceCounters {
                received: 5,
                dropped: 0,
                delivered: 5,
            },
        );
        assert_eq!(read_back(&b), packets());
    }

    #[test]
    fn pcap_round_trips_with_nanoseconds() {
        let mut b = Vec::new();
        pcap_header(&mut b, 262144, LINKTYPE_ETHERNET, Precision::Nano);
        for (ts, data, len) in packets() {
            let p = Packet {
                ts_ns: ts,
                ifindex: 2,
                hatype: 1,
                pkttype: 0,
                data: &data,
                orig_len: len,
            };
            pcap_record(&mut b, &p, false, Precision::Nano);
        }
        assert_eq!(read_back(&b), packets());
    }
}
