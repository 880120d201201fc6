//! A shell in new PID, mount and UTS namespaces, where `ps` shows only its
//! own processes.
//!
//! ```text
//! cargo run --example ns_shell            # interactive shell
//! cargo run --example ns_shell -- -c ps   # arguments go to sh
//! ```
//!
//! Needs root. The shell is PID 1 of its namespace, its hostname is
//! `ns-shell`, and a fresh /proc is mounted in its private mount namespace,
//! so nothing changes outside.

use std::process::ExitCode;

use hull::ns::{Command, Namespaces};

fn main() -> ExitCode {
    let status = Command::new("sh")
        .args(std::env::args().skip(1))
        .env("PS1", "ns-shell# ")
        .new_namespaces(Namespaces::PID | Namespaces::MNT | Namespaces::UTS)
        .hostname("ns-shell")
        .mount_proc(true)
        .status();
    match status {
        Ok(s) => ExitCode::from(u8::try_from(s.shell_code()).unwrap_or(255)),
        Err(e) => {
            eprintln!("ns_shell: {e}");
            ExitCode::from(125)
        }
    }
}
