//! Containers end to end, as root, with the host-derived root.

use std::time::Duration;

use hull_container::{Container, Error, ExitStatus, Mount, Status, Stdio};
use hull_testkit::Snapshot;

mod common;

use common::{Runtime, pipe, run_output};

#[test]
fn host_rootfs_container_sees_only_itself() {
    require_root!();
    let rt = Runtime::new();
    let before = Snapshot::take();
    let script = "hostname; echo pid=$$; id -u; ls /; ps -e -o pid= | wc -l; \
                  grep -c . /proc/self/mountinfo >/dev/null && echo mounts-ok; \
                  echo x > /dev/null && echo devnull-ok; ls /dev/pts/ptmx >/dev/null && echo pts-ok; \
                  grep CapInh /proc/self/status; grep NoNewPrivs /proc/self/status; ulimit -n; \
                  touch /proc/sys/kernel/hostname 2>/dev/null || echo proc-sys-ro; \
                  touch /usr/hull-x 2>/dev/null || echo usr-ro; \
                  echo lo-flags=$(cat /sys/class/net/lo/flags)";
    let (s, out) = run_output(rt.builder("t1").hostname("box1").args(["sh", "-c", script]));
    assert!(s.success(), "{s}: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1");
    assert_eq!(lines[1], "pid=1");
    assert_eq!(lines[2], "0");
    assert!(
        out.contains("\nproc\n") && out.contains("\nusr\n") && out.contains("\netc\n"),
        "{out}"
    );
    for want in [
        "mounts-ok",
        "devnull-ok",
        "pts-ok",
        "NoNewPrivs:\t1",
        "CapInh:\t0000000000000000",
        "1024",
        "proc-sys-ro",
        "usr-ro",
        "lo-flags=0x9",
    ] {
        assert!(out.lines().any(|l| l == want), "missing {want:?} in {out}");
    }
    assert!(rt.is_empty(), "runtime dir left behind");
    before.assert_no_leaks(&[]);
}

#[test]
fn run_starts_without_the_gate_and_a_missing_program_leaves_nothing() {
    require_root!();
    let rt = Runtime::new();
    let before = Snapshot::take();
    let (rd, wr) = pipe();
    let cfg = rt
        .builder("t-run")
        .persist(true)
        .args(["sh", "-c", "echo ran; exit 5"])
        .build()
        .unwrap();
    let mut c =
        Container::run_with_stdio(cfg, [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit]).unwrap();
    // Never created-but-not-started: running (or done already).
    assert_ne!(c.status(), Status::Created);
    assert!(matches!(c.start(), Err(Error::State { .. })));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    assert_eq!(out, "ran\n");
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(5));
    c.delete().unwrap();
    // The execve fails `run_with_stdio` itself, naming the program.
    let cfg = rt
        .builder("t-run2")
        .persist(true)
        .args(["/nope"])
        .build()
        .unwrap();
    let e = Container::run_with_stdio(cfg, [Stdio::Null, Stdio::Null, Stdio::Null]).unwrap_err();
    assert!(matches!(e, Error::Process { .. }), "{e}");
    assert!(e.to_string().contains("/nope"), "{e}");
    assert!(rt.is_empty(), "runtime dir left behind");
    before.assert_no_leaks(&[]);
}

#[test]
fn create_start_split_and_exit_codes() {
    require_root!();
    let rt = Runtime::new();
    let marker = rt.0.join("marker-dir");
    std::fs::create_dir(&marker).unwrap();
    let mut c = rt
        .builder("t2")
        .mount(Mount::bind(&marker, "/out"))
        .args(["sh", "-c", "touch /out/ran; exit 7"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    assert_eq!(c.status(), Status::Created);
    let st = c.state();
    assert_eq!(st.status, Status::Created);
    assert!(st.pid > 0);
    assert!(st.to_json().contains("\"status\":\"created\""));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!marker.join("ran").exists(), "ran before start");
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(7));
    assert!(marker.join("ran").exists());
    assert_eq!(c.status(), Status::Stopped);
    assert!(matches!(c.start(), Err(Error::State { .. })));
    c.delete().unwrap();
    c.delete().unwrap(); // idempotent
}

#[test]
fn kill_stop_and_signals_come_back() {
    require_root!();
    let rt = Runtime::new();
    let mut c = common::started(rt.builder("t3").args(["sleep", "100"]));
    assert_eq!(c.status(), Status::Running);
    c.kill(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(matches!(c.kill(libc::SIGTERM), Err(Error::State { .. })));
    drop(c);

    // sleep as PID 1 ignores SIGTERM (no handler): stop escalates to SIGKILL.
    let mut c = common::started(rt.builder("t4").args(["sleep", "100"]));
    let s = c.stop(Duration::from_millis(200)).unwrap();
    assert_eq!(s.signal(), Some(libc::SIGKILL));
    c.delete().unwrap();

    // With the init, SIGTERM reaches the program.
    let mut c = common::started(rt.builder("t5").init(true).args([
        "sh",
        "-c",
        "trap 'exit 3' TERM; while :; do sleep 0.02; done",
    ]));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        c.stop(Duration::from_secs(5)).unwrap(),
        ExitStatus::Exited(3)
    );
    c.delete().unwrap();
    drop(c);
    assert!(rt.is_empty());
}

#[test]
fn delete_of_created_never_started_container() {
    require_root!();
    let rt = Runtime::new();
    let mut c = rt
        .builder("t6")
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    let pid = c.pid().unwrap();
    c.delete().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(rt.is_empty());
}

#[test]
fn exec_joins_the_running_container() {
    require_root!();
    let rt = Runtime::new();
    let mut c = common::started(rt.builder("t7").hostname("exec-box").args(["sleep", "100"]));
    let (rd, wr) = pipe();
    let mut child = c
        .exec(
            ["sh", "-c", "hostname; ps -e -o pid=,comm= | tr -s ' '"],
            [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
        )
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exec-box");
    assert!(lines.iter().any(|l| l.trim() == "1 sleep"), "{out}");
    // The exec'd process is in the container's cgroups: inside its cgroup
    // namespace, at the root.
    let (rd, wr) = pipe();
    let mut child = c
        .exec(
            ["cat", "/proc/self/cgroup"],
            [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
        )
        .unwrap();
    let mut cg = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut cg).unwrap();
    assert!(child.wait().unwrap().success());
    for line in cg.lines() {
        assert!(
            line.ends_with(":/"),
            "exec not in the container's cgroup: {line}"
        );
    }
    let procs = c.processes().unwrap();
    assert_eq!(procs, vec![c.pid().unwrap()]);
    c.delete().unwrap();
    assert!(matches!(
        c.exec(["true"], [Stdio::Null, Stdio::Null, Stdio::Null]),
        Err(Error::State { .. })
    ));
}

#[test]
fn bad_input_gets_typed_errors_and_leaves_nothing() {
    require_root!();
    let rt = Runtime::new();
    let before = Snapshot::take();
    // A program missing from the rootfs: the exec step, ENOENT, named.
    let err = rt
        .builder("t8")
        .args(["hull-no-such-program"])
        .build()
        .unwrap()
        .create()
        .unwrap()
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("hull-no-such-program"), "{err}");
    assert!(matches!(
        Container::builder("a/b").build(),
        Err(Error::Invalid { field: "id", .. })
    ));
    assert!(matches!(
        Container::builder("x")
            .rootfs(hull_container::Rootfs::Dir("/nonexistent".into()))
            .build(),
        Err(Error::Path {
            field: "rootfs",
            ..
        })
    ));
    assert!(matches!(
        Container::builder("x")
            .mount(Mount::bind("/nonexistent-src", "/m"))
            .build(),
        Err(Error::Path {
            field: "mounts",
            ..
        })
    ));
    // A second container with the same id is refused while the first exists.
    let _first = rt
        .builder("dup")
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    let err = rt
        .builder("dup")
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap_err();
    assert!(matches!(err, Error::RuntimeDir { .. }), "{err:?}");
    drop(_first);
    assert!(rt.is_empty());
    before.assert_no_leaks(&[]);
}

#[test]
fn hundred_cycles_leave_nothing_behind() {
    require_root!();
    let rt = Runtime::new();
    let cgroups: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(rt.cgroup_parent()))
        .collect();
    let roots: Vec<&std::path::Path> = cgroups.iter().map(|p| p.as_path()).collect();
    let before = Snapshot::take_with_cgroups(&roots);
    // Each container's init, by pid and start time (a recycled pid is
    // another process).
    let start_time = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(19).map(str::to_string))
            })
    };
    let mut inits = Vec::new();
    for i in 0..100 {
        let mut c = rt
            .builder(&format!("cycle{i}"))
            .args(["true"])
            .build()
            .unwrap()
            .create()
            .unwrap();
        inits.push((c.pid().unwrap(), start_time(c.pid().unwrap())));
        c.start().unwrap();
        assert!(c.wait().unwrap().success());
        c.delete().unwrap();
    }
    assert!(rt.is_empty());
    // No mount, link, netns or cgroup left, and no container process (so
    // no namespace kept alive: nothing here holds a namespace fd).
    before.assert_no_leaks(&roots);
    for (pid, t) in inits {
        assert!(
            t.is_none() || start_time(pid) != t,
            "container init {pid} still alive"
        );
    }
}

#[test]
fn ten_containers_in_parallel() {
    require_root!();
    let rt = std::sync::Arc::new(Runtime::new());
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let (s, out) = run_output(
                    rt.builder(&format!("par{i}"))
                        .hostname(format!("par{i}"))
                        .args(["hostname"]),
                );
                assert!(s.success());
                assert_eq!(out.trim(), format!("par{i}"));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(rt.is_empty());
}

/// Brings a new container (`sleep 100`) to `state`.
fn in_state(rt: &Runtime, id: &str, state: Status) -> Container {
    let mut c = rt
        .builder(id)
        .args(["sleep", "100"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    match state {
        Status::Created => {}
        Status::Running => c.start().unwrap(),
        Status::Paused => {
            c.start().unwrap();
            c.pause().unwrap();
        }
        Status::Stopped => {
            c.start().unwrap();
            c.kill(libc::SIGKILL).unwrap();
            c.wait().unwrap();
        }
    }
    assert_eq!(c.status(), state);
    c
}

#[test]
fn every_operation_in_every_state() {
    require_root!();
    let rt = Runtime::new();
    let states = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Stopped,
    ];
    let null = || [Stdio::Null, Stdio::Null, Stdio::Null];
    for (i, state) in states.into_iter().enumerate() {
        let id = |op: &str| format!("m{i}-{op}");
        // kill: refused only once stopped.
        let mut c = in_state(&rt, &id("kill"), state);
        assert_eq!(
            c.kill(libc::SIGKILL).is_ok(),
            state != Status::Stopped,
            "kill in {state}"
        );
        c.delete().unwrap();
        // stop: always ends stopped.
        let mut c = in_state(&rt, &id("stop"), state);
        if state == Status::Paused {
            c.resume().unwrap();
        }
        c.stop(Duration::from_millis(100)).unwrap();
        assert_eq!(c.status(), Status::Stopped);
        c.delete().unwrap();
        // pause: only when running; resume: only when paused.
        let mut c = in_state(&rt, &id("pause"), state);
        assert_eq!(
            c.pause().is_ok(),
            state == Status::Running,
            "pause in {state}"
        );
        c.delete().unwrap();
        let mut c = in_state(&rt, &id("resume"), state);
        assert_eq!(
            c.resume().is_ok(),
            state == Status::Paused,
            "resume in {state}"
        );
        c.delete().unwrap();
        // exec: only when running.
        let mut c = in_state(&rt, &id("exec"), state);
        match c.exec(["true"], null()) {
            Ok(mut child) => {
                assert_eq!(state, Status::Running);
                assert!(child.wait().unwrap().success());
            }
            Err(Error::State { .. }) => assert_ne!(state, Status::Running),
            Err(e) => panic!("exec in {state}: {e}"),
        }
        // delete: always works, twice.
        c.delete().unwrap();
        c.delete().unwrap();
        assert_eq!(c.status(), Status::Stopped);
    }
    assert!(rt.is_empty());
}

#[test]
fn no_pivot_enters_the_root_by_move_and_chroot() {
    require_root!();
    let rt = Runtime::new();
    let (s, out) = run_output(rt.builder("np").no_pivot(true).hostname("np").args([
        "sh",
        "-c",
        "hostname; ls / | grep -c .; test -e /usr/bin/sh && echo usr-ok",
    ]));
    assert!(s.success(), "{s}: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "np");
    assert_eq!(lines[2], "usr-ok");
    assert!(rt.is_empty());
}
