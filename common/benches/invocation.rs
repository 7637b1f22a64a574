//! What the whole per-invocation pipeline costs in-process: envelope,
//! correlation, the start and end lines (JSON with EMF) written to stdout,
//! the guards and the Sentry scope, around an echo handler, beside the echo
//! called alone. Run with stdout sent to a sink (`make bench` does), and with
//! `AWS_LAMBDA_LOG_FORMAT=JSON` so the lines are the ones Lambda gets.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use sfn_task::{TaskContext, TaskError, TaskRuntime};

async fn echo(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    Ok(input)
}

fn context() -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "bench-request".to_owned();
    context.invoked_function_arn =
        "arn:aws:lambda:eu-west-1:123456789012:function:bench".to_owned();
    // Far enough away that the deadline guard never fires.
    context.deadline = (SystemTime::now() + Duration::from_secs(3600))
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    context
}

fn bench(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(task) = rt.block_on(TaskRuntime::init("echo")) else {
        return;
    };
    let payload = json!({
        "correlation_id": "order-A-1001",
        "execution_id": "arn:aws:states:eu-west-1:123456789012:execution:bench:run-1",
        "state_name": "Echo",
        "retry_count": 0,
        "input": {"order_id": "A-1001", "n": 1},
    });
    let ctx = context();
    c.bench_function("pipeline/echo through common", |b| {
        b.iter(|| {
            let out = rt.block_on(task.invoke_once(&echo, payload.clone(), ctx.clone()));
            black_box(out.is_ok())
        })
    });
    c.bench_function("pipeline/echo alone", |b| {
        b.iter(|| {
            let input = black_box(payload.clone());
            let out = rt.block_on(async { Ok::<Value, TaskError>(input) });
            black_box(out.is_ok())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
