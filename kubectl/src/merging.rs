//! The one place the plugin uses netshim's pcapng stream merge
//! (`netshim_capture::merge`): streams arriving from the cluster are
//! handed to it as pipes, and it writes one pcapng in time order. When the
//! merge's API changes, this file is the one to change.

use std::fs::File;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use netshim_capture::merge;

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
    /// Packets written out of order (later than the window).
    pub late: u64,
    /// Per interface: name, packets received by the kernel, dropped,
    /// written.
    pub interfaces: Vec<(String, u64, u64, u64)>,
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
    /// Flush after every batch (a pipe to a live reader).
    pub low_latency: bool,
    /// After `stop`, how long the streams have to end.
    pub grace: Duration,
}

/// The reorder bound stated to the user.
pub fn default_window() -> Duration {
    merge::DEFAULT_WINDOW
}

/// A pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe().context("cannot make a pipe for a pod's stream")
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
    let inputs = streams
        .into_iter()
        .map(|st| merge::Input {
            // SAFETY: the descriptor is owned and handed over whole.
            src: unsafe { File::from_raw_fd(st.src.into_raw_fd()) },
            label: st.label,
            description: st.description,
        })
        .collect();
    let ctl = merge::Control {
        interrupted: &interrupted,
        stop,
        grace: s.grace,
        low_latency: s.low_latency,
        stall_timeout: None,
    };
    let r = merge::run(inputs, out, s.window, s.limit, ctl).context("merging the pods' streams")?;
    let reader_gone = matches!(
        r.output_error,
        Some(netshim_capture::output::OutputError::BrokenPipe)
    );
    Ok(Outcome {
        written: r.packets_written,
        late: r.late,
        interfaces: r
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), i.received, i.dropped, i.written))
            .collect(),
        stream_errors: r.stream_errors,
        output_error: r.output_error.map(|e| e.to_string()),
        reader_gone,
    })
}
