//! Runs a command in a new container and exits with its status.
//!
//! ```text
//! cargo run --example run -- [OPTIONS] [--] CMD [ARGS...]
//! cargo run --example run -- sh -c 'hostname; id; ps'
//! ```
//!
//! Options:
//!
//! ```text
//!   --rootfs DIR              root file system (default: a minimal root made from the host)
//!   --hostname NAME           hostname (default: hull)
//!   -v HOST:CONTAINER[:ro]    bind mount
//!   -e KEY=VALUE              environment variable
//!   -w DIR                    working directory
//!   --user UID[:GID]          user and group inside the container
//!   --read-only               read-only root file system
//!   --init                    a minimal init as PID 1 (reaps zombies, forwards signals)
//!   --memory SIZE             memory limit, e.g. 64m or 1g
//!   --cpus N                  CPU limit in CPUs, e.g. 0.5
//!   --pids N                  most processes at once
//! ```
//!
//! With a limit, the container gets the cgroup `hull/<id>` in every
//! hierarchy (removed on exit); without one it stays in the caller's.
//!
//! Needs root. With no `--rootfs` nothing needs downloading: the host's
//! /usr is bound read-only into a fresh tmpfs root with a generated /etc.

use std::process::ExitCode;

use hull::cgroup::{Limit, Resources};
use hull::container::{Container, Mount, Rootfs};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("run: {e}");
            ExitCode::from(125)
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut b = Container::builder(&format!("run-{}", std::process::id())).hostname("hull");
    let mut limits = Resources::builder();
    let mut limited = false;
    let mut args = std::env::args().skip(1).peekable();
    let value = |args: &mut std::iter::Peekable<std::iter::Skip<std::env::Args>>, opt: &str| {
        args.next().ok_or_else(|| format!("{opt} needs a value"))
    };
    while let Some(a) = args.peek().cloned() {
        if !a.starts_with('-') {
            break;
        }
        args.next();
        match a.as_str() {
            "--" => break,
            "--rootfs" => b = b.rootfs(Rootfs::Dir(value(&mut args, &a)?.into())),
            "--hostname" => b = b.hostname(value(&mut args, &a)?),
            "-v" | "--volume" => {
                let v = value(&mut args, &a)?;
                let parts: Vec<&str> = v.split(':').collect();
                b = b.mount(match parts.as_slice() {
                    [h, c] => Mount::bind(h, c),
                    [h, c, "ro"] => Mount::bind_ro(h, c),
                    [h, c, "rw"] => Mount::bind(h, c),
                    _ => return Err(format!("-v {v}: expected HOST:CONTAINER[:ro]").into()),
                });
            }
            "-e" | "--env" => {
                let v = value(&mut args, &a)?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("-e {v}: expected KEY=VALUE"))?;
                b = b.env(k, val);
            }
            "-w" | "--workdir" => b = b.cwd(value(&mut args, &a)?),
            "--user" | "-u" => {
                let v = value(&mut args, &a)?;
                let (u, g) = v.split_once(':').unwrap_or((&v, &v));
                b = b.user(u.parse()?, g.parse()?);
            }
            "--read-only" => b = b.readonly_rootfs(true),
            "--init" => b = b.init(true),
            "--memory" | "-m" => {
                limits = limits.memory_limit(parse_size(&value(&mut args, &a)?)?);
                limited = true;
            }
            "--cpus" => {
                let cpus: f64 = value(&mut args, &a)?.parse()?;
                if !(cpus > 0.0 && cpus <= 1024.0) {
                    return Err(format!("--cpus {cpus}: expected a positive number of CPUs").into());
                }
                let period = 100_000u64;
                // Rounded to whole microseconds of quota; `cpus` was checked
                // to lie in (0, 1024], so the value is positive and small.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let quota = (cpus * 100_000.0).round().max(1000.0) as u64;
                limits = limits.cpu_quota(quota, period);
                limited = true;
            }
            "--pids" => {
                limits = limits.pids_max(Limit::Value(value(&mut args, &a)?.parse()?));
                limited = true;
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: run [--rootfs DIR] [--hostname NAME] [-v HOST:CONTAINER[:ro]] [-e K=V] [-w DIR] [--user UID[:GID]] [--read-only] [--init] [--] CMD [ARGS...]"
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    b = if limited {
        b.cgroup_parent("hull").resources(limits.build()?)
    } else {
        b.no_cgroup()
    };
    let cmd: Vec<String> = args.collect();
    if !cmd.is_empty() {
        b = b.args(cmd);
    }
    let mut c = b.build()?.create()?;
    c.start()?;
    let status = c.wait()?;
    c.delete()?;
    Ok(ExitCode::from(
        u8::try_from(status.shell_code()).unwrap_or(255),
    ))
}

/// `123`, `64k`, `64m`, `1g` (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (num, shift) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        _ => (lower.as_str(), 0),
    };
    let n: u64 = num
        .trim_end_matches(['k', 'm', 'g'])
        .parse()
        .map_err(|_| format!("--memory {s}: expected a size such as 64m"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("--memory {s}: too large"))
}
