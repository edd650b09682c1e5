//! The engine's contract: everything a capture needs except its file
//! descriptors, as one typed value that netshim turns into the engine's
//! command line ([`EngineArgs::to_argv`]) and the engine, started from a
//! sealed copy of the binary in a target, turns back
//! ([`EngineArgs::from_argv`]). The filter travels compiled: netshim
//! compiles it once, as the caller, and the engine only attaches the
//! program.
//!
//! The command line is `--name` or `--name=value` words, one per setting, so
//! a value (an interface name, the filter's text) can never be read as a
//! flag, and `ps` in the target shows what the engine was asked to do.

use crate::filter::{self, Compiled};
use crate::summary::Dump;

/// What the output gets: pcapng or classic pcap (`None` in
/// [`EngineArgs::write`]: lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcapng,
    Pcap,
}

/// `-Q`: which directions to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    InOut,
    In,
    Out,
}

/// A packet socket netshim made in a target and handed to a sealed
/// engine at descriptor `fd`; `target` indexes [`EngineArgs::targets`]
/// (0 when the capture has one target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedSocket {
    pub fd: i32,
    pub target: usize,
    pub ifindex: i32,
    pub name: String,
}

/// One target of a sealed engine that holds several targets' sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineTarget {
    /// `docker:web`: its interfaces are named `docker:web/eth0`.
    pub label: String,
    /// What the target is (container name, image…): `if_description`.
    pub description: String,
    /// A pidfd of the target's process, handed at this descriptor: when it
    /// polls readable the process has exited and the target's interfaces
    /// end (their statistics written) while the others go on.
    pub pidfd: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineArgs {
    /// Interface names; empty means the first one that is up and not
    /// loopback (as tcpdump), `any` means all of them.
    pub interfaces: Vec<String>,
    pub count: Option<u64>,
    /// `-a duration:SECS`: stop this many milliseconds after the start.
    pub duration_ms: Option<u64>,
    /// `-a filesize:KB`: stop once the output holds this many bytes.
    pub max_bytes: Option<u64>,
    pub snaplen: u32,
    pub buffer_kib: u32,
    pub promisc: bool,
    pub which: Which,
    pub quiet: bool,
    /// tcpdump's `-t` count (time-stamp format of lines).
    pub time: u8,
    /// tcpdump's `-x`/`-X`/`-A`: packet contents under each line.
    pub dump: Dump,
    /// tcpdump's `-e`: the link-layer header on each line.
    pub link_header: bool,
    /// tcpdump's `-v` count.
    pub verbose: u8,
    /// tcpdump's `-S`: absolute TCP sequence numbers.
    pub absolute_seq: bool,
    /// tcpdump's `--time-stamp-precision`: of lines and of pcap files.
    pub precision: crate::format::Precision,
    /// Write this format to the output; `None` prints one line per packet.
    pub write: Option<Format>,
    pub filter: Option<Compiled>,
    /// Redraw a status line on stderr every second.
    pub status_line: bool,
    /// Flush after every batch (a live stream to a pipe).
    pub low_latency: bool,
    /// With `low_latency`: flush at most every this many milliseconds
    /// (fewer, larger writes for a reader that does not need each batch at
    /// once); 0 flushes each batch.
    pub write_interval_ms: u32,
    /// Install the seccomp allow-list ([`crate::confine`]) once set up.
    pub confine: bool,
    /// Give up a pipe output whose reader takes nothing for this many
    /// seconds ([`crate::output::Output::set_stall_timeout`]).
    pub stall_timeout: Option<u32>,
    /// `capture --sealed` and captures of several targets: the packet
    /// sockets made in the targets, one per interface; the engine runs in
    /// an empty network namespace.
    pub sockets: Vec<HandedSocket>,
    /// With `sockets`: each target's interface names by index (target,
    /// index, name).
    pub names: Vec<(usize, i32, String)>,
    /// Several targets: each one's name, description and pidfd. Their
    /// interfaces are named `TARGET/IFACE`. Empty for one target.
    pub targets: Vec<EngineTarget>,
    /// With several rings: how long at most a packet is held so that the
    /// packets of every ring are written in timestamp order, in ms.
    pub reorder_ms: u64,
    /// The name of the file the output is (`-w FILE`, opened by netshim),
    /// for the closing counts: the engine only has a descriptor.
    pub output_name: Option<String>,
}

impl Default for EngineArgs {
    fn default() -> Self {
        EngineArgs {
            interfaces: Vec::new(),
            count: None,
            duration_ms: None,
            max_bytes: None,
            snaplen: crate::DEFAULT_SNAPLEN,
            buffer_kib: crate::DEFAULT_BUFFER_KIB,
            promisc: true,
            which: Which::InOut,
            quiet: false,
            time: 0,
            dump: Dump::None,
            link_header: false,
            verbose: 0,
            absolute_seq: false,
            precision: crate::format::Precision::Micro,
            write: None,
            filter: None,
            status_line: false,
            low_latency: false,
            confine: false,
            stall_timeout: None,
            write_interval_ms: 0,
            sockets: Vec::new(),
            names: Vec::new(),
            targets: Vec::new(),
            reorder_ms: DEFAULT_REORDER_MS,
            output_name: None,
        }
    }
}

/// The default of [`EngineArgs::reorder_ms`] (`--reorder-window`).
pub const DEFAULT_REORDER_MS: u64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("engine argument {0:?} is not one netshim makes")]
    Unknown(String),
    #[error("engine argument {word:?}: {why}")]
    Bad { word: String, why: String },
    #[error(transparent)]
    Filter(#[from] filter::FilterError),
}

fn dump_word(d: Dump) -> Option<&'static str> {
    Some(match d {
        Dump::None => return None,
        Dump::Hex { link: false } => "hex",
        Dump::Hex { link: true } => "hex-link",
        Dump::HexAscii { link: false } => "hex-ascii",
        Dump::HexAscii { link: true } => "hex-ascii-link",
        Dump::Ascii => "ascii",
    })
}

const DUMPS: [Dump; 5] = [
    Dump::Hex { link: false },
    Dump::Hex { link: true },
    Dump::HexAscii { link: false },
    Dump::HexAscii { link: true },
    Dump::Ascii,
];

const WHICH: [(Which, &str); 3] = [
    (Which::InOut, "inout"),
    (Which::In, "in"),
    (Which::Out, "out"),
];
const FORMATS: [(Format, &str); 2] = [(Format::Pcapng, "pcapng"), (Format::Pcap, "pcap")];

/// `T:REST` → (T, REST).
fn target_of(v: &str) -> Option<(usize, &str)> {
    let (t, rest) = v.split_once(':')?;
    Some((t.parse().ok()?, rest))
}

impl EngineArgs {
    /// The engine's arguments (after the program and subcommand names).
    pub fn to_argv(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut kv = |k: &str, val: &dyn std::fmt::Display| v.push(format!("--{k}={val}"));
        for i in &self.interfaces {
            kv("interface", i);
        }
        if let Some(c) = self.count {
            kv("count", &c);
        }
        if let Some(d) = self.duration_ms {
            kv("duration-ms", &d);
        }
        if let Some(b) = self.max_bytes {
            kv("max-bytes", &b);
        }
        kv("snaplen", &self.snaplen);
        kv("buffer-kib", &self.buffer_kib);
        if let Some((_, w)) = WHICH.iter().find(|(w, _)| *w == self.which) {
            kv("direction", w);
        }
        if self.time > 0 {
            kv("time", &self.time);
        }
        if self.verbose > 0 {
            kv("verbose", &self.verbose);
        }
        if let Some(d) = dump_word(self.dump) {
            kv("dump", &d);
        }
        if let Some((_, f)) = self
            .write
            .and_then(|w| FORMATS.iter().find(|(f, _)| *f == w))
        {
            kv("write", f);
        }
        if self.write_interval_ms > 0 {
            kv("write-interval", &self.write_interval_ms.to_string());
        }
        if let Some(t) = self.stall_timeout {
            kv("stall-timeout", &t.to_string());
        }
        for s in &self.sockets {
            kv(
                "socket",
                &format!("{}:{}:{}:{}", s.fd, s.target, s.ifindex, s.name),
            );
        }
        for (t, i, n) in &self.names {
            kv("ifname", &format!("{t}:{i}:{n}"));
        }
        for t in &self.targets {
            // Tab-separated: a label holds ':' (docker:web); netshim makes
            // neither with a tab (see `EngineTarget`).
            let fd = t.pidfd.map_or("-".to_string(), |f| f.to_string());
            kv("target", &format!("{fd}\t{}\t{}", t.label, t.description));
        }
        if self.reorder_ms != DEFAULT_REORDER_MS {
            kv("reorder-ms", &self.reorder_ms);
        }
        if let Some(n) = &self.output_name {
            kv("output-name", n);
        }
        if let Some(f) = &self.filter {
            kv("filter-text", &f.expr);
            kv("filter-program", &filter::program_text(&f.program));
            if let Some(raw) = &f.raw {
                kv("filter-program-raw", &filter::program_text(raw));
            }
        }
        for (on, word) in [
            (!self.promisc, "no-promisc"),
            (self.quiet, "quiet"),
            (self.link_header, "link-header"),
            (self.absolute_seq, "absolute-seq"),
            (self.precision == crate::format::Precision::Nano, "nano"),
            (self.status_line, "status-line"),
            (self.low_latency, "low-latency"),
            (self.confine, "confine"),
        ] {
            if on {
                v.push(format!("--{word}"));
            }
        }
        v
    }

    /// Reads what [`EngineArgs::to_argv`] wrote; anything else is refused.
    pub fn from_argv<S: AsRef<str>>(argv: &[S]) -> Result<EngineArgs, ArgsError> {
        let mut a = EngineArgs::default();
        let mut text = None;
        let mut program = None;
        let mut raw = None;
        for word in argv {
            let word = word.as_ref();
            let bad = |why: &str| ArgsError::Bad {
                word: word.to_string(),
                why: why.to_string(),
            };
            let Some(body) = word.strip_prefix("--") else {
                return Err(ArgsError::Unknown(word.to_string()));
            };
            let (key, val) = match body.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (body, None),
            };
            let num = |v: Option<&str>| -> Result<u64, ArgsError> {
                v.and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad("not a number"))
            };
            let pair = |v: Option<&str>| -> Result<(i32, String), ArgsError> {
                let (i, n) = v
                    .and_then(|v| v.split_once(':'))
                    .ok_or_else(|| bad("no ':'"))?;
                Ok((i.parse().map_err(|_| bad("not a number"))?, n.to_string()))
            };
            match (key, val) {
                ("interface", Some(v)) => a.interfaces.push(v.to_string()),
                ("count", v) => a.count = Some(num(v)?),
                ("duration-ms", v) => a.duration_ms = Some(num(v)?),
                ("max-bytes", v) => a.max_bytes = Some(num(v)?),
                ("snaplen", v) => {
                    a.snaplen = u32::try_from(num(v)?).map_err(|_| bad("too large"))?
                }
                ("buffer-kib", v) => {
                    a.buffer_kib = u32::try_from(num(v)?).map_err(|_| bad("too large"))?
                }
                ("direction", Some(v)) => {
                    a.which = WHICH
                        .iter()
                        .find(|(_, w)| *w == v)
                        .ok_or_else(|| bad("in, out or inout"))?
                        .0
                }
                ("time", v) => a.time = u8::try_from(num(v)?).map_err(|_| bad("too large"))?,
                ("dump", Some(v)) => {
                    a.dump = *DUMPS
                        .iter()
                        .find(|d| dump_word(**d) == Some(v))
                        .ok_or_else(|| bad("unknown dump"))?
                }
                ("write", Some(v)) => {
                    a.write = Some(
                        FORMATS
                            .iter()
                            .find(|(_, f)| *f == v)
                            .ok_or_else(|| bad("pcapng or pcap"))?
                            .0,
                    )
                }
                ("socket", Some(v)) => {
                    let (fd, rest) = v
                        .split_once(':')
                        .ok_or_else(|| bad("FD:TARGET:IFINDEX:NAME"))?;
                    let (target, rest) = target_of(rest).ok_or_else(|| bad("no target"))?;
                    let (ifindex, name) = pair(Some(rest))?;
                    a.sockets.push(HandedSocket {
                        fd: fd.parse().map_err(|_| bad("not a descriptor"))?,
                        target,
                        ifindex,
                        name,
                    });
                }
                ("ifname", Some(v)) => {
                    let (target, rest) = target_of(v).ok_or_else(|| bad("no target"))?;
                    let (i, n) = pair(Some(rest))?;
                    a.names.push((target, i, n));
                }
                ("target", Some(v)) => {
                    let mut f = v.splitn(3, '\t');
                    let (Some(fd), Some(label), Some(description)) = (f.next(), f.next(), f.next())
                    else {
                        return Err(bad("PIDFD<tab>LABEL<tab>DESCRIPTION"));
                    };
                    let pidfd = match fd {
                        "-" => None,
                        n => Some(n.parse().map_err(|_| bad("not a descriptor"))?),
                    };
                    a.targets.push(EngineTarget {
                        label: label.into(),
                        description: description.into(),
                        pidfd,
                    });
                }
                ("reorder-ms", v) => a.reorder_ms = num(v)?,
                ("output-name", Some(v)) => a.output_name = Some(v.to_string()),
                ("filter-text", Some(v)) => text = Some(v.to_string()),
                ("filter-program", Some(v)) => program = Some(filter::program_from_text(v)?),
                ("filter-program-raw", Some(v)) => raw = Some(filter::program_from_text(v)?),
                ("no-promisc", None) => a.promisc = false,
                ("quiet", None) => a.quiet = true,
                ("link-header", None) => a.link_header = true,
                ("absolute-seq", None) => a.absolute_seq = true,
                ("nano", None) => a.precision = crate::format::Precision::Nano,
                ("verbose", v) => {
                    a.verbose = u8::try_from(num(v)?).map_err(|_| bad("too large"))?
                }
                ("status-line", None) => a.status_line = true,
                ("low-latency", None) => a.low_latency = true,
                ("confine", None) => a.confine = true,
                ("write-interval", v) => {
                    a.write_interval_ms = u32::try_from(num(v)?).map_err(|_| bad("too large"))?
                }
                ("stall-timeout", v) => {
                    a.stall_timeout = Some(u32::try_from(num(v)?).map_err(|_| bad("too large"))?)
                }
                _ => return Err(ArgsError::Unknown(word.to_string())),
            }
        }
        a.filter = match (text, program) {
            (None, None) => None,
            (Some(expr), Some(program)) => Some(Compiled { expr, program, raw }),
            _ => {
                return Err(ArgsError::Bad {
                    word: "--filter-text/--filter-program".into(),
                    why: "one without the other".into(),
                })
            }
        };
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_setting() -> EngineArgs {
        EngineArgs {
            interfaces: vec!["eth0".into(), "we=ird:name".into(), "--x".into()],
            count: Some(7),
            duration_ms: Some(2500),
            max_bytes: Some(3000),
            snaplen: 96,
            buffer_kib: 8192,
            promisc: false,
            which: Which::Out,
            quiet: true,
            time: 4,
            dump: Dump::HexAscii { link: true },
            link_header: true,
            verbose: 2,
            absolute_seq: true,
            precision: crate::format::Precision::Nano,
            write: Some(Format::Pcap),
            filter: Some(
                Compiled::for_capture("udp port 53 or icmp", 96)
                    .unwrap()
                    .unwrap(),
            ),
            status_line: true,
            low_latency: true,
            confine: true,
            stall_timeout: Some(60),
            write_interval_ms: 100,
            sockets: vec![
                HandedSocket {
                    fd: 3,
                    target: 0,
                    ifindex: 2,
                    name: "eth0".into(),
                },
                HandedSocket {
                    fd: 4,
                    target: 1,
                    ifindex: 1,
                    name: "l:o".into(),
                },
            ],
            names: vec![(0, 1, "lo".into()), (1, 2, "a:b".into())],
            targets: vec![
                EngineTarget {
                    label: "docker:web".into(),
                    description: "docker container web (image a:b)".into(),
                    pidfd: Some(5),
                },
                EngineTarget {
                    label: "netns:blue".into(),
                    description: "named network namespace blue".into(),
                    pidfd: None,
                },
            ],
            reorder_ms: 50,
            output_name: Some("/tmp/a b=c.pcapng".into()),
        }
    }

    #[test]
    fn every_setting_round_trips() {
        let mut cases = vec![EngineArgs::default(), every_setting()];
        for (i, d) in DUMPS.iter().enumerate() {
            cases.push(EngineArgs {
                dump: *d,
                time: i as u8,
                which: WHICH[i % 3].0,
                write: Some(FORMATS[i % 2].0),
                count: Some(0),
                ..EngineArgs::default()
            });
        }
        for a in cases {
            let argv = a.to_argv();
            assert_eq!(EngineArgs::from_argv(&argv).unwrap(), a, "{argv:?}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for argv in [
            vec!["-w"],
            vec!["eth0"],
            vec!["--snaplen=x"],
            vec!["--direction=up"],
            vec!["--filter-text=udp"],
            vec!["--filter-program=1,6 0 0 96,6 0 0 0"],
            vec!["--quiet=1"],
            vec!["--socket=3:eth0"],
            vec!["--socket=3:2:eth0"],
            vec!["--ifname=1:lo"],
            vec!["--target=3\tdocker:web"],
            vec!["--target=x\ta\tb"],
        ] {
            assert!(EngineArgs::from_argv(&argv).is_err(), "{argv:?}");
        }
    }
}
