//! Image containers on a bridge network: reaching each other by name, a
//! published port, network statistics, teardown. All inside a sandbox
//! network namespace standing in for the host (as root; addresses from
//! 198.18.0.0/15).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::images::Images;
use hull_container::hull_netns::{BridgeConfig, Ipam, PortPublisher, Proto};
use hull_container::{Container, Error, NetworkMode, Stdio};
use hull_testkit::in_child;

fn exec_output(c: &mut Container, args: &[&str]) -> (bool, String) {
    let (rd, wr) = common::pipe();
    let mut child = c
        .exec(args, [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit])
        .unwrap();
    let mut out = String::new();
    std::fs::File::from(rd).read_to_string(&mut out).unwrap();
    (child.wait().unwrap().success(), out)
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

#[test]
fn image_containers_on_a_bridge_reach_each_other_and_a_published_port() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let rt = common::Runtime::new();
    let (dir, store) = (img.dir.clone(), img.store.clone());
    let (run_root, parent) = (rt.0.clone(), rt.cgroup_parent());
    in_child(libc::CLONE_NEWNET | libc::CLONE_NEWNS, move || {
        let cfg = BridgeConfig::builder("hullbr8", "198.18.8.0/24".parse().map_err(e)?)
            .build()
            .map_err(e)?;
        let ipam_dir = dir.join("ipam");
        let net = || NetworkMode::bridge(cfg.clone(), &ipam_dir);
        let image = store.prepare("base:1").map_err(e)?;
        let www = dir.join("www");
        std::fs::create_dir_all(&www).map_err(e)?;
        std::fs::write(www.join("index.html"), "served by web\n").map_err(e)?;
        // Created (waiting at its start gate), then started.
        let create = |id: &str, network: NetworkMode, port: Option<u16>, args: &[&str]| {
            let mut b = Container::builder(id)
                .runtime_root(&run_root)
                .cgroup_parent(parent.clone())
                .hostname(id)
                .image(image.clone())
                .network(network)
                .args(args.iter().copied());
            if let Some(p) = port {
                b = b.publish(Proto::Tcp, p, 80);
            }
            b.build()?.create()
        };
        let start = |id: &str, network: NetworkMode, port: Option<u16>, args: &[&str]| {
            let mut c = create(id, network, port, args)?;
            c.start()?;
            Ok::<_, Error>(c)
        };
        let mut web = create(
            "web",
            net(),
            Some(8080),
            &["httpd", "-f", "-p", "80", "-h", "/www"],
        )
        .map_err(e)?;
        // Into the created container, before its process runs.
        web.copy_in(&www, "/").map_err(e)?;
        web.start().map_err(e)?;
        let web_addr = web.address().ok_or("no address")?;
        let mut client = start(
            "client",
            net().link("web", web_addr),
            None,
            &["sleep", "100"],
        )
        .map_err(e)?;
        let (ok, out) = exec_output(
            &mut client,
            &[
                "sh",
                "-c",
                // httpd may still be starting: retry for a while.
                "cat /etc/hostname; for i in $(seq 50); do \
                 printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 web 80 > /tmp/reply 2>&1 \
                 && grep -q served /tmp/reply && tail -n1 /tmp/reply && exit 0; sleep 0.1; done; \
                 cat /tmp/reply; exit 1",
            ],
        );
        if !ok || out != "client\nserved by web\n" {
            return Err(format!("client could not reach web by name: {out}"));
        }
        // The published port, from the sandbox host's own address.
        let mut s = TcpStream::connect_timeout(
            &std::net::SocketAddr::new(cfg.gateway().addr(), 8080),
            Duration::from_secs(5),
        )
        .map_err(|err| format!("connect to the published port: {err}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(e)?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(e)?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(e)?;
        if !reply.ends_with("served by web\n") {
            return Err(format!("published port: {reply}"));
        }
        // Publishing the same host port again: a typed error, nothing left.
        match start("dup", net(), Some(8080), &["true"]) {
            Err(Error::Network { source, .. })
                if matches!(
                    *source,
                    hull_container::hull_netns::Error::PortPublished {
                        host_port: 8080,
                        ..
                    }
                ) => {}
            other => return Err(format!("second publish of 8080: {other:?}")),
        }
        // Statistics: the cgroup's and eth0's counters.
        let stats = web.usage().map_err(e)?;
        let eth0 = stats
            .network
            .iter()
            .find(|i| i.name == "eth0")
            .ok_or("no eth0 counters")?;
        if eth0.rx_packets == 0 || eth0.tx_bytes == 0 {
            return Err(format!("eth0 counters: {eth0:?}"));
        }
        if stats.cgroup.is_none() {
            return Err("no cgroup statistics".into());
        }
        // A third container sharing web's network namespace.
        let mut side = start(
            "side",
            NetworkMode::container(&web).map_err(e)?,
            None,
            &["sleep", "100"],
        )
        .map_err(e)?;
        let (ok, out) = exec_output(
            &mut side,
            &[
                "sh",
                "-c",
                "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 127.0.0.1 80 2>&1 | tail -n1",
            ],
        );
        if !ok || out != "served by web\n" {
            return Err(format!("shared namespace: {ok} {:?}: {out}", side.status()));
        }
        for mut c in [side, client, web] {
            c.delete().map_err(e)?;
        }
        // Nothing left: addresses, veths, the nft table.
        let ipam = Ipam::open(&ipam_dir, cfg.subnet(), None).map_err(e)?;
        let left = ipam.allocations().map_err(e)?;
        if !left.is_empty() {
            return Err(format!("IPAM entries left: {left:?}"));
        }
        let host = hull_ns::NsFd::current(hull_ns::Namespaces::NET).map_err(e)?;
        let ports = PortPublisher::new(&host)
            .map_err(e)?
            .published()
            .map_err(e)?;
        if !ports.is_empty() {
            return Err(format!("ports left: {ports:?}"));
        }
        let links = common::leftover_links()?;
        if !links.is_empty() {
            return Err(format!("links left: {links:?}"));
        }
        Ok(())
    });
    assert!(rt.is_empty(), "runtime directories left");
}

#[test]
fn published_ports_need_a_bridge() {
    require_root!();
    let rt = common::Runtime::new();
    let r = rt
        .builder("noport")
        .publish(Proto::Tcp, 8081, 80)
        .args(["true"])
        .build()
        .unwrap()
        .create();
    assert!(
        matches!(
            r,
            Err(Error::Invalid {
                field: "publish",
                ..
            })
        ),
        "{r:?}"
    );
    assert!(rt.is_empty());
}
