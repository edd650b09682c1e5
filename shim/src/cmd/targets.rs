//! `netshim targets`: what the caller can reach, and how.

use anyhow::Context;
use netshim_runtime::target::discover;
use netshim_runtime::target::select::Selector;
use serde_json::json;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  netshim targets\n  sudo netshim targets --json | jq '.[] | select(.plan != \"impossible\") | .target'\n  netshim targets --expand docker-compose:shop"
)]
pub struct TargetsArgs {
    /// Print JSON (an array of targets) for scripts.
    #[arg(long)]
    json: bool,
    /// Print the targets a selector stands for now (docker-compose:PROJECT,
    /// podman-compose:PROJECT, docker-label:KEY=VALUE,
    /// podman-label:KEY=VALUE, k8s:NAMESPACE/*, or one target), one per
    /// line with what it is: what `netshim capture --target-netns
    /// SELECTOR` would capture in.
    #[arg(long, value_name = "SELECTOR")]
    expand: Option<Selector>,
}

fn expand(sel: &Selector, json: bool) -> anyhow::Result<u8> {
    let chosen = sel
        .expand()
        .with_context(|| format!("finding the targets of {sel}"))?;
    if json {
        let v: Vec<_> = chosen
            .iter()
            .map(|c| json!({"target": c.target.to_string(), "description": c.description}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for c in chosen {
        println!("{}\t{}", c.target, c.description);
    }
    Ok(0)
}

pub fn main(a: TargetsArgs) -> anyhow::Result<u8> {
    if let Some(sel) = &a.expand {
        return expand(sel, a.json);
    }
    let found = discover::discover()?;
    if a.json {
        let v: Vec<_> = found
            .iter()
            .map(|f| {
                json!({
                    "target": f.target, "source": f.source, "netns": f.netns,
                    "owner_userns": f.owner.as_ref().map(|o| &o.0),
                    "owner_uid": f.owner.as_ref().and_then(|o| o.1),
                    "plan": f.plan, "reason": f.reason,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if found.is_empty() {
        println!("no targets found: no named network namespaces, and no Docker daemon answered");
        println!("(any process's network namespace can still be used as pid:PID)");
        return Ok(0);
    }
    let w = found
        .iter()
        .map(|f| f.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:w$}  {:12}  {:22}  {:12}  SOURCE",
        "TARGET", "PLAN", "NETNS", "OWNER UID"
    );
    for f in &found {
        let owner = match &f.owner {
            Some((_, Some(uid))) => uid.to_string(),
            Some((_, None)) => "(host)".into(),
            None => "?".into(),
        };
        println!(
            "{:w$}  {:12}  {:22}  {:12}  {}",
            f.target,
            f.plan,
            f.netns.as_deref().unwrap_or("?"),
            owner,
            f.source
        );
        if let Some(r) = &f.reason {
            println!("{:w$}  └ {r}", "");
        }
    }
    Ok(0)
}
