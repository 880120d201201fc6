//! Helpers shared by the integration tests: pings and TCP round trips run
//! inside test-made namespaces.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use hull_netns::NetNs;

/// Skips (returns early from) a test when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !hull_testkit::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Runs `ping -c1 -W2 TARGET` inside `ns` and says whether it answered.
pub fn ping(ns: &NetNs, target: &str) -> bool {
    ns.run(|| {
        Command::new("ping")
            .args(["-n", "-c1", "-W2", "-q", target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// Binds a TCP listener inside `ns`.
pub fn listen(ns: &NetNs, addr: &str) -> TcpListener {
    let addr: SocketAddr = addr.parse().expect("socket address");
    ns.run(move || TcpListener::bind(addr))
        .expect("enter ns")
        .expect("bind listener")
}

/// Connects from inside `ns` to `addr`, sends a line, and checks the
/// listener (served on a thread) echoes it back.
pub fn tcp_round_trip(from: &NetNs, listener: TcpListener, addr: &str) {
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).expect("server read");
        s.write_all(&buf).expect("server write");
    });
    let addr: SocketAddr = addr.parse().expect("socket address");
    let mut c = from
        .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(3)))
        .expect("enter ns")
        .expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    c.write_all(b"hello").expect("client write");
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).expect("client read");
    assert_eq!(&buf, b"hello");
    server.join().expect("server thread");
}
