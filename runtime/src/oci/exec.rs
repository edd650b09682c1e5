//! `exec`: another process in a running container, under the same
//! ambient-capability policy as its init.

use super::bundle::{annotations_of, private_dir, write_private};
use super::create::keep_null_output_writable;
use super::*;

impl Runtime {
    /// `exec`: runs another process in a running container, with the same
    /// ambient-capability policy as its init. Returns its PID.
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32, OciError> {
        validate_id(id)?;
        let c = self.load(id)?;
        if c.status() != ContainerStatus::Running {
            return Err(OciError::WrongStatus {
                id: id.into(),
                status: status_name(c.status()).into(),
                what: "exec",
                need: "running",
            });
        }
        let config_path = c.bundle().join("config.json");
        let spec = read_json(&config_path)?;
        let annotations = annotations_of(&spec);
        let mut process = match &opts.process {
            Some(p) => read_json(p)?,
            None => exec_process(&spec, opts)?,
        };
        let decision = policy::apply(&self.policy, &mut process, &annotations)?;
        tracing::debug!(id, added = %policy::names(&decision.added), "exec policy applied");
        let staging = self.staging(id);
        private_dir(&staging)?;
        keep_null_output_writable()?;
        let file = staging.join(format!("exec-{}.json", std::process::id()));
        write_private(
            &file,
            &serde_json::to_vec(&process).expect("a Value serializes"),
        )?;
        let built = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.root)
            .and_then(|b| b.with_pid_file(opts.pid_file.clone()))
            .map(|b| {
                let tenant = b
                    .with_console_socket(opts.console_socket.clone())
                    .with_preserved_fds(opts.preserve_fds)
                    .with_executor(super::executor::RuncExecutor)
                    .as_tenant()
                    .with_process(Some(&file))
                    .with_detach(opts.detach);
                crate::supervise::with_default_sigpipe(|| tenant.build())
            });
        let _ = fs::remove_file(&file);
        let _ = fs::remove_dir(&staging);
        let _ = fs::remove_dir(self.root.join(".netshim"));
        let pid = built.and_then(|r| r).map_err(OciError::lc("exec", id))?;
        Ok(pid.as_raw())
    }
}

/// A process.json for `exec` without `--process`: the init's process, with
/// the arguments, environment, directory, user and capabilities given.
pub(super) fn exec_process(spec: &Value, o: &ExecOptions) -> Result<Value, OciError> {
    let mut p = spec.get("process").cloned().unwrap_or(Value::Null);
    if !p.is_object() {
        p = serde_json::json!({"user": {"uid": 0, "gid": 0}, "cwd": "/"});
    }
    if o.args.is_empty() {
        return Err(OciError::Malformed {
            path: PathBuf::from("the exec command line"),
            reason: "no command given".into(),
        });
    }
    p["args"] = serde_json::json!(o.args);
    p["terminal"] = Value::Bool(o.tty);
    if let Some(cwd) = &o.cwd {
        p["cwd"] = Value::String(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env: Vec<Value> = p
            .get("env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in &o.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|v| v.as_str().is_none_or(|s| s.split('=').next() != Some(key)));
            env.push(Value::String(e.clone()));
        }
        p["env"] = Value::Array(env);
    }
    if let Some(u) = &o.user {
        let bad = || OciError::Malformed {
            path: PathBuf::from("--user"),
            reason: format!("{u:?} is not UID[:GID]"),
        };
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (
                a.parse::<u32>().map_err(|_| bad())?,
                b.parse::<u32>().map_err(|_| bad())?,
            ),
            None => (u.parse::<u32>().map_err(|_| bad())?, 0),
        };
        p["user"] = serde_json::json!({"uid": uid, "gid": gid});
    }
    if o.no_new_privs {
        p["noNewPrivileges"] = Value::Bool(true);
    }
    if !o.caps.is_empty() {
        // As runc: --cap adds to the bounding, effective and permitted sets.
        let caps = p
            .as_object_mut()
            .expect("object")
            .entry("capabilities")
            .or_insert_with(|| serde_json::json!({}));
        for set in ["bounding", "effective", "permitted"] {
            let mut have: Vec<Value> = caps
                .get(set)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for name in &o.caps {
                let cap: crate::kernel::caps::Cap =
                    name.parse().map_err(|e: crate::kernel::caps::UnknownCap| {
                        OciError::Malformed {
                            path: PathBuf::from("--cap"),
                            reason: e.to_string(),
                        }
                    })?;
                let v = Value::String(cap.to_string());
                if !have.contains(&v) {
                    have.push(v);
                }
            }
            caps[set] = Value::Array(have);
        }
    }
    Ok(p)
}

/// Waits for a non-detached `exec` process (our child) and returns its
/// status as a shell reports it.
pub fn wait_exec(pid: i32) -> Result<i32, OciError> {
    use nix::sys::wait::waitpid;
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(ws) => match crate::supervise::exit_status(ws) {
                Some(status) => return Ok(status),
                None => continue,
            },
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(OciError::Wait(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_process_overrides_the_init_process() {
        let spec = serde_json::json!({"process": {"user": {"uid": 1000, "gid": 1000}, "args": ["sleep"],
            "env": ["PATH=/bin", "A=1"], "cwd": "/", "capabilities": {"bounding": ["CAP_NET_RAW"]}}});
        let o = ExecOptions {
            args: vec!["ping".into()],
            env: vec!["A=2".into()],
            user: Some("1001:1002".into()),
            caps: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        };
        let p = exec_process(&spec, &o).unwrap();
        assert_eq!(p["args"], serde_json::json!(["ping"]));
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "A=2"]));
        assert_eq!(p["user"]["uid"], 1001);
        assert_eq!(p["user"]["gid"], 1002);
        assert_eq!(
            p["capabilities"]["bounding"],
            serde_json::json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])
        );
        assert!(exec_process(&spec, &ExecOptions::default()).is_err());
    }
}
