//! `netshim capture -r FILE`: packets read from a pcap or pcapng file (or
//! stdin), filtered, then printed one line each or written with `-w` (so
//! netshim converts between formats). It runs as the caller, in no target:
//! reading a file needs no privilege.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};

use anyhow::{bail, Context};
use netshim_capture::filter::{self, Insn};
use netshim_capture::format;
use netshim_capture::read::{linktype, Reader};
use netshim_capture::summary::Printer;

use super::flags::{CaptureArgs, FormatArg};
use super::lines::{packet_of, printer_of, record_line};

/// The DLT value libpcap compiles a filter for, from a file's LINKTYPE_
/// value: they are equal except for raw IP (pcap-linktype(7)).
fn dlt_of(lt: u16) -> i32 {
    match lt {
        linktype::RAW => 12,
        other => other as i32,
    }
}

enum Out {
    Lines(BufWriter<Box<dyn Write>>),
    Pcapng {
        w: BufWriter<Box<dyn Write>>,
        /// The file's interface index to ours, once its IDB is written.
        ids: HashMap<usize, u32>,
    },
    Pcap {
        w: BufWriter<Box<dyn Write>>,
        linktype: Option<u16>,
    },
}

pub(super) fn main(a: &CaptureArgs, path: &str) -> anyhow::Result<u8> {
    if !a.targets.is_empty() {
        bail!("-r reads a file: it takes no --target-netns (reading needs no privilege)");
    }
    if a.file_size.is_some() || a.rotate_seconds.is_some() || a.file_count.is_some() {
        bail!("-C, -G and -W rotate a live capture's files; with -r, write one file with -w");
    }
    if !a.interfaces.is_empty() {
        bail!("-i chooses interfaces to capture on; with -r the file's interfaces are read");
    }
    let src: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("opening {path}"))?)
    };
    let mut reader = Reader::new(BufReader::with_capacity(1 << 16, src))
        .with_context(|| format!("reading {path}"))?;
    let expr = a.expression.join(" ");
    let mut out = open_output(a)?;
    if let Some(first) = reader.interfaces.first() {
        eprintln!(
            "reading from file {path}, link-type {}, snapshot length {}",
            linktype::name(first.linktype),
            first.snaplen
        );
    }
    if a.print && a.write.as_deref() == Some("-") {
        bail!(
            "--print with -w - would mix lines and packets on stdout: write to a file with -w FILE"
        );
    }
    let printer = printer_of(a);
    let mut filters: HashMap<u16, Option<Vec<Insn>>> = HashMap::new();
    let mut line = Vec::with_capacity(256);
    let mut block = Vec::with_capacity(256);
    let mut shown = 0u64;
    let ended = loop {
        if a.count.is_some_and(|c| shown >= c) {
            break Ok(());
        }
        let rec = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let iface = rec.info;
        let lt = iface.linktype;
        let prog = match filters.get(&lt) {
            Some(p) => p,
            None => {
                let p = filter::compile(&expr, dlt_of(lt), iface.snaplen.max(1))
                    .with_context(|| format!("compiling the filter for {}", linktype::name(lt)))?;
                filters.entry(lt).or_insert(p)
            }
        };
        if let Some(p) = prog {
            if filter::accepts(p, rec.data).unwrap_or(0) == 0 {
                continue;
            }
        }
        shown += 1;
        let pkt = packet_of(&rec);
        if a.count_only {
            continue;
        }
        if a.print && !matches!(out, Out::Lines(_)) {
            line.clear();
            record_line(&printer, &mut line, &rec, false);
            std::io::stdout().write_all(&line)?;
        }
        write_record(a, &printer, &mut out, &rec, &pkt, &mut line, &mut block)?;
    };
    // What was read is written before any error is reported: nothing lost.
    match &mut out {
        Out::Lines(w) | Out::Pcapng { w, .. } | Out::Pcap { w, .. } => w.flush()?,
    }
    if let Out::Pcap { w, linktype: None } = &mut out {
        // An empty result is still a valid pcap file.
        let mut head = Vec::new();
        let (lt, snap) = reader
            .interfaces
            .first()
            .map_or((linktype::ETHERNET, 262144), |i| (i.linktype, i.snaplen));
        format::pcap_header(&mut head, snap, lt, a.precision.into());
        w.write_all(&head)?;
        w.flush()?;
    }
    ended.with_context(|| format!("reading {path} ({shown} packets shown before the error)"))?;
    if a.count_only {
        println!("{shown} packet{}", if shown == 1 { "" } else { "s" });
        return Ok(0);
    }
    eprintln!(
        "{shown} packets read{}",
        if expr.is_empty() {
            ""
        } else {
            " and kept by the filter"
        }
    );
    Ok(0)
}

/// Where `-r` puts what it reads: lines on stdout, or `-w`'s file (or
/// stdout) in `--format`, its header written.
fn open_output(a: &CaptureArgs) -> anyhow::Result<Out> {
    Ok(match a.write.as_deref() {
        None => Out::Lines(BufWriter::new(Box::new(std::io::stdout()))),
        Some(w) => {
            let file: Box<dyn Write> = if w == "-" {
                if std::io::stdout().is_terminal() {
                    bail!("refusing to write binary capture data to a terminal: redirect it or pipe it");
                }
                Box::new(std::io::stdout())
            } else {
                Box::new(File::create(w).with_context(|| format!("creating {w}"))?)
            };
            let mut w = BufWriter::with_capacity(1 << 16, file);
            match a.format {
                FormatArg::Pcapng => {
                    let mut head = Vec::new();
                    format::pcapng_shb(&mut head, concat!("netshim ", env!("CARGO_PKG_VERSION")));
                    w.write_all(&head)?;
                    Out::Pcapng {
                        w,
                        ids: HashMap::new(),
                    }
                }
                FormatArg::Pcap => Out::Pcap { w, linktype: None },
            }
        }
    })
}

/// Writes one record read from the file to `out`.
fn write_record(
    a: &CaptureArgs,
    printer: &Printer,
    out: &mut Out,
    rec: &netshim_capture::read::Record,
    pkt: &format::Packet,
    line: &mut Vec<u8>,
    block: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let (iface, lt) = (rec.info, rec.info.linktype);
    match out {
        Out::Lines(w) => {
            line.clear();
            record_line(printer, line, rec, false);
            w.write_all(line)?;
        }
        Out::Pcapng { w, ids } => {
            block.clear();
            let next = ids.len() as u32;
            let id = *ids.entry(rec.iface).or_insert_with(|| {
                let name = iface
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("if{}", rec.iface));
                format::pcapng_idb(block, lt, iface.snaplen, &name, None);
                next
            });
            format::pcapng_epb(block, id, pkt);
            w.write_all(block)?;
        }
        Out::Pcap { w, linktype: have } => {
            block.clear();
            match *have {
                None => {
                    format::pcap_header(block, iface.snaplen, lt, a.precision.into());
                    *have = Some(lt);
                }
                Some(h) if h != lt => bail!(
                    "the file holds packets of two link types ({} and {}); a pcap file holds one: write pcapng (leave out --format pcap)",
                    linktype::name(h),
                    linktype::name(lt)
                ),
                Some(_) => {}
            }
            format::pcap_record(block, pkt, false, a.precision.into());
            w.write_all(block)?;
        }
    }
    Ok(())
}
