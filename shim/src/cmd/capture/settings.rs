//! From the flags to the engine's settings: the one mapping from tcpdump's
//! flags to [`EngineArgs`], the engine's command line, and how the engine
//! is run in a target.

use netshim_capture::filter::Compiled;
use netshim_capture::{EngineArgs, Format, Which};
use netshim_runtime::target::Target;

use super::flags::{snaplen, stall_timeout, CaptureArgs, DirectionArg, FormatArg};

/// What the engine is asked to do, from the user's flags: the one mapping
/// from tcpdump's flags to the engine's settings, for the engine in a target
/// and in this process alike. Where the packets go is the caller's part.
pub(super) fn engine_args(a: &CaptureArgs, filter: Option<Compiled>) -> EngineArgs {
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
        write_interval_ms: a.write_interval,
        ..EngineArgs::default()
    }
}

/// How the engine runs in a target: as UID and GID 65534 with only
/// CAP_NET_RAW, no terminal, from the sealed copy given as its stdin.
pub(super) fn engine_run(target: Target, args: Vec<String>) -> netshim_runtime::RunOptions {
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
pub(super) fn engine_argv(args: &EngineArgs) -> Vec<String> {
    ["/proc/self/fd/0".to_string(), ENGINE_COMMAND.into()]
        .into_iter()
        .chain(args.to_argv())
        .collect()
}

/// The hidden command the engine runs as (see [`engine_main`]).
pub const ENGINE_COMMAND: &str = "capture-engine";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::capture::flags::CaptureArgs;
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

    /// dumpcap's `-a files:N` ends a rotation by size, by time, or a `-C
    /// -W` ring, after N files; without rotation it is refused.
    #[test]
    fn files_autostop_ends_every_rotation() {
        let stop_after = |argv: &[&str]| {
            let a = parse(argv);
            let mut rot = crate::cmd::capture::flags::rotation(&a).unwrap();
            crate::cmd::capture::flags::autostop(&a.autostop)
                .unwrap()
                .check(&a, &mut rot)
                .map(|()| crate::cmd::capture::writer::stops_after_files(&rot))
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

    /// `-W 0` and a `-C` past 2^64 bytes are refused before anything
    /// starts, as tcpdump refuses `-W 0` (the first divided by zero at the
    /// first rotation, the second overflowed); `-G 0` is no `-G`, as in
    /// tcpdump (it rotated on every packet).
    #[test]
    fn impossible_rotations_are_refused() {
        let err = |argv: &[&str]| {
            crate::cmd::capture::flags::rotation(&parse(argv))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["-C", "1", "-W", "0", "-w", "f"]).contains("-W 0"));
        let rot = crate::cmd::capture::flags::rotation(&parse(&["-G", "0", "-w", "f"])).unwrap();
        assert!(rot.is_none(), "{rot:?}");
        assert!(err(&["-C", "18446744073709552", "-w", "f"]).contains("more bytes"));
    }
}
