//! Bridge mode on the real kernel: a sandbox "host" namespace with a
//! bridge and three containers that reach each other by address and by the
//! names in their generated /etc/hosts. Addresses from 198.18.0.0/15.

mod common;

use std::ffi::CString;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{listen, ping, tcp_round_trip};
use hull_netns::{
    BridgeConfig, Error, HostsEntry, Ipam, NetNs, host_veth_name, hosts_file, setup_bridge,
    setup_none,
};
use hull_testkit::Snapshot;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(hull_testkit::unique_name("hull-br-"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Pings `target` (a name) from inside `ns`, with `hosts` bind-mounted on
/// /etc/hosts (and an empty /etc/resolv.conf) in a private mount namespace
/// of the ping process only.
fn ping_by_name(ns: &NetNs, hosts: &std::path::Path, target: &str) -> bool {
    let src = CString::new(hosts.as_os_str().as_encoded_bytes()).unwrap();
    let target = target.to_string();
    ns.run(move || {
        let mut cmd = Command::new("ping");
        cmd.args(["-n", "-c1", "-W2", "-q", &target])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure runs between fork and exec and only makes raw
        // syscalls on strings prepared before the fork (no allocation).
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
                    // No name servers: names come from /etc/hosts or fail
                    // at once instead of timing out on the host's DNS.
                    || libc::mount(
                        c"/dev/null".as_ptr(),
                        c"/etc/resolv.conf".as_ptr(),
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
        cmd.status().map(|s| s.success()).unwrap_or(false)
    })
    .unwrap_or(false)
}

#[test]
fn bridge_with_three_containers_reaching_each_other() {
    require_root!();
    let before = Snapshot::take();
    let state = TempDir::new();
    {
        let host = NetNs::new().unwrap();
        let cfg = BridgeConfig::builder("hullbr0", "198.18.10.0/24".parse().unwrap())
            .build()
            .unwrap();
        let pool = Ipam::open(&state.0, cfg.subnet(), Some(cfg.gateway().addr())).unwrap();
        let names = ["c1", "c2", "c3"];
        let mut ctrs = Vec::new();
        for n in names {
            let ns = NetNs::new().unwrap();
            let addr = pool.allocate(n).unwrap();
            let att = setup_bridge(&host, &ns, &cfg, &host_veth_name(n), addr.addr()).unwrap();
            ctrs.push((n, ns, att));
        }
        let hn = host.netlink().unwrap();
        assert_eq!(host.sysctl("net/ipv4/ip_forward").unwrap(), "1");
        for (_, ns, att) in &ctrs {
            let l = hn.link(att.host_veth()).unwrap();
            assert_eq!(l.controller, Some(hn.link("hullbr0").unwrap().index));
            let c = ns.netlink().unwrap();
            let eth = c.link("eth0").unwrap();
            assert!(eth.up);
            assert!(!c.link_exists("hull-tmp0").unwrap());
            let routes: Vec<String> = c.routes().unwrap().iter().map(|r| r.to_string()).collect();
            assert!(
                routes.contains(&"default via 198.18.10.1 dev eth0".to_string()),
                "{routes:?}"
            );
        }

        // /etc/hosts per container, with links to the other two.
        let dir = TempDir::new();
        let mut hosts_paths = Vec::new();
        for (n, _, att) in &ctrs {
            let links: Vec<HostsEntry> = ctrs
                .iter()
                .filter(|(m, _, _)| m != n)
                .map(|(m, _, a)| HostsEntry::new(a.addr().addr(), m))
                .collect();
            let text = hosts_file(n, Some(att.addr().addr()), &links).unwrap();
            let p = dir.0.join(format!("{n}.hosts"));
            std::fs::write(&p, text).unwrap();
            hosts_paths.push(p);
        }

        for (i, (n, ns, _)) in ctrs.iter().enumerate() {
            // The gateway answers.
            assert!(ping(ns, "198.18.10.1"), "{n} -> gateway");
            for (m, _, att) in &ctrs {
                if m == n {
                    continue;
                }
                let ip = att.addr().addr().to_string();
                assert!(ping(ns, &ip), "{n} -> {m} by address {ip}");
                assert!(ping_by_name(ns, &hosts_paths[i], m), "{n} -> {m} by name");
            }
        }
        assert!(
            !ping_by_name(&ctrs[0].1, &hosts_paths[0], "c9"),
            "a name not in /etc/hosts must not resolve"
        );
        // A TCP connection across the bridge.
        let l = listen(&ctrs[2].1, "198.18.10.4:8000");
        tcp_round_trip(&ctrs[0].1, l, "198.18.10.4:8000");

        // Teardown: veths, addresses, the bridge; never waits for the
        // namespaces' destruction.
        for (n, ns, att) in ctrs {
            let veth = att.host_veth().to_string();
            let addr = att.addr().addr();
            att.remove().unwrap();
            assert!(!hn.link_exists(&veth).unwrap(), "{veth} removed at once");
            assert!(!ns.netlink().unwrap().link_exists("eth0").unwrap());
            assert!(pool.release(addr).unwrap(), "{n}");
        }
        hn.delete_link("hullbr0").unwrap();
        let left: Vec<String> = hn.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(left, ["lo"]);
        assert!(pool.allocations().unwrap().is_empty());
        assert!(!pool.state_path().exists());
    }
    before.assert_no_leaks(&[]);
}

#[test]
fn bridge_setup_errors_leave_nothing_behind() {
    require_root!();
    let host = NetNs::new().unwrap();
    let ctr = NetNs::new().unwrap();
    let cfg = BridgeConfig::builder("hullbr1", "198.18.11.0/24".parse().unwrap())
        .build()
        .unwrap();
    let outside: IpAddr = "198.18.12.5".parse().unwrap();
    assert!(matches!(
        setup_bridge(&host, &ctr, &cfg, "vethx", outside),
        Err(Error::AddressNotInSubnet { .. })
    ));
    assert!(matches!(
        setup_bridge(&host, &ctr, &cfg, "vethx", "198.18.11.1".parse().unwrap()),
        Err(Error::AddressNotInSubnet { .. })
    ));
    assert!(matches!(
        setup_bridge(
            &host,
            &ctr,
            &cfg,
            "veth_name_too_long",
            "198.18.11.2".parse().unwrap()
        ),
        Err(Error::InvalidIfName { .. })
    ));
    // The container already has an eth0: the rename fails after the veth
    // was made, and the veth is deleted again.
    ctr.netlink().unwrap().create_bridge("eth0").unwrap();
    let e = setup_bridge(&host, &ctr, &cfg, "vethx", "198.18.11.2".parse().unwrap()).unwrap_err();
    assert!(matches!(e, Error::LinkExists { .. }), "{e}");
    assert!(!host.netlink().unwrap().link_exists("vethx").unwrap());
    assert!(!ctr.netlink().unwrap().link_exists("hull-tmp0").unwrap());
}

#[test]
fn network_mode_none_has_only_loopback_up() {
    require_root!();
    let ns = NetNs::new().unwrap();
    setup_none(&ns).unwrap();
    let links = ns.netlink().unwrap().links().unwrap();
    assert_eq!(links.len(), 1);
    assert!(links[0].up && links[0].name == "lo");
    assert!(ping(&ns, "127.0.0.1"));
}

#[test]
fn release_frees_the_name_at_once_and_the_kernel_removes_the_pair() {
    require_root!();
    let host = NetNs::new().unwrap();
    let cfg = BridgeConfig::builder("hullbr2", "198.18.13.0/24".parse().unwrap())
        .build()
        .unwrap();
    let hn = host.netlink().unwrap();
    let ctr = NetNs::new().unwrap();
    let att = setup_bridge(&host, &ctr, &cfg, "vethrel", "198.18.13.2".parse().unwrap()).unwrap();
    let index = hn.link("vethrel").unwrap().index;
    att.release().unwrap();
    drop(ctr);
    // The name is free at once: a new container can take it right away.
    assert!(!hn.link_exists("vethrel").unwrap());
    let ctr2 = NetNs::new().unwrap();
    let att2 = setup_bridge(
        &host,
        &ctr2,
        &cfg,
        "vethrel",
        "198.18.13.2".parse().unwrap(),
    )
    .unwrap();
    assert!(ping(&ctr2, "198.18.13.1"));
    att2.remove().unwrap();
    // The released pair goes with the first container's namespace, in the
    // kernel's own time; the library never waited for it, the test does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while hn.link_by_index(index).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "released veth never went away"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    hn.delete_link("hullbr2").unwrap();
    assert_eq!(hn.links().unwrap().len(), 1);
}

#[test]
fn bridge_mode_with_ipv6() {
    require_root!();
    // 2001:2::/48 is IPv6's benchmarking range, the analogue of
    // 198.18.0.0/15.
    let host = NetNs::new().unwrap();
    let cfg = BridgeConfig::builder("hullbr6", "2001:2:0:1::/64".parse().unwrap())
        .build()
        .unwrap();
    assert_eq!(cfg.gateway().to_string(), "2001:2:0:1::1/64");
    let a = NetNs::new().unwrap();
    let b = NetNs::new().unwrap();
    let aa = setup_bridge(&host, &a, &cfg, "veth6a", "2001:2:0:1::a".parse().unwrap()).unwrap();
    let ab = setup_bridge(&host, &b, &cfg, "veth6b", "2001:2:0:1::b".parse().unwrap()).unwrap();
    assert_eq!(host.sysctl("net/ipv6/conf/all/forwarding").unwrap(), "1");
    let routes: Vec<String> = a
        .netlink()
        .unwrap()
        .routes()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("default via 2001:2:0:1::1 dev eth0")),
        "{routes:?}"
    );
    assert!(ping(&a, "2001:2:0:1::b"), "a -> b");
    assert!(ping(&b, "2001:2:0:1::1"), "b -> bridge");
    let l = listen(&b, "[2001:2:0:1::b]:7100");
    tcp_round_trip(&a, l, "[2001:2:0:1::b]:7100");
    aa.remove().unwrap();
    ab.remove().unwrap();
}

#[test]
fn bridge_network_endpoints_free_veth_and_address() {
    require_root!();
    let before = Snapshot::take();
    let state = TempDir::new();
    {
        let host = NetNs::new().unwrap();
        let cfg = BridgeConfig::builder("hullbr3", "198.18.14.0/29".parse().unwrap())
            .build()
            .unwrap();
        let net = hull_netns::BridgeNetwork::new(cfg, &state.0).unwrap();
        let a = NetNs::new().unwrap();
        let b = NetNs::new().unwrap();
        let ea = net.connect(&host, &a, "ctr-a").unwrap();
        let eb = net.connect(&host, &b, "ctr-b").unwrap();
        assert_eq!(ea.addr().to_string(), "198.18.14.2/29");
        assert_eq!(eb.addr().to_string(), "198.18.14.3/29");
        assert!(ping(&a, "198.18.14.3"));
        // A failed connect (the id's veth name is taken) releases its address.
        let c = NetNs::new().unwrap();
        assert!(matches!(
            net.connect(&host, &c, "ctr-a"),
            Err(Error::LinkExists { .. })
        ));
        assert_eq!(net.ipam().allocations().unwrap().len(), 2);

        let hn = host.netlink().unwrap();
        let veth_b = eb.host_veth().to_string();
        ea.remove().unwrap();
        eb.release().unwrap();
        assert!(!hn.link_exists(&veth_b).unwrap());
        assert!(net.ipam().allocations().unwrap().is_empty());
        // Drop does the same.
        let ec = net.connect(&host, &c, "ctr-c").unwrap();
        let veth_c = ec.host_veth().to_string();
        drop(ec);
        assert!(!hn.link_exists(&veth_c).unwrap());
        assert!(net.ipam().allocations().unwrap().is_empty());
    }
    before.assert_no_leaks(&[]);
}
