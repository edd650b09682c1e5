//! The plugin's command line, parsed by hand: kubectl's flags (`--kubeconfig`,
//! `--context`, `-n`, `-A`, `-l`, `-c`) mixed with tcpdump's (`-w`, `-c`,
//! `-s`, `-a`…) and a filter of free words, as `kubectl netshim capture`
//! users type them.
//!
//! Where the two disagree, the rule is:
//! - `-n`, `-A`, `-l` are kubectl's (namespace, all namespaces, selector):
//!   tcpdump's meanings (no name resolution, ASCII, line buffering) mean
//!   nothing for a pcapng stream;
//! - `-c N` is tcpdump's packet count (across pods) when N is a number, and
//!   kubectl's target container otherwise; `--container NAME` is always
//!   the container.
//!
//! Pods: with `--`, the words before it are pods and the words after it
//! the filter. Without it, `pod/NAME` words are pods, the first other word
//! is a pod when there is neither `-l` nor a `pod/` word, and the rest is
//! the filter.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use netshim_capture::rotate::Rotation;

/// How to reach the cluster: kubectl's own flags.
#[derive(Debug, Default, Clone)]
pub struct KubeArgs {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub all_namespaces: bool,
}

/// `kubectl netshim capture ...`.
#[derive(Debug, Default)]
pub struct CaptureArgs {
    pub kube: KubeArgs,
    pub pods: Vec<String>,
    pub selector: Option<String>,
    pub container: Option<String>,
    /// Packets across pods (`-c N`).
    pub count: Option<u64>,
    /// `-w FILE`, `-w -` (stdout).
    pub write: Option<String>,
    pub quiet: bool,
    pub skip_unreachable: bool,
    /// netshim's image for the debug containers.
    pub image: Option<String>,
    /// The debug container's `sleep`, in seconds: the bound of anything left.
    pub lifetime: u64,
    /// The merge's reorder window.
    pub window_ms: u64,
    pub snaplen: u32,
    /// The RuntimeClass handler that is netshim.
    pub handler: String,
    /// `-C`, `-G`, `-W` and `-a files:N`: the merged file's rotation,
    /// done by the plugin as tcpdump and dumpcap do theirs.
    pub rotation: Rotation,
    /// `-a filesize:KB`: stop once the merged output holds this many bytes.
    pub max_bytes: Option<u64>,
    /// Flags handed to every pod's `netshim capture` as they are.
    pub passthrough: Vec<String>,
    pub filter: Vec<String>,
}

/// `kubectl netshim doctor ...`.
#[derive(Debug, Default)]
pub struct DoctorArgs {
    pub kube: KubeArgs,
    pub pods: Vec<String>,
    pub selector: Option<String>,
    pub handler: String,
}

/// tcpdump flags of `netshim capture` handed on, with whether they take a
/// value.
const PASS_SHORT: &[(char, bool)] = &[
    ('s', true),
    ('B', true),
    ('Q', true),
    ('p', false),
    ('i', true),
];
const PASS_LONG: &[&str] = &[
    "time-stamp-precision",
    "stall-timeout",
    "direction",
    "interface",
];
/// tcpdump flags that make no sense for a merged pcapng from the cluster.
const REFUSED: &[(&str, &str)] = &[
    ("-r", "read the file with `netshim capture -r` or tshark"),
    (
        "-D",
        "list interfaces with `kubectl exec` into a debug container",
    ),
    ("-F", "give the filter on the command line"),
];

struct Words {
    v: Vec<String>,
    i: usize,
}

impl Words {
    /// The value of flag `flag`: glued (`-nNS`, `--x=V`) or the next word.
    fn value(&mut self, flag: &str, glued: Option<&str>) -> Result<String> {
        if let Some(g) = glued.filter(|g| !g.is_empty()) {
            return Ok(g.to_string());
        }
        self.i += 1;
        self.v
            .get(self.i)
            .cloned()
            .with_context(|| format!("{flag} needs a value"))
    }
}

/// Splits `-x[VALUE]` / `--name[=VALUE]` into (flag, glued value).
fn split_flag(w: &str) -> (String, Option<String>) {
    if let Some(long) = w.strip_prefix("--") {
        match long.split_once('=') {
            Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
            None => (w.to_string(), None),
        }
    } else {
        let mut c = w.chars();
        c.next();
        let f = c.next().map(|f| format!("-{f}")).unwrap_or_default();
        let rest: String = c.collect();
        (f, (!rest.is_empty()).then_some(rest))
    }
}

/// kubectl's flags, shared by every subcommand; true if `flag` was one.
fn kube_flag(k: &mut KubeArgs, flag: &str, glued: Option<&str>, w: &mut Words) -> Result<bool> {
    match flag {
        "--kubeconfig" => k.kubeconfig = Some(w.value(flag, glued)?.into()),
        "--context" => k.context = Some(w.value(flag, glued)?),
        "-n" | "--namespace" => k.namespace = Some(w.value(flag, glued)?),
        "-A" | "--all-namespaces" => k.all_namespaces = true,
        _ => return Ok(false),
    }
    Ok(true)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| anyhow::anyhow!("{flag} {v:?}: not a number"))
}

/// Parses the words after `capture`.
pub fn capture(words: Vec<String>) -> Result<CaptureArgs> {
    let mut a = CaptureArgs {
        lifetime: 3600,
        window_ms: 0,
        snaplen: netshim_capture::DEFAULT_SNAPLEN,
        handler: "netshim".into(),
        image: std::env::var("KUBECTL_NETSHIM_IMAGE")
            .ok()
            .filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let mut w = Words { v: words, i: 0 };
    let mut positional = Vec::new();
    let mut after_dashdash = None;
    let mut window_given = false;
    while w.i < w.v.len() {
        let word = w.v[w.i].clone();
        if word == "--" {
            after_dashdash = Some(w.v[w.i + 1..].to_vec());
            break;
        }
        if !word.starts_with('-') || word == "-" {
            positional.push(word);
            w.i += 1;
            continue;
        }
        let (flag, glued) = split_flag(&word);
        let g = glued.as_deref();
        if kube_flag(&mut a.kube, &flag, g, &mut w)? {
            w.i += 1;
            continue;
        }
        match flag.as_str() {
            "-l" | "--selector" => a.selector = Some(w.value(&flag, g)?),
            "--container" => a.container = Some(w.value(&flag, g)?),
            "-c" => {
                let v = w.value(&flag, g)?;
                match v.parse::<u64>() {
                    Ok(n) => a.count = Some(a.count.map_or(n, |o| o.min(n))),
                    Err(_) => a.container = Some(v),
                }
            }
            "--count" => {
                let n = number(&flag, &w.value(&flag, g)?)?;
                a.count = Some(a.count.map_or(n, |o: u64| o.min(n)));
            }
            "-w" => a.write = Some(w.value(&flag, g)?),
            "-q" | "--quiet" => a.quiet = true,
            "--skip-unreachable" => a.skip_unreachable = true,
            "--image" => a.image = Some(w.value(&flag, g)?),
            "--lifetime" => a.lifetime = number(&flag, &w.value(&flag, g)?)?,
            "--reorder-window" => {
                a.window_ms = number(&flag, &w.value(&flag, g)?)?;
                window_given = true;
            }
            "--handler" => a.handler = w.value(&flag, g)?,
            "-C" => {
                let v = w.value(&flag, g)?;
                let mb = number::<u64>(&flag, &v)?.max(1);
                a.rotation.size = Some(mb.checked_mul(1_000_000).with_context(|| {
                    format!("-C {v}: more bytes than a file takes; give the size in MB")
                })?)
            }
            // tcpdump's -G 0 is no -G.
            "-G" => {
                a.rotation.seconds = Some(number(&flag, &w.value(&flag, g)?)?).filter(|s| *s > 0)
            }
            "-W" => a.rotation.files = Some(number(&flag, &w.value(&flag, g)?)?),
            "-a" | "--autostop" => autostop(&mut a, &w.value(&flag, g)?)?,
            f => {
                if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == f) {
                    bail!("{f} is not for `kubectl netshim capture`: {why}");
                }
                pass_through(&mut a, f, g, &mut w)?;
            }
        }
        w.i += 1;
    }
    split_positional(&mut a, positional, after_dashdash)?;
    if a.pods.is_empty() && a.selector.is_none() {
        bail!("name the pods to capture (POD…) or select them (-l SELECTOR)");
    }
    if !a.pods.is_empty() && a.selector.is_some() {
        bail!("name pods or give -l SELECTOR, not both");
    }
    if a.kube.all_namespaces && a.selector.is_none() {
        bail!("-A needs -l SELECTOR: a pod's name alone is not unique across namespaces");
    }
    check_rotation(&a)?;
    if a.window_ms == 0 && !window_given {
        let to_file = !matches!(a.write.as_deref(), None | Some("-"));
        a.window_ms = crate::merging::default_window(to_file).as_millis() as u64;
    }
    Ok(a)
}

/// `-a KEY:VALUE`, dumpcap's stop conditions: `duration:` is every pod's
/// own (each capture stops after it, with its statistics); `packets:` is
/// `-c`, across pods; `filesize:` and `files:` are the merged output's.
fn autostop(a: &mut CaptureArgs, c: &str) -> Result<()> {
    let Some((key, val)) = c.split_once(':') else {
        bail!("-a {c}: no ':': give duration:SECS, filesize:KB, files:N or packets:N");
    };
    let whole = |what: &str| -> Result<u64> {
        match val.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("-a {c}: {what} must be a whole number above 0"),
        }
    };
    match key {
        "duration" => {
            a.passthrough.push("-a".into());
            a.passthrough.push(c.to_string());
        }
        "packets" => {
            let n = whole("the number of packets")?;
            a.count = Some(a.count.map_or(n, |o| o.min(n)));
        }
        "filesize" => {
            let b = whole("the file size in kB")?
                .checked_mul(1000)
                .with_context(|| format!("-a {c}: the file size is too large"))?;
            a.max_bytes = Some(a.max_bytes.map_or(b, |o| o.min(b)));
        }
        "files" => {
            let n = u32::try_from(whole("the number of files")?)
                .map_err(|_| anyhow::anyhow!("-a {c}: the number of files is too large"))?;
            a.rotation.stop_after = Some(a.rotation.stop_after.map_or(n, |o| o.min(n)));
        }
        _ => bail!(
            "-a {c}: unknown condition {key:?}: give duration:SECS, filesize:KB, files:N or packets:N"
        ),
    }
    Ok(())
}

/// tcpdump's and dumpcap's rules for `-C`, `-G`, `-W` and `-a`.
fn check_rotation(a: &CaptureArgs) -> Result<()> {
    let r = &a.rotation;
    if r.files == Some(0) {
        bail!("-W 0: give the number of files, 1 or more");
    }
    if r.files.is_some() && !r.active() {
        bail!("-W needs -C or -G (it counts the files they make)");
    }
    if r.stop_after.is_some() && !r.active() {
        bail!("-a files:N counts the files -C or -G make: it needs -C or -G and -w FILE");
    }
    if r.active() && matches!(a.write.as_deref(), None | Some("-")) {
        bail!("-C and -G make several files: give them a name with -w FILE");
    }
    if a.max_bytes.is_some() && r.active() {
        bail!("-a filesize:KB stops one file; with -C or -G, end the capture with -a files:N");
    }
    Ok(())
}

fn pass_through(a: &mut CaptureArgs, f: &str, g: Option<&str>, w: &mut Words) -> Result<()> {
    let takes = if let Some(long) = f.strip_prefix("--") {
        PASS_LONG.contains(&long).then_some(true)
    } else {
        let c = f.chars().nth(1).unwrap_or(' ');
        PASS_SHORT.iter().find(|(s, _)| *s == c).map(|(_, v)| *v)
    };
    match takes {
        Some(true) => {
            let v = w.value(f, g)?;
            if f == "-s" {
                a.snaplen = number(f, &v)?;
            }
            a.passthrough.push(f.to_string());
            a.passthrough.push(v);
        }
        Some(false) => a.passthrough.push(f.to_string()),
        None => bail!(
            "unknown flag {f} for `kubectl netshim capture` (see `kubectl netshim capture --help`)"
        ),
    }
    Ok(())
}

fn split_positional(
    a: &mut CaptureArgs,
    pos: Vec<String>,
    after: Option<Vec<String>>,
) -> Result<()> {
    if let Some(filter) = after {
        if a.selector.is_some() {
            a.filter = pos.into_iter().chain(filter).collect();
        } else {
            a.pods = pos;
            a.filter = filter;
        }
        return Ok(());
    }
    let named: Vec<&String> = pos.iter().filter(|p| pod_word(p).is_some()).collect();
    if !named.is_empty() {
        a.pods = named
            .iter()
            .map(|p| pod_word(p).unwrap().to_string())
            .collect();
        a.filter = pos
            .iter()
            .filter(|p| pod_word(p).is_none())
            .cloned()
            .collect();
    } else if a.selector.is_none() && !pos.is_empty() {
        a.pods = vec![pos[0].clone()];
        a.filter = pos[1..].to_vec();
    } else {
        a.filter = pos;
    }
    Ok(())
}

/// `pod/NAME` or `pods/NAME`: NAME.
fn pod_word(w: &str) -> Option<&str> {
    w.strip_prefix("pod/").or_else(|| w.strip_prefix("pods/"))
}

/// Parses the words after `doctor`.
pub fn doctor(words: Vec<String>) -> Result<DoctorArgs> {
    let mut a = DoctorArgs {
        handler: "netshim".into(),
        ..Default::default()
    };
    let mut w = Words { v: words, i: 0 };
    while w.i < w.v.len() {
        let word = w.v[w.i].clone();
        if !word.starts_with('-') {
            a.pods.push(pod_word(&word).unwrap_or(&word).to_string());
            w.i += 1;
            continue;
        }
        let (flag, glued) = split_flag(&word);
        let g = glued.as_deref();
        if !kube_flag(&mut a.kube, &flag, g, &mut w)? {
            match flag.as_str() {
                "-l" | "--selector" => a.selector = Some(w.value(&flag, g)?),
                "--handler" => a.handler = w.value(&flag, g)?,
                f => bail!("unknown flag {f} for `kubectl netshim doctor`"),
            }
        }
        w.i += 1;
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(s: &str) -> CaptureArgs {
        capture(s.split_whitespace().map(String::from).collect()).unwrap()
    }

    #[test]
    fn kubectl_and_tcpdump_flags_mix() {
        let a = cap("-l app=demo -w out.pcapng -c 200 -n web tcp port 80");
        assert_eq!(a.selector.as_deref(), Some("app=demo"));
        assert_eq!(a.count, Some(200));
        assert_eq!(a.kube.namespace.as_deref(), Some("web"));
        assert_eq!(a.filter, ["tcp", "port", "80"]);
        assert!(a.pods.is_empty());
        let a = cap("web-1 -c app -s 96 -a duration:5 icmp");
        assert_eq!(a.pods, ["web-1"]);
        assert_eq!(a.container.as_deref(), Some("app"));
        assert_eq!(a.passthrough, ["-s", "96", "-a", "duration:5"]);
        assert_eq!(a.snaplen, 96);
        assert_eq!(a.filter, ["icmp"]);
        let a = cap("a b -w - -- tcp");
        assert_eq!(a.pods, ["a", "b"]);
        assert_eq!(a.filter, ["tcp"]);
        let a = cap("pod/a pod/b udp --context=x");
        assert_eq!(a.pods, ["a", "b"]);
        assert_eq!(a.filter, ["udp"]);
        assert_eq!(a.kube.context.as_deref(), Some("x"));
        let a = cap("web -w out-%H%M%S.pcapng -G 2 -W 3 -a packets:50 -a duration:9 -c 80");
        assert_eq!((a.rotation.seconds, a.rotation.files), (Some(2), Some(3)));
        assert_eq!(a.count, Some(50), "the first condition met");
        assert_eq!(a.passthrough, ["-a", "duration:9"]);
        let a = cap("web -w out -C 2 -a files:4 -a files:3");
        assert_eq!(a.rotation.size, Some(2_000_000));
        assert_eq!(a.rotation.stop_after, Some(3));
        let a = cap("web -w - -a filesize:10");
        assert_eq!(a.max_bytes, Some(10_000));
        assert_eq!(a.window_ms, 200, "a live reader's window");
        assert_eq!(cap("web -w f.pcapng").window_ms, 1000, "a file's window");
        assert_eq!(cap("web -w f --reorder-window 50").window_ms, 50);
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        let e = |s: &str| {
            capture(s.split_whitespace().map(String::from).collect())
                .unwrap_err()
                .to_string()
        };
        assert!(e("-w x").contains("name the pods"));
        assert!(e("-A web").contains("-A needs -l"));
        assert!(e("web -G 10").contains("give them a name with -w FILE"));
        assert!(e("web -w x -W 3").contains("-W needs -C or -G"));
        assert!(e("web -w x -a files:2").contains("needs -C or -G"));
        assert!(e("web -w x -C 1 -a filesize:10").contains("-a files:N"));
        assert!(e("web -w x -a bogus:1").contains("unknown condition"));
        assert!(e("web -Z x").contains("unknown flag -Z"));
        assert!(e("web -w").contains("-w needs a value"));
        assert!(e("web -w x -C 1 -W 0").contains("-W 0: give the number of files"));
        assert_eq!(
            cap("web -w x-%S -G 0").rotation.seconds,
            None,
            "tcpdump's -G 0"
        );
        assert!(e("web -w x -C 18446744073709552").contains("more bytes than a file takes"));
    }
}
