//! A `tracing` layer that writes one flat JSON object per event, with the key
//! names CloudWatch users already query (Powertools' names): `timestamp`,
//! `level`, `message`, `service`, `function_name`, `function_memory_size`,
//! then the fields of every enclosing span (the invocation span adds
//! `correlation_id`, `function_request_id`, ...), then the event's own fields.
//! A key appears once: the first writer wins, so task code cannot overwrite
//! `correlation_id` or `level` by logging a field of that name.

use std::io::Write;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::lifecycle::{END_MARKER, LIFECYCLE_TARGET, METRICS};

/// Field values of one span or event, in the order they were declared.
#[derive(Debug, Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn set(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field.name(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name(), Value::String(value.to_string()));
    }
}

/// The JSON lines layer. `W` is stdout in a Lambda and a buffer in tests.
///
/// Everything constant over the process's life (the service, the function's
/// name and memory size, the EMF metadata but its timestamp) is serialised
/// once here: a line only serialises what changes.
#[derive(Debug)]
pub(crate) struct JsonLayer<W> {
    /// `"service":...` and, inside a Lambda, the function's two fields.
    constant_fields: String,
    /// Their keys.
    constant_keys: Vec<&'static str>,
    /// The EMF metadata after its `Timestamp` (`,"CloudWatchMetrics":...}`).
    emf_rest: String,
    writer: W,
}

impl<W> JsonLayer<W> {
    pub(crate) fn new(service: &str, metrics_namespace: &str, writer: W) -> Self {
        let mut constant = Line::new();
        constant.field("service", &Value::from(service));
        if let Ok(name) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
            constant.field("function_name", &Value::from(name));
        }
        if let Some(size) = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            constant.field("function_memory_size", &Value::from(size));
        }
        let metrics: Vec<Value> = METRICS
            .iter()
            .map(|(name, unit)| serde_json::json!({"Name": name, "Unit": unit}))
            .collect();
        let cloudwatch = serde_json::json!([{
            "Namespace": metrics_namespace,
            "Dimensions": [["service"]],
            "Metrics": metrics
        }]);
        Self {
            constant_fields: String::from_utf8_lossy(&constant.buf[1..]).into_owned(),
            constant_keys: constant.keys,
            emf_rest: format!(",\"CloudWatchMetrics\":{cloudwatch}}}"),
            writer,
        }
    }
}

/// Builds one line without duplicate keys, serialising straight into the
/// bytes that are written.
struct Line {
    buf: Vec<u8>,
    keys: Vec<&'static str>,
}

impl Line {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(1024);
        buf.push(b'{');
        Self {
            buf,
            keys: Vec::with_capacity(24),
        }
    }

    /// Starts `"key":` unless the key was written already.
    fn key(&mut self, key: &'static str) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.keys.push(key);
        // Serialising into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, key);
        self.buf.push(b':');
        true
    }

    fn field(&mut self, key: &'static str, value: &Value) {
        if self.key(key) {
            let _ = serde_json::to_writer(&mut self.buf, value);
        }
    }

    fn str_field(&mut self, key: &'static str, value: &str) {
        if self.key(key) {
            let _ = serde_json::to_writer(&mut self.buf, value);
        }
    }

    /// Fields serialised beforehand, whose keys are `keys`.
    fn raw_fields(&mut self, keys: &[&'static str], json: &str) {
        if json.is_empty() {
            return;
        }
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.keys.extend_from_slice(keys);
        self.buf.extend_from_slice(json.as_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"}\n");
        self.buf
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Spans of the Lambda runtime repeat what the invocation span says under
/// other names (`requestId`, `xrayTraceId`); they are left out.
fn is_foreign(target: &str) -> bool {
    target.starts_with("lambda_runtime")
}

impl<S, W> tracing_subscriber::Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if is_foreign(attrs.metadata().target()) {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut own = Fields::default();
        event.record(&mut own);
        let now = chrono::Utc::now();

        let mut line = Line::new();
        line.str_field(
            "timestamp",
            &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        line.str_field("level", level_name(event.metadata().level()));
        match own.get("message") {
            Some(message) => line.field("message", message),
            None => line.str_field("message", ""),
        }
        line.raw_fields(&self.constant_keys, &self.constant_fields);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (key, value) in &fields.0 {
                        line.field(key, value);
                    }
                }
            }
        }
        for (key, value) in &own.0 {
            line.field(key, value);
        }
        if event.metadata().target() == LIFECYCLE_TARGET
            && own.get(END_MARKER).is_some()
            && line.key("_aws")
        {
            // CloudWatch Embedded Metric Format metadata: the end line's
            // `METRICS` become metrics per `service`.
            let _ = write!(
                line.buf,
                "{{\"Timestamp\":{}{}",
                now.timestamp_millis(),
                self.emf_rest
            );
        }

        let bytes = line.finish();
        // One write per line keeps concurrent lines whole; a failed log write
        // must never fail the task.
        let _ = self.writer.make_writer().write_all(&bytes);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The lines `f` logs, through the JSON layer.
    pub(crate) fn capture(f: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new("demo", "Tests", buffer.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn flat_keys_in_order_with_span_context() {
        let lines = capture(|| {
            let span = tracing::info_span!("invocation", correlation_id = "c-1", retry_count = 2);
            let _g = span.enter();
            tracing::warn!(key = "invoices/2026/A.pdf", "uploaded \"quoted\"");
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "uploaded \"quoted\"");
        assert_eq!(line["service"], "demo");
        assert_eq!(line["correlation_id"], "c-1");
        assert_eq!(line["retry_count"], 2);
        assert_eq!(line["key"], "invoices/2026/A.pdf");
        let ts = line["timestamp"].as_str().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.len() == 24,
            "{ts}"
        );
        let keys: Vec<_> = line
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert!(keys.iter().all(|k| !k.contains('.')), "flat keys: {keys:?}");
    }

    #[test]
    fn task_fields_cannot_overwrite_context() {
        let lines = capture(|| {
            let span = tracing::info_span!("invocation", correlation_id = "real");
            let _g = span.enter();
            tracing::info!(correlation_id = "spoofed", level = "FAKE", "hello");
        });
        assert_eq!(lines[0]["correlation_id"], "real");
        assert_eq!(lines[0]["level"], "INFO");
    }

    #[test]
    fn end_line_is_an_emf_record() {
        let lines = capture(|| {
            tracing::info!(target: LIFECYCLE_TARGET, duration_ms = 12.5, success_count = 1u64, "task finished");
            tracing::info!(target: LIFECYCLE_TARGET, "task started");
        });
        let emf = &lines[0]["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(emf["Namespace"], "Tests");
        assert_eq!(emf["Dimensions"], serde_json::json!([["service"]]));
        let names: Vec<_> = emf["Metrics"]
            .as_array()
            .map(|m| m.iter().map(|m| m["Name"].clone()).collect())
            .unwrap_or_default();
        for metric in &names {
            let name = metric.as_str().unwrap_or_default();
            if name == "duration_ms" || name == "success_count" {
                assert!(lines[0][name].is_number(), "{name} must be on the line");
            }
        }
        assert!(lines[0]["_aws"]["Timestamp"].is_i64());
        assert!(lines[1].get("_aws").is_none(), "only the end line is EMF");
    }
}
