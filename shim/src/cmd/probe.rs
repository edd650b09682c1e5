//! `netshim probe`: what does a process get? Prints its identity and
//! capability sets, then opens a packet socket (which needs CAP_NET_RAW in the
//! user namespace owning the network namespace) and summarises a few packets.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netshim_runtime::kernel::caps::ProcCreds;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// How many packets to read (0: only print identity).
    #[arg(short = 'c', long, default_value_t = 5)]
    count: u32,
    /// Give up after this many seconds without the count reached.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

pub fn main(a: ProbeArgs) -> anyhow::Result<u8> {
    let c = ProcCreds::read(std::process::id() as i32).context("reading /proc/self/status")?;
    let netns = std::fs::read_link("/proc/self/ns/net").context("reading /proc/self/ns/net")?;
    println!(
        "uid={} gid={} netns={}",
        c.uid[1],
        c.gid[1],
        netns.display()
    );
    println!("CapEff={} CapPrm={} CapAmb={}", c.eff, c.prm, c.amb);
    println!(
        "CapInh={} CapBnd={} NoNewPrivs={}",
        c.inh, c.bnd, c.no_new_privs as u8
    );
    if a.count == 0 {
        return Ok(0);
    }
    let sock = packet_socket().context(
        "opening a packet socket (needs CAP_NET_RAW in the user namespace that owns this network namespace)",
    )?;
    println!("packet socket open; reading {} packets", a.count);
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut buf = vec![0u8; 65536];
    let mut seen = 0;
    while seen < a.count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "only {seen} of {} packets arrived within {}s",
                a.count,
                a.timeout
            );
        }
        let tv = libc::timeval {
            tv_sec: left.as_secs() as libc::time_t,
            tv_usec: left.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: sets SO_RCVTIMEO from a live timeval of the right size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let mut addr = empty_sockaddr_ll();
        let mut alen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: recvfrom writes at most buf.len() bytes into buf and at most
        // alen bytes into addr; both live for the call.
        let n = unsafe {
            libc::recvfrom(
                sock.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut addr as *mut _ as *mut libc::sockaddr,
                &mut alen,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
                continue;
            }
            return Err(e).context("reading from the packet socket");
        }
        seen += 1;
        println!("{}", summarize(&buf[..n as usize], &addr));
    }
    Ok(0)
}

fn empty_sockaddr_ll() -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: 0,
        sll_protocol: 0,
        sll_ifindex: 0,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

fn packet_socket() -> std::io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: socket() takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One line: interface, direction, and the IPv4 header's gist.
fn summarize(frame: &[u8], sll: &libc::sockaddr_ll) -> String {
    let dir = if sll.sll_pkttype == libc::PACKET_OUTGOING {
        "out"
    } else {
        "in"
    };
    let head = format!(
        "{} {dir} {} bytes",
        netshim_capture::interface_name(sll.sll_ifindex),
        frame.len()
    );
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return head;
    }
    let ip = &frame[14..];
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = ip.get(ihl..).unwrap_or(&[]);
    let port = |o: usize| l4.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match (ip[9], port(0), port(2)) {
        (17, Some(s), Some(d)) => format!("{head} IP {src}.{s} > {dst}.{d}: UDP"),
        (6, Some(s), Some(d)) => format!("{head} IP {src}.{s} > {dst}.{d}: TCP"),
        (1, _, _) => format!("{head} IP {src} > {dst}: ICMP"),
        (p, _, _) => format!("{head} IP {src} > {dst}: proto {p}"),
    }
}
