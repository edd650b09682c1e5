//! The breakout suite, the host's file system through the runtime's own
//! descriptors: CVE-2024-21626 (a descriptor the runtime leaked into the
//! container, named as the process's working directory, is a directory of
//! the host; `..` from there walks the host's tree). netshim and runc side
//! by side; each row asserts what is left on the host.
//!
//! The container's process, whatever its working directory, climbs with
//! `..` and creates a file named by the test under `tmp/`. Inside its own
//! root that is the rootfs's `/tmp` (harmless); from a leaked host directory
//! it is the host's `/tmp`. The host's `/tmp/NAME` must never appear.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use netshim_integration::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

/// Descriptors tried as `/proc/self/fd/N`: the runtime's own (sockets, the
/// cgroup and procfs handles libcontainer and runc keep) live here.
const FDS: std::ops::RangeInclusive<u32> = 3..=12;

fn climb_and_touch(marker: &str) -> String {
    format!("cd ../../../../../../../../.. 2>/dev/null; touch tmp/{marker} 2>/dev/null; true")
}

struct Setup {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    roots: [(PathBuf, PathBuf); 2],
}

fn setup() -> Setup {
    require_root();
    let dir = tempfile::Builder::new()
        .prefix("breakoutfs")
        .tempdir_in("/tmp")
        .unwrap();
    let bundle = dir.path().join("b");
    std::fs::create_dir(&bundle).unwrap();
    busybox_rootfs(&bundle);
    let _ = std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin/touch"));
    run(Command::new(RUNC).arg("spec").current_dir(&bundle)).ok();
    let roots = [
        (netshim(), dir.path().join("state-netshim")),
        (PathBuf::from(RUNC), dir.path().join("state-runc")),
    ];
    for (_, r) in &roots {
        std::fs::create_dir(r).unwrap();
    }
    Setup {
        _dir: dir,
        bundle,
        roots,
    }
}

fn edit_spec(bundle: &Path, edit: impl FnOnce(&mut Value)) {
    let cfg = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["env"] = json!(["PATH=/bin"]);
    spec["root"]["readonly"] = json!(false);
    edit(&mut spec);
    std::fs::write(&cfg, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
}

fn runtime(bin: &Path, root: &Path, args: &[&str]) -> Ran {
    run(Command::new("timeout")
        .arg("30")
        .arg(bin)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdout(Stdio::piped()))
}

fn name(bin: &Path) -> &'static str {
    if bin == Path::new(RUNC) {
        "runc"
    } else {
        "netshim"
    }
}

#[test]
fn cve_2024_21626_a_leaked_descriptor_as_cwd_at_create_never_reaches_the_host() {
    let s = setup();
    // The control: from a working directory inside its root, the script
    // creates the file in the rootfs's /tmp.
    for (bin, root) in &s.roots {
        let marker = unique("cwd-control-");
        edit_spec(&s.bundle, |spec| {
            spec["process"]["cwd"] = json!("/");
            spec["process"]["args"] = json!(["sh", "-c", climb_and_touch(&marker)]);
        });
        let id = unique("cwd");
        runtime(
            bin,
            root,
            &["run", "--bundle", s.bundle.to_str().unwrap(), &id],
        )
        .ok();
        assert!(
            s.bundle.join("rootfs/tmp").join(&marker).exists(),
            "{}: the control left no file in the rootfs",
            name(bin)
        );
        let _ = runtime(bin, root, &["delete", "--force", &id]);
    }
    let mut escaped = Vec::new();
    for fd in FDS {
        for (bin, root) in &s.roots {
            let marker = unique("cwd-create-");
            edit_spec(&s.bundle, |spec| {
                spec["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
                spec["process"]["args"] = json!(["sh", "-c", climb_and_touch(&marker)]);
            });
            let id = unique("cwd");
            let r = runtime(
                bin,
                root,
                &["run", "--bundle", s.bundle.to_str().unwrap(), &id],
            );
            let _ = runtime(bin, root, &["delete", "--force", &id]);
            let host = Path::new("/tmp").join(&marker);
            if host.exists() {
                let _ = std::fs::remove_file(&host);
                escaped.push(format!("{} fd {fd}", name(bin)));
            }
            eprintln!("{} cwd /proc/self/fd/{fd}: exit {:?}", name(bin), r.code);
        }
    }
    eprintln!("escaped: {escaped:?}");
    assert!(
        !escaped.iter().any(|e| e.starts_with("netshim")),
        "a container created by netshim wrote into the host's /tmp: {escaped:?}"
    );
}

#[test]
fn cve_2024_21626_a_leaked_descriptor_as_cwd_at_exec_never_reaches_the_host() {
    let s = setup();
    edit_spec(&s.bundle, |spec| {
        spec["process"]["args"] = json!(["sleep", "60"]);
    });
    let mut escaped = Vec::new();
    for (bin, root) in &s.roots {
        let id = unique("cwdx");
        // Detached, with no pipe the container would hold open.
        let st = Command::new(bin)
            .arg("--root")
            .arg(root)
            .args(["run", "-d", "--bundle", s.bundle.to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{} run -d failed", name(bin));
        let control = unique("cwd-exec-control-");
        let script = climb_and_touch(&control);
        runtime(bin, root, &["exec", "--cwd", "/", &id, "sh", "-c", &script]).ok();
        assert!(
            s.bundle.join("rootfs/tmp").join(&control).exists(),
            "{}: the control exec left no file in the rootfs",
            name(bin)
        );
        for fd in FDS {
            let marker = unique("cwd-exec-");
            let cwd = format!("/proc/self/fd/{fd}");
            let script = climb_and_touch(&marker);
            let r = runtime(
                bin,
                root,
                &["exec", "--cwd", &cwd, &id, "sh", "-c", &script],
            );
            let host = Path::new("/tmp").join(&marker);
            if host.exists() {
                let _ = std::fs::remove_file(&host);
                escaped.push(format!("{} fd {fd}", name(bin)));
            }
            eprintln!("{} exec --cwd {cwd}: exit {:?}", name(bin), r.code);
        }
        runtime(bin, root, &["delete", "--force", &id]).ok();
    }
    eprintln!("escaped: {escaped:?}");
    assert!(
        !escaped.iter().any(|e| e.starts_with("netshim")),
        "a process netshim exec'd wrote into the host's /tmp: {escaped:?}"
    );
}

/// CVE-2025-31133: masked paths are masked by binding the container's
/// `/dev/null` over them. An image whose `/dev/null` is a symbolic link
/// (here to a file of the image the test made, `/target-file`; in the real
/// attack to a host procfs file such as `core_pattern`) must not make the
/// runtime bind, open or write the link's target. The container reads and
/// writes the masked path and its `/dev/null`; the target file must be as
/// the test wrote it.
#[test]
fn cve_2025_31133_a_dev_null_symlink_never_redirects_masking() {
    let s = setup();
    let root = s.bundle.join("rootfs");
    for a in ["ls", "head"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    edit_spec(&s.bundle, |spec| {
        // /dev from the image, as an image that brings its own /dev has it.
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
        spec["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/keys", "/proc/timer_list"]);
        spec["process"]["args"] = json!([
            "sh",
            "-c",
            "head -c 64 /proc/kcore; echo NETSHIM-OVERWRITE >/proc/kcore; echo NETSHIM-OVERWRITE >/dev/null; true"
        ]);
    });
    let fresh_dev = || {
        let _ = std::fs::remove_dir_all(root.join("dev"));
        std::fs::create_dir(root.join("dev")).unwrap();
    };
    // The control: the same bundle with an empty /dev runs under netshim
    // (the runtime makes the device nodes), so a refusal below is the
    // symbolic link's doing.
    fresh_dev();
    let (bin, root_dir) = &s.roots[0];
    let id = unique("devnull");
    let control = runtime(
        bin,
        root_dir,
        &["run", "--bundle", s.bundle.to_str().unwrap(), &id],
    );
    let _ = runtime(bin, root_dir, &["delete", "--force", &id]);
    assert_eq!(control.code, Some(0), "the control failed: {control:#?}");
    let mut table = Vec::new();
    for (bin, root_dir) in &s.roots {
        std::fs::write(root.join("target-file"), "ORIGINAL\n").unwrap();
        fresh_dev();
        std::os::unix::fs::symlink("/target-file", root.join("dev/null")).unwrap();
        let id = unique("devnull");
        let r = runtime(
            bin,
            root_dir,
            &["run", "--bundle", s.bundle.to_str().unwrap(), &id],
        );
        let _ = runtime(bin, root_dir, &["delete", "--force", &id]);
        let after = std::fs::read_to_string(root.join("target-file")).unwrap();
        eprintln!(
            "{}: exit {:?}, target-file now {:?}, stderr {:?}",
            name(bin),
            r.code,
            after,
            r.stderr.lines().last().unwrap_or_default()
        );
        table.push((name(bin), after));
    }
    let (_, ours) = &table[0];
    assert_eq!(
        ours, "ORIGINAL\n",
        "netshim let the container write through its /dev/null symlink: {table:?}"
    );
}
