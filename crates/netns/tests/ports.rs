//! Port publishing with nftables DNAT inside a sandbox "host" namespace:
//! a client namespace, the host itself and the container (hairpin) reach
//! the container's listener through the host's address and published
//! port; removing the last mapping removes hull's table.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use hull_netns::{
    BridgeConfig, Error, NetNs, PortMapping, PortPublisher, Proto, host_veth_name, setup_bridge,
};
use hull_testkit::Snapshot;

fn echo_server(l: TcpListener, n: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..n {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).expect("read");
            s.write_all(&buf).expect("write");
        }
    })
}

fn connect(ns: &NetNs, addr: &str) -> std::io::Result<()> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut s = ns
        .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(3)))
        .unwrap()?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf)?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

fn nft_tables(ns: &NetNs) -> String {
    ns.run(|| Command::new("nft").args(["list", "tables"]).output())
        .unwrap()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap()
}

#[test]
fn published_port_reaches_the_container_and_is_removed_with_its_table() {
    require_root!();
    let before = Snapshot::take();
    {
        let host = NetNs::new().unwrap();
        let ctr = NetNs::new().unwrap();
        let client = NetNs::new().unwrap();
        let cfg = BridgeConfig::builder("hullbr0", "198.18.21.0/24".parse().unwrap())
            .build()
            .unwrap();
        let att = setup_bridge(
            &host,
            &ctr,
            &cfg,
            &host_veth_name("p1"),
            "198.18.21.2".parse().unwrap(),
        )
        .unwrap();
        // The client is another machine on the host's uplink.
        let h = host.netlink().unwrap();
        h.create_veth("up0", "eth0", Some(&client)).unwrap();
        h.add_address("up0", "198.18.22.1/24".parse().unwrap())
            .unwrap();
        h.set_up("up0").unwrap();
        let c = client.netlink().unwrap();
        c.add_address("eth0", "198.18.22.2/24".parse().unwrap())
            .unwrap();
        c.set_up("eth0").unwrap();
        c.set_up("lo").unwrap();
        h.set_up("lo").unwrap();

        let pubr = PortPublisher::new(&host).unwrap();
        let tcp = PortMapping::new(Proto::Tcp, 8080, "198.18.21.2".parse().unwrap(), 80);
        let udp = PortMapping::new(Proto::Udp, 5353, "198.18.21.2".parse().unwrap(), 53);
        pubr.publish(&tcp).unwrap();
        pubr.publish(&udp).unwrap();
        assert!(matches!(
            pubr.publish(&tcp),
            Err(Error::PortPublished {
                host_port: 8080,
                ..
            })
        ));
        assert_eq!(
            pubr.published().unwrap(),
            [(Proto::Tcp, 8080), (Proto::Udp, 5353)]
        );
        assert!(nft_tables(&host).contains("table ip hull"));

        let listener = common::listen(&ctr, "0.0.0.0:80");
        let server = echo_server(listener, 3);
        // From another namespace, through the host's address.
        connect(&client, "198.18.22.1:8080").expect("client -> host:8080 -> container:80");
        // From the host namespace itself.
        connect(&host, "198.18.22.1:8080").expect("host -> own address:8080");
        // Hairpin: the container through the host's address.
        connect(&ctr, "198.18.22.1:8080").expect("container -> host:8080 -> itself");
        server.join().unwrap();
        // Localhost is documented as not forwarded: refused, not hanging.
        assert!(connect(&host, "127.0.0.1:8080").is_err());

        // UDP.
        let usock = ctr.run(|| UdpSocket::bind("0.0.0.0:53")).unwrap().unwrap();
        let userver = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let (n, from) = usock.recv_from(&mut buf).unwrap();
            usock.send_to(&buf[..n], from).unwrap();
        });
        let csock = client
            .run(|| UdpSocket::bind("198.18.22.2:0"))
            .unwrap()
            .unwrap();
        csock
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        csock.send_to(b"dns?", "198.18.22.1:5353").unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = csock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"dns?");
        userver.join().unwrap();

        // Removing: the table stays while a mapping is left, then goes.
        pubr.unpublish(Proto::Tcp, 8080).unwrap();
        assert_eq!(pubr.published().unwrap(), [(Proto::Udp, 5353)]);
        assert!(
            connect(&client, "198.18.22.1:8080").is_err(),
            "rule removed"
        );
        pubr.unpublish(Proto::Udp, 5353).unwrap();
        assert!(
            !nft_tables(&host).contains("hull"),
            "table removed with last rule"
        );
        assert!(matches!(
            pubr.unpublish(Proto::Udp, 5353),
            Err(Error::PortNotPublished { .. })
        ));

        // A guard unpublishes on drop, taking the table with it.
        let guard = pubr.publish_guarded(&tcp).unwrap();
        assert_eq!(guard.port(), (Proto::Tcp, 8080));
        assert!(nft_tables(&host).contains("table ip hull"));
        drop(guard);
        assert!(!nft_tables(&host).contains("hull"));
        att.remove().unwrap();
    }
    before.assert_no_leaks(&[]);
}
