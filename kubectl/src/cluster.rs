//! The cluster, as the plugin sees it: the client from the kubeconfig
//! (kubectl's rules), the selected pods, and for each whether it can be
//! captured, with the reason when not — all read-only: nothing here
//! creates or changes anything but SelfSubjectAccessReviews, which the API
//! server answers without storing.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::args::KubeArgs;

/// The label an operator puts on a node where `netshim install containerd
/// --default` made netshim the handler of pods without a RuntimeClass
/// (Kubernetes 1.26 shows no node's default handler).
pub const DEFAULT_HANDLER_LABEL: &str = "netshim.io/default-runtime";
/// Pod Security's enforced level, on a namespace.
const PSA_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
/// kubectl's annotation naming a pod's default container.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// A client and the namespace commands default to.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub all_namespaces: bool,
}

/// The client, as kubectl makes it: `--kubeconfig` or `KUBECONFIG` or
/// ~/.kube/config, `--context`, `-n` or the context's namespace.
pub async fn connect(k: &KubeArgs) -> Result<Cluster> {
    let opts = KubeConfigOptions {
        context: k.context.clone(),
        ..Default::default()
    };
    let config = match &k.kubeconfig {
        Some(p) => {
            let kc = Kubeconfig::read_from(p)
                .with_context(|| format!("cannot read the kubeconfig {}", p.display()))?;
            Config::from_custom_kubeconfig(kc, &opts).await
        }
        None => Config::from_kubeconfig(&opts).await,
    }
    .context(
        "cannot load the kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config; --context)",
    )?;
    let namespace = k
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).context("cannot make a Kubernetes client")?;
    Ok(Cluster {
        client,
        namespace,
        all_namespaces: k.all_namespaces,
    })
}

/// A pod to capture.
#[derive(Debug, Clone)]
pub struct Target {
    pub ns: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// The container the debug container targets (its PID namespace).
    pub container: String,
    pub image: String,
    pub runtime_class: Option<String>,
    pub phase: String,
    /// The UIDs and GIDs the pod's spec names (`runAsUser`, `runAsGroup`
    /// of the pod and its containers): the debug container takes none.
    pub ids: Vec<i64>,
}

impl Target {
    /// `NS/POD`: the start of its interfaces' names.
    pub fn label(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    /// Its interfaces' if_description.
    pub fn description(&self) -> String {
        format!(
            "pod {}/{} (uid {}) on node {}, container {} (image {})",
            self.ns, self.name, self.uid, self.node, self.container, self.image
        )
    }
}

/// Why a request failed, in kubectl's words when the API server gave some.
pub fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(r) => crate::show::line(&format!("{} ({})", r.message, r.reason)),
        e => crate::show::line(&e.to_string()),
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(r) if r.code == code)
}

/// The pods named, or selected by `selector`, as targets.
pub async fn pods(
    c: &Cluster,
    names: &[String],
    selector: Option<&str>,
    container: Option<&str>,
) -> Result<Vec<Target>> {
    let mut found = Vec::new();
    if let Some(sel) = selector {
        if sel.trim().is_empty() {
            bail!("the selector is empty: give -l KEY=VALUE");
        }
        let api: Api<Pod> = if c.all_namespaces {
            Api::all(c.client.clone())
        } else {
            Api::namespaced(c.client.clone(), &c.namespace)
        };
        let list = api
            .list(&ListParams::default().labels(sel))
            .await
            .map_err(|e| anyhow::anyhow!("cannot list pods with -l {sel}: {}", api_error(&e)))?;
        if list.items.is_empty() {
            let place = if c.all_namespaces {
                "any namespace".to_string()
            } else {
                format!("namespace {}", c.namespace)
            };
            bail!("no pod matches -l {sel} in {place}; nothing was created");
        }
        found = list.items;
    }
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.namespace);
    for n in names {
        match api.get(n).await {
            Ok(p) => found.push(p),
            Err(e) if is_status(&e, 404) => {
                bail!("pod {}/{n} not found; nothing was created", c.namespace)
            }
            Err(e) => bail!("cannot get pod {}/{n}: {}", c.namespace, api_error(&e)),
        }
    }
    found.iter().map(|p| target(p, container)).collect()
}

fn target(p: &Pod, container: Option<&str>) -> Result<Target> {
    let md = &p.metadata;
    let ns = md.namespace.clone().unwrap_or_default();
    let name = md.name.clone().unwrap_or_default();
    let spec = p.spec.as_ref().context("a pod without a spec")?;
    let wanted = container.map(String::from).or_else(|| {
        md.annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CONTAINER).cloned())
    });
    let c = match &wanted {
        Some(w) => spec
            .containers
            .iter()
            .find(|c| &c.name == w)
            .with_context(|| {
                let have: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "pod {ns}/{name} has no container {w:?} (it has: {})",
                    have.join(", ")
                )
            })?,
        None => spec
            .containers
            .first()
            .context("a pod without containers")?,
    };
    let mut ids = Vec::new();
    if let Some(sc) = &spec.security_context {
        ids.extend(sc.run_as_user.into_iter().chain(sc.run_as_group));
    }
    let every = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for sc in every.filter_map(|c| c.security_context.as_ref()) {
        ids.extend(sc.run_as_user.into_iter().chain(sc.run_as_group));
    }
    for sc in spec
        .ephemeral_containers
        .iter()
        .flatten()
        .filter_map(|c| c.security_context.as_ref())
    {
        ids.extend(sc.run_as_user.into_iter().chain(sc.run_as_group));
    }
    Ok(Target {
        ids,
        uid: md.uid.clone().unwrap_or_default(),
        node: spec.node_name.clone().unwrap_or_default(),
        container: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        runtime_class: spec.runtime_class_name.clone(),
        phase: p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default(),
        ns,
        name,
    })
}

/// What the checks found out, cached per namespace, node and class.
#[derive(Default)]
pub struct Facts {
    /// Namespace → its enforced Pod Security level (None: none or unknown).
    psa: BTreeMap<String, Option<String>>,
    /// RuntimeClass → its handler, or why it cannot be read.
    classes: BTreeMap<String, Result<String, String>>,
    /// Node → whether it is labelled as running netshim by default
    /// (Err: cannot be read).
    nodes: BTreeMap<String, Result<bool, String>>,
    /// Namespace → the RBAC the caller lacks there.
    rbac: BTreeMap<String, Vec<String>>,
}

/// What the caller needs in a namespace: (verb, resource, subresource).
pub const NEEDED: &[(&str, &str, &str)] = &[
    ("patch", "pods", "ephemeralcontainers"),
    ("create", "pods", "exec"),
    ("get", "pods", ""),
];

/// The needs of [`NEEDED`] that RBAC does not grant the caller in `ns`.
pub async fn missing_rbac(client: &Client, ns: &str) -> Result<Vec<String>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for (verb, resource, sub) in NEEDED {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(ns.to_string()),
                    verb: Some(verb.to_string()),
                    resource: Some(resource.to_string()),
                    subresource: (!sub.is_empty()).then(|| sub.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot ask the API server what RBAC allows: {}",
                    api_error(&e)
                )
            })?;
        if !r.status.is_some_and(|s| s.allowed) {
            let what = if sub.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}/{sub}")
            };
            missing.push(format!("{verb} {what}"));
        }
    }
    Ok(missing)
}

impl Facts {
    async fn psa(&mut self, client: &Client, ns: &str) -> Option<String> {
        if !self.psa.contains_key(ns) {
            let api: Api<Namespace> = Api::all(client.clone());
            let level = api
                .get(ns)
                .await
                .ok()
                .and_then(|n| n.metadata.labels.and_then(|l| l.get(PSA_ENFORCE).cloned()));
            self.psa.insert(ns.to_string(), level);
        }
        self.psa[ns].clone()
    }

    /// The handler of RuntimeClass `rc`.
    pub async fn class(&mut self, client: &Client, rc: &str) -> Result<String, String> {
        if !self.classes.contains_key(rc) {
            let api: Api<RuntimeClass> = Api::all(client.clone());
            let h = match api.get(rc).await {
                Ok(c) => Ok(c.handler),
                Err(e) if is_status(&e, 404) => Err(format!("RuntimeClass {rc} does not exist")),
                Err(e) => Err(format!("cannot read RuntimeClass {rc}: {}", api_error(&e))),
            };
            self.classes.insert(rc.to_string(), h);
        }
        self.classes[rc].clone()
    }

    /// Whether `node` carries [`DEFAULT_HANDLER_LABEL`]`=true`.
    pub async fn node_default(&mut self, client: &Client, node: &str) -> Result<bool, String> {
        if !self.nodes.contains_key(node) {
            let api: Api<Node> = Api::all(client.clone());
            let v = match api.get(node).await {
                Ok(n) => Ok(n
                    .metadata
                    .labels
                    .is_some_and(|l| l.get(DEFAULT_HANDLER_LABEL).is_some_and(|v| v == "true"))),
                Err(e) => Err(format!("cannot read node {node}: {}", api_error(&e))),
            };
            self.nodes.insert(node.to_string(), v);
        }
        self.nodes[node].clone()
    }

    async fn rbac(&mut self, client: &Client, ns: &str) -> Result<Vec<String>> {
        if !self.rbac.contains_key(ns) {
            let m = missing_rbac(client, ns).await?;
            self.rbac.insert(ns.to_string(), m);
        }
        Ok(self.rbac[ns].clone())
    }

    /// Why `t` cannot be captured, or None when it can (as far as can be
    /// seen); a warning to print comes with a pod that is let through
    /// unverified.
    pub async fn refusal(
        &mut self,
        client: &Client,
        t: &Target,
        handler: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        if t.phase != "Running" {
            return Ok((Some(format!("it is {}, not Running", t.phase)), None));
        }
        if let Some(level) = self.psa(client, &t.ns).await.filter(|l| l == "restricted") {
            return Ok((
                Some(format!(
                    "namespace {} enforces Pod Security \"{level}\", which admits no container holding NET_RAW \
                     (it must drop ALL); capture there takes a namespace at \"baseline\" or an exemption",
                    t.ns
                )),
                None,
            ));
        }
        let missing = self.rbac(client, &t.ns).await?;
        if !missing.is_empty() {
            return Ok((
                Some(format!(
                    "RBAC does not let you {} in namespace {}",
                    missing.join(", "),
                    t.ns
                )),
                None,
            ));
        }
        self.runtime_refusal(client, t, handler).await
    }

    async fn runtime_refusal(
        &mut self,
        client: &Client,
        t: &Target,
        handler: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        if let Some(rc) = &t.runtime_class {
            return Ok(match self.class(client, rc).await {
                Ok(h) if h == handler => (None, None),
                Ok(h) => (
                    Some(format!(
                        "it runs under RuntimeClass {rc} (handler {h}), not {handler}: a non-root debug container \
                         gets no NET_RAW there"
                    )),
                    None,
                ),
                Err(why) => (Some(why), None),
            });
        }
        Ok(match self.node_default(client, &t.node).await {
            Ok(true) => (None, None),
            Ok(false) => (
                Some(format!(
                    "it has no RuntimeClass and node {} is not labelled {DEFAULT_HANDLER_LABEL}=true (the label \
                     for nodes where `netshim install containerd --default` made netshim the default handler); \
                     label the node if it is so, or give the pod runtimeClassName: {handler}",
                    t.node
                )),
                None,
            ),
            Err(why) => (
                None,
                Some(format!("{why}: cannot tell whether netshim is its default handler; trying")),
            ),
        })
    }
}
