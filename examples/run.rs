//! Runs a command in new namespaces and exits with its status.
//!
//! ```text
//! cargo run --example run -- [--hostname NAME] [--net] [--init] [--] CMD [ARGS...]
//! cargo run --example run -- sh -c 'hostname; id; ps'
//! ```
//!
//! The command gets its own PID, mount, UTS and IPC namespaces (and network
//! with `--net`), a hostname, and a fresh /proc, so `ps` shows only its own
//! processes and it is PID 1 (or PID 2 under `--init`). Needs root.

use std::process::ExitCode;

use hull::ns::{Command, Namespaces};

fn main() -> ExitCode {
    let mut hostname = "hull".to_string();
    let mut ns = Namespaces::PID | Namespaces::MNT | Namespaces::UTS | Namespaces::IPC;
    let mut init = false;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.peek().cloned() {
        match a.as_str() {
            "--hostname" => {
                args.next();
                match args.next() {
                    Some(h) => hostname = h,
                    None => return usage("--hostname needs a value"),
                }
            }
            "--net" => {
                args.next();
                ns |= Namespaces::NET;
            }
            "--init" => {
                args.next();
                init = true;
            }
            "--" => {
                args.next();
                break;
            }
            "-h" | "--help" => return usage(""),
            s if s.starts_with("--") => return usage(&format!("unknown option {s}")),
            _ => break,
        }
    }
    let argv: Vec<String> = args.collect();
    let (program, rest) = match argv.split_first() {
        Some((p, r)) => (p.clone(), r.to_vec()),
        None => ("sh".to_string(), Vec::new()),
    };
    let status = Command::new(&program)
        .args(&rest)
        .new_namespaces(ns)
        .hostname(hostname)
        .mount_proc(true)
        .init(init)
        .status();
    match status {
        Ok(s) => ExitCode::from(u8::try_from(s.shell_code()).unwrap_or(255)),
        Err(e) => {
            eprintln!("run: {e}");
            ExitCode::from(125)
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("run: {problem}");
    }
    eprintln!("usage: run [--hostname NAME] [--net] [--init] [--] CMD [ARGS...]");
    ExitCode::from(if problem.is_empty() { 0 } else { 2 })
}
