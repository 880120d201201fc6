//! Starts a long-running container, runs other commands inside it with
//! `exec`, pauses and resumes it, then stops and deletes it.
//!
//! ```text
//! cargo run --example exec
//! cargo run --example exec -- ps -ef      # the command to exec
//! ```
//!
//! Needs root.

use std::time::Duration;

use hull::container::{Container, Stdio};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cmd: Vec<String> = std::env::args().skip(1).collect();
    let cmd = if cmd.is_empty() {
        vec!["sh".into(), "-c".into(), "hostname; ps -o pid,comm".into()]
    } else {
        cmd
    };
    let mut c = Container::builder(&format!("exec-demo-{}", std::process::id()))
        .hostname("exec-demo")
        .no_cgroup()
        .init(true)
        .args(["sleep", "3600"])
        .build()?
        .create()?;
    c.start()?;
    println!("container {} running, pid {:?}", c.id(), c.pid());
    let mut child = c.exec(&cmd, [Stdio::Null, Stdio::Inherit, Stdio::Inherit])?;
    println!("exec: {}", child.wait()?);
    println!("processes (host pids): {:?}", c.processes()?);
    let status = c.stop(Duration::from_secs(2))?;
    println!("stopped: {status}");
    c.delete()?;
    Ok(())
}
