//! A minimal Docker Engine API client: enough to turn a container name or ID
//! into the PID of its init process.
//!
//! netshim deliberately does not use the container's `SandboxKey`: in rootless
//! mode that path lives in the engine's own mount namespace and is an empty
//! file when seen from the host.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "cannot reach the Docker daemon at {socket}: {source}\n\
         is dockerd running for this user? For rootless Docker, start it (`dockerd-rootless.sh` or \
         `systemctl --user start docker`) and check that XDG_RUNTIME_DIR is set; otherwise set \
         DOCKER_HOST=unix:///path/to/docker.sock"
    )]
    Unreachable {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("DOCKER_HOST={0:?} is not a unix socket: netshim talks to Docker only through unix:///path/to/docker.sock")]
    UnsupportedHost(String),
    #[error(
        "no Docker container named {name:?} on the daemon at {socket}: list them with `docker ps`"
    )]
    NotFound { name: String, socket: PathBuf },
    #[error(
        "Docker container {name:?} is not running (state {state:?}): start it, then try again"
    )]
    NotRunning { name: String, state: String },
    #[error("the Docker daemon at {socket} answered {status} to {what}: {body}")]
    Api {
        socket: PathBuf,
        what: String,
        status: u16,
        body: String,
    },
    #[error("cannot understand the Docker daemon's answer to {what}: {detail}")]
    Protocol { what: String, detail: String },
}

/// Where the caller's Docker daemon listens: `$DOCKER_HOST`, else the
/// rootless socket `$XDG_RUNTIME_DIR/docker.sock` for an unprivileged user,
/// else `/var/run/docker.sock`.
pub fn default_socket() -> Result<PathBuf, DockerError> {
    socket_from(
        std::env::var("DOCKER_HOST").ok().as_deref(),
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        nix::unistd::geteuid().is_root(),
    )
}

fn socket_from(
    docker_host: Option<&str>,
    xdg_runtime_dir: Option<PathBuf>,
    root: bool,
) -> Result<PathBuf, DockerError> {
    if let Some(h) = docker_host.filter(|h| !h.is_empty()) {
        return h
            .strip_prefix("unix://")
            .map(PathBuf::from)
            .ok_or_else(|| DockerError::UnsupportedHost(h.to_string()));
    }
    if !root {
        if let Some(dir) = xdg_runtime_dir {
            return Ok(dir.join("docker.sock"));
        }
    }
    Ok(PathBuf::from("/var/run/docker.sock"))
}

/// What netshim needs to know of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub pid: i32,
    /// The image it was created from, as given (`Config.Image`).
    pub image: String,
}

/// A running container as `GET /containers/json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /containers/NAME/json`: the container's ID, name and init PID.
    pub fn inspect(&self, name: &str) -> Result<ContainerInfo, DockerError> {
        if name.is_empty() || name.contains(['/', '?', '#', '%', ' ']) {
            return Err(DockerError::NotFound {
                name: name.to_string(),
                socket: self.socket.clone(),
            });
        }
        let what = format!("GET /containers/{name}/json");
        let (status, body) = self.get(&format!("/containers/{name}/json"))?;
        match status {
            200 => {}
            404 => {
                return Err(DockerError::NotFound {
                    name: name.to_string(),
                    socket: self.socket.clone(),
                })
            }
            _ => {
                return Err(DockerError::Api {
                    socket: self.socket.clone(),
                    what,
                    status,
                    body: String::from_utf8_lossy(&body).trim().to_string(),
                })
            }
        }
        parse_inspect(name, &body).map_err(|detail| DockerError::Protocol { what, detail })?
    }

    /// `GET /containers/json`: the names of the running containers.
    pub fn list_running(&self) -> Result<Vec<String>, DockerError> {
        Ok(self.running()?.into_iter().map(|c| c.name).collect())
    }

    /// `GET /containers/json`: the running containers with their labels.
    pub fn running(&self) -> Result<Vec<Listed>, DockerError> {
        let v = self.get_json("/containers/json")?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(listed).collect())
            .unwrap_or_default())
    }

    /// `GET /info`: the runtimes the daemon has loaded, by name, with
    /// the binary each runs (`Runtimes.NAME.path`).
    pub fn runtimes(&self) -> Result<std::collections::BTreeMap<String, String>, DockerError> {
        let v = self.get_json("/info")?;
        Ok(v["Runtimes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, r)| {
                        (
                            k.clone(),
                            r["path"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `GET path`, answered 200 with JSON.
    fn get_json(&self, path: &str) -> Result<serde_json::Value, DockerError> {
        let what = format!("GET {path}");
        let (status, body) = self.get(path)?;
        if status != 200 {
            return Err(DockerError::Api {
                socket: self.socket.clone(),
                what,
                status,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| DockerError::Protocol {
            what,
            detail: e.to_string(),
        })
    }

    fn get(&self, path: &str) -> Result<(u16, Vec<u8>), DockerError> {
        let unreachable = |source| DockerError::Unreachable {
            socket: self.socket.clone(),
            source,
        };
        let mut s = UnixStream::connect(&self.socket).map_err(unreachable)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(unreachable)?;
        // HTTP/1.0 with Connection: close, so the body ends at EOF and the
        // daemon sends no chunked encoding.
        let req = format!("GET {path} HTTP/1.0\r\nHost: docker\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).map_err(unreachable)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(unreachable)?;
        parse_response(&buf).map_err(|detail| DockerError::Protocol {
            what: format!("GET {path}"),
            detail,
        })
    }
}

/// Splits an HTTP response into status and body (chunked bodies included).
fn parse_response(buf: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &buf[end + 4..];
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let nl = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_str = std::str::from_utf8(&rest[..nl]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_str:?}: {e}"))?;
        rest = &rest[nl + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

fn listed(c: &serde_json::Value) -> Option<Listed> {
    Some(Listed {
        id: c["Id"].as_str()?.to_string(),
        name: c["Names"][0].as_str()?.trim_start_matches('/').to_string(),
        image: c["Image"].as_str().unwrap_or_default().to_string(),
        labels: c["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn parse_inspect(name: &str, body: &[u8]) -> Result<Result<ContainerInfo, DockerError>, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let state = &v["State"];
    let running = state["Running"].as_bool().unwrap_or(false);
    let pid = state["Pid"].as_i64().unwrap_or(0);
    if !running || pid <= 0 {
        return Ok(Err(DockerError::NotRunning {
            name: name.to_string(),
            state: state["Status"].as_str().unwrap_or("unknown").to_string(),
        }));
    }
    Ok(Ok(ContainerInfo {
        id: v["Id"].as_str().unwrap_or_default().to_string(),
        name: v["Name"]
            .as_str()
            .unwrap_or(name)
            .trim_start_matches('/')
            .to_string(),
        pid: i32::try_from(pid).map_err(|e| e.to_string())?,
        image: v["Config"]["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_choice_follows_docker_conventions() {
        assert_eq!(
            socket_from(Some("unix:///x/d.sock"), None, false).unwrap(),
            PathBuf::from("/x/d.sock")
        );
        assert!(matches!(
            socket_from(Some("tcp://127.0.0.1:2375"), None, true),
            Err(DockerError::UnsupportedHost(_))
        ));
        assert_eq!(
            socket_from(None, Some("/run/user/1000".into()), false).unwrap(),
            PathBuf::from("/run/user/1000/docker.sock")
        );
        assert_eq!(
            socket_from(None, Some("/run/user/0".into()), true).unwrap(),
            PathBuf::from("/var/run/docker.sock")
        );
        assert_eq!(
            socket_from(Some(""), None, false).unwrap(),
            PathBuf::from("/var/run/docker.sock")
        );
    }

    #[test]
    fn plain_and_chunked_responses_parse() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(plain).unwrap(), (200, b"{\"a\":1}".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (404, b"{\"a\":1}".to_vec())
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn inspect_body_gives_pid_or_not_running() {
        let body =
            br#"{"Id":"abc","Name":"/web","State":{"Status":"running","Running":true,"Pid":4242},"Config":{"Image":"busybox"}}"#;
        let info = parse_inspect("web", body).unwrap().unwrap();
        assert_eq!(
            info,
            ContainerInfo {
                id: "abc".into(),
                name: "web".into(),
                pid: 4242,
                image: "busybox".into(),
            }
        );
        let stopped =
            br#"{"Id":"abc","Name":"/web","State":{"Status":"exited","Running":false,"Pid":0}}"#;
        let err = parse_inspect("web", stopped).unwrap().unwrap_err();
        assert!(
            err.to_string().contains("not running (state \"exited\")"),
            "{err}"
        );
    }

    #[test]
    fn a_listing_gives_names_images_and_labels() {
        let v: serde_json::Value = serde_json::from_str(
            r#"[{"Id":"abc","Names":["/p-web-1"],"Image":"nginx","Labels":{"com.docker.compose.project":"p"}},
                {"Names":["/no-id"]}]"#,
        )
        .unwrap();
        let got: Vec<Listed> = v.as_array().unwrap().iter().filter_map(listed).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "p-web-1");
        assert_eq!(got[0].image, "nginx");
        assert_eq!(got[0].labels["com.docker.compose.project"], "p");
    }

    #[test]
    fn unreachable_socket_says_what_to_do() {
        let err = Client::new("/nonexistent/docker.sock")
            .inspect("x")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot reach the Docker daemon at /nonexistent/docker.sock"),
            "{msg}"
        );
        assert!(msg.contains("DOCKER_HOST"), "{msg}");
    }
}
