//! Runs a command in the namespaces of a running process, like
//! `nsenter -t PID -a`.
//!
//! ```text
//! cargo run --example nsenter -- PID                 # runs `ip addr`
//! cargo run --example nsenter -- PID hostname
//! ```
//!
//! Every namespace the process does not share with the caller is joined
//! (through one setns on a pidfd where the kernel allows it). Needs root.

use std::process::ExitCode;

use hull::ns::{Command, Namespaces};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(pid) = args.next().and_then(|p| p.parse::<i32>().ok()) else {
        eprintln!("usage: nsenter PID [CMD [ARGS...]]");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    let (program, argv) = match rest.split_first() {
        Some((p, r)) => (p.clone(), r.to_vec()),
        None => ("ip".to_string(), vec!["addr".to_string()]),
    };
    let status = Command::new(&program)
        .args(&argv)
        .join_process(pid, Namespaces::all())
        .current_dir("/")
        .status();
    match status {
        Ok(s) => ExitCode::from(u8::try_from(s.shell_code()).unwrap_or(255)),
        Err(e) => {
            eprintln!("nsenter: {e}");
            ExitCode::from(125)
        }
    }
}
