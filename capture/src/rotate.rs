//! File rotation (`-C`, `-W`, `-G`) with tcpdump's naming, fed by a capture
//! stream.
//!
//! The engine writes one stream; rotation happens where files may be
//! created — outside the target, as the caller. [`Splitter`] cuts the stream
//! into whole blocks and keeps its preamble (pcapng SHB and IDBs, or the pcap
//! header); [`Rotator`] starts each new file with that preamble, so every
//! file is readable on its own.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use crate::output::{Output, OutputError};

/// The capture stream's format, known from its first four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pcapng,
    Pcap,
}

/// A block of the stream, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Block {
    /// Part of every file's preamble (SHB, IDB, pcap header).
    Preamble(Vec<u8>),
    /// A packet record (EPB, pcap record).
    Packet(Vec<u8>),
    /// Anything else (ISB): written to the current file.
    Other(Vec<u8>),
}

#[derive(Default)]
pub struct Splitter {
    kind: Option<Kind>,
    pending: Vec<u8>,
    pos: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the capture stream is malformed at byte {offset}: {what}")]
pub struct StreamError {
    pub offset: u64,
    pub what: &'static str,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// Adds bytes; returns the whole blocks now complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Block>, StreamError> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let rest = &self.pending[self.pos..];
            if self.kind.is_none() {
                if rest.len() < 4 {
                    break;
                }
                self.kind = match u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) {
                    0x0A0D_0D0A => Some(Kind::Pcapng),
                    crate::format::PCAP_MAGIC_NS => Some(Kind::Pcap),
                    _ => {
                        return Err(StreamError {
                            offset: 0,
                            what: "neither pcapng nor netshim's pcap",
                        })
                    }
                };
                if self.kind == Some(Kind::Pcap) {
                    if rest.len() < 24 {
                        self.kind = None;
                        break;
                    }
                    out.push(Block::Preamble(rest[..24].to_vec()));
                    self.pos += 24;
                    continue;
                }
            }
            let (len, block) = match self.kind {
                Some(Kind::Pcapng) => {
                    if rest.len() < 8 {
                        break;
                    }
                    let kind = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
                    let len = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
                    if len < 12 || !len.is_multiple_of(4) {
                        return Err(StreamError {
                            offset: self.pos as u64,
                            what: "bad pcapng block length",
                        });
                    }
                    if rest.len() < len {
                        break;
                    }
                    let b = rest[..len].to_vec();
                    (
                        len,
                        match kind {
                            0x0A0D_0D0A | 1 => Block::Preamble(b),
                            6 | 3 => Block::Packet(b),
                            _ => Block::Other(b),
                        },
                    )
                }
                Some(Kind::Pcap) => {
                    if rest.len() < 16 {
                        break;
                    }
                    let caplen =
                        u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
                    let len = 16 + caplen;
                    if rest.len() < len {
                        break;
                    }
                    (len, Block::Packet(rest[..len].to_vec()))
                }
                None => break,
            };
            out.push(block);
            self.pos += len;
        }
        if self.pos > 0 && self.pos == self.pending.len() {
            self.pending.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        Ok(out)
    }
}

/// tcpdump's rotation settings.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    /// `-C`: start a new file before one would exceed this many bytes
    /// (tcpdump's MB: 1,000,000 bytes).
    pub size: Option<u64>,
    /// `-W`: with `-C`, a ring of this many files; with `-G` alone, stop after
    /// this many files.
    pub files: Option<u32>,
    /// `-G`: a new file every this many seconds; the name goes through
    /// strftime(3).
    pub seconds: Option<u64>,
    /// dumpcap's `-a files:N`: stop once this many files were written, the
    /// last filled as any other (with `-C`, `-G`, and with a `-C -W` ring,
    /// whose names are then reused).
    pub stop_after: Option<u32>,
}

impl Rotation {
    pub fn active(&self) -> bool {
        self.size.is_some() || self.seconds.is_some()
    }
}

pub struct Rotator {
    base: String,
    rot: Rotation,
    preamble: Vec<Vec<u8>>,
    out: Option<Output>,
    /// Bytes and packets in the current file.
    bytes: u64,
    packets: u64,
    /// Files started; with -C, the counter in the name.
    count: u32,
    opened: Instant,
    /// Names of the files written, in order.
    pub written: Vec<PathBuf>,
    /// tcpdump's `-z`: a program run with each file's name once rotation
    /// has closed it.
    post_rotate: Option<String>,
    /// The programs started, waited for at the end.
    started: Vec<std::process::Child>,
}

/// strftime(3) of `pattern` at the current local time.
fn strftime_now(pattern: &str) -> String {
    let Ok(c) = std::ffi::CString::new(pattern) else {
        return pattern.to_string();
    };
    let mut buf = vec![0u8; pattern.len() * 4 + 64];
    // SAFETY: time/localtime_r write only into the locals; strftime writes
    // at most buf.len() bytes into buf and returns how many it wrote.
    let n = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c.as_ptr(),
            &tm,
        )
    };
    if n == 0 && !pattern.is_empty() {
        return pattern.to_string();
    }
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

impl Rotator {
    pub fn new(base: &str, rot: Rotation) -> Rotator {
        Rotator {
            base: base.to_string(),
            rot,
            preamble: Vec::new(),
            out: None,
            bytes: 0,
            packets: 0,
            count: 0,
            opened: Instant::now(),
            written: Vec::new(),
            post_rotate: None,
            started: Vec::new(),
        }
    }

    /// Runs `cmd FILE` after each rotation closes FILE (tcpdump's `-z`):
    /// as the process that writes the files (the caller, never in a target),
    /// without a shell, not waited for until the capture ends.
    pub fn with_post_rotate(mut self, cmd: Option<String>) -> Rotator {
        self.post_rotate = cmd;
        self
    }

    /// The name of the `n`th file (from 0), as tcpdump names it.
    pub fn name(&self, n: u32) -> String {
        let base = if self.rot.seconds.is_some() {
            strftime_now(&self.base)
        } else {
            self.base.clone()
        };
        match (self.rot.size, self.rot.files) {
            (Some(_), Some(w)) => {
                let width = (w.max(1) - 1).to_string().len();
                format!("{base}{:0width$}", n % w)
            }
            (Some(_), None) if n > 0 => format!("{base}{n}"),
            _ => base,
        }
    }

    fn open_next(&mut self) -> Result<bool, OutputError> {
        if let Some(mut o) = self.out.take() {
            o.finish()?;
            if let (Some(cmd), Some(done)) = (&self.post_rotate, self.written.last()) {
                match std::process::Command::new(cmd)
                    .arg(done)
                    .stdin(std::process::Stdio::null())
                    .spawn()
                {
                    Ok(child) => self.started.push(child),
                    Err(e) => eprintln!("netshim: cannot run the -z command {cmd:?}: {e}"),
                }
            }
        }
        if self.rot.size.is_none() {
            if let (Some(_), Some(w)) = (self.rot.seconds, self.rot.files) {
                if self.count >= w {
                    return Ok(false);
                }
            }
        }
        if self.rot.stop_after.is_some_and(|n| self.count >= n) {
            return Ok(false);
        }
        let name = self.name(self.count);
        let f = File::create(&name).map_err(|e| OutputError::Io {
            source: io::Error::new(e.kind(), format!("creating {name}: {e}")),
            regular: false,
            committed: 0,
        })?;
        let mut o = Output::new(f).map_err(|source| OutputError::Io {
            source,
            regular: false,
            committed: 0,
        })?;
        for b in &self.preamble {
            o.buf().extend_from_slice(b);
            o.end_block();
        }
        self.bytes = self.preamble.iter().map(|b| b.len() as u64).sum();
        self.packets = 0;
        self.count += 1;
        self.opened = Instant::now();
        self.written.push(name.into());
        self.out = Some(o);
        Ok(true)
    }

    /// Writes one block; returns false once `-G … -W N` or `-a files:N` has
    /// made its files.
    pub fn write(&mut self, block: Block) -> Result<bool, OutputError> {
        let due = |r: &Rotator, len: u64| {
            r.packets > 0
                && (r.rot.size.is_some_and(|s| r.bytes + len > s)
                    || r.rot
                        .seconds
                        .is_some_and(|s| r.opened.elapsed().as_secs() >= s))
        };
        match block {
            Block::Preamble(b) => {
                if let Some(o) = self.out.as_mut() {
                    o.buf().extend_from_slice(&b);
                    o.end_block();
                    self.bytes += b.len() as u64;
                }
                self.preamble.push(b);
            }
            Block::Packet(b) => {
                if (self.out.is_none() || due(self, b.len() as u64)) && !self.open_next()? {
                    return Ok(false);
                }
                let o = self.out.as_mut().expect("a file is open");
                o.buf().extend_from_slice(&b);
                o.end_block();
                self.bytes += b.len() as u64;
                self.packets += 1;
                if o.wants_flush() {
                    o.flush()?;
                }
            }
            Block::Other(b) => {
                if self.out.is_none() && !self.open_next()? {
                    return Ok(false);
                }
                let o = self.out.as_mut().expect("a file is open");
                o.buf().extend_from_slice(&b);
                o.end_block();
                self.bytes += b.len() as u64;
            }
        }
        Ok(true)
    }

    pub fn finish(&mut self) -> Result<(), OutputError> {
        if self.out.is_none() && !self.preamble.is_empty() {
            self.open_next()?;
        }
        if let Some(o) = self.out.as_mut() {
            o.finish()?;
        }
        for mut c in self.started.drain(..) {
            let _ = c.wait();
        }
        Ok(())
    }
}

/// Reads a capture stream from `input` until its end, writing rotated
/// files. Returns the files written.
pub fn rotate_stream(
    mut input: impl io::Read,
    base: &str,
    rot: Rotation,
    post_rotate: Option<String>,
) -> Result<Vec<PathBuf>, RotateError> {
    let mut split = Splitter::new();
    let mut r = Rotator::new(base, rot).with_post_rotate(post_rotate);
    let mut buf = vec![0u8; 1 << 16];
    'read: loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RotateError::Read(e)),
        };
        for b in split.feed(&buf[..n])? {
            if !r.write(b)? {
                break 'read;
            }
        }
    }
    r.finish()?;
    Ok(r.written)
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("reading the engine's stream: {0}")]
    Read(#[source] io::Error),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{self, Packet};

    fn stream(n: usize) -> Vec<u8> {
        let mut b = Vec::new();
        format::pcapng_shb(&mut b, "t");
        format::pcapng_idb(&mut b, 1, 65535, "eth0", None);
        let data = [0x11u8; 100];
        for i in 0..n {
            let p = Packet {
                ts_ns: i as u64,
                ifindex: 1,
                hatype: 1,
                pkttype: 0,
                data: &data,
                orig_len: 100,
            };
            format::pcapng_epb(&mut b, 0, &p);
        }
        format::pcapng_isb(&mut b, 0, 0, 1, &Default::default());
        b
    }

    #[test]
    fn splitter_finds_blocks_across_any_chunking() {
        let s = stream(5);
        for chunk in [1, 3, 7, 64, 4096] {
            let mut sp = Splitter::new();
            let mut blocks = Vec::new();
            for c in s.chunks(chunk) {
                blocks.extend(sp.feed(c).unwrap());
            }
            let kinds: Vec<u8> = blocks
                .iter()
                .map(|b| match b {
                    Block::Preamble(_) => b'p',
                    Block::Packet(_) => b'k',
                    Block::Other(_) => b'o',
                })
                .collect();
            assert_eq!(kinds, b"ppkkkkko", "chunk {chunk}");
        }
        assert!(Splitter::new().feed(b"garbage!").is_err());
    }

    #[test]
    fn size_rotation_names_files_as_tcpdump_and_each_starts_with_the_preamble() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("cap.pcapng");
        // Each EPB is 144 bytes; the preamble about 100: ~5 packets a file.
        let rot = Rotation {
            size: Some(900),
            files: None,
            seconds: None,
            stop_after: None,
        };
        let files = rotate_stream(&stream(20)[..], base.to_str().unwrap(), rot, None).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "cap.pcapng");
        assert_eq!(names[1], "cap.pcapng1");
        assert!(names.len() >= 4, "{names:?}");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(
                &bytes[..4],
                &0x0A0D0D0Au32.to_le_bytes(),
                "{f:?} starts with an SHB"
            );
            assert!(bytes.len() as u64 <= 900, "{f:?} is {} bytes", bytes.len());
        }
    }

    #[test]
    fn a_ring_of_files_reuses_names() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("ring");
        let rot = Rotation {
            size: Some(600),
            files: Some(3),
            seconds: None,
            stop_after: None,
        };
        let files = rotate_stream(&stream(40)[..], base.to_str().unwrap(), rot, None).unwrap();
        let mut names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.len() > 3);
        names.sort();
        names.dedup();
        assert_eq!(names, vec!["ring0", "ring1", "ring2"]);
        let on_disk = std::fs::read_dir(d.path()).unwrap().count();
        assert_eq!(on_disk, 3);
    }

    #[test]
    fn ring_names_are_zero_padded_to_the_widest_index() {
        let r = Rotator::new(
            "f",
            Rotation {
                size: Some(1),
                files: Some(12),
                seconds: None,
                stop_after: None,
            },
        );
        assert_eq!(r.name(0), "f00");
        assert_eq!(r.name(11), "f11");
        assert_eq!(r.name(12), "f00");
    }

    #[test]
    fn time_rotation_expands_strftime() {
        let r = Rotator::new(
            "cap-%Y.pcapng",
            Rotation {
                size: None,
                files: None,
                seconds: Some(60),
                stop_after: None,
            },
        );
        let n = r.name(0);
        assert!(
            n.starts_with("cap-2") && n.ends_with(".pcapng") && !n.contains('%'),
            "{n}"
        );
    }

    /// tcpdump's `-z gzip`: every file rotation closed is compressed; the
    /// last one, still open at the end, is not.
    #[test]
    fn a_post_rotate_command_gets_each_closed_file() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("z.pcapng");
        let rot = Rotation {
            size: Some(900),
            files: None,
            seconds: None,
            stop_after: None,
        };
        let files = rotate_stream(
            &stream(20)[..],
            base.to_str().unwrap(),
            rot,
            Some("gzip".into()),
        )
        .unwrap();
        assert!(files.len() >= 3);
        let (last, closed) = files.split_last().unwrap();
        for f in closed {
            assert!(!f.exists(), "{f:?} was compressed");
            let gz = std::path::PathBuf::from(format!("{}.gz", f.display()));
            assert!(gz.exists(), "{gz:?}");
        }
        assert!(last.exists());
    }

    /// dumpcap's `-a files:N` with `-C`: N files, each filled to the size,
    /// then the stream is left unread; with a `-W` ring as well, N files are
    /// written in turn over the ring's names.
    #[test]
    fn stop_after_n_files_with_a_size() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("s.pcapng");
        let rot = Rotation {
            size: Some(900),
            files: None,
            seconds: None,
            stop_after: Some(3),
        };
        let files = rotate_stream(&stream(40)[..], base.to_str().unwrap(), rot, None).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["s.pcapng", "s.pcapng1", "s.pcapng2"]);
        for f in &files {
            let len = std::fs::metadata(f).unwrap().len();
            // Filled: one more 144-byte EPB would have passed the size.
            assert!((900 - 144..=900).contains(&len), "{f:?}: {len} bytes");
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);

        let ring = d.path().join("r");
        let rot = Rotation {
            size: Some(600),
            files: Some(2),
            seconds: None,
            stop_after: Some(3),
        };
        let files = rotate_stream(&stream(40)[..], ring.to_str().unwrap(), rot, None).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["r0", "r1", "r0"]);
    }
}
