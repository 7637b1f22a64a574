//! What the per-invocation bookkeeping before the handler costs: splitting
//! the envelope and resolving the correlation ID, for each payload shape.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use sfn_task::{correlation, envelope};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

fn bench(c: &mut Criterion) {
    for name in [
        "envelope.json",
        "bare.json",
        "apigw_with_header.json",
        "eventbridge_scheduled.json",
    ] {
        let payload = fixture(name);
        c.bench_function(&format!("envelope+correlation/{name}"), |b| {
            b.iter(|| {
                let payload = black_box(payload.clone());
                let resolved = match payload.get("correlation_id") {
                    Some(id) => correlation::resolve(Some(id), &payload),
                    None => correlation::resolve(None, &payload),
                };
                let parsed = envelope::parse(payload);
                black_box((resolved, parsed.is_ok()))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
