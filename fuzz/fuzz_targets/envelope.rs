//! Everything the runtime does with a raw payload before the handler runs,
//! on arbitrary input: JSON parsing, correlation-ID resolution
//! (`envelope::resolve_correlation`) and envelope splitting
//! (`envelope::parse`), in the order `common`'s invocation runs them. Bytes
//! that are not JSON become a generated value (see `fuzz::value`), and the
//! raw text also goes straight into correlation-ID validation. Nothing may
//! panic, and the guarantees logs and S3 metadata rely on must hold.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_checks::check_envelope(data));
