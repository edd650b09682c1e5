//! The targets of a capture and their packet sockets: every selector
//! expanded, every target resolved and planned, and its sockets made in it
//! on its own plan, before the engine starts (a target that cannot be
//! joined is refused up front, or left out with `--skip-unreachable`).

use std::os::fd::OwnedFd;

use anyhow::{bail, Context};
use netshim_capture::engine::{choose_interfaces, interface_names};
use netshim_capture::ring::Ring;
use netshim_runtime::target::select::Chosen;

use super::flags::CaptureArgs;
use super::settings::engine_run;

/// The targets the selectors stand for, each once, listed on stderr.
pub(super) fn expand(a: &CaptureArgs) -> anyhow::Result<Vec<Chosen>> {
    let mut all: Vec<Chosen> = Vec::new();
    for sel in &a.targets {
        let chosen = sel
            .expand()
            .with_context(|| format!("finding the targets of {sel}"))?;
        if sel.is_many() {
            eprintln!(
                "netshim: {sel} stands for {} target(s): {}",
                chosen.len(),
                chosen
                    .iter()
                    .map(|c| c.target.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for c in chosen {
            if !all.iter().any(|x| x.target == c.target) {
                all.push(c);
            }
        }
    }
    Ok(all)
}

/// One target, planned, its engine not yet started.
pub(super) struct Ready {
    pub(super) chosen: Chosen,
    pub(super) prepared: netshim_runtime::Prepared,
}

/// Plans every target; refuses the capture at the first that cannot be
/// joined, unless `--skip-unreachable`. Targets that share a network
/// namespace are captured once.
pub(super) fn prepare_all(a: &CaptureArgs, chosen: Vec<Chosen>) -> anyhow::Result<Vec<Ready>> {
    let mut ready: Vec<Ready> = Vec::new();
    for c in chosen {
        let opts = engine_run(c.target.clone(), Vec::new());
        let prepared = match netshim_runtime::prepare(&opts) {
            Ok(p) => p,
            Err(e) if a.skip_unreachable => {
                eprintln!("netshim: skipping {}: {e}", c.target);
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot capture in {}; nothing was started (give --skip-unreachable to \
                     capture the other targets without it)",
                    c.target
                )))
            }
        };
        let id = prepared.resolved.netns.id().ok();
        if let Some(same) = ready
            .iter()
            .find(|r| id.is_some() && r.prepared.resolved.netns.id().ok() == id)
        {
            eprintln!(
                "netshim: {} shares its network namespace with {}: captured once, as {}",
                c.target, same.chosen.target, same.chosen.target
            );
            continue;
        }
        ready.push(Ready {
            chosen: c,
            prepared,
        });
    }
    if ready.is_empty() {
        bail!(
            "no target is left to capture in: every one was skipped (the warnings above say why); \
             fix those, or name targets that can be joined"
        );
    }
    Ok(ready)
}

/// A target ready to capture: planned, and its packet sockets made in it.
pub(super) struct Armed {
    pub(super) chosen: Chosen,
    pub(super) prepared: netshim_runtime::Prepared,
    /// (interface name, ifindex, socket), as `-i` chose them there.
    pub(super) sockets: Vec<(String, i32, OwnedFd)>,
    /// Every interface of the target, by index.
    pub(super) names: Vec<(i32, String)>,
}

/// Makes the packet sockets of `-i`'s interfaces (`wanted`) in the
/// target, on its own plan (`netshim_runtime::sealed::made_in`), with the
/// names of its interfaces.
pub(super) fn arm(r: Ready, wanted: &[String]) -> anyhow::Result<Armed> {
    let wanted = wanted.to_vec();
    let (text, fds) = netshim_runtime::sealed::made_in(
        &r.prepared.plan,
        &r.prepared.resolved.netns,
        move || {
            let chosen = choose_interfaces(&wanted).map_err(|e| e.to_string())?;
            let mut text = String::new();
            let mut fds = Vec::new();
            for (name, ifindex) in chosen {
                let fd = Ring::new_socket().map_err(|source| {
                    netshim_capture::CaptureError::Socket {
                        iface: name.clone(),
                        source,
                    }
                    .to_string()
                })?;
                // Interface names hold no whitespace (dev_valid_name).
                text.push_str(&format!("S\t{ifindex}\t{name}\n"));
                fds.push(fd);
            }
            for (i, n) in interface_names() {
                text.push_str(&format!("N\t{i}\t{n}\n"));
            }
            Ok((text.into_bytes(), fds))
        },
    )?;
    let mut sockets = Vec::new();
    let mut names = Vec::new();
    let mut fds = fds.into_iter();
    for line in String::from_utf8_lossy(&text).lines() {
        let mut f = line.splitn(3, '\t');
        let (Some(kind), Some(Ok(i)), Some(name)) = (f.next(), f.next().map(str::parse), f.next())
        else {
            bail!(
                "the packet sockets of {} came with a line netshim does not write: {line:?}",
                r.chosen.target
            );
        };
        match kind {
            "S" => {
                let fd = fds.next().with_context(|| {
                    format!("a packet socket of {} is missing", r.chosen.target)
                })?;
                sockets.push((name.to_string(), i, fd));
            }
            _ => names.push((i, name.to_string())),
        }
    }
    Ok(Armed {
        chosen: r.chosen,
        prepared: r.prepared,
        sockets,
        names,
    })
}

/// [`arm`] for every target: refuses the capture at the first that
/// fails, before the engine starts, unless `--skip-unreachable`.
pub(super) fn arm_all(a: &CaptureArgs, ready: Vec<Ready>) -> anyhow::Result<Vec<Armed>> {
    let mut armed = Vec::new();
    for r in ready {
        let target = r.chosen.target.clone();
        match arm(r, &a.interfaces) {
            Ok(x) => armed.push(x),
            Err(e) if a.skip_unreachable => eprintln!("netshim: skipping {target}: {e:#}"),
            Err(e) => {
                return Err(e.context(format!(
                    "cannot capture in {target}; nothing was started (give --skip-unreachable to \
                     capture the other targets without it)"
                )))
            }
        }
    }
    if armed.is_empty() {
        bail!(
            "no target is left to capture in: every one was skipped (the warnings above say why); \
             fix those, or name targets that can be joined"
        );
    }
    Ok(armed)
}
