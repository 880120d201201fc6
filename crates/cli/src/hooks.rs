//! Lifecycle hooks of the runtime spec, run by the binary (the library
//! refuses `hooks` in a spec): each gets the container's state JSON on
//! stdin, its `args` (with `args[0]` as argv\[0\]), only its `env`, and its
//! `timeout` in seconds.
//!
//! Where this differs from runc: `createContainer` and `startContainer`
//! run in the runtime's namespaces (runc runs them in the container's mount
//! namespace), `createContainer` right after `createRuntime` once the
//! container's process waits at its start gate, and `startContainer` just
//! before `start` opens the gate.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Error;

/// The hooks of one kind, from the spec's `hooks` object.
pub fn of_kind<'a>(hooks: &'a Value, kind: &str) -> &'a [Value] {
    hooks[kind].as_array().map_or(&[], Vec::as_slice)
}

/// Runs the hooks of `kind` in order; the first failure stops them.
pub fn run(hooks: &Value, kind: &'static str, state: &str) -> Result<(), Error> {
    for (index, h) in of_kind(hooks, kind).iter().enumerate() {
        run_one(h, state).map_err(|problem| Error::Hook {
            kind,
            index,
            path: h["path"].as_str().unwrap_or("").to_string(),
            problem,
        })?;
    }
    Ok(())
}

fn run_one(h: &Value, state: &str) -> Result<(), String> {
    let path = h["path"].as_str().ok_or("no path")?;
    let args: Vec<&str> = h["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for e in h["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = h["timeout"]
        .as_u64()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("failed: {status}"))
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
