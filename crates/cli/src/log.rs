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
    let mut time = rfc3339(now.as_secs(), 0);
    time.replace_range(19..29, "");
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
    rfc3339(now.as_secs(), now.subsec_nanos())
}

/// Seconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days to a civil date (proleptic Gregorian), after H. Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            super::rfc3339(1_709_210_096, 5),
            "2024-02-29T12:34:56.000000005Z"
        );
    }
}
