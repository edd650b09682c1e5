//! `netshim capture`'s flags (tcpdump's, and netshim's own) and what is
//! read from them alone: the stop conditions, rotation, the filter's text,
//! the flags refused with their reason. The bottom of the capture command:
//! it imports nothing of the command's other files.

use anyhow::{bail, Context};
use netshim_capture::rotate::Rotation;
use netshim_runtime::target::select::Selector;
use netshim_runtime::target::Target;

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
    /// With -w to a pipe (-w -): write what was captured at most every MS
    /// milliseconds, in fewer and larger writes, for a reader that merges
    /// or stores the stream rather than shows it (`kubectl netshim capture
    /// -w FILE` asks its pods for 100); 0 writes each batch at once.
    #[arg(long = "write-interval", value_name = "MS", default_value_t = 0)]
    pub(crate) write_interval: u32,
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

/// `--stall-timeout`: 60 s by default for `-w -` (a binary stream nobody
/// pages through), off otherwise (`| less` may rightly wait).
pub(super) fn stall_timeout(a: &CaptureArgs) -> Option<u32> {
    match (a.stall_timeout, a.write.as_deref()) {
        (Some(0), _) => None,
        (Some(s), _) => Some(s),
        (None, Some("-")) => Some(60),
        (None, _) => None,
    }
}

/// `-a`: dumpcap's stop conditions.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Autostop {
    pub(super) duration_ms: Option<u64>,
    pub(super) bytes: Option<u64>,
    pub(super) files: Option<u32>,
    pub(super) packets: Option<u64>,
}

/// Parses each `-a KEY:VALUE`; a condition given twice keeps the first to
/// be met (the smaller value).
pub(super) fn autostop(conds: &[String]) -> anyhow::Result<Autostop> {
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
    pub(super) fn check(&self, a: &CaptureArgs, rot: &mut Option<Rotation>) -> anyhow::Result<()> {
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
pub(super) fn snaplen(a: &CaptureArgs) -> u32 {
    if a.snaplen == 0 {
        netshim_capture::DEFAULT_SNAPLEN
    } else {
        a.snaplen
    }
}

pub(super) fn rotation(a: &CaptureArgs) -> anyhow::Result<Option<Rotation>> {
    let size = match a.file_size {
        Some(mb) => Some(mb.max(1).checked_mul(1_000_000).ok_or_else(|| {
            anyhow::anyhow!("-C {mb}: more bytes than a file takes; give the size in MB")
        })?),
        None => None,
    };
    let rot = Rotation {
        size,
        files: a.file_count,
        // tcpdump's -G 0 is no -G (and FILE is then not a strftime pattern).
        seconds: a.rotate_seconds.filter(|s| *s > 0),
        stop_after: None,
    };
    if a.file_count == Some(0) {
        // A ring of no file: the name of file N is N modulo 0.
        bail!("-W 0: give the number of files, 1 or more");
    }
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
pub(super) fn refuse_flags_in_expression(words: &[String]) -> anyhow::Result<()> {
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
pub(super) fn filter_text(a: &CaptureArgs) -> anyhow::Result<String> {
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

/// The target when exactly one is given (not a selector): the capture is
/// that target's engine's own stream.
pub(super) fn single_target(a: &CaptureArgs) -> Option<Target> {
    match &a.targets[..] {
        [Selector::One(t)] => Some(t.clone()),
        _ => None,
    }
}

/// Whether the capture of one target spans several interfaces (`-i any`,
/// `-i` repeated with different names): its lines name the interface and
/// direction, as tcpdump's lines of `-i any` do.
pub(super) fn spans_interfaces(a: &CaptureArgs) -> bool {
    let mut names: Vec<&String> = a.interfaces.iter().collect();
    names.sort();
    names.dedup();
    names.len() > 1 || names.iter().any(|n| *n == "any")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
