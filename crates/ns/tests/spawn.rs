//! Spawning in namespaces, on the real kernel (run as root).

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use hull_ns::{Command, Error, ExitStatus, IdMap, Namespaces, NsFd, Step, TimeOffsets};
use hull_testkit::{Snapshot, is_root};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

#[test]
fn exit_codes_and_signals_come_back_exactly() {
    assert_eq!(sh("exit 0").status().unwrap(), ExitStatus::Exited(0));
    assert_eq!(sh("exit 42").status().unwrap(), ExitStatus::Exited(42));
    let s = sh("kill -9 $$").status().unwrap();
    assert_eq!(s.signal(), Some(9));
}

#[test]
fn missing_program_is_enoent_naming_it() {
    let err = Command::new("hull-no-such-program").spawn().unwrap_err();
    match &err {
        Error::Spawn {
            step: Step::Exec,
            path: Some(p),
            source,
            ..
        } => {
            assert_eq!(p.to_str(), Some("hull-no-such-program"));
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("hull-no-such-program"), "{err}");
    let err = Command::new("/nonexistent/prog").spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    // A directory is found but cannot be executed: EACCES, not ENOENT.
    let err = Command::new("/tmp").spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
}

#[test]
fn bad_cwd_names_the_directory() {
    let err = Command::new("true")
        .current_dir("/nonexistent-dir")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Spawn {
                step: Step::Chdir,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
}

#[test]
fn stdio_pipes_env_and_args() {
    let out = Command::new("sh")
        .args([
            "-c",
            "read x; echo \"$x $FOO $1\"; echo err >&2",
            "sh",
            "arg1",
        ])
        .env_clear()
        .env("FOO", "bar")
        .env("PATH", "/usr/bin:/bin")
        .stdin(hull_ns::Stdio::Piped)
        .stdout(hull_ns::Stdio::Piped)
        .stderr(hull_ns::Stdio::Piped)
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.as_mut().unwrap().write_all(b"hello\n").unwrap();
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.stdout, b"hello bar arg1\n");
    assert_eq!(out.stderr, b"err\n");
}

#[test]
fn host_fds_do_not_leak_into_the_child() {
    // An fd without close-on-exec in the caller is not inherited by default.
    let f = std::fs::File::open("/proc/self/status").unwrap();
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: clearing FD_CLOEXEC on an fd we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let out = stdout_of(&mut sh(&format!(
        "test -e /proc/self/fd/{fd} && echo leaked || echo closed"
    )));
    assert_eq!(out, "closed\n");
}

#[test]
fn pid_namespace_child_is_pid_1_and_ps_sees_only_its_own() {
    require_root!();
    let before = Snapshot::take();
    let out = stdout_of(
        sh("echo $$; ps -e -o pid=")
            .new_namespaces(Namespaces::PID | Namespaces::MNT)
            .mount_proc(true),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    let pids: Vec<i32> = lines.map(|l| l.trim().parse().unwrap()).collect();
    assert!(pids.contains(&1), "{pids:?}");
    assert!(
        pids.iter().all(|&p| p < 10),
        "ps saw other processes: {pids:?}"
    );
    before.assert_no_leaks(&[]);
}

#[test]
fn uts_namespace_has_its_own_hostname() {
    require_root!();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = stdout_of(
        Command::new("hostname")
            .new_namespaces(Namespaces::UTS)
            .hostname("hull-uts-test")
            .domainname("hull.example"),
    );
    assert_eq!(out, "hull-uts-test\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

#[test]
fn hostname_without_uts_namespace_is_refused() {
    let err = Command::new("true").hostname("x").spawn().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidCommand {
                field: "hostname",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn ipc_namespace_hides_its_message_queues() {
    require_root!();
    let host_before = std::fs::read_to_string("/proc/sysvipc/msg").unwrap();
    let out = stdout_of(
        sh("ipcmk -Q >/dev/null && tail -n +2 /proc/sysvipc/msg | wc -l")
            .new_namespaces(Namespaces::IPC),
    );
    assert_eq!(out.trim(), "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sysvipc/msg").unwrap(),
        host_before
    );
}

#[test]
fn net_namespace_has_only_loopback() {
    require_root!();
    let out = stdout_of(
        sh("ls /proc/self/net/dev_snmp6 2>/dev/null || ip -o link show | cut -d: -f2")
            .new_namespaces(Namespaces::NET),
    );
    let names: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(names, ["lo"]);
}

#[test]
fn loopback_comes_up_from_the_parent_with_or_without_a_gate() {
    require_root!();
    let script = "ip -o link show lo";
    // Gated: the parent's thread brings it up before spawn returns.
    let mut cmd = sh(script);
    cmd.new_namespaces(Namespaces::NET)
        .loopback_up(true)
        .start_gate(true)
        .stdout(hull_ns::Stdio::Piped);
    let mut child = cmd.spawn().unwrap();
    child.start().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(out.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
    // Without a gate the child does it itself, before execve.
    let out = stdout_of(sh(script).new_namespaces(Namespaces::NET).loopback_up(true));
    assert!(out.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
    // Also when the caller's steps drop every capability: the child brings
    // it up before them.
    let mut cmd = sh(script);
    cmd.new_namespaces(Namespaces::NET)
        .loopback_up(true)
        .child_ops(vec![hull_ns::ChildOp::Capabilities {
            effective: 0,
            permitted: 0,
            inheritable: 0,
            ambient: 0,
        }]);
    let out = stdout_of(&mut cmd);
    assert!(out.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
    // And without the option it stays down.
    let out = stdout_of(sh(script).new_namespaces(Namespaces::NET));
    assert!(!out.contains(",UP"), "{out}");
}

#[test]
fn children_start_in_a_cgroup2_directory_on_a_hybrid_host_too() {
    require_root!();
    // The cgroup2 mount: the root on a v2 host, `unified` on a hybrid one.
    let Some(root) = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|r| r.join("cgroup.procs").exists() && r.join("cgroup.subtree_control").exists())
    else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let dir = root.join(hull_testkit::unique_name("hull-ns-clone3-"));
    std::fs::create_dir(&dir).unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut failures = Vec::new();
    for _ in 0..20 {
        // No unwrap before the cgroup is removed: a failure is collected.
        let fd: std::os::fd::OwnedFd = match std::fs::File::open(&dir) {
            Ok(f) => f.into(),
            Err(e) => {
                failures.push(format!("open {}: {e}", dir.display()));
                continue;
            }
        };
        match Command::new("cat")
            .arg("/proc/self/cgroup")
            .cgroup(fd)
            .output()
        {
            Ok(out)
                if out.status.success()
                    && String::from_utf8_lossy(&out.stdout).contains(&format!("0::/{name}\n")) => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    // Every child has exited: the cgroup is empty and can go.
    std::fs::remove_dir(&dir).unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn loopback_up_without_a_new_network_namespace_is_refused() {
    let err = sh("true").loopback_up(true).spawn().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidCommand {
                field: "loopback_up",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("new network namespace"), "{err}");
}

#[test]
fn mount_namespace_hides_its_mounts() {
    require_root!();
    let dir = tempdir("mnt");
    let before = Snapshot::take();
    let out = stdout_of(
        sh(&format!(
            "mount --make-rprivate / && mount -t tmpfs hull-test {d} && grep -c ' {d} ' /proc/self/mountinfo",
            d = dir.display()
        ))
        .new_namespaces(Namespaces::MNT),
    );
    assert_eq!(out.trim(), "1");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&format!(" {} ", dir.display())));
    before.assert_no_leaks(&[]);
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn user_namespace_root_is_the_mapped_uid_outside() {
    require_root!();
    let dir = tempdir("user");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let file = dir.join("made-inside");
    let out = stdout_of(
        sh(&format!(
            "id -u; id -g; cat /proc/self/uid_map; touch {}",
            file.display()
        ))
        .new_namespaces(Namespaces::USER)
        .uid_map("0 100000 1".parse().unwrap())
        .gid_map(IdMap::single(0, 100001))
        .setgroups_deny(true)
        .user(0, 0),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], "0");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "1"]
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (100000, 100001));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn id_maps_without_user_namespace_are_refused() {
    let err = Command::new("true")
        .uid_map(IdMap::single(0, 1000))
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidCommand {
                field: "uid_map",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cgroup_namespace_shows_root() {
    require_root!();
    let out = stdout_of(
        Command::new("cat")
            .arg("/proc/self/cgroup")
            .new_namespaces(Namespaces::CGROUP),
    );
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{line}");
    }
}

#[test]
fn child_joins_v1_cgroups_through_tasks() {
    require_root!();
    // A test-owned cgroup at an absolute path of the v1 pids hierarchy.
    let hier = std::path::Path::new("/sys/fs/cgroup/pids");
    if !hier.join("tasks").exists() {
        eprintln!("skipped: no v1 pids hierarchy");
        return;
    }
    let dir = hier.join(hull_testkit::unique_name("hull-ns-tasks-"));
    std::fs::create_dir(&dir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = stdout_of(
        Command::new("cat")
            .arg("/proc/self/cgroup")
            .cgroup_tasks([dir.join("tasks")]),
    );
    let line = out.lines().find(|l| l.contains(":pids:")).unwrap();
    assert_eq!(
        line.rsplit(':').next().unwrap(),
        format!("/{name}"),
        "{out}"
    );
    // With a cgroup namespace it is created after joining: rooted there.
    let out = stdout_of(
        Command::new("cat")
            .arg("/proc/self/cgroup")
            .new_namespaces(Namespaces::CGROUP)
            .cgroup_tasks([dir.join("tasks")]),
    );
    assert!(out.contains(":pids:/\n"), "{out}");
    // A bad path is an error naming it, and nothing runs.
    let err = Command::new("true")
        .cgroup_tasks([dir.join("nope/tasks")])
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("nope/tasks"), "{err}");
    // A cgroup made only after the clone: the child waits for it, then
    // joins it the same way.
    let late = hier.join(hull_testkit::unique_name("hull-ns-late-"));
    let _rm_late = Rm(late.clone());
    let make = late.clone();
    let out = stdout_of(
        Command::new("cat")
            .arg("/proc/self/cgroup")
            .cgroup_tasks_after_clone([late.join("tasks")], move || {
                std::fs::create_dir(&make).map_err(Into::into)
            }),
    );
    let line = out.lines().find(|l| l.contains(":pids:")).unwrap();
    let late_name = late.file_name().unwrap().to_string_lossy();
    assert_eq!(line.rsplit(':').next().unwrap(), format!("/{late_name}"));
    // A failed step fails the spawn with its error, after killing the child.
    let err = Command::new("true")
        .cgroup_tasks_after_clone([dir.join("tasks")], || Err("no cgroup today".into()))
        .spawn()
        .unwrap_err();
    assert!(matches!(err, hull_ns::Error::AfterClone { .. }), "{err:?}");
    assert!(err.to_string().contains("no cgroup today"), "{err}");
    // And a file that is still missing once released is the join's error.
    let err = Command::new("true")
        .cgroup_tasks_after_clone([dir.join("nope/tasks")], || Ok(()))
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("nope/tasks"), "{err}");
}

#[test]
fn time_namespace_applies_offsets() {
    require_root!();
    let host_uptime: f64 = uptime();
    let out = stdout_of(
        sh("cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime")
            .new_namespaces(Namespaces::TIME)
            .time_offsets(TimeOffsets {
                monotonic_secs: 86400,
                boottime_secs: 1_000_000,
            }),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["monotonic", "86400", "0"]
    );
    let inside: f64 = lines[2].parse().unwrap();
    assert!(
        inside >= host_uptime + 1_000_000.0,
        "{inside} vs {host_uptime}"
    );
    assert!(uptime() < 1_000_000.0 + host_uptime);
}

fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn joining_a_process_gives_the_same_namespace_identities() {
    require_root!();
    let mut target = Command::new("sleep")
        .arg("30")
        .new_namespaces(Namespaces::NET | Namespaces::UTS | Namespaces::IPC | Namespaces::PID)
        .hostname("hull-join-target")
        .spawn()
        .unwrap();
    let pid = target.id();
    let out = stdout_of(
        sh("hostname; readlink /proc/self/ns/net /proc/self/ns/uts /proc/self/ns/ipc /proc/self/ns/pid")
            .join_process(pid, Namespaces::NET | Namespaces::UTS | Namespaces::IPC | Namespaces::PID),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hull-join-target");
    for (i, kind) in [
        Namespaces::NET,
        Namespaces::UTS,
        Namespaces::IPC,
        Namespaces::PID,
    ]
    .into_iter()
    .enumerate()
    {
        let theirs = NsFd::from_pid(pid, kind).unwrap();
        assert_eq!(lines[i + 1], format!("{}:[{}]", kind, theirs.id().ino));
        assert_ne!(theirs, NsFd::current(kind).unwrap());
    }
    // Joining by handle gives the same view.
    let out =
        stdout_of(Command::new("hostname").join(NsFd::from_pid(pid, Namespaces::UTS).unwrap()));
    assert_eq!(out, "hull-join-target\n");
    target.kill(libc::SIGKILL).unwrap();
    assert_eq!(target.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn namespace_the_kernel_refuses_is_a_typed_error() {
    require_root!();
    // Entering one's own user namespace is refused by the kernel (EINVAL).
    let err = Command::new("true")
        .join(NsFd::current(Namespaces::USER).unwrap())
        .spawn()
        .unwrap_err();
    match &err {
        Error::Spawn {
            step: Step::JoinNamespace,
            source,
            path: Some(p),
            ..
        } => {
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
            assert!(p.to_string_lossy().starts_with("user:["), "{p:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        NsFd::open("/etc/hostname"),
        Err(Error::NotANamespace { .. })
    ));
    assert!(matches!(
        NsFd::open("/nonexistent"),
        Err(Error::OpenNamespace { .. })
    ));
}

#[test]
fn init_reaps_orphaned_zombies() {
    require_root!();
    // The orphan is re-parented to PID 1; with the init it is reaped, so no
    // zombie is left for ps to see.
    let script = "(sh -c 'exit 0' &); sleep 0.3; ps -e -o stat= | grep -c Z || true";
    let out = stdout_of(
        sh(script)
            .new_namespaces(Namespaces::PID | Namespaces::MNT)
            .mount_proc(true)
            .init(true),
    );
    assert_eq!(out.trim(), "0");
}

#[test]
fn init_forwards_signals_and_returns_exact_status() {
    require_root!();
    let ns = Namespaces::PID | Namespaces::MNT;
    let mut child = sh("trap 'exit 7' TERM; while :; do sleep 0.02; done")
        .new_namespaces(ns)
        .init(true)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child.kill(libc::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(7));

    assert_eq!(
        sh("exit 42")
            .new_namespaces(ns)
            .init(true)
            .status()
            .unwrap(),
        ExitStatus::Exited(42)
    );
    assert_eq!(
        sh("kill -9 $$")
            .new_namespaces(ns)
            .init(true)
            .status()
            .unwrap(),
        ExitStatus::Exited(128 + 9)
    );
    // Without an init, the program itself is PID 1.
    let out = stdout_of(sh("echo $$").new_namespaces(ns));
    assert_eq!(out, "1\n");
}

#[test]
fn missing_program_under_init_is_reported() {
    require_root!();
    let err = Command::new("hull-no-such-program")
        .new_namespaces(Namespaces::PID)
        .init(true)
        .spawn()
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
}

#[test]
fn try_wait_and_kill_through_pidfd() {
    let mut c = Command::new("sleep").arg("10").spawn().unwrap();
    assert_eq!(c.try_wait().unwrap(), None);
    c.kill(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(
        c.try_wait().unwrap().and_then(ExitStatus::signal),
        Some(libc::SIGKILL)
    );
}

#[test]
fn spawning_from_busy_allocating_threads_never_deadlocks() {
    require_root!();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0u8..16)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut keep: Vec<Vec<u8>> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    keep.push(vec![i; 64 + (keep.len() % 4096)]);
                    if keep.len() > 256 {
                        keep.clear();
                    }
                }
            })
        })
        .collect();
    for i in 0..1000 {
        let mut c = Command::new("/bin/true");
        if i % 10 == 0 {
            c.new_namespaces(Namespaces::UTS | Namespaces::PID);
        }
        if i % 50 == 25 {
            c.new_namespaces(Namespaces::PID).init(true);
        }
        assert!(c.status().unwrap().success(), "iteration {i}");
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn id_map_helper_writes_multi_range_maps() {
    require_root!();
    if !std::path::Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("skipped: newuidmap (package uidmap) not installed");
        return;
    }
    hull_testkit::in_child(libc::CLONE_NEWNS, || {
        // A private /etc/subuid and /etc/subgid for this mount namespace only.
        let dir = tempdir("subid");
        for f in ["subuid", "subgid"] {
            let p = dir.join(f);
            std::fs::write(&p, "root:200000:65536\n").map_err(|e| e.to_string())?;
            let status = std::process::Command::new("mount")
                .args(["--bind", p.to_str().unwrap(), &format!("/etc/{f}")])
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("bind mount over /etc/{f} failed"));
            }
        }
        let map: IdMap = "0 0 1\n1 200000 65536"
            .parse()
            .map_err(|e: Error| e.to_string())?;
        let out = Command::new("cat")
            .args(["/proc/self/uid_map", "/proc/self/gid_map"])
            .new_namespaces(Namespaces::USER)
            .uid_map(map.clone())
            .gid_map(map)
            .id_map_helper(true)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed: IdMap = text
            .lines()
            .take(2)
            .collect::<Vec<_>>()
            .join("\n")
            .parse()
            .map_err(|e: Error| format!("{e}: {text}"))?;
        if parsed.ranges().len() != 2 || parsed.map_to_outside(1) != Some(200000) {
            return Err(format!("unexpected map: {text}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    });
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(hull_testkit::unique_name(&format!("hull-ns-{tag}-")));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Makes clone3 fail with ENOSYS in this (single-threaded) process, as on a
/// kernel older than 5.3, with a seccomp filter.
fn deny_clone3() -> Result<(), String> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let ld = u16::try_from(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS).unwrap();
    let jeq = u16::try_from(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K).unwrap();
    let ret = u16::try_from(libc::BPF_RET | libc::BPF_K).unwrap();
    let clone3 = u32::try_from(libc::SYS_clone3).unwrap();
    let mut prog = [
        f(ld, 0, 0, 4),
        f(jeq, 0, 3, AUDIT_ARCH_X86_64),
        f(ld, 0, 0, 0),
        f(jeq, 0, 1, clone3),
        f(
            ret,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS.unsigned_abs(),
        ),
        f(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).unwrap(),
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments, then with a pointer to a valid
    // filter program that outlives the call.
    let rc = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[test]
fn falls_back_to_clone_without_clone3() {
    require_root!();
    hull_testkit::in_child(0, || {
        deny_clone3()?;
        let out = sh("echo $$; hostname")
            .new_namespaces(Namespaces::PID | Namespaces::UTS | Namespaces::MNT)
            .hostname("hull-legacy")
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || text != "1\nhull-legacy\n" {
            return Err(format!("legacy clone: {:?} {text:?}", out.status));
        }
        // The error path works the same way.
        match Command::new("hull-no-such-program").spawn() {
            Err(Error::Spawn {
                step: Step::Exec, ..
            }) => Ok(()),
            other => Err(format!("expected exec error, got {other:?}")),
        }
    });
}

#[test]
fn child_ops_build_a_root_from_the_host() {
    require_root!();
    use hull_ns::ChildOp;
    let root = tempdir("root");
    let before = Snapshot::take();
    let r = |p: &str| root.join(p.trim_start_matches('/'));
    let mount =
        |source: Option<&str>, target: std::path::PathBuf, fstype: Option<&str>, flags: u64| {
            ChildOp::Mount {
                source: source.map(Into::into),
                target,
                fstype: fstype.map(Into::into),
                flags,
                data: None,
                optional: false,
            }
        };
    let ms = |f: libc::c_ulong| -> u64 { f };
    let mut ops = vec![
        mount(None, "/".into(), None, ms(libc::MS_REC | libc::MS_PRIVATE)),
        mount(Some("hull-root"), root.clone(), Some("tmpfs"), 0),
        ChildOp::Mkdir {
            path: r("usr"),
            mode: 0o755,
        },
        ChildOp::Mkdir {
            path: r("proc"),
            mode: 0o555,
        },
        ChildOp::Mkdir {
            path: r("dev"),
            mode: 0o755,
        },
        ChildOp::CreateFile {
            path: r("dev/null"),
            mode: 0o666,
        },
        mount(Some("/dev/null"), r("dev/null"), None, ms(libc::MS_BIND)),
        mount(
            Some("/usr"),
            r("usr"),
            None,
            ms(libc::MS_BIND | libc::MS_REC),
        ),
    ];
    for l in ["bin", "sbin", "lib", "lib64"] {
        ops.push(ChildOp::Symlink {
            target: format!("usr/{l}").into(),
            link: r(l),
        });
    }
    ops.extend([
        ChildOp::PivotRoot {
            new_root: root.clone(),
        },
        mount(Some("proc"), "/proc".into(), Some("proc"), 0),
        ChildOp::MaskPath {
            path: "/proc/cmdline".into(),
        },
        ChildOp::MaskPath {
            path: "/proc/sys/fs".into(),
        },
        ChildOp::MaskPath {
            path: "/proc/hull-missing".into(),
        },
        ChildOp::ReadonlyPath {
            path: "/usr".into(),
        },
        ChildOp::SetRlimit {
            resource: libc::RLIMIT_NOFILE,
            soft: 100,
            hard: 200,
        },
        ChildOp::BoundingSet {
            keep: 1 << 0, /* CAP_CHOWN */
        },
        ChildOp::SetIds {
            uid: 1000,
            gid: 1000,
            groups: vec![1001],
        },
        ChildOp::Capabilities {
            effective: 1 << 0, /* CAP_CHOWN */
            permitted: 1 << 0, /* CAP_CHOWN */
            // Ambient (which needs inheritable) is what keeps a capability
            // across execve for a non-root user.
            inheritable: 1 << 0,
            ambient: 1 << 0,
        },
        ChildOp::NoNewPrivs,
        ChildOp::Setsid,
    ]);
    let script = "ls /; wc -c < /proc/cmdline; ls /proc/sys/fs | wc -l; ulimit -n; id -u; id -G; \
                  grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; \
                  touch /usr/hull-x 2>/dev/null && echo writable || echo read-only";
    let out = stdout_of(
        sh(script)
            .new_namespaces(Namespaces::MNT | Namespaces::PID)
            .child_ops(ops)
            .current_dir("/"),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..7],
        ["bin", "dev", "lib", "lib64", "proc", "sbin", "usr"],
        "{out}"
    );
    assert_eq!(lines[7].trim(), "0", "file masked");
    assert_eq!(lines[8].trim(), "0", "directory masked");
    assert_eq!(lines[9], "100");
    assert_eq!(lines[10], "1000");
    assert_eq!(lines[11], "1000 1001");
    assert!(lines[12].ends_with("0000000000000001"), "{}", lines[12]);
    assert!(lines[13].ends_with("0000000000000001"), "{}", lines[13]);
    assert!(lines[14].ends_with('1'), "{}", lines[14]);
    assert_eq!(lines[15], "read-only");
    before.assert_no_leaks(&[]);
    std::fs::remove_dir(&root).unwrap();
}

#[test]
fn char_devices_get_exact_modes_and_existing_entries_stay() {
    require_root!();
    let dir = tempdir("chardev");
    let target = dir.join("dev");
    std::fs::create_dir(&target).unwrap();
    let node = |name: &str, major, minor| hull_ns::ChildOp::CharDevice {
        path: target.join(name),
        mode: 0o666,
        major,
        minor,
    };
    // On a tmpfs in the child's own mount namespace. The caller's umask
    // (022 here) would leave mknod's nodes at 644.
    let out = sh(&format!(
        "cd {} && stat -c '%n %F %t:%T %a' null zero keep",
        target.display()
    ))
    .new_namespaces(Namespaces::MNT)
    .child_ops([
        hull_ns::ChildOp::Mount {
            source: Some("tmpfs".into()),
            target: target.clone(),
            fstype: Some("tmpfs".into()),
            flags: 0,
            data: None,
            optional: false,
        },
        hull_ns::ChildOp::CreateFile {
            path: target.join("keep"),
            mode: 0o600,
        },
        node("null", 1, 3),
        node("zero", 1, 5),
        node("keep", 1, 3),
    ])
    .output();
    // The host's directory never saw them; it goes before any assertion.
    let on_host = std::fs::read_dir(&target).map(|d| d.count());
    std::fs::remove_dir_all(&dir).unwrap();
    let out = out.expect("spawn");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "null character special file 1:3 666\nzero character special file 1:5 666\n\
         keep regular empty file 0:0 600\n"
    );
    assert_eq!(on_host.ok(), Some(0));
}

#[test]
fn failing_child_op_names_its_path() {
    require_root!();
    let err = Command::new("true")
        .new_namespaces(Namespaces::MNT)
        .child_ops([hull_ns::ChildOp::PivotRoot {
            new_root: "/nonexistent-root".into(),
        }])
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Spawn {
                step: Step::ChildOp,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent-root"), "{err}");
}

#[test]
fn start_gate_splits_create_and_start() {
    require_root!();
    let dir = tempdir("gate");
    let marker = dir.join("ran");
    let mut child = sh(&format!("touch {}", marker.display()))
        .new_namespaces(Namespaces::PID)
        .start_gate(true)
        .spawn()
        .unwrap();
    assert!(child.is_created());
    std::thread::sleep(Duration::from_millis(100));
    assert!(!marker.exists(), "the program ran before start");
    assert_eq!(child.try_wait().unwrap(), None);
    child.start().unwrap();
    assert!(!child.is_created());
    assert!(child.wait().unwrap().success());
    assert!(marker.exists());

    // A created child that is dropped is killed, and the program never runs.
    let marker2 = dir.join("never");
    let child = sh(&format!("touch {}", marker2.display()))
        .start_gate(true)
        .spawn()
        .unwrap();
    let pid = child.id();
    drop(child);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!marker2.exists());

    // An exec failure is reported by start().
    let mut child = Command::new("hull-no-such-program")
        .start_gate(true)
        .spawn()
        .unwrap();
    let err = child.start().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn s4_non_dumpable_while_joining_namespaces() {
    require_root!();
    let mut target = Command::new("sleep")
        .arg("30")
        .new_namespaces(Namespaces::UTS | Namespaces::PID)
        .spawn()
        .unwrap();
    let check = |non_dumpable: bool| {
        let mut c = Command::new("true");
        c.join_process(target.id(), Namespaces::UTS | Namespaces::PID)
            .non_dumpable(non_dumpable);
        let hook = || {
            // Still the joining child, after every setns: is it dumpable?
            // SAFETY: prctl with no pointers.
            let d = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
            if d == 0 {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(libc::EPERM))
            }
        };
        // SAFETY: the hook only calls prctl, which is async-signal-safe.
        unsafe { c.pre_exec(hook) };
        c.status()
    };
    assert!(check(true).unwrap().success());
    // Without the setting the same check fails: the hook is not vacuous.
    assert!(check(false).is_err());
    target.kill(libc::SIGKILL).unwrap();
    target.wait().unwrap();
}

#[test]
fn caller_stays_dumpable_after_a_child_changes_ids() {
    require_root!();
    // The child shares the caller's memory; the kernel clears the (shared)
    // dumpable flag when it changes ids, and the spawner puts it back.
    // SAFETY: prctl with integer arguments.
    let before = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    assert!(
        Command::new("true")
            .user(1000, 1000)
            .status()
            .unwrap()
            .success()
    );
    let out = stdout_of(
        sh("id -u")
            .new_namespaces(Namespaces::USER)
            .uid_map("0 100000 1".parse().unwrap())
            .gid_map(IdMap::single(0, 100000))
            .user(0, 0),
    );
    assert_eq!(out, "0\n");
    // SAFETY: as above.
    let after = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    assert_eq!(after, before);
}

#[test]
fn passed_fds_become_3_4_and_nothing_else_leaks() {
    use std::os::fd::OwnedFd;
    // Two pipes whose write ends the program gets as fds 3 and 4.
    let (mut r1, w1) = std::io::pipe().unwrap();
    let (mut r2, w2) = std::io::pipe().unwrap();
    let out = stdout_of(
        sh("echo one >&3; echo two >&4; ls /proc/self/fd | sort -n | tr '\\n' ' '")
            .pass_fds([OwnedFd::from(w1), OwnedFd::from(w2)]),
    );
    // 0-2, 3-4, and the fd ls itself opens to list the directory.
    assert!(out.starts_with("0 1 2 3 4 "), "{out}");
    assert!(out.split_whitespace().count() <= 6, "{out}");
    let mut a = String::new();
    let mut b = String::new();
    std::io::Read::read_to_string(&mut r1, &mut a).unwrap();
    std::io::Read::read_to_string(&mut r2, &mut b).unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("one\n", "two\n"));
}
