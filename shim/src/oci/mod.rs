//! `netshim` as a runc-compatible OCI runtime: the command line containerd's
//! runc v2 shim and dockerd use (`netshim --root R --log L --log-format json
//! create --bundle B --pid-file P ID`, ...), and the log file they read
//! errors back from.
//!
//! `route` decides which command lines are the runtime's, `args` is runc's
//! command line in clap, `log` the `--log` file in runc's format; this file
//! carries each command out.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netshim_runtime::oci::{self, config, policy, CreateOptions, ExecOptions, Runtime};

mod args;
mod log;
mod route;

use args::{parse_interval, update_resources, OciCli, OciCommand};
use log::init_logging;
pub use route::wants_oci;

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
    // Before anything is made or read: an ID is refused before the root
    // (or any path) is touched. The runtime checks it again in each command.
    if let Some(id) = cli.command.id() {
        oci::validate_id(id)?;
    }
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
    let cli = match OciCli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if cli.command.starts_a_container_process() {
        // Before anything else, and before any container process exists:
        // from here on the container can only ever reach the sealed copy
        // (privilege/selfexec.rs says why; CVE-2019-5736).
        // The process's own command line, not `argv` (which lacks the word
        // `oci` when called as `netshim oci ...`): the copy must parse
        // exactly what this process parsed.
        let own: Vec<OsString> = std::env::args_os().collect();
        if let Err(e) = netshim_runtime::privilege::selfexec::reexec_sealed(&own) {
            eprintln!(
                "netshim: cannot re-execute from a sealed copy of netshim's binary, and will not start a container from the binary on disk: {e} (memfd_create and /proc must be available)"
            );
            return std::process::ExitCode::from(1);
        }
    }
    if let Err(e) = init_logging(&cli) {
        eprintln!("netshim: {}", crate::render(&e));
        return std::process::ExitCode::from(1);
    }
    let has_log = cli.log.is_some();
    let result = dispatch(cli);
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            let mut text = crate::render(&e);
            if let Some(detail) = log::child_error_detail(&text) {
                text = format!("{text} (the container's init logged: {detail})");
            }
            if has_log {
                tracing::error!("{text}");
            }
            eprintln!("netshim: {text}");
            std::process::ExitCode::from(1)
        }
    }
}
