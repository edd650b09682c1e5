//! netshim's capture engine: an AF_PACKET TPACKET_V3 ring per interface,
//! tcpdump filters compiled by libpcap and attached in the kernel, pcapng
//! (default) or classic pcap output written in whole blocks, or one summary
//! line per packet.

pub mod args;
pub mod confine;
pub mod engine;
pub mod filter;
pub mod format;
pub mod fuzzing;
pub mod merge;
pub mod output;
pub mod read;
pub mod ring;
pub mod rotate;
pub mod shed;
pub mod summary;

pub use args::{EngineArgs, Format, Which};
pub use engine::{interface_name, run, Options, Report};

/// Default snapshot length: whole GRO / BIG TCP packets, as tcpdump's.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Default ring size in KiB.
pub const DEFAULT_BUFFER_KIB: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Filter(#[from] filter::FilterError),
    #[error(
        "the filter {expr:?} does not apply to {iface}, whose packets are raw IP (a tun or WireGuard \
         interface has no link-layer header): leave out the link-layer words (ether, arp, vlan)"
    )]
    FilterNotForRawIp { iface: String, expr: String },
    #[error("no such interface {name:?} in this network namespace; it has: {}", .known.join(", "))]
    UnknownInterface { name: String, known: Vec<String> },
    #[error("no interface is up in this network namespace (it has: {}); name one with -i", .0.join(", "))]
    NoInterface(Vec<String>),
    #[error("cannot open a packet socket on {iface}: {source}{}", socket_hint(.source))]
    Socket {
        iface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the output: {0}")]
    OutputSetup(#[source] std::io::Error),
    #[error("cannot set up the capture: {0}")]
    Setup(#[source] std::io::Error),
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
}

fn socket_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "; packet sockets need CAP_NET_RAW in the user namespace that owns this network namespace: \
             on a host, use `netshim capture --target-netns TARGET`, which grants exactly that; in a \
             container, it must run under netshim's runtime (Kubernetes: a node where netshim is the \
             default handler, or RuntimeClass netshim) with NET_RAW its only capability and \
             allowPrivilegeEscalation false, as examples/kubernetes/debug-netshim.json gives"
        }
        Some(libc::ENOMEM) => "; the ring did not fit in memory: choose a smaller -B",
        _ => "",
    }
}
