//! The interfaces of the calling thread's network namespace: which a
//! capture opens (`-i`), their names, and `-D`'s list.

use crate::CaptureError;

/// The interfaces a capture of `names` would open, in the calling thread's
/// network namespace: (display name, ifindex).
pub fn choose_interfaces(names: &[String]) -> Result<Vec<(String, i32)>, CaptureError> {
    choose(names)
}

/// Every interface of the calling thread's network namespace, by index.
pub fn interface_names() -> Vec<(i32, String)> {
    list_interfaces()
        .into_iter()
        .map(|(n, i, _, _)| (i, n))
        .collect()
}

/// The interfaces a capture can open here, as `tcpdump -D` lists them:
/// numbered, `any` among them, each with its state, in libpcap's order
/// (running first, then up, then down; loopback after the others of the
/// same state; `any` after the interfaces that are running). Only what netshim captures on is listed: no Bluetooth,
/// netfilter or D-Bus pseudo-devices.
pub fn describe_interfaces() -> Vec<String> {
    use nix::net::if_::InterfaceFlags as F;
    let seen = with_flags();
    let merit = |f: F| {
        let state = if f.contains(F::IFF_RUNNING) {
            0
        } else if f.contains(F::IFF_UP) {
            1
        } else {
            2
        };
        state * 2 + u8::from(f.contains(F::IFF_LOOPBACK))
    };
    let mut rows: Vec<(u8, String)> = Vec::new();
    for (name, _, f) in &seen {
        let mut words = Vec::new();
        if f.contains(F::IFF_UP) {
            words.push("Up");
        }
        if f.contains(F::IFF_RUNNING) {
            words.push("Running");
        }
        if f.contains(F::IFF_LOOPBACK) {
            words.push("Loopback");
        } else if f.contains(F::IFF_RUNNING) {
            words.push("Connected");
        } else if f.contains(F::IFF_UP) {
            words.push("Disconnected");
        }
        let state = if words.is_empty() {
            "none".to_string()
        } else {
            words.join(", ")
        };
        rows.push((
            merit(*f),
            format!("{} [{state}]", crate::summary::printable(name)),
        ));
    }
    // libpcap adds `any` after the interfaces, as running; a stable sort
    // keeps that order within a state.
    rows.push((
        0,
        "any (Pseudo-device that captures on all interfaces) [Up, Running]".to_string(),
    ));
    rows.sort_by_key(|r| r.0);
    rows.into_iter()
        .enumerate()
        .map(|(i, (_, text))| format!("{}.{text}", i + 1))
        .collect()
}

/// Interfaces of the current network namespace, each once, by index:
/// (name, index, flags).
fn with_flags() -> Vec<(String, i32, nix::net::if_::InterfaceFlags)> {
    let mut seen: Vec<(String, i32, nix::net::if_::InterfaceFlags)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if seen.iter().any(|x| x.0 == a.interface_name) {
                continue;
            }
            let idx = nix::net::if_::if_nametoindex(a.interface_name.as_str())
                .map(|i| i as i32)
                .unwrap_or(0);
            seen.push((a.interface_name.clone(), idx, a.flags));
        }
    }
    seen.sort_by_key(|x| x.1);
    seen
}

/// Interfaces of the current network namespace: (name, index, up, loopback).
pub(super) fn list_interfaces() -> Vec<(String, i32, bool, bool)> {
    use nix::net::if_::InterfaceFlags as F;
    with_flags()
        .into_iter()
        .map(|(n, i, f)| (n, i, f.contains(F::IFF_UP), f.contains(F::IFF_LOOPBACK)))
        .collect()
}

/// The name of interface `index` in the current network namespace
/// (`if{index}` when it has none, e.g. it went away).
pub fn interface_name(index: i32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into buf.
    let p = unsafe { libc::if_indextoname(index as libc::c_uint, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if{index}");
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Chooses the interfaces to open: (display name, ifindex).
pub(super) fn choose(names: &[String]) -> Result<Vec<(String, i32)>, CaptureError> {
    let all = list_interfaces();
    if names.is_empty() {
        let pick = all
            .iter()
            .find(|i| i.2 && !i.3)
            .or_else(|| all.iter().find(|i| i.2))
            .ok_or_else(|| CaptureError::NoInterface(all.iter().map(|i| i.0.clone()).collect()))?;
        return Ok(vec![(pick.0.clone(), pick.1)]);
    }
    let mut v = Vec::new();
    for n in names {
        if n == "any" {
            return Ok(vec![("any".into(), 0)]);
        }
        let found =
            all.iter()
                .find(|i| &i.0 == n)
                .ok_or_else(|| CaptureError::UnknownInterface {
                    name: n.clone(),
                    known: all.iter().map(|i| i.0.clone()).collect(),
                })?;
        if !v.iter().any(|(_, i)| *i == found.1) {
            v.push((found.0.clone(), found.1));
        }
    }
    Ok(v)
}
