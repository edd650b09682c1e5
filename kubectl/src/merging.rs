//! The one place the plugin uses netshim's pcapng stream merge
//! (`netshim_capture::merge`): streams arriving from the cluster are
//! handed to it as pipes, and it writes one pcapng in time order. When the
//! merge's API changes, this file is the one to change.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use netshim_capture::merge::{IfaceReport, Merger};
use netshim_capture::output::{Output, OutputError};

/// One pod's stream: its interfaces are named `LABEL/IFACE`.
pub struct Stream {
    /// The read end of the pipe the pod's stream is written into.
    pub src: OwnedFd,
    pub label: String,
    pub description: String,
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

/// The reorder bound stated to the user.
pub fn default_window() -> Duration {
    Duration::from_millis(200)
}

/// A pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe().context("cannot make a pipe for a pod's stream")
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The streams still being read, and what ended the others.
struct Inputs {
    files: Vec<Option<File>>,
    labels: Vec<String>,
    errors: Vec<String>,
}

impl Inputs {
    fn new(streams: Vec<Stream>, m: &mut Merger) -> Result<Inputs> {
        let mut me = Inputs {
            files: Vec::new(),
            labels: Vec::new(),
            errors: Vec::new(),
        };
        for st in streams {
            m.add_stream(&st.label, &st.description);
            let fd = st.src;
            let fl = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)
                .context("reading a stream pipe's flags")?;
            let fl = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(fl))
                .context("making a stream pipe non-blocking")?;
            me.files.push(Some(File::from(fd)));
            me.labels.push(st.label);
        }
        Ok(me)
    }

    fn live(&self) -> bool {
        self.files.iter().any(Option::is_some)
    }

    fn end(&mut self, i: usize, m: &mut Merger, why: Option<String>) {
        if let Err(e) = m.end_stream(i) {
            self.errors.push(e.to_string());
        }
        if let Some(why) = why {
            self.errors
                .push(format!("the stream of {}: {why}", self.labels[i]));
        }
        self.files[i] = None;
    }

    /// Waits up to `wait` for a stream to have bytes, and feeds what came
    /// (up to 1 MiB of a busy stream per call, then the others).
    fn pump(&mut self, wait: Duration, m: &mut Merger, out: &mut Output, buf: &mut [u8]) {
        let idx: Vec<usize> = (0..self.files.len())
            .filter(|i| self.files[*i].is_some())
            .collect();
        let mut pfds: Vec<libc::pollfd> = idx
            .iter()
            .map(|i| libc::pollfd {
                fd: self.files[*i].as_ref().expect("live").as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = wait.as_micros().div_ceil(1000) as libc::c_int;
        // SAFETY: pfds is a live array of pfds.len() pollfd structs; EINTR
        // only ends the wait.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return;
        }
        for (k, i) in idx.into_iter().enumerate() {
            if pfds[k].revents == 0 {
                continue;
            }
            for _ in 0..4 {
                let Some(f) = self.files[i].as_mut() else {
                    break;
                };
                match f.read(buf) {
                    Ok(0) => {
                        self.end(i, m, None);
                        break;
                    }
                    Ok(got) => {
                        if let Err(e) = m.feed_bytes(i, &buf[..got], out) {
                            self.errors.push(e.to_string());
                            self.end(i, m, None);
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.end(i, m, Some(e.to_string()));
                        break;
                    }
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
    out: File,
    s: Settings,
    interrupted: Arc<AtomicBool>,
    stop: &mut dyn FnMut(),
) -> Result<Outcome> {
    let mut out = Output::new(out).context("cannot use the output")?;
    let mut m = Merger::new(s.window, s.limit);
    m.header(&mut out);
    let mut inputs = Inputs::new(streams, &mut m)?;
    let mut stopping: Option<Instant> = None;
    let mut output_error: Option<OutputError> = None;
    let mut last_flush = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let window_ns = s.window.as_nanos() as u64;
    while inputs.live() {
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
        // Wake at least every 50 ms, and when the oldest packet is due.
        let wait = m
            .oldest()
            .map(|ts| Duration::from_nanos(ts.saturating_add(window_ns).saturating_sub(now_ns())))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        inputs.pump(wait, &mut m, &mut out, &mut buf);
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
