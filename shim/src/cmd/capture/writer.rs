//! Where `netshim capture -w FILE` puts the engine's stream: the file,
//! opened as the caller; or a forked writer that, as the caller, rotates
//! the files (`-C`, `-G`, `-W`, `-z`) and prints each packet's line
//! (`--print`) while the stream passes through it.

use std::fs::File;
use std::os::fd::OwnedFd;

use anyhow::Context;
use netshim_capture::rotate::Rotation;

use super::flags::CaptureArgs;
use super::lines::{print_stream, printer_of};

/// Where the engine's stream goes with `-w FILE`: the file itself, opened
/// here as the caller; or, for rotation (-C/-G) or `--print`, a forked
/// writer (netshim stays single-threaded for the privilege path) that reads
/// the stream from a pipe and, as the caller, writes the file or the
/// rotated files and prints each packet's line. Returns the descriptor the
/// engine writes to and the writer. `names`: printed lines name the
/// interface and direction (the capture spans several interfaces or
/// targets, see [`super::lines::record_line`]).
pub(super) fn file_output(
    a: &CaptureArgs,
    path: &str,
    rot: &Option<Rotation>,
    names: bool,
) -> anyhow::Result<(OwnedFd, Option<nix::unistd::Pid>)> {
    let file = match rot {
        None => Some(File::create(path).with_context(|| format!("creating {path}"))?),
        Some(_) => None,
    };
    if rot.is_none() && !a.print {
        return Ok((file.expect("made above").into(), None));
    }
    let printer = a.print.then(|| printer_of(a));
    let writer = Writer {
        file,
        base: path.to_string(),
        rot: rot.clone(),
        post_rotate: a.post_rotate.clone(),
        names,
    };
    let (fd, child) = fork_writer(writer, printer)?;
    Ok((fd, Some(child)))
}

/// Forks `writer` to read what is written to the returned descriptor.
fn fork_writer(
    writer: Writer,
    printer: Option<netshim_capture::summary::Printer>,
) -> anyhow::Result<(OwnedFd, nix::unistd::Pid)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("making a pipe")?;
    // SAFETY: netshim is single-threaded here; the child reads the pipe,
    // writes files, prints, and leaves with _exit.
    match unsafe { nix::unistd::fork() }.context("forking the file writer")? {
        nix::unistd::ForkResult::Parent { child } => Ok((w, child)),
        nix::unistd::ForkResult::Child => {
            drop(w);
            // Ctrl-C reaches the whole foreground process group: the writer
            // must not die with it, but write what the engine still sends
            // and end at the end of its pipe, so nothing is lost.
            for s in [
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::Signal::SIGHUP,
                nix::sys::signal::Signal::SIGTERM,
            ] {
                // SAFETY: SIG_IGN installs no handler code.
                let _ =
                    unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigIgn) };
            }
            let code = match writer.run(File::from(r), printer) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("netshim: {e:#}");
                    1
                }
            };
            // SAFETY: ends the forked child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The forked writer's work (see [`file_output`]).
struct Writer {
    file: Option<File>,
    base: String,
    rot: Option<Rotation>,
    post_rotate: Option<String>,
    names: bool,
}

/// Copies what is read through it to `copy`: the stream reaches the file
/// as the printer reads it.
struct Tee<W: std::io::Write> {
    src: File,
    copy: W,
}

impl<W: std::io::Write> std::io::Read for Tee<W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.src.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl Writer {
    fn run(
        self,
        src: File,
        printer: Option<netshim_capture::summary::Printer>,
    ) -> anyhow::Result<()> {
        use std::io::Read;
        let rotate = |input: File, rot: Rotation, base: String, post: Option<String>| {
            let files = netshim_capture::rotate::rotate_stream(input, &base, rot, post)?;
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            eprintln!(
                "netshim: wrote {} file(s): {}",
                names.len(),
                names.join(", ")
            );
            anyhow::Ok(())
        };
        let Some(printer) = printer else {
            let rot = self.rot.context("a writer without --print rotates")?;
            return rotate(src, rot, self.base, self.post_rotate);
        };
        // With rotation as well, the rotation reads what the printer passes
        // on through a second pipe, on a thread of this child.
        let (copy, rotating): (Box<dyn std::io::Write>, _) = match (self.file, self.rot) {
            (Some(f), _) => (Box::new(f), None),
            (None, Some(rot)) => {
                let (pr, pw) =
                    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("making a pipe")?;
                let (base, post) = (self.base, self.post_rotate);
                let t = std::thread::spawn(move || rotate(File::from(pr), rot, base, post));
                (Box::new(File::from(pw)), Some(t))
            }
            (None, None) => anyhow::bail!("a writer that prints writes a file too"),
        };
        let mut tee = Tee { src, copy };
        let printed = print_stream(&printer, &mut tee, self.names);
        // Whatever the reader left after an error still reaches the file.
        let mut rest = Vec::new();
        let _ = tee.src.read_to_end(&mut rest);
        let copied = std::io::Write::write_all(&mut tee.copy, &rest);
        drop(tee);
        if let Some(t) = rotating {
            t.join()
                .map_err(|_| anyhow::anyhow!("the rotating writer failed"))??;
        }
        printed?;
        copied.context("writing the capture file")
    }
}

pub(super) fn wait_writer(child: nix::unistd::Pid) -> bool {
    matches!(
        nix::sys::wait::waitpid(child, None),
        Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
    )
}

/// `-G S -W N` (without -C) and `-a files:N` stop after N files: the writer
/// closes the pipe and the engine's broken pipe is the expected end, as
/// tcpdump and dumpcap exit then.
pub(super) fn stops_after_files(rot: &Option<Rotation>) -> Option<u32> {
    let r = rot.as_ref()?;
    let w = r.files.filter(|_| r.seconds.is_some() && r.size.is_none());
    match (w, r.stop_after) {
        (Some(w), Some(n)) => Some(w.min(n)),
        (w, n) => w.or(n),
    }
}
