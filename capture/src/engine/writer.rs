//! What each packet becomes: a pcapng block (its interface's IDB first,
//! once), a pcap record or a line; and, at the end of an interface, its
//! statistics. With several targets an interface is known by (target,
//! ifindex) and named `TARGET/IFACE`, the target described in its IDB.

use std::collections::HashMap;

use crate::args::Format;
use crate::format::{self, IfaceCounters, Packet};
use crate::output::Output;
use crate::summary::Printer;

/// An interface of the capture: (target, ifindex). The ifindex is the
/// packet's own (`-i any` gives every interface of its target).
pub(super) type Key = (usize, i32);

/// The names of one target's interfaces and what it is called.
#[derive(Default)]
pub(super) struct Naming {
    /// Empty when the capture has one target: names are then the
    /// interface's alone.
    pub(super) label: String,
    pub(super) description: String,
    /// ifindex → name, in the target's network namespace.
    pub(super) names: HashMap<i32, String>,
}

pub(super) struct Writer {
    pub(super) out: Output,
    pub(super) format: Option<Format>,
    pub(super) printer: Printer,
    pub(super) snaplen: u32,
    pub(super) filter: Option<String>,
    /// pcap with several interfaces: LINUX_SLL2 records.
    pub(super) sll2: bool,
    /// pcap of one raw-IP interface (tun, WireGuard): LINKTYPE_RAW.
    pub(super) raw_pcap: bool,
    pub(super) precision: format::Precision,
    /// (target, ifindex) → pcapng interface id, in order of first packet;
    /// with whether its statistics are written.
    pub(super) idb: Vec<(Key, bool)>,
    /// The last (key, id) looked up: packets come in runs per interface.
    last_idb: Option<(Key, u32)>,
    /// Per target.
    pub(super) naming: Vec<Naming>,
    /// Names are looked up in this process's network namespace (not a
    /// sealed engine, whose own namespace is empty).
    pub(super) look_up: bool,
    /// Lines name the interface and direction: the capture spans several
    /// interfaces (`-i any`, repeated `-i`) or targets, as tcpdump's lines
    /// of `-i any` do.
    pub(super) line_names: bool,
}

impl Writer {
    pub(super) fn new(out: Output, format: Option<Format>, printer: Printer) -> Writer {
        Writer {
            out,
            format,
            printer,
            snaplen: crate::DEFAULT_SNAPLEN,
            filter: None,
            sll2: false,
            raw_pcap: false,
            precision: format::Precision::Micro,
            idb: Vec::new(),
            last_idb: None,
            naming: Vec::new(),
            look_up: true,
            line_names: false,
        }
    }

    /// The file's header (pcapng SHB, pcap global header), if any.
    pub(super) fn start(&mut self) {
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

    /// The name an interface is shown with: `IFACE`, or `TARGET/IFACE`.
    pub(super) fn name_of(&mut self, (t, ifindex): Key) -> String {
        let look_up = self.look_up;
        let n = &mut self.naming[t];
        let name = n
            .names
            .entry(ifindex)
            .or_insert_with(|| {
                if look_up {
                    super::interface_name(ifindex)
                } else {
                    format!("if{ifindex}")
                }
            })
            .clone();
        if n.label.is_empty() {
            name
        } else {
            format!("{}/{name}", n.label)
        }
    }

    /// The pcapng interface id of `key`, its IDB written to the output on
    /// its first packet.
    fn idb_of(&mut self, key: Key, hatype: u16) -> u32 {
        if let Some((k, id)) = self.last_idb {
            if k == key {
                return id;
            }
        }
        let id = match self.idb.iter().position(|(k, _)| *k == key) {
            Some(i) => i as u32,
            None => {
                let name = self.name_of(key);
                let about = &self.naming[key.0].description;
                let about = (!about.is_empty()).then(|| about.clone());
                format::pcapng_idb_of(
                    self.out.buf(),
                    &format::Idb {
                        linktype: format::linktype_of(hatype),
                        snaplen: self.snaplen,
                        name: &name,
                        description: about.as_deref(),
                        filter: self.filter.as_deref(),
                    },
                );
                self.out.end_block();
                self.idb.push((key, false));
                (self.idb.len() - 1) as u32
            }
        };
        self.last_idb = Some((key, id));
        id
    }

    /// Encodes packet `p` of target `t`: into `held` (kept for ordering),
    /// or straight into the output as a whole packet.
    pub(super) fn encode(&mut self, t: usize, p: &Packet, held: Option<&mut Vec<u8>>) {
        let key = (t, p.ifindex);
        let line_name = match self.format {
            None if self.line_names => Some(self.name_of(key)),
            _ => None,
        };
        let id = match self.format {
            Some(Format::Pcapng) => self.idb_of(key, p.hatype),
            _ => 0,
        };
        let direct = held.is_none();
        let buf = match held {
            Some(b) => b,
            None => self.out.buf(),
        };
        match self.format {
            Some(Format::Pcapng) => format::pcapng_epb(buf, id, p),
            Some(Format::Pcap) => format::pcap_record(buf, p, self.sll2, self.precision),
            None => {
                let lt = format::linktype_of(p.hatype);
                let name = line_name.unwrap_or_default();
                self.printer.line_of_linktype(buf, &name, lt, p);
            }
        }
        if direct {
            self.out.end_packet();
        }
    }

    /// Writes the statistics (ISB) of every interface of the targets
    /// `which` accepts that has an IDB and none yet; `counters` gives each
    /// one's counts.
    pub(super) fn statistics(
        &mut self,
        which: impl Fn(usize) -> bool,
        counters: impl Fn(Key) -> IfaceCounters,
        start_ns: u64,
        end_ns: u64,
    ) {
        if self.format != Some(Format::Pcapng) {
            return;
        }
        for id in 0..self.idb.len() {
            let (key, done) = self.idb[id];
            if done || !which(key.0) {
                continue;
            }
            format::pcapng_isb(self.out.buf(), id as u32, start_ns, end_ns, &counters(key));
            self.out.end_block();
            self.idb[id].1 = true;
        }
    }
}
