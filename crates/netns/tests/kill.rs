//! A process killed in the middle of container networking leaves nothing
//! behind on the machine: everything lives in anonymous namespaces held by
//! file descriptors, which the kernel reclaims with the process.

mod common;

use std::process::Command;

use hull_netns::{BridgeConfig, NetNs, PortMapping, PortPublisher, Proto, setup_bridge};
use hull_testkit::Snapshot;

/// Not a test on its own: the body of the child killed by
/// `killed_process_leaves_nothing_behind`.
#[test]
fn kill_child_helper() {
    if std::env::var_os("HULL_NETNS_KILL_CHILD").is_none() {
        return;
    }
    let host = NetNs::new().unwrap();
    let cfg = BridgeConfig::builder("hullbr0", "198.18.70.0/24".parse().unwrap())
        .build()
        .unwrap();
    let ctr = NetNs::new().unwrap();
    let _att = setup_bridge(
        &host,
        &ctr,
        &cfg,
        "vethkill",
        "198.18.70.2".parse().unwrap(),
    )
    .unwrap();
    let p = PortPublisher::new(&host).unwrap();
    p.publish(&PortMapping::new(
        Proto::Tcp,
        8080,
        "198.18.70.2".parse().unwrap(),
        80,
    ))
    .unwrap();
    println!("READY");
    // SAFETY: kill(getpid(), SIGKILL) ends this process on the spot, as an
    // outside kill would; no guard runs.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[test]
fn killed_process_leaves_nothing_behind() {
    require_root!();
    let before = Snapshot::take();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_child_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HULL_NETNS_KILL_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("READY"),
        "child did not get set up: {out:?}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL));
    before.assert_no_leaks(&[]);
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains("hull"));
}
