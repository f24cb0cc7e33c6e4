//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same checks the fuzz targets run, so every input the fuzzer kept, and
//! every input that once crashed, is checked by a plain `cargo test`.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
pub(crate) mod checks;

/// A fuzz target's check: panics on a failure.
type Check = fn(&[u8]);

/// Every fuzz target and its check; a target missing here fails
/// `every_fuzz_target_is_replayed`.
const TARGETS: &[(&str, Check)] = &[
    ("cookie_decode", checks::cookie_decode),
    ("cookie_signed", checks::cookie_signed),
    ("cookie_header", checks::cookie_header),
    ("record_envelope", checks::record_envelope),
    ("export_line", checks::export_line),
    ("duration", checks::duration),
    ("cron_schedule", checks::cron_schedule),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn replay(target: &str) {
    let check = TARGETS.iter().find(|(name, _)| *name == target).map(|(_, check)| check).unwrap();
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; the corpus must be committed (see fuzz/README.md)", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| check(&input)) {
            let message = panic.downcast_ref::<String>().map(String::as_str).or(panic.downcast_ref::<&str>().copied());
            panic!("{} fails its check: {}", path.display(), message.unwrap_or("(no message)"));
        }
        replayed += 1;
    }
    assert!(replayed > 0, "{} is empty; the corpus must be committed (see fuzz/README.md)", dir.display());
}

#[test]
fn cookie_decode_corpus() {
    replay("cookie_decode");
}

#[test]
fn cookie_signed_corpus() {
    replay("cookie_signed");
}

#[test]
fn cookie_header_corpus() {
    replay("cookie_header");
}

#[test]
fn record_envelope_corpus() {
    replay("record_envelope");
}

#[test]
fn export_line_corpus() {
    replay("export_line");
}

#[test]
fn duration_corpus() {
    replay("duration");
}

#[test]
fn cron_schedule_corpus() {
    replay("cron_schedule");
}

#[test]
fn every_fuzz_target_is_replayed() {
    let targets = std::fs::read_dir(fuzz_dir().join("fuzz_targets")).unwrap();
    for entry in targets {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let target = file.trim_end_matches(".rs");
        assert!(TARGETS.iter().any(|(name, _)| *name == target), "fuzz target {target} has no replay here");
    }
}

/// The seeds are what a real app and operator produce; the checks must
/// accept them, and the live cookies among them must decode, or the seeds
/// (or the codec's format) have drifted. With `SESSIONCTL_WRITE_SEEDS=1`
/// the checked seeds are also written into `fuzz/corpus/<target>/seed-<name>`
/// (before a first fuzzing run, or after the cookie format changed).
#[test]
fn seeds_pass_their_checks_and_live_cookies_decode() {
    let write = std::env::var_os("SESSIONCTL_WRITE_SEEDS").is_some_and(|v| v == "1");
    let live = ["reference", "reference-old-key", "inline-empty", "inline-data", "inline-unicode-old-key"];
    let mut decoded = 0;
    for (target, name, bytes) in checks::seeds() {
        let check = TARGETS.iter().find(|(t, _)| *t == target).map(|(_, check)| check).unwrap();
        check(&bytes);
        if write {
            let dir = fuzz_dir().join("corpus").join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{name}")), &bytes).unwrap();
        }
        if target == "cookie_decode" && live.contains(&name.as_str()) {
            let value = std::str::from_utf8(&bytes).unwrap();
            let payload = checks::codec().decode(value, checks::now());
            assert!(payload.is_ok(), "seed {name}: {payload:?}");
            decoded += 1;
        }
    }
    assert_eq!(decoded, live.len());
}
