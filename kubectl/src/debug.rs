//! One pod's part: the debug container (an ephemeral container of
//! netshim's image that only sleeps), the capture started in it through
//! the exec subresource once it runs, and the capture's end.
//!
//! The capture runs under a small `sh` script: it starts `netshim capture
//! -w -` with the exec's stdout and watches the exec's stdin. The plugin
//! stops the capture by writing the line `stop` there; when the exec's
//! stream goes away instead (the plugin was killed, the network cut), the
//! stdin ends. Either way the script sends the capture SIGINT, so it ends
//! with its statistics, its stream whole, and no capture outlives the
//! plugin. (One stream for both: no second exec, no second connection
//! through the API server, no PID to trust.) The container's `sleep` bounds
//! whatever is left; it writes nothing, so nothing reaches the container's
//! log.
//!
//! The container's own process is a small `sh` ([`INIT`]) around that
//! `sleep`. When the pod goes away (deleted, evicted, its node drained)
//! the kubelet sends it SIGTERM; it sends the captures of this container
//! SIGINT and waits up to 5 s for them, so each ends with its statistics
//! while the kubelet's grace period runs (at least 2 s). When the app's
//! first process ends first, the kernel kills every process of the PID
//! namespace the captures share with it (pid_namespaces(7)); the merge
//! then writes their interfaces' statistics itself, saying so.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess, Patch, PatchParams};

use crate::cluster::{api_error, Target};

/// The debug container's security context: examples/kubernetes/
/// debug-netshim.json (Pod Security `baseline` admits it, netshim grants
/// NET_RAW ambient to it), as UID and GID `id` ([`debug_id`]).
pub fn security_context(id: i64) -> serde_json::Value {
    serde_json::json!({
        "runAsNonRoot": true,
        "runAsUser": id,
        "runAsGroup": id,
        "allowPrivilegeEscalation": false,
        "privileged": false,
        "capabilities": {"drop": [
            "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
            "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"
        ]},
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

/// The first of the debug container's UIDs, and how many there are.
const IDS: (i64, i64) = (20000, 40000);

/// The debug container's UID and GID: a random one of [`IDS`] that the
/// pod names nowhere (`avoid`). Not 65534, nor any UID of the app: its
/// processes share the app's PID namespace, and an app of the same UID
/// (65534 with NET_RAW ambient is what Pod Security `baseline` admits and
/// netshim grants) could signal them — SIGKILL the capture's lifeline,
/// SIGSTOP the capture — and reach their `/proc` files. An app cannot
/// change its UID to this one: it is fixed when the app starts, and the
/// app holds no SETUID (an app that can become root reaches anything
/// anyway). An image's USER is not in the spec; one of [`IDS`] is rare.
pub fn debug_id(avoid: &[i64]) -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let start = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % IDS.1 as u64;
    (0..IDS.1)
        .map(|k| IDS.0 + (start as i64 + k) % IDS.1)
        .find(|id| !avoid.contains(id))
        .unwrap_or(IDS.0 + start as i64)
}

/// A name for this run's debug containers: `netshim-` and five letters.
pub fn container_name() -> String {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    let mut s = String::from("netshim-");
    for _ in 0..5 {
        s.push((b'a' + (x % 26) as u8) as char);
        x /= 26;
    }
    s
}

/// The debug container's process, `$1` its lifetime in seconds (see the
/// module's documentation). Its captures are the processes named
/// `netshim` it owns (`test -O` on /proc/PID: the same UID, its own
/// ([`debug_id`])); with no capability but NET_RAW it cannot signal
/// anyone else's.
const INIT: &str = r#"ours() { for d in /proc/[0-9]*; do [ -O "$d" ] && [ "$(cat "$d/comm" 2>/dev/null)" = netshim ] && echo "${d#/proc/}"; done; }
end() {
  kill -INT $(ours) 2>/dev/null
  i=0
  while [ -n "$(ours)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill $s 2>/dev/null
  exit 0
}
trap end TERM INT HUP
sleep "$1" &
s=$!
wait $s"#;

/// Adds the debug container `name` to `t`'s pod.
pub async fn add(api: &Api<Pod>, t: &Target, name: &str, image: &str, lifetime: u64) -> Result<()> {
    let ec = serde_json::json!({
        "name": name,
        "image": image,
        "command": ["sh", "-c", INIT, "netshim-debug", lifetime.to_string()],
        "targetContainerName": t.container,
        "stdin": false,
        "tty": false,
        "terminationMessagePolicy": "File",
        "securityContext": security_context(debug_id(&t.ids)),
    });
    let patch = serde_json::json!({"spec": {"ephemeralContainers": [ec]}});
    api.patch_ephemeral_containers(&t.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot add the debug container to {}: {}",
                t.label(),
                api_error(&e)
            )
        })?;
    Ok(())
}

/// Waits until the debug container `name` runs.
pub async fn wait_running(api: &Api<Pod>, t: &Target, name: &str, secs: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let p = api
            .get(&t.name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read {}: {}", t.label(), api_error(&e)))?;
        let st = p
            .status
            .and_then(|s| s.ephemeral_container_statuses)
            .and_then(|v| v.into_iter().find(|c| c.name == name));
        if let Some(state) = st.and_then(|s| s.state) {
            if state.running.is_some() {
                return Ok(());
            }
            if let Some(term) = state.terminated {
                bail!(
                    "the debug container of {} ended before the capture began: {}",
                    t.label(),
                    crate::show::line(&format!(
                        "{} {}",
                        term.reason.unwrap_or_default(),
                        term.message.unwrap_or_default()
                    ))
                );
            }
            if let Some(w) = state.waiting {
                let reason = w.reason.unwrap_or_default();
                if reason != "ContainerCreating"
                    && reason != "PodInitializing"
                    && !reason.is_empty()
                {
                    bail!(
                        "the debug container of {} does not start: {reason}: {}",
                        t.label(),
                        w.message.unwrap_or_default()
                    );
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the debug container of {} did not run within {secs} s",
                t.label()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The script the capture runs under (see the module's documentation);
/// `$@` are netshim capture's arguments.
const SCRIPT: &str = r#"exec 3<&0
netshim capture -w - "$@" </dev/null &
p=$!
{ while read -r l; do [ "$l" = stop ] && break; done <&3; kill -INT $p; } >/dev/null 2>&1 &
w=$!
exec 3<&-
wait $p
s=$?
kill $w 2>/dev/null
exit $s"#;

/// Starts `netshim capture -w - ARGS` in the debug container `name`.
pub async fn exec_capture(
    api: &Api<Pod>,
    t: &Target,
    name: &str,
    args: &[String],
) -> Result<AttachedProcess> {
    let mut cmd: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "netshim-capture".into(),
    ];
    cmd.extend(args.iter().cloned());
    let ap = AttachParams::default()
        .container(name)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(1 << 20);
    api.exec(&t.name, cmd, &ap).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot start the capture in {}: {}",
            t.label(),
            api_error(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{debug_id, IDS};

    #[test]
    fn the_debug_id_is_none_the_pod_names() {
        let all_but_one: Vec<i64> = (IDS.0..IDS.0 + IDS.1).filter(|i| *i != 31337).collect();
        assert_eq!(debug_id(&all_but_one), 31337);
        let seen: std::collections::BTreeSet<i64> = (0..50).map(|_| debug_id(&[65534])).collect();
        assert!(seen.len() > 40, "{seen:?}");
        assert!(seen.iter().all(|i| (IDS.0..IDS.0 + IDS.1).contains(i)));
    }
}
