//! The `hull` binary driven as runc's callers drive it, on busybox
//! bundles (as root).

mod common;

use std::io::Read;
use std::os::unix::net::UnixListener;

use common::{Sandbox, wait_until};
use serde_json::Value;

#[test]
fn run_exits_with_the_containers_code_and_leaves_nothing() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle(
        "r1",
        &["sh", "-c", "echo hello; hostname; id -u; exit 3"],
        |_| {},
    );
    let o = sb.hull(&["run", "--bundle", b.to_str().unwrap(), "r1"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert_eq!(o.stdout, "hello\nhull\n0\n");
    sb.assert_clean();
    // Killed by a signal from another process: 128 + the signal, as a
    // shell reports it; `state` sees the foreground container meanwhile.
    let b = sb.bundle("r2", &["sleep", "100"], |_| {});
    let bundle = b.to_str().unwrap().to_string();
    let run = std::thread::scope(|s| {
        let h = s.spawn(|| sb.hull(&["run", "-b", &bundle, "r2"]));
        let mut last = None;
        let seen = wait_until(|| {
            let o = sb.hull(&["state", "r2"]);
            let ok = o.stdout.contains("running");
            last = Some(o);
            ok
        });
        assert!(seen, "{last:?}");
        assert_eq!(sb.hull(&["kill", "r2", "SIGKILL"]).code, 0);
        h.join().unwrap()
    });
    assert_eq!(run.code, 137, "{run:?}");
    sb.assert_clean();
}

#[test]
fn signals_to_a_foreground_run_reach_the_container() {
    require_root!();
    let sb = Sandbox::new();
    let script = "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let b = sb.bundle("s1", &["sh", "-c", script], |_| {});
    let out = sb.dir.join("s1.out");
    let mut args = vec!["--root".to_owned(), sb.root().to_str().unwrap().to_owned()];
    args.extend(["run", "-b", b.to_str().unwrap(), "s1"].map(String::from));
    if common::root_is_initramfs() {
        args.insert(3, "--no-pivot".into());
    }
    let mut run = std::process::Command::new(common::HULL)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_until(|| std::fs::read_to_string(&out).is_ok_and(|s| s.contains("ready")));
    // SIGTERM to hull: its handler sends it on to the container's process,
    // whose trap exits with 7, which `run` passes on.
    // SAFETY: kill takes two integers; `run` is our unreaped child.
    unsafe { libc::kill(i32::try_from(run.id()).unwrap(), libc::SIGTERM) };
    let exited = wait_until(|| run.try_wait().unwrap().is_some());
    if !exited {
        // Not forwarded: end it so that nothing is left, then fail.
        sb.hull(&["kill", "s1", "KILL"]);
        let _ = run.wait();
    }
    let status = run.wait().unwrap();
    assert!(ready && exited, "ready {ready}, exited {exited}");
    assert_eq!(status.code(), Some(7));
    sb.assert_clean();
}

#[test]
fn create_start_state_pause_exec_kill_delete_across_processes() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle("c1", &["sleep", "100"], |_| {});
    let pid_file = sb.dir.join("c1.pid");
    let o = sb.hull(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--no-pivot",
        "--no-new-keyring",
        "c1",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let s = sb.state("c1");
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"], pid);
    assert_eq!(s["id"], "c1");
    assert_eq!(s["bundle"], b.to_str().unwrap());
    assert_eq!(s["rootfs"], b.join("rootfs").to_str().unwrap());
    assert!(s["created"].as_str().unwrap().ends_with('Z'));
    // The id is taken.
    let o = sb.hull(&["create", "--bundle", b.to_str().unwrap(), "c1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("container with id exists: c1"), "{o:?}");
    let l: Value = serde_json::from_str(&sb.hull(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(l[0]["id"], "c1");
    assert_eq!(sb.hull(&["list", "-q"]).stdout, "c1\n");
    assert_eq!(sb.hull(&["start", "c1"]).code, 0);
    assert_eq!(sb.state("c1")["status"], "running");
    let o = sb.hull(&["start", "c1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("already running"), "{o:?}");
    let ps: Vec<i32> =
        serde_json::from_str(&sb.hull(&["ps", "--format", "json", "c1"]).stdout).unwrap();
    assert_eq!(ps, [pid]);
    assert_eq!(sb.hull(&["pause", "c1"]).code, 0);
    assert_eq!(sb.state("c1")["status"], "paused");
    let o = sb.hull(&["exec", "c1", "true"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("paused"), "{o:?}");
    assert_eq!(sb.hull(&["resume", "c1"]).code, 0);
    assert_eq!(sb.state("c1")["status"], "running");
    // exec: the container's namespaces and environment, the flags' changes,
    // and the process's exit code.
    let o = sb.hull(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        "c1",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; hostname; exit 5",
    ]);
    assert_eq!(o.code, 5, "{o:?}");
    assert_eq!(o.stdout, "bar\n/tmp\n65534\nhull\n");
    // --process with a JSON file, detached, with a pid file.
    let proc_json = sb.dir.join("proc.json");
    std::fs::write(
        &proc_json,
        r#"{"terminal":false,"user":{"uid":0,"gid":0},"args":["sleep","50"],"env":["PATH=/bin"],"cwd":"/"}"#,
    )
    .unwrap();
    let exec_pid = sb.dir.join("exec.pid");
    let o = sb.hull(&[
        "exec",
        "--process",
        proc_json.to_str().unwrap(),
        "--detach",
        "--pid-file",
        exec_pid.to_str().unwrap(),
        "c1",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let epid: i32 = std::fs::read_to_string(&exec_pid).unwrap().parse().unwrap();
    let ps: Vec<i32> = serde_json::from_str(&sb.hull(&["ps", "-f", "json", "c1"]).stdout).unwrap();
    assert!(ps.contains(&epid) && ps.contains(&pid), "{ps:?}");
    // Not stopped: delete without --force refuses.
    let o = sb.hull(&["delete", "c1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("not stopped: running"), "{o:?}");
    // A signal by number reaches PID 1 only; the exec'd process remains.
    assert_eq!(sb.hull(&["kill", "c1", "9"]).code, 0);
    assert!(wait_until(|| sb.state("c1")["status"] == "stopped"));
    let o = sb.hull(&["kill", "c1", "KILL"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("container not running"), "{o:?}");
    assert_eq!(sb.hull(&["delete", "c1"]).code, 0);
    sb.assert_clean();
    let o = sb.hull(&["state", "c1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("container does not exist"), "{o:?}");
    // --force on a missing container succeeds, as runc's does.
    assert_eq!(sb.hull(&["delete", "--force", "c1"]).code, 0);
}

#[test]
fn kill_all_by_name_and_delete_force() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle("k1", &["sh", "-c", "sleep 100 & sleep 100 & wait"], |_| {});
    let o = sb.hull(&["run", "-d", "--bundle", b.to_str().unwrap(), "k1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(wait_until(|| {
        let o = sb.hull(&["ps", "--format", "json", "k1"]);
        serde_json::from_str::<Vec<i32>>(&o.stdout).is_ok_and(|p| p.len() == 3)
    }));
    assert_eq!(sb.hull(&["kill", "--all", "k1", "SIGKILL"]).code, 0);
    assert!(wait_until(|| sb.state("k1")["status"] == "stopped"));
    assert_eq!(sb.hull(&["delete", "k1"]).code, 0);
    // A running container goes with --force.
    let b = sb.bundle("k2", &["sleep", "100"], |_| {});
    assert_eq!(
        sb.hull(&["run", "--detach", "-b", b.to_str().unwrap(), "k2"])
            .code,
        0
    );
    assert_eq!(sb.hull(&["kill", "k2", "kill"]).code, 0);
    assert!(wait_until(|| sb.state("k2")["status"] == "stopped"));
    let b = sb.bundle("k3", &["sleep", "100"], |_| {});
    assert_eq!(
        sb.hull(&["run", "--detach", "-b", b.to_str().unwrap(), "k3"])
            .code,
        0
    );
    assert_eq!(sb.hull(&["delete", "--force", "k2", "k3"]).code, 0);
    sb.assert_clean();
}

#[test]
fn errors_are_runcs_and_leave_nothing_behind() {
    require_root!();
    let sb = Sandbox::new();
    let log = sb.dir.join("log.json");
    let root = sb.root();
    let o = sb.hull_with(
        &[
            "--root",
            root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &["state", "nope"],
    );
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, "container does not exist\n");
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container does not exist");
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    // Without --log: runc's text line on stderr.
    let o = sb.hull(&["kill", "nope"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with("time=\"")
            && o.stderr
                .contains("level=error msg=\"container does not exist\""),
        "{o:?}"
    );
    // A bundle without config.json.
    let empty = sb.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = sb.hull(&["create", "-b", empty.to_str().unwrap(), "e1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("config.json"), "{o:?}");
    // A field hull cannot honour is named; nothing is left.
    let b = sb.bundle("e2", &["true"], |v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/x", "type": "nfs", "source": "h:/e"}
        ));
    });
    let o = sb.hull(&["create", "-b", b.to_str().unwrap(), "e2"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("mounts[7].type"), "{o:?}");
    // A program missing from the rootfs fails at create... or start.
    let b = sb.bundle("e3", &["/nope"], |_| {});
    let o = sb.hull(&["run", "-b", b.to_str().unwrap(), "e3"]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("/nope") || o.stderr.contains("exec"),
        "{o:?}"
    );
    // A terminal needs a console socket when detached.
    let b = sb.bundle("e4", &["true"], |v| v["process"]["terminal"] = true.into());
    let o = sb.hull(&["create", "-b", b.to_str().unwrap(), "e4"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("console socket"), "{o:?}");
    // Bad ids, flags and commands.
    assert!(
        sb.hull(&["state", "../x"])
            .stderr
            .contains("invalid container id")
    );
    assert_eq!(sb.hull(&["state", "--bogus", "x"]).code, 1);
    assert_eq!(sb.hull(&["frobnicate"]).code, 1);
    let o = sb.hull_with(&["--systemd-cgroup"], &["state", "x"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("--systemd-cgroup is not supported"),
        "{o:?}"
    );
    // Fds to preserve that the caller does not have open.
    let o = sb.hull(&[
        "create",
        "--preserve-fds",
        "2",
        "-b",
        b.to_str().unwrap(),
        "e5",
    ]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("preserve-fds"), "{o:?}");
    sb.assert_clean();
}

#[test]
fn console_socket_receives_the_terminal() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle("t1", &["sh", "-c", "tty; echo done"], |v| {
        v["process"]["terminal"] = true.into();
    });
    let sock = sb.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let accept = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        common::recv_fd(&s)
    });
    let o = sb.hull(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.to_str().unwrap(),
        "t1",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let master = accept.join().unwrap();
    assert_eq!(sb.hull(&["start", "t1"]).code, 0);
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Reading the master ends with EIO once the last slave fd is closed.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        String::from_utf8_lossy(&out).replace('\r', ""),
        "/dev/console\ndone\n"
    );
    assert!(wait_until(|| sb.state("t1")["status"] == "stopped"));
    assert_eq!(sb.hull(&["delete", "t1"]).code, 0);
    sb.assert_clean();
}

#[test]
fn hooks_get_the_state_on_stdin_at_their_points() {
    require_root!();
    let sb = Sandbox::new();
    let out = sb.dir.join("hooks");
    std::fs::create_dir_all(&out).unwrap();
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {o}/{name}; echo >> {o}/{name}; echo $HOOKVAR >> {o}/{name}", o = out.display())],
            "env": ["HOOKVAR=set"],
            "timeout": 5
        })
    };
    let hooks = serde_json::json!({
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [hook("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    let b = sb.bundle("h1", &["sleep", "100"], |v| {
        v["hooks"] = hooks;
        v["annotations"] = serde_json::json!({"a": "b"});
    });
    assert_eq!(
        sb.hull(&["create", "-b", b.to_str().unwrap(), "h1"]).code,
        0
    );
    let read = |name: &str| -> (Value, String) {
        let t = std::fs::read_to_string(out.join(name)).unwrap_or_default();
        let (json, rest) = t.split_once('\n').unwrap_or((&t, ""));
        (
            serde_json::from_str(json).unwrap_or(Value::Null),
            rest.to_string(),
        )
    };
    let (s, env) = read("createRuntime");
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], "h1");
    assert_eq!(s["annotations"]["a"], "b");
    assert_eq!(s["bundle"], b.to_str().unwrap());
    assert_eq!(env, "set\n");
    assert_eq!(read("createContainer").0["status"], "created");
    assert!(!out.join("startContainer").exists());
    assert_eq!(sb.state("h1")["annotations"]["a"], "b");
    assert_eq!(sb.hull(&["start", "h1"]).code, 0);
    assert_eq!(read("startContainer").0["status"], "created");
    assert_eq!(read("poststart").0["status"], "running");
    assert!(read("poststart").0["pid"].as_i64().unwrap() > 0);
    assert!(!out.join("poststop").exists());
    assert_eq!(sb.hull(&["delete", "--force", "h1"]).code, 0);
    assert_eq!(read("poststop").0["status"], "stopped");
    sb.assert_clean();
    // A failing createRuntime hook fails create and removes the container.
    let b = sb.bundle("h2", &["sleep", "100"], |v| {
        v["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]});
    });
    let o = sb.hull(&["create", "-b", b.to_str().unwrap(), "h2"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("hooks.createRuntime[0] /bin/false"),
        "{o:?}"
    );
    sb.assert_clean();
}

#[test]
fn spec_features_and_version() {
    require_root!();
    let sb = Sandbox::new();
    let d = sb.dir.join("spec");
    std::fs::create_dir_all(&d).unwrap();
    assert_eq!(
        sb.hull(&["spec", "--rootless", "-b", d.to_str().unwrap()])
            .code,
        0
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    assert!(
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user")
    );
    assert_eq!(v["linux"]["uidMappings"][0]["size"], 1);
    let o = sb.hull(&["spec", "-b", d.to_str().unwrap()]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("File config.json exists"), "{o:?}");
    let f: Value = serde_json::from_str(&sb.hull(&["features"]).stdout).unwrap();
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    assert!(
        f["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "poststop")
    );
    let o = sb.hull(&["--version"]);
    assert!(o.stdout.starts_with("hull version "), "{o:?}");
}

#[test]
fn events_stats_and_update() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle("u1", &["sleep", "100"], |_| {});
    assert_eq!(
        sb.hull(&["run", "-d", "-b", b.to_str().unwrap(), "u1"])
            .code,
        0
    );
    let o = sb.hull(&["events", "--stats", "u1"]);
    assert_eq!(o.code, 0, "{o:?}");
    let ev: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], "u1");
    assert_eq!(ev["data"]["pids"]["current"], 1);
    // exec'd processes join the container's cgroups (v1 and unified).
    let o = sb.hull(&["exec", "u1", "cat", "/proc/self/cgroup"]);
    let v1: &[&str] = if common::cgroup2_only() {
        &[]
    } else {
        &["memory", "pids"]
    };
    for h in v1 {
        let line = o
            .stdout
            .lines()
            .find(|l| l.split(':').nth(1) == Some(*h))
            .unwrap_or("");
        assert!(line.ends_with(&format!("/{}/u1", sb.name)), "{h}: {o:?}");
    }
    let unified = o
        .stdout
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or("");
    assert!(unified.ends_with(&format!("/{}/u1", sb.name)), "{o:?}");
    let o = sb.hull(&["update", "--memory", "32m", "--pids-limit", "20", "u1"]);
    assert_eq!(o.code, 0, "{o:?}");
    let v2 = common::cgroup2_only();
    let cg = |h: &str, f: &str| {
        let h = if v2 { "" } else { h };
        std::fs::read_to_string(format!("/sys/fs/cgroup/{h}/{}/u1/{f}", sb.name))
            .unwrap()
            .trim()
            .to_string()
    };
    let memory = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(cg("memory", memory), "33554432");
    assert_eq!(cg("pids", "pids.max"), "20");
    let res = sb.dir.join("res.json");
    std::fs::write(&res, r#"{"pids": {"limit": 30}}"#).unwrap();
    assert_eq!(
        sb.hull(&["update", "-r", res.to_str().unwrap(), "u1"]).code,
        0
    );
    let ev: Value =
        serde_json::from_str(sb.hull(&["events", "--stats", "u1"]).stdout.trim()).unwrap();
    assert_eq!(ev["data"]["pids"]["limit"], 30);
    assert_eq!(sb.hull(&["update", "--memory", "lots", "u1"]).code, 1);
    assert_eq!(sb.hull(&["delete", "-f", "u1"]).code, 0);
    let o = sb.hull(&["events", "--stats", "u1"]);
    assert!(o.stderr.contains("container does not exist"), "{o:?}");
    sb.assert_clean();
}

#[test]
fn seccomp_filter_applies_to_the_process_and_to_exec() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle("s1", &["sleep", "100"], |v| {
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        v["root"]["readonly"] = false.into();
    });
    assert_eq!(
        sb.hull(&["run", "-d", "-b", b.to_str().unwrap(), "s1"])
            .code,
        0
    );
    let o = sb.hull(&[
        "exec", "s1", "sh", "-c",
        "grep Seccomp: /proc/1/status; grep Seccomp: /proc/self/status; mkdir /tmp/x 2>/dev/null || echo blocked",
    ]);
    assert_eq!(o.stdout, "Seccomp:\t2\nSeccomp:\t2\nblocked\n", "{o:?}");
    assert_eq!(sb.hull(&["delete", "-f", "s1"]).code, 0);
    sb.assert_clean();
}

#[test]
fn user_namespace_container_leaves_the_hosts_dev_null_alone() {
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle(
        "n1",
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; echo x > /dev/null && echo null-ok",
        ],
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            // The v1 hierarchies cannot be mounted from a user namespace
            // here (EPERM), so this spec leaves /sys/fs/cgroup out.
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys/fs/cgroup");
        },
    );
    let o = sb.hull(&["run", "-b", b.to_str().unwrap(), "n1"]);
    assert_eq!(o.code, 0, "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{o:?}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    assert_eq!(lines[2], "null-ok");
    sb.assert_clean();
}

#[test]
fn preserve_fds_passes_the_callers_fds_and_no_others() {
    use std::os::fd::AsRawFd;
    require_root!();
    let sb = Sandbox::new();
    let b = sb.bundle(
        "pf",
        &[
            "sh",
            "-c",
            "echo through-fd-3 >&3; ls /proc/self/fd | grep -c .",
        ],
        |_| {},
    );
    let (mut rd, wr) = std::io::pipe().unwrap();
    let wr_fd = wr.as_raw_fd();
    let root = sb.root();
    let mut args = vec!["--root", root.to_str().unwrap(), "run"];
    if common::root_is_initramfs() {
        args.push("--no-pivot");
    }
    args.extend(["--preserve-fds", "1", "-b", b.to_str().unwrap(), "pf"]);
    let out = with_fd_3(&args, wr_fd);
    drop(wr);
    let mut through = String::new();
    rd.read_to_string(&mut through).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(through, "through-fd-3\n");
    // 0, 1, 2, 3 and the one ls opens to read the directory.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    // exec takes them too.
    let b = sb.bundle("pf2", &["sleep", "100"], |_| {});
    assert_eq!(
        sb.hull(&["create", "-b", b.to_str().unwrap(), "pf2"]).code,
        0
    );
    assert_eq!(sb.hull(&["start", "pf2"]).code, 0);
    let (mut rd, wr) = std::io::pipe().unwrap();
    let wr_fd = wr.as_raw_fd();
    let out = with_fd_3(
        &[
            "--root",
            root.to_str().unwrap(),
            "exec",
            "--preserve-fds",
            "1",
            "pf2",
            "sh",
            "-c",
            "echo via-exec >&3",
        ],
        wr_fd,
    );
    drop(wr);
    let mut through = String::new();
    rd.read_to_string(&mut through).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(through, "via-exec\n");
    assert_eq!(sb.hull(&["delete", "--force", "pf2"]).code, 0);
    sb.assert_clean();
}

/// Runs the binary with `fd` as its fd 3, as a caller of runc's
/// `--preserve-fds` arranges.
fn with_fd_3(args: &[&str], fd: i32) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(common::HULL);
    cmd.args(args).stdin(std::process::Stdio::null());
    // SAFETY: dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}
