//! A busy loop held to 10% of one CPU by a cgroup, printing its usage.
//!
//! Run as root: `cargo run --example cgroup_cpu`. The cgroup is
//! `/hull-example-cpu-<pid>` at the top of every hierarchy and is removed on
//! exit.

use std::process::Command;
use std::time::{Duration, Instant};

use hull::cgroup::{Cgroup, Layout, Resources};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("spin") {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    let layout = Layout::detect()?;
    println!("cgroup layout: {:?}", layout.mode());
    let mut cg = Cgroup::create(
        &layout,
        &format!("/hull-example-cpu-{}", std::process::id()),
    )?;
    cg.apply(&Resources::builder().cpu_quota(10_000, 100_000).build()?)?;
    let mut child = Command::new(std::env::current_exe()?).arg("spin").spawn()?;
    let pid = i32::try_from(child.id())?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        cg.add_process(pid)?;
        let start = Instant::now();
        let base = cg.cpu_stats()?.map(|c| c.usage).unwrap_or_default();
        let mut last = (start, base);
        for _ in 0..5 {
            std::thread::sleep(Duration::from_secs(1));
            let now = Instant::now();
            let cpu = cg.cpu_stats()?.unwrap_or_default();
            let pct = (cpu.usage - last.1).as_secs_f64() / (now - last.0).as_secs_f64() * 100.0;
            println!(
                "busy loop: {pct:5.1}% of a CPU (throttled {} of {} periods)",
                cpu.nr_throttled, cpu.nr_periods
            );
            last = (now, cpu.usage);
        }
        let total = (last.1 - base).as_secs_f64() / start.elapsed().as_secs_f64() * 100.0;
        println!("average: {total:.1}% (limit 10%)");
        Ok(())
    })();
    cg.kill()?;
    child.wait()?;
    cg.delete()?;
    result
}
