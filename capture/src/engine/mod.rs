//! The capture: rings → filter by direction → pcapng/pcap blocks or
//! summary lines → output, with signals, counts, statistics and a status
//! line. One engine reads every ring of a capture, of one target or of
//! several (their sockets made by netshim in each target), and writes one
//! output in timestamp order.
//!
//! The steps, each its own function ([`steps`]): set up (open the rings,
//! the writer, the signalfd; confine), then loop (drain every ring, write
//! what can no longer be preceded, flush, wait), then finish (what is
//! held, the statistics). Files: `interfaces` (which interfaces, their
//! names), `sources` (the rings), `writer` (packets to blocks or lines),
//! `steps` (the loop).

mod interfaces;
mod sources;
mod steps;
mod writer;

use std::fs::File;
use std::os::fd::OwnedFd;

pub use interfaces::{choose_interfaces, describe_interfaces, interface_name, interface_names};
pub use sources::{HandedRing, RETIRE_MS};

use crate::args::EngineArgs;
use crate::format::IfaceCounters;
use crate::CaptureError;

/// A capture to run: its settings, where packets go (a file or pipe that
/// gets the format of `args.write`, or lines), and for a sealed engine the
/// packet sockets netshim made in the targets, one per interface, and a
/// pidfd of each target's process where it has one (by target index).
pub struct Options {
    pub args: EngineArgs,
    pub out: File,
    pub sockets: Vec<HandedRing>,
    pub pidfds: Vec<(usize, OwnedFd)>,
}

/// What a capture saw, per interface.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub interfaces: Vec<(String, IfaceCounters)>,
    /// Why the capture ended early, if it did (interface gone, output error).
    pub ended_by: Option<String>,
    /// The output failed (full disk, closed pipe): the capture is incomplete.
    pub output_failed: bool,
    /// Packets that reached the output (the file as it was left, cut back
    /// to its last whole packet after a failed write).
    pub packets_written: u64,
    /// Packets captured that never reached the output (a failed write).
    pub packets_lost: u64,
    /// Why packets were lost, in a few words ([`crate::output::OutputError::cause`]).
    pub lost_because: Option<String>,
    /// Packets written out of timestamp order (later than the reorder
    /// window, or let out of a ring that filled up).
    pub late: u64,
}

impl Report {
    pub fn total(&self) -> IfaceCounters {
        self.interfaces
            .iter()
            .fold(IfaceCounters::default(), |a, (_, c)| IfaceCounters {
                received: a.received + c.received,
                dropped: a.dropped + c.dropped,
                delivered: a.delivered + c.delivered,
            })
    }
}

/// Runs a capture until the count is reached, a signal (SIGINT, SIGTERM,
/// SIGHUP) arrives, every target has ended, an interface of a single
/// target goes away or the output fails.
pub fn run(opts: Options) -> Result<Report, CaptureError> {
    let mut c = steps::Capture::set_up(opts)?;
    c.announce();
    c.confine()?;
    c.run_loop()?;
    Ok(c.finish())
}
