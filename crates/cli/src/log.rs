//! Error and debug output: to stderr, and to the `--log` file in runc's
//! text or JSON line format (podman and conmon read the JSON one).

use std::io::Write;
use std::path::PathBuf;

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `time="..." level=error msg="..."`.
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`.
    Json,
}

/// Where messages go.
#[derive(Debug)]
pub struct Log {
    /// The `--log` file, if given.
    pub file: Option<PathBuf>,
    /// Its format.
    pub format: Format,
    /// `--debug`: debug messages are written too.
    pub debug: bool,
}

impl Log {
    /// Writes an error as runc does: with a log file, a line there and the
    /// bare message on stderr; without, a text-format line on stderr.
    pub fn error(&self, msg: &str) {
        if self.file.is_some() {
            self.write("error", msg);
            let _ = writeln!(std::io::stderr(), "{msg}");
        } else {
            let _ = writeln!(std::io::stderr(), "{}", line(Format::Text, "error", msg));
        }
    }

    /// Writes a warning to the log file, or stderr without one.
    pub fn warn(&self, msg: &str) {
        self.emit("warning", msg);
    }

    /// Writes a debug message with `--debug`.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.emit("debug", msg);
        }
    }

    fn emit(&self, level: &str, msg: &str) {
        if self.file.is_some() {
            self.write(level, msg);
        } else {
            let _ = writeln!(std::io::stderr(), "{}", line(Format::Text, level, msg));
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let line = line(self.format, level, msg);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// One log line in `format`, with the time in whole seconds (as runc).
fn line(format: Format, level: &str, msg: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let time = hull_container::rfc3339(now.as_secs(), None);
    match format {
        Format::Json => serde_json::json!({"level": level, "msg": msg, "time": time}).to_string(),
        Format::Text => format!(
            "time={} level={level} msg={}",
            serde_json::Value::from(time),
            serde_json::Value::from(msg)
        ),
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hull_container::rfc3339(now.as_secs(), Some(now.subsec_nanos()))
}
