//! A VXLAN overlay between two sandbox "hosts" (network namespaces joined
//! by an underlay veth), each with a bridge and a VXLAN device, and one
//! container on each. Everything lives in namespaces this program creates;
//! the machine's own network is never touched. Run as root:
//! `cargo run --example vxlan`.

use std::process::{Command, Stdio};

use hull::netns::{BridgeConfig, NetNs, Vxlan, attach_vxlan, setup_bridge};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    if !hull_testkit::is_root() {
        eprintln!("vxlan: run as root");
        std::process::exit(1);
    }
    let h1 = NetNs::new()?;
    let h2 = NetNs::new()?;
    let (n1, n2) = (h1.netlink()?, h2.netlink()?);
    n1.create_veth("ul0", "ul0", Some(&h2))?;
    n1.add_address("ul0", "198.18.100.1/24".parse()?)?;
    n2.add_address("ul0", "198.18.100.2/24".parse()?)?;
    n1.set_up("ul0")?;
    n2.set_up("ul0")?;
    println!("underlay: host1 ul0 198.18.100.1 <-> host2 ul0 198.18.100.2");

    let subnet = "198.18.40.0/24".parse()?;
    let cfg1 = BridgeConfig::builder("hull0", subnet)
        .gateway("198.18.40.1".parse()?)
        .mtu(1450)
        .build()?;
    let cfg2 = BridgeConfig::builder("hull0", subnet)
        .gateway("198.18.40.254".parse()?)
        .mtu(1450)
        .build()?;
    attach_vxlan(
        &h1,
        &cfg1,
        &Vxlan::new("vx42", 42)
            .local("198.18.100.1".parse()?)
            .remote("198.18.100.2".parse()?)
            .underlay("ul0"),
    )?;
    attach_vxlan(
        &h2,
        &cfg2,
        &Vxlan::new("vx42", 42)
            .local("198.18.100.2".parse()?)
            .remote("198.18.100.1".parse()?)
            .underlay("ul0"),
    )?;
    println!("overlay: VNI 42, port 4789, vx42 on bridge hull0 on both hosts (MTU 1450)");

    let c1 = NetNs::new()?;
    let c2 = NetNs::new()?;
    let a1 = setup_bridge(&h1, &c1, &cfg1, "veth-c1", "198.18.40.10".parse()?)?;
    let a2 = setup_bridge(&h2, &c2, &cfg2, "veth-c2", "198.18.40.20".parse()?)?;
    println!("c1 on host1: {}   c2 on host2: {}", a1.addr(), a2.addr());

    for (from, name, to) in [(&c1, "c1", "198.18.40.20"), (&c2, "c2", "198.18.40.10")] {
        let target = to.to_string();
        let ok = from.run(move || {
            Command::new("ping")
                .args(["-c3", "-i0.2", "-W2", "-q", &target])
                .stdout(Stdio::null())
                .status()
        })??;
        println!(
            "{name} -> {to} across the overlay: {}",
            if ok.success() { "ok" } else { "FAILED" }
        );
    }

    a1.remove()?;
    a2.remove()?;
    for n in [&n1, &n2] {
        n.delete_link("vx42")?;
        n.delete_link("hull0")?;
    }
    n1.delete_link("ul0")?;
    println!("torn down");
    Ok(())
}
