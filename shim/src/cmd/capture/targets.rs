//! The targets of a capture: every selector expanded, every target
//! resolved and planned before anything starts (one that cannot be joined
//! is refused up front, or left out with `--skip-unreachable`).

use anyhow::{bail, Context};
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
