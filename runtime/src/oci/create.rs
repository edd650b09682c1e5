//! `create`: the policy applied to the spec, the container built by
//! libcontainer from the bundle (or netshim's changed copy shown over it),
//! then checked before anything runs.

use super::bundle::{
    annotations_of, bind_cgroup_view, creates_netns, lists_mount_namespace, private_dir,
    write_private,
};
use super::cgroups::{
    clean_cgroups_path, disable_oom_killer, v2_absolute, write_out_v1_cgroup_mounts, ExtraCgroups,
};
use super::*;

/// Checks what the kernel shows for a created (not yet started) process:
/// its ambient set holds every capability netshim added. The spec's own
/// sets are libcontainer's to apply, as runc applies them, and are not
/// checked here.
pub(super) fn verify_ambient(id: &str, pid: i32, decision: &Decision) -> Result<(), OciError> {
    if decision.root || decision.added.is_empty() {
        return Ok(());
    }
    let creds = ProcCreds::read(pid).map_err(|source| OciError::ReadCreds {
        id: id.into(),
        source,
    })?;
    let want = CapMask::of(&decision.added);
    if creds.amb.0 & want.0 != want.0 {
        return Err(OciError::AmbientMismatch {
            id: id.into(),
            want: want.to_string(),
            got: creds.amb.to_string(),
        });
    }
    tracing::debug!(id, pid, ambient = %creds.amb, "ambient set verified");
    Ok(())
}

/// Sets `lo` up in the network namespace of `pid`, as runc does for a
/// network namespace it creates. Kernel rules: `setns(CLONE_NEWNET)` on one
/// thread needs CAP_SYS_ADMIN over the namespace's owner and changes only
/// that thread; SIOCSIFFLAGS needs CAP_NET_ADMIN over the socket's
/// namespace, which the runtime (root, or root of the owning rootless user
/// namespace) holds.
pub(super) fn loopback_up(pid: i32) -> Result<(), Errno> {
    let ns = fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO))?;
    std::thread::spawn(move || -> Result<(), Errno> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own;
        // the socket is a valid descriptor for the call's duration.
        unsafe {
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
                return Err(Errno::last());
            }
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
                return Err(Errno::last());
            }
        }
        Ok(())
    })
    .join()
    .unwrap_or(Err(Errno::EIO))
}

/// See [`crate::supervise::discarding_output`].
pub(super) fn keep_null_output_writable() -> Result<(), OciError> {
    crate::supervise::keep_null_output_writable().map_err(|source| OciError::Write {
        path: PathBuf::from("/dev/zero, as stdout or stderr"),
        source,
    })
}

impl Runtime {
    /// `create`: reads the bundle, applies the ambient-capability policy to
    /// a copy of its config.json, creates the container with libcontainer,
    /// checks the ambient set and brings up loopback.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container, OciError> {
        validate_id(id)?;
        self.create_inner(id, opts, true)
    }

    pub(super) fn create_inner(
        &self,
        id: &str,
        opts: &CreateOptions,
        detach: bool,
    ) -> Result<Container, OciError> {
        validate_id(id)?;
        // What libcontainer creates (the state directory and files, the pid
        // file) takes this process's umask, and so does the container's init
        // unless the spec sets `process.user.umask`: runc's init uses 022
        // then, so the caller's umask (000, say) must not leave state others
        // can write. The state is then set to runc's modes (0711, 0600).
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        if self.root.join(id).exists() {
            return Err(OciError::Exists(id.into()));
        }
        let bundle = fs::canonicalize(&opts.bundle).map_err(|source| OciError::Read {
            path: opts.bundle.clone(),
            source,
        })?;
        let config_path = bundle.join("config.json");
        let mut spec = read_json(&config_path)?;
        if !spec.is_object() {
            return Err(OciError::Malformed {
                path: config_path,
                reason: "the top level is not an object".into(),
            });
        }
        let annotations = annotations_of(&spec);
        let original = spec.clone();
        // runc runs a spec without `process` as far as `create`; libcontainer
        // needs one to build the init, so the policy sees an empty object.
        let decision = match spec.get_mut("process") {
            Some(process) => policy::apply(&self.policy, process, &annotations)?,
            None => Decision::default(),
        };
        if !decision.skipped_defaults.is_empty() {
            tracing::info!(id, skipped = %policy::names(&decision.skipped_defaults),
                "runtime default ambient capabilities left out: not in the container's bounding set");
        }
        tracing::debug!(id, added = %policy::names(&decision.added), root = decision.root, "policy applied");
        // runc's cgroupfs driver puts a container without `cgroupsPath` at
        // `<id>` (relative); libcontainer would use `:youki:<id>`.
        if privileged() && !self.systemd_cgroup && spec.pointer("/linux/cgroupsPath").is_none() {
            if let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) {
                linux.insert("cgroupsPath".into(), Value::String(id.to_string()));
            }
        }
        // runc cleans cgroupsPath for its cgroupfs driver so that `..` cannot
        // climb out of a hierarchy; everything below, libcontainer included,
        // sees the cleaned path.
        if !self.systemd_cgroup {
            if let Some(p) = spec.pointer_mut("/linux/cgroupsPath") {
                if let Some(given) = p.as_str() {
                    let cleaned = clean_cgroups_path(given);
                    // libcgroups maps "/" and "." to the hierarchy's root
                    // itself, and on delete kills every process in the
                    // cgroup it joined: the whole host. runc would put the
                    // container there and leave the root alone; netshim
                    // refuses (docs/runtime.md lists the difference).
                    if cleaned == "/" || cleaned == "." {
                        return Err(OciError::Cgroup {
                            id: id.into(),
                            reason: format!(
                                "linux.cgroupsPath {given:?} names the root of the cgroup hierarchies; give a path below it (or none: netshim then uses the container ID)"
                            ),
                        });
                    }
                    let placed = v2_absolute(&cleaned)
                        .filter(|_| privileged() && !self.cgroup_view)
                        .unwrap_or(cleaned);
                    if placed != given {
                        tracing::debug!(id, given, placed, "cgroupsPath cleaned");
                        *p = Value::String(placed);
                    }
                }
            }
        }
        // libcontainer parses it again; parse here first for a clear message.
        if let Err(e) = serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone()) {
            return Err(OciError::Malformed {
                path: config_path,
                reason: e.to_string(),
            });
        }
        let new_netns = creates_netns(&spec);
        if self.cgroup_view {
            bind_cgroup_view(&mut spec);
        } else if privileged() && !self.systemd_cgroup {
            if let Some(p) = spec.pointer("/linux/cgroupsPath").and_then(Value::as_str) {
                let p = PathBuf::from(p);
                write_out_v1_cgroup_mounts(&mut spec, &p);
            }
        }

        let staging = self.staging(id);
        let result = (|| {
            // libcontainer reads BUNDLE/config.json. When netshim changed
            // nothing, it reads the bundle itself; otherwise the changed copy.
            let read_from = if spec == original {
                bundle.clone()
            } else {
                self.stage(id, &bundle, &mut spec)?
            };
            keep_null_output_writable()?;
            // runc runs in the bundle: relative mount sources and hook
            // paths resolve against it.
            std::env::set_current_dir(&bundle).map_err(|source| OciError::Read {
                path: bundle.clone(),
                source,
            })?;
            let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
                .with_root_path(&self.root)
                .map_err(OciError::lc("create", id))?
                .with_pid_file(opts.pid_file.clone())
                .map_err(OciError::lc("create", id))?
                .with_console_socket(opts.console_socket.clone())
                .with_preserved_fds(opts.preserve_fds)
                .with_executor(super::executor::RuncExecutor)
                .validate_id()
                .map_err(OciError::lc("create", id))?;
            let cgroup_path = spec
                .pointer("/linux/cgroupsPath")
                .and_then(Value::as_str)
                .filter(|_| privileged() && !self.systemd_cgroup)
                .map(PathBuf::from);
            let extra = match &cgroup_path {
                Some(p) => ExtraCgroups::enter(p).map_err(|reason| {
                    ExtraCgroups::remove(p);
                    OciError::Cgroup {
                        id: id.into(),
                        reason,
                    }
                }),
                None => Ok(ExtraCgroups { back: Vec::new() }),
            };
            let built = extra.and_then(|extra| {
                let built = crate::supervise::with_default_sigpipe(|| {
                    builder
                        .as_init(&read_from)
                        .with_systemd(self.systemd_cgroup)
                        .with_detach(detach)
                        .with_no_pivot(opts.no_pivot)
                        .build()
                })
                .map_err(OciError::lc("create", id));
                extra.leave();
                built
            });
            let mut container = match built {
                Ok(c) => c,
                Err(e) => {
                    if let Some(p) = &cgroup_path {
                        ExtraCgroups::remove(p);
                    }
                    return Err(e);
                }
            };
            if let Err(source) = crate::statedir::tighten_container_state(&self.root.join(id)) {
                let _ = container.delete(true);
                return Err(OciError::Write {
                    path: self.root.join(id),
                    source,
                });
            }
            if read_from != bundle {
                // Record the real bundle: `state`, later hooks and `exec`
                // (which re-reads the spec) use it.
                container.state.bundle = bundle.clone();
                container.save().map_err(OciError::lc("create", id))?;
            }
            let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
            let checked = verify_ambient(id, pid, &decision);
            let checked = checked
                .and_then(|()| -> Result<(), OciError> {
                    let cgroup = |reason| OciError::Cgroup {
                        id: id.into(),
                        reason,
                    };
                    disable_oom_killer(&spec, pid).map_err(cgroup)
                })
                .and_then(|()| {
                    if new_netns {
                        loopback_up(pid).map_err(|source| OciError::Loopback {
                            id: id.into(),
                            source,
                        })
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = checked {
                let _ = container.delete(true);
                return Err(e);
            }
            tracing::info!(id, pid, added = %policy::names(&decision.added), "created");
            Ok(container)
        })();
        let _ = crate::statedir::remove_tree(&staging);
        // Empty unless another create is under way: runc leaves nothing.
        let _ = fs::remove_dir(self.root.join(STAGING));
        result
    }

    /// Writes the changed spec where libcontainer will read it and returns
    /// the directory to give it. First choice: the copy shown over
    /// `BUNDLE/config.json` in a mount namespace of this process's own, so
    /// that libcontainer, hooks and `state` see the real bundle, as with
    /// runc. Where that cannot be done (no CAP_SYS_ADMIN over this mount
    /// namespace) or must not be (the spec lists no mount namespace, so the
    /// container gets this process's), the staging directory itself, with
    /// the root made absolute; hooks run during `create` then see the
    /// staging directory as `bundle`.
    pub(super) fn stage(
        &self,
        id: &str,
        bundle: &Path,
        spec: &mut Value,
    ) -> Result<PathBuf, OciError> {
        let staging = self.staging(id);
        private_dir(&staging)?;
        let copy = staging.join("config.json");
        write_private(
            &copy,
            &serde_json::to_vec(&*spec).expect("a Value serializes"),
        )?;
        // A spec that lists no mount namespace runs in the caller's (the
        // runtime spec: an unlisted namespace is inherited), and
        // libcontainer forks the init from this process: it must not move
        // into a mount namespace of its own. (Giving the init the caller's
        // by path instead would make libcontainer `pivot_root` in it,
        // which moves the root of every process there that shares it.)
        if !lists_mount_namespace(spec) {
            tracing::debug!(
                id,
                "no mount namespace in the spec: hooks will see bundle {}",
                staging.display()
            );
        } else {
            match crate::privilege::enter::show_file_over(&copy, &bundle.join("config.json")) {
                Ok(()) => return Ok(bundle.to_path_buf()),
                Err(e) => tracing::warn!(
                    id,
                    "cannot show the changed spec at the bundle's path ({e}); hooks will see bundle {}",
                    staging.display()
                ),
            }
        }
        let root = spec
            .pointer("/root/path")
            .and_then(Value::as_str)
            .map(|r| bundle.join(r).to_string_lossy().into_owned());
        if let Some(root) = root {
            spec["root"]["path"] = Value::String(root);
        }
        write_private(
            &copy,
            &serde_json::to_vec(&*spec).expect("a Value serializes"),
        )?;
        Ok(staging)
    }
}
