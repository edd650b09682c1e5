//! A packet's line, for packets read back from a pcap or pcapng stream (a
//! file with `-r`, the engine's stream with `--print`), with tcpdump's
//! printing flags.

use std::io::{Read, Write};

use anyhow::Context;
use netshim_capture::format::Packet;
use netshim_capture::read::{linktype, Reader, Record};
use netshim_capture::summary::Printer;

use super::flags::CaptureArgs;

/// The packet's direction: pcapng's epb_flags, else the Linux cooked
/// headers' packet type (SLL at offset 0, SLL2 at offset 10).
fn direction(lt: u16, flags: u32, data: &[u8]) -> u8 {
    let pkttype = match (flags & 3, lt) {
        (2, _) => libc::PACKET_OUTGOING,
        (1, _) => libc::PACKET_HOST,
        (_, linktype::LINUX_SLL) => data.get(1).copied().unwrap_or(0),
        (_, linktype::LINUX_SLL2) => data.get(10).copied().unwrap_or(0),
        _ => libc::PACKET_HOST,
    };
    match pkttype {
        libc::PACKET_OUTGOING => libc::PACKET_OUTGOING,
        // pcapng's reception type (bits 2-4): broadcast, multicast, to
        // another host, as the cooked headers' types say them.
        _ if flags & 3 == 1 => match (flags >> 2) & 7 {
            3 => libc::PACKET_BROADCAST,
            2 => libc::PACKET_MULTICAST,
            4 => libc::PACKET_OTHERHOST,
            _ => libc::PACKET_HOST,
        },
        t @ (libc::PACKET_BROADCAST | libc::PACKET_MULTICAST | libc::PACKET_OTHERHOST) => t,
        _ => libc::PACKET_HOST,
    }
}

/// The line printer for tcpdump's printing flags.
pub(super) fn printer_of(a: &CaptureArgs) -> Printer {
    Printer::new(a.quiet)
        .with_format(
            a.time,
            netshim_capture::summary::Dump::from_counts(a.hex, a.hex_ascii, a.ascii),
        )
        .with_link_header(a.link_header)
        .with_verbosity(a.verbose, a.absolute_seq)
        .with_precision(a.precision.into())
}

/// A record read from a file as the packet the encoders and the printer
/// take.
pub(super) fn packet_of<'a>(rec: &Record<'a>) -> Packet<'a> {
    Packet {
        ts_ns: rec.ts_ns,
        ifindex: rec.iface as i32,
        hatype: 1,
        pkttype: direction(rec.info.linktype, rec.flags, rec.data),
        data: rec.data,
        orig_len: rec.orig_len,
    }
}

/// Appends the line of a record read from a file or stream. `names`: the
/// line names the interface (from its pcapng block) and the direction, as
/// tcpdump's lines of a live capture that spans several interfaces do.
/// Without it, as `tcpdump -r` prints a file: no interface nor direction,
/// however many interfaces the file holds, except for the Linux cooked
/// headers, which carry them (their interface index means nothing here).
pub(super) fn record_line(printer: &Printer, out: &mut Vec<u8>, rec: &Record, names: bool) {
    let lt = rec.info.linktype;
    let pkt = packet_of(rec);
    let name = match (rec.info.name.as_deref(), lt) {
        (Some(n), _) if names => n,
        (_, linktype::LINUX_SLL | linktype::LINUX_SLL2) => "-",
        _ => "",
    };
    printer.line_of_linktype(out, name, lt, &pkt);
}

/// Prints the line of every packet of a capture stream (`--print` beside
/// `-w`) until it ends.
pub(super) fn print_stream(printer: &Printer, src: impl Read, names: bool) -> anyhow::Result<()> {
    let mut reader = Reader::new(src).context("reading the engine's stream")?;
    let mut line = Vec::with_capacity(256);
    let stdout = std::io::stdout();
    while let Some(rec) = reader
        .next_record()
        .context("reading the engine's stream")?
    {
        line.clear();
        record_line(printer, &mut line, &rec, names);
        stdout
            .lock()
            .write_all(&line)
            .context("printing to stdout")?;
    }
    Ok(())
}
