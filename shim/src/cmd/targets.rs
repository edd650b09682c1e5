//! `netshim targets`: what the caller can reach, and how.

use netshim_runtime::target::discover;
use serde_json::json;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  netshim targets\n  sudo netshim targets --json | jq '.[] | select(.plan != \"impossible\") | .target'"
)]
pub struct TargetsArgs {
    /// Print JSON (an array of targets) for scripts.
    #[arg(long)]
    json: bool,
}

pub fn main(a: TargetsArgs) -> anyhow::Result<u8> {
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
