//! `netshim`: get a process into a target's network namespace as an
//! unprivileged UID with only ambient CAP_NET_RAW.

mod cmd;
mod oci;

use cmd::{capture, demo, doctor, probe, targets};

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit status for netshim's own failures (as docker and podman use it).
const EXIT_NETSHIM: u8 = 125;

#[derive(Parser)]
#[command(
    name = "netshim",
    version,
    about = "Run network troubleshooting tools in a container's network namespace with the least privilege the kernel allows",
    long_about = None,
)]
struct Cli {
    /// Log what netshim does (to stderr).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a target's network namespace as an unprivileged UID with ambient CAP_NET_RAW.
    #[command(after_help = cmd::run::RUN_EXAMPLES)]
    Run(cmd::run::RunArgs),
    /// Capture packets with netshim's engine, in a target or here (tcpdump's flags).
    Capture(Box<capture::CaptureArgs>),
    /// Make a throwaway target with traffic on it and show netshim at work there (no root needed).
    #[command(
        after_help = "Examples:\n  netshim demo\n  netshim demo -c 20 -w /tmp/demo.pcapng\n  sudo netshim demo"
    )]
    Demo(demo::DemoArgs),
    /// List what you can reach (named netns, Docker, Podman and containerd containers, pods) and the plan netshim would use.
    Targets(targets::TargetsArgs),
    /// Check this host: kernel features, user namespaces, engines; say what works and what to fix.
    #[command(
        after_help = "Examples:\n  netshim doctor\n  netshim doctor --json | jq '.findings[] | select(.status != \"ok\")'"
    )]
    Doctor(doctor::DoctorArgs),
    /// Register netshim as a runtime of containerd (a RuntimeClass handler) or Docker, or take it out.
    #[command(after_help = cmd::install::INSTALL_EXAMPLES)]
    Install(cmd::install::InstallArgs),
    /// Print shell completions (bash, zsh, fish) or the man page to stdout.
    #[command(
        after_help = "Examples:\n  netshim completions bash > /etc/bash_completion.d/netshim\n  netshim completions man > /usr/local/share/man/man1/netshim.1"
    )]
    Completions {
        /// bash, zsh, fish, or man.
        shell: String,
    },
    /// Print this process's identity and capabilities, and read a few packets
    /// with a packet socket (run it under `netshim run` to see what a command gets).
    #[command(
        after_help = "Examples:\n  netshim run --target-netns docker:web -- netshim probe -c 3\n  sudo netshim run --target-netns netns:blue -- netshim probe -c 0"
    )]
    Probe(probe::ProbeArgs),
    /// Print the seccomp profile of processes netshim starts in a target (OCI JSON).
    #[command(hide = true, name = "seccomp-profile")]
    SeccompProfile,
    /// The runc-compatible OCI runtime (for containerd and Docker); its commands
    /// (create, start, state, kill, delete, exec, ...) also work without `oci`.
    #[command(
        after_help = "Examples:\n  netshim oci --help\n  netshim --root /run/netshim/runtime list\n  dockerd --add-runtime netshim=/usr/local/bin/netshim",
        disable_help_flag = true
    )]
    Oci {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn init_logging(debug: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if debug {
        "debug"
    } else {
        // libcontainer logs every failure at error level before returning it;
        // netshim reports the error itself, with what to do.
        "warn,libcontainer=off,libcgroups=off"
    };
    let filter = EnvFilter::try_from_env("NETSHIM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(debug)
        // A closed stderr (`netshim ... 2>&1 | head`) must not turn into a
        // panic: tracing-subscriber would report the failed write with
        // eprintln!, which panics on the same broken pipe.
        .log_internal_errors(false)
        .init();
}

/// The error and its causes, each once: library errors often repeat their
/// source's text in their own message.
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv
        .get(1)
        .is_some_and(|a| a == netshim_runtime::launch::init::COMMAND)
    {
        // The init of a run's PID namespace (from the sealed copy): first,
        // before anything else a run's start-up would pay for.
        let code = netshim_runtime::launch::init::main(&argv[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(255));
    }
    if oci::wants_oci(&argv) {
        return oci::main(argv);
    }
    if argv.get(1).is_some_and(|a| a == capture::ENGINE_COMMAND) {
        // The capture engine netshim starts in a target: its arguments are
        // netshim's own contract, read by the capture crate, not clap.
        init_logging(false);
        let args: Vec<String> = argv[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return finish(capture::engine_main(&args));
    }
    let cli = Cli::parse();
    if let Command::Oci { args } = cli.command {
        return oci::main(std::iter::once("netshim".into()).chain(args).collect());
    }
    init_logging(cli.debug);
    let r = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Capture(a) => capture::main(*a),
        Command::Demo(a) => demo::main(a),
        Command::Doctor(a) => doctor::main(a),
        Command::Targets(a) => targets::main(a),
        Command::Install(a) => cmd::install::main(a).map(|()| 0),
        Command::Completions { shell } => cmd::completions::main::<Cli>(&shell),
        Command::Probe(a) => probe::main(a),
        Command::Oci { .. } => unreachable!("handled above"),
        Command::SeccompProfile => {
            use std::io::Write;
            let text = format!(
                "{:#}\n",
                netshim_runtime::privilege::seccomp::default_profile()
            );
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("writing the profile")
                .map(|()| 0)
        }
    };
    finish(r)
}

/// The exit status of a command: its own, or netshim's for an error (which
/// is printed with its causes).
fn finish(r: anyhow::Result<u8>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("netshim: {}", render(&e));
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<netshim_runtime::RunError>())
                .map_or(EXIT_NETSHIM, |r| r.exit_code());
            ExitCode::from(code)
        }
    }
}
