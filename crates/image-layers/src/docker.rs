//! Import of `docker save` archives.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageManifestBuilder, MediaType};

use crate::digest::parse_digest;
use crate::error::{Error, Result};
use crate::layout::{ImageLayout, MAX_JSON_SIZE};
use crate::unpack::{Compression, clean_path};

/// One image imported by [`import_docker_archive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The new manifest's descriptor.
    pub manifest: Descriptor,
    /// The names it was tagged with (the archive's `RepoTags`).
    pub tags: Vec<String>,
}

enum Member {
    Blob(Digest, u64, Compression),
    Link(String),
}

fn bad(name: &str, reason: &'static str) -> Error {
    Error::DockerArchive {
        name: name.into(),
        reason,
    }
}

/// Imports a `docker save` archive (its `manifest.json`, config files and
/// layer tars, classic or OCI-style) into `layout`, tagging each image with
/// its `RepoTags`. Layer blobs are stored as they are (their compression is
/// detected); uncompressed layers are checked against the config's
/// diff_ids. Members nothing refers to are not kept.
///
/// # Errors
/// [`Error::ReadTar`] for a malformed archive, [`Error::DockerArchive`] for a
/// missing or inconsistent member, [`Error::DiffIdMismatch`], blob store
/// and JSON errors.
///
/// ```no_run
/// use hull_image_layers::{ImageLayout, import_docker_archive};
/// let layout = ImageLayout::create("/var/lib/images/imported")?;
/// let file = std::fs::File::open("alpine.tar").expect("archive");
/// for image in import_docker_archive(&layout, file)? {
///     println!("{:?} -> {}", image.tags, image.manifest.digest());
/// }
/// # Ok::<(), hull_image_layers::Error>(())
/// ```
pub fn import_docker_archive<R: Read>(
    layout: &ImageLayout,
    archive: R,
) -> Result<Vec<ImportedImage>> {
    let _lock = layout.lock()?;
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut manifest_json: Option<Vec<u8>> = None;
    let mut written: Vec<Digest> = Vec::new();
    let mut ar = tar::Archive::new(archive);
    let rerr = |source| Error::ReadTar {
        after: None,
        source,
    };
    for entry in ar.entries().map_err(rerr)? {
        let mut entry = entry.map_err(rerr)?;
        let raw = entry.path_bytes().into_owned();
        let comps = clean_path(&raw).map_err(|reason| Error::InvalidEntryPath {
            path: String::from_utf8_lossy(&raw).into_owned(),
            reason,
        })?;
        let name = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .ok_or_else(|| bad(&name, "link without a target"))?;
                let target = String::from_utf8_lossy(&target).into_owned();
                let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                    let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    format!("{dir}/{target}")
                } else {
                    target
                };
                let comps =
                    clean_path(resolved.as_bytes()).map_err(|reason| Error::InvalidEntryPath {
                        path: resolved.clone(),
                        reason,
                    })?;
                members.insert(
                    name,
                    Member::Link(String::from_utf8_lossy(&comps.join(&b'/')).into_owned()),
                );
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if name == "manifest.json" {
                    if entry.size() > MAX_JSON_SIZE {
                        return Err(bad(&name, "manifest.json too large"));
                    }
                    let mut buf = Vec::new();
                    entry.read_to_end(&mut buf).map_err(rerr)?;
                    manifest_json = Some(buf);
                    continue;
                }
                let mut head = [0u8; 4];
                let mut n = 0;
                while n < head.len() {
                    let k = entry.read(&mut head[n..]).map_err(rerr)?;
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                let compression = Compression::detect(&head[..n]);
                let mut w = layout.blob_writer()?;
                let werr = |source| Error::WriteBlob {
                    path: layout.path().join(".tmp"),
                    source,
                };
                w.write_all(&head[..n]).map_err(werr)?;
                io::copy(&mut entry, &mut w).map_err(rerr)?;
                let (digest, size) = w.commit()?;
                written.push(digest.clone());
                members.insert(name, Member::Blob(digest, size, compression));
            }
            _ => {}
        }
    }
    let manifest_json = manifest_json.ok_or_else(|| bad("manifest.json", "missing"))?;
    let entries: serde_json::Value =
        serde_json::from_slice(&manifest_json).map_err(|source| Error::Json {
            what: "manifest.json".into(),
            source,
        })?;
    let entries = entries
        .as_array()
        .ok_or_else(|| bad("manifest.json", "not a JSON array"))?;
    let lookup = |name: &str| -> Result<(Digest, u64, Compression)> {
        let mut cur = name.to_owned();
        for _ in 0..16 {
            match members.get(&cur) {
                Some(Member::Blob(d, s, c)) => return Ok((d.clone(), *s, *c)),
                Some(Member::Link(t)) => cur = t.clone(),
                None => break,
            }
        }
        Err(bad(name, "member named in manifest.json is missing"))
    };
    let mut keep: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for e in entries {
        let config_name = e
            .get("Config")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("manifest.json", "entry without Config"))?;
        let (cd, cs, _) = lookup(config_name)?;
        let config_desc = Descriptor::new(MediaType::ImageConfig, cs, cd.clone());
        let config: ImageConfiguration = layout.read_json(&config_desc)?;
        let layer_names: Vec<&str> = e
            .get("Layers")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad(config_name, "entry without Layers"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| bad(config_name, "layer name is not a string"))
            })
            .collect::<Result<_>>()?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != layer_names.len() {
            return Err(Error::LayerCountMismatch {
                digest: cd.to_string(),
                layers: layer_names.len(),
                diff_ids: diff_ids.len(),
            });
        }
        keep.insert(cd.to_string());
        let mut layers = Vec::new();
        for (ln, diff_id) in layer_names.iter().zip(diff_ids) {
            let (d, s, c) = lookup(ln)?;
            let diff_id = parse_digest(diff_id)?;
            if c == Compression::None && d != diff_id {
                return Err(Error::DiffIdMismatch {
                    layer: (*ln).to_owned(),
                    expected: diff_id.to_string(),
                    actual: d.to_string(),
                });
            }
            keep.insert(d.to_string());
            layers.push(Descriptor::new(c.media_type(), s, d));
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_desc)
            .layers(layers)
            .build()
            .map_err(|source| Error::BuildDocument { source })?;
        let mut md = layout.write_json_blob(MediaType::ImageManifest, &manifest)?;
        md.set_platform(Some(
            oci_spec::image::PlatformBuilder::default()
                .os(config.os().clone())
                .architecture(config.architecture().clone())
                .build()
                .map_err(|source| Error::BuildDocument { source })?,
        ));
        let tags: Vec<String> = e
            .get("RepoTags")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for t in &tags {
            layout.tag_locked(t, &md)?;
        }
        out.push(ImportedImage { manifest: md, tags });
    }
    // Members nothing refers to (VERSION, json, repositories...): drop them
    // unless something else in the layout still uses them.
    let reachable = layout.reachable()?;
    for d in written {
        let s = d.to_string();
        if !keep.contains(&s) && !reachable.contains(&s) {
            if let Ok(p) = layout.blob_path(&d) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    Ok(out)
}
