//! A process allocating past its cgroup's 64 MiB memory limit is OOM-killed;
//! the example waits for the OOM event and prints the kill count.
//!
//! Run as root: `cargo run --example cgroup_memory`. The cgroup is
//! `/hull-example-mem-<pid>` at the top of every hierarchy and is removed on
//! exit.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use hull::cgroup::{Cgroup, Controller, Layout, Limit, Resources};

const LIMIT: u64 = 64 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("hog") {
        // Wait until the parent has moved us into the cgroup.
        std::io::stdin().read_line(&mut String::new())?;
        let mut held: Vec<Vec<u8>> = Vec::new();
        for mib in 1..=1024 {
            held.push(vec![1u8; 1 << 20]);
            if mib % 16 == 0 {
                println!("  child: {mib} MiB allocated");
                std::io::stdout().flush()?;
            }
        }
        return Ok(());
    }
    let layout = Layout::detect()?;
    println!("cgroup layout: {:?}", layout.mode());
    let mut cg = Cgroup::create(
        &layout,
        &format!("/hull-example-mem-{}", std::process::id()),
    )?;
    let mut r = Resources::builder().memory_limit(LIMIT);
    // Without swap accounting memory+swap cannot be set; with it, keep the
    // child from swapping instead of being killed.
    let memsw = cg.dir_of(Controller::Memory).is_some_and(|d| {
        d.join("memory.memsw.limit_in_bytes").exists() || d.join("memory.swap.max").exists()
    });
    if memsw {
        r = r.memory_swap(Limit::Value(LIMIT));
    }
    cg.apply(&r.build()?)?;
    let mut events = cg.memory_events()?;
    println!(
        "memory limit {} MiB; starting a child that allocates 1 GiB",
        LIMIT >> 20
    );
    let mut child = Command::new(std::env::current_exe()?)
        .arg("hog")
        .stdin(Stdio::piped())
        .spawn()?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        cg.add_process(i32::try_from(child.id())?)?;
        if let Some(mut go) = child.stdin.take() {
            go.write_all(b"go\n")?;
        }
        for _ in 0..30 {
            let ev = events.wait(Some(Duration::from_secs(1)))?;
            for e in &ev {
                println!("event: {e:?}");
            }
            if ev
                .iter()
                .any(|e| matches!(e, hull::cgroup::MemoryEvent::OomKill { .. }))
            {
                break;
            }
        }
        let status = child.wait()?;
        match status.signal() {
            Some(sig) => println!("child killed by signal {sig}"),
            None => println!("child exited: {status}"),
        }
        if let Some(m) = cg.memory_stats()? {
            println!(
                "oom_kill count: {}, peak usage: {:?} bytes, limit hits: {}",
                m.oom_kill, m.max_usage, m.failcnt
            );
        }
        Ok(())
    })();
    cg.kill()?;
    let _ = child.wait();
    drop(events);
    cg.delete()?;
    result
}
