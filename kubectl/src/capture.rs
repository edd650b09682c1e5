//! `kubectl netshim capture`: the filter compiled, the pods checked, a debug
//! container per pod, one capture per pod through the API server, and
//! their streams merged into one pcapng.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use netshim_capture::rotate::{rotate_stream, RotateError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::args::CaptureArgs;
use crate::cluster::{self, Facts, Target};
use crate::{debug, merging};

/// One pod whose capture runs.
struct Running {
    t: Target,
    /// The exec's stdin: the capture's lifeline, and its stop (see
    /// debug.rs); closed when this is dropped.
    stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    packets: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<String>,
}

/// Counts the packets (EPBs) of a pcapng stream as it passes.
#[derive(Default)]
struct BlockCounter {
    /// Bytes until the next block starts.
    skip: usize,
    /// The start of a block header cut by a read's end.
    head: Vec<u8>,
}

impl BlockCounter {
    fn feed(&mut self, mut b: &[u8]) -> u64 {
        let mut n = 0;
        loop {
            if self.skip > 0 {
                let s = self.skip.min(b.len());
                self.skip -= s;
                b = &b[s..];
            }
            if b.is_empty() {
                return n;
            }
            let want = 8 - self.head.len();
            let take = want.min(b.len());
            self.head.extend_from_slice(&b[..take]);
            b = &b[take..];
            if self.head.len() < 8 {
                return n;
            }
            let kind = u32::from_le_bytes(self.head[0..4].try_into().unwrap());
            let len = u32::from_le_bytes(self.head[4..8].try_into().unwrap()) as usize;
            if kind == 6 {
                n += 1;
            }
            self.skip = len.saturating_sub(8);
            self.head.clear();
        }
    }
}

/// The arguments of every pod's `netshim capture -w -`.
fn capture_args(a: &CaptureArgs) -> Vec<String> {
    let mut v = Vec::new();
    if !a
        .passthrough
        .iter()
        .any(|f| f == "-i" || f == "--interface")
    {
        v.extend(["-i".to_string(), "any".to_string()]);
    }
    // Packet-buffered: the stream is read live.
    v.push("-U".into());
    // Each pod writes its stream every half reorder window (500 ms to a
    // file, 100 ms live by default) in one piece, not each batch (every
    // 20 ms under traffic): a pod then costs the plugin a fifth to a
    // twenty-fifth of the hand-overs (TLS records, a WebSocket frame,
    // copies, wake-ups), and its packets still arrive within the window,
    // which they wait out anyway: no later, no out of order.
    let every = a.window_ms / 2;
    if every > 0 {
        v.extend(["--write-interval".to_string(), every.to_string()]);
    }
    if let Some(c) = a.count {
        // No pod needs to capture more than the whole count.
        v.extend(["-c".to_string(), c.to_string()]);
    }
    v.extend(a.passthrough.iter().cloned());
    v.extend(a.filter.iter().cloned());
    v
}

fn say(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("{msg}");
    }
}

/// Where the merged pcapng goes: a file, stdout, or (`-C`, `-G`) a pipe
/// into the rotation's writer thread, which makes the files.
struct Sink {
    file: File,
    to_pipe: bool,
    rotating: Option<std::thread::JoinHandle<Result<Vec<PathBuf>, RotateError>>>,
}

/// The directory a file of `-w` goes in.
fn parent_dir(f: &str) -> &Path {
    Path::new(f)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether the output can be made, before anything is created: the file
/// itself is made (truncated) only once every capture runs, so a setup
/// that fails or is interrupted leaves an earlier file of that name as it
/// was, and no empty one.
fn check_output(a: &CaptureArgs) -> Result<()> {
    let Some(f) = a.write.as_deref().filter(|f| *f != "-") else {
        return Ok(());
    };
    if !a.rotation.active() && Path::new(f).exists() {
        // Not opened: a FIFO would wait here for its reader.
        if Path::new(f).is_dir() {
            bail!("cannot write {f}: it is a directory");
        }
        return nix::unistd::access(f, nix::unistd::AccessFlags::W_OK)
            .with_context(|| format!("cannot write {f}"));
    }
    let dir = parent_dir(f);
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .with_context(|| format!("cannot write files in {}", dir.display()))
}

fn open_output(a: &CaptureArgs) -> Result<Sink> {
    let w = a.write.as_deref();
    if a.rotation.active() {
        let base = w.expect("checked: -C and -G need -w FILE").to_string();
        let (r, wr) = nix::unistd::pipe().context("cannot make a pipe for the rotation")?;
        let rot = a.rotation.clone();
        let rotating = std::thread::Builder::new()
            .name("rotation".into())
            .spawn(move || rotate_stream(File::from(r), &base, rot, None))
            .context("cannot start the rotation's writer")?;
        return Ok(Sink {
            file: File::from(wr),
            to_pipe: false,
            rotating: Some(rotating),
        });
    }
    let (file, to_pipe) = match w {
        Some("-") | None => {
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot use stdout")?;
            (File::from(fd), true)
        }
        Some(f) => (
            File::create(f).with_context(|| format!("cannot create {f}"))?,
            false,
        ),
    };
    Ok(Sink {
        file,
        to_pipe,
        rotating: None,
    })
}

/// Waits for the rotation's writer; false when it failed.
fn rotated(
    a: &CaptureArgs,
    rotating: std::thread::JoinHandle<Result<Vec<PathBuf>, RotateError>>,
) -> bool {
    match rotating.join() {
        Ok(Ok(files)) => {
            let r = &a.rotation;
            // -a files:N, or -G … -W N without -C: N files, then stop.
            let asked = r.stop_after.or(r.files.filter(|_| r.size.is_none()));
            if asked.is_some_and(|n| files.len() as u64 >= u64::from(n)) {
                eprintln!(
                    "made the {} files asked for; the capture stops there",
                    files.len()
                );
            }
            if !a.quiet {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                eprintln!("files written: {}", names.join(", "));
            }
            true
        }
        Ok(Err(e)) => {
            eprintln!("writing the rotated files: {e}");
            false
        }
        Err(_) => {
            eprintln!("the rotation's writer failed");
            false
        }
    }
}

/// The checks of every target: those to capture, or the refusal.
async fn checked(
    c: &cluster::Cluster,
    a: &CaptureArgs,
    targets: Vec<Target>,
) -> Result<Vec<Target>> {
    let mut facts = Facts::default();
    let (mut go, mut refused) = (Vec::new(), Vec::new());
    for t in targets {
        let (why, warn) = facts.refusal(&c.client, &t, &a.handler).await?;
        if let Some(w) = warn {
            eprintln!("{}: {w}", t.label());
        }
        match why {
            Some(why) => refused.push(format!("  {}: {why}", t.label())),
            None => go.push(t),
        }
    }
    if !refused.is_empty() {
        let list = refused.join("\n");
        if !a.skip_unreachable || go.is_empty() {
            bail!(
                "cannot capture {} of the {} pods; nothing was created:\n{list}{}",
                refused.len(),
                refused.len() + go.len(),
                if go.is_empty() {
                    ""
                } else {
                    "\n(--skip-unreachable captures the others)"
                }
            );
        }
        eprintln!("skipping (--skip-unreachable):\n{list}");
    }
    Ok(go)
}

/// Adds the debug containers, waits until they run; the pods whose did.
async fn debug_containers(
    c: &cluster::Cluster,
    a: &CaptureArgs,
    image: &str,
    name: &str,
    go: Vec<Target>,
) -> Result<Vec<Target>> {
    let mut jobs = Vec::new();
    for t in go {
        let api: Api<Pod> = Api::namespaced(c.client.clone(), &t.ns);
        let (image, name, lifetime) = (image.to_string(), name.to_string(), a.lifetime);
        jobs.push(tokio::spawn(async move {
            let r = async {
                debug::add(&api, &t, &name, &image, lifetime).await?;
                debug::wait_running(&api, &t, &name, 120).await
            }
            .await;
            (t, r)
        }));
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for j in jobs {
        let (t, r) = j.await?;
        match r {
            Ok(()) => {
                say(
                    a.quiet,
                    &format!(
                        "{}: debug container {name} runs on node {}",
                        t.label(),
                        t.node
                    ),
                );
                ok.push(t);
            }
            Err(e) => failed.push(format!("  {}", crate::show::line(&format!("{e:#}")))),
        }
    }
    if !failed.is_empty() && (!a.skip_unreachable || ok.is_empty()) {
        bail!("no capture was started:\n{}", failed.join("\n"));
    }
    for f in &failed {
        eprintln!("skipping:{f}");
    }
    Ok(ok)
}

/// Hands a pod's stream (stream `idx` of the merge) to the merge,
/// counting its packets, until it ends; then says it ended.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    feed: merging::Feed,
    idx: usize,
    packets: Arc<AtomicU64>,
) -> Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut count = BlockCounter::default();
    let r = loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        packets.fetch_add(count.feed(&buf[..n]), Ordering::Relaxed);
        if !feed
            .send(merging::Chunk::Bytes(idx, buf[..n].to_vec()))
            .await
        {
            break Err(anyhow!("the merge has ended"));
        }
    };
    let why = r.as_ref().err().map(|e| e.to_string());
    feed.send(merging::Chunk::End(idx, why)).await;
    r
}

/// Starts the capture of `t` in its debug container; its stream goes to
/// the merge as stream `idx`.
async fn start(
    t: Target,
    api: Api<Pod>,
    name: &str,
    args: &[String],
    (feed, idx): (merging::Feed, usize),
    quiet: bool,
    stopping: Arc<AtomicBool>,
) -> Result<Running> {
    let mut p = debug::exec_capture(&api, &t, name, args).await?;
    let stdout = p.stdout().context("the exec has no stdout")?;
    let stderr = p.stderr().context("the exec has no stderr")?;
    // The capture's lifeline and its stop (see debug.rs).
    let stdin = p
        .stdin()
        .map(|w| Box::new(w) as Box<dyn AsyncWrite + Send + Unpin>);
    let status = p.take_status();
    let packets = Arc::new(AtomicU64::new(0));
    let label = t.label();
    let err_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut kept = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            // The pod's side wrote it: shown as text (crate::show).
            let l = crate::show::line(&l);
            if !quiet {
                eprintln!("{label}: {l}");
            }
            kept.push(l);
        }
        kept
    });
    let pk = packets.clone();
    let label = t.label();
    let (api2, pod, container) = (api.clone(), t.name.clone(), name.to_string());
    let task = tokio::spawn(async move {
        let pumped = pump(stdout, feed, idx, pk).await;
        let lines = err_task.await.unwrap_or_default();
        let st = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = p.join().await;
        let mut end = match st {
            Some(s) if s.status.as_deref() == Some("Failure") => failure(s),
            _ => "the capture ended".to_string(),
        };
        if let Err(e) = pumped {
            end = format!("its stream broke off: {e}");
        }
        if end.contains("failed") && quiet {
            for l in lines {
                eprintln!("{label}: {l}");
            }
        }
        if !stopping.load(Ordering::Relaxed) {
            // Before any stop, and not by -a duration: the pod went away.
            if let Some(why) = went_away(&api2, &pod, &container).await {
                end = format!("{end}: {why}; its interfaces end here");
                eprintln!("{label}: {end}");
            } else if end != "the capture ended" {
                eprintln!("{label}: {end}; its interfaces end here, the others go on");
            }
        }
        end
    });
    Ok(Running {
        t,
        stdin,
        packets,
        task,
    })
}

/// An exec's failure, said shortly: a non-zero exit is its status (the
/// kubelet's message repeats the whole command).
fn failure(s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> String {
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref()?.parse::<i32>().ok());
    match code {
        Some(c) if c > 128 => format!(
            "the capture failed: it was killed by signal {} (exit status {c})",
            c - 128
        ),
        Some(c) => format!("the capture failed with exit status {c}"),
        None => format!(
            "the capture failed: {}",
            crate::show::line(&s.message.unwrap_or_default())
        ),
    }
}

/// Why a pod's capture ended before it was stopped, as the API server
/// sees the pod now; None while the pod and its debug container run (the
/// capture ended by itself: `-a duration:`).
async fn went_away(api: &Api<Pod>, pod: &str, container: &str) -> Option<String> {
    let p = match api.get_opt(pod).await {
        Ok(None) => return Some("the pod was deleted".into()),
        Ok(Some(p)) => p,
        Err(e) => {
            return Some(format!(
                "the pod cannot be read: {}",
                cluster::api_error(&e)
            ))
        }
    };
    if p.metadata.deletion_timestamp.is_some() {
        return Some("the pod is being deleted".into());
    }
    let status = p.status.unwrap_or_default();
    let debug_ended = status
        .ephemeral_container_statuses
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.name == container && c.state.is_some_and(|s| s.terminated.is_some()));
    match status.phase.as_deref() {
        _ if debug_ended => Some(format!(
            "its debug container {container} ended (--lifetime)"
        )),
        Some("Running") => None,
        phase => Some(format!(
            "the pod is {}",
            phase.unwrap_or("in an unknown phase")
        )),
    }
}

/// Stops every capture still running, once: `stop` on its exec's stdin,
/// which its script turns into SIGINT (debug.rs), so it ends with its
/// statistics.
async fn stop_all(runs: &mut [Running]) {
    for r in runs.iter_mut() {
        if r.task.is_finished() {
            // Ended already (its pod went away): nothing to stop.
            continue;
        }
        let Some(w) = r.stdin.as_mut() else { continue };
        if let Err(e) = async {
            w.write_all(b"stop\n").await?;
            w.flush().await
        }
        .await
        {
            eprintln!("{}: cannot stop its capture: {e}", r.t.label());
        }
    }
}

fn progress(runs: &[Running]) -> String {
    runs.iter()
        .map(|r| {
            let ended = if r.task.is_finished() { " (ended)" } else { "" };
            format!(
                "{} {}{ended}",
                r.t.label(),
                r.packets.load(Ordering::Relaxed)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `kubectl netshim capture`; the exit status.
pub async fn run(a: CaptureArgs) -> Result<i32> {
    let expr = a.filter.join(" ");
    netshim_capture::filter::Compiled::for_capture(&expr, a.snaplen)
        .map_err(|e| anyhow!("{e}; nothing was created"))?;
    let image = a.image.clone().context(
        "name netshim's image for the debug containers: --image REGISTRY/netshim:TAG (or KUBECTL_NETSHIM_IMAGE)",
    )?;
    if a.write.is_none() && std::io::stdout().is_terminal() {
        bail!("give -w FILE, or -w - and a pipe (| wireshark -k -i -): a pcapng is not for a terminal");
    }
    let c = cluster::connect(&a.kube).await?;
    let targets = cluster::pods(&c, &a.pods, a.selector.as_deref(), a.container.as_deref()).await?;
    let go = checked(&c, &a, targets).await?;
    check_output(&a)?;
    let name = debug::container_name();
    let t0 = Instant::now();
    let go = debug_containers(&c, &a, &image, &name, go).await?;
    let args = capture_args(&a);
    let stopping = Arc::new(AtomicBool::new(false));
    let mut runs = Vec::new();
    let mut streams = Vec::new();
    let (feed, rx) = merging::channel();
    for t in go {
        streams.push(merging::Stream {
            label: t.label(),
            description: t.description(),
        });
        let api: Api<Pod> = Api::namespaced(c.client.clone(), &t.ns);
        let to = (feed.clone(), streams.len() - 1);
        runs.push(start(t, api, &name, &args, to, a.quiet, stopping.clone()).await?);
    }
    drop(feed);
    say(
        a.quiet,
        &format!(
            "capturing {} pods ({:.1} s to start); merged in time order, reorder window {} ms",
            runs.len(),
            t0.elapsed().as_secs_f64(),
            a.window_ms
        ),
    );
    // Made now (see check_output); failing here, the exec streams close as
    // the plugin exits and every capture's lifeline ends it.
    let sink = open_output(&a)?;
    let out = merge_and_stop(
        &a,
        sink.file,
        sink.to_pipe,
        (streams, rx),
        &mut runs,
        stopping,
    )
    .await?;
    report(&a, &out, runs).await;
    // With rotation, the pipe's reader is the writer thread: gone means it
    // made its files (-a files:) or failed.
    let rotated_ok = sink.rotating.is_none_or(|r| rotated(&a, r));
    let output_failed = out.output_error.is_some() && !out.reader_gone;
    Ok(if output_failed || !rotated_ok { 1 } else { 0 })
}

/// Runs the merge on its own thread; stops every capture when it asks (the
/// count, the output gone) or a signal arrives.
async fn merge_and_stop(
    a: &CaptureArgs,
    out: File,
    to_pipe: bool,
    (streams, rx): (
        Vec<merging::Stream>,
        std::sync::mpsc::Receiver<merging::Chunk>,
    ),
    runs: &mut [Running],
    stopping: Arc<AtomicBool>,
) -> Result<merging::Outcome> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = mpsc::unbounded_channel::<()>();
    let settings = merging::Settings {
        window: Duration::from_millis(a.window_ms),
        limit: a.count,
        max_bytes: a.max_bytes,
        low_latency: to_pipe,
        grace: Duration::from_secs(15),
    };
    let flag = interrupted.clone();
    let merge = tokio::task::spawn_blocking(move || {
        let mut stop = || {
            let _ = stop_tx.send(());
        };
        merging::run(streams, rx, out, settings, flag, &mut stop)
    });
    tokio::pin!(merge);
    let mut sigs = Vec::new();
    for k in [
        tokio::signal::unix::SignalKind::interrupt(),
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::hangup(),
    ] {
        sigs.push(tokio::signal::unix::signal(k).context("cannot handle signals")?);
    }
    let [s1, s2, s3] = &mut sigs[..] else {
        unreachable!()
    };
    let every = Duration::from_secs(2);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut stopped = false;
    loop {
        tokio::select! {
            r = &mut merge => return r.map_err(|e| anyhow!("the merge thread failed: {e}"))?,
            _ = s1.recv() => interrupted.store(true, Ordering::Relaxed),
            _ = s2.recv() => interrupted.store(true, Ordering::Relaxed),
            _ = s3.recv() => interrupted.store(true, Ordering::Relaxed),
            Some(()) = stop_rx.recv(), if !stopped => {
                stopped = true;
                stopping.store(true, Ordering::Relaxed);
                say(a.quiet, "stopping every capture");
                stop_all(runs).await;
            }
            _ = tick.tick() => say(a.quiet, &format!("packets so far: {}", progress(runs))),
        }
    }
}

/// The closing counts, on stderr.
async fn report(a: &CaptureArgs, out: &merging::Outcome, runs: Vec<Running>) {
    let mut ends = BTreeMap::new();
    for r in runs {
        let label = r.t.label();
        // A capture still running after the merge's grace: its exec is
        // dropped, and its lifeline ends it.
        let end = match tokio::time::timeout(Duration::from_secs(5), r.task).await {
            Ok(Ok(e)) => e,
            _ => "did not end in time; its exec stream was closed".to_string(),
        };
        ends.insert(label, end);
    }
    for (label, end) in &ends {
        if end != "the capture ended" {
            eprintln!("{label}: {end}");
        }
    }
    for e in &out.stream_errors {
        eprintln!("{}", crate::show::line(e));
    }
    let failed = out.output_error.as_ref().filter(|_| !out.reader_gone);
    if let Some(e) = failed {
        eprintln!("{e}");
    }
    if !a.quiet {
        for i in &out.interfaces {
            // Named by the pod's network namespace (and its stream).
            let name = crate::show::line(&i.name);
            if i.statistics {
                eprintln!(
                    "{name}: {} packets written, {} received by filter, {} dropped by kernel",
                    i.written, i.received, i.dropped
                );
            } else {
                eprintln!(
                    "{name}: {} packets written; its capture was killed before its statistics (counts of packets received and dropped are not known)",
                    i.written
                );
            }
        }
    }
    // A failed output (a full disk) holds fewer than were merged.
    let kept = match failed {
        Some(_) if a.write.as_deref().is_some_and(|w| w != "-") && !a.rotation.active() => {
            format!("; {} in the file", out.in_output)
        }
        _ => String::new(),
    };
    let pods = match ends.len() {
        1 => "1 pod".to_string(),
        n => format!("{n} pods"),
    };
    eprintln!(
        "{} packets captured from {pods} ({} written out of order, later than the {} ms window{kept})",
        out.written, out.late, a.window_ms
    );
}

#[cfg(test)]
mod tests {
    use super::BlockCounter;

    #[test]
    fn packets_are_counted_across_cut_reads() {
        let mut s = Vec::new();
        for (kind, len) in [(0x0A0D_0D0Au32, 28u32), (1, 20), (6, 32), (6, 36), (5, 24)] {
            s.extend_from_slice(&kind.to_le_bytes());
            s.extend_from_slice(&len.to_le_bytes());
            s.resize(s.len() + len as usize - 8, 0);
        }
        for cut in 1..s.len() {
            let mut c = BlockCounter::default();
            let n = c.feed(&s[..cut]) + c.feed(&s[cut..]);
            assert_eq!(n, 2, "cut at {cut}");
        }
    }
}
