//! `hull spec` (a default config.json) and `hull features`.

use serde_json::{Value, json};

/// The runtime spec version hull writes and reports.
pub const OCI_VERSION: &str = "1.2.0";

/// The default configuration: runc's, with hull as the hostname.
const DEFAULT: &str = include_str!("default-spec.json");

/// The default config.json; with `rootless`, changed as runc changes it for
/// a rootless container: a user namespace mapping root to `uid`/`gid`, no
/// network namespace, /sys bound from the host, no `gid=` mount options and
/// no resources.
pub fn default_spec(rootless: Option<(u32, u32)>) -> Value {
    let mut v: Value = serde_json::from_str(DEFAULT).unwrap_or(Value::Null);
    let Some((uid, gid)) = rootless else {
        return v;
    };
    let linux = &mut v["linux"];
    if let Some(o) = linux.as_object_mut() {
        o.remove("resources");
    }
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network" && n["type"] != "user");
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    for m in v["mounts"].as_array_mut().into_iter().flatten() {
        if m["destination"] == "/sys" {
            *m = json!({
                "destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
            });
        }
        if let Some(opts) = m["options"].as_array_mut() {
            opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("gid=")));
        }
    }
    v
}

/// What `hull features` prints (the runtime spec's features document).
pub fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "size"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": (0u8..=40)
                .filter_map(hull_container::Capability::from_number)
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"],
                "operators": ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
                              "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.opencontainers.runtime-spec.features.hull.version": env!("CARGO_PKG_VERSION")}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_as_an_oci_spec() {
        for r in [None, Some((1000, 1000))] {
            let v = default_spec(r);
            let s: hull_container::oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
            assert_eq!(s.hostname().as_deref(), Some("hull"));
        }
        let v = default_spec(Some((1000, 1001)));
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(!v.to_string().contains("gid=5"));
        assert!(!v.to_string().contains("\"network\""));
    }
}
