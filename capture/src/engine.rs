//! The capture loop: rings → filter by direction → pcapng/pcap blocks or
//! summary lines → output, with signals, counts, statistics and a status
//! line.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::args::EngineArgs;
use crate::format::{self, Direction, IfaceCounters, Packet};
use crate::output::{Output, OutputError};
use crate::ring::{self, Ring, RingConfig};
use crate::summary::Printer;
use crate::CaptureError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcapng,
    Pcap,
}

/// How long the kernel may hold a packet in a ring block that is not full
/// (TPACKET_V3's block retire timer).
pub const RETIRE_MS: u32 = 20;

/// How long a packet may take from its time stamp to its place in a ring
/// block (through the stack, on another CPU): a packet later than this is
/// still written by the merge, out of order, and counted.
const IN_FLIGHT_NS: u64 = 3_000_000;

/// How often an engine whose stream netshim merges says how far its stream
/// is complete (see [`crate::format::pcapng_progress`] and
/// [`crate::ring::Ring::complete_until`]): the merge holds a packet at most
/// about this long for a quiet stream.
pub const HEARTBEAT: Duration = Duration::from_millis(5);

/// `-Q`: which directions to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    InOut,
    In,
    Out,
}

/// A capture to run: its settings, where packets go (a file or pipe that
/// gets the format of `args.write`, or lines), and for `capture --sealed`
/// the packet sockets made in the target by netshim, one per interface
/// (display name, ifindex, socket), in the order of `args.sockets`.
pub struct Options {
    pub args: EngineArgs,
    pub out: File,
    pub sockets: Vec<(String, i32, std::os::fd::OwnedFd)>,
}

/// The interfaces a capture of `names` would open, in the calling thread's
/// network namespace: (display name, ifindex).
pub fn choose_interfaces(names: &[String]) -> Result<Vec<(String, i32)>, CaptureError> {
    choose(names)
}

/// Every interface of the calling thread's network namespace, by index.
pub fn interface_names() -> Vec<(i32, String)> {
    list_interfaces()
        .into_iter()
        .map(|(n, i, _, _)| (i, n))
        .collect()
}

/// The interfaces a capture can open here, as `tcpdump -D` lists them:
/// numbered, `any` among them, each with its state, in libpcap's order
/// (running first, then up, then down; loopback after the others of the
/// same state; `any` after the interfaces that are running). Only what netshim captures on is listed: no Bluetooth,
/// netfilter or D-Bus pseudo-devices.
pub fn describe_interfaces() -> Vec<String> {
    use nix::net::if_::InterfaceFlags as F;
    let mut seen: Vec<(String, i32, F)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if seen.iter().any(|x| x.0 == a.interface_name) {
                continue;
            }
            let idx = nix::net::if_::if_nametoindex(a.interface_name.as_str())
                .map(|i| i as i32)
                .unwrap_or(0);
            seen.push((a.interface_name.clone(), idx, a.flags));
        }
    }
    seen.sort_by_key(|x| x.1);
    let merit = |f: F| {
        let state = if f.contains(F::IFF_RUNNING) {
            0
        } else if f.contains(F::IFF_UP) {
            1
        } else {
            2
        };
        state * 2 + u8::from(f.contains(F::IFF_LOOPBACK))
    };
    let mut rows: Vec<(u8, String)> = Vec::new();
    for (name, _, f) in &seen {
        let mut words = Vec::new();
        if f.contains(F::IFF_UP) {
            words.push("Up");
        }
        if f.contains(F::IFF_RUNNING) {
            words.push("Running");
        }
        if f.contains(F::IFF_LOOPBACK) {
            words.push("Loopback");
        } else if f.contains(F::IFF_RUNNING) {
            words.push("Connected");
        } else if f.contains(F::IFF_UP) {
            words.push("Disconnected");
        }
        let state = if words.is_empty() {
            "none".to_string()
        } else {
            words.join(", ")
        };
        rows.push((
            merit(*f),
            format!("{} [{state}]", crate::summary::printable(name)),
        ));
    }
    // libpcap adds `any` after the interfaces, as running; a stable sort
    // keeps that order within a state.
    rows.push((
        0,
        "any (Pseudo-device that captures on all interfaces) [Up, Running]".to_string(),
    ));
    rows.sort_by_key(|r| r.0);
    rows.into_iter()
        .enumerate()
        .map(|(i, (_, text))| format!("{}.{text}", i + 1))
        .collect()
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
    /// Why packets were lost, in a few words ([`OutputError::cause`]).
    pub lost_because: Option<String>,
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

struct Iface {
    name: String,
    ifindex: i32,
    ring: Ring,
    counters: IfaceCounters,
}

/// Interfaces of the current network namespace: (name, index, up, loopback).
fn list_interfaces() -> Vec<(String, i32, bool, bool)> {
    let mut v: Vec<(String, i32, bool, bool)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if v.iter().any(|x| x.0 == a.interface_name) {
                continue;
            }
            let idx = nix::net::if_::if_nametoindex(a.interface_name.as_str())
                .map(|i| i as i32)
                .unwrap_or(0);
            let f = a.flags;
            v.push((
                a.interface_name.clone(),
                idx,
                f.contains(nix::net::if_::InterfaceFlags::IFF_UP),
                f.contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK),
            ));
        }
    }
    v.sort_by_key(|x| x.1);
    v
}

/// The name of interface `index` in the current network namespace
/// (`if{index}` when it has none, e.g. it went away).
pub fn interface_name(index: i32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into buf.
    let p = unsafe { libc::if_indextoname(index as libc::c_uint, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if{index}");
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn ifname_of(index: i32, cache: &mut HashMap<i32, String>) -> String {
    cache
        .entry(index)
        .or_insert_with(|| interface_name(index))
        .clone()
}

/// Chooses the interfaces to open: (display name, ifindex).
fn choose(names: &[String]) -> Result<Vec<(String, i32)>, CaptureError> {
    let all = list_interfaces();
    if names.is_empty() {
        let pick = all
            .iter()
            .find(|i| i.2 && !i.3)
            .or_else(|| all.iter().find(|i| i.2))
            .ok_or_else(|| CaptureError::NoInterface(all.iter().map(|i| i.0.clone()).collect()))?;
        return Ok(vec![(pick.0.clone(), pick.1)]);
    }
    let mut v = Vec::new();
    for n in names {
        if n == "any" {
            return Ok(vec![("any".into(), 0)]);
        }
        let found =
            all.iter()
                .find(|i| &i.0 == n)
                .ok_or_else(|| CaptureError::UnknownInterface {
                    name: n.clone(),
                    known: all.iter().map(|i| i.0.clone()).collect(),
                })?;
        if !v.iter().any(|(_, i)| *i == found.1) {
            v.push((found.0.clone(), found.1));
        }
    }
    Ok(v)
}

struct Writer {
    out: Output,
    format: Option<Format>,
    printer: Printer,
    snaplen: u32,
    filter: Option<String>,
    /// pcap with several interfaces: LINUX_SLL2 records.
    sll2: bool,
    /// pcap of one raw-IP interface (tun, WireGuard): LINKTYPE_RAW.
    raw_pcap: bool,
    precision: format::Precision,
    /// ifindex → pcapng interface id, in order of first packet.
    idb: Vec<i32>,
    /// The last (ifindex, id) looked up: packets come in runs per interface.
    last_idb: Option<(i32, u32)>,
    names: HashMap<i32, String>,
    /// Lines name the interface and direction: the capture spans several
    /// interfaces (`-i any`, repeated `-i`), as tcpdump's lines do.
    line_names: bool,
}

impl Writer {
    fn start(&mut self) {
        match self.format {
            Some(Format::Pcapng) => format::pcapng_shb(
                self.out.buf(),
                concat!("netshim ", env!("CARGO_PKG_VERSION")),
            ),
            Some(Format::Pcap) => {
                let lt = if self.sll2 {
                    format::LINKTYPE_LINUX_SLL2
                } else if self.raw_pcap {
                    format::LINKTYPE_RAW
                } else {
                    format::LINKTYPE_ETHERNET
                };
                format::pcap_header(self.out.buf(), self.snaplen, lt, self.precision)
            }
            None => return,
        }
        self.out.end_block();
    }

    fn packet(&mut self, p: &Packet) {
        match self.format {
            Some(Format::Pcapng) => {
                let id = match self.last_idb {
                    Some((ifindex, id)) if ifindex == p.ifindex => id,
                    _ => {
                        let id = match self.idb.iter().position(|&i| i == p.ifindex) {
                            Some(i) => i as u32,
                            None => {
                                let name = ifname_of(p.ifindex, &mut self.names);
                                format::pcapng_idb(
                                    self.out.buf(),
                                    format::linktype_of(p.hatype),
                                    self.snaplen,
                                    &name,
                                    self.filter.as_deref(),
                                );
                                self.out.end_block();
                                self.idb.push(p.ifindex);
                                (self.idb.len() - 1) as u32
                            }
                        };
                        self.last_idb = Some((p.ifindex, id));
                        id
                    }
                };
                format::pcapng_epb(self.out.buf(), id, p);
            }
            Some(Format::Pcap) => format::pcap_record(self.out.buf(), p, self.sll2, self.precision),
            None => {
                let name = if self.line_names {
                    ifname_of(p.ifindex, &mut self.names)
                } else {
                    String::new()
                };
                let lt = format::linktype_of(p.hatype);
                self.printer.line_of_linktype(self.out.buf(), &name, lt, p);
            }
        }
        self.out.end_packet();
    }
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

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs a capture in the current network namespace until the count is
/// reached, a signal (SIGINT, SIGTERM, SIGHUP) arrives, an interface goes
/// away or the output fails.
pub fn run(opts: Options) -> Result<Report, CaptureError> {
    let Options {
        args: opts,
        out,
        sockets,
    } = opts;
    let mut sockets = sockets.into_iter();
    let sealed = sockets.len() > 0;
    let chosen: Vec<(String, i32)> = if sealed {
        sockets
            .as_slice()
            .iter()
            .map(|(n, i, _)| (n.clone(), *i))
            .collect()
    } else {
        choose(&opts.interfaces)?
    };
    // Before the rings are mapped (they are resident from the start): let
    // go of the pages starting touched. netshim is one binary with its OCI
    // runtime and command line; the loop needs little of it, and the
    // engine's peak resident size is then that of the loop and its rings.
    let shed = crate::shed::shed_startup_pages();
    tracing::debug!(bytes = shed, "let go of the binary's start-up pages");
    let block = ring::block_size_for(opts.snaplen);
    let ring_bytes = (opts.buffer_kib as usize * 1024).max(2 * block);
    let mut ifaces = Vec::new();
    let mut raw_only = true;
    for (name, ifindex) in &chosen {
        let socket_err = |source| CaptureError::Socket {
            iface: name.clone(),
            source,
        };
        let fd = match sockets.next() {
            Some((_, _, fd)) => fd,
            None => Ring::new_socket().map_err(socket_err)?,
        };
        // The filter program for the interface's framing: `any` (index 0)
        // sees Ethernet-framed packets (raw-IP ones are skipped there).
        let raw = *ifindex != 0 && Ring::hardware_type(&fd, name).is_ok_and(crate::format::raw_ip);
        raw_only &= raw;
        let filter = match (&opts.filter, raw) {
            (None, _) => None,
            (Some(f), false) => Some(f.program.clone()),
            (Some(f), true) => {
                Some(
                    f.raw
                        .clone()
                        .ok_or_else(|| CaptureError::FilterNotForRawIp {
                            iface: name.clone(),
                            expr: f.expr.clone(),
                        })?,
                )
            }
        };
        let cfg = RingConfig {
            ifindex: *ifindex,
            ring_bytes: ring_bytes / chosen.len(),
            block_bytes: block,
            retire_ms: RETIRE_MS,
            filter,
            promisc: opts.promisc,
            ignore_outgoing: opts.which == Which::In,
            snaplen: opts.snaplen,
        };
        let ring = Ring::with_socket(fd, &cfg).map_err(socket_err)?;
        ifaces.push(Iface {
            name: name.clone(),
            ifindex: *ifindex,
            ring,
            counters: IfaceCounters::default(),
        });
    }

    let format = opts.write;
    let multi = chosen.len() > 1 || chosen[0].1 == 0;
    let mut w = Writer {
        out: Output::new(out).map_err(CaptureError::OutputSetup)?,
        format,
        printer: Printer::new(opts.quiet)
            .with_format(opts.time, opts.dump)
            .with_link_header(opts.link_header)
            .with_verbosity(opts.verbose, opts.absolute_seq)
            .with_precision(opts.precision),
        snaplen: opts.snaplen,
        filter: opts.filter.as_ref().map(|f| f.expr.clone()),
        sll2: multi && format == Some(Format::Pcap),
        raw_pcap: !multi && raw_only,
        precision: opts.precision,
        idb: Vec::new(),
        last_idb: None,
        names: HashMap::new(),
        line_names: multi,
    };
    w.out
        .set_stall_timeout(opts.stall_timeout)
        .map_err(CaptureError::OutputSetup)?;
    w.start();
    let interactive_print =
        format.is_none() && nix::unistd::isatty(std::io::stdout().as_raw_fd()).unwrap_or(false);
    let low_latency = opts.low_latency || interactive_print;

    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| CaptureError::Setup(e.into()))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| CaptureError::Setup(e.into()))?;

    // One of several merged engines: netshim says what is captured where.
    if !opts.no_report {
        eprintln!(
            "netshim: capturing on {} ({} bytes per packet{}){}",
            ifaces
                .iter()
                .map(|i| crate::summary::printable(&i.name))
                .collect::<Vec<_>>()
                .join(", "),
            opts.snaplen,
            match &opts.filter {
                None => String::new(),
                Some(f) => format!(", filter {:?}", f.expr),
            },
            match format {
                Some(Format::Pcapng) => ", writing pcapng",
                Some(Format::Pcap) => ", writing pcap",
                None => "",
            }
        );
    }
    if sealed {
        // The engine's own network namespace is empty: the target's names
        // came with the sockets.
        w.names.extend(opts.names.iter().cloned());
    }
    if opts.confine {
        // Names are looked up through a socket, which the allow-list
        // forbids: learn them all now (an interface added later shows as
        // `if{index}`).
        if !sealed {
            for (name, index, _, _) in list_interfaces() {
                w.names.entry(index).or_insert(name);
            }
        }
        crate::confine::confine()?;
    }

    let start_ns = now_ns();
    let limit = opts.count.unwrap_or(u64::MAX);
    let mut written: u64 = 0;
    let mut scratch = Vec::with_capacity(opts.snaplen as usize + 4);
    let mut ended_by = None;
    let mut stopping: Option<Instant> = None;
    let mut last_status = Instant::now();
    let mut last_flush = Instant::now();
    let mut skipped: u64 = 0;
    let mut output_failed = false;
    let mut flush_error: Option<OutputError> = None;
    let mut lost_because: Option<String> = None;

    let mut last_beat = Instant::now();
    let started = Instant::now();
    let max_bytes = opts.max_bytes.unwrap_or(u64::MAX);
    let mut full = false;
    'outer: loop {
        // Drain every ring the kernel has handed blocks of.
        for ifc in ifaces.iter_mut() {
            let which = opts.which;
            let w = &mut w;
            let counters = &mut ifc.counters;
            let skipped = &mut skipped;
            let flush_error = &mut flush_error;
            let full = &mut full;
            let ifc_raw_ok = ifc.ifindex != 0;
            ifc.ring.drain(&mut scratch, |p| {
                if written >= limit || *full {
                    return false;
                }
                if loopback_echo(p) {
                    return true;
                }
                if which == Which::Out && p.direction() != Direction::Out {
                    return true;
                }
                // Through `any`, only Ethernet-framed packets: the filter
                // was compiled for them. A named raw-IP interface has its own.
                let fits =
                    format::ethernet_framed(p.hatype) || (ifc_raw_ok && format::raw_ip(p.hatype));
                if !fits {
                    *skipped += 1;
                    return true;
                }
                w.packet(p);
                written += 1;
                counters.delivered += 1;
                // `-a filesize`: the packet that reaches the size is the last.
                if w.out.committed() + w.out.buf().len() as u64 >= max_bytes {
                    *full = true;
                }
                if w.out.wants_flush() {
                    if let Err(e) = w.out.flush() {
                        *flush_error = Some(e);
                        return false;
                    }
                }
                written < limit && !*full
            });
            if let Some(e) = flush_error.take() {
                lost_because = Some(e.cause());
                ended_by = Some(e.to_string());
                output_failed = true;
                break 'outer;
            }
            if let Ok((got, drops)) = ifc.ring.stats() {
                ifc.counters.received += got.saturating_sub(drops);
                ifc.counters.dropped += drops;
            }
        }
        if opts.heartbeat && last_beat.elapsed() >= HEARTBEAT && written < limit {
            // Every packet stamped before this has been drained: no ring's
            // current block holds one (or only later ones).
            let now = now_ns();
            let complete_until = ifaces
                .iter()
                .map(|i| i.ring.complete_until(now))
                .min()
                .unwrap_or(now)
                .saturating_sub(IN_FLIGHT_NS);
            format::pcapng_progress(w.out.buf(), complete_until);
            w.out.end_block();
            last_beat = Instant::now();
        }
        if w.out.wants_flush()
            || (low_latency && !w.out.buf().is_empty())
            || last_flush.elapsed() >= Duration::from_secs(1)
        {
            if let Err(e) = w.out.flush() {
                lost_because = Some(e.cause());
                ended_by = Some(e.to_string());
                output_failed = true;
                break 'outer;
            }
            last_flush = Instant::now();
        }
        if written >= limit || full {
            break;
        }
        if opts
            .duration_ms
            .is_some_and(|d| started.elapsed() >= Duration::from_millis(d))
        {
            // `-a duration`: as a signal, with one more look at the rings.
            stopping.get_or_insert_with(Instant::now);
        }
        if let Some(t) = stopping {
            // One more look after the kernel retired the last partial block.
            if t.elapsed() >= Duration::from_millis(60) {
                break;
            }
        }
        if opts.status_line && last_status.elapsed() >= Duration::from_secs(1) {
            let total: u64 = ifaces.iter().map(|i| i.counters.dropped).sum();
            let secs = (now_ns() - start_ns) as f64 / 1e9;
            eprint!(
                "\r{written} packets, {:.0}/s, {total} dropped  ",
                written as f64 / secs.max(0.001)
            );
            last_status = Instant::now();
        }
        let mut fds: Vec<PollFd> = ifaces
            .iter()
            .map(|i| {
                // SAFETY: the ring's fd lives as long as `ifaces`, which
                // outlives this poll call.
                PollFd::new(
                    unsafe { BorrowedFd::borrow_raw(i.ring.fd()) },
                    PollFlags::POLLIN,
                )
            })
            .collect();
        fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        let timeout = if stopping.is_some() {
            20u16
        } else if opts.heartbeat {
            HEARTBEAT.as_millis() as u16
        } else {
            250u16
        };
        match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(CaptureError::Setup(e.into())),
        }
        let sig_ready = fds
            .last()
            .and_then(|f| f.revents())
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        let gone: Vec<usize> = fds[..ifaces.len()]
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
            })
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        if sig_ready {
            if let Ok(Some(si)) = sfd.read_signal() {
                tracing::debug!(signal = si.ssi_signo, "stopping");
            }
            stopping.get_or_insert_with(Instant::now);
        }
        for i in gone {
            let e = ifaces[i].ring.take_error();
            ended_by = Some(format!(
                "interface {} went away ({}): the target's network namespace or device was removed",
                crate::summary::printable(&ifaces[i].name),
                e.map(|e| e.to_string()).unwrap_or_else(|| "hang-up".into())
            ));
            stopping.get_or_insert_with(Instant::now);
        }
    }
    if opts.status_line {
        eprintln!();
    }

    let end_ns = now_ns();
    for ifc in ifaces.iter_mut() {
        if let Ok((got, drops)) = ifc.ring.stats() {
            ifc.counters.received += got.saturating_sub(drops);
            ifc.counters.dropped += drops;
        }
    }
    if w.format == Some(Format::Pcapng) {
        // ISBs for the interfaces that have an IDB.
        let ids: Vec<(i32, u32)> = w
            .idb
            .iter()
            .enumerate()
            .map(|(id, k)| (*k, id as u32))
            .collect();
        for (ifindex, id) in ids {
            let c = ifaces
                .iter()
                .find(|i| i.ifindex == ifindex)
                .or_else(|| ifaces.iter().find(|i| i.ifindex == 0))
                .map(|i| i.counters)
                .unwrap_or_default();
            format::pcapng_isb(w.out.buf(), id, start_ns, end_ns, &c);
            w.out.end_block();
        }
    }
    if !output_failed {
        let fin: Result<(), OutputError> = w.out.finish();
        if let Err(e) = fin {
            lost_because = Some(e.cause());
            ended_by.get_or_insert(e.to_string());
            output_failed = true;
        }
    }
    let _ = std::io::stderr().flush();
    if skipped > 0 {
        eprintln!(
            "netshim: {skipped} packets of interfaces without Ethernet framing were skipped \
             (with -i any, name a tun or WireGuard interface with -i to capture it)"
        );
    }
    Ok(Report {
        interfaces: ifaces.into_iter().map(|i| (i.name, i.counters)).collect(),
        ended_by,
        output_failed,
        packets_written: w.out.packets(),
        packets_lost: w.out.lost(),
        lost_because,
    })
}
