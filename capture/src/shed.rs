//! The engine's resident memory: once set up, the engine lets go of the
//! pages of its binary and libraries that starting touched (argument
//! parsing, filter and ring set-up), so that only what the capture loop runs
//! stays mapped in it. They stay in the page cache; a page the loop needs
//! comes back on its first touch.
//!
//! Kernel rule relied on (madvise(2), MADV_DONTNEED): after it, "subsequent
//! accesses of pages in the range will succeed, but will result in
//! repopulating the memory contents from the up-to-date contents of the
//! underlying mapped file" — for a private file mapping that holds no
//! private (copy-on-write) page, exactly what was there. So only private,
//! read-only file mappings whose `Anonymous:` count in /proc/self/smaps is
//! zero are touched: code and read-only data, never relocated data, heap,
//! stack or the packet rings (shared mappings).

/// One mapping of /proc/self/smaps.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    anonymous_kib: u64,
}

fn parse(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or("").to_string();
                // offset, device, inode, then the path (which may hold spaces).
                let path = f.skip(3).collect::<Vec<_>>().join(" ");
                out.push(Mapping {
                    start,
                    end,
                    perms,
                    path,
                    // Unknown until its line: counted as not clean.
                    anonymous_kib: u64::MAX,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let (Some(m), Some(v)) = (out.last_mut(), f.next().and_then(|v| v.parse().ok())) {
                m.anonymous_kib = v;
            }
        }
    }
    out
}

/// Whether dropping a mapping's pages from this process loses nothing.
fn clean_file_text(m: &Mapping) -> bool {
    m.path.starts_with('/')
        && m.perms.len() == 4
        && !m.perms.contains('w')
        && m.perms.ends_with('p')
        && m.anonymous_kib == 0
}

/// Lets go of the clean pages of the binary and its libraries (see the
/// module's comment). Returns the bytes of address space it covered; does
/// nothing if /proc/self/smaps cannot be read.
pub fn shed_startup_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut covered = 0;
    for m in parse(&smaps).iter().filter(|m| clean_file_text(m)) {
        // SAFETY: the range is a whole mapping of this process, private,
        // read-only and file-backed with no private page (see above): after
        // MADV_DONTNEED each page reads back from the file as it was.
        let r = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            covered += m.end - m.start;
        }
    }
    covered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_private_read_only_file_mappings_are_shed() {
        let smaps = "\
5581a000-5581b000 r--p 00000000 08:01 1234 /usr/bin/netshim
Size:                  4 kB
Anonymous:             0 kB
5581b000-5583b000 r-xp 00001000 08:01 1234 /usr/bin/netshim
Anonymous:             0 kB
5583b000-5583c000 r--p 00021000 08:01 1234 /usr/bin/netshim
Anonymous:             4 kB
5583c000-5583d000 rw-p 00022000 08:01 1234 /usr/bin/netshim
Anonymous:             4 kB
7f00000000-7f00400000 rw-s 00000000 00:08 99 socket:[99]
Anonymous:             0 kB
7f10000000-7f10020000 r-xp 00000000 00:01 5 /memfd:sealed-1 (deleted)
Anonymous:             0 kB
7ffd000000-7ffd001000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        let m = parse(smaps);
        assert_eq!(m.len(), 7);
        assert_eq!(m[5].path, "/memfd:sealed-1 (deleted)");
        let shed: Vec<usize> = m
            .iter()
            .enumerate()
            .filter(|(_, m)| clean_file_text(m))
            .map(|(i, _)| i)
            .collect();
        // Text and read-only data; not relocated data (private pages),
        // writable data, the shared ring or the vdso.
        assert_eq!(shed, vec![0, 1, 5]);
    }

    #[test]
    fn shedding_keeps_the_process_working() {
        assert!(shed_startup_pages() > 0);
        // Code and read-only data come back on use.
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v[42], "42");
        assert!(parse(&std::fs::read_to_string("/proc/self/smaps").unwrap()).len() > 3);
    }
}
