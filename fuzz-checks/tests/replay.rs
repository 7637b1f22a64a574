//! The fuzz targets' properties in the normal build: every committed seed
//! of `fuzz/corpus/<target>/`, then generated inputs from a fixed seed (the
//! same each run, so a failure reproduces), through the same check the
//! fuzzer runs. The coverage-guided, sanitized search is `make fuzz`.

use std::path::Path;

/// Generated inputs per target: what a debug build checks in a few seconds.
const GENERATED: usize = 3000;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "{}: too few seeds", dir.display());
    seeds
}

/// Deterministic bytes: xorshift64*, sized 1..=1024, so the generators see
/// short and long recipes alike.
fn generated(seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut state = seed;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..GENERATED).map(move |_| {
        let len = usize::try_from(next() % 1024).unwrap_or(0) + 1;
        (0..len).map(|_| next().to_le_bytes()[0]).collect()
    })
}

/// Runs `check` on every input, naming the one that panicked.
fn replay(target: &str, seed: u64, check: fn(&[u8])) {
    for (name, bytes) in corpus(target) {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("{target}: seed {name} broke a property");
        }
    }
    for (i, bytes) in generated(seed).enumerate() {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("{target}: generated input {i} (seed {seed:#x}) broke a property: {bytes:?}");
        }
    }
}

#[test]
fn envelope_properties_hold_on_the_corpus_and_generated_inputs() {
    replay("envelope", 0x5EED_0001, fuzz_checks::check_envelope);
}

#[test]
fn invoice_properties_hold_on_the_corpus_and_generated_inputs() {
    replay("invoice", 0x5EED_0002, fuzz_checks::check_invoice);
}
