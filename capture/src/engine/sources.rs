//! The rings a capture reads: opened here on the interfaces `-i` chose, or
//! set up on the packet sockets netshim made in each target and handed
//! over (a sealed engine, one target or several).

use std::os::fd::OwnedFd;

use crate::args::{EngineArgs, Which};
use crate::format::{self, IfaceCounters};
use crate::ring::{self, Ring, RingConfig};
use crate::CaptureError;

/// How long the kernel may hold a packet in a ring block that is not full
/// (TPACKET_V3's block retire timer).
pub const RETIRE_MS: u32 = 20;

/// The block retire timer when the engine reads several rings: a packet of
/// one ring may wait for the block another ring is filling to be handed
/// over (see `steps`), so each ring hands its blocks over sooner. At a high
/// rate blocks fill first and the timer changes nothing; at a low rate it
/// is a wake-up per ring every few ms while packets come.
pub const RETIRE_MS_SEVERAL: u32 = 5;

/// The fewest blocks a ring has when the engine reads several: a ring
/// holds the blocks whose packets wait for the other rings (about two
/// retire times' worth) while the kernel fills the next.
const MIN_BLOCKS_SEVERAL: usize = 8;

/// A packet socket made elsewhere (by netshim, in target `target`'s network
/// namespace) on interface `name` (`ifindex`, 0 for `any`).
pub struct HandedRing {
    pub target: usize,
    pub name: String,
    pub ifindex: i32,
    pub fd: OwnedFd,
}

/// One ring: an interface (or `any`) of one target.
pub(super) struct Source {
    pub(super) target: usize,
    pub(super) name: String,
    pub(super) ifindex: i32,
    /// `None` once closed: its target exited or its interface went away.
    pub(super) ring: Option<Ring>,
    pub(super) counters: IfaceCounters,
    /// Its target exited or its interface went away: closed once what it
    /// holds is written.
    pub(super) closing: bool,
}

impl Source {
    /// Adds what the kernel counted since the last call.
    pub(super) fn count(&mut self) {
        if let Some(Ok((got, drops))) = self.ring.as_ref().map(Ring::stats) {
            self.counters.received += got.saturating_sub(drops);
            self.counters.dropped += drops;
        }
    }

    /// Takes the last counts and closes the ring (its socket and mapping).
    pub(super) fn close(&mut self) {
        self.count();
        self.ring = None;
    }
}

/// Opens the rings: on the handed sockets, or on new sockets of the
/// interfaces `args.interfaces` chooses here. Returns them and whether
/// every one is a raw-IP interface (tun, WireGuard).
pub(super) fn open(
    args: &EngineArgs,
    handed: Vec<HandedRing>,
) -> Result<(Vec<Source>, bool), CaptureError> {
    let mut wanted: Vec<(usize, String, i32, Option<OwnedFd>)> = handed
        .into_iter()
        .map(|h| (h.target, h.name, h.ifindex, Some(h.fd)))
        .collect();
    if wanted.is_empty() {
        for (name, ifindex) in super::interfaces::choose(&args.interfaces)? {
            wanted.push((0, name, ifindex, None));
        }
    }
    let several = wanted.len() > 1;
    let mut block = ring::block_size_for(args.snaplen);
    if several && block / 2 >= args.snaplen as usize + 128 {
        // Packets stay in their ring until no other ring can precede them
        // (see `steps`), in blocks handed over every few ms: smaller
        // blocks, so that the kernel still has free ones meanwhile.
        block /= 2;
    }
    let ring_bytes = (args.buffer_kib as usize * 1024).max(2 * block);
    let mut sources = Vec::new();
    let mut raw_only = true;
    let per_target = |t: usize| wanted.iter().filter(|w| w.0 == t).count();
    let shares: Vec<usize> = wanted.iter().map(|w| per_target(w.0)).collect();
    let retire_ms = if several {
        RETIRE_MS_SEVERAL
    } else {
        RETIRE_MS
    };
    for ((target, name, ifindex, fd), share) in wanted.into_iter().zip(shares) {
        let socket_err = |source| CaptureError::Socket {
            iface: name.clone(),
            source,
        };
        let fd = match fd {
            Some(fd) => fd,
            None => Ring::new_socket().map_err(socket_err)?,
        };
        // The filter program for the interface's framing: `any` (index 0)
        // sees Ethernet-framed packets (raw-IP ones are skipped there).
        let raw = ifindex != 0 && Ring::hardware_type(&fd, &name).is_ok_and(format::raw_ip);
        raw_only &= raw;
        let filter = match (&args.filter, raw) {
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
        // Each target gets the ring size asked for, shared by its rings.
        let cfg = RingConfig {
            ifindex,
            ring_bytes: if several {
                (ring_bytes / share).max(MIN_BLOCKS_SEVERAL * block)
            } else {
                ring_bytes / share
            },
            block_bytes: block,
            retire_ms,
            filter,
            promisc: args.promisc,
            ignore_outgoing: args.which == Which::In,
            snaplen: args.snaplen,
        };
        let ring = Ring::with_socket(fd, &cfg).map_err(socket_err)?;
        sources.push(Source {
            target,
            name,
            ifindex,
            ring: Some(ring),
            counters: IfaceCounters::default(),
            closing: false,
        });
    }
    Ok((sources, raw_only))
}
