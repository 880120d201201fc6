//! Bridge networking for containers, all inside a sandbox network namespace
//! standing in for the host (as root; addresses from 198.18.0.0/15).

mod common;

use std::path::PathBuf;

use hull_container::hull_netns::{BridgeConfig, HostsEntry, Ipam};
use hull_container::{Container, NetworkMode, Stdio};
use hull_testkit::{in_child, is_root, unique_name};

fn output(c: &mut Container, args: &[&str]) -> (bool, String) {
    let (rd, wr) = common::pipe();
    let mut child = c
        .exec(args, [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit])
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    (child.wait().unwrap().success(), out)
}

#[test]
fn bridge_containers_reach_each_other_by_name_and_leave_nothing() {
    if !is_root() {
        return;
    }
    let dir = std::env::temp_dir().join(unique_name("hull-net-"));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    // A sandbox "host": its own network and mount namespaces.
    in_child(libc::CLONE_NEWNET | libc::CLONE_NEWNS, move || {
        let ipam_dir: PathBuf = d.join("ipam");
        let cfg = BridgeConfig::builder(
            "hullbr0",
            "198.18.5.0/24".parse().map_err(|e| format!("{e:?}"))?,
        )
        .build()
        .map_err(|e| e.to_string())?;
        let bridge = |links: Vec<HostsEntry>| NetworkMode::Bridge {
            config: cfg.clone(),
            ipam_dir: ipam_dir.clone(),
            links,
            nameservers: vec!["198.18.5.1".parse().unwrap()],
        };
        let start = |id: &str, links| -> Result<Container, String> {
            let mut c = Container::builder(id)
                .runtime_root(d.join("run"))
                .no_cgroup()
                .hostname(id)
                .network(bridge(links))
                .args(["sleep", "100"])
                .build()
                .map_err(|e| e.to_string())?
                .create()
                .map_err(|e| e.to_string())?;
            c.start().map_err(|e| e.to_string())?;
            Ok(c)
        };
        let mut a = start("web", vec![])?;
        let a_addr = a.address().ok_or("no address")?;
        let mut b = start("client", vec![HostsEntry::new(a_addr, "web")])?;
        let (ok, out) = output(
            &mut b,
            &[
                "sh",
                "-c",
                "cat /etc/hostname; ip -o -4 addr show eth0; ping -c1 -W2 web",
            ],
        );
        if !ok {
            return Err(format!("client could not reach web: {out}"));
        }
        if !out.starts_with("client\n") || !out.contains("198.18.5.") {
            return Err(format!("unexpected: {out}"));
        }
        let (ok, out) = output(&mut a, &["sh", "-c", "ip route show default"]);
        if !ok || !out.contains("via 198.18.5.1") {
            return Err(format!("no default route via the bridge: {out}"));
        }
        a.delete().map_err(|e| e.to_string())?;
        b.delete().map_err(|e| e.to_string())?;
        // Nothing left: no allocation, no veth on the sandbox host.
        let ipam = Ipam::open(&ipam_dir, cfg.subnet(), None).map_err(|e| e.to_string())?;
        let left = ipam.allocations().map_err(|e| e.to_string())?;
        if !left.is_empty() {
            return Err(format!("IPAM entries left: {left:?}"));
        }
        let links = common::leftover_links()?;
        if !links.is_empty() {
            return Err(format!("links left: {links:?}"));
        }
        Ok(())
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
