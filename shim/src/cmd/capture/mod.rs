//! `netshim capture`: tcpdump's flags, netshim's engine.
//!
//! With `--target-netns`, netshim takes the same privilege path as `netshim
//! run` and runs its own binary there as the engine (UID 65534, only ambient
//! CAP_NET_RAW). An output file is opened here, as the caller, before any
//! privilege change, and becomes the engine's stdout: the engine never needs
//! write access to the caller's directories.

mod flags;
mod launch;
mod lines;
mod read;
mod settings;
mod targets;
mod writer;

use std::io::IsTerminal;

use anyhow::bail;
use netshim_capture::filter::Compiled;

pub use flags::CaptureArgs;
pub use launch::engine_main;
pub use settings::ENGINE_COMMAND;

use flags::{autostop, filter_text, refuse_flags_in_expression, rotation, single_target, snaplen};

pub fn main(mut a: CaptureArgs) -> anyhow::Result<u8> {
    refuse_flags_in_expression(&a.expression)?;
    if a.filter_file.is_some() {
        let text = filter_text(&a)?;
        a.expression = vec![text];
        a.filter_file = None;
    }
    if let Some(path) = a.read.clone() {
        return read::main(&a, &path);
    }
    if a.list_interfaces {
        return launch::list_interfaces(&a);
    }
    if a.write.as_deref() == Some("-") && std::io::stdout().is_terminal() {
        bail!(
            "refusing to write binary capture data to a terminal: redirect it (> capture.pcapng), \
             pipe it (| tshark -r -), or leave out -w to print one line per packet"
        );
    }
    if let Some(w) = a.write.as_deref().filter(|w| *w != "-") {
        if std::path::Path::new(w).is_dir() {
            bail!("-w {w}: is a directory; give a file name");
        }
    }
    if a.print && a.write.as_deref() == Some("-") {
        bail!(
            "--print with -w - would mix lines and packets on stdout: write to a file with -w FILE"
        );
    }
    if a.sealed && a.targets.is_empty() {
        bail!("--sealed needs --target-netns: it hands sockets made in a target to an engine with no privileges");
    }
    let stop = autostop(&a.autostop)?;
    let mut rot = rotation(&a)?;
    stop.check(&a, &mut rot)?;
    // The filter is compiled once, here: a typo fails before any target is
    // set up, and the engine only attaches the program.
    let filter = Compiled::for_capture(&a.expression.join(" "), snaplen(&a))?;
    let mut args = settings::engine_args(&a, filter);
    args.count = match (args.count, stop.packets) {
        (Some(c), Some(p)) => Some(c.min(p)),
        (c, p) => c.or(p),
    };
    args.duration_ms = stop.duration_ms;
    args.max_bytes = stop.bytes;
    match single_target(&a) {
        _ if a.targets.is_empty() => launch::engine(&a, args, rot),
        Some(t) => launch::in_target(&a, args, t, rot),
        None => launch::in_targets(&a, args, rot),
    }
}
