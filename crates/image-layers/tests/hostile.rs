//! S14: hostile layers never write outside the unpack root
//! (RUSTSEC-2021-0080 and the classic tar-slip family).

mod common;

use std::fs;
use std::io::Write;

use common::{Jail, Layer};
use hull_image_layers::{ApplyOptions, Compression, Error, Resolver, apply_layer, is_incomplete};
use tar::EntryType;

fn apply_with(
    root: &std::path::Path,
    layers: &[Vec<u8>],
    resolver: Resolver,
) -> Vec<hull_image_layers::Result<hull_image_layers::ApplyStats>> {
    let opts = ApplyOptions {
        resolver,
        ..Default::default()
    };
    layers
        .iter()
        .map(|l| apply_layer(root, &l[..], Compression::None, &opts))
        .collect()
}

/// Paths in a root, with the jail's own absolute path (which hostile
/// layers embed) replaced by a placeholder.
fn shape(jail: &Jail) -> Vec<String> {
    let own = jail
        .dir
        .path()
        .to_string_lossy()
        .trim_start_matches('/')
        .to_string();
    common::list_tree(&jail.root())
        .into_keys()
        .map(|k| k.replace(&own, "JAIL"))
        .collect()
}

/// Applies each layer in turn (errors allowed) and checks that nothing
/// outside the root changed; returns the results. The same layers are also
/// applied with the user-space resolver in a twin jail, which must give the
/// same outcome and tree shape.
fn apply_all(
    jail: &Jail,
    layers: &[Vec<u8>],
) -> Vec<hull_image_layers::Result<hull_image_layers::ApplyStats>> {
    let before = jail.outside();
    let out = apply_with(&jail.root(), layers, Resolver::Auto);
    assert_eq!(before, jail.outside(), "something outside the root changed");
    let twin = Jail::new();
    let twin_before = twin.outside();
    // Layers may name the first jail's absolute path: retarget them.
    let own = jail.dir.path().to_string_lossy().into_owned();
    let other = twin.dir.path().to_string_lossy().into_owned();
    let retargeted: Vec<Vec<u8>> = layers
        .iter()
        .map(|l| replace_bytes(l, own.as_bytes(), other.as_bytes()))
        .collect();
    let walked = apply_with(&twin.root(), &retargeted, Resolver::Walk);
    assert_eq!(
        twin_before,
        twin.outside(),
        "user-space walk: something outside the root changed"
    );
    for (i, (a, b)) in out.iter().zip(&walked).enumerate() {
        assert_eq!(
            a.is_ok(),
            b.is_ok(),
            "layer {i}: openat2 {a:?} vs walk {b:?}"
        );
    }
    assert_eq!(
        shape(jail),
        shape(&twin),
        "openat2 and the walk built different trees"
    );
    out
}

/// Replaces a same-length byte string (tempdir names have equal length) so
/// tar checksums stay valid only where recomputed: headers are rebuilt.
fn replace_bytes(tar: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.len() != to.len() {
        return tar.to_vec();
    }
    let mut out = tar.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            // Fix the checksum of the 512-byte header holding this match.
            let start = i - i % 512;
            if &out[start + 257..start + 262] == b"ustar" {
                fix_checksum(&mut out[start..start + 512]);
            }
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

fn outside_abs(jail: &Jail) -> String {
    jail.dir
        .path()
        .join("outside")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn s14_dotdot_paths_stay_inside() {
    let jail = Jail::new();
    let mut l = Layer::new();
    l.file("../sentinel", b"pwned")
        .file("../../../../../../tmp/escape-dotdot", b"pwned")
        .file("a/../../outside/secret", b"pwned")
        .raw(b"../outside", EntryType::Symlink, b"", b"/", 0o777);
    let r = apply_all(&jail, &[l.tar()]);
    r[0].as_ref().unwrap();
    assert_eq!(fs::read(jail.root().join("sentinel")).unwrap(), b"pwned");
    assert!(jail.root().join("tmp/escape-dotdot").exists());
    assert!(!std::path::Path::new("/tmp/escape-dotdot").exists());
}

#[test]
fn s14_absolute_paths_stay_inside() {
    let jail = Jail::new();
    let abs = format!("{}/secret", outside_abs(&jail));
    let mut l = Layer::new();
    l.file(&abs, b"pwned")
        .file("/etc/hull-s14-absolute", b"pwned");
    let r = apply_all(&jail, &[l.tar()]);
    r[0].as_ref().unwrap();
    assert!(!std::path::Path::new("/etc/hull-s14-absolute").exists());
    assert!(jail.root().join("etc/hull-s14-absolute").exists());
}

#[test]
fn s14_symlink_pointing_out_then_write_through_it() {
    let jail = Jail::new();
    let out = outside_abs(&jail);
    // Same layer and across layers; absolute and relative targets.
    let mut l1 = Layer::new();
    l1.symlink("abs", &out)
        .file("abs/secret", b"pwned")
        .symlink("rel", "../outside")
        .file("rel/secret", b"pwned")
        .symlink("deep", "../../../../../../../..")
        .file("deep/tmp/escape-deep", b"pwned");
    let mut l2 = Layer::new();
    l2.file("abs/new", b"pwned")
        .file("rel/new", b"pwned")
        .dir("rel/newdir");
    // A symlink as the final component: the file replaces it, never writes
    // through it.
    let mut l3 = Layer::new();
    l3.symlink("target", &format!("{out}/secret"))
        .file("target", b"pwned");
    let mut l4 = Layer::new();
    l4.symlink("slink", &format!("{out}/secret"));
    let mut l5 = Layer::new();
    l5.file("slink", b"pwned").raw(
        b"slink2",
        EntryType::Symlink,
        b"",
        format!("{out}/secret").as_bytes(),
        0o777,
    );
    let mut l6 = Layer::new();
    l6.raw(b"slink2", EntryType::Fifo, b"", b"", 0o600);
    let _ = apply_all(
        &jail,
        &[l1.tar(), l2.tar(), l3.tar(), l4.tar(), l5.tar(), l6.tar()],
    );
    assert!(!std::path::Path::new("/tmp/escape-deep").exists());
}

#[test]
fn s14_hardlinks_to_outside_fail_or_stay_inside() {
    let jail = Jail::new();
    let out = outside_abs(&jail);
    let secret_links = fs::metadata(jail.dir.path().join("outside/secret")).unwrap();
    let mut l = Layer::new();
    l.hardlink("h1", &format!("{out}/secret"));
    let mut l2 = Layer::new();
    l2.hardlink("h2", "../outside/secret");
    let mut l3 = Layer::new();
    l3.symlink("up", "..").hardlink("h3", "up/outside/secret");
    let mut l4 = Layer::new();
    l4.symlink("s", &format!("{out}/secret"))
        .hardlink("h4", "s")
        .file("h4", b"pwned");
    let r = apply_all(&jail, &[l.tar(), l2.tar(), l3.tar(), l4.tar()]);
    for r in &r[..3] {
        assert!(
            matches!(
                r,
                Err(Error::Unpack { op: "linkat", .. })
                    | Err(Error::Unpack {
                        op: "openat2 parent",
                        ..
                    })
            ),
            "{r:?}"
        );
    }
    r[3].as_ref().unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(jail.dir.path().join("outside/secret"))
            .unwrap()
            .nlink(),
        secret_links.nlink()
    );
}

#[test]
fn s14_whiteouts_cannot_remove_outside() {
    let jail = Jail::new();
    let mut l = Layer::new();
    l.whiteout("../.wh.sentinel")
        .whiteout("../outside/.wh.secret")
        .whiteout("../.wh..wh..opq");
    l.symlink("o", "../outside").whiteout("o/.wh.secret");
    let mut bad = Layer::new();
    bad.whiteout("x/.wh...");
    let mut bad2 = Layer::new();
    bad2.whiteout(".wh..");
    let r = apply_all(&jail, &[l.tar(), bad.tar(), bad2.tar()]);
    r[0].as_ref().unwrap();
    assert!(matches!(r[1], Err(Error::InvalidEntryPath { .. })));
    assert!(matches!(r[2], Err(Error::InvalidEntryPath { .. })));
}

#[test]
fn s14_absurd_names_and_sizes_are_typed_errors() {
    let jail = Jail::new();
    let long_path = "a/".repeat(2100);
    let long_name = "n".repeat(300);
    let mut l1 = Layer::new();
    l1.file(&long_path, b"x");
    let mut l2 = Layer::new();
    l2.file(&long_name, b"x");
    let mut l3 = Layer::new();
    l3.raw(b"nul\0byte-after", EntryType::Regular, b"", b"", 0o644);
    // A header claiming a huge size with little data behind it.
    let mut huge = Layer::new();
    huge.file("big", &[1u8; 1024]);
    let mut huge = huge.tar();
    {
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes().copy_from_slice(&huge[..512]);
        h.set_size(1 << 40);
        h.set_cksum();
        huge[..512].copy_from_slice(h.as_bytes());
    }
    let r = apply_all(&jail, &[l1.tar(), l2.tar(), l3.tar(), huge]);
    assert!(
        matches!(r[0], Err(Error::InvalidEntryPath { .. })),
        "{:?}",
        r[0]
    );
    assert!(
        matches!(r[1], Err(Error::InvalidEntryPath { .. })),
        "{:?}",
        r[1]
    );
    // The name field stops at the NUL: a plain file named "nul".
    r[2].as_ref().unwrap();
    assert!(
        matches!(
            r[3],
            Err(Error::TruncatedEntry { .. }) | Err(Error::ReadTar { .. })
        ),
        "{:?}",
        r[3]
    );
    assert!(is_incomplete(&jail.root()));
}

#[test]
fn s14_corrupt_streams_are_typed_errors() {
    let jail = Jail::new();
    let mut l = Layer::new();
    l.file("a", &[5u8; 5000]).file("b", b"b");
    let tar = l.tar();
    let mut bad_sum = tar.clone();
    bad_sum[600 + 512 * 10] ^= 0; // keep data; corrupt the second header below
    let second = 512 + 5120;
    bad_sum[second] ^= 0x55;
    let truncated = tar[..2000].to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let mut gz = gz.finish().unwrap();
    let n = gz.len();
    gz[n / 2] ^= 0xff;
    let mut zs = zstd::encode_all(&tar[..], 1).unwrap();
    // Without a frame checksum a flipped literal byte decodes fine (the
    // diff_id catches that); a cut frame must fail.
    let n = zs.len();
    zs.truncate(n - 6);
    let before = jail.outside();
    let e = apply_layer(
        &jail.root(),
        &bad_sum[..],
        Compression::None,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::ReadTar { .. }), "{e}");
    let e = apply_layer(
        &jail.root(),
        &truncated[..],
        Compression::None,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::TruncatedEntry { .. } | Error::ReadTar { .. }),
        "{e}"
    );
    let e = apply_layer(
        &jail.root(),
        &gz[..],
        Compression::Gzip,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::ReadTar { .. } | Error::TruncatedEntry { .. }),
        "{e}"
    );
    let e = apply_layer(
        &jail.root(),
        &zs[..],
        Compression::Zstd,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::ReadTar { .. } | Error::TruncatedEntry { .. }),
        "{e}"
    );
    let e = apply_layer(
        &jail.root(),
        &b"not gzip at all"[..],
        Compression::Gzip,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::ReadTar { .. }), "{e}");
    assert_eq!(before, jail.outside());
    assert!(is_incomplete(&jail.root()));
}

#[test]
fn s14_marker_name_is_reserved() {
    let jail = Jail::new();
    let mut l = Layer::new();
    l.whiteout(".wh..hull-incomplete");
    let mut l2 = Layer::new();
    l2.symlink(".hull-incomplete", "/etc/passwd");
    let r = apply_all(&jail, &[l.tar(), l2.tar()]);
    assert!(matches!(r[0], Err(Error::InvalidEntryPath { .. })));
    assert!(matches!(r[1], Err(Error::InvalidEntryPath { .. })));
}

#[test]
fn s14_write_through_hardlink_does_not_touch_shared_inode() {
    let jail = Jail::new();
    let mut l1 = Layer::new();
    l1.file("etc/passwd", b"root");
    let mut l2 = Layer::new();
    l2.hardlink("h", "etc/passwd").file("h", b"pwned");
    let r = apply_all(&jail, &[l1.tar(), l2.tar()]);
    r.iter().for_each(|r| {
        r.as_ref().unwrap();
    });
    assert_eq!(fs::read(jail.root().join("etc/passwd")).unwrap(), b"root");
    assert_eq!(fs::read(jail.root().join("h")).unwrap(), b"pwned");
}

#[test]
fn s14_symlink_chains_and_directory_symlinks_resolve_inside() {
    let jail = Jail::new();
    let out = outside_abs(&jail);
    let mut l = Layer::new();
    // The chain's end exists inside the root, so writes through it succeed
    // there; a dangling chain is a typed error (below).
    l.dir(&out)
        .symlink("a", "b")
        .symlink("b", "c")
        .symlink("c", &out)
        .dir("a/sub")
        .file("a/sub/f", b"pwned")
        .file("a/secret", b"pwned")
        .symlink("loop1", "loop2")
        .symlink("loop2", "loop1");
    let mut l2 = Layer::new();
    l2.file("loop1/x", b"pwned");
    let mut l3 = Layer::new();
    l3.symlink("dangling", "/nowhere/at/all")
        .file("dangling/x", b"pwned");
    let r = apply_all(&jail, &[l.tar(), l2.tar(), l3.tar()]);
    r[0].as_ref().unwrap();
    assert!(r[1].is_err(), "writing through a symlink loop must fail");
    assert!(matches!(r[2], Err(Error::Unpack { .. })), "{:?}", r[2]);
    // The chain ends at <root>/<outside path>, inside the root.
    let inside = jail.root().join(out.trim_start_matches('/'));
    assert_eq!(fs::read(inside.join("sub/f")).unwrap(), b"pwned");
}

#[test]
fn s14_magic_proc_links_are_not_followed() {
    let jail = Jail::new();
    let mut l = Layer::new();
    l.dir("proc/self/root/tmp")
        .symlink("p", "/proc/self/root")
        .file("p/tmp/escape-proc", b"pwned");
    let r = apply_all(&jail, &[l.tar()]);
    r[0].as_ref().unwrap();
    assert!(!std::path::Path::new("/tmp/escape-proc").exists());
    assert!(jail.root().join("proc/self/root/tmp/escape-proc").exists());
}

#[test]
fn s14_size_limits_stop_decompression_bombs() {
    let jail = Jail::new();
    // 4 MiB of zeros compress to a few KiB.
    let mut l = Layer::new();
    l.file("bomb", &vec![0u8; 4 << 20]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&l.tar()).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 64 << 10);
    let opts = ApplyOptions {
        max_layer_size: Some(1 << 20),
        ..Default::default()
    };
    let e = apply_layer(&jail.root(), &gz[..], Compression::Gzip, &opts).unwrap_err();
    assert!(matches!(e, Error::LayerTooLarge { .. }), "{e}");
    let opts = ApplyOptions {
        max_entry_size: Some(512 << 10),
        ..Default::default()
    };
    let e = apply_layer(&jail.root(), &gz[..], Compression::Gzip, &opts).unwrap_err();
    assert!(matches!(e, Error::EntryTooLarge { .. }), "{e}");
    assert!(is_incomplete(&jail.root()));
}
