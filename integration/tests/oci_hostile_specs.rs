//! Hostile specs and configs found by the adversarial review of the
//! narrowed-bounding rule, the runc-like executor and `install containerd
//! --default`, each run under runc (the reference) and netshim in the same
//! test: capability names runc ignores grant nothing and do not make a set
//! look narrowed; a command found through a relative PATH entry is refused
//! as runc refuses it; uninstall after `--default` puts back a default that
//! was not runc, even after an unrelated edit.

use std::path::Path;
use std::process::Command;

use netshim_integration::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

/// A busybox bundle in `dir` whose process is edited by `edit`.
fn bundle(dir: &Path, edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let b = dir.join("b");
    std::fs::create_dir(&b).unwrap();
    let root = busybox_rootfs(&b);
    let mut spec = non_root_spec(&root, &["sh", "-c", "grep Cap /proc/self/status"], &[]);
    edit(&mut spec);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    b
}

/// Runs the bundle in the foreground under `bin` with its own state root.
fn run_under(bin: &Path, bundle: &Path, id: &str) -> Ran {
    let state = tempfile::Builder::new()
        .prefix("review")
        .tempdir_in("/run")
        .unwrap();
    run(Command::new(bin)
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id))
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
}

/// containerd's CRI plugin writes `"CAP_" + upper(name)` for every `add`,
/// so `add: ["CAP_SYS_ADMIN"]` reaches the runtime as `CAP_CAP_SYS_ADMIN`.
/// runc ignores such names (and lowercase or unprefixed ones) with a
/// warning; netshim (oci-spec strips every `CAP_` and upper-cases) grants
/// them. As the node's default runtime that is a grant runc never made.
#[test]
fn capability_names_runc_ignores_grant_nothing_under_netshim() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let odd = json!(["CAP_CAP_SYS_ADMIN", "cap_sys_ptrace", "NET_ADMIN"]);
    let b = bundle(dir.path(), |s| {
        s["process"]["user"] = json!({"uid": 0, "gid": 0});
        for set in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][set] = odd.clone();
        }
    });
    let runc = run_under(Path::new(RUNC), &b, "review-names").ok();
    let ours = run_under(&netshim(), &b, "review-names").ok();
    for key in ["CapBnd:", "CapEff:"] {
        assert_eq!(
            line(&ours.stdout, key),
            line(&runc.stdout, key),
            "{key} differs from runc: netshim={ours:#?} runc={runc:#?}"
        );
    }
}

/// The narrowed-bounding rule must see the bounding set libcontainer
/// applies: `["CAP_NET_RAW", "CAP_CAP_SYS_ADMIN"]` is not narrowed (the
/// process's real bounding set holds SYS_ADMIN), yet the policy passes over
/// the second name and makes NET_RAW ambient.
#[test]
fn a_set_with_a_name_the_policy_cannot_read_is_not_narrowed() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let set = json!(["CAP_NET_RAW", "CAP_CAP_SYS_ADMIN"]);
    let b = bundle(dir.path(), |s| {
        for set_name in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][set_name] = set.clone();
        }
    });
    let ours = run_under(&netshim(), &b, "review-narrow").ok();
    let bnd = line(&ours.stdout, "CapBnd:");
    let amb = line(&ours.stdout, "CapAmb:");
    assert!(
        !(bnd.ends_with("0000000000202000") && amb.ends_with("0000000000002000")),
        "bounding set {bnd} (NET_RAW and SYS_ADMIN) was treated as narrowed: {amb}"
    );
}

/// runc (Go's exec.LookPath since Go 1.19) refuses an executable found
/// through a PATH entry relative to the working directory ("." or a
/// relative directory): "cannot run executable found relative to current
/// directory". netshim's executor says it is runc's rule, yet runs it.
#[test]
fn an_executable_found_relative_to_the_cwd_is_refused_as_runc_refuses() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path(), |s| {
        s["process"]["user"] = json!({"uid": 0, "gid": 0});
        s["process"]["env"] = json!(["PATH=.:/bin"]);
        s["process"]["cwd"] = json!("/bin");
        s["process"]["args"] = json!(["planted"]);
    });
    let planted = b.join("rootfs/bin/planted");
    std::fs::write(&planted, "#!/bin/sh\necho planted ran\n").unwrap();
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let runc = run_under(Path::new(RUNC), &b, "review-dot");
    assert_ne!(runc.code, Some(0), "runc ran it: {runc:#?}");
    assert!(
        runc.stderr.contains("relative to current directory"),
        "{runc:#?}"
    );
    let ours = run_under(&netshim(), &b, "review-dot");
    assert!(
        ours.code != Some(0) && !ours.stdout.contains("planted ran"),
        "netshim ran it: {ours:#?}"
    );
}

/// `install containerd --default` on a config whose default handler is
/// `crun` writes "`--uninstall` puts crun back". After any unrelated edit
/// (so the byte-for-byte restore does not apply), uninstall removes
/// default_runtime_name instead: containerd's default becomes `runc`, which
/// this config does not define, and every pod without a RuntimeClass fails.
#[test]
fn uninstall_puts_the_previous_default_back_after_an_unrelated_edit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n  default_runtime_name = \"crun\"\n\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\n    runtime_type = \"io.containerd.runc.v2\"\n",
    )
    .unwrap();
    let bin = std::fs::canonicalize(netshim()).unwrap();
    let install = |extra: &[&str]| {
        run(Command::new(&bin)
            .args(["install", "containerd", "--config"])
            .arg(&cfg)
            .arg("--binary")
            .arg(&bin)
            .args(extra))
        .ok()
    };
    install(&["--default"]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("puts crun back"), "{text}");
    std::fs::write(&cfg, text.replace("\"overlayfs\"", "\"native\"")).unwrap();
    install(&["--uninstall"]);
    let after: toml::Table = toml::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let default = after["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
        .get("default_runtime_name")
        .and_then(|v| v.as_str());
    assert_eq!(default, Some("crun"), "{after:#?}");
}
