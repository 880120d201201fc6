//! Namespace handles, unshare and the lsns-like listing (run as root).

use std::collections::BTreeMap;

use hull_ns::{Command, NamespaceInfo, Namespaces, NsFd, list_namespaces};
use hull_testkit::{in_child, is_root};

#[test]
fn handles_compare_by_identity() {
    let a = NsFd::current(Namespaces::NET).unwrap();
    let b = NsFd::open("/proc/self/ns/net").unwrap();
    let c = NsFd::from_pid(i32::try_from(std::process::id()).unwrap(), Namespaces::NET).unwrap();
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(a.kind(), Namespaces::NET);
    let uts = NsFd::current(Namespaces::UTS).unwrap();
    assert_ne!(a.id(), uts.id());
    // A handle of the wrong kind is refused.
    assert!(NsFd::from_pid(1, Namespaces::NET | Namespaces::UTS).is_err());
}

#[test]
fn unshare_and_enter_round_trip() {
    if !is_root() {
        return;
    }
    in_child(0, || {
        let host_uts = NsFd::current(Namespaces::UTS).map_err(|e| e.to_string())?;
        hull_ns::unshare(Namespaces::UTS).map_err(|e| e.to_string())?;
        let new_uts = NsFd::current(Namespaces::UTS).map_err(|e| e.to_string())?;
        if new_uts == host_uts {
            return Err("unshare did not create a UTS namespace".into());
        }
        host_uts.enter().map_err(|e| e.to_string())?;
        if NsFd::current(Namespaces::UTS).map_err(|e| e.to_string())? != host_uts {
            return Err("enter did not return to the host UTS namespace".into());
        }
        Ok(())
    });
}

#[test]
fn enter_process_joins_several_namespaces_at_once() {
    if !is_root() {
        return;
    }
    let mut target = Command::new("sleep")
        .arg("30")
        .new_namespaces(Namespaces::NET | Namespaces::UTS)
        .hostname("hull-enter")
        .spawn()
        .unwrap();
    let pid = target.id();
    in_child(0, move || {
        hull_ns::enter_process(pid, Namespaces::NET | Namespaces::UTS)
            .map_err(|e| e.to_string())?;
        for k in [Namespaces::NET, Namespaces::UTS] {
            let mine = NsFd::current(k).map_err(|e| e.to_string())?;
            let theirs = NsFd::from_pid(pid, k).map_err(|e| e.to_string())?;
            if mine != theirs {
                return Err(format!("{k} namespace differs after enter_process"));
            }
        }
        Ok(())
    });
    target.kill(libc::SIGKILL).unwrap();
    target.wait().unwrap();
}

fn ours() -> BTreeMap<(u64, String), NamespaceInfo> {
    list_namespaces()
        .unwrap()
        .into_iter()
        .map(|n| ((n.id.ino, n.kind.to_string()), n))
        .collect()
}

#[test]
fn listing_matches_lsns() {
    if !is_root() {
        return;
    }
    if std::process::Command::new("lsns")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: lsns not installed");
        return;
    }
    // A process may start and end between our two listings while lsns
    // runs; such a race is retried, a real mismatch is not.
    let mut last = String::new();
    let mut b = None;
    for _ in 0..5 {
        match compare_with_lsns() {
            Ok(listing) => {
                b = Some(listing);
                break;
            }
            Err(e) => last = e,
        }
    }
    let b = b.unwrap_or_else(|| panic!("{last}"));
    // Every namespace of this process is listed.
    for k in Namespaces::all().kinds() {
        let me = NsFd::current(k).unwrap();
        assert!(b.contains_key(&(me.id().ino, k.to_string())), "{k}");
    }
}

fn compare_with_lsns() -> Result<BTreeMap<(u64, String), NamespaceInfo>, String> {
    // Other processes come and go while we look: compare only what our two
    // listings, taken before and after lsns, agree on.
    let a = ours();
    let out = std::process::Command::new("lsns")
        .args(["-J", "-o", "NS,TYPE,NPROCS,PID,COMMAND"])
        .output()
        .unwrap();
    let b = ours();
    if !out.status.success() {
        return Err("lsns failed".into());
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["namespaces"].as_array().unwrap();
    assert!(!rows.is_empty());
    // lsns counts itself in the namespaces it shares with us.
    let mine: Vec<(u64, String)> = Namespaces::all()
        .kinds()
        .map(|k| (NsFd::current(k).unwrap().id().ino, k.to_string()))
        .collect();
    let mut compared = 0;
    for row in rows {
        let ino = row["ns"].as_u64().unwrap();
        let kind = row["type"].as_str().unwrap().to_string();
        let key = (ino, kind.clone());
        let (Some(x), Some(y)) = (a.get(&key), b.get(&key)) else {
            continue;
        };
        if x != y {
            continue;
        }
        let lsns_itself = u64::from(mine.contains(&key));
        let theirs = (
            row["nprocs"].as_u64().unwrap(),
            row["pid"].as_i64().unwrap(),
            row["command"].as_str().unwrap_or_default().to_string(),
        );
        let mine = (
            x.nprocs as u64 + lsns_itself,
            i64::from(x.pid),
            x.command.clone(),
        );
        if mine != theirs {
            return Err(format!("{key:?}: ours {mine:?}, lsns {theirs:?}"));
        }
        compared += 1;
    }
    if compared < 8 {
        return Err(format!("only {compared} stable namespaces to compare"));
    }
    Ok(b)
}
