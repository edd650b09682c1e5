//! tcpdump filter expressions, compiled by libpcap into classic BPF for the
//! kernel's `SO_ATTACH_FILTER`.
//!
//! libpcap compiles against a "dead" handle whose snapshot length is 65535,
//! so the accept instructions it emits (`ret #65535`) would make the kernel
//! cut every packet at 65535 bytes — GRO and BIG TCP packets are larger.
//! Every `ret #k` with `k > 0` is rewritten to the capture's snaplen.

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const BPF_RET: u16 = 0x06;
const BPF_K: u16 = 0x00;
const BPF_CLASS_MASK: u16 = 0x07;
const BPF_SRC_MASK: u16 = 0x08;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filter expression {expr:?}: {message}")]
    Syntax { expr: String, message: String },
    #[error("{0}")]
    Handle(String),
    #[error("libpcap returned an instruction netshim cannot read: {0:?}")]
    Unreadable(String),
}

/// Link types the engine compiles filters for (libpcap's DLT values).
pub const LINKTYPE_ETHERNET: i32 = 1;
/// Raw IP (DLT_RAW on Linux): tun, WireGuard and IP tunnel interfaces.
pub const DLT_RAW: i32 = 12;

/// libpcap, opened when a filter is first compiled rather than linked:
/// `netshim run`, the OCI runtime and the engine never compile one, and
/// linking it would load libpcap and what it links (on Debian 12: libdbus,
/// libsystemd, libgcrypt, liblzma, libzstd, liblz4, libcap, libgpg-error)
/// into every one of them, and stop them from starting at all on a host
/// without libpcap.
mod libpcap {
    use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
    use std::sync::OnceLock;

    /// `struct bpf_insn` (pcap/bpf.h), the kernel's `struct sock_filter`.
    #[repr(C)]
    pub struct BpfInsn {
        pub code: u16,
        pub jt: u8,
        pub jf: u8,
        pub k: u32,
    }

    /// `struct bpf_program` (pcap/bpf.h).
    #[repr(C)]
    pub struct BpfProgram {
        pub bf_len: c_uint,
        pub bf_insns: *mut BpfInsn,
    }

    type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
    type Compile =
        unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
    type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
    type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
    type Close = unsafe extern "C" fn(*mut c_void);

    pub struct Lib {
        /// The soname it was opened by.
        pub name: &'static str,
        pub open_dead: OpenDead,
        pub compile: Compile,
        pub geterr: GetErr,
        pub freecode: FreeCode,
        pub close: Close,
    }

    /// The sonames distributions ship libpcap under, newest ABI first
    /// (Debian's libpcap0.8 package installs libpcap.so.0.8).
    const NAMES: [&str; 3] = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();

    fn dlerror() -> String {
        // SAFETY: dlerror returns NULL or a NUL-terminated string owned by
        // libc, valid until the next dl* call on this thread; it is copied
        // at once.
        let e = unsafe { libc::dlerror() };
        if e.is_null() {
            String::new()
        } else {
            // SAFETY: non-NULL, NUL-terminated (above).
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        }
    }

    fn open() -> Result<Lib, String> {
        let mut why = Vec::new();
        for name in NAMES {
            let c = CString::new(name).expect("no NUL in a soname");
            // SAFETY: a NUL-terminated name; the handle is kept for the
            // process's life (the library is never closed).
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            if h.is_null() {
                why.push(dlerror());
                continue;
            }
            let sym = |n: &str| -> Result<*mut c_void, String> {
                let c = CString::new(n).expect("no NUL in a symbol name");
                // SAFETY: a live handle and a NUL-terminated name.
                let p = unsafe { libc::dlsym(h, c.as_ptr()) };
                if p.is_null() {
                    Err(format!("{name} has no {n}: {}", dlerror()))
                } else {
                    Ok(p)
                }
            };
            // SAFETY: each symbol is libpcap's function of that name, whose
            // C signature (pcap/pcap.h, stable since libpcap 0.8) is the
            // pointer type it is turned into.
            return unsafe {
                Ok(Lib {
                    name,
                    open_dead: std::mem::transmute::<*mut c_void, OpenDead>(sym("pcap_open_dead")?),
                    compile: std::mem::transmute::<*mut c_void, Compile>(sym("pcap_compile")?),
                    geterr: std::mem::transmute::<*mut c_void, GetErr>(sym("pcap_geterr")?),
                    freecode: std::mem::transmute::<*mut c_void, FreeCode>(sym("pcap_freecode")?),
                    close: std::mem::transmute::<*mut c_void, Close>(sym("pcap_close")?),
                })
            };
        }
        Err(format!(
            "libpcap, which compiles filter expressions, is not installed ({}); install it \
             (Debian and Ubuntu: apt-get install libpcap0.8; Fedora: dnf install libpcap) \
             or capture without a filter",
            why.join("; ")
        ))
    }

    pub fn get() -> Result<&'static Lib, String> {
        LIB.get_or_init(open).as_ref().map_err(Clone::clone)
    }
}

/// Which libpcap filters are compiled with (its soname), or why none can
/// be opened and what to install.
pub fn libpcap() -> Result<&'static str, String> {
    libpcap::get().map(|l| l.name)
}

/// The netmask `ip broadcast` is compiled against: 0, as tcpdump passes
/// when it cannot look one up for the interface.
const NETMASK: u32 = 0;

/// Compiles `expr` (tcpdump syntax) for `linktype`, with accept lengths set
/// to `snaplen`. An empty expression gives `None`: no filter at all.
pub fn compile(expr: &str, linktype: i32, snaplen: u32) -> Result<Option<Vec<Insn>>, FilterError> {
    if expr.trim().is_empty() {
        return Ok(None);
    }
    let lib = libpcap::get().map_err(FilterError::Handle)?;
    let text = std::ffi::CString::new(expr).map_err(|_| FilterError::Syntax {
        expr: expr.to_string(),
        message: "it contains a NUL byte".into(),
    })?;
    // SAFETY: pcap_open_dead allocates a handle that is closed below on
    // every path.
    let dead = unsafe { (lib.open_dead)(linktype, 65535) };
    if dead.is_null() {
        return Err(FilterError::Handle(format!(
            "pcap_open_dead({linktype}) failed"
        )));
    }
    let mut prog = libpcap::BpfProgram {
        bf_len: 0,
        bf_insns: std::ptr::null_mut(),
    };
    // SAFETY: a live handle, a program for libpcap to fill and a
    // NUL-terminated expression.
    let rc = unsafe { (lib.compile)(dead, &mut prog, text.as_ptr(), 1, NETMASK) };
    let result = if rc != 0 {
        // SAFETY: the handle's error buffer, NUL-terminated, copied before
        // the handle is closed.
        let msg = unsafe { std::ffi::CStr::from_ptr((lib.geterr)(dead)) };
        Err(FilterError::Syntax {
            expr: expr.to_string(),
            message: msg.to_string_lossy().into_owned(),
        })
    } else {
        let insns = if prog.bf_insns.is_null() {
            &[][..]
        } else {
            // SAFETY: on success libpcap's program holds bf_len instructions
            // at bf_insns, alive until pcap_freecode below.
            unsafe { std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize) }
        };
        let mut out: Vec<Insn> = insns
            .iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        // SAFETY: the program libpcap filled, freed once.
        unsafe { (lib.freecode)(&mut prog) };
        patch_snaplen(&mut out, snaplen);
        Ok(Some(out))
    };
    // SAFETY: the handle opened above, closed once.
    unsafe { (lib.close)(dead) };
    result
}

/// A filter compiled once, by the caller: its text (recorded in each pcapng
/// IDB's `if_filter`) and its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub expr: String,
    pub program: Vec<Insn>,
    /// The program for raw-IP interfaces (tun, WireGuard), when the
    /// expression means something there (`arp` or `ether host` do not).
    pub raw: Option<Vec<Insn>>,
}

impl Compiled {
    /// [`compile`], keeping the expression with its program.
    pub fn of(expr: &str, linktype: i32, snaplen: u32) -> Result<Option<Compiled>, FilterError> {
        Ok(compile(expr, linktype, snaplen)?.map(|program| Compiled {
            expr: expr.trim().to_string(),
            program,
            raw: None,
        }))
    }

    /// A live capture's filter: for Ethernet (an error if it does not
    /// compile) and for raw IP (left out if it does not compile there).
    pub fn for_capture(expr: &str, snaplen: u32) -> Result<Option<Compiled>, FilterError> {
        let Some(mut c) = Self::of(expr, LINKTYPE_ETHERNET, snaplen)? else {
            return Ok(None);
        };
        c.raw = compile(expr, DLT_RAW, snaplen).ok().flatten();
        Ok(Some(c))
    }
}

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// A program as one line in `tcpdump -ddd`'s layout: the count, then each
/// instruction as `code jt jf k`, separated by commas.
pub fn program_text(prog: &[Insn]) -> String {
    let mut s = prog.len().to_string();
    for i in prog {
        s.push_str(&format!(",{} {} {} {}", i.code, i.jt, i.jf, i.k));
    }
    s
}

/// Reads [`program_text`]'s layout back; the count must match and stay
/// within the kernel's limit (the kernel checks the rest when it attaches).
pub fn program_from_text(text: &str) -> Result<Vec<Insn>, FilterError> {
    let bad = || FilterError::Unreadable(text.chars().take(80).collect());
    let mut parts = text.split(',');
    let n: usize = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    if n == 0 || n > MAX_INSNS {
        return Err(bad());
    }
    let mut prog = Vec::with_capacity(n);
    for p in parts {
        let f: Vec<&str> = p.split(' ').collect();
        let [code, jt, jf, k] = f[..] else {
            return Err(bad());
        };
        prog.push(Insn {
            code: code.parse().map_err(|_| bad())?,
            jt: jt.parse().map_err(|_| bad())?,
            jf: jf.parse().map_err(|_| bad())?,
            k: k.parse().map_err(|_| bad())?,
        });
    }
    if prog.len() != n {
        return Err(bad());
    }
    Ok(prog)
}

/// Rewrites accepting `ret #k` instructions to return `snaplen` bytes.
pub fn patch_snaplen(prog: &mut [Insn], snaplen: u32) {
    for i in prog {
        if i.code & BPF_CLASS_MASK == BPF_RET && i.code & BPF_SRC_MASK == BPF_K && i.k > 0 {
            i.k = snaplen;
        }
    }
}

/// Runs a program over a packet in user space (the kernel's semantics for
/// the subset libpcap emits for Ethernet): for tests and fuzzing.
pub fn accepts(prog: &[Insn], pkt: &[u8]) -> Option<u32> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |off: usize, n: usize| -> Option<u32> {
        let b = pkt.get(off..off.checked_add(n)?)?;
        Some(b.iter().fold(0u32, |v, &c| (v << 8) | c as u32))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        match i.code {
            0x06 => return Some(k),                        // ret #k
            0x16 => return Some(a),                        // ret a
            0x00 => a = k,                                 // ld #k
            0x01 => x = k,                                 // ldx #k
            0x20 => a = load(k as usize, 4)?,              // ld [k]
            0x28 => a = load(k as usize, 2)?,              // ldh [k]
            0x30 => a = load(k as usize, 1)?,              // ldb [k]
            0x40 => a = load(x as usize + k as usize, 4)?, // ld [x+k]
            0x48 => a = load(x as usize + k as usize, 2)?, // ldh [x+k]
            0x50 => a = load(x as usize + k as usize, 1)?, // ldb [x+k]
            0xb1 => x = (load(k as usize, 1)? & 0x0f) * 4, // ldxb 4*([k]&0xf)
            0x80 => a = pkt.len() as u32,                  // ld len
            0x60 => a = *mem.get(k as usize)?,             // ld M[k]
            0x61 => x = *mem.get(k as usize)?,             // ldx M[k]
            0x02 => *mem.get_mut(k as usize)? = a,         // st M[k]
            0x03 => *mem.get_mut(k as usize)? = x,         // stx M[k]
            0x07 => x = a,                                 // tax
            0x87 => a = x,                                 // txa
            0x04 => a = a.wrapping_add(k),                 // add #k
            0x0c => a = a.wrapping_add(x),                 // add x
            0x14 => a = a.wrapping_sub(k),                 // sub #k
            0x1c => a = a.wrapping_sub(x),                 // sub x
            0x24 => a = a.wrapping_mul(k),                 // mul #k
            0x34 => a = a.checked_div(k)?,                 // div #k
            0x54 => a &= k,                                // and #k
            0x5c => a &= x,                                // and x
            0x44 => a |= k,                                // or #k
            0x64 => a = a.checked_shl(k).unwrap_or(0),     // lsh #k
            0x74 => a = a.checked_shr(k).unwrap_or(0),     // rsh #k
            0x84 => a = a.wrapping_neg(),                  // neg
            0x05 => pc = pc.checked_add(k as usize)?,      // ja
            0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d => {
                let v = if i.code & 0x08 != 0 { x } else { k };
                let t = match i.code & 0xf0 {
                    0x10 => a == v,
                    0x20 => a > v,
                    0x30 => a >= v,
                    _ => a & v != 0,
                };
                pc += if t { i.jt as usize } else { i.jf as usize };
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame(dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 18, 0, 2]);
        f[14 + 16..14 + 20].copy_from_slice(&[198, 18, 0, 1]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn accept_length_becomes_the_snaplen() {
        let prog = compile("udp port 5000", LINKTYPE_ETHERNET, 262144)
            .unwrap()
            .unwrap();
        let rets: Vec<u32> = prog
            .iter()
            .filter(|i| i.code == 0x06)
            .map(|i| i.k)
            .collect();
        assert!(rets.contains(&262144), "{prog:?}");
        assert!(!rets.contains(&65535), "{prog:?}");
        assert!(rets.iter().all(|&k| k == 0 || k == 262144));
    }

    #[test]
    fn compiled_filter_selects_the_right_packets() {
        let prog = compile("udp port 5000", LINKTYPE_ETHERNET, 1500)
            .unwrap()
            .unwrap();
        assert_eq!(accepts(&prog, &udp_frame(5000)), Some(1500));
        assert_eq!(accepts(&prog, &udp_frame(5001)), Some(0));
        let host = compile("src host 198.18.0.2", LINKTYPE_ETHERNET, 96)
            .unwrap()
            .unwrap();
        assert_eq!(accepts(&host, &udp_frame(1)), Some(96));
    }

    #[test]
    fn bad_expressions_carry_libpcaps_message() {
        let e = compile("udp port", LINKTYPE_ETHERNET, 65535).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("invalid filter expression \"udp port\""),
            "{s}"
        );
        assert!(s.contains("syntax error"), "{s}");
        assert!(compile("tcp and (", LINKTYPE_ETHERNET, 65535).is_err());
    }

    #[test]
    fn program_text_round_trips_and_refuses_garbage() {
        let c = Compiled::of(" udp port 5000 ", LINKTYPE_ETHERNET, 1500)
            .unwrap()
            .unwrap();
        assert_eq!(c.expr, "udp port 5000");
        let text = program_text(&c.program);
        assert!(text.starts_with(&format!("{},", c.program.len())), "{text}");
        assert_eq!(program_from_text(&text).unwrap(), c.program);
        for bad in [
            "",
            "0",
            "2,6 0 0 1",
            "1,6 0 0",
            "1,6 0 0 x",
            "1,6 0 0 1,6 0 0 1",
            "4097,6 0 0 1",
        ] {
            assert!(program_from_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn empty_expression_means_no_filter() {
        assert!(compile("  ", LINKTYPE_ETHERNET, 65535).unwrap().is_none());
    }

    #[test]
    fn insn_has_the_kernels_layout() {
        assert_eq!(
            std::mem::size_of::<Insn>(),
            std::mem::size_of::<libc::sock_filter>()
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn huge_and_garbage_expressions_fail_cleanly_or_compile() {
        // 64 KiB of garbage: libpcap's syntax error, not a crash.
        let garbage = "(".repeat(65536);
        assert!(matches!(
            compile(&garbage, LINKTYPE_ETHERNET, 65535),
            Err(FilterError::Syntax { .. })
        ));
        // A long but valid expression compiles and still filters.
        let long = (0..300)
            .map(|p| format!("udp port {}", 10000 + p))
            .collect::<Vec<_>>()
            .join(" or ");
        let prog = compile(&long, LINKTYPE_ETHERNET, 65535).unwrap().unwrap();
        assert!(prog.len() > 300);
        let bytes = "\0".repeat(3);
        assert!(compile(&bytes, LINKTYPE_ETHERNET, 65535).is_err());
    }
}
