//! The one place the plugin uses netshim's pcapng stream merge
//! (`netshim_capture::merge`): the bytes of the streams arriving from the
//! cluster are handed to it as [`Chunk`]s on a bounded channel, and it
//! writes one pcapng in time order on its own thread. When the merge's API
//! changes, this file is the one to change.
//!
//! A channel, not a pipe per stream: a block of a pod's stream costs one
//! copy and a queue slot, not a `write`, a `poll`, a `read` and a wake-up
//! of this thread. Writing to a file, the thread wakes every
//! [`FILE_TICK`] and takes whatever came; writing to a live reader, it
//! wakes when the oldest held packet is due (to a twentieth of the
//! window), or for each chunk when there is no window.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use netshim_capture::merge::{IfaceReport, Merger};
use netshim_capture::output::{Output, OutputError};

/// How often the merge takes what came, writing to a file.
pub const FILE_TICK: Duration = Duration::from_millis(10);

/// Chunks queued for the merge before the streams' readers wait.
const QUEUE: usize = 256;

/// What a stream's reader hands the merge.
pub enum Chunk {
    /// The next bytes of stream `0`, cut anywhere.
    Bytes(usize, Vec<u8>),
    /// Stream `0` has ended (with why, if it broke off).
    End(usize, Option<String>),
}

/// One pod's stream: its interfaces are named `LABEL/IFACE`.
pub struct Stream {
    pub label: String,
    pub description: String,
}

/// The channel the streams' readers feed the merge through.
pub fn channel() -> (Feed, Receiver<Chunk>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    (Feed(tx), rx)
}

/// A stream reader's end of the channel.
#[derive(Clone)]
pub struct Feed(SyncSender<Chunk>);

impl Feed {
    /// Hands `chunk` to the merge, waiting (without blocking the async
    /// runtime) while the queue is full; false once the merge has ended.
    pub async fn send(&self, mut chunk: Chunk) -> bool {
        loop {
            match self.0.try_send(chunk) {
                Ok(()) => return true,
                Err(TrySendError::Full(c)) => {
                    chunk = c;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }
}

/// The end of a merge.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Packets written to the output.
    pub written: u64,
    /// Of them, those in the output: fewer when it failed (a full disk).
    pub in_output: u64,
    /// Packets written out of order (later than the window).
    pub late: u64,
    /// Per interface: its name, counts, and whether its capture sent them.
    pub interfaces: Vec<IfaceReport>,
    /// Streams that were malformed or unreadable.
    pub stream_errors: Vec<String>,
    /// Why the output stopped early (a closed pipe, a full disk).
    pub output_error: Option<String>,
    /// The output's reader went away (a closed pipe): not a failure.
    pub reader_gone: bool,
}

/// How the merge is run.
pub struct Settings {
    pub window: Duration,
    pub limit: Option<u64>,
    /// `-a filesize:`: stop once the output holds this many bytes.
    pub max_bytes: Option<u64>,
    /// Flush after every batch (a pipe to a live reader).
    pub low_latency: bool,
    /// After `stop`, how long the streams have to end.
    pub grace: Duration,
}

/// The reorder bound stated to the user: short for a live reader, longer
/// for a file (nobody waits for it, and each pod then writes its stream
/// in fewer pieces: see `capture_args`).
pub fn default_window(to_file: bool) -> Duration {
    Duration::from_millis(if to_file { 1000 } else { 200 })
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The streams still being read, and what ended the others.
struct Inputs {
    live: Vec<bool>,
    labels: Vec<String>,
    errors: Vec<String>,
}

impl Inputs {
    fn new(streams: Vec<Stream>, m: &mut Merger) -> Inputs {
        let mut me = Inputs {
            live: Vec::new(),
            labels: Vec::new(),
            errors: Vec::new(),
        };
        for st in streams {
            m.add_stream(&st.label, &st.description);
            me.live.push(true);
            me.labels.push(st.label);
        }
        me
    }

    fn any_live(&self) -> bool {
        self.live.iter().any(|l| *l)
    }

    fn end(&mut self, i: usize, m: &mut Merger, why: Option<String>) {
        if !self.live[i] {
            return;
        }
        if let Err(e) = m.end_stream(i) {
            self.errors.push(e.to_string());
        }
        if let Some(why) = why {
            self.errors
                .push(format!("the stream of {}: {why}", self.labels[i]));
        }
        self.live[i] = false;
    }

    fn take(&mut self, c: Chunk, m: &mut Merger, out: &mut Output) {
        match c {
            Chunk::Bytes(i, b) if self.live[i] => {
                if let Err(e) = m.feed_bytes(i, &b, out) {
                    self.errors.push(e.to_string());
                    self.end(i, m, None);
                }
            }
            Chunk::Bytes(..) => {}
            Chunk::End(i, why) => self.end(i, m, why),
        }
    }

    /// Waits up to `wait` for a chunk (or, `tick`, sleeps `wait` first),
    /// then takes every chunk queued.
    fn pump(
        &mut self,
        rx: &Receiver<Chunk>,
        wait: Duration,
        tick: bool,
        m: &mut Merger,
        out: &mut Output,
    ) {
        if tick {
            std::thread::sleep(wait);
        } else {
            match rx.recv_timeout(wait) {
                Ok(c) => self.take(c, m, out),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
        loop {
            match rx.try_recv() {
                Ok(c) => self.take(c, m, out),
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    // Every reader is gone: nothing more comes.
                    for i in 0..self.live.len() {
                        self.end(i, m, None);
                    }
                    return;
                }
            }
        }
    }
}

/// Merges `streams` into `out` on the calling thread until every stream
/// has ended; `stop` is called once when the streams should be ended (the
/// count reached, `interrupted` set, the output gone).
pub fn run(
    streams: Vec<Stream>,
    rx: Receiver<Chunk>,
    out: File,
    s: Settings,
    interrupted: Arc<AtomicBool>,
    stop: &mut dyn FnMut(),
) -> Result<Outcome> {
    let mut out = Output::new(out).context("cannot use the output")?;
    let mut m = Merger::new(s.window, s.limit);
    m.header(&mut out);
    let mut inputs = Inputs::new(streams, &mut m);
    let mut stopping: Option<Instant> = None;
    let mut output_error: Option<OutputError> = None;
    let mut last_flush = Instant::now();
    let window_ns = s.window.as_nanos() as u64;
    while inputs.any_live() {
        let full = s
            .max_bytes
            .is_some_and(|max| out.committed() + out.buf().len() as u64 >= max);
        if full {
            // Nothing more than what filled it, as dumpcap's stop.
            m.limit_to(m.written());
        }
        let should_stop = interrupted.load(Ordering::Relaxed)
            || m.limit_reached()
            || full
            || output_error.is_some();
        if should_stop && stopping.is_none() {
            stop();
            stopping = Some(Instant::now());
        }
        if stopping.is_some_and(|t| t.elapsed() > s.grace) {
            tracing::warn!("captures did not end in time; finishing without their statistics");
            break;
        }
        // To a file: every FILE_TICK. Live: when the oldest packet is due,
        // to a twentieth of the window (10 ms of the default 200), and at
        // least every window (50 ms at most): a chunk arriving meanwhile
        // waits, since its packets wait out the window anyway. With no
        // window (0), each chunk wakes the merge.
        let (wait, tick) = if !s.low_latency {
            (FILE_TICK, true)
        } else if s.window.is_zero() {
            (Duration::from_millis(50), false)
        } else {
            let granule = (s.window / 20).max(Duration::from_millis(1));
            let most = s.window.clamp(granule, Duration::from_millis(50));
            let due = m.oldest().map_or(most, |ts| {
                Duration::from_nanos(ts.saturating_add(window_ns).saturating_sub(now_ns()))
            });
            (due.clamp(granule, most), true)
        };
        inputs.pump(&rx, wait, tick, &mut m, &mut out);
        m.release(now_ns(), &mut out);
        if output_error.is_some() {
            // Keep reading the streams (their captures must not block while
            // they stop), writing nothing.
            out.discard();
        } else if s.low_latency || out.wants_flush() || last_flush.elapsed().as_secs() >= 1 {
            output_error = out.flush().err();
            last_flush = Instant::now();
        }
    }
    m.finish(&mut out);
    if output_error.is_none() {
        output_error = out.finish().err();
    }
    let reader_gone = matches!(output_error, Some(OutputError::BrokenPipe));
    Ok(Outcome {
        written: m.written(),
        in_output: out.packets(),
        late: m.late(),
        interfaces: m.interfaces().to_vec(),
        stream_errors: inputs.errors,
        output_error: output_error.map(|e| e.to_string()),
        reader_gone,
    })
}
