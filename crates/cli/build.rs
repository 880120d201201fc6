//! Decides whether the `lean-start` feature takes effect (see
//! src/start.rs): only in the build it was written for, a static,
//! fixed-address x86-64 executable against glibc 2.36. For any other build
//! the feature is left out, with a warning that says why.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lean_start)");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_LEAN_START").is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let mut missing = Vec::new();
    if var("CARGO_CFG_TARGET_ARCH") != "x86_64"
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        missing.push("an x86_64-unknown-linux-gnu target".to_string());
    }
    if !var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static")
    {
        missing.push("static linking (-C target-feature=+crt-static)".to_string());
    }
    if !var("CARGO_ENCODED_RUSTFLAGS")
        .split('\x1f')
        .any(|f| f.ends_with("relocation-model=static"))
    {
        missing.push("a fixed-address executable (-C relocation-model=static)".to_string());
    }
    // The build machine's C library, which is also the one whose libc.a a
    // native static build links.
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let glibc = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned();
    if glibc != "2.36" {
        missing.push(format!("glibc 2.36 (this is {glibc})"));
    }
    if missing.is_empty() {
        println!("cargo::rustc-cfg=lean_start");
    } else {
        println!(
            "cargo::warning=feature lean-start left out: it needs {}",
            missing.join(", ")
        );
    }
}
