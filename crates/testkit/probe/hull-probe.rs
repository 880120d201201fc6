//! hull-probe: reports what a process sees from inside a container, as one
//! JSON object on stdout. Built by the tests (a static binary, std only) and
//! bound into containers; see `hull_testkit::probe_binary`.

use std::fmt::Write as _;
use std::fs;

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<I: IntoIterator<Item = String>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| json_str(&s)).collect();
    format!("[{}]", v.join(","))
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let status = read("/proc/self/status");
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| fields.push((k.to_string(), v));
    put("hostname", json_str(read("/proc/sys/kernel/hostname").trim()));
    put("pid", std::process::id().to_string());
    let ids = |k: &str| json_list(status_field(&status, k).split_whitespace().map(str::to_string));
    put("uid", ids("Uid:"));
    put("gid", ids("Gid:"));
    put("groups", ids("Groups:"));
    for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"] {
        put(k, json_str(&status_field(&status, &format!("{k}:"))));
    }
    put("uid_map", json_str(&read("/proc/self/uid_map")));
    put("gid_map", json_str(&read("/proc/self/gid_map")));
    let mut ns = Vec::new();
    for k in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        let link = fs::read_link(format!("/proc/self/ns/{k}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        ns.push(format!("{}:{}", json_str(k), json_str(&link)));
    }
    put("namespaces", format!("{{{}}}", ns.join(",")));
    let mounts = read("/proc/self/mountinfo")
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let point = f.nth(4)?.to_string();
            let opts = f.next()?.to_string();
            let fstype = l.split_once(" - ")?.1.split(' ').next()?.to_string();
            Some(format!("{point} {fstype} {opts}"))
        })
        .collect::<Vec<_>>();
    put("mounts", json_list(mounts));
    let mut fds: Vec<String> = fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let target = fs::read_link(e.path())
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    format!("{} {}", e.file_name().to_string_lossy(), target)
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    put("fds", json_list(fds));
    put("cgroup", json_list(read("/proc/self/cgroup").lines().map(str::to_string)));
    let limits = read("/proc/self/limits")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>();
    put("limits", json_list(limits));
    put(
        "cwd",
        json_str(
            &std::env::current_dir()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|e| format!("error: {e}")),
        ),
    );
    put("env", json_list(std::env::vars().map(|(k, v)| format!("{k}={v}"))));
    put("args", json_list(std::env::args().skip(1)));
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", json_str(k))).collect();
    println!("{{{}}}", body.join(","));
}
