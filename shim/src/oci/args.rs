//! runc's command line, global flags and commands, in clap.

use super::*;

#[derive(Parser)]
#[command(
    name = "netshim",
    version,
    about = "netshim's runc-compatible OCI runtime, for containerd (a RuntimeClass) and Docker (--runtime), \
             applying KEP 2763 ambient capabilities to non-root containers",
    after_help = "Examples:\n  \
      ctr run --runc-binary /usr/local/bin/netshim --annotation netshim.io/ambient-capabilities=NET_RAW ...\n  \
      dockerd --add-runtime netshim=/usr/local/bin/netshim\n  \
      netshim --root /run/netshim/runtime list\n\
      See docs/runtime.md."
)]
pub struct OciCli {
    /// Where container state lives (default /run/netshim/runtime, or $XDG_RUNTIME_DIR/netshim/runtime).
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) root: Option<PathBuf>,
    /// Write logs to this file instead of stderr (containerd reads errors back from it).
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) log: Option<PathBuf>,
    /// text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub(super) log_format: String,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub(super) debug: bool,
    /// Use systemd for cgroups (accepted for compatibility; these hosts use cgroupfs).
    #[arg(long = "systemd-cgroup", global = true)]
    pub(super) systemd_cgroup: bool,
    /// Accepted for runc compatibility (auto, true, false); netshim detects rootless itself.
    #[arg(long = "rootless", id = "rootless_mode", value_name = "MODE")]
    pub(super) rootless: Option<String>,
    /// Ambient capabilities for every non-root container, where its bounding set holds them (e.g. NET_RAW).
    #[arg(long = "ambient-caps", global = true, value_name = "LIST")]
    pub(super) ambient_caps: Option<String>,
    /// The policy file (default /etc/netshim/config.toml, used if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    #[arg(long, global = true, hide = true)]
    pub(super) criu: Option<String>,
    #[command(subcommand)]
    pub(super) command: OciCommand,
}

#[derive(clap::Args)]
pub(super) struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub(super) bundle: PathBuf,
    /// Write the container's init PID here.
    #[arg(long = "pid-file")]
    pub(super) pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (process.terminal: true).
    #[arg(long = "console-socket")]
    pub(super) console_socket: Option<PathBuf>,
    /// Do not use pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    pub(super) no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    pub(super) no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3 on) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub(super) preserve_fds: i32,
    pub(super) id: String,
}

impl CreateArgs {
    pub(super) fn options(&self) -> CreateOptions {
        let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.as_ref().map(abs),
            console_socket: self.console_socket.as_ref().map(abs),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
        }
    }
}

impl OciCommand {
    /// Whether the command forks a process that enters a container
    /// (`create`, `run`, `exec`): those run from a sealed copy of netshim.
    /// `start` only lets the process `create` made go on.
    pub(super) fn starts_a_container_process(&self) -> bool {
        matches!(
            self,
            OciCommand::Create(_) | OciCommand::Run { .. } | OciCommand::Exec(_)
        )
    }
}

#[derive(Subcommand)]
pub(super) enum OciCommand {
    /// Create a container from a bundle; it waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Print a container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default TERM) to a container's init, or with --all to every process.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container (with --force, kill it first if it runs).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run another process in a running container.
    Exec(Box<ExecArgs>),
    /// Print what this runtime supports (OCI features JSON), including netshim's annotation.
    Features,
    /// List the processes of a container.
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
        /// Arguments for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Create and start a container; in the foreground unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short, long)]
        detach: bool,
        /// Accepted for runc compatibility.
        #[arg(long)]
        keep: bool,
    },
    /// Write a default config.json.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for an unprivileged user (a user namespace mapping you).
        #[arg(long)]
        rootless: bool,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze a container's processes.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print a container's resource statistics.
    Events {
        /// Seconds between reports (runc's "5s" form is accepted).
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Print once and exit.
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// Change a container's resource limits.
    Update(UpdateArgs),
    #[command(hide = true)]
    Checkpoint { id: String },
    #[command(hide = true)]
    Restore { id: String },
}

impl OciCommand {
    /// The container ID the command names, if it takes one.
    pub(super) fn id(&self) -> Option<&str> {
        match self {
            OciCommand::Create(a) | OciCommand::Run { create: a, .. } => Some(&a.id),
            OciCommand::Exec(a) => Some(&a.id),
            OciCommand::Update(a) => Some(&a.id),
            OciCommand::Start { id }
            | OciCommand::State { id }
            | OciCommand::Kill { id, .. }
            | OciCommand::Delete { id, .. }
            | OciCommand::Ps { id, .. }
            | OciCommand::Pause { id }
            | OciCommand::Resume { id }
            | OciCommand::Events { id, .. }
            | OciCommand::Checkpoint { id }
            | OciCommand::Restore { id } => Some(id),
            OciCommand::Features | OciCommand::Spec { .. } | OciCommand::List { .. } => None,
        }
    }
}

#[derive(clap::Args)]
pub(super) struct ExecArgs {
    /// A process.json describing the process (then no command is given).
    #[arg(short, long)]
    pub(super) process: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub(super) pid_file: Option<PathBuf>,
    #[arg(short, long)]
    pub(super) detach: bool,
    #[arg(short, long)]
    pub(super) tty: bool,
    #[arg(long = "console-socket")]
    pub(super) console_socket: Option<PathBuf>,
    #[arg(long)]
    pub(super) cwd: Option<String>,
    #[arg(short, long)]
    pub(super) env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    pub(super) user: Option<String>,
    /// Add a capability to the bounding, effective and permitted sets.
    #[arg(short, long = "cap")]
    pub(super) cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub(super) no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub(super) preserve_fds: i32,
    #[arg(long = "process-label", hide = true)]
    pub(super) process_label: Option<String>,
    #[arg(long, hide = true)]
    pub(super) apparmor: Option<String>,
    #[arg(long = "ignore-paused", hide = true)]
    pub(super) ignore_paused: bool,
    pub(super) id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(super) command: Vec<String>,
}

#[derive(clap::Args)]
pub(super) struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin.
    #[arg(short, long)]
    pub(super) resources: Option<PathBuf>,
    #[arg(long)]
    pub(super) memory: Option<i64>,
    #[arg(long = "memory-swap")]
    pub(super) memory_swap: Option<i64>,
    #[arg(long = "cpu-shares")]
    pub(super) cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub(super) cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub(super) cpu_period: Option<u64>,
    #[arg(long = "pids-limit")]
    pub(super) pids_limit: Option<i64>,
    pub(super) id: String,
}

pub(super) fn parse_interval(s: &str) -> anyhow::Result<u32> {
    let n = s.trim_end_matches('s');
    n.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("invalid --interval {s:?}: give whole seconds, e.g. 5s"))
}

pub(super) fn update_resources(a: &UpdateArgs) -> anyhow::Result<serde_json::Value> {
    use serde_json::json;
    let mut res = match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().take_limited(), &mut s)?;
            serde_json::from_str(&s).context("malformed resources JSON on stdin")?
        }
        Some(p) => oci::read_json(p)?,
        None => json!({}),
    };
    if !res.is_object() {
        anyhow::bail!("the resources JSON is not an object");
    }
    if let Some(m) = a.memory {
        res["memory"]["limit"] = json!(m);
    }
    if let Some(m) = a.memory_swap {
        res["memory"]["swap"] = json!(m);
    }
    if let Some(v) = a.cpu_shares {
        res["cpu"]["shares"] = json!(v);
    }
    if let Some(v) = a.cpu_quota {
        res["cpu"]["quota"] = json!(v);
    }
    if let Some(v) = a.cpu_period {
        res["cpu"]["period"] = json!(v);
    }
    if let Some(v) = a.pids_limit {
        res["pids"] = json!({ "limit": v });
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::route::tests::argv;

    #[test]
    fn the_oci_command_line_parses() {
        use clap::CommandFactory;
        OciCli::command().debug_assert();
        let c = OciCli::try_parse_from(argv(
            "--root /r --log /l --log-format json --ambient-caps NET_RAW create -b /b --pid-file /p --console-socket /s x",
        ))
        .unwrap();
        assert_eq!(c.ambient_caps.as_deref(), Some("NET_RAW"));
        assert!(
            matches!(c.command, OciCommand::Create(ref a) if a.id == "x" && a.bundle == std::path::Path::new("/b"))
        );
        assert!(OciCli::try_parse_from(argv("--log-format xml list")).is_err());
        assert_eq!(parse_interval("5s").unwrap(), 5);
        assert!(parse_interval("0").is_err());
    }
}
