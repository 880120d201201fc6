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
//! ```
//!
//! Needs root. With no `--rootfs` nothing needs downloading: the host's
//! /usr is bound read-only into a fresh tmpfs root with a generated /etc.

use std::process::ExitCode;

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
            "-h" | "--help" => {
                eprintln!(
                    "usage: run [--rootfs DIR] [--hostname NAME] [-v HOST:CONTAINER[:ro]] [-e K=V] [-w DIR] [--user UID[:GID]] [--read-only] [--init] [--] CMD [ARGS...]"
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
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
