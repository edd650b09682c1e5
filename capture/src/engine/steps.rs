//! The engine's steps (see the module's comment): [`Capture::set_up`],
//! [`Capture::announce`], [`Capture::confine`], [`Capture::run_loop`] (each
//! round: [`Capture::drain`], [`Capture::release`], [`Capture::flush_if_due`],
//! [`Capture::end_targets`], [`Capture::wait`]) and [`Capture::finish`].
//!
//! **Order across rings.** A ring hands over its packets in time order, a
//! block at a time. With one ring, the engine writes them as it drains the
//! ring. With several (several targets, or several interfaces), packets
//! stay in their ring, with no copy, until no ring can still hand over an
//! older one; then the oldest is encoded straight from its ring into the
//! output, and its block goes back to the kernel once its last packet is
//! out. The engine reads each ring's progress from the ring itself
//! ([`Ring::complete_until`]): the block the kernel is filling holds no
//! packet (then every packet stamped before now, less [`IN_FLIGHT_NS`] for
//! what is still on its way through the stack, has been handed over), or
//! it was opened at its `ts_first_pkt`. So a packet waits at most about
//! one block retire time (with several rings
//! [`super::sources::RETIRE_MS_SEVERAL`], 5 ms) plus [`IN_FLIGHT_NS`] for
//! the other rings; the reorder window (`--reorder-window`, 200 ms) bounds
//! it in any case, as does a ring that is full (the kernel would drop), and
//! a packet that comes later than a later one was written is written at
//! once and counted ([`Report::late`]).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::sources::{self, Source, RETIRE_MS};
use super::writer::{Key, Naming, Writer};
use super::{Options, Report};
use crate::args::{EngineArgs, Format, Which};
use crate::format::{self, Direction, IfaceCounters, Packet};
use crate::output::{Output, OutputError};
use crate::ring::Ring;
use crate::summary::Printer;
use crate::CaptureError;

/// How long a packet may take from its time stamp to its place in a ring
/// block (through the stack, on another CPU).
const IN_FLIGHT_NS: u64 = 3_000_000;

/// How long the rings of a target whose process exited are still read:
/// the kernel hands over its last partial block within [`RETIRE_MS`].
const LAST_LOOK: Duration = Duration::from_millis(3 * RETIRE_MS as u64);

/// A target of the capture (one, unnamed, when there is one).
struct Target {
    label: String,
    /// Polls readable once the target's process has exited.
    pidfd: Option<OwnedFd>,
    /// When its process was seen to exit.
    ending: Option<Instant>,
    /// Its rings are closed.
    ended: bool,
}

/// What was written, against `-c` and `-a filesize`.
struct Tally {
    written: u64,
    limit: u64,
    max_bytes: u64,
    full: bool,
    last_ts: u64,
    late: u64,
}

impl Tally {
    fn done(&self) -> bool {
        self.written >= self.limit || self.full
    }

    /// One packet stamped `ts` given to `out`: false once the capture has
    /// written all it may.
    fn count(&mut self, out: &mut Output, ts: u64) -> bool {
        self.written += 1;
        if ts < self.last_ts {
            self.late += 1;
        } else {
            self.last_ts = ts;
        }
        // `-a filesize`: the packet that reaches the size is the last.
        if out.committed() + out.buf().len() as u64 >= self.max_bytes {
            self.full = true;
        }
        !self.done()
    }
}

pub(super) struct Capture {
    args: EngineArgs,
    sources: Vec<Source>,
    targets: Vec<Target>,
    w: Writer,
    sfd: SignalFd,
    scratch: Vec<u8>,
    tally: Tally,
    /// Several rings: their packets are held and written in time order.
    ordered: bool,
    /// Several targets: a ring whose interface goes away ends alone.
    several: bool,
    /// The sockets were handed over (a sealed engine).
    sealed: bool,
    skipped: u64,
    ended_by: Option<String>,
    output_failed: bool,
    lost_because: Option<String>,
    stopping: Option<Instant>,
    started: Instant,
    start_ns: u64,
    last_status: Instant,
    last_flush: Instant,
    low_latency: bool,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Whether `p` is the outgoing copy of a loopback packet. The kernel shows
/// a packet sent on a loopback device twice to a packet socket: once as it
/// leaves (PACKET_OUTGOING) and once as it comes back in. As libpcap does,
/// the capture keeps only the incoming copy, so that files, lines and `-c`
/// see each packet once (and `-Q out` on `lo` captures nothing, as
/// tcpdump's). The kernel's statistics still count both copies, as
/// libpcap's do. The device is known by its hardware type, which the
/// packet carries (`-i any` too), not by an index looked up here: a sealed
/// engine runs in a network namespace of its own.
fn loopback_echo(p: &Packet) -> bool {
    p.pkttype == libc::PACKET_OUTGOING && p.hatype == libc::ARPHRD_LOOPBACK
}

/// Whether the capture keeps `p`: not a loopback echo, of the direction
/// asked, and of a framing its ring's filter was compiled for (through
/// `any`, only Ethernet-framed packets; a named raw-IP interface has its
/// own filter). Packets of another framing are counted in `skipped`.
fn keep(p: &Packet, which: Which, raw_ok: bool, skipped: &mut u64) -> bool {
    if loopback_echo(p) || (which == Which::Out && p.direction() != Direction::Out) {
        return false;
    }
    let fits = format::ethernet_framed(p.hatype) || (raw_ok && format::raw_ip(p.hatype));
    if !fits {
        *skipped += 1;
    }
    fits
}

/// The counters of interface `key`: its own ring's, or its target's `any`.
fn counters_of(sources: &[Source], (t, ifindex): Key) -> IfaceCounters {
    sources
        .iter()
        .find(|s| s.target == t && s.ifindex == ifindex)
        .or_else(|| sources.iter().find(|s| s.target == t && s.ifindex == 0))
        .map(|s| s.counters)
        .unwrap_or_default()
}

impl Capture {
    /// Opens the rings (before the output: a socket error leaves the output
    /// untouched), the writer and the signalfd.
    pub(super) fn set_up(opts: Options) -> Result<Capture, CaptureError> {
        let Options {
            args,
            out,
            sockets,
            pidfds,
        } = opts;
        let sealed = !sockets.is_empty();
        // Before the rings are mapped (they are resident from the start): let
        // go of the pages starting touched. netshim is one binary with its OCI
        // runtime and command line; the loop needs little of it, and the
        // engine's peak resident size is then that of the loop and its rings.
        let shed = crate::shed::shed_startup_pages();
        tracing::debug!(bytes = shed, "let go of the binary's start-up pages");
        let (sources, raw_only) = sources::open(&args, sockets)?;
        if sources.is_empty() {
            return Err(CaptureError::NoInterface(Vec::new()));
        }
        let several = args.targets.len() > 1;
        let multi = several || sources.len() > 1 || sources[0].ifindex == 0;
        let w = Self::writer(&args, out, multi, raw_only, sealed)?;
        let mut targets: Vec<Target> = (0..args.targets.len().max(1))
            .map(|t| Target {
                label: w.naming[t].label.clone(),
                pidfd: None,
                ending: None,
                ended: false,
            })
            .collect();
        for (t, fd) in pidfds {
            if let Some(x) = targets.get_mut(t) {
                x.pidfd = Some(fd);
            }
        }
        let interactive_print = args.write.is_none()
            && nix::unistd::isatty(std::io::stdout().as_raw_fd()).unwrap_or(false);
        let mut mask = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| CaptureError::Setup(e.into()))?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| CaptureError::Setup(e.into()))?;
        Ok(Capture {
            tally: Tally {
                written: 0,
                limit: args.count.unwrap_or(u64::MAX),
                max_bytes: args.max_bytes.unwrap_or(u64::MAX),
                full: false,
                last_ts: 0,
                late: 0,
            },
            scratch: Vec::with_capacity(args.snaplen as usize + 4),
            low_latency: args.low_latency || interactive_print,
            ordered: sources.len() > 1,
            several,
            sealed,
            sources,
            targets,
            w,
            sfd,
            args,
            skipped: 0,
            ended_by: None,
            output_failed: false,
            lost_because: None,
            stopping: None,
            started: Instant::now(),
            start_ns: now_ns(),
            last_status: Instant::now(),
            last_flush: Instant::now(),
        })
    }

    /// The writer of `args.write` on `out`, its header written.
    fn writer(
        args: &EngineArgs,
        out: std::fs::File,
        multi: bool,
        raw_only: bool,
        sealed: bool,
    ) -> Result<Writer, CaptureError> {
        let printer = Printer::new(args.quiet)
            .with_format(args.time, args.dump)
            .with_link_header(args.link_header)
            .with_verbosity(args.verbose, args.absolute_seq)
            .with_precision(args.precision);
        let output = Output::new(out).map_err(CaptureError::OutputSetup)?;
        let mut w = Writer::new(output, args.write, printer);
        w.snaplen = args.snaplen;
        w.filter = args.filter.as_ref().map(|f| f.expr.clone());
        w.sll2 = multi && args.write == Some(Format::Pcap);
        w.raw_pcap = !multi && raw_only;
        w.precision = args.precision;
        w.line_names = multi;
        // A sealed engine's own network namespace is empty: the targets'
        // names came with the sockets.
        w.look_up = !sealed;
        w.naming = (0..args.targets.len().max(1))
            .map(|t| Naming {
                label: args
                    .targets
                    .get(t)
                    .map(|x| x.label.clone())
                    .unwrap_or_default(),
                description: args
                    .targets
                    .get(t)
                    .map(|x| x.description.clone())
                    .unwrap_or_default(),
                names: Default::default(),
            })
            .collect();
        for (t, i, n) in &args.names {
            if let Some(x) = w.naming.get_mut(*t) {
                x.names.insert(*i, n.clone());
            }
        }
        w.out
            .set_stall_timeout(args.stall_timeout)
            .map_err(CaptureError::OutputSetup)?;
        w.start();
        Ok(w)
    }

    /// How ring `i` is shown: `IFACE` or `TARGET/IFACE`.
    fn source_name(&self, i: usize) -> String {
        let s = &self.sources[i];
        match self.w.naming.get(s.target).map(|n| n.label.as_str()) {
            None | Some("") => s.name.clone(),
            Some(label) => format!("{label}/{}", s.name),
        }
    }

    /// Says on stderr what is captured where.
    pub(super) fn announce(&self) {
        let a = &self.args;
        eprintln!(
            "netshim: capturing on {} ({} bytes per packet{}){}",
            (0..self.sources.len())
                .map(|i| crate::summary::printable(&self.source_name(i)))
                .collect::<Vec<_>>()
                .join(", "),
            a.snaplen,
            match &a.filter {
                None => String::new(),
                Some(f) => format!(", filter {:?}", f.expr),
            },
            match a.write {
                Some(Format::Pcapng) => ", writing pcapng",
                Some(Format::Pcap) => ", writing pcap",
                None => "",
            }
        );
    }

    /// Installs the seccomp allow-list when asked: from here on the engine
    /// only moves packets from its rings to its output.
    pub(super) fn confine(&mut self) -> Result<(), CaptureError> {
        if !self.args.confine {
            return Ok(());
        }
        // Names are looked up through a socket, which the allow-list
        // forbids: learn them all now (an interface added later shows as
        // `if{index}`).
        if !self.sealed {
            for (name, index, _, _) in super::interfaces::list_interfaces() {
                self.w.naming[0].names.entry(index).or_insert(name);
            }
        }
        crate::confine::confine()?;
        Ok(())
    }

    /// Rounds of drain, write, flush and wait until the capture ends.
    pub(super) fn run_loop(&mut self) -> Result<(), CaptureError> {
        loop {
            let now = now_ns();
            let moved = if self.ordered {
                self.merge(now, false)
            } else {
                self.drain()
            };
            if !moved || !self.flush_if_due() {
                return Ok(());
            }
            if self.tally.done() {
                return Ok(());
            }
            if self
                .args
                .duration_ms
                .is_some_and(|d| self.started.elapsed() >= Duration::from_millis(d))
            {
                // `-a duration`: as a signal, with one more look at the rings.
                self.stopping.get_or_insert_with(Instant::now);
            }
            // One more look after the kernel retired the last partial block.
            if self
                .stopping
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(60))
            {
                return Ok(());
            }
            self.end_targets();
            if self.sources.iter().all(|s| s.ring.is_none()) {
                // Every target has ended.
                return Ok(());
            }
            self.status_line();
            self.wait()?;
        }
    }

    /// One ring: takes every packet the kernel has handed over and writes
    /// it. False when the output failed.
    fn drain(&mut self) -> bool {
        let which = self.args.which;
        let mut failed = None;
        for src in self.sources.iter_mut() {
            let Some(ring) = src.ring.as_mut() else {
                continue;
            };
            let raw_ok = src.ifindex != 0;
            let t = src.target;
            let (w, skipped, tally) = (&mut self.w, &mut self.skipped, &mut self.tally);
            let counters = &mut src.counters;
            ring.drain(&mut self.scratch, |p| {
                if tally.done() {
                    return false;
                }
                if !keep(p, which, raw_ok, skipped) {
                    return true;
                }
                w.encode(t, p, None);
                counters.delivered += 1;
                let go_on = tally.count(&mut w.out, p.ts_ns);
                if w.out.wants_flush() {
                    if let Err(e) = w.out.flush() {
                        failed = Some(e);
                        return false;
                    }
                }
                go_on
            });
            src.count();
            if failed.is_some() {
                break;
            }
        }
        match failed {
            Some(e) => {
                self.output_error(e);
                false
            }
            None => true,
        }
    }

    /// Several rings: writes, oldest first, every packet they hold that no
    /// ring can still precede (every one with `all`); see the module's
    /// comment. False when the output failed.
    fn merge(&mut self, now: u64, all: bool) -> bool {
        // First what each ring may still hand over, then what it holds: a
        // block handed over in between is then seen.
        let unseen: Vec<u64> = self
            .sources
            .iter()
            .map(|s| match &s.ring {
                Some(r) if !all && !s.closing => r.complete_until(now).saturating_sub(IN_FLIGHT_NS),
                _ => u64::MAX,
            })
            .collect();
        let window = now.saturating_sub(self.args.reorder_ms.saturating_mul(1_000_000));
        let mut heads: Vec<Option<u64>> = self
            .sources
            .iter_mut()
            .map(|s| s.ring.as_mut().and_then(Ring::head_ts))
            .collect();
        let mut fresh = true;
        while !self.tally.done() {
            let Some((i, ts)) = heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.map(|t| (i, t)))
                .min_by_key(|(_, t)| *t)
            else {
                break;
            };
            let others = (0..heads.len())
                .filter(|j| *j != i)
                .map(|j| heads[j].unwrap_or(u64::MAX).min(unseen[j]))
                .min()
                .unwrap_or(u64::MAX);
            let limit = others.max(window);
            if ts > limit
                && !self
                    .sources
                    .iter()
                    .any(|s| s.ring.as_ref().is_some_and(Ring::full))
            {
                if fresh {
                    break;
                }
                // Another ring may have handed over a block since: look
                // once more before waiting.
                for (h, s) in heads.iter_mut().zip(self.sources.iter_mut()) {
                    *h = s.ring.as_mut().and_then(Ring::head_ts);
                }
                fresh = true;
                continue;
            }
            // The oldest, and the run of its ring's packets before `limit`.
            match self.write_run(i, limit) {
                Some(next) => heads[i] = next,
                None => return false,
            }
            fresh = false;
        }
        for s in self.sources.iter_mut() {
            s.count();
        }
        true
    }

    /// Writes ring `i`'s next packet, and the ones after it stamped up to
    /// `limit`: the ring's next time stamp then, or `None` when the output
    /// failed.
    fn write_run(&mut self, i: usize, limit: u64) -> Option<Option<u64>> {
        let which = self.args.which;
        let src = &mut self.sources[i];
        let Some(ring) = src.ring.as_mut() else {
            return Some(None);
        };
        let raw_ok = src.ifindex != 0;
        let t = src.target;
        loop {
            let (w, skipped, tally) = (&mut self.w, &mut self.skipped, &mut self.tally);
            let counters = &mut src.counters;
            ring.take(&mut self.scratch, |p| {
                if keep(p, which, raw_ok, skipped) {
                    w.encode(t, p, None);
                    counters.delivered += 1;
                    tally.count(&mut w.out, p.ts_ns);
                }
            });
            if self.w.out.wants_flush() {
                if let Err(e) = self.w.out.flush() {
                    self.output_error(e);
                    return None;
                }
            }
            let next = ring.head_ts();
            if self.tally.done() || next.is_none_or(|ts| ts > limit) {
                return Some(next);
            }
        }
    }

    fn output_error(&mut self, e: OutputError) {
        self.lost_because = Some(e.cause());
        self.ended_by = Some(e.to_string());
        self.output_failed = true;
    }

    /// Flushes a full buffer, a live stream's batch, or at least every
    /// second. False when the output failed.
    fn flush_if_due(&mut self) -> bool {
        let out = &mut self.w.out;
        let interval = Duration::from_millis(u64::from(self.args.write_interval_ms));
        if out.wants_flush()
            || (self.low_latency && !out.buf().is_empty() && self.last_flush.elapsed() >= interval)
            || self.last_flush.elapsed() >= Duration::from_secs(1)
        {
            if let Err(e) = out.flush() {
                self.output_error(e);
                return false;
            }
            self.last_flush = Instant::now();
        }
        true
    }

    /// Closes the rings of the targets whose process exited (after a last
    /// look) and writes their statistics once nothing of theirs is held.
    fn end_targets(&mut self) {
        for (t, tg) in self.targets.iter_mut().enumerate() {
            if tg.ended || tg.ending.is_none_or(|at| at.elapsed() < LAST_LOOK) {
                continue;
            }
            for s in self.sources.iter_mut().filter(|s| s.target == t) {
                s.closing = true;
            }
            tg.ended = true;
            tg.pidfd = None;
        }
        // A closing ring is closed once it holds nothing more.
        for s in self.sources.iter_mut().filter(|s| s.closing) {
            if s.ring.as_mut().is_some_and(|r| r.head_ts().is_none()) {
                s.close();
            }
        }
        let done: Vec<bool> = (0..self.targets.len())
            .map(|t| {
                self.sources
                    .iter()
                    .filter(|s| s.target == t)
                    .all(|s| s.ring.is_none())
            })
            .collect();
        if done.iter().any(|d| *d) && self.sources.iter().any(|s| s.ring.is_some()) {
            let sources = &self.sources;
            self.w.statistics(
                |t| done[t],
                |k| counters_of(sources, k),
                self.start_ns,
                now_ns(),
            );
        }
    }

    fn status_line(&mut self) {
        if !self.args.status_line || self.last_status.elapsed() < Duration::from_secs(1) {
            return;
        }
        let total: u64 = self.sources.iter().map(|i| i.counters.dropped).sum();
        let secs = (now_ns() - self.start_ns) as f64 / 1e9;
        let written = self.tally.written;
        eprint!(
            "\r{written} packets, {:.0}/s, {total} dropped  ",
            written as f64 / secs.max(0.001)
        );
        self.last_status = Instant::now();
    }

    /// Waits for a ring, a signal or a target's exit (or the time a held
    /// packet is due), and takes note of what happened.
    fn wait(&mut self) -> Result<(), CaptureError> {
        let open: Vec<usize> = (0..self.sources.len())
            .filter(|i| self.sources[*i].ring.is_some())
            .collect();
        // With several rings, one that holds a packet for order waits for
        // the others (or the time): polled for errors only, since it polls
        // readable as long as it holds a block.
        let ordered = self.ordered;
        let holds: Vec<bool> = open
            .iter()
            .map(|i| {
                ordered
                    && self.sources[*i]
                        .ring
                        .as_mut()
                        .is_some_and(|r| r.head_ts().is_some())
            })
            .collect();
        let pending = holds.iter().any(|h| *h);
        let watched: Vec<usize> = (0..self.targets.len())
            .filter(|t| self.targets[*t].ending.is_none() && self.targets[*t].pidfd.is_some())
            .collect();
        let mut fds: Vec<PollFd> = open
            .iter()
            .zip(&holds)
            .filter_map(|(i, h)| Some((self.sources[*i].ring.as_ref()?, *h)))
            .map(|(r, holds)| {
                let events = if holds {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                };
                // SAFETY: the ring's fd lives as long as `self.sources`,
                // which is not changed before `fds` is dropped.
                PollFd::new(unsafe { BorrowedFd::borrow_raw(r.fd()) }, events)
            })
            .collect();
        fds.push(PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN));
        for t in &watched {
            if let Some(fd) = &self.targets[*t].pidfd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let ending = self.targets.iter().any(|t| t.ending.is_some() && !t.ended);
        let timeout: u16 = if self.stopping.is_some() || ending {
            20
        } else if pending {
            2
        } else {
            250
        };
        // A live output's buffer waiting out --write-interval: wake when due.
        let timeout = if self.low_latency && !self.w.out.buf().is_empty() {
            let interval = u128::from(self.args.write_interval_ms);
            let left = interval.saturating_sub(self.last_flush.elapsed().as_millis());
            timeout.min(left.clamp(1, 250) as u16)
        } else {
            timeout
        };
        match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(()),
            Err(e) => return Err(CaptureError::Setup(e.into())),
        }
        let ready = |f: &PollFd, flags: PollFlags| f.revents().is_some_and(|r| r.intersects(flags));
        let n = open.len();
        let gone: Vec<usize> = (0..n)
            .filter(|k| ready(&fds[*k], PollFlags::POLLERR | PollFlags::POLLHUP))
            .map(|k| open[k])
            .collect();
        let signalled = ready(&fds[n], PollFlags::POLLIN);
        let exited: Vec<usize> = (0..watched.len())
            .filter(|k| ready(&fds[n + 1 + k], PollFlags::POLLIN | PollFlags::POLLHUP))
            .map(|k| watched[k])
            .collect();
        drop(fds);
        if signalled {
            if let Ok(Some(si)) = self.sfd.read_signal() {
                tracing::debug!(signal = si.ssi_signo, "stopping");
            }
            self.stopping.get_or_insert_with(Instant::now);
        }
        for i in gone {
            self.interface_gone(i);
        }
        for t in exited {
            let tg = &mut self.targets[t];
            let who = match tg.label.as_str() {
                "" => "the target's process".to_string(),
                l => format!("the process of {}", crate::summary::printable(l)),
            };
            let what = if self.several {
                "its interfaces end, the other targets are still captured"
            } else {
                "ending the capture"
            };
            eprintln!("netshim: {who} exited; {what}");
            tg.ending = Some(Instant::now());
        }
        Ok(())
    }

    /// Ring `i`'s interface went away (POLLERR, ENETDOWN): with several
    /// targets it ends alone; otherwise the capture ends.
    fn interface_gone(&mut self, i: usize) {
        let name = crate::summary::printable(&self.source_name(i));
        let e = self.sources[i].ring.as_ref().and_then(Ring::take_error);
        let why = format!(
            "interface {name} went away ({}): the target's network namespace or device was removed",
            e.map(|e| e.to_string()).unwrap_or_else(|| "hang-up".into())
        );
        if self.several {
            eprintln!("netshim: {why}; the other interfaces are still captured");
            self.sources[i].closing = true;
        } else {
            self.ended_by = Some(why);
            self.stopping.get_or_insert_with(Instant::now);
        }
    }

    /// Writes what is held, every interface's statistics not yet written,
    /// and flushes: the report.
    pub(super) fn finish(mut self) -> Report {
        if self.args.status_line {
            eprintln!();
        }
        for s in self.sources.iter_mut() {
            s.count();
        }
        if self.ordered && !self.output_failed {
            self.merge(now_ns(), true);
        }
        let end_ns = now_ns();
        let sources = &self.sources;
        self.w
            .statistics(|_| true, |k| counters_of(sources, k), self.start_ns, end_ns);
        if !self.output_failed {
            if let Err(e) = self.w.out.finish() {
                self.lost_because = Some(e.cause());
                self.ended_by.get_or_insert(e.to_string());
                self.output_failed = true;
            }
        }
        let _ = std::io::stderr().flush();
        if self.skipped > 0 {
            eprintln!(
                "netshim: {} packets of interfaces without Ethernet framing were skipped \
                 (with -i any, name a tun or WireGuard interface with -i to capture it)",
                self.skipped
            );
        }
        let interfaces = (0..self.sources.len())
            .map(|i| (self.source_name(i), self.sources[i].counters))
            .collect();
        Report {
            interfaces,
            ended_by: self.ended_by,
            output_failed: self.output_failed,
            packets_written: self.w.out.packets(),
            packets_lost: self.w.out.lost(),
            lost_because: self.lost_because,
            late: if self.ordered { self.tally.late } else { 0 },
        }
    }
}
