//! One capture of several targets: the pcapng streams of several engines
//! (one per target, each in its own network namespace) merged into one
//! pcapng stream in timestamp order.
//!
//! Each engine's interfaces become interfaces of the merged section: their
//! IDBs are rewritten with `if_name` `TARGET/IFACE` and an `if_description`
//! naming the target, every EPB and ISB gets the merged interface number,
//! and the ISBs are written once, at the end.
//!
//! **The reorder window.** A packet is held until its timestamp is
//! [`Merger::window`] older than the wall clock, so that a packet of another
//! target captured earlier, still on its way through that target's engine
//! (its ring's block timer, its pipe), can be written before it. A packet
//! that arrives after a later one has already been written — later than the
//! window — is written at once, out of order, and counted
//! ([`Merger::late`]): nothing is dropped for lateness. When every stream
//! has ended, whatever is held is written in order. Memory is bounded: past
//! [`MAX_HELD_BYTES`] held, the oldest packet is written at once.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::format::{block, option, pcapng_shb};
use crate::output::{Output, OutputError};

/// The default reorder window.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(200);

/// The most packet bytes held for reordering before the oldest is written
/// regardless of the window.
pub const MAX_HELD_BYTES: usize = 64 << 20;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const ISB: u32 = 5;
const EPB: u32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("the engine's stream of {target} is malformed: {what}")]
    Malformed { target: String, what: String },
    #[error("reading the engine's stream of {target}: {source}")]
    Read {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Counters of one merged interface, from its engine's ISB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceReport {
    /// `TARGET/IFACE`.
    pub name: String,
    /// isb_ifrecv: packets the kernel passed the filter, dropped included.
    pub received: u64,
    /// isb_osdrop: dropped by the kernel for lack of ring space.
    pub dropped: u64,
    /// Packets of it written to the merged stream.
    pub written: u64,
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
    /// Every packet of the stream stamped before this has arrived (its
    /// engine's last progress block).
    complete_until: u64,
}

/// The packets of one interface waiting for the window, oldest first. An
/// engine's ring delivers an interface's packets in time order, so merging
/// means picking, among the interfaces, the queue whose first packet is
/// oldest: a few comparisons per packet, where one heap over every held
/// packet (100,000 at full rate in a 200 ms window) costs cache misses.
/// A packet stays where the stream's reader put it (a shared chunk of
/// whole blocks): it is copied once, into the output.
#[derive(Default)]
struct Queue {
    /// (timestamp, the chunk, offset and length of its block).
    items: std::collections::VecDeque<(u64, Rc<Vec<u8>>, u32, u32)>,
}

impl Queue {
    fn head(&self) -> Option<u64> {
        self.items.front().map(|i| i.0)
    }

    /// Copies the oldest packet into `out`; its length.
    fn pop_into(&mut self, out: &mut Vec<u8>) -> usize {
        let Some((_, chunk, off, len)) = self.items.pop_front() else {
            return 0;
        };
        let (off, len) = (off as usize, len as usize);
        out.extend_from_slice(&chunk[off..off + len]);
        len
    }
}

/// The merge, without its inputs and outputs (see [`run`]).
pub struct Merger {
    window_ns: u64,
    limit: Option<u64>,
    streams: Vec<Stream>,
    ifaces: Vec<IfaceReport>,
    /// One per merged interface.
    queues: Vec<Queue>,
    held_bytes: usize,
    written: u64,
    last_ts: u64,
    late: u64,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
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
        let val = b.get(o + 4..o + 4 + len)?;
        if o + 4 + len > end {
            return None;
        }
        v.push((code, val));
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

/// The wall clock, in nanoseconds since the epoch (packet time stamps are
/// the kernel's CLOCK_REALTIME).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
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

    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns)
    }

    /// The merged section's header.
    pub fn header(&self, out: &mut Output) {
        pcapng_shb(out.buf(), concat!("netshim ", env!("CARGO_PKG_VERSION")));
        out.end_block();
    }

    /// Adds a target's stream: `label` starts its interfaces' names, and
    /// `description` is their if_description.
    pub fn add_stream(&mut self, label: &str, description: &str) -> usize {
        self.streams.push(Stream {
            label: label.to_string(),
            description: description.to_string(),
            ids: Vec::new(),
            units: Vec::new(),
            live: true,
            isbs: Vec::new(),
            complete_until: 0,
        });
        self.streams.len() - 1
    }

    /// Packets written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Packets written out of order because they came later than the window.
    pub fn late(&self) -> u64 {
        self.late
    }

    pub fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|l| self.written >= l)
    }

    pub fn interfaces(&self) -> &[IfaceReport] {
        &self.ifaces
    }

    pub fn live_streams(&self) -> usize {
        self.streams.iter().filter(|s| s.live).count()
    }

    /// Takes one block of stream `s`: interfaces are announced at once,
    /// packets held for ordering, statistics kept for the end.
    pub fn feed(&mut self, s: usize, b: &[u8], out: &mut Output) -> Result<(), MergeError> {
        let len = b.len();
        self.feed_in(s, &Rc::new(b.to_vec()), 0, len, out)
    }

    /// [`Merger::feed`] of the block at `off..off + len` of a chunk the
    /// merge keeps (no copy while the packet waits).
    fn feed_in(
        &mut self,
        s: usize,
        chunk: &Rc<Vec<u8>>,
        off: usize,
        len: usize,
        out: &mut Output,
    ) -> Result<(), MergeError> {
        let b = &chunk[off..off + len];
        let kind =
            u32_at(b, 0).ok_or_else(|| self.malformed(s, "a block shorter than its header"))?;
        match kind {
            SHB => {
                if u32_at(b, 8) != Some(0x1A2B_3C4D) {
                    return Err(self.malformed(s, "not a little-endian pcapng section"));
                }
                // A new section starts its interface numbers again.
                self.streams[s].ids.clear();
                self.streams[s].units.clear();
            }
            IDB => {
                let linktype = u16_at(b, 8).ok_or_else(|| self.malformed(s, "a short IDB"))?;
                let snaplen = u32_at(b, 12).ok_or_else(|| self.malformed(s, "a short IDB"))?;
                let opts =
                    options(b, 16).ok_or_else(|| self.malformed(s, "an IDB with bad options"))?;
                let name = opts
                    .iter()
                    .find(|(c, _)| *c == 2)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_else(|| format!("if{}", self.streams[s].ids.len()));
                let tsresol = opts
                    .iter()
                    .find(|(c, _)| *c == 9)
                    .and_then(|(_, v)| v.first());
                let units = units_of(tsresol.copied())
                    .ok_or_else(|| self.malformed(s, "an IDB with a bad if_tsresol"))?;
                let id = self.ifaces.len() as u32;
                let st = &mut self.streams[s];
                let merged_name = format!("{}/{}", st.label, name);
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
                self.queues.push(Queue::default());
                self.ifaces.push(IfaceReport {
                    name: merged_name,
                    ..IfaceReport::default()
                });
            }
            EPB => {
                let local = u32_at(b, 8).ok_or_else(|| self.malformed(s, "a short EPB"))? as usize;
                let (Some(hi), Some(lo)) = (u32_at(b, 12), u32_at(b, 16)) else {
                    return Err(self.malformed(s, "a short EPB"));
                };
                let st = &self.streams[s];
                let (Some(&id), Some(&units)) = (st.ids.get(local), st.units.get(local)) else {
                    return Err(self.malformed(s, "a packet of an interface it did not describe"));
                };
                let raw = (u64::from(hi) << 32) | u64::from(lo);
                let ts_ns = if units == 1_000_000_000 {
                    raw
                } else {
                    (u128::from(raw) * 1_000_000_000 / u128::from(units)) as u64
                };
                if self.limit_reached() {
                    return Ok(());
                }
                if ts_ns < self.last_ts {
                    // Later than the window: a later packet is already out.
                    self.late += 1;
                    self.write_block(id, b, out);
                    return Ok(());
                }
                self.held_bytes += b.len();
                self.queues[id as usize].items.push_back((
                    ts_ns,
                    Rc::clone(chunk),
                    off as u32,
                    len as u32,
                ));
                while self.held_bytes > MAX_HELD_BYTES {
                    self.pop_one(out);
                }
            }
            ISB => {
                let local = u32_at(b, 8).ok_or_else(|| self.malformed(s, "a short ISB"))? as usize;
                let Some(&id) = self.streams[s].ids.get(local) else {
                    return Err(self.malformed(s, "statistics of an interface it did not describe"));
                };
                let opts =
                    options(b, 20).ok_or_else(|| self.malformed(s, "an ISB with bad options"))?;
                let get = |code: u16| {
                    opts.iter()
                        .find(|(c, _)| *c == code)
                        .and_then(|(_, v)| u64_at(v, 0))
                };
                let r = &mut self.ifaces[id as usize];
                r.received = get(4).unwrap_or(r.received);
                r.dropped = get(7).unwrap_or(r.dropped);
                let mut blk = b.to_vec();
                blk[8..12].copy_from_slice(&id.to_le_bytes());
                let isbs = &mut self.streams[s].isbs;
                isbs.retain(|(i, _)| *i != id);
                isbs.push((id, blk));
            }
            crate::format::PROGRESS_BLOCK => {
                if let Some(t) = u64_at(b, 12) {
                    let st = &mut self.streams[s];
                    st.complete_until = st.complete_until.max(t);
                }
            }
            // Other blocks (name resolution, custom) are not carried over.
            _ => {}
        }
        Ok(())
    }

    fn malformed(&self, s: usize, what: &str) -> MergeError {
        MergeError::Malformed {
            target: self.streams[s].label.clone(),
            what: what.to_string(),
        }
    }

    /// Writes a packet's block with the merged interface number.
    fn write_block(&mut self, id: u32, blk: &[u8], out: &mut Output) {
        if self.limit_reached() {
            return;
        }
        let buf = out.buf();
        let at = buf.len();
        buf.extend_from_slice(blk);
        buf[at + 8..at + 12].copy_from_slice(&id.to_le_bytes());
        out.end_packet();
        self.written += 1;
        self.ifaces[id as usize].written += 1;
    }

    /// The interface whose oldest held packet is the oldest of all.
    fn oldest_queue(&self) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (i, q) in self.queues.iter().enumerate() {
            if let Some(ts) = q.head() {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
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
        if self.limit_reached() {
            let mut sink = Vec::new();
            self.held_bytes -= self.queues[i].pop_into(&mut sink);
            return;
        }
        let buf = out.buf();
        let at = buf.len();
        let len = self.queues[i].pop_into(buf);
        buf[at + 8..at + 12].copy_from_slice(&(i as u32).to_le_bytes());
        out.end_packet();
        self.held_bytes -= len;
        self.written += 1;
        self.ifaces[i].written += 1;
    }

    /// Stream `s` has ended (its engine exited).
    pub fn end_stream(&mut self, s: usize) {
        self.streams[s].live = false;
    }

    /// Writes the packets that can no longer be preceded: those stamped
    /// before every live stream's progress, and those older than the
    /// window at `now_ns` (all of them once no stream is live).
    pub fn release(&mut self, now_ns: u64, out: &mut Output) {
        let complete = self
            .streams
            .iter()
            .filter(|s| s.live)
            .map(|s| s.complete_until)
            .min()
            .unwrap_or(u64::MAX);
        let bound = complete.max(now_ns.saturating_sub(self.window_ns));
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

    /// Writes every held packet, then every interface's statistics.
    pub fn finish(&mut self, out: &mut Output) {
        while self.held_bytes > 0 {
            self.pop_one(out);
        }
        for st in &self.streams {
            for (_, isb) in &st.isbs {
                out.buf().extend_from_slice(isb);
                out.end_block();
            }
        }
    }
}

/// One target's engine stream for [`run`].
pub struct Input {
    pub src: File,
    /// `docker:web`: its interfaces are named `docker:web/eth0`.
    pub label: String,
    /// What the target is (container name, ID, image…).
    pub description: String,
}

/// What [`run`] did.
#[derive(Debug, Default)]
pub struct MergeReport {
    pub written: u64,
    pub late: u64,
    pub interfaces: Vec<IfaceReport>,
    /// Targets whose stream was malformed or unreadable, with the reason.
    pub stream_errors: Vec<String>,
    /// Why the output stopped early.
    pub output_error: Option<OutputError>,
    /// Packets that reached the output (after a failed write, those the
    /// file holds once cut back to its last whole packet).
    pub packets_written: u64,
    /// Packets merged that never reached the output.
    pub packets_lost: u64,
}

/// The length of the whole blocks at the start of `b`, or why they are
/// not pcapng (the engine writes little-endian pcapng).
fn whole_blocks(b: &[u8]) -> Result<usize, &'static str> {
    let mut o = 0;
    while let Some(len) = u32_at(b, o + 4) {
        let len = len as usize;
        if len < 12 || !len.is_multiple_of(4) || len > crate::read::MAX_RECORD {
            return Err("a block with a bad length");
        }
        if o + len > b.len() {
            break;
        }
        o += len;
    }
    Ok(o)
}

/// What one read of an engine's stream gave.
enum Got {
    /// Whole pcapng blocks, back to back.
    Chunk(Vec<u8>),
    /// Nothing more for now (the pipe is empty).
    Nothing,
    /// The stream ended: cleanly, or why not.
    End(Option<String>),
}

/// One engine's stream, read without blocking by the merge's own thread.
/// (Reader threads cost a thread switch and a channel hand-over per chunk,
/// and wake-ups for every progress block, with nothing to gain: the merge
/// is one thread's work either way.)
struct StreamReader {
    src: File,
    /// Bytes read and not yet handed on: at most a block cut by a read's end.
    pending: Vec<u8>,
}

impl StreamReader {
    const READ: usize = 256 << 10;

    fn new(src: File) -> std::io::Result<StreamReader> {
        let fd = src.as_raw_fd();
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(StreamReader {
            src,
            pending: Vec::with_capacity(Self::READ),
        })
    }

    /// Reads until a whole block is in hand, the pipe is empty or the
    /// stream ends.
    fn read(&mut self) -> Got {
        loop {
            // Read straight into the chunk that is handed on (no second
            // copy); a block cut by the read's end moves to the next chunk.
            self.pending.reserve(Self::READ);
            let spare = self.pending.spare_capacity_mut();
            // SAFETY: read(2) writes at most spare.len() bytes into the
            // vector's spare capacity, and the length grows by what it wrote.
            let n =
                unsafe { libc::read(self.src.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted => continue,
                    std::io::ErrorKind::WouldBlock => return Got::Nothing,
                    _ => return Got::End(Some(e.to_string())),
                }
            }
            if n == 0 {
                return Got::End(
                    (!self.pending.is_empty()).then(|| "it ends inside a block".to_string()),
                );
            }
            // SAFETY: the first n bytes of the spare capacity were written.
            unsafe { self.pending.set_len(self.pending.len() + n as usize) };
            match whole_blocks(&self.pending) {
                Ok(0) => {}
                Ok(whole) => {
                    let chunk = if whole * 4 < self.pending.capacity() {
                        // A small chunk (a quiet stream) in a right-sized
                        // vector, so that held packets do not pin big
                        // buffers.
                        let c = self.pending[..whole].to_vec();
                        self.pending.drain(..whole);
                        c
                    } else {
                        let rest = self.pending.split_off(whole);
                        std::mem::replace(&mut self.pending, rest)
                    };
                    return Got::Chunk(chunk);
                }
                Err(why) => return Got::End(Some(why.to_string())),
            }
        }
    }
}

/// How [`run`] is told to stop, and tells its caller.
pub struct Control<'a> {
    /// Set (by a signal handler) to end the capture: `stop` is called and
    /// the streams are read to their ends.
    pub interrupted: &'a AtomicBool,
    /// Asks every engine to stop (the count was reached, the output failed
    /// or `interrupted` was set); called once.
    pub stop: &'a mut dyn FnMut(),
    /// After `stop`, how long to wait for the streams' ends (their
    /// statistics) before finishing without them.
    pub grace: Duration,
    /// Flush after every batch (a pipe to a live reader).
    pub low_latency: bool,
    /// [`Output::set_stall_timeout`] of the merged output.
    pub stall_timeout: Option<u32>,
}

/// Feeds a chunk of whole blocks of stream `i` to the merge; true when the
/// stream turned out malformed (its reason is in the report, the stream is
/// ended and the engines should be stopped). A stream already ended is
/// read on, so that its engine is not blocked while it stops, and ignored.
fn feed_chunk(
    m: &mut Merger,
    i: usize,
    chunk: Vec<u8>,
    out: &mut Output,
    report: &mut MergeReport,
) -> bool {
    let chunk = Rc::new(chunk);
    let mut o = 0;
    while o < chunk.len() {
        let len = u32_at(&chunk, o + 4).unwrap_or(0) as usize;
        let at = o;
        o += len;
        if !m.streams[i].live {
            return false;
        }
        if let Err(e) = m.feed_in(i, &chunk, at, len, out) {
            report.stream_errors.push(e.to_string());
            m.end_stream(i);
            return true;
        }
    }
    false
}

/// Merges the streams into `out` until every one has ended (or `stop` was
/// called and the grace time passed). It reads every input from the
/// calling thread (poll and non-blocking reads) and starts no thread.
pub fn run(
    inputs: Vec<Input>,
    out: File,
    window: Duration,
    limit: Option<u64>,
    ctl: Control,
) -> Result<MergeReport, MergeError> {
    let mut out = Output::new(out).map_err(|e| OutputError::Io {
        source: e,
        regular: false,
        committed: 0,
    })?;
    out.set_stall_timeout(ctl.stall_timeout)
        .map_err(|e| OutputError::Io {
            source: e,
            regular: false,
            committed: 0,
        })?;
    let mut m = Merger::new(window, limit);
    let mut report = MergeReport::default();
    m.header(&mut out);
    // One per stream, until its end was read.
    let mut readers: Vec<Option<StreamReader>> = Vec::new();
    for input in inputs {
        m.add_stream(&input.label, &input.description);
        let fd = input.src.as_raw_fd();
        tracing::debug!(target = %input.label, fd, "merging stream");
        let r = StreamReader::new(input.src).map_err(|source| MergeError::Read {
            target: input.label.clone(),
            source,
        })?;
        readers.push(Some(r));
    }
    let mut stopping: Option<Instant> = None;
    let stop = |ctl: &mut Control, stopping: &mut Option<Instant>| {
        if stopping.is_none() {
            (ctl.stop)();
            *stopping = Some(Instant::now());
        }
    };
    let mut ctl = ctl;
    let mut last_flush = Instant::now();
    while m.live_streams() > 0 {
        if ctl.interrupted.load(Ordering::Relaxed) || m.limit_reached() {
            stop(&mut ctl, &mut stopping);
        }
        if stopping.is_some_and(|t| t.elapsed() > ctl.grace) {
            tracing::warn!("engines did not end in time; finishing without their statistics");
            break;
        }
        // Wake at least every 50 ms, and when the oldest packet is due.
        let wait = m
            .oldest()
            .map(|ts| {
                let due = ts.saturating_add(m.window_ns);
                Duration::from_nanos(due.saturating_sub(now_ns()))
            })
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        let mut fds: Vec<(usize, libc::pollfd)> = readers
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.as_ref().map(|r| {
                    (
                        i,
                        libc::pollfd {
                            fd: r.src.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        },
                    )
                })
            })
            .collect();
        if fds.is_empty() {
            break;
        }
        let mut pfds: Vec<libc::pollfd> = fds.iter().map(|(_, p)| *p).collect();
        let ms = wait.as_micros().div_ceil(1000) as libc::c_int;
        // SAFETY: pfds is a live array of pfds.len() pollfd structs. A
        // signal (EINTR) just ends the wait: the loop looks at the flag.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n > 0 {
            for (f, p) in fds.iter_mut().zip(&pfds) {
                f.1.revents = p.revents;
            }
        } else {
            fds.clear();
        }
        for (i, p) in fds {
            if p.revents == 0 {
                continue;
            }
            // Up to 1 MiB of a busy stream per wake-up, then the others.
            for _ in 0..4 {
                let Some(r) = readers[i].as_mut() else { break };
                match r.read() {
                    Got::Nothing => break,
                    Got::End(why) => {
                        if let Some(why) = why {
                            report
                                .stream_errors
                                .push(format!("the stream of {}: {why}", m.streams[i].label));
                        }
                        m.end_stream(i);
                        readers[i] = None;
                        break;
                    }
                    Got::Chunk(chunk) => {
                        if feed_chunk(&mut m, i, chunk, &mut out, &mut report) {
                            // Its engine is stopped with the others.
                            stop(&mut ctl, &mut stopping);
                        }
                    }
                }
            }
        }
        m.release(now_ns(), &mut out);
        let due = ctl.low_latency || out.wants_flush() || last_flush.elapsed().as_secs() >= 1;
        if due && report.output_error.is_none() {
            if let Err(e) = out.flush() {
                report.output_error = Some(e);
                stop(&mut ctl, &mut stopping);
            }
            last_flush = Instant::now();
        }
        if report.output_error.is_some() {
            // Nothing more can be written; keep reading so that the
            // engines are not blocked on full pipes while they stop.
            out.discard();
        }
    }
    for i in 0..m.streams.len() {
        m.end_stream(i);
    }
    m.finish(&mut out);
    if report.output_error.is_none() {
        if let Err(e) = out.finish() {
            report.output_error = Some(e);
        }
    }
    // A stream whose engine did not end stays open until the process
    // exits (as its reader thread once kept it): closed now, the engine
    // would die of SIGPIPE while its runner is still waiting for it.
    for r in readers.into_iter().flatten() {
        std::mem::forget(r.src);
    }
    if report.output_error.is_some() {
        out.discard();
    }
    report.packets_written = out.packets();
    report.packets_lost = out.lost();
    report.written = m.written();
    report.late = m.late();
    report.interfaces = m.ifaces.clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{pcapng_epb, pcapng_idb, pcapng_isb, IfaceCounters, Packet};
    use crate::read::Reader;

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
            let data = [0u8; 60];
            pcapng_epb(
                &mut b,
                *i,
                &Packet {
                    ts_ns: *ts,
                    ifindex: 1,
                    hatype: 1,
                    pkttype: 0,
                    data: &data,
                    orig_len: 60,
                },
            );
            blocks.push(std::mem::take(&mut b));
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

    /// Two streams fed out of step come out in timestamp order, each packet
    /// on its target's interface, with the statistics at the end.
    #[test]
    fn streams_merge_in_timestamp_order_with_their_interfaces_named() {
        let file = tempfile::tempfile().unwrap();
        let mut out = Output::new(file.try_clone().unwrap()).unwrap();
        let mut m = Merger::new(Duration::from_millis(100), None);
        m.header(&mut out);
        let a = m.add_stream("netns:a", "named network namespace a");
        let b = m.add_stream("docker:web", "docker container web");
        let sa = engine_stream(&["eth0", "lo"], &[(0, 1_000), (1, 3_000), (0, 5_000)]);
        let sb = engine_stream(&["eth0"], &[(0, 2_000), (0, 4_000), (0, 6_000)]);
        // All of a's packets first, then all of b's: within the window.
        for blk in &sa[..sa.len() - 2] {
            m.feed(a, blk, &mut out).unwrap();
        }
        for blk in &sb[..sb.len() - 1] {
            m.feed(b, blk, &mut out).unwrap();
        }
        // 100 ms after the packets: all are due.
        m.release(100_000_000 + 3_500, &mut out);
        assert_eq!(m.written(), 3, "only packets older than the window");
        for blk in &sa[sa.len() - 2..] {
            m.feed(a, blk, &mut out).unwrap();
        }
        m.feed(b, &sb[sb.len() - 1], &mut out).unwrap();
        m.end_stream(a);
        m.end_stream(b);
        m.release(0, &mut out);
        m.finish(&mut out);
        out.finish().unwrap();
        let mut f = file;
        let got = read_back(&mut f);
        let want: Vec<(String, u64)> = [
            ("netns:a/eth0", 1_000),
            ("docker:web/eth0", 2_000),
            ("netns:a/lo", 3_000),
            ("docker:web/eth0", 4_000),
            ("netns:a/eth0", 5_000),
            ("docker:web/eth0", 6_000),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), *t))
        .collect();
        assert_eq!(got, want);
        assert_eq!(m.late(), 0);
        let r = m.interfaces();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].received, r[0].dropped, r[0].written), (8, 1, 2));
        assert_eq!(r[2].name, "docker:web/eth0");
    }

    /// A packet that comes after a later one was written is written at
    /// once and counted, never dropped; the count limit holds.
    #[test]
    fn a_late_packet_is_kept_and_counted_and_the_limit_holds() {
        let file = tempfile::tempfile().unwrap();
        let mut out = Output::new(file.try_clone().unwrap()).unwrap();
        let mut m = Merger::new(Duration::from_millis(1), Some(3));
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
        m.end_stream(a);
        m.end_stream(b);
        m.release(0, &mut out);
        m.finish(&mut out);
        out.finish().unwrap();
        assert!(m.limit_reached());
        let mut f = file;
        let ts: Vec<u64> = read_back(&mut f).into_iter().map(|(_, t)| t).collect();
        assert_eq!(ts, [10_000_000, 5_000_000, 30_000_000]);
    }

    /// Once every live stream says it is complete past a packet, the
    /// packet is written without waiting for the window; a stream that
    /// says nothing holds it for the window.
    #[test]
    fn progress_of_every_stream_releases_before_the_window() {
        use crate::format::pcapng_progress;
        let file = tempfile::tempfile().unwrap();
        let mut out = Output::new(file).unwrap();
        let mut m = Merger::new(Duration::from_secs(10), None);
        m.header(&mut out);
        let a = m.add_stream("a", "");
        let b = m.add_stream("b", "");
        for blk in engine_stream(&["eth0"], &[(0, 1_000), (0, 5_000)])
            .iter()
            .take(4)
        {
            m.feed(a, blk, &mut out).unwrap();
        }
        let mut p = Vec::new();
        pcapng_progress(&mut p, 3_000);
        m.feed(a, &p, &mut out).unwrap();
        m.release(10_000, &mut out);
        assert_eq!(m.written(), 0, "b has said nothing: the window holds");
        let mut q = Vec::new();
        pcapng_progress(&mut q, 4_000);
        m.feed(b, &q, &mut out).unwrap();
        m.release(10_000, &mut out);
        assert_eq!(m.written(), 1, "both are complete past 1000, not past 5000");
        m.end_stream(b);
        m.feed(a, &q, &mut out).unwrap();
        m.release(10_000, &mut out);
        assert_eq!(m.written(), 1, "a is complete only to 4000");
    }

    #[test]
    fn a_malformed_stream_is_refused_with_its_name() {
        let file = tempfile::tempfile().unwrap();
        let mut out = Output::new(file).unwrap();
        let mut m = Merger::new(DEFAULT_WINDOW, None);
        let a = m.add_stream("docker:web", "");
        let s = engine_stream(&[], &[]);
        m.feed(a, &s[0], &mut out).unwrap();
        let mut epb = Vec::new();
        let data = [0u8; 4];
        pcapng_epb(
            &mut epb,
            3,
            &Packet {
                ts_ns: 1,
                ifindex: 1,
                hatype: 1,
                pkttype: 0,
                data: &data,
                orig_len: 4,
            },
        );
        let e = m.feed(a, &epb, &mut out).unwrap_err().to_string();
        assert!(
            e.contains("docker:web") && e.contains("did not describe"),
            "{e}"
        );
        assert!(m.feed(a, &[1, 0], &mut out).is_err());
    }

    /// The whole merge over pipes: two writers, one merged file.
    #[test]
    fn run_merges_pipes_until_both_end() {
        use std::io::Write;
        let mut inputs = Vec::new();
        let mut writers = Vec::new();
        // Time stamps of now: the window holds them as a live capture's.
        let now = now_ns();
        for (label, base) in [("a", now), ("b", now + 500)] {
            let (r, w) = nix::unistd::pipe().unwrap();
            inputs.push(Input {
                src: File::from(r),
                label: label.into(),
                description: format!("target {label}"),
            });
            let pk: Vec<(u32, u64)> = (0..50).map(|k| (0, base + k * 1_000)).collect();
            let blocks = engine_stream(&["eth0"], &pk);
            writers.push(std::thread::spawn(move || {
                let mut w = File::from(w);
                for b in blocks {
                    w.write_all(&b).unwrap();
                }
            }));
        }
        let file = tempfile::tempfile().unwrap();
        let flag = AtomicBool::new(false);
        let mut stopped = 0;
        let mut stop = || stopped += 1;
        let r = run(
            inputs,
            file.try_clone().unwrap(),
            DEFAULT_WINDOW,
            None,
            Control {
                interrupted: &flag,
                stop: &mut stop,
                grace: Duration::from_secs(5),
                low_latency: false,
                stall_timeout: None,
            },
        )
        .unwrap();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(r.written, 100);
        assert!(r.stream_errors.is_empty(), "{:?}", r.stream_errors);
        let mut f = file;
        let got = read_back(&mut f);
        assert_eq!(got.len(), 100);
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(got[0].0, "a/eth0");
        assert_eq!(got[1].0, "b/eth0");
        assert_eq!(stopped, 0);
    }
}
