//! Starting the one engine of a capture and reading its report: in this
//! process (no target), in a target through `netshim run`'s privilege path,
//! or sealed (`--sealed`, and every capture of several targets): no
//! capability at all, holding the packet sockets netshim made in each
//! target. Also the engine's own side (`netshim capture-engine`).

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context};
use netshim_capture::args::{EngineTarget, HandedSocket};
use netshim_capture::engine::HandedRing;
use netshim_capture::rotate::Rotation;
use netshim_capture::{EngineArgs, Options};
use netshim_runtime::plan::Plan;
use netshim_runtime::target::select::Chosen;
use netshim_runtime::target::Target;
use nix::unistd::Pid;

use super::flags::{single_target, spans_interfaces, CaptureArgs, FormatArg};
use super::settings::{engine_argv, engine_run};
use super::targets::{arm, arm_all, expand, prepare_all, Armed, Ready};
use super::writer::{file_output, stops_after_files, wait_writer};

/// A descriptor netshim placed at `fd` for this engine, checked to be a
/// socket (or, for a pidfd, not to be one).
fn take_handed(fd: i32, socket: bool) -> anyhow::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let st = nix::sys::stat::fstat(fd).with_context(|| format!("handed descriptor {fd}"))?;
    let is_socket = st.st_mode & libc::S_IFMT == libc::S_IFSOCK;
    anyhow::ensure!(
        is_socket == socket && fd > 2,
        "descriptor {fd} handed to the sealed engine is not a {}",
        if socket { "socket" } else { "pidfd" }
    );
    // SAFETY: netshim placed this descriptor at `fd` for this process and
    // nothing else here owns it (checked above; each is taken once, as the
    // arguments list each once).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The sockets and pidfds a sealed engine was handed (see
/// [`EngineArgs::sockets`], [`EngineArgs::targets`]).
type Handed = (Vec<HandedRing>, Vec<(usize, OwnedFd)>);

fn handed(a: &EngineArgs) -> anyhow::Result<Handed> {
    let mut sockets = Vec::new();
    for s in &a.sockets {
        sockets.push(HandedRing {
            target: s.target,
            name: s.name.clone(),
            ifindex: s.ifindex,
            fd: take_handed(s.fd, true)?,
        });
    }
    let mut pidfds = Vec::new();
    for (t, x) in a.targets.iter().enumerate() {
        if let Some(fd) = x.pidfd {
            pidfds.push((t, take_handed(fd, false)?));
        }
    }
    Ok((sockets, pidfds))
}

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
    let (sockets, pidfds) = handed(&args)?;
    let out = File::from(
        std::io::stdout()
            .as_fd_owned()
            .context("duplicating stdout")?,
    );
    let name = output_label(args.write.is_some(), args.output_name.as_deref());
    let window = args.reorder_ms;
    let report = netshim_capture::run(Options {
        args,
        out,
        sockets,
        pidfds,
    })?;
    Ok(if print_report(&report, name.as_deref(), window) {
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
fn print_report(report: &netshim_capture::Report, output: Option<&str>, window_ms: u64) -> bool {
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
    if report.late > 0 {
        eprintln!(
            "netshim: {} packet(s) were written out of timestamp order (later than \
             --reorder-window {window_ms} ms, or let out of a ring that filled up)",
            report.late
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
    let window = args.reorder_ms;
    let report = netshim_capture::run(Options {
        args,
        out,
        sockets: Vec::new(),
        pidfds: Vec::new(),
    })?;
    // The engine writes the file itself only without a writer (-C, -G,
    // --print): otherwise it writes to the writer's pipe.
    let file = a.write.as_deref().filter(|_| rotator.is_none());
    let label = output_label(a.write.is_some(), file.filter(|w| *w != "-"));
    let output_failed = print_report(&report, label.as_deref(), window);
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

/// The printable form of a label or description in the engine's command
/// line, which separates them with tabs.
fn no_tabs(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

/// The one sealed engine of a capture, holding the sockets of every target
/// in `armed` (see `netshim_runtime::sealed`). `labelled`: the capture was
/// asked of several targets, whose interfaces it names `TARGET/IFACE`.
fn sealed_engine(
    mut args: EngineArgs,
    mut armed: Vec<Armed>,
    labelled: bool,
    exe: OwnedFd,
    out: Option<OwnedFd>,
    spare: Option<Pid>,
) -> anyhow::Result<i32> {
    use netshim_runtime::sealed;
    // The engine's user namespace is made in netshim's own when a target
    // is reached without joining one (root); otherwise in the first
    // target's, which netshim joins (the user's own rootless engine's),
    // mapping 65534 there, as for one target.
    let home = armed
        .iter()
        .position(|x| matches!(x.prepared.plan, Plan::DropUid))
        .unwrap_or(0);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut pidfds = Vec::new();
    for (t, x) in armed.iter_mut().enumerate() {
        for (name, ifindex, fd) in std::mem::take(&mut x.sockets) {
            // sealed::run places the descriptors at 3, 4, … in this order.
            args.sockets.push(HandedSocket {
                fd: 3 + fds.len() as i32,
                target: t,
                ifindex,
                name,
            });
            fds.push(fd);
        }
        args.names.extend(
            std::mem::take(&mut x.names)
                .into_iter()
                .map(|(i, n)| (t, i, n)),
        );
        args.targets.push(EngineTarget {
            label: if labelled {
                no_tabs(&x.chosen.target.to_string())
            } else {
                String::new()
            },
            description: if labelled {
                no_tabs(&x.chosen.description)
            } else {
                String::new()
            },
            pidfd: None,
        });
        // A pidfd of the target's process, opened here (in netshim's PID
        // namespace): the engine sees the target exit without a process
        // per target.
        if let Some(pid) = x.prepared.resolved.pid {
            match netshim_runtime::kernel::ns::pidfd_open(pid) {
                Ok(fd) => pidfds.push((t, fd)),
                Err(e) => tracing::warn!(pid, "cannot watch the target's process: {e}"),
            }
        }
    }
    for (t, fd) in pidfds {
        args.targets[t].pidfd = Some(3 + fds.len() as i32);
        fds.push(fd);
    }
    let home = armed.get(home).context("no target to capture in")?;
    sealed::enter(&home.prepared.plan, home.prepared.uid_map.as_ref())?;
    Ok(sealed::run(sealed::Engine {
        exe,
        args: engine_argv(&args),
        stdout: out,
        fds,
        watch: None,
        spare: spare.map(Pid::as_raw),
    })?)
}

/// Where the engine writes with `-w FILE`: the file, opened here as the
/// caller, or the pipe of the forked writer (rotation, `--print`), and the
/// writer. `None`: netshim's own stdout (`-w -`, lines).
fn output_of(
    a: &CaptureArgs,
    args: &mut EngineArgs,
    rot: &Option<Rotation>,
    names: bool,
) -> anyhow::Result<(Option<OwnedFd>, Option<Pid>)> {
    // The engine writes to a pipe or file netshim opened: flush each batch.
    args.low_latency = a.write.is_some();
    let Some(path) = a.write.as_deref().filter(|w| *w != "-") else {
        return Ok((None, None));
    };
    let (fd, writer) = file_output(a, path, rot, names)?;
    if writer.is_none() {
        args.output_name = Some(path.to_string());
    }
    // A status line would garble the printed lines.
    args.status_line = std::io::stderr().is_terminal() && !a.print;
    Ok((Some(fd), writer))
}

/// netshim's exit status once the engine ended with `status` and the
/// writer, if any, was waited for.
fn ended(
    status: anyhow::Result<i32>,
    rotator: Option<Pid>,
    rot: &Option<Rotation>,
) -> anyhow::Result<u8> {
    // The engine has exited and the pipe's last write end is closed: the
    // writer sees the end of the stream.
    let rotated_ok = rotator.is_none_or(wait_writer);
    let status = status?;
    if let (true, 1, Some(n)) = (rotated_ok, status, stops_after_files(rot)) {
        eprintln!("netshim: made the {n} files asked for; the capture stops there");
        return Ok(0);
    }
    Ok(if status == 0 && !rotated_ok {
        1
    } else {
        u8::try_from(status).unwrap_or(255)
    })
}

/// The sealed copy of netshim the engine runs from (its stdin): the target
/// never holds the host's binary.
fn sealed_copy() -> anyhow::Result<OwnedFd> {
    netshim_runtime::privilege::selfexec::sealed_copy_of_self()
        .context("making a sealed copy of netshim's binary for the engine")
}

/// One target: the engine through `netshim run`'s privilege path (UID
/// 65534 with only CAP_NET_RAW in the target), or sealed.
pub(super) fn in_target(
    a: &CaptureArgs,
    mut args: EngineArgs,
    target: Target,
    rot: Option<Rotation>,
) -> anyhow::Result<u8> {
    let exe = sealed_copy()?;
    args.confine = true;
    let (out, rotator) = output_of(a, &mut args, &rot, spans_interfaces(a))?;
    let opts = engine_run(target, engine_argv(&args));
    let prepared = netshim_runtime::prepare(&opts)?;
    let status = if a.sealed {
        let ready = Ready {
            chosen: Chosen {
                target: opts.target.clone(),
                description: String::new(),
            },
            prepared,
        };
        arm(ready, &args.interfaces)
            .and_then(|x| sealed_engine(args, vec![x], false, exe, out, rotator))
            .with_context(|| format!("capturing in {} (sealed)", opts.target))
    } else {
        // The run's init executes from the same sealed copy.
        let init_exe = exe
            .try_clone()
            .context("duplicating the sealed copy for the run's init")?;
        let io = netshim_runtime::RunIo {
            stdin: Some(exe),
            stdout: out,
            spare: rotator.map(Pid::as_raw),
            init_exe: Some(init_exe),
        };
        netshim_runtime::run(&opts, prepared, io)
            .with_context(|| format!("capturing in {}", opts.target))
    };
    ended(status, rotator, &rot)
}

/// Several targets (`--target-netns` repeated, or a selector): each one's
/// sockets made in it on its own plan, every one refused or kept before
/// anything starts, then one sealed engine reads them all into one output.
pub(super) fn in_targets(
    a: &CaptureArgs,
    mut args: EngineArgs,
    rot: Option<Rotation>,
) -> anyhow::Result<u8> {
    if a.write.is_some() && matches!(a.format, FormatArg::Pcap) {
        bail!(
            "several targets are written as pcapng only: a pcap file has no interfaces to say \
             which packet came from where; leave out --format pcap"
        );
    }
    let ready = prepare_all(a, expand(a)?)?;
    let armed = arm_all(a, ready)?;
    for x in &armed {
        eprintln!(
            "netshim: capturing in {} ({})",
            x.chosen.target, x.chosen.description
        );
    }
    let exe = sealed_copy()?;
    args.confine = true;
    args.reorder_ms = a.reorder_ms;
    let (out, rotator) = output_of(a, &mut args, &rot, true)?;
    let status = sealed_engine(args, armed, true, exe, out, rotator)
        .context("capturing in several targets (sealed)");
    ended(status, rotator, &rot)
}
