//! The contents of a container's `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`. Pure functions: the caller writes the text where the
//! container will see it (usually a bind mount).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::error::{Error, Result};

/// One `/etc/hosts` line: an address and its names (the first is the
/// canonical one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    /// The address.
    pub addr: IpAddr,
    /// Its names: a linked container's name, then its aliases.
    pub names: Vec<String>,
}

impl HostsEntry {
    /// An entry for `addr` with one name.
    pub fn new(addr: IpAddr, name: &str) -> Self {
        HostsEntry {
            addr,
            names: vec![name.to_string()],
        }
    }

    /// Adds an alias.
    pub fn alias(mut self, name: &str) -> Self {
        self.names.push(name.to_string());
        self
    }
}

/// Checks a host name: 1 to 253 bytes of dot-separated labels, each 1 to
/// 63 bytes of letters, digits, `-` and `_`, not starting or ending with `-`.
///
/// # Errors
/// [`Error::InvalidConfig`] naming the host name.
pub fn validate_hostname(name: &str) -> Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(Error::InvalidConfig {
            field: "hostname",
            reason: format!("{name:?} is not a valid host name"),
        });
    }
    Ok(())
}

/// `/etc/hosts` for a container named `hostname` whose address is
/// `addr` (or `127.0.1.1` when it has none, e.g. network mode none), with
/// one line per linked container.
///
/// ```
/// use hull_netns::{HostsEntry, hosts_file};
/// let text = hosts_file(
///     "web",
///     Some("198.18.0.2".parse().unwrap()),
///     &[HostsEntry::new("198.18.0.3".parse().unwrap(), "db").alias("database")],
/// )
/// .unwrap();
/// assert!(text.contains("198.18.0.2\tweb\n"));
/// assert!(text.contains("198.18.0.3\tdb database\n"));
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid host name or link name.
pub fn hosts_file(hostname: &str, addr: Option<IpAddr>, links: &[HostsEntry]) -> Result<String> {
    validate_hostname(hostname)?;
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    let own = addr.unwrap_or(IpAddr::from([127, 0, 1, 1]));
    let _ = writeln!(s, "{own}\t{hostname}");
    for l in links {
        if l.names.is_empty() {
            return Err(Error::InvalidConfig {
                field: "hosts link",
                reason: format!("{} has no name", l.addr),
            });
        }
        for n in &l.names {
            validate_hostname(n)?;
        }
        let _ = writeln!(s, "{}\t{}", l.addr, l.names.join(" "));
    }
    Ok(s)
}

/// `/etc/hostname`: the name and a newline.
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid host name.
pub fn hostname_file(hostname: &str) -> Result<String> {
    validate_hostname(hostname)?;
    Ok(format!("{hostname}\n"))
}

/// `/etc/resolv.conf` from explicit settings. glibc reads at most three
/// name servers; more is an error rather than a silent truncation.
///
/// # Errors
/// [`Error::InvalidConfig`] for more than three servers, a bad search
/// domain or an option with whitespace.
pub fn resolv_conf(
    nameservers: &[IpAddr],
    search: &[String],
    options: &[String],
) -> Result<String> {
    if nameservers.len() > 3 {
        return Err(Error::InvalidConfig {
            field: "nameservers",
            reason: format!("{} given, resolvers read at most 3", nameservers.len()),
        });
    }
    let mut s = String::new();
    for d in search {
        validate_hostname(d.trim_end_matches('.')).map_err(|_| Error::InvalidConfig {
            field: "search domain",
            reason: format!("{d:?} is not a domain"),
        })?;
    }
    if !search.is_empty() {
        let _ = writeln!(s, "search {}", search.join(" "));
    }
    for n in nameservers {
        let _ = writeln!(s, "nameserver {n}");
    }
    for o in options {
        if o.is_empty() || o.chars().any(char::is_whitespace) {
            return Err(Error::InvalidConfig {
                field: "resolver option",
                reason: format!("{o:?} is empty or holds whitespace"),
            });
        }
    }
    if !options.is_empty() {
        let _ = writeln!(s, "options {}", options.join(" "));
    }
    Ok(s)
}

/// A container's `/etc/resolv.conf` derived from the host's: loopback name
/// servers (a local stub resolver such as 127.0.0.53, unreachable from
/// the container's namespace) are dropped; search and options lines are
/// kept; comments and unknown lines go. If no name server is left, the
/// result has none (give [`resolv_conf`] explicit ones instead).
pub fn resolv_conf_from_host(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("nameserver") => {
                let Some(Ok(ip)) = it.next().map(str::parse::<IpAddr>) else {
                    continue;
                };
                if ip.is_loopback() || servers == 3 {
                    continue;
                }
                servers += 1;
                let _ = writeln!(out, "nameserver {ip}");
            }
            Some(k @ ("search" | "domain" | "options")) => {
                let rest: Vec<&str> = it.collect();
                if !rest.is_empty() {
                    let _ = writeln!(out, "{k} {}", rest.join(" "));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts_has_localhost_self_and_links() {
        let t = hosts_file(
            "c1",
            Some("198.18.0.2".parse().unwrap()),
            &[
                HostsEntry::new("198.18.0.3".parse().unwrap(), "c2"),
                HostsEntry::new("198.18.0.4".parse().unwrap(), "c3").alias("db"),
            ],
        )
        .unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert!(lines.contains(&"198.18.0.2\tc1"));
        assert!(lines.contains(&"198.18.0.3\tc2"));
        assert!(lines.contains(&"198.18.0.4\tc3 db"));
        let t = hosts_file("solo", None, &[]).unwrap();
        assert!(t.contains("127.0.1.1\tsolo\n"));
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["", "-a", "a-", "a b", "a\nb", "a..b", &"x".repeat(64)] {
            assert!(hosts_file(bad, None, &[]).is_err(), "{bad:?}");
            assert!(hostname_file(bad).is_err(), "{bad:?}");
        }
        let ip = "198.18.0.3".parse().unwrap();
        assert!(hosts_file("ok", None, &[HostsEntry::new(ip, "bad name")]).is_err());
        assert!(
            hosts_file(
                "ok",
                None,
                &[HostsEntry {
                    addr: ip,
                    names: vec![]
                }]
            )
            .is_err()
        );
        assert_eq!(hostname_file("web-1.example").unwrap(), "web-1.example\n");
    }

    #[test]
    fn resolv_conf_explicit() {
        let t = resolv_conf(
            &["198.18.0.53".parse().unwrap()],
            &["example.test".into()],
            &["ndots:2".into()],
        )
        .unwrap();
        assert_eq!(
            t,
            "search example.test\nnameserver 198.18.0.53\noptions ndots:2\n"
        );
        let four: Vec<IpAddr> = (1..=4).map(|i| IpAddr::from([198, 18, 0, i])).collect();
        assert!(resolv_conf(&four, &[], &[]).is_err());
        assert!(resolv_conf(&[], &["bad domain".into()], &[]).is_err());
        assert!(resolv_conf(&[], &[], &["a b".into()]).is_err());
    }

    #[test]
    fn resolv_conf_from_host_drops_loopback() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 198.18.0.53\nsearch lan\noptions edns0 trust-ad\nbogus line\n";
        assert_eq!(
            resolv_conf_from_host(host),
            "nameserver 198.18.0.53\nsearch lan\noptions edns0 trust-ad\n"
        );
    }

    proptest! {
        #[test]
        fn generators_never_panic(name in "\\PC{0,80}", host in "\\PC{0,300}") {
            let _ = hosts_file(&name, None, &[]);
            let _ = hostname_file(&name);
            let _ = resolv_conf_from_host(&host);
        }

        #[test]
        fn valid_hostnames_appear_verbatim(name in "[a-z][a-z0-9]{0,20}") {
            let t = hosts_file(&name, None, &[]).unwrap();
            let needle = format!("\t{}\n", name);
            prop_assert!(t.contains(&needle));
        }
    }
}
