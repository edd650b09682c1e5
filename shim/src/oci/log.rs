//! The `--log` file containerd's shim and dockerd read errors back from, in
//! runc's formats (`--log-format text|json`).

use super::*;
use std::os::unix::fs::OpenOptionsExt;

/// Writes log records to the `--log` file as runc does: JSON lines
/// `{"level","msg","time"}` (containerd's shim takes the last error's msg)
/// or logrus-style text.
struct FileLog {
    file: Mutex<std::fs::File>,
    json: bool,
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FileLog {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut m = Message(String::new());
        event.record(&mut m);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = if self.json {
            serde_json::json!({"level": level, "msg": m.0.trim(), "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={:?}", m.0.trim())
        };
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The `--log` file and its length when this command opened it: what was
/// appended since is this command's (and its children's) record.
static OPENED: std::sync::OnceLock<(std::path::PathBuf, u64)> = std::sync::OnceLock::new();

/// The most telling error libcontainer's forked processes (the container's
/// init, before it runs the user's process) wrote to the log file during
/// this command: they report only a summary to this process ("failed to
/// prepare rootfs"), and their own record has the cause. The first error
/// record with a debug-printed cause (`err=`), else the first error.
pub(super) fn child_error_detail(summary: &str) -> Option<String> {
    let (path, start) = OPENED.get()?;
    let mut f = std::fs::File::open(path).ok()?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*start)).ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text).ok()?;
    let errors: Vec<String> = text.lines().filter_map(error_msg).collect();
    let pick = errors
        .iter()
        .find(|m| m.contains(" err="))
        .or_else(|| errors.first())?;
    (!summary.contains(pick.as_str())).then(|| pick.clone())
}

/// The message of an error record, in either format.
fn error_msg(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return (v["level"] == "error").then(|| v["msg"].as_str().map(String::from))?;
    }
    let (_, rest) = line.split_once(" level=error msg=")?;
    Some(rest.trim().trim_matches('"').replace("\\\"", "\""))
}

pub(super) fn init_logging(cli: &OciCli) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let default = if cli.debug {
        "debug"
    } else {
        "info,libcontainer=warn,libcgroups=warn"
    };
    let filter = EnvFilter::try_from_env("NETSHIM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    match &cli.log {
        Some(path) => {
            // runc's mode for its log; containerd reads it as the same user.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = OPENED.set((path.clone(), len));
            let layer = FileLog {
                file: Mutex::new(file),
                json: cli.log_format == "json",
            };
            tracing_subscriber::registry()
                .with(layer.with_filter(filter))
                .init();
        }
        None => {
            // Without a log file, stderr gets warnings only: stdout carries
            // state JSON, and a container's stderr may be ours.
            let filter = EnvFilter::try_from_env("NETSHIM_LOG").unwrap_or_else(|_| {
                EnvFilter::new(if cli.debug {
                    "debug"
                } else {
                    "warn,libcontainer=off,libcgroups=off"
                })
            });
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .log_internal_errors(false)
                .init();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_records_are_read_in_both_formats() {
        let json = r#"{"level":"error","msg":"failed to prepare rootfs err=Mount(x)","time":"t"}"#;
        assert_eq!(
            error_msg(json).as_deref(),
            Some("failed to prepare rootfs err=Mount(x)")
        );
        assert_eq!(
            error_msg(r#"{"level":"warning","msg":"m","time":"t"}"#),
            None
        );
        let text = r#"time="t" level=error msg="a \"quoted\" cause""#;
        assert_eq!(error_msg(text).as_deref(), Some(r#"a "quoted" cause"#));
        assert_eq!(error_msg(r#"time="t" level=info msg="m""#), None);
    }
}
