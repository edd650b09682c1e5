//! `netshim capture` of several targets: `--target-netns` given more than
//! once, or a selector that stands for several (`docker-compose:PROJECT`,
//! `k8s:NAMESPACE/*`, …).
//!
//! Every target is resolved and planned here first, so that one that cannot
//! be joined is refused before anything starts. Then, for each target, a
//! forked child of netshim takes the same privilege path as a capture of
//! that target alone (its engine UID 65534 with only CAP_NET_RAW, or no
//! capability with `--sealed`), the engine writing pcapng to a pipe. This
//! process, as the caller, merges the pipes in timestamp order
//! (`netshim_capture::merge`) into the output: a file, the rotating writer,
//! stdout, or the line printer.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use netshim_capture::merge;
use netshim_capture::rotate::Rotation;
use netshim_capture::{EngineArgs, Format};
use netshim_runtime::target::select::Chosen;
use nix::sys::signal::{kill, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::flags::{stall_timeout, CaptureArgs, FormatArg};
use super::launch::sealed_engine;
use super::settings::{engine_argv, engine_run};
use super::targets::{expand, prepare_all, Ready};
use super::writer::{file_output, lines_output, stops_after_files, wait_writer};

/// How long the engines get to end (and write their statistics) once asked.
const GRACE: Duration = Duration::from_secs(10);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// The engine of one target, in a forked child (see the module's comment):
/// returns the exit status it had in the child.
fn run_one(a: &CaptureArgs, mut args: EngineArgs, r: Ready, out: OwnedFd) -> i32 {
    let label = r.chosen.target.to_string();
    let result = (|| -> anyhow::Result<i32> {
        let sealed = netshim_runtime::privilege::selfexec::sealed_copy_of_self()
            .context("making a sealed copy of netshim's binary for the engine")?;
        args.confine = true;
        let opts = engine_run(r.chosen.target.clone(), engine_argv(&args));
        if a.sealed {
            return sealed_engine(args, &r.prepared, sealed, Some(out), None);
        }
        let init_exe = sealed
            .try_clone()
            .context("duplicating the sealed copy for the run's init")?;
        let io = netshim_runtime::RunIo {
            stdin: Some(sealed),
            stdout: Some(out),
            spare: None,
            init_exe: Some(init_exe),
        };
        Ok(netshim_runtime::run(&opts, r.prepared, io)?)
    })();
    match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("netshim: capturing in {label}: {e:#}");
            125
        }
    }
}

/// A forked child per target, its engine writing to a pipe: (PID, read end).
fn start_engines(
    a: &CaptureArgs,
    args: &EngineArgs,
    ready: Vec<Ready>,
    out: &OwnedFd,
) -> anyhow::Result<Vec<(Pid, File, Chosen)>> {
    let mut started: Vec<(Pid, File, Chosen)> = Vec::new();
    for r in ready {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("making a pipe")?;
        // A larger pipe (1 MiB, what an unprivileged process may ask by
        // default, fs.pipe-max-size) means fewer wake-ups per packet at
        // full rate; the default 64 KiB still works.
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&rd),
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20),
        );
        // SAFETY: netshim is single-threaded here (the merge starts no
        // thread either); the child runs the same path as a capture of one
        // target and leaves with _exit.
        match unsafe { nix::unistd::fork() }.context("forking an engine's runner")? {
            nix::unistd::ForkResult::Parent { child } => {
                drop(wr);
                started.push((child, File::from(rd), r.chosen.clone()));
            }
            nix::unistd::ForkResult::Child => {
                // Only this engine's pipe stays open here: the merge sees
                // each stream end when its own engine ends.
                drop(rd);
                for (_, f, _) in started {
                    drop(f);
                }
                let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(out));
                let code = run_one(a, args.clone(), r, wr);
                // SAFETY: ends the forked child without running the
                // parent's destructors or atexit handlers.
                unsafe { libc::_exit(code.clamp(0, 255)) }
            }
        }
    }
    Ok(started)
}

pub(super) fn main(
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
    let chosen = expand(a)?;
    let ready = prepare_all(a, chosen)?;
    // The engines write pcapng to their pipes, flushing each batch, with no
    // count (the merge counts across targets) and no report of their own.
    let limit = args.count.take();
    args.write = Some(Format::Pcapng);
    args.low_latency = true;
    args.status_line = false;
    args.no_report = true;
    // Each engine says every 5 ms how far its stream is complete, so that
    // the merge writes a packet once no stream can still precede it, well
    // before the reorder window in the usual case.
    args.heartbeat = true;
    // The engines' pipes are read by this process; the stall timeout is
    // the merged output's.
    args.stall_timeout = None;
    let (out, writer): (OwnedFd, Option<Pid>) = match a.write.as_deref() {
        None => {
            let (fd, child) = lines_output(a)?;
            (fd, Some(child))
        }
        Some("-") => (
            std::os::fd::AsFd::as_fd(&std::io::stdout())
                .try_clone_to_owned()
                .context("duplicating stdout")?,
            None,
        ),
        Some(path) => file_output(a, path, &rot, true)?,
    };
    let started = start_engines(a, &args, ready, &out)?;
    let runners: Vec<Pid> = started.iter().map(|(p, _, _)| *p).collect();
    let labels: Vec<String> = started
        .iter()
        .map(|(_, _, c)| c.target.to_string())
        .collect();
    for (_, _, c) in &started {
        eprintln!("netshim: capturing in {} ({})", c.target, c.description);
    }
    // SIGINT, SIGTERM and SIGHUP end the capture cleanly: the engines are
    // asked to stop and their streams read to the end.
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { nix::sys::signal::signal(s, SigHandler::Handler(on_signal)) }
            .context("installing a signal handler")?;
    }
    let inputs = started
        .into_iter()
        .map(|(_, src, c)| merge::Input {
            src,
            label: c.target.to_string(),
            description: c.description,
        })
        .collect();
    let mut stop = || {
        for p in &runners {
            // Our own children, by PID; each forwards it to its engine.
            let _ = kill(*p, Signal::SIGINT);
        }
    };
    let low_latency = !matches!(a.write.as_deref(), Some(w) if w != "-");
    let report = merge::run(
        inputs,
        File::from(out),
        Duration::from_millis(a.reorder_ms),
        limit,
        merge::Control {
            interrupted: &INTERRUPTED,
            stop: &mut stop,
            grace: GRACE,
            low_latency,
            stall_timeout: stall_timeout(a),
        },
    );
    let statuses = wait_runners(&runners);
    let rotated_ok = writer.is_none_or(wait_writer);
    let report = report.context("merging the targets' streams")?;
    // The merge writes the file itself only without a writer (-C, -G).
    let output = match a.write.as_deref() {
        Some(w) if w != "-" && writer.is_none() => Some(netshim_capture::summary::printable(w)),
        Some(_) => Some("the output".to_string()),
        None => None,
    };
    print_report(&report, a.reorder_ms, output.as_deref());
    let mut failed = !report.stream_errors.is_empty() || !rotated_ok;
    for (label, status) in labels.iter().zip(&statuses) {
        if *status != 0 {
            eprintln!("netshim: the engine in {label} ended with status {status}");
            failed = true;
        }
    }
    match &report.output_error {
        Some(merge_err) => {
            if let (true, Some(n)) = (rotated_ok, stops_after_files(&rot)) {
                eprintln!("netshim: made the {n} files -W asked for; the capture stops there");
                return Ok(0);
            }
            eprintln!("netshim: {merge_err}");
            Ok(1)
        }
        None => Ok(u8::from(failed)),
    }
}

/// Waits for every runner (after the grace time, ends it); their statuses.
fn wait_runners(runners: &[Pid]) -> Vec<i32> {
    let start = std::time::Instant::now();
    let mut statuses = vec![None; runners.len()];
    while statuses.iter().any(Option::is_none) {
        for (i, p) in runners.iter().enumerate() {
            if statuses[i].is_some() {
                continue;
            }
            match waitpid(*p, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, c)) => statuses[i] = Some(c),
                Ok(WaitStatus::Signaled(_, s, _)) => statuses[i] = Some(128 + s as i32),
                Ok(_) => {
                    if start.elapsed() > GRACE {
                        tracing::warn!(
                            pid = p.as_raw(),
                            "an engine's runner did not end; killing it"
                        );
                        let _ = kill(*p, Signal::SIGKILL);
                    }
                }
                Err(_) => statuses[i] = Some(255),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    statuses.into_iter().map(|s| s.unwrap_or(255)).collect()
}

/// tcpdump's closing counts, across the targets, then each interface's.
fn print_report(r: &merge::MergeReport, window_ms: u64, output: Option<&str>) {
    let received: u64 = r.interfaces.iter().map(|i| i.received).sum();
    let dropped: u64 = r.interfaces.iter().map(|i| i.dropped).sum();
    eprintln!("{} packets captured", r.written);
    eprintln!("{received} packets received by filter");
    eprintln!("{dropped} packets dropped by kernel");
    for i in &r.interfaces {
        eprintln!(
            "  {}: {} written, {} received by filter, {} dropped",
            netshim_capture::summary::printable(&i.name),
            i.written,
            i.received,
            i.dropped
        );
    }
    if r.late > 0 {
        eprintln!(
            "netshim: {} packet(s) reached netshim more than {window_ms} ms after a later one had \
             been written: they were written at once, out of timestamp order (a larger \
             --reorder-window keeps them in order)",
            r.late
        );
    }
    if let (Some(e), Some(output)) = (&r.output_error, output) {
        eprintln!(
            "{} packets written to {output}; {} packets captured but not written: {}",
            r.packets_written,
            r.packets_lost,
            e.cause()
        );
    }
    for e in &r.stream_errors {
        eprintln!("netshim: {e}");
    }
}
