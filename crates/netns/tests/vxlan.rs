//! A VXLAN overlay between two sandbox "hosts" (network namespaces joined
//! by an underlay veth), each with a bridge and a VXLAN device: a
//! container on one reaches a container on the other.

mod common;

use common::{listen, ping, tcp_round_trip};
use hull_netns::{BridgeConfig, NetNs, Vxlan, attach_vxlan, setup_bridge};
use hull_testkit::Snapshot;

#[test]
fn containers_on_two_hosts_reach_each_other_over_vxlan() {
    require_root!();
    let before = Snapshot::take();
    {
        let h1 = NetNs::new().unwrap();
        let h2 = NetNs::new().unwrap();
        // Underlay: one veth between the two hosts.
        let n1 = h1.netlink().unwrap();
        let n2 = h2.netlink().unwrap();
        n1.create_veth("ul0", "ul0", Some(&h2)).unwrap();
        n1.add_address("ul0", "198.18.100.1/24".parse().unwrap())
            .unwrap();
        n2.add_address("ul0", "198.18.100.2/24".parse().unwrap())
            .unwrap();
        n1.set_up("ul0").unwrap();
        n2.set_up("ul0").unwrap();

        // One subnet across both hosts, each bridge with its own address.
        let subnet = "198.18.40.0/24".parse().unwrap();
        let cfg1 = BridgeConfig::builder("hullbr0", subnet)
            .gateway("198.18.40.1".parse().unwrap())
            .mtu(1450)
            .build()
            .unwrap();
        let cfg2 = BridgeConfig::builder("hullbr0", subnet)
            .gateway("198.18.40.254".parse().unwrap())
            .mtu(1450)
            .build()
            .unwrap();
        let vx = |local: &str, remote: &str| {
            Vxlan::new("vx0", 42)
                .local(local.parse().unwrap())
                .remote(remote.parse().unwrap())
                .underlay("ul0")
        };
        attach_vxlan(&h1, &cfg1, &vx("198.18.100.1", "198.18.100.2")).unwrap();
        attach_vxlan(&h2, &cfg2, &vx("198.18.100.2", "198.18.100.1")).unwrap();
        assert_eq!(
            n1.link("vx0").unwrap().controller,
            Some(n1.link("hullbr0").unwrap().index)
        );

        let c1 = NetNs::new().unwrap();
        let c2 = NetNs::new().unwrap();
        let a1 = setup_bridge(&h1, &c1, &cfg1, "veth-c1", "198.18.40.10".parse().unwrap()).unwrap();
        let a2 = setup_bridge(&h2, &c2, &cfg2, "veth-c2", "198.18.40.20".parse().unwrap()).unwrap();
        assert_eq!(c1.netlink().unwrap().link("eth0").unwrap().mtu, Some(1450));

        assert!(ping(&c1, "198.18.40.20"), "c1 on h1 -> c2 on h2");
        assert!(ping(&c2, "198.18.40.10"), "c2 on h2 -> c1 on h1");
        let l = listen(&c2, "198.18.40.20:9000");
        tcp_round_trip(&c1, l, "198.18.40.20:9000");

        a1.remove().unwrap();
        a2.remove().unwrap();
        for n in [&n1, &n2] {
            n.delete_link("vx0").unwrap();
            n.delete_link("hullbr0").unwrap();
        }
        n1.delete_link("ul0").unwrap();
        assert_eq!(n2.links().unwrap().len(), 1, "only lo left on h2");
    }
    before.assert_no_leaks(&[]);
}
