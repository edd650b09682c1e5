//! `kubectl/package.sh`: the plugin packed as krew installs plugins, then
//! installed the way krew does it, and found by the real kubectl.
//!
//! krew itself cannot be fetched on the test machine (no route to GitHub
//! or the Go module proxy), so the test does krew's steps by hand, as
//! krew's documentation states them for a manifest and a local archive
//! (`kubectl krew install --manifest=M --archive=A`): the manifest is a
//! `krew.googlecontainertools.github.com/v1alpha2` Plugin whose platform
//! matches this machine; the archive's sha256 is the manifest's; the
//! archive is unpacked, its `files` copied into
//! `KREW_ROOT/store/NAME/VERSION/`, and `KREW_ROOT/bin/kubectl-NAME` is a
//! link to the `bin` file. With `KREW_ROOT/bin` on PATH, `kubectl plugin
//! list` lists it and `kubectl netshim --version` runs it. The archive is
//! the same bytes when packed twice (reproducible).

use std::path::Path;
use std::process::Command;

use netshim_integration::*;

fn sha256(p: &Path) -> String {
    let r = run(Command::new("sha256sum").arg(p)).ok();
    r.stdout.split_whitespace().next().unwrap().to_string()
}

#[test]
fn the_plugin_packs_and_installs_as_krew_does() {
    let bin = netshim().parent().unwrap().join("kubectl-netshim");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (`cargo build --workspace`; integration/run.sh does)",
        bin.display()
    );
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let r = run(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../kubectl/package.sh"))
            .arg(&out)
            .arg(&bin),
    )
    .ok();
    let files: Vec<&str> = r.stdout.lines().collect();
    let (archive, manifest) = (Path::new(files[0]), Path::new(files[1]));
    let m: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    println!("{}", serde_yaml::to_string(&m).unwrap());
    assert_eq!(
        m["apiVersion"].as_str(),
        Some("krew.googlecontainertools.github.com/v1alpha2")
    );
    assert_eq!(m["kind"].as_str(), Some("Plugin"));
    let name = m["metadata"]["name"].as_str().unwrap();
    assert_eq!(name, "netshim");
    let version = m["spec"]["version"].as_str().unwrap();
    let own = run(Command::new(&bin).arg("--version")).ok();
    assert_eq!(
        format!("kubectl-netshim {}", version.trim_start_matches('v')),
        own.stdout.trim(),
        "the manifest's version is the binary's"
    );
    assert!(!m["spec"]["shortDescription"].as_str().unwrap().is_empty());
    // The platform krew picks: os and arch of this machine.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let platforms = m["spec"]["platforms"].as_sequence().unwrap();
    let p = platforms
        .iter()
        .find(|p| {
            let l = &p["selector"]["matchLabels"];
            l["os"].as_str() == Some("linux") && l["arch"].as_str() == Some(arch)
        })
        .expect("a platform for this machine");
    assert_eq!(p["sha256"].as_str().unwrap(), sha256(archive), "sha256");
    assert!(p["uri"]
        .as_str()
        .unwrap()
        .ends_with(archive.file_name().unwrap().to_str().unwrap()));
    // krew's install: unpack, copy `files` into the store, link `bin`.
    let unpacked = d.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(&unpacked))
    .ok();
    let root = d.path().join("krew");
    let store = root.join("store").join(name).join(version);
    std::fs::create_dir_all(&store).unwrap();
    for f in p["files"].as_sequence().unwrap() {
        let from = f["from"].as_str().unwrap();
        let to = f["to"].as_str().unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(unpacked.join(from))
            .arg(store.join(to)))
        .ok();
    }
    let plugin_bin = store.join(p["bin"].as_str().unwrap());
    assert!(
        plugin_bin.exists(),
        "bin {} is not among files",
        plugin_bin.display()
    );
    std::fs::create_dir(root.join("bin")).unwrap();
    let link = root.join("bin").join(format!("kubectl-{name}"));
    std::os::unix::fs::symlink(&plugin_bin, &link).unwrap();
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let list = run(Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", &path));
    println!("kubectl plugin list:\n{}{}", list.stdout, list.stderr);
    assert!(
        list.stdout.contains(link.to_str().unwrap()),
        "kubectl does not list the plugin: {list:#?}"
    );
    let v = run(Command::new("kubectl")
        .args(["netshim", "--version"])
        .env("PATH", &path))
    .ok();
    assert_eq!(v.stdout.trim(), own.stdout.trim());
    // Packed again: the same bytes.
    let again = d.path().join("again");
    let r2 = run(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../kubectl/package.sh"))
            .arg(&again)
            .arg(&bin),
    )
    .ok();
    let archive2 = Path::new(r2.stdout.lines().next().unwrap());
    assert_eq!(sha256(archive), sha256(archive2), "reproducible");
}
