//! An AF_PACKET socket with a TPACKET_V3 receive ring.
//!
//! Set up in libpcap's order — socket(protocol 0) → TPACKET_V3 → ring →
//! mmap → filter → bind(ETH_P_ALL) — so that nothing arrives before the
//! filter is in place (protocol 0 receives nothing until the bind), and no
//! unfiltered packet has to be drained from the ring.
//!
//! Kernel rules: `socket(AF_PACKET)` needs CAP_NET_RAW in the user namespace
//! owning the current network namespace; promiscuous mode through
//! `PACKET_ADD_MEMBERSHIP` needs nothing more. `PACKET_STATISTICS` counts
//! only packets the filter accepted and resets on each read.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::filter::Insn;
use crate::format::Packet;

// <linux/if_packet.h>, not all exported by the libc crate.
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket3_hdr`: 48 bytes, followed (at TPACKET_ALIGN(48) = 48) by
/// a `sockaddr_ll`, the frame at `tp_mac`.
#[repr(C)]
struct Tpacket3Hdr {
    next_offset: u32,
    sec: u32,
    nsec: u32,
    snaplen: u32,
    len: u32,
    status: u32,
    mac: u16,
    net: u16,
    rxhash: u32,
    vlan_tci: u32,
    vlan_tpid: u16,
    padding: u16,
    padding2: [u8; 8],
}

#[repr(C)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

// struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
/// `ts_first_pkt` (seconds, then nanoseconds): set when the kernel opens
/// the block (prb_open_block), before any packet goes in.
const BLOCK_TS_FIRST: usize = 32;
const SOCKADDR_LL_OFFSET: usize = 48;

/// Whether the kernel took a VLAN tag out of the frame into the header, as
/// libpcap decides it: a tag marked valid, or a non-zero TCI (kernels
/// before 3.0 had no mark, and VLAN 0 untagged is then taken as no tag).
fn vlan_valid(h: &Tpacket3Hdr) -> bool {
    h.status & TP_STATUS_VLAN_VALID != 0 || h.vlan_tci != 0
}

/// How to set up one ring.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Interface index to bind to; 0 means every interface.
    pub ifindex: i32,
    /// Total ring size in bytes (rounded down to whole blocks, at least 2).
    pub ring_bytes: usize,
    /// Block size in bytes: a power of two number of pages, at least one
    /// packet of `snaplen` plus headers.
    pub block_bytes: usize,
    /// How long the kernel may keep a partly filled block before handing it
    /// over, in milliseconds (latency of a live stream).
    pub retire_ms: u32,
    pub filter: Option<Vec<Insn>>,
    pub promisc: bool,
    /// Receive no outgoing packets (`-Q in`).
    pub ignore_outgoing: bool,
    /// Bytes kept of each packet (`-s`). The kernel cuts a packet only
    /// through a filter's accept length, and a VLAN tag put back adds four
    /// bytes: what is handed over is cut to this as well, as libpcap cuts.
    pub snaplen: u32,
}

/// Chooses the block size for a snaplen: the smallest power-of-two number
/// of pages, at least 1 MiB, that holds one whole packet with its headers.
pub fn block_size_for(snaplen: u32) -> usize {
    let need = snaplen as usize + 128;
    need.max(1 << 20).next_power_of_two()
}

pub struct Ring {
    fd: OwnedFd,
    map: NonNull<u8>,
    map_len: usize,
    block_bytes: usize,
    blocks: usize,
    next: usize,
    snaplen: usize,
    /// With [`Ring::head_ts`]/[`Ring::take`]: the packets left in block
    /// `next`, which was handed over, and the offset of the next one.
    cursor: Option<(u32, usize)>,
}

// SAFETY: the mapping belongs to this Ring alone and is only touched
// through &mut self; moving it to another thread moves sole ownership.
unsafe impl Send for Ring {}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: passes a pointer to a live T and its exact size; the kernel
    // copies at most that many bytes.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

impl Ring {
    /// A new packet socket in the calling thread's network namespace: the
    /// one step that needs CAP_NET_RAW (over that namespace's owner).
    pub fn new_socket() -> io::Result<OwnedFd> {
        // SAFETY: socket() takes integers and returns a new fd or -1.
        let raw = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: the descriptor was just created and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// The ARPHRD type of interface `name`, asked through a packet socket
    /// (SIOCGIFHWADDR answers for the socket's network namespace, so this
    /// works for a socket made in a target and handed over).
    pub fn hardware_type(fd: &OwnedFd, name: &str) -> io::Result<u16> {
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        if name.len() >= req.ifr_name.len() {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: SIOCGIFHWADDR reads the name from and writes the address
        // into the ifreq this function owns; the descriptor is open.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })?;
        // SAFETY: SIOCGIFHWADDR filled the hardware-address member.
        Ok(unsafe { req.ifr_ifru.ifru_hwaddr.sa_family })
    }

    pub fn open(cfg: &RingConfig) -> io::Result<Ring> {
        Self::with_socket(Self::new_socket()?, cfg)
    }

    /// Sets up the ring, filter and binding on a packet socket made
    /// elsewhere (`capture --sealed`): none of it needs a capability, and
    /// the interface index refers to the socket's own network namespace.
    pub fn with_socket(fd: OwnedFd, cfg: &RingConfig) -> io::Result<Ring> {
        let raw = fd.as_raw_fd();
        setsockopt(raw, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3)?;
        if cfg.ignore_outgoing {
            setsockopt(raw, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32)?;
        }
        let blocks = (cfg.ring_bytes / cfg.block_bytes).max(2);
        let req = TpacketReq3 {
            block_size: cfg.block_bytes as u32,
            block_nr: blocks as u32,
            frame_size: 2048,
            frame_nr: (cfg.block_bytes / 2048 * blocks) as u32,
            retire_blk_tov: cfg.retire_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(raw, libc::SOL_PACKET, PACKET_RX_RING, &req)?;
        let map_len = cfg.block_bytes * blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                raw,
                0,
            )
        };
        // MAP_LOCKED may exceed RLIMIT_MEMLOCK for an unprivileged user: retry
        // without it (the ring is then pageable, as libpcap's is).
        let p = if p == libc::MAP_FAILED {
            // SAFETY: as above.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    raw,
                    0,
                )
            }
        } else {
            p
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = Ring {
            fd,
            map: NonNull::new(p as *mut u8).expect("mmap never returns NULL on success"),
            map_len,
            block_bytes: cfg.block_bytes,
            blocks,
            next: 0,
            snaplen: (cfg.snaplen as usize).max(1),
            cursor: None,
        };
        if let Some(prog) = &cfg.filter {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                // Insn has sock_filter's layout (checked by a unit test).
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)?;
        }
        if cfg.promisc && cfg.ifindex > 0 {
            let mr = libc::packet_mreq {
                mr_ifindex: cfg.ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr)?;
        }
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: cfg.ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: binds to a fully initialised sockaddr_ll of the right size.
        check(unsafe {
            libc::bind(
                raw,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(ring)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: i < blocks, so the offset stays inside the mapping.
        unsafe { self.map.as_ptr().add(i * self.block_bytes) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block_status is a naturally aligned u32 inside the mapping,
        // shared with the kernel: it must be read and written atomically.
        unsafe { &*(self.block_ptr(i).add(BLOCK_STATUS) as *const AtomicU32) }
    }

    /// The packet at `off` of block `i`, and the offset of the next one.
    ///
    /// # Safety
    /// Block `i` must be handed over (TP_STATUS_USER, read with Acquire)
    /// and `off` the offset of one of its packets, from the kernel's own
    /// headers inside the block.
    unsafe fn packet_at<'a>(
        &'a self,
        i: usize,
        off: usize,
        scratch: &'a mut Vec<u8>,
    ) -> (Packet<'a>, usize) {
        let base = self.block_ptr(i);
        // SAFETY: the caller's promise: a packet of a handed-over block,
        // which the kernel does not touch until it is given back.
        unsafe {
            let h = &*(base.add(off) as *const Tpacket3Hdr);
            let sll = &*(base.add(off + SOCKADDR_LL_OFFSET) as *const libc::sockaddr_ll);
            let frame =
                std::slice::from_raw_parts(base.add(off + h.mac as usize), h.snaplen as usize);
            let mut p = Packet {
                ts_ns: h.sec as u64 * 1_000_000_000 + h.nsec as u64,
                ifindex: sll.sll_ifindex,
                hatype: sll.sll_hatype,
                pkttype: sll.sll_pkttype,
                data: frame,
                orig_len: h.len,
            };
            // As libpcap, only where the link-layer header has a type
            // field to put the tag before (Ethernet framing).
            if vlan_valid(h) && frame.len() >= 12 && crate::format::ethernet_framed(p.hatype) {
                let tpid = if h.status & TP_STATUS_VLAN_TPID_VALID != 0 || h.vlan_tpid != 0 {
                    h.vlan_tpid
                } else {
                    0x8100
                };
                scratch.clear();
                scratch.extend_from_slice(&frame[..12]);
                scratch.extend_from_slice(&tpid.to_be_bytes());
                scratch.extend_from_slice(&(h.vlan_tci as u16).to_be_bytes());
                scratch.extend_from_slice(&frame[12..]);
                p.data = scratch.as_slice();
                p.orig_len += 4;
            }
            // The kernel cuts to the snap length only through a filter
            // (and a tag put back adds four bytes): cut here, as libpcap.
            p.data = &p.data[..p.data.len().min(self.snaplen)];
            (p, off + h.next_offset as usize)
        }
    }

    /// Hands block `next` back to the kernel and moves to the next one.
    fn give_back(&mut self) {
        self.status(self.next)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.next = (self.next + 1) % self.blocks;
        self.cursor = None;
    }

    /// Hands every packet of every block the kernel has filled, in order, to
    /// `f`, then returns the blocks to the kernel. `scratch` is used to put
    /// back a VLAN tag the kernel took out of the frame. Returns the number
    /// of packets seen; stops early (leaving the rest for the next call) when
    /// `f` returns false. (Not mixed with [`Ring::take`] on one ring.)
    pub fn drain(&mut self, scratch: &mut Vec<u8>, mut f: impl FnMut(&Packet) -> bool) -> u64 {
        let mut n = 0;
        for _ in 0..self.blocks {
            let i = self.next;
            if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the kernel handed this block to user space
            // (TP_STATUS_USER, read with Acquire); until we store
            // TP_STATUS_KERNEL it does not touch it. All offsets come from
            // the kernel's own headers inside the block.
            let (num, mut off) = unsafe { self.block_start(i) };
            let mut go_on = true;
            for _ in 0..num {
                // SAFETY: as above; `off` is the kernel's own offset.
                let (p, next) = unsafe { self.packet_at(i, off, scratch) };
                n += 1;
                if !f(&p) {
                    go_on = false;
                    break;
                }
                off = next;
            }
            self.give_back();
            if !go_on {
                break;
            }
        }
        n
    }

    /// Block `i`'s packet count and first packet's offset.
    ///
    /// # Safety
    /// Block `i` must be handed over (TP_STATUS_USER, read with Acquire).
    unsafe fn block_start(&self, i: usize) -> (u32, usize) {
        let base = self.block_ptr(i);
        // SAFETY: the caller's promise; two u32 of the block's header.
        unsafe {
            (
                std::ptr::read(base.add(BLOCK_NUM_PKTS) as *const u32),
                std::ptr::read(base.add(BLOCK_FIRST_PKT) as *const u32) as usize,
            )
        }
    }

    /// Enters the next handed-over block with a packet, if any: the cursor.
    fn enter(&mut self) -> Option<(u32, usize)> {
        for _ in 0..self.blocks {
            if let Some(c) = self.cursor {
                return Some(c);
            }
            if self.status(self.next).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                return None;
            }
            // SAFETY: handed over (TP_STATUS_USER, read with Acquire).
            let (num, off) = unsafe { self.block_start(self.next) };
            if num == 0 {
                self.give_back();
            } else {
                self.cursor = Some((num, off));
            }
        }
        self.cursor
    }

    /// The time stamp of the oldest packet handed over and not yet taken
    /// with [`Ring::take`]: packets stay in the ring until taken, with no
    /// copy; a block goes back to the kernel once its last one is taken.
    pub fn head_ts(&mut self) -> Option<u64> {
        let (_, off) = self.enter()?;
        // SAFETY: the cursor is inside block `next`, handed over; the
        // header's time stamp fields are read.
        let h = unsafe { &*(self.block_ptr(self.next).add(off) as *const Tpacket3Hdr) };
        Some(h.sec as u64 * 1_000_000_000 + h.nsec as u64)
    }

    /// Hands the packet [`Ring::head_ts`] stands for to `f` and moves past
    /// it; false when there is none.
    pub fn take(&mut self, scratch: &mut Vec<u8>, f: impl FnOnce(&Packet)) -> bool {
        let Some((left, off)) = self.enter() else {
            return false;
        };
        // SAFETY: the cursor is a packet of block `next`, handed over.
        let (p, next) = unsafe { self.packet_at(self.next, off, scratch) };
        f(&p);
        if left > 1 {
            self.cursor = Some((left - 1, next));
        } else {
            self.give_back();
        }
        true
    }

    /// Whether every block is handed over and not yet given back: the
    /// kernel has nowhere to put a packet (it drops them).
    pub fn full(&self) -> bool {
        (0..self.blocks).all(|i| self.status(i).load(Ordering::Acquire) & TP_STATUS_USER != 0)
    }

    /// The time before which every packet of this ring has been handed
    /// over, with `now_ns` read before the call: the packets of blocks
    /// handed over are seen with [`Ring::head_ts`] (ask this first, then
    /// look at them, so that a block handed over in between is seen). If
    /// the block the kernel is filling holds no packet, that is `now_ns`
    /// (less what is still on its way through the stack, which the caller
    /// allows for); otherwise the time the kernel opened that block, whose
    /// packets come out when it is retired.
    pub fn complete_until(&self, now_ns: u64) -> u64 {
        let mut i = self.next;
        // Blocks handed over and not given back are seen whole (with
        // [`Ring::head_ts`]): the first the kernel still owns is what
        // tells.
        for _ in 0..self.blocks {
            if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            i = (i + 1) % self.blocks;
        }
        let base = self.block_ptr(i);
        if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            // SAFETY: num_pkts is a naturally aligned u32 inside the
            // mapping, which the kernel updates (under its queue lock) as it
            // adds packets to the block it owns: read it atomically.
            let num = unsafe { &*(base.add(BLOCK_NUM_PKTS) as *const AtomicU32) };
            if num.load(Ordering::Acquire) == 0 {
                return now_ns;
            }
        }
        // SAFETY: two aligned u32 inside the mapping, written when the
        // block was opened and not again until it is handed back and
        // reopened; volatile reads of memory the kernel shares.
        let (sec, nsec) = unsafe {
            (
                std::ptr::read_volatile(base.add(BLOCK_TS_FIRST) as *const u32),
                std::ptr::read_volatile(base.add(BLOCK_TS_FIRST + 4) as *const u32),
            )
        };
        (u64::from(sec) * 1_000_000_000 + u64::from(nsec)).min(now_ns)
    }

    /// Packets the filter accepted and packets dropped since the last call
    /// (the kernel resets the counters on each read).
    pub fn stats(&self) -> io::Result<(u64, u64)> {
        let mut s = TpacketStatsV3 {
            packets: 0,
            drops: 0,
            freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most len bytes into the live struct.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                &mut s as *mut _ as *mut libc::c_void,
                &mut len,
            )
        })?;
        // tp_packets includes the dropped ones.
        Ok((s.packets as u64, s.drops as u64))
    }

    /// The socket's pending error (ENETDOWN when its interface went away).
    pub fn take_error(&self) -> Option<io::Error> {
        let mut e: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ERROR writes one int into the live local.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut e as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        (r == 0 && e != 0).then(|| io::Error::from_raw_os_error(e))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in open(); no reference
        // into it outlives &mut self.
        unsafe {
            libc::munmap(self.map.as_ptr() as *mut libc::c_void, self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_struct_layouts() {
        assert_eq!(std::mem::size_of::<Tpacket3Hdr>(), 48);
        assert_eq!(std::mem::size_of::<TpacketReq3>(), 28);
        assert_eq!(std::mem::size_of::<TpacketStatsV3>(), 12);
    }

    #[test]
    fn blocks_hold_a_whole_packet() {
        assert_eq!(block_size_for(262144), 1 << 20);
        assert!(block_size_for(262144) >= 262144 + 128);
        assert_eq!(block_size_for(96), 1 << 20);
        assert_eq!(block_size_for(2_000_000), 1 << 21);
    }
}
