//! The rings a capture reads: opened here on the interfaces `-i` chose, or
//! set up on the packet sockets netshim made in each target and handed
//! over (a sealed engine, one target or several).

use std::collections::VecDeque;
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

/// A packet socket made elsewhere (by netshim, in target `target`'s network
/// namespace) on interface `name` (`ifindex`, 0 for `any`).
pub struct HandedRing {
    pub target: usize,
    pub name: String,
    pub ifindex: i32,
    pub fd: OwnedFd,
}

/// Packets of one ring kept for timestamp order: their encoded bytes back
/// to back, and each one's (time stamp, end offset). A ring delivers in
/// time order, so merging the rings means picking the queue whose first
/// packet is oldest.
#[derive(Default)]
pub(super) struct Held {
    pub(super) bytes: Vec<u8>,
    /// (time stamp, end): the end counts from the first byte ever held,
    /// `base` bytes before `bytes[0]`.
    items: VecDeque<(u64, usize)>,
    base: usize,
    /// Where the first item's bytes start in `bytes`.
    start: usize,
}

impl Held {
    pub(super) fn head(&self) -> Option<u64> {
        self.items.front().map(|i| i.0)
    }

    /// Marks the bytes appended since the last item as a packet stamped
    /// `ts`.
    pub(super) fn push(&mut self, ts: u64) {
        self.items.push_back((ts, self.base + self.bytes.len()));
    }

    /// Copies the oldest packet to `out`; its length.
    pub(super) fn pop_into(&mut self, out: &mut Vec<u8>) -> usize {
        let Some((_, end)) = self.items.pop_front() else {
            return 0;
        };
        let end = end - self.base;
        out.extend_from_slice(&self.bytes[self.start..end]);
        let len = end - self.start;
        self.start = end;
        if self.items.is_empty() {
            self.base += self.bytes.len();
            self.bytes.clear();
            self.start = 0;
        } else if self.start >= 1 << 20 && self.start * 2 >= self.bytes.len() {
            // Never emptied at a steady rate: let go of what is written.
            self.bytes.drain(..self.start);
            self.base += self.start;
            self.start = 0;
        }
        len
    }
}

/// One ring: an interface (or `any`) of one target.
pub(super) struct Source {
    pub(super) target: usize,
    pub(super) name: String,
    pub(super) ifindex: i32,
    /// `None` once closed: its target exited or its interface went away.
    pub(super) ring: Option<Ring>,
    pub(super) counters: IfaceCounters,
    pub(super) held: Held,
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
    let block = ring::block_size_for(args.snaplen);
    let ring_bytes = (args.buffer_kib as usize * 1024).max(2 * block);
    let mut sources = Vec::new();
    let mut raw_only = true;
    let per_target = |t: usize| wanted.iter().filter(|w| w.0 == t).count();
    let shares: Vec<usize> = wanted.iter().map(|w| per_target(w.0)).collect();
    let retire_ms = if wanted.len() > 1 {
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
            ring_bytes: ring_bytes / share,
            block_bytes: block,
            retire_ms,
            filter,
            promisc: args.promisc,
            ignore_outgoing: args.which == Which::In,
        };
        let ring = Ring::with_socket(fd, &cfg).map_err(socket_err)?;
        sources.push(Source {
            target,
            name,
            ifindex,
            ring: Some(ring),
            counters: IfaceCounters::default(),
            held: Held::default(),
        });
    }
    Ok((sources, raw_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_packets_come_out_whole_and_in_order() {
        let mut h = Held::default();
        h.bytes.extend_from_slice(b"aaaa");
        h.push(1);
        h.bytes.extend_from_slice(b"bb");
        h.push(2);
        assert_eq!(h.head(), Some(1));
        let mut out = Vec::new();
        assert_eq!(h.pop_into(&mut out), 4);
        assert_eq!(h.head(), Some(2));
        assert_eq!(h.pop_into(&mut out), 2);
        assert_eq!(out, b"aaaabb");
        assert_eq!((h.head(), h.bytes.len(), h.start), (None, 0, 0));
        assert_eq!(h.pop_into(&mut out), 0);
        // A steady flow that never empties is compacted, its items intact.
        let mut got = Vec::new();
        for k in 0..5000u64 {
            h.bytes.extend_from_slice(&[k as u8; 1000]);
            h.push(k);
            if k % 2 == 1 {
                out.clear();
                assert_eq!(h.pop_into(&mut out), 1000);
                got.push(out[0]);
            }
        }
        assert!(h.bytes.len() < 4 << 20, "{}", h.bytes.len());
        let want: Vec<u8> = (0..2500u64).map(|k| k as u8).collect();
        assert_eq!(got, want);
    }
}
