//! A small image builder: a Dockerfile subset, each `RUN` executed in a
//! container and committed as a layer.
//!
//! Supported: `FROM` (a reference in the store's layout, or `scratch`),
//! `RUN`, `COPY` (from the build context, resolved inside it), `ENV`,
//! `WORKDIR`, `USER`, `CMD`, `ENTRYPOINT`, `LABEL`, `EXPOSE`; comments and
//! `\` line continuations. Anything else (`ADD`, `ARG`, multi-stage
//! builds, `COPY --from`, variable substitution outside `RUN`) is refused
//! with an error naming the line.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hull_image_layers::ResolvedImage;
use hull_image_layers::oci::{Descriptor, ImageConfiguration};
use hull_ns::Stdio;

use crate::commit::{CommitOptions, push_history};
use crate::config::ContainerBuilder;
use crate::image::{ImageStore, exists_in_lowers};
use crate::{Container, Error, Result};

/// One instruction of the supported subset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Instruction {
    /// `FROM reference` or `FROM scratch` (`None`).
    From(Option<String>),
    /// `RUN`: the command (shell form as `/bin/sh -c TEXT`).
    Run(Vec<String>),
    /// `COPY src... dest`, sources relative to the build context.
    Copy {
        /// Paths in the build context.
        sources: Vec<String>,
        /// Path in the image (relative to the working directory if not
        /// absolute).
        dest: String,
    },
    /// `ENV name=value...` or `ENV name value`.
    Env(Vec<(String, String)>),
    /// `WORKDIR path`.
    Workdir(String),
    /// `USER user[:group]`.
    User(String),
    /// `CMD`: the default arguments (shell form as `/bin/sh -c TEXT`).
    Cmd(Vec<String>),
    /// `ENTRYPOINT` (shell form as `/bin/sh -c TEXT`).
    Entrypoint(Vec<String>),
    /// `LABEL name=value...`.
    Label(Vec<(String, String)>),
    /// `EXPOSE port[/proto]...`, as `port/proto`.
    Expose(Vec<String>),
}

/// One step of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The line it starts on (1-based).
    pub line: usize,
    /// The instruction's text as written (continuations joined).
    pub text: String,
    /// The parsed instruction.
    pub instruction: Instruction,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The steps, in order; the first is a `FROM`.
    pub steps: Vec<Step>,
}

fn bad(line: usize, problem: impl Into<String>) -> Error {
    Error::Dockerfile {
        line,
        problem: problem.into(),
    }
}

/// Splits on whitespace, keeping double- or single-quoted parts together
/// (quotes removed, `\"` kept as `"`).
fn words(text: &str, line: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(bad(line, "unterminated quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The exec form (a JSON array of strings) or the shell form.
fn command(args: &str, line: usize) -> Result<Vec<String>> {
    if args.starts_with('[') {
        let v: Vec<String> = serde_json::from_str(args)
            .map_err(|e| bad(line, format!("not a JSON array of strings: {e}")))?;
        if v.is_empty() {
            return Err(bad(line, "empty command"));
        }
        return Ok(v);
    }
    if args.is_empty() {
        return Err(bad(line, "empty command"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), args.into()])
}

fn key_values(args: &str, line: usize, legacy: bool) -> Result<Vec<(String, String)>> {
    let first = args.split_whitespace().next().unwrap_or("");
    if legacy && !first.contains('=') {
        // `ENV name value with spaces`
        let value = args[first.len()..].trim();
        if first.is_empty() || value.is_empty() {
            return Err(bad(line, "expected NAME VALUE or NAME=VALUE"));
        }
        return Ok(vec![(first.to_string(), value.to_string())]);
    }
    let mut out = Vec::new();
    for w in words(args, line)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| bad(line, format!("{w:?}: expected NAME=VALUE")))?;
        if k.is_empty() {
            return Err(bad(line, format!("{w:?}: empty name")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.is_empty() {
        return Err(bad(line, "expected NAME=VALUE"));
    }
    Ok(out)
}

impl Dockerfile {
    /// Parses the supported subset.
    ///
    /// # Errors
    /// [`Error::Dockerfile`] naming the line: an unsupported instruction or
    /// option, a malformed argument, a first instruction that is not `FROM`.
    pub fn parse(text: &str) -> Result<Dockerfile> {
        let mut steps = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = raw.trim();
            if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if pending.is_some() && trimmed.starts_with('#') {
                continue;
            }
            let (start, mut acc) = pending.take().unwrap_or((n, String::new()));
            if let Some(head) = trimmed.strip_suffix('\\') {
                acc.push_str(head);
                acc.push(' ');
                pending = Some((start, acc));
                continue;
            }
            acc.push_str(trimmed);
            steps.push(Self::parse_line(start, acc.trim())?);
        }
        if let Some((start, acc)) = pending {
            steps.push(Self::parse_line(start, acc.trim())?);
        }
        match steps.first() {
            None => Err(bad(1, "no instructions")),
            Some(s) if !matches!(s.instruction, Instruction::From(_)) => {
                Err(bad(s.line, "the first instruction must be FROM"))
            }
            _ => Ok(Dockerfile { steps }),
        }
    }

    fn parse_line(line: usize, text: &str) -> Result<Step> {
        let (kw, args) = match text.split_once(char::is_whitespace) {
            Some((k, a)) => (k, a.trim()),
            None => (text, ""),
        };
        let instruction = match kw.to_ascii_uppercase().as_str() {
            "FROM" => {
                let w = words(args, line)?;
                match w.as_slice() {
                    [r] if r.starts_with("--") => {
                        return Err(bad(line, format!("FROM option {r} is not supported")));
                    }
                    [r] if r == "scratch" => Instruction::From(None),
                    [r] => Instruction::From(Some(r.clone())),
                    [_, a, _] if a.eq_ignore_ascii_case("as") => {
                        return Err(bad(
                            line,
                            "multi-stage builds (FROM ... AS) are not supported",
                        ));
                    }
                    _ => return Err(bad(line, "FROM takes one image reference")),
                }
            }
            "RUN" => {
                if args.starts_with("--") {
                    return Err(bad(line, "RUN options are not supported"));
                }
                Instruction::Run(command(args, line)?)
            }
            "CMD" => Instruction::Cmd(command(args, line)?),
            "ENTRYPOINT" => Instruction::Entrypoint(command(args, line)?),
            "COPY" => {
                let mut w = if args.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(args)
                        .map_err(|e| bad(line, format!("not a JSON array of strings: {e}")))?
                } else {
                    words(args, line)?
                };
                if let Some(o) = w.iter().find(|s| s.starts_with("--")) {
                    return Err(bad(line, format!("COPY option {o} is not supported")));
                }
                if w.len() < 2 {
                    return Err(bad(line, "COPY needs a source and a destination"));
                }
                let dest = w.pop().unwrap_or_default();
                Instruction::Copy { sources: w, dest }
            }
            "ENV" => Instruction::Env(key_values(args, line, true)?),
            "LABEL" => Instruction::Label(key_values(args, line, false)?),
            "WORKDIR" => {
                if args.is_empty() {
                    return Err(bad(line, "WORKDIR needs a path"));
                }
                Instruction::Workdir(args.to_string())
            }
            "USER" => {
                if args.is_empty() || args.contains(char::is_whitespace) {
                    return Err(bad(line, "USER takes one user[:group]"));
                }
                Instruction::User(args.to_string())
            }
            "EXPOSE" => {
                let mut ports = Vec::new();
                for w in words(args, line)? {
                    let (p, proto) = w.split_once('/').unwrap_or((&w, "tcp"));
                    let proto = proto.to_ascii_lowercase();
                    if p.parse::<u16>().map_or(true, |p| p == 0)
                        || !["tcp", "udp"].contains(&proto.as_str())
                    {
                        return Err(bad(line, format!("{w:?}: expected PORT or PORT/tcp|udp")));
                    }
                    ports.push(format!("{p}/{proto}"));
                }
                if ports.is_empty() {
                    return Err(bad(line, "EXPOSE needs a port"));
                }
                Instruction::Expose(ports)
            }
            other => {
                return Err(bad(line, format!("unsupported instruction {other}")));
            }
        };
        Ok(Step {
            line,
            text: text.to_string(),
            instruction,
        })
    }
}

/// Builds images from a [`Dockerfile`].
///
/// Each step's intermediate image is written to the layout untagged (its
/// config and manifest blobs go at the next
/// [`ImageLayout::gc`](hull_image_layers::ImageLayout::gc)); the layers are
/// those of the final image.
///
/// ```no_run
/// use hull_container::{Dockerfile, ImageBuilder, ImageStore};
///
/// let store = ImageStore::open("/var/lib/hull/images", "/var/lib/hull/snapshots")?;
/// let file = Dockerfile::parse("FROM base\nRUN echo hi > /greeting\nCMD [\"cat\", \"/greeting\"]\n")?;
/// let image = ImageBuilder::new(&store, "/srv/app")
///     .configure(|b| b.runtime_root("/run/hull-build"))
///     .build(&file, "app:1", &mut |line| println!("{line}"))?;
/// println!("{}", image.descriptor.digest());
/// # Ok::<(), hull_container::Error>(())
/// ```
pub struct ImageBuilder<'a> {
    store: &'a ImageStore,
    context: PathBuf,
    configure: Box<dyn Fn(ContainerBuilder) -> ContainerBuilder + 'a>,
    quiet: bool,
}

impl std::fmt::Debug for ImageBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBuilder")
            .field("store", self.store)
            .field("context", &self.context)
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

/// The image being built: its config and layers so far.
struct Building {
    config: ImageConfiguration,
    layers: Vec<Descriptor>,
}

static BUILD_COUNTER: AtomicU64 = AtomicU64::new(0);

impl<'a> ImageBuilder<'a> {
    /// A builder writing into `store`, with `context` as the directory
    /// `COPY` sources are taken from.
    pub fn new(store: &'a ImageStore, context: impl Into<PathBuf>) -> ImageBuilder<'a> {
        ImageBuilder {
            store,
            context: context.into(),
            configure: Box::new(|b| b),
            quiet: false,
        }
    }

    /// Adjusts every `RUN` step's container (runtime root, cgroup parent,
    /// network, limits); the image, command, env, user and working
    /// directory are set by the builder.
    pub fn configure(mut self, f: impl Fn(ContainerBuilder) -> ContainerBuilder + 'a) -> Self {
        self.configure = Box::new(f);
        self
    }

    /// Discards the output of `RUN` steps (default: inherited).
    pub fn quiet(mut self, yes: bool) -> Self {
        self.quiet = yes;
        self
    }

    /// Runs the steps, calling `progress` with one line per step
    /// (`Step 2/5 : RUN ...`), and tags the result `tag`.
    ///
    /// # Errors
    /// [`Error::BuildStep`] naming the line and instruction, with the cause:
    /// [`Error::Image`] for a missing base, [`Error::CommandFailed`] for a
    /// `RUN` that exits unsuccessfully, [`Error::Copy`] for a `COPY` source
    /// that is missing or outside the context. Nothing is tagged then, and
    /// no container is left.
    pub fn build(
        &self,
        file: &Dockerfile,
        tag: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<ResolvedImage> {
        let mut state: Option<Building> = None;
        let n = file.steps.len();
        for (i, step) in file.steps.iter().enumerate() {
            progress(&format!("Step {}/{n} : {}", i + 1, step.text));
            let keyword = step
                .text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            self.step(&mut state, step).map_err(|e| Error::BuildStep {
                line: step.line,
                instruction: keyword,
                source: Box::new(e),
            })?;
        }
        let Some(b) = state else {
            return Err(bad(1, "no FROM"));
        };
        let image = self.store.write_image(&b.config, b.layers)?;
        self.store.tag(tag, &image)?;
        progress(&format!(
            "Successfully built {} as {tag}",
            image.descriptor.digest()
        ));
        Ok(image)
    }

    fn step(&self, state: &mut Option<Building>, step: &Step) -> Result<()> {
        if let Instruction::From(base) = &step.instruction {
            *state = Some(match base {
                None => Building {
                    config: self.store.scratch_config()?,
                    layers: Vec::new(),
                },
                Some(r) => {
                    let img = self
                        .store
                        .layout()
                        .resolve(r, self.store.platform())
                        .map_err(|source| Error::Image {
                            reference: r.clone(),
                            source: Box::new(source),
                        })?;
                    Building {
                        config: img.config.clone(),
                        layers: img.manifest.layers().clone(),
                    }
                }
            });
            return Ok(());
        }
        let Some(b) = state.as_mut() else {
            return Err(bad(step.line, "no FROM before this instruction"));
        };
        let opts = CommitOptions {
            created_by: Some(step.text.clone()),
            ..CommitOptions::default()
        };
        let mut cc = b.config.config().clone().unwrap_or_default();
        let workdir = cc.working_dir().clone().unwrap_or_else(|| "/".into());
        match &step.instruction {
            Instruction::Run(args) => return self.run(b, args, &opts),
            Instruction::Copy { sources, dest } => {
                return self.copy(b, sources, dest, &workdir, &opts);
            }
            Instruction::Workdir(dir) => {
                let dir = Path::new(&workdir).join(dir);
                let dir = normalize(&dir);
                cc.set_working_dir(Some(dir.to_string_lossy().into_owned()));
                b.config.set_config(Some(cc));
                return self.make_dir(b, &dir, &opts);
            }
            Instruction::Env(vars) => {
                let mut env = cc.env().clone().unwrap_or_default();
                for (k, v) in vars {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
                    env.push(format!("{k}={v}"));
                }
                cc.set_env(Some(env));
            }
            Instruction::User(u) => {
                cc.set_user(Some(u.clone()));
            }
            Instruction::Cmd(args) => {
                cc.set_cmd(Some(args.clone()));
            }
            Instruction::Entrypoint(args) => {
                cc.set_entrypoint(Some(args.clone()));
                // As Docker: a new entrypoint drops the base's CMD.
                cc.set_cmd(None);
            }
            Instruction::Label(kv) => {
                let labels = cc.labels_mut().get_or_insert_with(Default::default);
                for (k, v) in kv {
                    labels.insert(k.clone(), v.clone());
                }
            }
            Instruction::Expose(ports) => {
                let mut exposed = cc.exposed_ports().clone().unwrap_or_default();
                for p in ports {
                    if !exposed.contains(p) {
                        exposed.push(p.clone());
                    }
                }
                cc.set_exposed_ports(Some(exposed));
            }
            Instruction::From(_) => {}
        }
        b.config.set_config(Some(cc));
        push_history(&mut b.config, &opts, true)
    }

    fn run(&self, b: &mut Building, args: &[String], opts: &CommitOptions) -> Result<()> {
        let image = self.store.write_image(&b.config, b.layers.clone())?;
        let prepared = self.store.prepare_resolved("(build step)", image.clone())?;
        let id = format!(
            "build-{}-{}",
            std::process::id(),
            BUILD_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let builder = (self.configure)(Container::builder(&id))
            .image(prepared)
            .args(args.iter().cloned());
        let out = || {
            if self.quiet {
                Stdio::Null
            } else {
                Stdio::Inherit
            }
        };
        let mut c = Container::create_with_stdio(builder.build()?, [Stdio::Null, out(), out()])?;
        c.start()?;
        let status = c.wait()?;
        if !status.success() {
            return Err(Error::CommandFailed {
                id,
                command: args.to_vec(),
                status,
            });
        }
        let upper = c.runtime_dir().join("upper");
        let new = self
            .store
            .commit_upper(&image, b.config.clone(), &upper, opts)?;
        c.delete()?;
        b.config = new.config;
        b.layers = new.manifest.layers().clone();
        Ok(())
    }

    /// A layer made from a staging directory `fill` populates.
    fn staged_layer(
        &self,
        b: &mut Building,
        opts: &CommitOptions,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let stage = self.store.snapshots_root().join("tmp").join(format!(
            "stage-{}-{}",
            std::process::id(),
            BUILD_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&stage).map_err(|source| Error::RuntimeDir {
            action: "create",
            path: stage.clone(),
            source,
        })?;
        let result = fill(&stage).and_then(|()| {
            let base = self.store.write_image(&b.config, b.layers.clone())?;
            self.store
                .commit_upper(&base, b.config.clone(), &stage, opts)
        });
        let _ = std::fs::remove_dir_all(&stage);
        let new = result?;
        b.config = new.config;
        b.layers = new.manifest.layers().clone();
        Ok(())
    }

    /// `WORKDIR`: a layer with the directory, if the image lacks it.
    fn make_dir(&self, b: &mut Building, dir: &Path, opts: &CommitOptions) -> Result<()> {
        let image = self.store.write_image(&b.config, b.layers.clone())?;
        let prepared = self.store.prepare_resolved("(build step)", image)?;
        if exists_in_lowers(prepared.lowers(), &dir.to_string_lossy()) {
            return push_history(&mut b.config, opts, true);
        }
        let rel = dir.strip_prefix("/").unwrap_or(dir).to_path_buf();
        self.staged_layer(b, opts, |stage| {
            std::fs::create_dir_all(stage.join(&rel)).map_err(|source| Error::RuntimeDir {
                action: "create",
                path: stage.join(&rel),
                source,
            })
        })
    }

    /// `COPY`: the sources, resolved inside the build context, into a
    /// layer.
    fn copy(
        &self,
        b: &mut Building,
        sources: &[String],
        dest: &str,
        workdir: &str,
        opts: &CommitOptions,
    ) -> Result<()> {
        let dest_path = normalize(&Path::new(workdir).join(dest));
        let into_dir = dest.ends_with('/') || sources.len() > 1;
        let context = self.context.clone();
        self.staged_layer(b, opts, |stage| {
            let ctx_err = |op, path: PathBuf, source| Error::Copy {
                id: "build context".into(),
                path,
                op,
                source,
            };
            let root =
                crate::cp::open_root(&context).map_err(|e| ctx_err("open", context.clone(), e))?;
            let target = stage.join(dest_path.strip_prefix("/").unwrap_or(&dest_path));
            for src in sources {
                let src_path = Path::new(src);
                let is_dir = matches!(
                    crate::cp::lookup_in_dir(&context, src),
                    crate::cp::Lookup::Found(crate::cp::Kind::Dir)
                );
                let to = if into_dir && !is_dir {
                    let name = src_path.file_name().ok_or_else(|| {
                        ctx_err(
                            "name",
                            src_path.to_path_buf(),
                            std::io::ErrorKind::InvalidInput.into(),
                        )
                    })?;
                    target.join(name)
                } else {
                    target.clone()
                };
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| ctx_err("create directory", parent.to_path_buf(), e))?;
                }
                crate::cp::copy_out_of_root(root.as_fd(), src_path, &to)
                    .map_err(|(op, path, source)| ctx_err(op, path, source))?;
            }
            Ok(())
        })
    }
}

/// An absolute path with `.` and `..` folded (never above `/`).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let f = Dockerfile::parse(
            "# a comment\nFROM base\nENV A=1 B=\"two words\"\nENV C three four\n\
             RUN echo a \\\n  && echo b\nCOPY a b /dst/\nCMD [\"sh\", \"-c\", \"x\"]\n\
             ENTRYPOINT top\nLABEL k=v\nEXPOSE 80 53/udp\nWORKDIR /app\nUSER 1000:1000\n",
        )
        .unwrap();
        let i: Vec<_> = f
            .steps
            .iter()
            .map(|s| (s.line, s.instruction.clone()))
            .collect();
        assert_eq!(i[0], (2, Instruction::From(Some("base".into()))));
        assert_eq!(
            i[1].1,
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into())
            ])
        );
        assert_eq!(
            i[2].1,
            Instruction::Env(vec![("C".into(), "three four".into())])
        );
        assert_eq!(i[3].0, 5);
        assert_eq!(
            i[3].1,
            Instruction::Run(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo a  && echo b".into()
            ])
        );
        assert_eq!(
            i[4].1,
            Instruction::Copy {
                sources: vec!["a".into(), "b".into()],
                dest: "/dst/".into()
            }
        );
        assert_eq!(
            i[5].1,
            Instruction::Cmd(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(
            i[8].1,
            Instruction::Expose(vec!["80/tcp".into(), "53/udp".into()])
        );
    }

    #[test]
    fn names_the_line_at_fault() {
        let line = |text: &str| match Dockerfile::parse(text) {
            Err(Error::Dockerfile { line, problem }) => (line, problem),
            other => panic!("{other:?}"),
        };
        assert_eq!(line("FROM a\n\nADD x /y\n").0, 3);
        assert!(
            line("FROM a\nADD x /y\n")
                .1
                .contains("unsupported instruction ADD")
        );
        assert_eq!(line("RUN x\n").0, 1);
        assert_eq!(line("FROM a AS b\n").0, 1);
        assert_eq!(line("FROM a\nCOPY --from=b x y\n").0, 2);
        assert_eq!(line("FROM a\nEXPOSE http\n").0, 2);
        assert_eq!(line("FROM a\nCMD [\"unterminated\"\n").0, 2);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_names_a_line(text in "\\PC{0,200}") {
            match Dockerfile::parse(&text) {
                Ok(f) => proptest::prop_assert!(!f.steps.is_empty()),
                Err(Error::Dockerfile { line, .. }) => proptest::prop_assert!(line >= 1),
                Err(e) => proptest::prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn env_values_round_trip(
            name in "[A-Za-z_][A-Za-z0-9_]{0,10}",
            value in "[^\"\\\\\n\r]{0,30}",
        ) {
            let text = format!("FROM a\nENV {name}=\"{value}\"\n");
            let f = Dockerfile::parse(&text).unwrap();
            proptest::prop_assert_eq!(
                &f.steps[1].instruction,
                &Instruction::Env(vec![(name.clone(), value.clone())])
            );
        }
    }

    #[test]
    fn paths_are_folded() {
        assert_eq!(
            normalize(Path::new("/a/../../b/./c")),
            PathBuf::from("/b/c")
        );
    }
}
