//! Where capture bytes go: a file or a pipe, written in whole blocks.
//!
//! Bytes are gathered in a buffer that always ends on a block (packet)
//! boundary. When a write fails part-way (ENOSPC, a closed pipe), a regular
//! file is truncated back to the last whole block, so it stays readable up
//! to the last whole packet.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGALRM: a write to a stalled pipe ran out of time.
static STALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_alarm(_: libc::c_int) {
    STALLED.store(true, Ordering::Relaxed);
}

/// Arms (or, with 0, disarms) the process's real-time interval timer.
fn alarm_in(secs: u32) {
    let t = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: secs as libc::time_t,
            tv_usec: 0,
        },
    };
    // SAFETY: setitimer reads the struct passed by reference and, with a
    // null old value, writes nothing.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut()) };
}

/// Flush once this much is buffered: large enough for few write() calls,
/// small enough to add little to the engine's memory.
const HIGH_WATER: usize = 64 << 10;

pub struct Output {
    file: File,
    regular: bool,
    buf: Vec<u8>,
    /// End offsets (in buf) of the whole blocks it holds, each with
    /// whether it is a packet (record, EPB, line).
    ends: Vec<(usize, bool)>,
    /// Bytes known to be in the file, all whole blocks.
    committed: u64,
    /// Packets known to be in the output.
    packets: u64,
    /// Packets given to the output that never reached it (a failed write).
    lost: u64,
    /// Flush when the buffer holds this much.
    high_water: usize,
    /// A pipe or FIFO whose reader may take no byte for this many seconds
    /// before the output is given up ([`Output::set_stall_timeout`]).
    stall: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("no space left on the output's filesystem; the file was cut back to its last whole packet ({committed} bytes) and is readable")]
    NoSpace { committed: u64 },
    #[error("the output's reader went away (broken pipe)")]
    BrokenPipe,
    #[error("the output's reader took nothing for {secs} s (--stall-timeout): it is gone or stuck, so the capture ends (a runtime keeps a process whose `kubectl exec` stream closed, blocked on its full pipe)")]
    Stalled { secs: u32 },
    #[error("writing the output failed: {source}{}", if *.regular { format!("; the file was cut back to its last whole packet ({} bytes)", .committed) } else { String::new() })]
    Io {
        source: io::Error,
        regular: bool,
        committed: u64,
    },
}

impl OutputError {
    /// What went wrong, in a few words: the reason packets were not
    /// written, for the closing counts.
    pub fn cause(&self) -> String {
        match self {
            OutputError::NoSpace { .. } => "no space left on device".into(),
            OutputError::BrokenPipe => "the output's reader went away (broken pipe)".into(),
            OutputError::Stalled { secs } => {
                format!("the output's reader took nothing for {secs} s")
            }
            OutputError::Io { source, .. } => {
                let s = source.to_string();
                let mut c = s.chars();
                match c.next() {
                    Some(f) => f.to_lowercase().chain(c).collect(),
                    None => s,
                }
            }
        }
    }
}

impl Output {
    pub fn new(file: File) -> io::Result<Output> {
        let md = file.metadata()?;
        let regular = md.file_type().is_file();
        let committed = if regular { md.len() } else { 0 };
        Ok(Output {
            file,
            regular,
            buf: Vec::with_capacity(HIGH_WATER + (1 << 16)),
            ends: Vec::with_capacity(4096),
            committed,
            packets: 0,
            lost: 0,
            high_water: HIGH_WATER,
            stall: None,
        })
    }

    /// When the output is a pipe or FIFO: give it up, with
    /// [`OutputError::Stalled`], once a write has been blocked for `secs`
    /// seconds without the reader taking a byte. A closed `kubectl exec`
    /// stream leaves the process running with a pipe nobody reads (the
    /// runtime's shim keeps its end open), and the capture would block on
    /// it forever. Files and terminals are never given up; 0 or `None`
    /// turns it off.
    pub fn set_stall_timeout(&mut self, secs: Option<u32>) -> io::Result<()> {
        let fifo = self.file.metadata()?.file_type().is_fifo();
        self.stall = secs.filter(|s| *s > 0 && fifo);
        if self.stall.is_some() {
            use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
            // Without SA_RESTART, so that the signal interrupts a blocked
            // write(2): it returns what it wrote, or EINTR if nothing
            // (signal(7), "Interruption of system calls").
            let sa = SigAction::new(
                SigHandler::Handler(on_alarm),
                SaFlags::empty(),
                SigSet::empty(),
            );
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe.
            unsafe { sigaction(Signal::SIGALRM, &sa) }.map_err(io::Error::from)?;
            let mut set = SigSet::empty();
            set.add(Signal::SIGALRM);
            set.thread_unblock().map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// The buffer to encode one block into; finish it with `end_block`.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn end_block(&mut self) {
        self.ends.push((self.buf.len(), false));
    }

    /// Ends a block that is a packet: counted in [`Output::packets`] once
    /// it is written, in [`Output::lost`] if a failed write drops it.
    pub fn end_packet(&mut self) {
        self.ends.push((self.buf.len(), true));
    }

    /// Whether enough is buffered that a flush is due.
    pub fn wants_flush(&self) -> bool {
        self.buf.len() >= self.high_water
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Packets written to the output (after a failed write, those of the
    /// file as it was cut back).
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Packets that were given to the output but never reached it: those
    /// buffered or half-written when a write failed. Packets given after
    /// the failure are counted too.
    pub fn lost(&self) -> u64 {
        self.lost + self.ends.iter().filter(|(_, p)| *p).count() as u64
    }

    /// Writes out every whole block buffered.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        let whole = self.ends.last().map_or(0, |e| e.0);
        let mut done = 0;
        while done < whole {
            if let Some(secs) = self.stall {
                STALLED.store(false, Ordering::Relaxed);
                alarm_in(secs);
            }
            let r = self.file.write(&self.buf[done..whole]);
            if self.stall.is_some() {
                alarm_in(0);
            }
            match r {
                Ok(0) => return Err(self.fail(done, io::Error::from(io::ErrorKind::WriteZero))),
                // Some bytes went: the reader is slow, not gone.
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if let Some(secs) = self.stall.filter(|_| STALLED.load(Ordering::Relaxed)) {
                        let _ = self.fail(done, e);
                        return Err(OutputError::Stalled { secs });
                    }
                }
                Err(e) => return Err(self.fail(done, e)),
            }
        }
        self.committed += whole as u64;
        self.packets += self.ends.iter().filter(|(_, p)| *p).count() as u64;
        self.buf.drain(..whole);
        self.ends.clear();
        Ok(())
    }

    /// After a failed write of `done` bytes: keep only whole blocks in a
    /// regular file.
    fn fail(&mut self, done: usize, e: io::Error) -> OutputError {
        let kept = self.ends.iter().take_while(|(end, _)| *end <= done);
        let keep = kept.clone().last().map_or(0, |e| e.0);
        let kept_packets = kept.filter(|(_, p)| *p).count() as u64;
        let all_packets = self.ends.iter().filter(|(_, p)| *p).count() as u64;
        let committed = self.committed + keep as u64;
        if self.regular {
            let _ = self.file.set_len(committed);
        }
        self.committed = committed;
        self.packets += kept_packets;
        self.lost += all_packets - kept_packets;
        self.buf.clear();
        self.ends.clear();
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => OutputError::NoSpace { committed },
            Some(libc::EPIPE) => OutputError::BrokenPipe,
            _ => OutputError::Io {
                source: e,
                regular: self.regular,
                committed,
            },
        }
    }

    /// Drops what is buffered, after a failed write: its packets are lost.
    pub fn discard(&mut self) {
        self.lost += self.ends.iter().filter(|(_, p)| *p).count() as u64;
        self.buf.clear();
        self.ends.clear();
    }

    /// Flushes and, for a regular file, syncs the data to disk.
    pub fn finish(&mut self) -> Result<(), OutputError> {
        self.flush()?;
        if self.regular {
            let _ = self.file.sync_data();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_nobody_reads_is_given_up_after_the_stall_timeout() {
        // Everything is allocated before the fork: the child of a
        // multi-threaded test process must not allocate.
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut o = Output::new(File::from(w)).unwrap();
        static CHUNK: [u8; 16 << 10] = [7u8; 16 << 10];
        // In a child: SIGALRM and its timer are the process's.
        // SAFETY: the child only writes to the pipe, within the buffer's
        // capacity, and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let t = std::time::Instant::now();
                let mut result = o
                    .set_stall_timeout(Some(1))
                    .map_err(|_| OutputError::BrokenPipe);
                // The pipe (64 KiB) fills; then nothing is read.
                for _ in 0..64 {
                    if result.is_err() {
                        break;
                    }
                    o.buf().extend_from_slice(&CHUNK);
                    o.end_block();
                    result = o.flush();
                }
                let ok = matches!(result, Err(OutputError::Stalled { secs: 1 }))
                    && t.elapsed() < std::time::Duration::from_secs(5);
                // SAFETY: _exit ends the child without running the
                // parent's atexit handlers or destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                drop(r);
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn a_regular_file_has_no_stall_timeout() {
        let f = tempfile::tempfile().unwrap();
        let mut o = Output::new(f).unwrap();
        o.set_stall_timeout(Some(1)).unwrap();
        assert_eq!(o.stall, None);
    }
    use std::io::Read;

    #[test]
    fn whole_blocks_reach_the_file() {
        let f = tempfile::tempfile().unwrap();
        let mut o = Output::new(f.try_clone().unwrap()).unwrap();
        o.buf().extend_from_slice(b"abcd");
        o.end_block();
        o.buf().extend_from_slice(b"ef");
        // "ef" is not a whole block yet: it must not be written.
        o.flush().unwrap();
        assert_eq!(o.committed(), 4);
        o.end_block();
        o.finish().unwrap();
        let mut s = String::new();
        let mut r = f;
        use std::io::Seek;
        r.seek(io::SeekFrom::Start(0)).unwrap();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcdef");
    }

    #[test]
    fn a_full_disk_leaves_whole_blocks_only() {
        // /dev/full fails every write with ENOSPC.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut o = Output::new(f).unwrap();
        o.buf().extend_from_slice(&[1; 100]);
        o.end_block();
        o.end_packet();
        o.buf().extend_from_slice(&[2; 50]);
        o.end_packet();
        let e = o.flush().unwrap_err();
        assert!(matches!(e, OutputError::NoSpace { committed: 0 }), "{e}");
        assert!(e.to_string().contains("last whole packet"));
        assert_eq!(e.cause(), "no space left on device");
        // Two packets were given, none reached the file.
        assert_eq!((o.packets(), o.lost()), (0, 2));
    }

    #[test]
    fn packets_are_counted_once_written() {
        let f = tempfile::tempfile().unwrap();
        let mut o = Output::new(f).unwrap();
        o.buf().extend_from_slice(b"header");
        o.end_block();
        for _ in 0..3 {
            o.buf().extend_from_slice(b"packet");
            o.end_packet();
        }
        assert_eq!((o.packets(), o.lost()), (0, 3), "buffered, not written");
        o.finish().unwrap();
        assert_eq!((o.packets(), o.lost()), (3, 0));
        o.buf().extend_from_slice(b"packet");
        o.end_packet();
        o.discard();
        assert_eq!((o.packets(), o.lost()), (3, 1));
    }

    #[test]
    fn a_closed_pipe_is_reported_as_such() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let mut o = Output::new(File::from(w)).unwrap();
        o.buf().extend_from_slice(b"x");
        o.end_block();
        // Rust ignores SIGPIPE, so the write fails with EPIPE.
        assert!(matches!(o.flush().unwrap_err(), OutputError::BrokenPipe));
    }
}
