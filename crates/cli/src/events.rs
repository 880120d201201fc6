//! `hull events` (resource usage as runc's stats events) and `hull
//! update` (new cgroup limits for a running container).

use std::time::Duration;

use hull_cgroup::{CpuWeight, Limit, Resources};
use hull_container::Status;
use serde_json::{Value, json};

use crate::args::{self, bool_flag, val};
use crate::commands::{load, one_id, release};
use crate::{Error, Global};

fn limit_value(l: Limit) -> u64 {
    match l {
        Limit::Value(v) => v,
        _ => u64::MAX,
    }
}

fn stats_event(id: &str, s: &hull_cgroup::Stats) -> Value {
    let mut data = json!({});
    if let Some(c) = &s.cpu {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        data["cpu"] = json!({
            "usage": {"total": ns(c.usage), "user": ns(c.user), "kernel": ns(c.system)},
            "throttling": {"periods": c.nr_periods, "throttledPeriods": c.nr_throttled,
                           "throttledTime": ns(c.throttled)},
        });
    }
    if let Some(m) = &s.memory {
        data["memory"] = json!({
            "usage": {"usage": m.usage, "max": m.max_usage.unwrap_or(0),
                      "limit": m.limit.map_or(u64::MAX, limit_value), "failcnt": m.failcnt},
            "raw": m.stat.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<String, Value>>(),
        });
    }
    if let Some(p) = &s.pids {
        data["pids"] = json!({"current": p.current, "limit": limit_value(p.limit)});
    }
    json!({"type": "stats", "id": id, "data": data})
}

/// `hull events [--stats] [--interval 5s] ID`.
pub fn events(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(
        rest,
        &[bool_flag("stats", None), val("interval", None)],
        false,
    )?;
    let id = one_id(&p, "events")?;
    let interval = parse_duration(p.get("interval").unwrap_or("5s"))?;
    let mut c = load(g, id)?;
    let r = (|| loop {
        if c.status() == Status::Stopped {
            return Err(Error::State("container not running".into()));
        }
        println!("{}", stats_event(id, &c.stats()?));
        if p.is("stats") {
            return Ok(0);
        }
        std::thread::sleep(interval);
    })();
    release(c);
    r
}

/// `5s`, `500ms`, `1m`, or seconds.
fn parse_duration(s: &str) -> Result<Duration, Error> {
    let bad = || Error::Usage(format!("invalid interval {s:?}"));
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(bad()),
    }
}

/// A byte count as runc takes it: a number with an optional k, m, g or t
/// (binary units), or -1 for unlimited.
fn parse_bytes(s: &str) -> Result<Limit, Error> {
    if s == "-1" {
        return Ok(Limit::Max);
    }
    let bad = || Error::Usage(format!("invalid size {s:?}"));
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).map(Limit::Value).ok_or_else(bad)
}

fn json_limit(v: &Value) -> Option<Limit> {
    v.as_i64()
        .map(|n| u64::try_from(n).map_or(Limit::Max, Limit::Value))
}

/// `hull update [flags] ID`: runc's resource flags, or `--resources FILE`
/// (`-` for stdin) with the spec's `linux.resources` JSON.
pub fn update(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(
        rest,
        &[
            val("resources", Some('r')),
            val("memory", None),
            val("memory-reservation", None),
            val("memory-swap", None),
            val("pids-limit", None),
            val("cpu-shares", None),
            val("cpu-quota", None),
            val("cpu-period", None),
            val("cpuset-cpus", None),
            val("cpuset-mems", None),
        ],
        false,
    )?;
    let id = one_id(&p, "update")?;
    let mut j = match p.get("resources") {
        Some("-") => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(|source| {
                Error::Io {
                    action: "read",
                    path: "stdin".into(),
                    source,
                }
            })?;
            serde_json::from_str(&t).map_err(|e| Error::Usage(format!("--resources: {e}")))?
        }
        Some(path) => {
            let t = std::fs::read_to_string(path).map_err(|source| Error::Io {
                action: "read",
                path: path.into(),
                source,
            })?;
            serde_json::from_str(&t).map_err(|e| Error::Usage(format!("--resources: {e}")))?
        }
        None => json!({}),
    };
    let num = |k: &str| -> Result<Option<i64>, Error> {
        p.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| Error::Usage(format!("--{k}: {v:?}")))
            })
            .transpose()
    };
    let mut b = Resources::builder();
    for (flag, field) in [
        ("memory", "limit"),
        ("memory-reservation", "reservation"),
        ("memory-swap", "swap"),
    ] {
        if let Some(v) = p.get(flag) {
            let l = parse_bytes(v)?;
            j["memory"][field] = match l {
                Limit::Value(n) => json!(n),
                _ => json!(-1),
            };
        }
    }
    if let Some(n) = num("pids-limit")? {
        j["pids"]["limit"] = json!(n);
    }
    for (flag, field) in [
        ("cpu-shares", "shares"),
        ("cpu-quota", "quota"),
        ("cpu-period", "period"),
    ] {
        if let Some(n) = num(flag)? {
            j["cpu"][field] = json!(n);
        }
    }
    for (flag, field) in [("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")] {
        if let Some(v) = p.get(flag) {
            j["cpu"][field] = json!(v);
        }
    }
    let m = &j["memory"];
    if let Some(l) = json_limit(&m["limit"]) {
        b = b.memory_limit_opt(l);
    }
    if let Some(l) = json_limit(&m["reservation"]) {
        b = b.memory_low(l);
    }
    if let Some(l) = json_limit(&m["swap"]) {
        b = b.memory_swap(l);
    }
    if let Some(l) = json_limit(&j["pids"]["limit"]) {
        b = b.pids_max(l);
    }
    let cpu = &j["cpu"];
    if let Some(s) = cpu["shares"].as_u64() {
        b = b.cpu_weight(CpuWeight::Shares(s));
    }
    if let Some(q) = cpu["quota"].as_i64() {
        let period = cpu["period"].as_u64().unwrap_or(100_000);
        b = match u64::try_from(q) {
            Ok(q) => b.cpu_quota(q, period),
            Err(_) => b.cpu_unlimited(),
        };
    }
    let cg_err = |e: hull_cgroup::Error| Error::Usage(format!("resources: {e}"));
    if let Some(c) = cpu["cpus"].as_str() {
        b = b.cpus(c).map_err(cg_err)?;
    }
    if let Some(m) = cpu["mems"].as_str() {
        b = b.mems(m).map_err(cg_err)?;
    }
    let res = b.build().map_err(cg_err)?;
    let mut c = load(g, id)?;
    let r = (|| {
        if c.status() == Status::Stopped {
            return Err(Error::State("container not running".into()));
        }
        let cg = c
            .cgroup()
            .ok_or_else(|| Error::State(format!("container {id} has no cgroup")))?;
        cg.apply(&res).map_err(|source| {
            Error::Container(hull_container::Error::Cgroup {
                id: id.to_string(),
                source,
            })
        })
    })();
    release(c);
    r.map(|()| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert!(matches!(parse_bytes("64m"), Ok(Limit::Value(67_108_864))));
        assert!(matches!(parse_bytes("1G"), Ok(Limit::Value(1_073_741_824))));
        assert!(matches!(parse_bytes("100"), Ok(Limit::Value(100))));
        assert!(matches!(parse_bytes("-1"), Ok(Limit::Max)));
        assert!(parse_bytes("x").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("1h").is_err());
    }
}
