//! `netshim capture`: tcpdump's flags, netshim's engine.
//!
//! With `--target-netns`, netshim takes the same privilege path as `netshim
//! run` and runs its own binary there as the engine (UID 65534, only ambient
//! CAP_NET_RAW). An output file is opened here, as the caller, before any
//! privilege change, and becomes the engine's stdout: the engine never needs
//! write access to the caller's directories.

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context};
use netshim_capture::filter::Compiled;
use netshim_capture::rotate::Rotation;
use netshim_capture::{EngineArgs, Format, Options, Which};
use netshim_runtime::target::select::Selector;
use netshim_runtime::target::Target;

use crate::cmd::capture_write::{file_output, stops_after_files, wait_writer};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Pcapng,
    Pcap,
}

/// tcpdump's `--time-stamp-precision`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PrecisionArg {
    Micro,
    Nano,
}

impl From<PrecisionArg> for netshim_capture::format::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Micro => Self::Micro,
            PrecisionArg::Nano => Self::Nano,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    In,
    Out,
    Inout,
}

#[derive(clap::Args)]
#[command(after_help = CAPTURE_EXAMPLES)]
pub struct CaptureArgs {
    /// Capture in this target (same forms as `netshim run`); without it,
    /// capture in the current network namespace (needs CAP_NET_RAW there).
    /// Repeat it, or give a selector (docker-compose:PROJECT,
    /// podman-compose:PROJECT, docker-label:KEY=VALUE,
    /// podman-label:KEY=VALUE, k8s:NAMESPACE/*), to capture several targets
    /// into one pcapng, merged in time, each interface named TARGET/IFACE.
    #[arg(long = "target-netns", value_name = "TARGET")]
    pub(crate) targets: Vec<Selector>,
    /// With several targets: leave out, with a warning, the targets that
    /// cannot be joined, instead of refusing to start.
    #[arg(long = "skip-unreachable")]
    pub(crate) skip_unreachable: bool,
    /// With several targets: how long a packet is held so that the
    /// packets of all targets are written in timestamp order, in
    /// milliseconds. A packet later than that is written at once, out of
    /// order (and counted).
    #[arg(long = "reorder-window", value_name = "MS", default_value_t = 200)]
    pub(crate) reorder_ms: u64,
    /// With -w - to a pipe: end the capture when the reader has taken
    /// nothing for SECS seconds (a closed `kubectl exec` stream leaves the
    /// capture blocked on a pipe nobody reads); 0 never. [default: 60 with
    /// -w -, else 0]
    #[arg(long = "stall-timeout", value_name = "SECS")]
    pub(crate) stall_timeout: Option<u32>,
    /// Interface to capture on; repeat for several; `any` for all. Default:
    /// the first interface that is up and not loopback.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub(crate) interfaces: Vec<String>,
    /// Write packets to FILE (`-` for stdout) instead of printing them.
    #[arg(short = 'w', value_name = "FILE")]
    pub(crate) write: Option<String>,
    /// Stop after COUNT packets.
    #[arg(short = 'c', value_name = "COUNT")]
    pub(crate) count: Option<u64>,
    /// Stop when a condition is met, as dumpcap's: duration:SECS,
    /// filesize:KB (1000 bytes), files:N (with -C or -G), packets:N. Repeatable:
    /// the first met ends the capture.
    #[arg(short = 'a', long = "autostop", value_name = "COND")]
    pub(crate) autostop: Vec<String>,
    /// Bytes to keep of each packet (0 means the default, 262144).
    #[arg(short = 's', value_name = "SNAPLEN", default_value_t = netshim_capture::DEFAULT_SNAPLEN)]
    pub(crate) snaplen: u32,
    /// Ring buffer size in KiB.
    #[arg(short = 'B', value_name = "KiB", default_value_t = netshim_capture::DEFAULT_BUFFER_KIB)]
    pub(crate) buffer: u32,
    /// Start a new file before the current one passes SIZE million bytes (FILE, FILE1, FILE2…).
    #[arg(short = 'C', value_name = "SIZE")]
    pub(crate) file_size: Option<u64>,
    /// With -C: keep a ring of N files (FILE0…); with -G alone: stop after N files.
    #[arg(short = 'W', value_name = "N")]
    pub(crate) file_count: Option<u32>,
    /// Start a new file every SECONDS; FILE is a strftime(3) pattern.
    #[arg(short = 'G', value_name = "SECONDS")]
    pub(crate) rotate_seconds: Option<u64>,
    /// File format for -w.
    #[arg(long, value_enum, default_value = "pcapng")]
    pub(crate) format: FormatArg,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub(crate) no_promisc: bool,
    /// Which directions to capture.
    #[arg(short = 'Q', long = "direction", value_enum, default_value = "inout")]
    pub(crate) direction: DirectionArg,
    /// Do not convert addresses to names (netshim never does; accepted as tcpdump does).
    #[arg(short = 'n')]
    pub(crate) numeric: bool,
    /// Print less protocol detail.
    #[arg(short = 'q')]
    pub(crate) quiet: bool,
    /// Time stamps as tcpdump's -t: -t none, -tt seconds since the epoch,
    /// -ttt delta from the previous packet, -tttt date and time, -ttttt
    /// delta from the first packet.
    #[arg(short = 't', action = clap::ArgAction::Count)]
    pub(crate) time: u8,
    /// Print each packet in hex from the network layer (-xx: from the
    /// link-layer header).
    #[arg(short = 'x', action = clap::ArgAction::Count)]
    pub(crate) hex: u8,
    /// Print each packet in hex and ASCII (-XX: from the link-layer header).
    #[arg(short = 'X', action = clap::ArgAction::Count)]
    pub(crate) hex_ascii: u8,
    /// Print each packet in ASCII, from the network layer.
    #[arg(short = 'A')]
    pub(crate) ascii: bool,
    /// More protocol detail, as tcpdump's -v: the IP header (TTL, ID,
    /// offset, flags, length; IPv6 class, flow label, hop limit), TCP, UDP
    /// and ICMPv6 checksums, the packet an ICMP error quotes; -vv also
    /// IPv4 UDP checksums and every TCP sequence number.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// TCP sequence numbers as they are (absolute), not relative to the
    /// conversation's first, as tcpdump -S.
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers")]
    pub(crate) absolute_seq: bool,
    /// Print the link-level header on each line (Ethernet addresses and
    /// type), as tcpdump -e.
    #[arg(short = 'e')]
    pub(crate) link_header: bool,
    /// Line-buffered output (accepted as tcpdump's: netshim writes whole
    /// lines and flushes each batch of packets at once).
    #[arg(short = 'l')]
    pub(crate) line_buffered: bool,
    /// Packet-buffered -w output (accepted as tcpdump's: netshim flushes
    /// -w - per batch, and a file at least every second).
    #[arg(short = 'U')]
    pub(crate) packet_buffered: bool,
    /// Time stamps in microseconds (default) or nanoseconds: in printed
    /// lines and in pcap files (their magic says which); pcapng files always
    /// carry nanoseconds.
    #[arg(long = "time-stamp-precision", value_enum, default_value = "micro")]
    pub(crate) precision: PrecisionArg,
    /// With -w FILE: print each packet's line on stdout as well, as
    /// tcpdump --print.
    #[arg(long = "print")]
    pub(crate) print: bool,
    /// With -r: print only the number of packets (that the filter keeps).
    #[arg(long = "count", requires = "read")]
    pub(crate) count_only: bool,
    /// With --target-netns: netshim makes the packet sockets in the target and
    /// the engine runs with no capability at all, in a user namespace of its
    /// own with an empty network namespace.
    #[arg(long)]
    pub(crate) sealed: bool,
    /// With -C or -G: run CMD with each file's name once rotation has
    /// closed it (as you, outside the target; not through a shell).
    #[arg(short = 'z', value_name = "CMD")]
    pub(crate) post_rotate: Option<String>,
    /// List the interfaces netshim can capture on (in the target, with
    /// --target-netns), as tcpdump -D does, and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    pub(crate) list_interfaces: bool,
    /// Read packets from FILE (pcap or pcapng; `-` for stdin) instead of
    /// capturing: print them, or with -w convert them (the filter applies).
    #[arg(short = 'r', value_name = "FILE")]
    pub(crate) read: Option<String>,
    /// Take the filter expression from FILE (an expression on the command
    /// line is then refused, where tcpdump ignores it).
    #[arg(short = 'F', value_name = "FILE")]
    pub(crate) filter_file: Option<std::path::PathBuf>,
    /// A filter in tcpdump's syntax (pcap-filter(7)).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FILTER EXPRESSION"
    )]
    pub(crate) expression: Vec<String>,
}

const CAPTURE_EXAMPLES: &str = "\
Examples:
  sudo netshim capture --target-netns netns:blue -i eth0 -c 300 -w f.pcapng 'udp port 5000'
  netshim capture --target-netns docker:web -i lo -w - | tshark -r -     # rootless Docker, no root
  netshim capture --target-netns docker:web -w - | wireshark -k -i -
  sudo netshim capture --target-netns pid:4242 -i any -n icmp";

/// The sockets a sealed engine was handed (see [`EngineArgs::sockets`]).
fn handed_sockets(a: &EngineArgs) -> anyhow::Result<Vec<(String, i32, OwnedFd)>> {
    use std::os::fd::FromRawFd;
    let mut v = Vec::new();
    for s in &a.sockets {
        let fd = s.fd;
        let st = nix::sys::stat::fstat(fd).with_context(|| format!("handed descriptor {fd}"))?;
        anyhow::ensure!(
            st.st_mode & libc::S_IFMT == libc::S_IFSOCK && fd > 2,
            "descriptor {fd} handed to the sealed engine is not a socket"
        );
        // SAFETY: netshim placed this socket at `fd` for this process and
        // nothing else here owns it (checked to be a socket above).
        v.push((s.name.clone(), s.ifindex, unsafe {
            OwnedFd::from_raw_fd(fd)
        }));
    }
    Ok(v)
}

/// What the engine is asked to do, from the user's flags: the one mapping
/// from tcpdump's flags to the engine's settings, for the engine in a target
/// and in this process alike. Where the packets go is the caller's part.
fn engine_args(a: &CaptureArgs, filter: Option<Compiled>) -> EngineArgs {
    EngineArgs {
        interfaces: a.interfaces.clone(),
        count: a.count,
        snaplen: snaplen(a),
        buffer_kib: a.buffer,
        promisc: !a.no_promisc,
        which: match a.direction {
            DirectionArg::In => Which::In,
            DirectionArg::Out => Which::Out,
            DirectionArg::Inout => Which::InOut,
        },
        quiet: a.quiet,
        time: a.time,
        dump: netshim_capture::summary::Dump::from_counts(a.hex, a.hex_ascii, a.ascii),
        link_header: a.link_header,
        verbose: a.verbose,
        absolute_seq: a.absolute_seq,
        precision: a.precision.into(),
        write: a.write.as_ref().map(|_| match a.format {
            FormatArg::Pcapng => Format::Pcapng,
            FormatArg::Pcap => Format::Pcap,
        }),
        filter,
        stall_timeout: stall_timeout(a),
        ..EngineArgs::default()
    }
}

/// `--stall-timeout`: 60 s by default for `-w -` (a binary stream nobody
/// pages through), off otherwise (`| less` may rightly wait).
pub(crate) fn stall_timeout(a: &CaptureArgs) -> Option<u32> {
    match (a.stall_timeout, a.write.as_deref()) {
        (Some(0), _) => None,
        (Some(s), _) => Some(s),
        (None, Some("-")) => Some(60),
        (None, _) => None,
    }
}

/// `-a`: dumpcap's stop conditions.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Autostop {
    duration_ms: Option<u64>,
    bytes: Option<u64>,
    files: Option<u32>,
    packets: Option<u64>,
}

/// Parses each `-a KEY:VALUE`; a condition given twice keeps the first to
/// be met (the smaller value).
pub(crate) fn autostop(conds: &[String]) -> anyhow::Result<Autostop> {
    let mut s = Autostop::default();
    for c in conds {
        let Some((key, val)) = c.split_once(':') else {
            bail!("-a {c}: no ':': give duration:SECS, filesize:KB, files:N or packets:N");
        };
        let whole = |what: &str| -> anyhow::Result<u64> {
            match val.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!("-a {c}: {what} must be a whole number above 0"),
            }
        };
        fn keep_min<T: Ord + Copy>(slot: &mut Option<T>, v: T) {
            *slot = Some(slot.map_or(v, |o| o.min(v)));
        }
        match key {
            "duration" => {
                let secs: f64 = val
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v > 0.0 && *v < 1e9)
                    .ok_or_else(|| {
                        anyhow::anyhow!("-a {c}: the duration must be a number of seconds above 0")
                    })?;
                keep_min(&mut s.duration_ms, ((secs * 1000.0).ceil() as u64).max(1));
            }
            "filesize" => {
                let kb = whole("the file size in kB")?;
                let bytes = kb
                    .checked_mul(1000)
                    .ok_or_else(|| anyhow::anyhow!("-a {c}: the file size is too large"))?;
                keep_min(&mut s.bytes, bytes);
            }
            "files" => {
                let n = u32::try_from(whole("the number of files")?)
                    .map_err(|_| anyhow::anyhow!("-a {c}: the number of files is too large"))?;
                keep_min(&mut s.files, n);
            }
            "packets" => keep_min(&mut s.packets, whole("the number of packets")?),
            _ => bail!(
                "-a {c}: unknown condition {key:?}: give duration:SECS, filesize:KB, files:N or packets:N"
            ),
        }
    }
    Ok(s)
}

impl Autostop {
    /// Refuses conditions that mean nothing with the other flags, and
    /// makes `files:N` the rotation's end (dumpcap's: N files written,
    /// with `-C`, `-G`, or a `-C -W` ring).
    fn check(&self, a: &CaptureArgs, rot: &mut Option<Rotation>) -> anyhow::Result<()> {
        if self.bytes.is_some() {
            if a.write.is_none() {
                bail!("-a filesize:KB stops when the file reaches KB kB: it needs -w");
            }
            if rot.is_some() {
                bail!(
                    "-a filesize:KB stops one file; with -C or -G, end the capture with -a files:N"
                );
            }
        }
        if let Some(n) = self.files {
            match rot {
                Some(r) => r.stop_after = Some(n),
                None => bail!(
                    "-a files:N counts the files -C or -G make: it needs -C or -G and -w FILE"
                ),
            }
        }
        Ok(())
    }
}

/// `-s 0` means the default, as in tcpdump.
fn snaplen(a: &CaptureArgs) -> u32 {
    if a.snaplen == 0 {
        netshim_capture::DEFAULT_SNAPLEN
    } else {
        a.snaplen
    }
}

fn rotation(a: &CaptureArgs) -> anyhow::Result<Option<Rotation>> {
    let rot = Rotation {
        size: a.file_size.map(|mb| mb.max(1) * 1_000_000),
        files: a.file_count,
        seconds: a.rotate_seconds,
        stop_after: None,
    };
    if a.file_count.is_some() && !rot.active() {
        bail!("-W needs -C or -G (it counts the files they make)");
    }
    if !rot.active() {
        if a.post_rotate.is_some() {
            bail!("-z runs a command after each rotation: it needs -C or -G");
        }
        return Ok(None);
    }
    match a.write.as_deref() {
        None | Some("-") => bail!("-C and -G make several files: give them a name with -w FILE"),
        Some(_) => Ok(Some(rot)),
    }
}

/// tcpdump's flags that netshim does not take, each with the reason and
/// what to use instead. A word of the expression that starts with `-` is
/// always refused as a flag: pcap-filter(7) has no word that starts so.
const NOT_TAKEN: &[(&str, &str)] = &[
    (
        "-Z",
        "netshim never runs as root in a target: it is always UID 65534",
    ),
    ("-y", "the link type follows the interface"),
    (
        "-I",
        "monitor mode needs a wireless interface and CAP_NET_ADMIN, which netshim does not take",
    ),
    ("-K", "checksums are not verified"),
    ("-j", "the time-stamp type is the kernel's"),
    ("-J", "the time-stamp type is the kernel's"),
    ("-L", "the link type follows the interface"),
    ("-E", "IPsec decryption is not supported"),
    ("-M", "TCP-MD5 checking is not supported"),
];

/// Whether `netshim capture` itself takes the flag `word` (`-x`, `--count`).
fn is_own_flag(word: &str) -> bool {
    use clap::Args;
    let cmd = CaptureArgs::augment_args(clap::Command::new("capture"));
    let long = word
        .strip_prefix("--")
        .map(|l| l.split('=').next().unwrap_or(l));
    let short = word.strip_prefix('-').and_then(|s| s.chars().next());
    let known = cmd.get_arguments().any(|arg| match long {
        Some(l) => arg.get_long() == Some(l),
        None => short.is_some() && arg.get_short() == short,
    });
    known
}

/// Refuses a flag that clap left in the filter expression (clap stops at
/// the first word it does not know and takes the rest as the expression).
fn refuse_flags_in_expression(words: &[String]) -> anyhow::Result<()> {
    for w in words {
        if !w.starts_with('-') || w == "-" {
            continue;
        }
        let key: String = w.chars().take(2).collect();
        if let Some((_, why)) = NOT_TAKEN.iter().find(|(f, _)| *f == key) {
            bail!("option {w} is not supported: {why}");
        }
        if is_own_flag(w) {
            bail!(
                "option {w} comes after the filter expression {:?}: put the options first, \
                 then the expression",
                words
                    .iter()
                    .take_while(|x| *x != w)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        bail!(
            "unknown option {w}: see `netshim capture --help` (a filter expression never starts with '-')"
        );
    }
    Ok(())
}

/// The filter: the expression's words, or `-F FILE`'s contents.
fn filter_text(a: &CaptureArgs) -> anyhow::Result<String> {
    match &a.filter_file {
        None => Ok(a.expression.join(" ")),
        Some(_) if !a.expression.is_empty() => bail!(
            "-F gives the filter: leave out the expression on the command line ({:?})",
            a.expression.join(" ")
        ),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the filter file {}", path.display()))?;
            // tcpdump's -F files may hold comments after '#'.
            Ok(text
                .lines()
                .map(|l| l.split('#').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" "))
        }
    }
}

pub fn main(mut a: CaptureArgs) -> anyhow::Result<u8> {
    refuse_flags_in_expression(&a.expression)?;
    if a.filter_file.is_some() {
        let text = filter_text(&a)?;
        a.expression = vec![text];
        a.filter_file = None;
    }
    if let Some(path) = a.read.clone() {
        return crate::cmd::capture_read::main(&a, &path);
    }
    if a.list_interfaces {
        return list_interfaces(&a);
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
    let mut args = engine_args(&a, filter);
    args.count = match (args.count, stop.packets) {
        (Some(c), Some(p)) => Some(c.min(p)),
        (c, p) => c.or(p),
    };
    args.duration_ms = stop.duration_ms;
    args.max_bytes = stop.bytes;
    match single_target(&a) {
        _ if a.targets.is_empty() => engine(&a, args, rot),
        Some(t) => in_target(&a, args, t, rot),
        None => crate::cmd::capture_multi::main(&a, args, rot),
    }
}

/// The target when exactly one is given (not a selector): the capture is
/// that target's engine's own stream.
fn single_target(a: &CaptureArgs) -> Option<Target> {
    match &a.targets[..] {
        [Selector::One(t)] => Some(t.clone()),
        _ => None,
    }
}

/// How the engine runs in a target: as UID and GID 65534 with only
/// CAP_NET_RAW, no terminal, from the sealed copy given as its stdin.
pub(crate) fn engine_run(target: Target, args: Vec<String>) -> netshim_runtime::RunOptions {
    netshim_runtime::RunOptions {
        target,
        uid: netshim_runtime::DEFAULT_ID,
        gid: netshim_runtime::DEFAULT_ID,
        extra_caps: vec![],
        tty: false,
        args,
    }
}

/// The engine's command line in a target: the sealed copy of netshim (its
/// stdin), the hidden `capture-engine` command and the settings.
pub(crate) fn engine_argv(args: &EngineArgs) -> Vec<String> {
    ["/proc/self/fd/0".to_string(), ENGINE_COMMAND.into()]
        .into_iter()
        .chain(args.to_argv())
        .collect()
}

/// The hidden command the engine runs as (see [`engine_main`]).
pub const ENGINE_COMMAND: &str = "capture-engine";

/// `-D`: here, or in a target through the same path as a capture (the
/// engine, UID 65534, lists what its network namespace holds).
fn list_interfaces(a: &CaptureArgs) -> anyhow::Result<u8> {
    if a.targets.is_empty() {
        for line in netshim_capture::engine::describe_interfaces() {
            println!("{line}");
        }
        return Ok(0);
    }
    let Some(target) = single_target(a) else {
        bail!("-D lists the interfaces of one target: give one --target-netns (`netshim targets --expand SELECTOR` lists what a selector stands for)");
    };
    let sealed = netshim_runtime::privilege::selfexec::sealed_copy_of_self()
        .context("making a sealed copy of netshim's binary")?;
    let opts = engine_run(
        target,
        vec!["/proc/self/fd/0".into(), "capture".into(), "-D".into()],
    );
    let prepared = netshim_runtime::prepare(&opts)?;
    let io = netshim_runtime::RunIo {
        init_exe: Some(
            sealed
                .try_clone()
                .context("duplicating the sealed copy for the run's init")?,
        ),
        stdin: Some(sealed),
        ..Default::default()
    };
    let status = netshim_runtime::run(&opts, prepared, io)
        .with_context(|| format!("listing the interfaces of {}", opts.target))?;
    Ok(u8::try_from(status).unwrap_or(255))
}

/// The engine started in a target: `netshim capture-engine ARGS`, writing
/// to its stdout (which netshim opened as the caller).
pub fn engine_main(argv: &[String]) -> anyhow::Result<u8> {
    let args = EngineArgs::from_argv(argv).context("reading the engine's arguments")?;
    let sockets = handed_sockets(&args)?;
    let out = File::from(
        std::io::stdout()
            .as_fd_owned()
            .context("duplicating stdout")?,
    );
    let quiet = args.no_report;
    let name = output_label(args.write.is_some(), args.output_name.as_deref());
    let report = netshim_capture::run(Options { args, out, sockets })?;
    if quiet {
        if let Some(why) = &report.ended_by {
            eprintln!("netshim: capture ended early: {why}");
        }
        return Ok(if report.output_failed { 1 } else { 0 });
    }
    Ok(if print_report(&report, name.as_deref()) {
        1
    } else {
        0
    })
}

/// What the closing counts call the output packets are written to: the
/// file of `-w FILE`, or (`-w -`, a writer's pipe) the output. `None`
/// when lines are printed.
fn output_label(writes: bool, file: Option<&str>) -> Option<String> {
    match (writes, file) {
        (false, _) => None,
        (true, Some(f)) => Some(netshim_capture::summary::printable(f)),
        (true, None) => Some("the output".into()),
    }
}

/// Prints tcpdump's closing counts (and each interface's, when several) on
/// stderr, and after a failed write what reached `output` and what did
/// not; true when the output failed.
fn print_report(report: &netshim_capture::Report, output: Option<&str>) -> bool {
    let t = report.total();
    eprintln!("{} packets captured", t.delivered);
    eprintln!("{} packets received by filter", t.received + t.dropped);
    eprintln!("{} packets dropped by kernel", t.dropped);
    if report.interfaces.len() > 1 {
        for (name, c) in &report.interfaces {
            eprintln!(
                "  {}: {} written, {} received by filter, {} dropped",
                netshim_capture::summary::printable(name),
                c.delivered,
                c.received + c.dropped,
                c.dropped
            );
        }
    }
    if let (true, Some(output)) = (report.output_failed, output) {
        // As dumpcap and tcpdump -w: the counts above are what was
        // captured; say how much of it the file holds.
        eprintln!(
            "{} packets written to {output}; {} packets captured but not written: {}",
            report.packets_written,
            report.packets_lost,
            report
                .lost_because
                .as_deref()
                .unwrap_or("the output failed")
        );
    }
    if let Some(why) = &report.ended_by {
        eprintln!("netshim: capture ended early: {why}");
    }
    report.output_failed
}

/// Whether the capture of one target spans several interfaces (`-i any`,
/// `-i` repeated with different names): its lines name the interface and
/// direction, as tcpdump's lines of `-i any` do.
fn spans_interfaces(a: &CaptureArgs) -> bool {
    let mut names: Vec<&String> = a.interfaces.iter().collect();
    names.sort();
    names.dedup();
    names.len() > 1 || names.iter().any(|n| *n == "any")
}

/// Runs the engine in this process, in the current network namespace.
fn engine(a: &CaptureArgs, mut args: EngineArgs, rot: Option<Rotation>) -> anyhow::Result<u8> {
    let mut rotator = None;
    let out = match a.write.as_deref() {
        None | Some("-") => File::from(
            std::io::stdout()
                .as_fd_owned()
                .context("duplicating stdout")?,
        ),
        Some(path) => {
            let (fd, writer) = file_output(a, path, &rot, spans_interfaces(a))?;
            rotator = writer;
            File::from(fd)
        }
    };
    let to_file = !matches!(a.write.as_deref(), None | Some("-"));
    args.low_latency = a.write.as_deref() == Some("-");
    args.status_line = to_file && std::io::stderr().is_terminal() && !a.print;
    let report = netshim_capture::run(Options {
        args,
        out,
        sockets: Vec::new(),
    })?;
    // The engine writes the file itself only without a writer (-C, -G,
    // --print): otherwise it writes to the writer's pipe.
    let file = a.write.as_deref().filter(|_| rotator.is_none());
    let label = output_label(a.write.is_some(), file.filter(|w| *w != "-"));
    let output_failed = print_report(&report, label.as_deref());
    let rotated_ok = rotator.is_none_or(wait_writer);
    if let (true, true, Some(n)) = (rotated_ok, output_failed, stops_after_files(&rot)) {
        eprintln!("netshim: made the {n} files asked for; the capture stops there");
        return Ok(0);
    }
    Ok(if output_failed || !rotated_ok { 1 } else { 0 })
}

trait AsFdOwned {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd>;
}

impl AsFdOwned for std::io::Stdout {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}

/// `--sealed`: make the packet sockets in the target here, then start the
/// engine with none of netshim's privileges (see `netshim_runtime::sealed`).
pub(crate) fn sealed_engine(
    mut args: EngineArgs,
    prepared: &netshim_runtime::Prepared,
    exe: OwnedFd,
    out: Option<OwnedFd>,
    spare: Option<i32>,
) -> anyhow::Result<i32> {
    use netshim_runtime::sealed;
    sealed::enter(&prepared.plan, prepared.uid_map.as_ref())?;
    let wanted = args.interfaces.clone();
    let made = sealed::in_netns(&prepared.resolved.netns, move || {
        let chosen = netshim_capture::engine::choose_interfaces(&wanted)?;
        let mut socks = Vec::new();
        for (name, idx) in chosen {
            let fd = netshim_capture::ring::Ring::new_socket().map_err(|source| {
                netshim_capture::CaptureError::Socket {
                    iface: name.clone(),
                    source,
                }
            })?;
            socks.push((name, idx, fd));
        }
        Ok::<_, netshim_capture::CaptureError>((socks, netshim_capture::engine::interface_names()))
    })??;
    let (socks, names) = made;
    let mut fds = Vec::new();
    for (i, (name, ifindex, fd)) in socks.into_iter().enumerate() {
        // sealed::run places the sockets at 3, 4, … in this order.
        args.sockets.push(netshim_capture::args::HandedSocket {
            fd: 3 + i as i32,
            ifindex,
            name,
        });
        fds.push(fd);
    }
    args.names = names;
    Ok(sealed::run(sealed::Engine {
        exe,
        args: engine_argv(&args),
        stdout: out,
        sockets: fds,
        watch: prepared.resolved.pid,
        spare,
    })?)
}

/// Runs the engine in a target through `netshim run`'s privilege path.
fn in_target(
    a: &CaptureArgs,
    mut args: EngineArgs,
    target: Target,
    rot: Option<Rotation>,
) -> anyhow::Result<u8> {
    // The engine runs from a sealed in-memory copy of netshim, handed over
    // as its stdin: the target never holds the host's binary.
    let sealed = netshim_runtime::privilege::selfexec::sealed_copy_of_self()
        .context("making a sealed copy of netshim's binary for the engine")?;
    args.confine = true;
    // The engine writes to a pipe or file netshim opened: flush each batch.
    args.low_latency = a.write.is_some();
    let mut out: Option<OwnedFd> = None;
    let mut rotator = None;
    if let Some(path) = a.write.as_deref().filter(|w| *w != "-") {
        let (fd, writer) = file_output(a, path, &rot, spans_interfaces(a))?;
        out = Some(fd);
        if writer.is_none() {
            args.output_name = Some(path.to_string());
        }
        rotator = writer;
        // A status line would garble the printed lines.
        args.status_line = std::io::stderr().is_terminal() && !a.print;
    }
    let opts = engine_run(target, engine_argv(&args));
    let prepared = netshim_runtime::prepare(&opts)?;
    let spare = rotator.map(|p: nix::unistd::Pid| p.as_raw());
    let status = if a.sealed {
        sealed_engine(args, &prepared, sealed, out, spare)
            .with_context(|| format!("capturing in {} (sealed)", opts.target))
    } else {
        // The run's init executes from the same sealed copy.
        let init_exe = sealed
            .try_clone()
            .context("duplicating the sealed copy for the run's init")?;
        let io = netshim_runtime::RunIo {
            stdin: Some(sealed),
            stdout: out,
            spare,
            init_exe: Some(init_exe),
        };
        netshim_runtime::run(&opts, prepared, io)
            .with_context(|| format!("capturing in {}", opts.target))
    };
    // The engine has exited and the pipe's last write end is closed: the
    // writer sees the end of the stream.
    let rotated_ok = rotator.is_none_or(wait_writer);
    let status = status?;
    if let (true, 1, Some(n)) = (rotated_ok, status, stops_after_files(&rot)) {
        eprintln!("netshim: made the {n} files asked for; the capture stops there");
        return Ok(0);
    }
    Ok(if status == 0 && !rotated_ok {
        1
    } else {
        u8::try_from(status).unwrap_or(255)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use netshim_capture::summary::Dump;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        a: CaptureArgs,
    }

    fn parse(argv: &[&str]) -> CaptureArgs {
        Wrap::try_parse_from(std::iter::once("capture").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .a
    }

    /// tcpdump's flags become the engine's settings with tcpdump's
    /// meanings, and the settings survive the engine's command line.
    #[test]
    fn tcpdump_flags_reach_the_engine_with_their_meaning() {
        let cases: Vec<(Vec<&str>, EngineArgs)> = vec![
            (vec![], EngineArgs::default()),
            (
                vec![
                    "-i", "eth0", "-i", "lo", "-c", "5", "-s", "0", "-B", "8192", "-w", "-",
                ],
                EngineArgs {
                    interfaces: vec!["eth0".into(), "lo".into()],
                    count: Some(5),
                    buffer_kib: 8192,
                    write: Some(Format::Pcapng),
                    // A stream to a pipe is given up when nobody reads it.
                    stall_timeout: Some(60),
                    ..EngineArgs::default()
                },
            ),
            (
                vec!["-w", "-", "--stall-timeout", "0"],
                EngineArgs {
                    write: Some(Format::Pcapng),
                    ..EngineArgs::default()
                },
            ),
            (
                vec!["--stall-timeout", "5"],
                EngineArgs {
                    stall_timeout: Some(5),
                    ..EngineArgs::default()
                },
            ),
            (
                vec![
                    "-i", "any", "--format", "pcap", "-w", "f", "-Q", "out", "-p", "-q",
                ],
                EngineArgs {
                    interfaces: vec!["any".into()],
                    write: Some(Format::Pcap),
                    which: Which::Out,
                    promisc: false,
                    quiet: true,
                    ..EngineArgs::default()
                },
            ),
            (
                vec!["-tttt", "-XX", "-e", "-s", "96"],
                EngineArgs {
                    time: 4,
                    dump: Dump::HexAscii { link: true },
                    link_header: true,
                    snaplen: 96,
                    ..EngineArgs::default()
                },
            ),
            (
                vec!["-xx", "-A", "-Q", "in"],
                EngineArgs {
                    dump: Dump::Ascii,
                    which: Which::In,
                    ..EngineArgs::default()
                },
            ),
        ];
        for (argv, want) in cases {
            let got = engine_args(&parse(&argv), None);
            assert_eq!(got, want, "{argv:?}");
            let line = engine_argv(&got);
            assert_eq!(line[..2], ["/proc/self/fd/0", ENGINE_COMMAND]);
            assert_eq!(EngineArgs::from_argv(&line[2..]).unwrap(), got, "{line:?}");
        }
    }

    #[test]
    fn flags_after_the_expression_are_refused_with_the_reason() {
        let e = |w: &[&str]| {
            refuse_flags_in_expression(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap_err()
                .to_string()
        };
        assert!(e(&["icmp", "-x"]).contains("comes after the filter expression \"icmp\""));
        assert!(e(&["icmp", "--count"]).contains("comes after"));
        assert!(e(&["udp", "-v"]).contains("comes after the filter expression \"udp\""));
        assert!(e(&["-K"]).starts_with("option -K is not supported"));
        assert!(e(&["tcp", "-9"]).starts_with("unknown option -9"));
        assert!(refuse_flags_in_expression(&["tcp".into(), "port".into(), "80".into()]).is_ok());
    }

    /// dumpcap's `-a files:N` ends a rotation by size, by time, or a `-C
    /// -W` ring, after N files; without rotation it is refused.
    #[test]
    fn files_autostop_ends_every_rotation() {
        let stop_after = |argv: &[&str]| {
            let a = parse(argv);
            let mut rot = rotation(&a).unwrap();
            autostop(&a.autostop)
                .unwrap()
                .check(&a, &mut rot)
                .map(|()| stops_after_files(&rot))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            stop_after(&["-C", "1", "-a", "files:3", "-w", "f"]),
            Ok(Some(3))
        );
        assert_eq!(
            stop_after(&["-C", "1", "-W", "2", "-a", "files:5", "-w", "f"]),
            Ok(Some(5))
        );
        assert_eq!(
            stop_after(&["-G", "1", "-W", "4", "-a", "files:2", "-w", "f"]),
            Ok(Some(2))
        );
        assert_eq!(stop_after(&["-G", "1", "-W", "4", "-w", "f"]), Ok(Some(4)));
        assert_eq!(stop_after(&["-C", "1", "-W", "4", "-w", "f"]), Ok(None));
        let e = stop_after(&["-a", "files:3", "-w", "f"]).unwrap_err();
        assert!(e.contains("needs -C or -G"), "{e}");
    }
}
