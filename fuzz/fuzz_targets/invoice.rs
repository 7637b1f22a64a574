//! An invoice order from arbitrary input, along the task's own path: JSON
//! into a `Value`, the envelope split, the typed `OrderInput`, validation,
//! and for accepted orders the full render (totals, layout, PDF) that
//! `render-invoice` and the Lambda handler run. Bytes that are not JSON
//! become a generated, order-shaped value (see `fuzz::order`). Nothing may
//! panic, and an accepted order must render within libFuzzer's time and
//! memory limits.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_checks::check_invoice(data));
