//! Three containers from an image on a bridge network, reaching each other
//! by name, one with a published port reached from the "host". As root:
//! `cargo run --example network`.
//!
//! Everything happens inside a sandbox network namespace standing in for
//! the host (the machine's own network is never touched), with addresses
//! from 198.18.0.0/15. The image is made from the machine's busybox-static;
//! nothing is downloaded.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hull::container::hull_image_layers::oci::ConfigBuilder;
use hull::container::hull_netns::{BridgeConfig, Proto};
use hull::container::{Container, ImageStore, NetworkMode, Stdio};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    if !hull_testkit::is_root() {
        eprintln!("network: run as root");
        std::process::exit(1);
    }
    let work = std::env::temp_dir().join(format!("hull-network-example-{}", std::process::id()));
    let w = work.clone();
    // A forked child in a new network namespace: the sandbox "host". It
    // panics, with the child's error, if the child failed.
    let outcome = std::panic::catch_unwind(move || {
        hull_testkit::in_child(libc::CLONE_NEWNET, move || {
            run(&w).map_err(|e| e.to_string())
        })
    });
    let _ = std::fs::remove_dir_all(&work);
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
    Ok(())
}

fn run(work: &Path) -> Result<()> {
    let store = ImageStore::open(work.join("images"), work.join("snapshots"))?;
    let tree = work.join("tree");
    std::fs::create_dir_all(tree.join("www"))?;
    hull_testkit::busybox_rootfs(&tree)?;
    std::fs::write(tree.join("www/index.html"), "hello from web\n")?;
    let mut config = store.scratch_config()?;
    config.set_config(Some(
        ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .build()?,
    ));
    store.import_tree(&tree, config, "busybox:local")?;
    let image = store.prepare("busybox:local")?;

    let bridge = BridgeConfig::builder("hull1", "198.18.60.0/24".parse()?).build()?;
    println!("bridge hull1 198.18.60.0/24 in the sandbox host namespace");
    let runtime = work.join("run");
    let mut ctrs: Vec<Container> = Vec::new();
    let mut addrs: Vec<(&str, IpAddr)> = Vec::new();
    for name in ["web", "db", "cache"] {
        let mut net = NetworkMode::bridge(bridge.clone(), work.join("ipam"));
        for (other, addr) in &addrs {
            net = net.link(other, *addr);
        }
        let mut b = Container::builder(name)
            .runtime_root(&runtime)
            .no_cgroup()
            .hostname(name)
            .image(image.clone())
            .network(net);
        b = if name == "web" {
            b.publish(Proto::Tcp, 8080, 80)
                .args(["httpd", "-f", "-p", "80", "-h", "/www"])
        } else {
            b.args(["sleep", "60"])
        };
        let mut c = b.build()?.create()?;
        c.start()?;
        let addr = c.address().ok_or("no address")?;
        println!("{name:>5}: {addr}");
        addrs.push((name, addr));
        ctrs.push(c);
    }
    // Each container knows the ones made before it by name.
    for (i, c) in ctrs.iter_mut().enumerate() {
        for (other, _) in &addrs[..i] {
            let script = format!("ping -c1 -W2 -q {other} | grep transmitted");
            let out = exec(c, &script)?;
            println!("{:>5} -> {other:<5} ping by name: {}", c.id(), out.trim());
        }
    }
    // web serves HTTP on port 80 (httpd may take a moment to start).
    let script = "for n in $(seq 50); do \
        printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 80 2>/dev/null | tail -n1 | grep . && break; \
        sleep 0.1; done";
    let out = exec(&mut ctrs[2], script)?;
    println!("cache -> web:80 over HTTP: {}", out.trim());

    let gateway = bridge.gateway().addr();
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::new(gateway, 8080), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    println!(
        " host -> {gateway}:8080 (published, web:80): {}",
        reply.lines().last().unwrap_or("")
    );

    for i in ctrs[0].network_stats()? {
        println!(
            "  web {}: rx {} bytes / {} packets, tx {} bytes / {} packets",
            i.name, i.rx_bytes, i.rx_packets, i.tx_bytes, i.tx_packets
        );
    }
    for mut c in ctrs {
        c.delete()?;
        println!("{:>5}: deleted (veth, address, port, files)", c.id());
    }
    Ok(())
}

fn exec(c: &mut Container, script: &str) -> Result<String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: pipe2 succeeded: both fds are open and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut child = c.exec(
        ["sh", "-c", script],
        [Stdio::Null, Stdio::Fd(wr), Stdio::Null],
    )?;
    let mut out = String::new();
    std::fs::File::from(rd).read_to_string(&mut out)?;
    child.wait()?;
    Ok(out)
}
