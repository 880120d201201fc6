//! Replays the committed fuzz corpus (fuzz/corpus/cgroup_stats) through
//! every parser on stable, so CI catches a panic without cargo-fuzz.

use std::path::Path;

#[test]
fn cgroup_stats_corpus_replays_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cgroup_stats");
    let mut n = 0;
    let mut accepted = 0;
    for e in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(e.expect("corpus entry").path()).expect("corpus file");
        accepted += hull_cgroup::stats::parse_all_for_fuzzing(&data);
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} files");
    // The real samples parse; the corpus is not all garbage.
    assert!(accepted > n, "only {accepted} parses succeeded");
}

#[test]
fn real_samples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cgroup_stats");
    let r = |f: &str| std::fs::read_to_string(dir.join(f)).expect(f);
    let l =
        hull_cgroup::Layout::from_texts(&r("mountinfo_hybrid"), &r("proc_cgroup_hybrid")).unwrap();
    assert_eq!(l.mode(), hull_cgroup::Mode::Hybrid);
    assert!(hull_cgroup::stats::cpu_v2(&r("cpu_stat_v2")).is_ok());
    assert!(hull_cgroup::parse::parse_pressure(&r("cpu_pressure")).is_ok());
    assert!(hull_cgroup::parse::parse_flat_keyed(&r("memory_stat_v1")).is_ok());
}
