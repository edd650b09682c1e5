//! The merge of pcapng streams that arrive from elsewhere — a capture
//! engine in each of several pods, read through `kubectl exec` by a
//! plugin — into one pcapng stream in timestamp order. A capture of several
//! targets on this host does not use it: one engine reads every target's
//! rings itself (`crate::engine`).
//!
//! Each stream's interfaces become interfaces of the merged section: their
//! IDBs are rewritten with `if_name` `LABEL/IFACE` and an `if_description`
//! naming the stream, every EPB and ISB gets the merged interface number,
//! and the ISBs are written once, at the end.
//!
//! **The reorder window.** A packet is held until its timestamp is the
//! window older than the wall clock, so that a packet of another stream
//! stamped earlier but still on its way can be written before it. One that
//! arrives after a later one was written is written at once, out of order,
//! and counted ([`Merger::late`]): nothing is dropped for lateness.
//!
//! **Hostile input.** A stream is bytes from another machine: every length
//! is bounded ([`crate::read::MAX_RECORD`]), every offset checked, a packet
//! block's captured length must fit in it, a stream may describe at most
//! [`MAX_INTERFACES`] interfaces, and at most [`MAX_HELD_BYTES`] are held
//! (past that the oldest packet is written at once). A malformed stream is
//! refused with its label; the others go on.

use std::collections::VecDeque;
use std::time::Duration;

use crate::format::{block, option, pcapng_shb};
use crate::output::Output;

/// The most packet bytes held for reordering before the oldest is written
/// regardless of the window.
pub const MAX_HELD_BYTES: usize = 64 << 20;

/// The most interfaces the streams of one merge may describe together.
pub const MAX_INTERFACES: usize = 4096;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const ISB: u32 = 5;
const EPB: u32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("the stream of {label} is malformed: {what}")]
    Malformed { label: String, what: &'static str },
}

/// The comment of an ISB the merge writes for an interface whose stream
/// ended without its statistics.
pub const NO_STATISTICS: &str = "netshim merge: the capture ended without its statistics \
     (it was killed: its pod went away or its node was lost); packets written only";

/// Counters of one merged interface, from its stream's ISB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceReport {
    /// `LABEL/IFACE`.
    pub name: String,
    /// isb_ifrecv: packets the kernel passed the filter, dropped included.
    pub received: u64,
    /// isb_osdrop: dropped by the kernel for lack of ring space.
    pub dropped: u64,
    /// Packets of it written to the merged stream.
    pub written: u64,
    /// Whether its stream sent its statistics (an ISB) before it ended;
    /// without them (the capture was killed: its pod went away, its node
    /// was lost) the merge writes an ISB of what it knows, saying so.
    pub statistics: bool,
    /// The time stamp of its last packet written (ns since the epoch).
    pub last_ns: u64,
}

struct Stream {
    label: String,
    description: String,
    /// The stream's interface number to the merged one (per section).
    ids: Vec<u32>,
    /// Timestamp units per second of each of its interfaces.
    units: Vec<u64>,
    live: bool,
    isbs: Vec<(u32, Vec<u8>)>,
    /// Bytes of a block cut by the end of what was fed.
    partial: Vec<u8>,
}

/// The merge (see the module's comment). The caller feeds each stream's
/// bytes as they come, calls [`Merger::release`] now and then with the
/// wall clock, and [`Merger::finish`] at the end.
pub struct Merger {
    window_ns: u64,
    limit: Option<u64>,
    streams: Vec<Stream>,
    ifaces: Vec<IfaceReport>,
    /// One per merged interface: (timestamp, block), oldest first.
    queues: Vec<VecDeque<(u64, Vec<u8>)>>,
    held_bytes: usize,
    written: u64,
    last_ts: u64,
    late: u64,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The options of a block from `start` to its trailing length: (code, value).
fn options(b: &[u8], start: usize) -> Option<Vec<(u16, &[u8])>> {
    let end = b.len().checked_sub(4)?;
    let mut v = Vec::new();
    let mut o = start;
    while o + 4 <= end {
        let code = u16_at(b, o)?;
        let len = u16_at(b, o + 2)? as usize;
        if code == 0 {
            break;
        }
        if o + 4 + len > end {
            return None;
        }
        v.push((code, &b[o + 4..o + 4 + len]));
        o += 4 + len.div_ceil(4) * 4;
    }
    Some(v)
}

/// Timestamp units per second from `if_tsresol` (default microseconds).
fn units_of(tsresol: Option<u8>) -> Option<u64> {
    match tsresol {
        None => Some(1_000_000),
        Some(r) if r & 0x80 == 0 => 10u64.checked_pow(u32::from(r)),
        Some(r) => 1u64.checked_shl(u32::from(r & 0x7f)),
    }
}

impl Merger {
    /// A merge holding packets up to `window`, writing at most `limit`.
    pub fn new(window: Duration, limit: Option<u64>) -> Merger {
        Merger {
            window_ns: window.as_nanos() as u64,
            limit,
            streams: Vec::new(),
            ifaces: Vec::new(),
            queues: Vec::new(),
            held_bytes: 0,
            written: 0,
            last_ts: 0,
            late: 0,
        }
    }

    /// The merged section's header.
    pub fn header(&self, out: &mut Output) {
        pcapng_shb(out.buf(), concat!("netshim ", env!("CARGO_PKG_VERSION")));
        out.end_block();
    }

    /// Adds a stream: `label` starts its interfaces' names, and
    /// `description` is their if_description.
    pub fn add_stream(&mut self, label: &str, description: &str) -> usize {
        self.streams.push(Stream {
            label: label.to_string(),
            description: description.to_string(),
            ids: Vec::new(),
            units: Vec::new(),
            live: true,
            isbs: Vec::new(),
            partial: Vec::new(),
        });
        self.streams.len() - 1
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Packets written out of order because they came later than the window.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Writes no packet past `n` written (a stop condition met elsewhere).
    pub fn limit_to(&mut self, n: u64) {
        self.limit = Some(self.limit.map_or(n, |l| l.min(n)));
    }

    pub fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|l| self.written >= l)
    }

    pub fn interfaces(&self) -> &[IfaceReport] {
        &self.ifaces
    }

    fn malformed(&mut self, s: usize, what: &'static str) -> MergeError {
        // Nothing more is taken from it.
        self.streams[s].live = false;
        MergeError::Malformed {
            label: self.streams[s].label.clone(),
            what,
        }
    }

    /// Takes the next bytes of stream `s`, cut anywhere: every whole block
    /// among them is fed, the rest kept for the next call.
    pub fn feed_bytes(
        &mut self,
        s: usize,
        bytes: &[u8],
        out: &mut Output,
    ) -> Result<(), MergeError> {
        if !self.streams[s].live {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.streams[s].partial);
        buf.extend_from_slice(bytes);
        let mut o = 0;
        while let Some(len) = u32_at(&buf, o + 4) {
            let len = len as usize;
            if len < 12 || !len.is_multiple_of(4) || len > crate::read::MAX_RECORD {
                return Err(self.malformed(s, "a block with a bad length"));
            }
            if o + len > buf.len() {
                break;
            }
            if !self.streams[s].live {
                return Ok(());
            }
            self.feed(s, &buf[o..o + len], out)?;
            o += len;
        }
        buf.drain(..o);
        self.streams[s].partial = buf;
        Ok(())
    }

    /// Takes one whole block of stream `s`: interfaces are announced at
    /// once, packets held for ordering, statistics kept for the end.
    pub fn feed(&mut self, s: usize, b: &[u8], out: &mut Output) -> Result<(), MergeError> {
        if !self.streams[s].live {
            return Ok(());
        }
        if b.len() < 12
            || u32_at(b, 4) != Some(b.len() as u32)
            || u32_at(b, b.len() - 4) != u32_at(b, 4)
        {
            return Err(self.malformed(s, "a block whose lengths disagree"));
        }
        match u32_at(b, 0).unwrap_or(0) {
            SHB => {
                if u32_at(b, 8) != Some(0x1A2B_3C4D) {
                    return Err(self.malformed(s, "not a little-endian pcapng section"));
                }
                // A new section starts its interface numbers again.
                self.streams[s].ids.clear();
                self.streams[s].units.clear();
            }
            IDB => self.interface(s, b, out)?,
            EPB => self.packet(s, b, out)?,
            ISB => self.statistics(s, b)?,
            // Other blocks (name resolution, custom) are not carried over.
            _ => {}
        }
        Ok(())
    }

    fn interface(&mut self, s: usize, b: &[u8], out: &mut Output) -> Result<(), MergeError> {
        let (Some(linktype), Some(snaplen)) = (u16_at(b, 8), u32_at(b, 12)) else {
            return Err(self.malformed(s, "a short IDB"));
        };
        let Some(opts) = options(b, 16) else {
            return Err(self.malformed(s, "an IDB with bad options"));
        };
        let tsresol = opts
            .iter()
            .find(|(c, _)| *c == 9)
            .and_then(|(_, v)| v.first());
        let Some(units) = units_of(tsresol.copied()) else {
            return Err(self.malformed(s, "an IDB with a bad if_tsresol"));
        };
        if self.ifaces.len() >= MAX_INTERFACES {
            return Err(self.malformed(s, "more interfaces than a merge takes"));
        }
        let st = &mut self.streams[s];
        let name = opts
            .iter()
            .find(|(c, _)| *c == 2)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| format!("if{}", st.ids.len()));
        let merged_name = format!("{}/{}", st.label, name);
        let id = self.ifaces.len() as u32;
        st.ids.push(id);
        st.units.push(units);
        block(out.buf(), IDB, |o| {
            o.extend_from_slice(&linktype.to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes());
            o.extend_from_slice(&snaplen.to_le_bytes());
            option(o, 2, merged_name.as_bytes()); // if_name
            option(o, 3, st.description.as_bytes()); // if_description
            for (code, val) in &opts {
                if *code != 2 && *code != 3 {
                    option(o, *code, val);
                }
            }
            option(o, 0, &[]);
        });
        out.end_block();
        self.queues.push(VecDeque::new());
        self.ifaces.push(IfaceReport {
            name: merged_name,
            ..IfaceReport::default()
        });
        Ok(())
    }

    fn packet(&mut self, s: usize, b: &[u8], out: &mut Output) -> Result<(), MergeError> {
        let (Some(local), Some(hi), Some(lo), Some(caplen)) =
            (u32_at(b, 8), u32_at(b, 12), u32_at(b, 16), u32_at(b, 20))
        else {
            return Err(self.malformed(s, "a short EPB"));
        };
        if b.len() < 32 || caplen as usize > b.len() - 32 {
            return Err(self.malformed(s, "a packet longer than its block"));
        }
        let st = &self.streams[s];
        let (Some(&id), Some(&units)) = (st.ids.get(local as usize), st.units.get(local as usize))
        else {
            return Err(self.malformed(s, "a packet of an interface it did not describe"));
        };
        let raw = (u64::from(hi) << 32) | u64::from(lo);
        let ts_ns = (u128::from(raw) * 1_000_000_000 / u128::from(units.max(1)))
            .min(u128::from(u64::MAX)) as u64;
        if self.limit_reached() {
            return Ok(());
        }
        let mut blk = b.to_vec();
        blk[8..12].copy_from_slice(&id.to_le_bytes());
        if ts_ns < self.last_ts {
            // Later than the window: a later packet is already out.
            self.late += 1;
            self.write(id, ts_ns, &blk, out);
            return Ok(());
        }
        self.held_bytes += blk.len();
        self.queues[id as usize].push_back((ts_ns, blk));
        while self.held_bytes > MAX_HELD_BYTES {
            self.pop_one(out);
        }
        Ok(())
    }

    fn statistics(&mut self, s: usize, b: &[u8]) -> Result<(), MergeError> {
        let Some(local) = u32_at(b, 8) else {
            return Err(self.malformed(s, "a short ISB"));
        };
        let Some(&id) = self.streams[s].ids.get(local as usize) else {
            return Err(self.malformed(s, "statistics of an interface it did not describe"));
        };
        let Some(opts) = options(b, 20) else {
            return Err(self.malformed(s, "an ISB with bad options"));
        };
        let get = |code: u16| {
            opts.iter()
                .find(|(c, _)| *c == code)
                .and_then(|(_, v)| u64_at(v, 0))
        };
        let r = &mut self.ifaces[id as usize];
        r.statistics = true;
        r.received = get(4).unwrap_or(r.received);
        r.dropped = get(7).unwrap_or(r.dropped);
        let mut blk = b.to_vec();
        blk[8..12].copy_from_slice(&id.to_le_bytes());
        let isbs = &mut self.streams[s].isbs;
        isbs.retain(|(i, _)| *i != id);
        isbs.push((id, blk));
        Ok(())
    }

    /// Writes a packet's block (its interface number already merged).
    fn write(&mut self, id: u32, ts_ns: u64, blk: &[u8], out: &mut Output) {
        if self.limit_reached() {
            return;
        }
        out.buf().extend_from_slice(blk);
        out.end_packet();
        self.written += 1;
        let r = &mut self.ifaces[id as usize];
        r.written += 1;
        r.last_ns = r.last_ns.max(ts_ns);
    }

    /// Time stamp units per second of merged interface `id`.
    fn units_of_iface(&self, id: u32) -> u64 {
        self.streams
            .iter()
            .find_map(|st| {
                let k = st.ids.iter().position(|i| *i == id)?;
                st.units.get(k).copied()
            })
            .unwrap_or(1_000_000_000)
    }

    /// The interface whose oldest held packet is the oldest of all.
    fn oldest_queue(&self) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (i, q) in self.queues.iter().enumerate() {
            if let Some((ts, _)) = q.front() {
                if best.is_none_or(|(_, b)| *ts < b) {
                    best = Some((i, *ts));
                }
            }
        }
        best
    }

    fn pop_one(&mut self, out: &mut Output) {
        let Some((i, ts)) = self.oldest_queue() else {
            return;
        };
        self.last_ts = self.last_ts.max(ts);
        let Some((_, blk)) = self.queues[i].pop_front() else {
            return;
        };
        self.held_bytes -= blk.len();
        self.write(i as u32, ts, &blk, out);
    }

    /// Stream `s` has ended; an error when it ended inside a block.
    pub fn end_stream(&mut self, s: usize) -> Result<(), MergeError> {
        let cut = !self.streams[s].partial.is_empty() && self.streams[s].live;
        self.streams[s].live = false;
        self.streams[s].partial = Vec::new();
        if cut {
            return Err(MergeError::Malformed {
                label: self.streams[s].label.clone(),
                what: "it ends inside a block",
            });
        }
        Ok(())
    }

    /// Writes the packets older than the window at `now_ns` (all of them
    /// once no stream is live).
    pub fn release(&mut self, now_ns: u64, out: &mut Output) {
        let bound = if self.streams.iter().any(|s| s.live) {
            now_ns.saturating_sub(self.window_ns)
        } else {
            u64::MAX
        };
        while let Some((_, ts)) = self.oldest_queue() {
            if ts > bound {
                break;
            }
            self.pop_one(out);
        }
    }

    /// The oldest held packet's timestamp.
    pub fn oldest(&self) -> Option<u64> {
        self.oldest_queue().map(|(_, ts)| ts)
    }

    /// Writes every held packet, then every interface's statistics: its
    /// stream's ISB, or, for an interface whose stream ended without one,
    /// an ISB of what the merge knows (the packets written, the last time
    /// stamp) with a comment saying the capture's own counts are missing.
    pub fn finish(&mut self, out: &mut Output) {
        while self.oldest_queue().is_some() {
            self.pop_one(out);
        }
        for st in &self.streams {
            for (_, isb) in &st.isbs {
                out.buf().extend_from_slice(isb);
                out.end_block();
            }
        }
        for id in 0..self.ifaces.len() as u32 {
            let r = &self.ifaces[id as usize];
            if r.statistics {
                continue;
            }
            let units = u128::from(self.units_of_iface(id));
            let end = (u128::from(r.last_ns) * units / 1_000_000_000).min(u128::from(u64::MAX));
            let end = end as u64;
            let written = r.written;
            block(out.buf(), ISB, |o| {
                o.extend_from_slice(&id.to_le_bytes());
                o.extend_from_slice(&((end >> 32) as u32).to_le_bytes());
                o.extend_from_slice(&(end as u32).to_le_bytes());
                option(o, 1, NO_STATISTICS.as_bytes()); // opt_comment
                option(o, 8, &written.to_le_bytes()); // isb_usrdeliv
                option(o, 0, &[]);
            });
            out.end_block();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{pcapng_epb, pcapng_idb, pcapng_isb, IfaceCounters, Packet};
    use crate::read::Reader;
    use std::fs::File;

    fn epb(iface: u32, ts: u64) -> Vec<u8> {
        let mut b = Vec::new();
        let data = [0u8; 60];
        pcapng_epb(
            &mut b,
            iface,
            &Packet {
                ts_ns: ts,
                ifindex: 1,
                hatype: 1,
                pkttype: 0,
                data: &data,
                orig_len: 60,
            },
        );
        b
    }

    /// An engine's stream, block by block: SHB, IDBs, EPBs, ISBs.
    fn engine_stream(ifaces: &[&str], packets: &[(u32, u64)]) -> Vec<Vec<u8>> {
        let mut blocks = Vec::new();
        let mut b = Vec::new();
        pcapng_shb(&mut b, "engine");
        blocks.push(std::mem::take(&mut b));
        for name in ifaces {
            pcapng_idb(&mut b, 1, 65535, name, Some("udp"));
            blocks.push(std::mem::take(&mut b));
        }
        for (i, ts) in packets {
            blocks.push(epb(*i, *ts));
        }
        for i in 0..ifaces.len() {
            let c = IfaceCounters {
                received: 7,
                dropped: 1,
                delivered: 6,
            };
            pcapng_isb(&mut b, i as u32, 1, 2, &c);
            blocks.push(std::mem::take(&mut b));
        }
        blocks
    }

    fn read_back(f: &mut File) -> Vec<(String, u64)> {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        let mut r = Reader::new(f).unwrap();
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push((rec.info.name.clone().unwrap(), rec.ts_ns));
        }
        v
    }

    fn merger(window_ms: u64, limit: Option<u64>) -> (Merger, Output, File) {
        let file = tempfile::tempfile().unwrap();
        let out = Output::new(file.try_clone().unwrap()).unwrap();
        let m = Merger::new(Duration::from_millis(window_ms), limit);
        (m, out, file)
    }

    /// Two streams fed out of step come out in timestamp order, each packet
    /// on its stream's interface, with the statistics at the end.
    #[test]
    fn streams_merge_in_timestamp_order_with_their_interfaces_named() {
        let (mut m, mut out, mut f) = merger(100, None);
        m.header(&mut out);
        let a = m.add_stream("pod/a", "pod a");
        let b = m.add_stream("pod/web", "pod web");
        let sa = engine_stream(&["eth0", "lo"], &[(0, 1_000), (1, 3_000), (0, 5_000)]);
        let sb = engine_stream(&["eth0"], &[(0, 2_000), (0, 4_000), (0, 6_000)]);
        for blk in &sa[..sa.len() - 2] {
            m.feed(a, blk, &mut out).unwrap();
        }
        for blk in &sb[..sb.len() - 1] {
            m.feed(b, blk, &mut out).unwrap();
        }
        // 100 ms after 3,500 ns: the packets before it are due.
        m.release(100_000_000 + 3_500, &mut out);
        assert_eq!(m.written(), 3, "only packets older than the window");
        for blk in &sa[sa.len() - 2..] {
            m.feed(a, blk, &mut out).unwrap();
        }
        m.feed(b, &sb[sb.len() - 1], &mut out).unwrap();
        m.end_stream(a).unwrap();
        m.end_stream(b).unwrap();
        m.release(0, &mut out);
        m.finish(&mut out);
        out.finish().unwrap();
        let want: Vec<(String, u64)> = [
            ("pod/a/eth0", 1_000),
            ("pod/web/eth0", 2_000),
            ("pod/a/lo", 3_000),
            ("pod/web/eth0", 4_000),
            ("pod/a/eth0", 5_000),
            ("pod/web/eth0", 6_000),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), *t))
        .collect();
        assert_eq!(read_back(&mut f), want);
        assert_eq!(m.late(), 0);
        let r = m.interfaces();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].received, r[0].dropped, r[0].written), (8, 1, 2));
        assert_eq!(r[2].name, "pod/web/eth0");
    }

    /// A packet that comes after a later one was written is written at
    /// once and counted, never dropped; the count limit holds.
    #[test]
    fn a_late_packet_is_kept_and_counted_and_the_limit_holds() {
        let (mut m, mut out, mut f) = merger(1, Some(3));
        m.header(&mut out);
        let a = m.add_stream("a", "");
        let b = m.add_stream("b", "");
        let sa = engine_stream(&["eth0"], &[(0, 10_000_000), (0, 30_000_000)]);
        let sb = engine_stream(&["eth0"], &[(0, 5_000_000), (0, 40_000_000)]);
        for blk in &sa[..3] {
            m.feed(a, blk, &mut out).unwrap();
        }
        m.release(20_000_000, &mut out);
        for blk in &sb[..3] {
            m.feed(b, blk, &mut out).unwrap();
        }
        assert_eq!(m.late(), 1);
        m.feed(a, &sa[3], &mut out).unwrap();
        m.feed(b, &sb[3], &mut out).unwrap();
        m.end_stream(a).unwrap();
        m.end_stream(b).unwrap();
        m.release(0, &mut out);
        m.finish(&mut out);
        out.finish().unwrap();
        assert!(m.limit_reached());
        let ts: Vec<u64> = read_back(&mut f).into_iter().map(|(_, t)| t).collect();
        assert_eq!(ts, [10_000_000, 5_000_000, 30_000_000]);
    }

    /// Bytes cut anywhere merge as the whole blocks do.
    #[test]
    fn bytes_cut_anywhere_merge_as_whole_blocks() {
        let s = engine_stream(&["eth0"], &[(0, 1), (0, 2), (0, 3)]).concat();
        for cut in [1, 3, 7, 13, 64, 4096] {
            let (mut m, mut out, mut f) = merger(0, None);
            m.header(&mut out);
            let a = m.add_stream("a", "");
            for c in s.chunks(cut) {
                m.feed_bytes(a, c, &mut out).unwrap();
            }
            m.end_stream(a).unwrap();
            m.finish(&mut out);
            out.finish().unwrap();
            let ts: Vec<u64> = read_back(&mut f).into_iter().map(|(_, t)| t).collect();
            assert_eq!(ts, [1, 2, 3], "cut {cut}");
        }
    }

    /// Each kind of hostile stream is refused with its label and what is
    /// wrong, the stream is dropped, and the other stream goes on.
    #[test]
    fn hostile_streams_are_refused_with_their_label() {
        let shb = engine_stream(&[], &[])[0].clone();
        let idb = engine_stream(&["eth0"], &[])[1].clone();
        let mut big_endian = shb.clone();
        big_endian[8..12].copy_from_slice(&0x1A2B_3C4Du32.to_be_bytes());
        let mut long_packet = epb(0, 1);
        long_packet[20..24].copy_from_slice(&1000u32.to_le_bytes());
        let mut bad_resol = Vec::new();
        block(&mut bad_resol, IDB, |o| {
            o.extend_from_slice(&[1, 0, 0, 0, 0xff, 0xff, 0, 0]);
            option(o, 9, &[60]);
            option(o, 0, &[]);
        });
        let mut bad_option = idb.clone();
        // if_name's length past the block's end.
        bad_option[18..20].copy_from_slice(&0xfff0u16.to_le_bytes());
        let mut lengths_disagree = epb(0, 1);
        let n = lengths_disagree.len();
        lengths_disagree[n - 4..].copy_from_slice(&8u32.to_le_bytes());
        let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
            (vec![big_endian], "little-endian"),
            (
                vec![shb.clone(), idb.clone(), long_packet],
                "longer than its block",
            ),
            (vec![shb.clone(), epb(3, 1)], "did not describe"),
            (vec![shb.clone(), bad_resol], "if_tsresol"),
            (vec![shb.clone(), bad_option], "bad options"),
            (vec![shb.clone(), idb.clone(), lengths_disagree], "disagree"),
            (
                vec![shb.clone(), vec![6, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]],
                "bad length",
            ),
            (
                vec![shb.clone(), vec![6, 0, 0, 0, 13, 0, 0, 0]],
                "bad length",
            ),
        ];
        for (blocks, want) in cases {
            let (mut m, mut out, mut f) = merger(0, None);
            m.header(&mut out);
            let bad = m.add_stream("pod/evil", "");
            let good = m.add_stream("pod/good", "");
            let e = blocks
                .iter()
                .try_for_each(|b| m.feed_bytes(bad, b, &mut out))
                .unwrap_err()
                .to_string();
            assert!(e.contains("pod/evil") && e.contains(want), "{want}: {e}");
            // The refused stream takes nothing more; the other goes on.
            m.feed_bytes(bad, &epb(0, 1), &mut out).unwrap();
            for b in engine_stream(&["eth0"], &[(0, 7)]) {
                m.feed_bytes(good, &b, &mut out).unwrap();
            }
            m.end_stream(bad).unwrap();
            m.end_stream(good).unwrap();
            m.finish(&mut out);
            out.finish().unwrap();
            assert_eq!(read_back(&mut f), [("pod/good/eth0".to_string(), 7)]);
        }
        // A stream that ends inside a block.
        let (mut m, mut out, _f) = merger(0, None);
        let a = m.add_stream("pod/cut", "");
        m.feed_bytes(a, &shb[..10], &mut out).unwrap();
        let e = m.end_stream(a).unwrap_err().to_string();
        assert!(e.contains("pod/cut") && e.contains("inside a block"), "{e}");
    }

    /// A stream that describes interfaces without end is cut off at
    /// MAX_INTERFACES; one that floods packets is written past
    /// MAX_HELD_BYTES instead of held.
    #[test]
    fn what_a_stream_makes_the_merge_hold_is_bounded() {
        let (mut m, mut out, _f) = merger(0, None);
        let a = m.add_stream("pod/many", "");
        let idb = engine_stream(&["eth0"], &[])[1].clone();
        m.feed(a, &engine_stream(&[], &[])[0], &mut out).unwrap();
        let mut fed = 0;
        let e = loop {
            match m.feed(a, &idb, &mut out) {
                Ok(()) => fed += 1,
                Err(e) => break e.to_string(),
            }
            out.discard();
        };
        assert_eq!(fed, MAX_INTERFACES);
        assert!(e.contains("more interfaces"), "{e}");

        let (mut m, mut out, _f) = merger(3_600_000, None);
        let a = m.add_stream("pod/flood", "");
        for b in engine_stream(&["eth0"], &[]) {
            m.feed(a, &b, &mut out).unwrap();
        }
        let one = epb(0, 1).len();
        let n = MAX_HELD_BYTES / one + 100;
        for k in 0..n {
            m.feed(a, &epb(0, k as u64), &mut out).unwrap();
            if out.wants_flush() {
                out.discard();
            }
        }
        assert!(m.held_bytes <= MAX_HELD_BYTES);
        assert!(m.written() >= 100, "{}", m.written());
        assert_eq!(m.late(), 0);
    }

    /// A stream that ends without its statistics (its capture killed with
    /// its pod) gets an ISB of what the merge knows, with a comment; the
    /// other stream's own ISB is kept as it came.
    #[test]
    fn a_stream_ended_without_statistics_gets_them_from_the_merge() {
        let (mut m, mut out, mut f) = merger(1, None);
        m.header(&mut out);
        let a = m.add_stream("pod/a", "");
        let gone = m.add_stream("pod/gone", "");
        for blk in engine_stream(&["eth0"], &[(0, 1_000), (0, 2_000)]) {
            m.feed(a, &blk, &mut out).unwrap();
        }
        let cut = engine_stream(&["eth0", "lo"], &[(0, 1_500), (1, 2_500), (1, 3_500)]);
        // SHB, two IDBs, three EPBs: no ISB.
        for blk in &cut[..6] {
            m.feed(gone, blk, &mut out).unwrap();
        }
        m.end_stream(a).unwrap();
        m.end_stream(gone).unwrap();
        m.release(0, &mut out);
        m.finish(&mut out);
        out.finish().unwrap();
        let r = m.interfaces();
        assert!(r[0].statistics && !r[1].statistics && !r[2].statistics);
        assert_eq!((r[2].written, r[2].last_ns), (2, 3_500));
        assert_eq!(read_back(&mut f).len(), 5);
        use std::io::{Read, Seek};
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        // Walk the blocks: the ISBs, by merged interface.
        let mut isbs = Vec::new();
        let mut o = 0;
        while o + 12 <= bytes.len() {
            let len = u32_at(&bytes, o + 4).unwrap() as usize;
            if u32_at(&bytes, o) == Some(ISB) {
                let b = &bytes[o..o + len];
                let opts: Vec<(u16, Vec<u8>)> = options(b, 20)
                    .unwrap()
                    .into_iter()
                    .map(|(c, v)| (c, v.to_vec()))
                    .collect();
                isbs.push((u32_at(b, 8).unwrap(), opts));
            }
            o += len;
        }
        assert_eq!(isbs.len(), 3, "{isbs:?}");
        let (id, opts) = &isbs[0];
        assert_eq!(*id, 0);
        assert!(
            opts.iter().all(|(c, _)| *c != 1),
            "a stream's own ISB has no comment"
        );
        for (k, (id, opts)) in isbs[1..].iter().enumerate() {
            assert_eq!(*id, k as u32 + 1);
            let get = |code| {
                opts.iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get(1).unwrap(), NO_STATISTICS.as_bytes());
            let deliv = u64::from_le_bytes(get(8).unwrap()[..8].try_into().unwrap());
            assert_eq!(deliv, [1, 2][k]);
            assert!(get(4).is_none(), "no received count is made up");
        }
    }

    /// Random edits of valid streams: never a panic, and whatever comes out
    /// is a pcapng file the reader takes, every record whole.
    #[test]
    fn mutated_streams_never_break_the_merge() {
        let base = engine_stream(&["eth0", "lo"], &[(0, 5), (1, 3), (0, 9)]).concat();
        let mut rng = crate::fuzzing::Rng(0x005e_ed0f_3e43);
        for _ in 0..2000 {
            crate::fuzzing::merge(&rng.mutate(&base));
        }
    }
}
