//! `netshim install containerd|docker`: register netshim as a runtime of
//! the node's containerd (a CRI runtime handler) or Docker daemon, check
//! what the daemon makes of it, and take it out again (`--uninstall`).
//! The config edits are in `netshim_runtime::install`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netshim_runtime::install::{self, Change, Daemon, Entry};
use netshim_runtime::target::docker;

pub const INSTALL_EXAMPLES: &str = "Examples:
  sudo netshim install containerd --dry-run
  sudo netshim install containerd && sudo systemctl restart containerd
  sudo netshim install containerd --default   # also the handler of pods without a RuntimeClass
  sudo netshim install docker
  netshim install docker --rootless
  sudo netshim install containerd --uninstall";

#[derive(clap::Args)]
pub struct InstallArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// A CRI runtime handler in containerd's config.toml (a RuntimeClass's
    /// `handler`), passing `netshim.io/*` pod annotations to netshim. Restart
    /// containerd afterwards.
    Containerd(ContainerdArgs),
    /// A runtime in Docker's daemon.json (`docker run --runtime NAME`);
    /// the running daemon is told to reload it (SIGHUP) and asked whether it did.
    Docker(DockerArgs),
}

#[derive(clap::Args)]
struct Common {
    /// The runtime's name: the RuntimeClass handler, or `docker run --runtime NAME`.
    #[arg(long, default_value = "netshim")]
    name: String,
    /// The netshim binary the daemon runs [default: this one].
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Print the change as a diff; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Take the runtime out again (the config as it was, if it has not
    /// changed since); also takes it out as the default runtime.
    #[arg(long)]
    uninstall: bool,
}

#[derive(clap::Args)]
struct ContainerdArgs {
    #[command(flatten)]
    common: Common,
    /// containerd's config.
    #[arg(long, default_value = "/etc/containerd/config.toml")]
    config: PathBuf,
    /// The containerd binary that checks the result (`containerd config dump`).
    #[arg(long, default_value = "containerd")]
    containerd: PathBuf,
    /// Also make it the CRI plugin's default runtime handler
    /// (`default_runtime_name`), so that every pod that names no
    /// RuntimeClass runs under netshim (runc stays listed); see
    /// docs/security.md, "netshim as a node's default runtime".
    #[arg(long = "default", conflicts_with = "uninstall")]
    make_default: bool,
}

#[derive(clap::Args)]
struct DockerArgs {
    #[command(flatten)]
    common: Common,
    /// Rootless Docker: $XDG_RUNTIME_DIR/docker.sock and ~/.config/docker/daemon.json.
    #[arg(long)]
    rootless: bool,
    /// The daemon's daemon.json [default: the daemon's --config-file, else
    /// /etc/docker/daemon.json, or ~/.config/docker/daemon.json with --rootless].
    #[arg(long)]
    config: Option<PathBuf>,
    /// The daemon's socket (unix:///path) [default: $DOCKER_HOST, else the
    /// rootless or rootful default].
    #[arg(long, short = 'H')]
    host: Option<String>,
    /// Write daemon.json only; do not tell the running daemon to reload.
    #[arg(long)]
    no_reload: bool,
}

pub fn main(a: InstallArgs) -> anyhow::Result<()> {
    match a.which {
        Which::Containerd(a) => containerd(a),
        Which::Docker(a) => docker(a),
    }
}

fn entry(c: &Common) -> anyhow::Result<Entry> {
    if c.name.is_empty()
        || !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        bail!(
            "--name {:?} is not a runtime name: use letters, digits, '-', '_' and '.'",
            c.name
        );
    }
    let binary = match &c.binary {
        Some(b) => b.clone(),
        None => {
            std::env::current_exe().context("cannot tell where this netshim is: give --binary")?
        }
    };
    let binary = std::fs::canonicalize(&binary).with_context(|| {
        format!(
            "the netshim binary {} is not there: give --binary",
            binary.display()
        )
    })?;
    Ok(Entry {
        name: c.name.clone(),
        binary: binary.to_string_lossy().into_owned(),
        make_default: false,
    })
}

/// Prints the diff (dry run) or writes the change; says what it did.
fn write(change: &Change, c: &Common, what: &str) -> anyhow::Result<bool> {
    let path = change.path.display().to_string();
    let before = change.before.as_deref().unwrap_or("");
    let after = change.after.as_deref().unwrap_or("");
    let d = install::diff(&path, before, &format!("{path} (after)"), after);
    if !change.changes() {
        eprintln!(
            "netshim: {path} already {}; nothing to change",
            if c.uninstall {
                format!("has no {what}")
            } else {
                format!("has the {what}")
            }
        );
        return Ok(false);
    }
    if c.dry_run {
        print!("{d}");
        if change.after.is_none() {
            println!("(the file would be removed: netshim install created it)");
        }
        eprintln!("netshim: dry run: nothing was written");
        return Ok(false);
    }
    install::apply(change, !c.uninstall)?;
    if c.uninstall {
        if change.restored {
            eprintln!(
                "netshim: {path} is back as it was before netshim install (from {})",
                install::backup_path(&change.path).display()
            );
        } else if change.after.is_none() {
            eprintln!("netshim: removed {path} (netshim install had created it)");
        } else {
            eprintln!("netshim: took the {what} out of {path}:\n{d}");
        }
    } else {
        if change.before.is_some() {
            eprintln!(
                "netshim: the original is kept as {}",
                install::backup_path(&change.path).display()
            );
        }
        eprintln!("netshim: wrote the {what} into {path}:\n{d}");
    }
    Ok(true)
}

fn containerd(a: ContainerdArgs) -> anyhow::Result<()> {
    let e = Entry {
        make_default: a.make_default,
        ..entry(&a.common)?
    };
    // A new config gets the version of the containerd that will read it.
    let version = containerd_major(&a.containerd).map_or(2, |m| if m >= 2 { 3 } else { 2 });
    let what = format!("runtime handler {:?}", e.name);
    let change = if a.common.uninstall {
        install::plan_uninstall(Daemon::Containerd, &a.config, &e, version)?
    } else {
        install::plan_install(Daemon::Containerd, &a.config, &e, version)?
    };
    let wrote = write(&change, &a.common, &what)?;
    if a.common.dry_run {
        return Ok(());
    }
    // containerd itself reads the file back: what it dumps is what it
    // will run after a restart.
    match dump(&a.containerd, &a.config) {
        Err(why) => eprintln!("netshim: could not check the result with containerd: {why}"),
        Ok(text) => {
            let (binary, default_ok, default) = install::containerd_dumped_default(&text, &e.name)
                .map_err(|why| anyhow::anyhow!("cannot read `containerd config dump`: {why}"))?;
            if e.make_default && default != e.name {
                bail!(
                    "containerd's default runtime is still {default:?} after the change: something in \
                     its config overrides default_runtime_name (containerd 1.x: a deprecated \
                     `[…containerd.default_runtime]` table, or another file in `imports`); take it out"
                );
            }
            match (a.common.uninstall, binary) {
                (false, Some(b)) if b == e.binary => eprintln!(
                    "netshim: containerd reads it: handler {:?} runs {b}",
                    e.name
                ),
                (false, other) => bail!(
                    "containerd does not read the handler from {}: `{} --config {} config dump` shows {:?} for it; \
                     is another file (an `imports` entry) overriding it?",
                    a.config.display(),
                    a.containerd.display(),
                    a.config.display(),
                    other
                ),
                (true, None) => eprintln!("netshim: containerd reads no handler {:?} any more", e.name),
                (true, Some(b)) => bail!(
                    "containerd still has handler {:?} (running {b}) from another file of its config; take it out there",
                    e.name
                ),
            }
            if !default_ok {
                eprintln!(
                    "netshim: warning: containerd's default runtime is not among its runtimes in {}: \
                     pods without a RuntimeClass would fail; define it (runc) again",
                    a.config.display()
                );
            }
        }
    }
    if wrote {
        eprintln!("netshim: restart containerd to load the change (systemctl restart containerd)");
    }
    Ok(())
}

/// containerd's major version, from `containerd --version`.
fn containerd_major(bin: &Path) -> Option<u32> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "containerd github.com/containerd/containerd 1.6.20~ds1 …"
    text.split_whitespace()
        .nth(2)?
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn dump(bin: &Path, config: &Path) -> Result<String, String> {
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["config", "dump"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} --config {} config dump` failed: {}",
            bin.display(),
            config.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn docker(a: DockerArgs) -> anyhow::Result<()> {
    let e = entry(&a.common)?;
    let socket = match &a.host {
        Some(h) => PathBuf::from(
            h.strip_prefix("unix://")
                .with_context(|| format!("--host {h:?} is not unix:///path/to/docker.sock"))?,
        ),
        None if a.rootless => {
            let dir = std::env::var_os("XDG_RUNTIME_DIR")
                .context("--rootless needs XDG_RUNTIME_DIR (where rootless Docker's socket is); or give --host")?;
            PathBuf::from(dir).join("docker.sock")
        }
        None => docker::default_socket()?,
    };
    let pid = daemon_pid(&socket);
    let config = match &a.config {
        Some(c) => c.clone(),
        None => match pid.as_ref().ok().and_then(|p| config_file_of(*p)) {
            Some(c) => c,
            None if a.rootless => {
                let base = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                    .context("--rootless needs HOME or XDG_CONFIG_HOME to find daemon.json; or give --config")?;
                base.join("docker/daemon.json")
            }
            None => PathBuf::from("/etc/docker/daemon.json"),
        },
    };
    let what = format!("runtime {:?}", e.name);
    let change = if a.common.uninstall {
        install::plan_uninstall(Daemon::Docker, &config, &e, 2)?
    } else {
        install::plan_install(Daemon::Docker, &config, &e, 2)?
    };
    let wrote = write(&change, &a.common, &what)?;
    if a.common.dry_run {
        return Ok(());
    }
    let pid = match pid {
        Ok(p) => p,
        Err(why) => {
            eprintln!(
                "netshim: no Docker daemon answers at {} ({why}); it loads {} when it starts",
                socket.display(),
                config.display()
            );
            return Ok(());
        }
    };
    let client = docker::Client::new(&socket);
    if wrote && !a.no_reload {
        // Signal nothing but a dockerd: the socket is the caller's choice.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "dockerd" {
            bail!(
                "the process listening on {} (PID {pid}, {:?}) is not dockerd, so netshim does not \
                 signal it: reload the daemon yourself (`systemctl reload docker`), or use --no-reload",
                socket.display(),
                comm.trim()
            );
        }
        // dockerd reloads `runtimes` from its config file on SIGHUP
        // (dockerd(8), "Configuration reload behavior").
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP)
            .with_context(|| format!("cannot tell dockerd (PID {pid}) to reload: run `systemctl reload docker`, or use --no-reload"))?;
    }
    // Ask the daemon what it has loaded.
    let want = (!a.common.uninstall).then(|| e.binary.clone());
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let runtimes = client.runtimes()?;
        let got = runtimes.get(&e.name).cloned();
        if got == want {
            match &got {
                Some(b) => eprintln!(
                    "netshim: dockerd (PID {pid}) runs {b} for --runtime {}",
                    e.name
                ),
                None => eprintln!(
                    "netshim: dockerd (PID {pid}) has no runtime {} any more",
                    e.name
                ),
            }
            return Ok(());
        }
        if a.no_reload || !wrote || Instant::now() > until {
            bail!(
                "dockerd (PID {pid}) at {} {} runtime {:?} from {} (it has {:?}): {}",
                socket.display(),
                if a.common.uninstall {
                    "still has"
                } else {
                    "did not load"
                },
                e.name,
                config.display(),
                got,
                if a.no_reload || !wrote {
                    "reload it (`systemctl reload docker`)".to_string()
                } else {
                    format!(
                        "its log says why (a runtime of that name given with --add-runtime conflicts; \
                         a daemon started with another --config-file reads that file: see /proc/{pid}/cmdline)"
                    )
                }
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The PID of the process listening on a unix socket, from the kernel's
/// record of the peer (SO_PEERCRED: the credentials of the process that
/// called listen()).
fn daemon_pid(socket: &Path) -> Result<nix::unistd::Pid, String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    let cred = getsockopt(&s, PeerCredentials).map_err(|e| e.to_string())?;
    if cred.pid() <= 0 {
        return Err(
            "the kernel gave no PID for the daemon (is it in another PID namespace?)".into(),
        );
    }
    Ok(nix::unistd::Pid::from_raw(cred.pid()))
}

/// The `--config-file` a running dockerd was started with.
fn config_file_of(pid: nix::unistd::Pid) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--config-file" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = arg.strip_prefix("--config-file=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}
