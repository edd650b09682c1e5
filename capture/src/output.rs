//! Where capture bytes go: a file or a pipe, written in whole blocks.
//!
//! Bytes are gathered in a buffer that always ends on a block (packet)
//! boundary. When a write fails part-way (ENOSPC, a closed pipe), a regular
//! file is truncated back to the last whole block, so it stays readable up
//! to the last whole packet.

use std::fs::File;
use std::io::{self, Write};

/// Flush once this much is buffered: large enough for few write() calls,
/// small enough to add little to the engine's memory.
const HIGH_WATER: usize = 64 << 10;

pub struct Output {
    file: File,
    regular: bool,
    buf: Vec<u8>,
    /// End offsets (in buf) of the whole blocks it holds.
    ends: Vec<usize>,
    /// Bytes known to be in the file, all whole blocks.
    committed: u64,
    /// Flush when the buffer holds this much.
    high_water: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("no space left on the output's filesystem; the file was cut back to its last whole packet ({committed} bytes) and is readable")]
    NoSpace { committed: u64 },
    #[error("the output's reader went away (broken pipe)")]
    BrokenPipe,
    #[error("writing the output failed: {source}{}", if *.regular { format!("; the file was cut back to its last whole packet ({} bytes)", .committed) } else { String::new() })]
    Io {
        source: io::Error,
        regular: bool,
        committed: u64,
    },
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
            high_water: HIGH_WATER,
        })
    }

    /// The buffer to encode one block into; finish it with `end_block`.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn end_block(&mut self) {
        self.ends.push(self.buf.len());
    }

    /// Whether enough is buffered that a flush is due.
    pub fn wants_flush(&self) -> bool {
        self.buf.len() >= self.high_water
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Writes out every whole block buffered.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        let whole = self.ends.last().copied().unwrap_or(0);
        let mut done = 0;
        while done < whole {
            match self.file.write(&self.buf[done..whole]) {
                Ok(0) => return Err(self.fail(done, io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(done, e)),
            }
        }
        self.committed += whole as u64;
        self.buf.drain(..whole);
        self.ends.clear();
        Ok(())
    }

    /// After a failed write of `done` bytes: keep only whole blocks in a
    /// regular file.
    fn fail(&mut self, done: usize, e: io::Error) -> OutputError {
        let keep = self
            .ends
            .iter()
            .copied()
            .take_while(|&end| end <= done)
            .last()
            .unwrap_or(0);
        let committed = self.committed + keep as u64;
        if self.regular {
            let _ = self.file.set_len(committed);
        }
        self.committed = committed;
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
        let e = o.flush().unwrap_err();
        assert!(matches!(e, OutputError::NoSpace { committed: 0 }), "{e}");
        assert!(e.to_string().contains("last whole packet"));
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
