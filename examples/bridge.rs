//! Bridge networking walk-through, entirely inside sandbox network
//! namespaces this program creates and removes (the machine's own network
//! is never touched). Run as root: `cargo run --example bridge`.
//!
//! 1. By hand, step by step: a sandbox "host" namespace with a bridge, a
//!    veth pair A/B with B created directly in a container's namespace,
//!    A attached to the bridge, B renamed eth0, an address, a default route
//!    via the bridge's address.
//! 2. With the library's bridge mode and IPAM: three containers (web, db,
//!    cache) that ping each other by the names in their /etc/hosts.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use hull::netns::{
    BridgeConfig, HostsEntry, Ipam, NetNs, Route, host_veth_name, hosts_file, setup_bridge,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    if !hull_testkit::is_root() {
        eprintln!("bridge: run as root");
        std::process::exit(1);
    }
    let state = std::env::temp_dir().join(format!("hull-bridge-example-{}", std::process::id()));
    let r = walk_through().and_then(|()| three_containers(&state));
    let _ = std::fs::remove_dir_all(&state);
    r
}

fn walk_through() -> Result<()> {
    println!("== 1. by hand ==");
    let host = NetNs::new()?;
    let ctr = NetNs::new()?;
    let h = host.netlink()?;
    h.set_up("lo")?;
    h.create_bridge("br0")?;
    h.add_address("br0", "198.18.50.1/24".parse()?)?;
    h.set_up("br0")?;
    host.enable_ip_forward()?;
    println!("host: bridge br0 198.18.50.1/24 up, ip_forward=1");

    h.create_veth("vethA", "vethB", Some(&ctr))?;
    h.attach("vethA", "br0")?;
    h.set_up("vethA")?;
    println!("host: veth vethA on br0; its peer vethB created in the container");

    let c = ctr.netlink()?;
    c.rename("vethB", "eth0")?;
    c.set_up("lo")?;
    c.add_address("eth0", "198.18.50.2/24".parse()?)?;
    c.set_up("eth0")?;
    c.add_route(&Route::default_via("198.18.50.1".parse()?))?;
    println!("container: vethB renamed eth0, 198.18.50.2/24, default via 198.18.50.1");
    for l in c.links()? {
        println!(
            "  link {:>2} {:<6} up={} mtu={:?}",
            l.index, l.name, l.up, l.mtu
        );
    }
    for a in c.addresses(None)? {
        println!("  addr {} (link {})", a.cidr, a.index);
    }
    for r in c.routes()? {
        println!("  route {r}");
    }
    println!(
        "container -> bridge: ping {}",
        ok(ping(&ctr, None, "198.18.50.1")?)
    );
    h.delete_link("vethA")?;
    h.delete_link("br0")?;
    println!("removed vethA (and eth0 with it) and br0");
    Ok(())
}

fn three_containers(state: &std::path::Path) -> Result<()> {
    println!("== 2. bridge mode, IPAM, /etc/hosts ==");
    let host = NetNs::new()?;
    let cfg = BridgeConfig::builder("hull0", "198.18.51.0/24".parse()?).build()?;
    let pool = Ipam::open(state.join("ipam"), cfg.subnet(), Some(cfg.gateway().addr()))?;
    let names = ["web", "db", "cache"];
    let mut ctrs = Vec::new();
    for n in names {
        let ns = NetNs::new()?;
        let addr = pool.allocate(n)?;
        let att = setup_bridge(&host, &ns, &cfg, &host_veth_name(n), addr.addr())?;
        println!("{n:>5}: eth0 {addr}, host side {}", att.host_veth());
        ctrs.push((n, ns, att));
    }
    std::fs::create_dir_all(state)?;
    for (n, ns, att) in &ctrs {
        let links: Vec<HostsEntry> = ctrs
            .iter()
            .filter(|(m, _, _)| m != n)
            .map(|(m, _, a)| HostsEntry::new(a.addr().addr(), m))
            .collect();
        let hosts = state.join(format!("{n}.hosts"));
        std::fs::write(&hosts, hosts_file(n, Some(att.addr().addr()), &links)?)?;
        for (m, _, _) in &ctrs {
            if m != n {
                println!(
                    "{n:>5} -> {m:<5} by name: {}",
                    ok(ping(ns, Some(&hosts), m)?)
                );
            }
        }
    }
    for (n, _, att) in ctrs {
        let addr = att.addr().addr();
        att.remove()?;
        pool.release(addr)?;
        println!("{n:>5}: removed");
    }
    host.netlink()?.delete_link("hull0")?;
    Ok(())
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "FAILED" }
}

/// `ping -c1 TARGET` inside `ns`; with `hosts`, that file is bind-mounted
/// on /etc/hosts in a mount namespace of the ping process alone.
fn ping(ns: &NetNs, hosts: Option<&std::path::Path>, target: &str) -> Result<bool> {
    let src = hosts
        .map(|h| CString::new(h.as_os_str().as_encoded_bytes()))
        .transpose()?;
    let target = target.to_string();
    let status = ns.run(move || {
        let mut cmd = Command::new("ping");
        cmd.args(["-c1", "-W2", "-q", &target])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(src) = src {
            // SAFETY: runs between fork and exec; only raw syscalls on
            // strings prepared before the fork, no allocation.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::unshare(libc::CLONE_NEWNS) != 0
                        || libc::mount(
                            c"none".as_ptr(),
                            c"/".as_ptr(),
                            std::ptr::null(),
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null(),
                        ) != 0
                        || libc::mount(
                            src.as_ptr(),
                            c"/etc/hosts".as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND,
                            std::ptr::null(),
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.status()
    })??;
    Ok(status.success())
}
