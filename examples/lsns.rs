//! Lists every namespace on the system, as `lsns` does.
//!
//! ```text
//! cargo run --example lsns
//! ```
//!
//! Run as root to see every process's namespaces.

use hull::ns::list_namespaces;

fn main() -> Result<(), hull::ns::Error> {
    println!(
        "{:>10} {:<6} {:>6} {:>7} {:>5} COMMAND",
        "NS", "TYPE", "NPROCS", "PID", "UID"
    );
    for ns in list_namespaces()? {
        println!(
            "{:>10} {:<6} {:>6} {:>7} {:>5} {}",
            ns.id.ino,
            ns.kind.to_string(),
            ns.nprocs,
            ns.pid,
            ns.uid,
            ns.command
        );
    }
    Ok(())
}
