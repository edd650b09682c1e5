//! `netshim run`: a command in a target's network namespace, as an
//! unprivileged UID with only ambient CAP_NET_RAW.

use anyhow::Context;
use netshim_runtime::kernel::caps::Cap;
use netshim_runtime::target::Target;

pub const RUN_EXAMPLES: &str = "\
Examples:
  sudo netshim run --target-netns netns:blue -- ip -o addr
  sudo netshim run --target-netns pid:4242 -- tcpdump -ni eth0 -c 10
  netshim run --target-netns docker:web -- tcpdump -ni lo -c 4     # rootless Docker, no root
  netshim run -t --target-netns docker:web -- sh                   # interactive shell";

#[derive(clap::Args)]
pub struct RunArgs {
    /// The target: /proc/PID/ns/net or another netns path, pid:PID, netns:NAME, docker:NAME|ID,
    /// podman:NAME|ID, containerd:NAMESPACE/ID, nerdctl:NAME, k8s:NAMESPACE/POD[/CONTAINER].
    #[arg(long = "target-netns", value_name = "TARGET")]
    target: Target,
    /// UID of the process in the target (not 0).
    #[arg(long, default_value_t = netshim_runtime::DEFAULT_ID)]
    uid: u32,
    /// GID of the process in the target (not 0).
    #[arg(long, default_value_t = netshim_runtime::DEFAULT_ID)]
    gid: u32,
    /// Add a capability to CAP_NET_RAW: NET_ADMIN or NET_BIND_SERVICE. Repeatable.
    #[arg(long = "cap", value_name = "CAP")]
    caps: Vec<Cap>,
    /// Give the command a terminal (for interactive shells).
    #[arg(short = 't', long)]
    tty: bool,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

pub fn main(args: RunArgs) -> anyhow::Result<u8> {
    let opts = netshim_runtime::RunOptions {
        target: args.target,
        uid: args.uid,
        gid: args.gid,
        extra_caps: args.caps,
        tty: args.tty,
        args: args.command,
    };
    let prepared = netshim_runtime::prepare(&opts)?;
    let status = netshim_runtime::run(&opts, prepared, Default::default())
        .with_context(|| format!("running {:?} in {}", opts.args.join(" "), opts.target))?;
    Ok(u8::try_from(status).unwrap_or(255))
}
