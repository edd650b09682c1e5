//! `netshim run -t`: the OCI console-socket protocol. libcontainer's init
//! process opens a pseudo-terminal inside the target, makes its slave side
//! the process's stdio, and sends the master over a unix socket; netshim puts
//! its own terminal in raw mode and copies bytes both ways.

use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Binds the socket for this user only: created under umask 0177 (the
    /// umask is the process's, restored at once; the socket node gets its
    /// mode at bind), then set to 0600 by path in case of a umask race.
    pub fn bind(path: &Path) -> io::Result<Self> {
        use nix::sys::stat::{umask, Mode};
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        umask(old);
        let listener = bound?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts libcontainer's connection and receives the pty master.
    fn receive_master(&self) -> io::Result<OwnedFd> {
        let conn = self.accept_ours()?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS just installed this descriptor in our
                    // table; nothing else owns it.
                    return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the console socket message carried no file descriptor",
        ))
    }
}

impl ConsoleSocket {
    /// Accepts the first connection whose peer may hand netshim a terminal
    /// (see [`peer_allowed`]); others are closed unread. Gives up after a
    /// few refused peers, so that a stranger cannot keep netshim here.
    fn accept_ours(&self) -> io::Result<std::os::unix::net::UnixStream> {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        for _ in 0..16 {
            let (conn, _) = self.listener.accept()?;
            let cred = getsockopt(&conn, PeerCredentials).map_err(io::Error::from)?;
            if peer_allowed(cred.uid(), cred.pid()) {
                return Ok(conn);
            }
            tracing::warn!(
                uid = cred.uid(),
                pid = cred.pid(),
                "refused a connection to the console socket from another user's process"
            );
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "only other users' processes connected to the console socket; none was the container's",
        ))
    }
}

/// Whether a peer of the console socket (SO_PEERCRED, as this process's
/// namespaces see it) may send the terminal: a process of netshim's own
/// user or root, or one of netshim's descendants (the container's init,
/// which in a target's user namespace may show as an unmapped UID).
pub(crate) fn peer_allowed(uid: u32, pid: i32) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    uid == me || uid == 0 || descends_from(pid, std::process::id() as i32)
}

/// Whether `pid`'s chain of parents reaches `ancestor` (from `/proc`).
fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == ancestor {
            return true;
        }
        if p <= 1 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            return false;
        };
        // `PID (comm) STATE PPID ...`; comm may hold spaces and parentheses.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
        else {
            return false;
        };
        p = ppid;
    }
    false
}

pub struct Proxy {
    master: File,
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Receives the master, makes our terminal raw and starts copying.
    pub fn start(sock: ConsoleSocket) -> io::Result<Proxy> {
        let master = File::from(sock.receive_master()?);
        let stdin = io::stdin();
        let saved = match termios::tcgetattr(&stdin) {
            Ok(t) => {
                let mut raw = t.clone();
                termios::cfmakeraw(&mut raw);
                termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
                Some(t)
            }
            Err(_) => None, // stdin is not a terminal: copy bytes as they come
        };
        let mut p = Proxy {
            master,
            saved,
            output: None,
        };
        p.resize();
        let mut to_master = p.master.try_clone()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_master.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut from_master = p.master.try_clone()?;
        p.output = Some(std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut out = io::stdout();
            // read() returns EIO once every slave descriptor is closed.
            while let Ok(n) = from_master.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        }));
        Ok(p)
    }

    /// Copies our terminal's window size to the pty.
    pub fn resize(&mut self) {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the pointed-to local;
        // TIOCSWINSZ reads one. Both fds are open for the calls' duration.
        unsafe {
            if libc::ioctl(io::stdin().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// Lets the output drain (briefly) and restores our terminal.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_peers_are_netshims_user_root_or_descendants() {
        let me = nix::unistd::geteuid().as_raw();
        assert!(peer_allowed(me, 1));
        assert!(peer_allowed(0, 1));
        let stranger = if me == 65534 { 65533 } else { 65534 };
        // PID 1 is no descendant of this test.
        assert!(!peer_allowed(stranger, 1));
        // A child of this test is, whatever UID it shows.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(peer_allowed(stranger, child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
