//! `netshim` as a runc-compatible OCI runtime: the command line containerd's
//! runc v2 shim and dockerd use (`netshim --root R --log L --log-format json
//! create --bundle B --pid-file P ID`, ...), and the log file they read
//! errors back from.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netshim_runtime::oci::{self, config, policy, CreateOptions, ExecOptions, Runtime};

/// Commands that only the OCI runtime has.
const OCI_COMMANDS: [&str; 16] = [
    "create",
    "start",
    "state",
    "kill",
    "delete",
    "exec",
    "features",
    "ps",
    "spec",
    "list",
    "pause",
    "resume",
    "events",
    "update",
    "checkpoint",
    "restore",
];

/// Global flags that take a value (runc's, and netshim's own).
const VALUE_FLAGS: [&str; 7] = [
    "--root",
    "--log",
    "--log-format",
    "--rootless",
    "--ambient-caps",
    "--config",
    "--criu",
];

/// Whether a command line is meant for the OCI runtime: its first word is an
/// OCI command, a runc global flag comes first, or it is `run` without
/// netshim's `--target-netns`.
pub fn wants_oci(argv: &[OsString]) -> bool {
    let mut it = argv.iter().skip(1).map(|a| a.to_string_lossy());
    let mut runc_flag = false;
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--") {
            let name = format!("--{}", flag.split('=').next().unwrap_or_default());
            if name == "--help" || name == "--version" {
                return runc_flag;
            }
            if name != "--debug" {
                runc_flag = true;
            }
            if VALUE_FLAGS.contains(&name.as_str()) && !a.contains('=') {
                it.next();
            }
            continue;
        }
        if a.starts_with('-') {
            return runc_flag;
        }
        if OCI_COMMANDS.contains(&a.as_ref()) {
            return true;
        }
        if a == "run" {
            // netshim's own `run` has --target-netns; its help stays its own.
            let rest: Vec<_> = it.take_while(|x| x != "--").collect();
            let ours = rest.iter().any(|x| {
                x == "--target-netns"
                    || x.starts_with("--target-netns=")
                    || x == "--help"
                    || x == "-h"
            });
            return runc_flag || (!rest.is_empty() && !ours);
        }
        return runc_flag;
    }
    runc_flag
}

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
    root: Option<PathBuf>,
    /// Write logs to this file instead of stderr (containerd reads errors back from it).
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (accepted for compatibility; these hosts use cgroupfs).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (auto, true, false); netshim detects rootless itself.
    #[arg(long = "rootless", id = "rootless_mode", value_name = "MODE")]
    rootless: Option<String>,
    /// Ambient capabilities for every non-root container, where its bounding set holds them (e.g. NET_RAW).
    #[arg(long = "ambient-caps", global = true, value_name = "LIST")]
    ambient_caps: Option<String>,
    /// The policy file (default /etc/netshim/config.toml, used if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: OciCommand,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's init PID here.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (process.terminal: true).
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Do not use pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3 on) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
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

#[derive(Subcommand)]
enum OciCommand {
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

#[derive(clap::Args)]
struct ExecArgs {
    /// A process.json describing the process (then no command is given).
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(short, long)]
    tty: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<String>,
    #[arg(short, long)]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Add a capability to the bounding, effective and permitted sets.
    #[arg(short, long = "cap")]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    #[arg(long = "ignore-paused", hide = true)]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(clap::Args)]
struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin.
    #[arg(short, long)]
    resources: Option<PathBuf>,
    #[arg(long)]
    memory: Option<i64>,
    #[arg(long = "memory-swap")]
    memory_swap: Option<i64>,
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    id: String,
}

/// Writes log records to the `--log` file as runc does: JSON lines
/// `{"level","msg","time"}` (containerd's shim takes the last error's msg)
/// or logrus-style text.
struct FileLog {
    file: Mutex<std::fs::File>,
    json: bool,
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FileLog {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut m = Message(String::new());
        event.record(&mut m);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = if self.json {
            serde_json::json!({"level": level, "msg": m.0.trim(), "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={:?}", m.0.trim())
        };
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn init_logging(cli: &OciCli) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let default = if cli.debug {
        "debug"
    } else {
        "info,libcontainer=warn,libcgroups=warn"
    };
    let filter = EnvFilter::try_from_env("NETSHIM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    match &cli.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            let layer = FileLog {
                file: Mutex::new(file),
                json: cli.log_format == "json",
            };
            tracing_subscriber::registry()
                .with(layer.with_filter(filter))
                .init();
        }
        None => {
            // Without a log file, stderr gets warnings only: stdout carries
            // state JSON, and a container's stderr may be ours.
            let filter = EnvFilter::try_from_env("NETSHIM_LOG").unwrap_or_else(|_| {
                EnvFilter::new(if cli.debug {
                    "debug"
                } else {
                    "warn,libcontainer=off,libcgroups=off"
                })
            });
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
        }
    }
    Ok(())
}

fn runtime(cli: &OciCli) -> anyhow::Result<Runtime> {
    let mut pol = config::load(cli.config.as_deref())?;
    if let Some(list) = &cli.ambient_caps {
        pol.defaults
            .extend(policy::parse_list("--ambient-caps", list)?);
        pol.validate()?;
    }
    let root = cli.root.clone().unwrap_or_else(oci::default_root);
    Ok(Runtime::new(root, cli.systemd_cgroup, pol)?)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn parse_interval(s: &str) -> anyhow::Result<u32> {
    let n = s.trim_end_matches('s');
    n.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("invalid --interval {s:?}: give whole seconds, e.g. 5s"))
}

fn update_resources(a: &UpdateArgs) -> anyhow::Result<serde_json::Value> {
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

trait TakeLimited {
    fn take_limited(self) -> std::io::Take<Self>
    where
        Self: Sized;
}

impl<R: std::io::Read> TakeLimited for R {
    fn take_limited(self) -> std::io::Take<Self> {
        self.take(4 << 20)
    }
}

fn ps(rt: &Runtime, id: &str, format: &str, ps_args: &[String]) -> anyhow::Result<u8> {
    let pids = rt.pids(id)?;
    if format == "json" {
        print_json(&pids)?;
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("cannot run ps(1); install procps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        anyhow::bail!("ps printed nothing");
    };
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column; include it in the format")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            writeln!(stdout, "{l}")?;
        }
    }
    Ok(0)
}

fn dispatch(cli: OciCli) -> anyhow::Result<u8> {
    match &cli.command {
        OciCommand::Features => {
            print_json(&oci::features())?;
            return Ok(0);
        }
        OciCommand::Spec { bundle, rootless } => {
            let p = oci::write_default_spec(bundle, *rootless)?;
            tracing::info!("wrote {}", p.display());
            return Ok(0);
        }
        OciCommand::Checkpoint { .. } | OciCommand::Restore { .. } => {
            anyhow::bail!("checkpoint and restore are not supported by netshim (it runs troubleshooting containers); use runc for them")
        }
        _ => {}
    }
    let rt = runtime(&cli)?;
    match cli.command {
        OciCommand::Create(a) => {
            rt.create(&a.id, &a.options())?;
        }
        OciCommand::Start { id } => rt.start(&id)?,
        OciCommand::State { id } => print_json(&rt.state(&id)?)?,
        OciCommand::Kill { all, id, signal } => rt.kill(&id, &signal, all)?,
        OciCommand::Delete { force, id } => rt.delete(&id, force)?,
        OciCommand::Exec(a) => {
            let opts = ExecOptions {
                process: a.process.clone(),
                args: a.command.clone(),
                cwd: a.cwd.clone(),
                env: a.env.clone(),
                user: a.user.clone(),
                caps: a.cap.clone(),
                tty: a.tty,
                no_new_privs: a.no_new_privs,
                console_socket: a.console_socket.clone(),
                pid_file: a.pid_file.clone(),
                detach: a.detach,
                preserve_fds: a.preserve_fds,
            };
            if opts.process.is_some() && !opts.args.is_empty() {
                anyhow::bail!("give either --process or a command, not both");
            }
            let pid = rt.exec(&a.id, &opts)?;
            if !a.detach {
                let status = oci::wait_exec(pid)?;
                return Ok(u8::try_from(status).unwrap_or(255));
            }
        }
        OciCommand::Ps {
            format,
            id,
            ps_args,
        } => return ps(&rt, &id, &format, &ps_args),
        OciCommand::Run { create, detach, .. } => {
            let opts = create.options();
            if detach {
                rt.create(&create.id, &opts)?;
                rt.start(&create.id)?;
            } else {
                let status = oci::run_foreground(&rt, &create.id, &opts)?;
                return Ok(u8::try_from(status).unwrap_or(255));
            }
        }
        OciCommand::List { format, quiet } => {
            let all = rt.list();
            if quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                print_json(&all)?;
            } else {
                println!(
                    "{:<24} {:<8} {:<10} {:<60} {:<32} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                );
                for s in &all {
                    println!(
                        "{:<24} {:<8} {:<10} {:<60} {:<32} {}",
                        s.id,
                        s.pid,
                        s.status,
                        s.bundle.display(),
                        s.created,
                        s.owner
                    );
                }
            }
        }
        OciCommand::Pause { id } => rt.pause(&id)?,
        OciCommand::Resume { id } => rt.resume(&id)?,
        OciCommand::Events {
            interval,
            stats,
            id,
        } => rt.events(&id, parse_interval(&interval)?, stats)?,
        OciCommand::Update(a) => {
            let res = update_resources(&a)?;
            rt.update(&a.id, &res)?;
        }
        OciCommand::Features
        | OciCommand::Spec { .. }
        | OciCommand::Checkpoint { .. }
        | OciCommand::Restore { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

/// Runs the OCI runtime command line `argv` (argv[0] included). Errors go to
/// the log file and to stderr, as runc reports them; the exit status is 1.
pub fn main(argv: Vec<OsString>) -> std::process::ExitCode {
    let cli = match OciCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Err(e) = init_logging(&cli) {
        eprintln!("netshim: {}", crate::render(&e));
        return std::process::ExitCode::from(1);
    }
    let has_log = cli.log.is_some();
    match dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            let text = crate::render(&e);
            if has_log {
                tracing::error!("{text}");
            }
            eprintln!("netshim: {text}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        std::iter::once("netshim")
            .chain(s.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn runc_command_lines_go_to_the_oci_runtime() {
        for s in [
            "--root /run/x --log /b/log.json --log-format json create --bundle /b --pid-file /b/p id",
            "--root=/run/x start id",
            "delete --force id",
            "state id",
            "--systemd-cgroup kill id 9",
            "exec --process /tmp/p --detach id",
            "features",
            "run -b /b id",
            "--debug run id",
        ] {
            assert!(wants_oci(&argv(s)), "{s}");
        }
    }

    #[test]
    fn netshim_command_lines_stay() {
        for s in [
            "run --target-netns netns:x -- ip a",
            "run --help",
            "run",
            "--debug run --target-netns=pid:1 -- sh",
            "capture -i any",
            "doctor --json",
            "--help",
            "--version",
            "",
        ] {
            assert!(!wants_oci(&argv(s)), "{s}");
        }
    }

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
