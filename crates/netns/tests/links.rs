//! Links, addresses and routes on the real kernel, inside namespaces the
//! tests create. Addresses come from 198.18.0.0/15 only.

mod common;

use common::{listen, ping, tcp_round_trip};
use hull_netns::{Error, IpCidr, NetNs, Route, Vxlan};
use hull_testkit::Snapshot;

fn cidr(s: &str) -> IpCidr {
    s.parse().expect("cidr")
}

#[test]
fn veth_between_two_namespaces_carries_tcp_and_ping() {
    require_root!();
    let before = Snapshot::take();
    {
        let a = NetNs::new().unwrap();
        let b = NetNs::new().unwrap();
        let na = a.netlink().unwrap();
        let nb = b.netlink().unwrap();
        na.create_veth("va", "vb", Some(&b)).unwrap();
        assert!(nb.link_exists("vb").unwrap(), "peer created in b");
        assert!(!na.link_exists("vb").unwrap());
        na.add_address("va", cidr("198.18.0.1/30")).unwrap();
        nb.add_address("vb", cidr("198.18.0.2/30")).unwrap();
        for (n, l) in [(&na, "va"), (&nb, "vb"), (&na, "lo"), (&nb, "lo")] {
            n.set_up(l).unwrap();
        }
        assert!(ping(&a, "198.18.0.2"), "ping a -> b");
        assert!(ping(&b, "198.18.0.1"), "ping b -> a");
        let l = listen(&b, "198.18.0.2:7000");
        tcp_round_trip(&a, l, "198.18.0.2:7000");
    }
    before.assert_no_leaks(&[]);
}

#[test]
fn link_operations() {
    require_root!();
    let ns = NetNs::new().unwrap();
    let other = NetNs::new().unwrap();
    let nl = ns.netlink().unwrap();

    nl.create_veth("d0", "p0", None).unwrap();
    let d = nl.link("d0").unwrap();
    assert_eq!(d.kind.as_deref(), Some("veth"));
    assert!(!d.up);
    assert_eq!(nl.link_by_index(d.index).unwrap().name, "d0");
    assert!(nl.links().unwrap().iter().any(|l| l.name == "lo"));

    nl.set_up("d0").unwrap();
    assert!(nl.link("d0").unwrap().up);
    nl.set_mtu("d0", 1400).unwrap();
    assert_eq!(nl.link("d0").unwrap().mtu, Some(1400));
    // The kernel's extended-ack text reaches the error.
    let e = nl.set_mtu("d0", 1 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    let source = std::error::Error::source(&e).expect("source");
    assert!(
        source.to_string().to_lowercase().contains("mtu"),
        "no kernel message in {source}"
    );
    nl.set_down("d0").unwrap();
    assert!(!nl.link("d0").unwrap().up);
    nl.rename("d0", "d1").unwrap();
    assert!(!nl.link_exists("d0").unwrap());
    assert_eq!(nl.link("d1").unwrap().index, d.index);

    // Bridge attach / detach.
    nl.create_bridge("br0").unwrap();
    nl.attach("d1", "br0").unwrap();
    let br = nl.link("br0").unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(nl.link("d1").unwrap().controller, Some(br.index));
    nl.detach("d1").unwrap();
    assert_eq!(nl.link("d1").unwrap().controller, None);

    // Move to another namespace.
    nl.move_to_netns("d1", &other).unwrap();
    assert!(!nl.link_exists("d1").unwrap());
    let no = other.netlink().unwrap();
    assert!(no.link_exists("d1").unwrap());
    no.delete_link("d1").unwrap();
    assert!(!no.link_exists("d1").unwrap());

    // A veth pair in one namespace: deleting one end removes both.
    nl.create_veth("v0", "v1", None).unwrap();
    assert_eq!(nl.link("v1").unwrap().kind.as_deref(), Some("veth"));
    nl.delete_link("v0").unwrap();
    assert!(!nl.link_exists("v1").unwrap());

    // VXLAN with its parameters.
    nl.create_bridge("under").unwrap();
    nl.add_address("under", cidr("198.18.9.1/24")).unwrap();
    nl.set_up("under").unwrap();
    nl.create_vxlan(
        &Vxlan::new("vx0", 4242)
            .local("198.18.9.1".parse().unwrap())
            .remote("198.18.9.2".parse().unwrap())
            .port(4790)
            .underlay("under"),
    )
    .unwrap();
    assert_eq!(nl.link("vx0").unwrap().kind.as_deref(), Some("vxlan"));
    nl.create_vxlan(
        &Vxlan::new("vx1", 7)
            .group("239.1.1.1".parse().unwrap())
            .underlay("under"),
    )
    .unwrap();
    nl.delete_link("vx0").unwrap();
    nl.delete_link("vx1").unwrap();
    ns.delete().unwrap();
}

#[test]
fn dummy_device_when_the_kernel_has_it() {
    require_root!();
    let ns = NetNs::new().unwrap();
    let nl = ns.netlink().unwrap();
    match nl.create_dummy("dm0") {
        Ok(()) => assert_eq!(nl.link("dm0").unwrap().kind.as_deref(), Some("dummy")),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            eprintln!("skipped: kernel has no dummy driver ({e})");
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn addresses_and_routes() {
    require_root!();
    let ns = NetNs::new().unwrap();
    let nl = ns.netlink().unwrap();
    nl.create_veth("d0", "p0", None).unwrap();
    nl.set_up("p0").unwrap();
    nl.set_up("d0").unwrap();
    let v4 = cidr("198.18.4.2/24");
    let v6 = cidr("2001:2::2/64");
    nl.add_address("d0", v4).unwrap();
    nl.add_address("d0", v6).unwrap();
    let addrs: Vec<IpCidr> = nl
        .addresses(Some("d0"))
        .unwrap()
        .into_iter()
        .map(|a| a.cidr)
        .collect();
    assert!(addrs.contains(&v4) && addrs.contains(&v6), "{addrs:?}");
    let e = nl.add_address("d0", v4).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");

    let default = Route::default_via("198.18.4.1".parse().unwrap());
    nl.add_route(&default).unwrap();
    let other = Route::to(cidr("198.19.0.0/16")).via("198.18.4.254".parse().unwrap());
    nl.add_route(&other).unwrap();
    let dev_route = Route::to(cidr("198.18.7.0/24")).dev("d0");
    nl.add_route(&dev_route).unwrap();
    let v6_default = Route::default_via("2001:2::1".parse().unwrap());
    nl.add_route(&v6_default).unwrap();
    let routes = nl.routes().unwrap();
    let shown: Vec<String> = routes.iter().map(|r| r.to_string()).collect();
    for want in [
        "default via 198.18.4.1 dev d0",
        "198.19.0.0/16 via 198.18.4.254 dev d0",
        "198.18.7.0/24 dev d0",
        "198.18.4.0/24 dev d0",
        "default via 2001:2::1 dev d0 metric 1024",
    ] {
        assert!(shown.iter().any(|s| s == want), "{want} not in {shown:?}");
    }
    nl.delete_route(&default).unwrap();
    nl.delete_route(&other).unwrap();
    nl.delete_route(&dev_route).unwrap();
    nl.delete_route(&v6_default).unwrap();
    let shown: Vec<String> = nl.routes().unwrap().iter().map(|r| r.to_string()).collect();
    assert!(!shown.iter().any(|s| s.starts_with("default")), "{shown:?}");

    nl.delete_address("d0", v4).unwrap();
    nl.delete_address("d0", v6).unwrap();
    assert!(
        nl.addresses(Some("d0"))
            .unwrap()
            .iter()
            .all(|a| a.cidr != v4 && a.cidr != v6)
    );
}

#[test]
fn ip_forward_is_set_inside_the_namespace_only() {
    require_root!();
    let ns = NetNs::new().unwrap();
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(ns.sysctl("net/ipv4/ip_forward").unwrap(), "0");
    ns.enable_ip_forward().unwrap();
    assert_eq!(ns.sysctl("net/ipv4/ip_forward").unwrap(), "1");
    let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(host_before, host_after);
    assert!(matches!(
        ns.set_sysctl("kernel/hostname", "x"),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn bad_input_gets_typed_errors() {
    require_root!();
    let before = Snapshot::take();
    {
        let ns = NetNs::new().unwrap();
        let other = NetNs::new().unwrap();
        let nl = ns.netlink().unwrap();
        assert!(matches!(
            nl.create_bridge("a_name_of_16_byt"),
            Err(Error::InvalidIfName { .. })
        ));
        assert!(matches!(
            nl.create_veth("ok", "a_name_of_16_byt", Some(&other)),
            Err(Error::InvalidIfName { .. })
        ));
        nl.create_bridge("dup").unwrap();
        match nl.create_veth("dup", "dup2", None) {
            Err(Error::LinkExists { name }) => assert_eq!(name, "dup"),
            r => panic!("{r:?}"),
        }
        // A veth whose peer name is taken in the target namespace.
        other.netlink().unwrap().create_bridge("taken").unwrap();
        match nl.create_veth("fresh", "taken", Some(&other)) {
            Err(Error::LinkExists { name }) => assert_eq!(name, "taken"),
            r => panic!("{r:?}"),
        }
        assert!(
            !nl.link_exists("fresh").unwrap(),
            "nothing left after error"
        );
        assert!(matches!(
            "198.18.0.1/40".parse::<IpCidr>(),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(matches!(
            nl.set_up("missing0"),
            Err(Error::LinkNotFound { .. })
        ));
        nl.set_up("dup").unwrap();
        nl.add_address("dup", cidr("198.18.1.2/24")).unwrap();
        match nl.add_route(&Route::default_via("198.18.2.1".parse().unwrap())) {
            Err(Error::GatewayUnreachable { gateway }) => {
                assert_eq!(gateway.to_string(), "198.18.2.1")
            }
            r => panic!("{r:?}"),
        }
        match hull_netns::BridgeConfig::builder("br0", cidr("198.18.1.0/24"))
            .gateway("198.18.2.1".parse().unwrap())
            .build()
        {
            Err(Error::GatewayOutsideSubnet { gateway, subnet }) => {
                assert_eq!(
                    (gateway.to_string(), subnet.as_str()),
                    ("198.18.2.1".into(), "198.18.1.0/24")
                )
            }
            r => panic!("{r:?}"),
        }
        match NetNs::open_named("hull-no-such-netns") {
            Err(Error::OpenNetns { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT))
            }
            r => panic!("{r:?}"),
        }
        assert!(matches!(
            NetNs::open_named("../etc"),
            Err(Error::InvalidNetnsName { .. })
        ));
        assert!(matches!(
            nl.create_vxlan(&Vxlan::new("vx0", 1 << 24)),
            Err(Error::InvalidConfig { .. })
        ));
    }
    before.assert_no_leaks(&[]);
}

#[test]
fn named_netns_as_ip_netns_keeps_them() {
    require_root!();
    hull_testkit::in_child(hull_testkit::CLONE_NEWNS, || {
        // A private /run for this child's mount namespace only.
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs", "/run"])
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("mount tmpfs on /run".into());
        }
        let before = Snapshot::take();
        let ns = NetNs::create_named("hulltest").map_err(|e| e.to_string())?;
        if !std::path::Path::new("/run/netns/hulltest").exists() {
            return Err("no /run/netns/hulltest".into());
        }
        // iproute2 sees it and can work inside it.
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", "hulltest", "ip", "-o", "link", "show", "lo",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("ip netns exec: {out:?}"));
        }
        match NetNs::create_named("hulltest") {
            Err(Error::NetnsExists { .. }) => {}
            r => return Err(format!("duplicate: {r:?}")),
        }
        let again = NetNs::open_named("hulltest").map_err(|e| e.to_string())?;
        again
            .netlink()
            .map_err(|e| e.to_string())?
            .create_bridge("d0")
            .map_err(|e| e.to_string())?;
        if !ns
            .netlink()
            .map_err(|e| e.to_string())?
            .link_exists("d0")
            .map_err(|e| e.to_string())?
        {
            return Err("same namespace not seen through both handles".into());
        }
        drop(again);
        ns.delete().map_err(|e| e.to_string())?;
        if std::path::Path::new("/run/netns/hulltest").exists() {
            return Err("still there after delete".into());
        }
        // A persisted one outlives its handle until delete_named.
        let fd = NetNs::create_named("kept")
            .map_err(|e| e.to_string())?
            .persist();
        drop(fd);
        NetNs::open_named("kept").map_err(|e| e.to_string())?;
        NetNs::delete_named("kept").map_err(|e| e.to_string())?;
        let after = Snapshot::take();
        // /run/netns itself became a (shared) mount point, as with iproute2.
        let mut expected = before.clone();
        expected.mounts = after.mounts.clone();
        expected.assert_unchanged(&after);
        if !after.netns.is_empty() {
            return Err(format!("left: {:?}", after.netns));
        }
        Ok(())
    });
}
