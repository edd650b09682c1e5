//! `kubectl netshim doctor`: which nodes run netshim (RuntimeClasses and
//! the nodes' label), which of the selected pods can be captured, and what
//! RBAC the caller lacks. Read-only.

use std::collections::BTreeSet;

use anyhow::Result;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, ListParams};

use crate::args::DoctorArgs;
use crate::cluster::{self, api_error, Facts, DEFAULT_HANDLER_LABEL};

/// Prints the report on stdout; the exit status (1 when a selected pod
/// cannot be captured or RBAC lacks something).
pub async fn run(a: DoctorArgs) -> Result<i32> {
    let c = cluster::connect(&a.kube).await?;
    let mut bad = false;
    println!("RuntimeClasses:");
    let rcs: Api<RuntimeClass> = Api::all(c.client.clone());
    match rcs.list(&ListParams::default()).await {
        Ok(l) if l.items.is_empty() => println!("  none"),
        Ok(l) => {
            for rc in l.items {
                let mark = if rc.handler == a.handler {
                    "  <- netshim"
                } else {
                    ""
                };
                println!(
                    "  {} handler {}{mark}",
                    rc.metadata.name.unwrap_or_default(),
                    rc.handler
                );
            }
        }
        Err(e) => println!("  cannot list them: {}", api_error(&e)),
    }
    println!("Nodes (netshim as the default handler: label {DEFAULT_HANDLER_LABEL}=true):");
    let nodes: Api<Node> = Api::all(c.client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(l) => {
            for n in l.items {
                let default = n
                    .metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.get(DEFAULT_HANDLER_LABEL).is_some_and(|v| v == "true"));
                let info = n.status.and_then(|s| s.node_info);
                println!(
                    "  {}: {}, kubelet {}, {}",
                    n.metadata.name.unwrap_or_default(),
                    if default {
                        "netshim by default"
                    } else {
                        "netshim only by RuntimeClass (or not at all)"
                    },
                    info.as_ref()
                        .map(|i| i.kubelet_version.as_str())
                        .unwrap_or("?"),
                    info.as_ref()
                        .map(|i| i.container_runtime_version.as_str())
                        .unwrap_or("?"),
                );
            }
        }
        Err(e) => println!("  cannot list them: {}", api_error(&e)),
    }
    let mut namespaces = BTreeSet::new();
    if !a.pods.is_empty() || a.selector.is_some() {
        println!("Pods:");
        let targets = cluster::pods(&c, &a.pods, a.selector.as_deref(), None).await?;
        let mut facts = Facts::default();
        for t in targets {
            namespaces.insert(t.ns.clone());
            let (why, warn) = facts.refusal(&c.client, &t, &a.handler).await?;
            let verdict = match (why, warn) {
                (Some(w), _) => {
                    bad = true;
                    format!("cannot be captured: {w}")
                }
                (None, Some(w)) => format!("may be captured ({w})"),
                (None, None) => "can be captured".to_string(),
            };
            println!("  {} (node {}): {verdict}", t.label(), t.node);
        }
    } else {
        namespaces.insert(c.namespace.clone());
    }
    println!("RBAC (you need: patch pods/ephemeralcontainers, create pods/exec, get pods):");
    for ns in namespaces {
        let missing = cluster::missing_rbac(&c.client, &ns).await?;
        if missing.is_empty() {
            println!("  namespace {ns}: all granted");
        } else {
            bad = true;
            println!("  namespace {ns}: lacking {}", missing.join(", "));
        }
    }
    Ok(i32::from(bad))
}
