//! Starting the one engine of a capture and reading its report: in this
//! process (no target), in a target through `netshim run`'s privilege path,
//! or sealed (`--sealed`, and every capture of several targets): no
//! capability at all, with the packet sockets netshim made in each target.
//! Also the engine's own side (`netshim capture-engine`).

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context};
use netshim_capture::rotate::Rotation;
use netshim_capture::{EngineArgs, Options};
use netshim_runtime::target::Target;

use super::flags::{single_target, spans_interfaces, CaptureArgs};
use super::settings::{engine_argv, engine_run};
use super::writer::{file_output, stops_after_files, wait_writer};

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

/// `-D`: here, or in a target through the same path as a capture (the
/// engine, UID 65534, lists what its network namespace holds).
pub(super) fn list_interfaces(a: &CaptureArgs) -> anyhow::Result<u8> {
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

/// Runs the engine in this process, in the current network namespace.
pub(super) fn engine(
    a: &CaptureArgs,
    mut args: EngineArgs,
    rot: Option<Rotation>,
) -> anyhow::Result<u8> {
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
        eprintln!("netshim: made the {n} files -W asked for; the capture stops there");
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
pub(super) fn sealed_engine(
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
pub(super) fn in_target(
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
        eprintln!("netshim: made the {n} files -W asked for; the capture stops there");
        return Ok(0);
    }
    Ok(if status == 0 && !rotated_ok {
        1
    } else {
        u8::try_from(status).unwrap_or(255)
    })
}
