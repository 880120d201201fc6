//! A small command-line parser with runc's conventions: `--flag value`,
//! `--flag=value`, one or two dashes, short aliases, booleans that also take
//! `=true`/`=false`, repeated flags, and flags only before the first
//! positional argument (or `--`).

use crate::Error;

/// How a flag is spelled and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// The long name, without dashes.
    pub name: &'static str,
    /// A one-letter alias, if any.
    pub short: Option<char>,
    /// True if the flag takes a value.
    pub value: bool,
}

/// A flag with a value.
pub const fn val(name: &'static str, short: Option<char>) -> Flag {
    Flag {
        name,
        short,
        value: true,
    }
}

/// A boolean flag.
pub const fn bool_flag(name: &'static str, short: Option<char>) -> Flag {
    Flag {
        name,
        short,
        value: false,
    }
}

/// Parsed flags and positional arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    flags: Vec<(&'static str, String)>,
    /// The positional arguments, in order.
    pub positional: Vec<String>,
}

impl Parsed {
    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean flag's value (false when absent).
    pub fn is(&self, name: &str) -> bool {
        matches!(self.get(name), Some(v) if v != "false" && v != "0")
    }
}

/// Parses `args` against `flags`. With `stop_at_positional`, everything
/// from the first positional argument on is positional (runc's commands);
/// otherwise parsing stops after the first positional (the global level,
/// where the first positional is the command) and the rest is returned.
pub fn parse(
    args: &[String],
    flags: &[Flag],
    stop_at_first: bool,
) -> Result<(Parsed, Vec<String>), Error> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.positional.extend(args[i..].iter().cloned());
            return Ok((p, Vec::new()));
        }
        if a.len() < 2 || !a.starts_with('-') {
            p.positional.push(a.clone());
            if stop_at_first {
                return Ok((p, args[i..].to_vec()));
            }
            p.positional.extend(args[i..].iter().cloned());
            return Ok((p, Vec::new()));
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = flags
            .iter()
            .find(|f| {
                f.name == name || (name.chars().count() == 1 && f.short == name.chars().next())
            })
            .ok_or_else(|| Error::Usage(format!("flag provided but not defined: -{name}")))?;
        let value = if flag.value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| Error::Usage(format!("flag needs an argument: -{name}")))?;
                    i += 1;
                    v.clone()
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".into(),
                Some("false") | Some("0") => "false".into(),
                Some(v) => {
                    return Err(Error::Usage(format!(
                        "invalid boolean value {v:?} for -{name}"
                    )));
                }
            }
        };
        p.flags.push((flag.name, value));
    }
    Ok((p, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const FLAGS: &[Flag] = &[
        val("bundle", Some('b')),
        bool_flag("detach", Some('d')),
        val("env", Some('e')),
    ];

    #[test]
    fn both_spellings_and_aliases() {
        let (p, rest) = parse(
            &s(&[
                "--bundle", "/b", "-d", "-e=A=1", "--env", "B=2", "id", "sh", "-c",
            ]),
            FLAGS,
            false,
        )
        .unwrap();
        assert!(rest.is_empty());
        assert_eq!(p.get("bundle"), Some("/b"));
        assert!(p.is("detach"));
        assert_eq!(p.all("env"), ["A=1", "B=2"]);
        assert_eq!(p.positional, ["id", "sh", "-c"]);
        let (p, _) = parse(&s(&["-bundle=/c", "--detach=false", "x"]), FLAGS, false).unwrap();
        assert_eq!(p.get("bundle"), Some("/c"));
        assert!(!p.is("detach"));
    }

    #[test]
    fn global_level_stops_at_the_command() {
        let (p, rest) = parse(&s(&["-d", "run", "--bundle", "x"]), FLAGS, true).unwrap();
        assert_eq!(p.positional, ["run"]);
        assert_eq!(rest, ["--bundle", "x"]);
    }

    #[test]
    fn unknown_and_missing_values_are_usage_errors() {
        assert!(parse(&s(&["--nope"]), FLAGS, false).is_err());
        assert!(parse(&s(&["--bundle"]), FLAGS, false).is_err());
        assert!(parse(&s(&["--detach=maybe"]), FLAGS, false).is_err());
    }
}
