//! Render time (validate, compute, lay out, draw) for 1, 20 and 500 lines,
//! in a warm process.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use invoice::OrderInput;
use serde_json::{Value, json};

fn order(lines: usize) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/invoice_order.json"
    );
    let mut order: Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    order["lines"] = Value::Array(
        (0..lines)
            .map(|i| {
                json!({
                    "description": format!("Item {i} Zoë Müller Łódź 山田太郎"),
                    "quantity": "2",
                    "unit_price": "19.99",
                    "tax_rate": if i % 2 == 0 { "19" } else { "7" },
                })
            })
            .collect(),
    );
    order
}

fn bench(c: &mut Criterion) {
    for lines in [1, 20, 500] {
        let input: Option<OrderInput> = serde_json::from_value(order(lines)).ok();
        let Some(input) = input else { continue };
        c.bench_function(&format!("render/{lines}_lines"), |b| {
            b.iter(|| {
                black_box(invoice::render(black_box(input.clone())).map(|r| r.pdf.bytes.len()))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
