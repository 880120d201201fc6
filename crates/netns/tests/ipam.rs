//! IPAM on a real state directory: concurrent threads and processes, a
//! full subnet, release.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use hull_netns::{Error, IpCidr, Ipam};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(hull_testkit::unique_name("hull-ipam-"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn subnet(s: &str) -> IpCidr {
    s.parse().unwrap()
}

/// Not a test on its own: the body run by the child processes of
/// `twenty_concurrent_allocations_are_distinct`.
#[test]
fn ipam_child_helper() {
    let Ok(dir) = std::env::var("HULL_IPAM_TEST_DIR") else {
        return;
    };
    let owner = std::env::var("HULL_IPAM_TEST_OWNER").unwrap();
    let pool = Ipam::open(&dir, subnet("198.18.20.0/24"), None).unwrap();
    let a = pool.allocate(&owner).unwrap();
    println!("ALLOC {}", a.addr());
}

#[test]
fn twenty_concurrent_allocations_are_distinct() {
    let dir = TempDir::new();
    let exe = std::env::current_exe().unwrap();
    let pool = Ipam::open(&dir.0, subnet("198.18.20.0/24"), None).unwrap();
    let spawned: Vec<_> = (0..10)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "ipam_child_helper",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("HULL_IPAM_TEST_DIR", &dir.0)
                .env("HULL_IPAM_TEST_OWNER", format!("proc-{i}"))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let d = dir.0.clone();
            std::thread::spawn(move || {
                let pool = Ipam::open(&d, subnet("198.18.20.0/24"), None).unwrap();
                pool.allocate(&format!("thread-{i}")).unwrap().addr()
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in threads {
        got.push(t.join().unwrap().to_string());
    }
    for c in spawned {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.split("ALLOC ").nth(1))
            .unwrap_or_else(|| panic!("no ALLOC in {text}"));
        got.push(line.to_string());
    }
    let distinct: HashSet<_> = got.iter().collect();
    assert_eq!(got.len(), 20);
    assert_eq!(distinct.len(), 20, "{got:?}");
    assert!(
        !got.contains(&"198.18.20.1".to_string()),
        "gateway handed out"
    );
    let recorded = pool.allocations().unwrap();
    assert_eq!(recorded.len(), 20);

    // Releasing everything leaves no entry and no state file.
    for (a, _) in recorded {
        assert!(pool.release(a).unwrap());
    }
    assert!(pool.allocations().unwrap().is_empty());
    assert!(!pool.state_path().exists());
}

#[test]
fn a_full_subnet_is_a_typed_error() {
    let dir = TempDir::new();
    // A /29 has 6 host addresses; one is the gateway.
    let pool = Ipam::open(&dir.0, subnet("198.18.30.0/29"), None).unwrap();
    let mut got = Vec::new();
    for i in 0..5 {
        got.push(pool.allocate(&format!("c{i}")).unwrap().to_string());
    }
    assert_eq!(got[0], "198.18.30.2/29");
    assert_eq!(got[4], "198.18.30.6/29");
    match pool.allocate("c5") {
        Err(Error::SubnetFull { subnet }) => assert_eq!(subnet, "198.18.30.0/29"),
        r => panic!("{r:?}"),
    }
    // Released addresses are reused.
    assert!(pool.release("198.18.30.4".parse().unwrap()).unwrap());
    assert_eq!(pool.allocate("c6").unwrap().to_string(), "198.18.30.4/29");
    assert!(pool.release("198.18.30.4".parse().unwrap()).unwrap());
    assert!(!pool.release("198.18.30.4".parse().unwrap()).unwrap());
    assert_eq!(pool.release_owner("c0").unwrap(), 1);
}

#[test]
fn bad_pool_configuration_is_rejected() {
    let dir = TempDir::new();
    match Ipam::open(
        &dir.0,
        subnet("198.18.0.0/24"),
        Some("198.19.0.1".parse().unwrap()),
    ) {
        Err(Error::GatewayOutsideSubnet { gateway, .. }) => {
            assert_eq!(gateway.to_string(), "198.19.0.1")
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        Ipam::open(
            &dir.0,
            subnet("198.18.0.0/24"),
            Some("198.18.0.255".parse().unwrap())
        ),
        Err(Error::GatewayOutsideSubnet { .. })
    ));
    assert!(matches!(
        Ipam::open(&dir.0, subnet("2001:2::/64"), None),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Ipam::open(&dir.0, subnet("198.18.0.0/31"), None),
        Err(Error::InvalidConfig { .. })
    ));
    let pool = Ipam::open(&dir.0, subnet("198.18.0.0/24"), None).unwrap();
    assert!(matches!(
        pool.allocate("has space"),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        pool.release("198.19.0.9".parse().unwrap()),
        Err(Error::AddressNotInSubnet { .. })
    ));
    std::fs::write(pool.state_path(), "garbage\n").unwrap();
    assert!(matches!(pool.allocate("c"), Err(Error::IpamCorrupt { .. })));
}

#[test]
fn pools_of_different_subnets_in_one_directory_are_independent() {
    let dir = TempDir::new();
    let a = Ipam::open(&dir.0, subnet("198.18.40.0/24"), None).unwrap();
    let b = Ipam::open(&dir.0, subnet("198.18.40.0/25"), None).unwrap();
    assert_ne!(a.state_path(), b.state_path());
    assert_eq!(a.allocate("x").unwrap().to_string(), "198.18.40.2/24");
    assert_eq!(b.allocate("y").unwrap().to_string(), "198.18.40.2/25");
    assert_eq!(a.allocations().unwrap().len(), 1);
    assert_eq!(b.allocations().unwrap()[0].1, "y");
    // Nothing but the two state files and their locks.
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "198.18.40.0-24",
            "198.18.40.0-24.lock",
            "198.18.40.0-25",
            "198.18.40.0-25.lock"
        ]
    );
}
