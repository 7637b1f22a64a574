//! The rendered PDF checked with real PDF tools (poppler's pdftotext and
//! pdffonts, qpdf; `make test` installs them): text layer, pagination,
//! determinism within and across processes, structural validity.

use std::path::PathBuf;
use std::process::Command;

use invoice::OrderInput;
use serde_json::{Value, json};

fn sample() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/invoice_order.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn render(order: &Value) -> invoice::Rendered {
    let input: OrderInput = serde_json::from_value(order.clone()).unwrap_or_else(|e| panic!("{e}"));
    invoice::render(input).unwrap_or_else(|e| panic!("{e}"))
}

struct TempPdf(PathBuf);

impl TempPdf {
    fn new(bytes: &[u8], tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("invoice-test-{}-{tag}.pdf", std::process::id()));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        Self(path)
    }
}

impl Drop for TempPdf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tool(program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} missing ({e}); `make test` installs poppler-utils and qpdf")
        });
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn text_of(pdf: &TempPdf, page: Option<usize>) -> String {
    let path = pdf.0.to_string_lossy().into_owned();
    let mut args = vec![];
    let number;
    if let Some(p) = page {
        number = p.to_string();
        args.extend(["-f", number.as_str(), "-l", number.as_str()]);
    }
    args.extend([path.as_str(), "-"]);
    let (ok, text) = tool("pdftotext", &args);
    assert!(ok, "pdftotext failed");
    text
}

#[test]
fn five_scripts_come_back_exactly_from_the_text_layer() {
    let rendered = render(&sample());
    let pdf = TempPdf::new(&rendered.pdf.bytes, "scripts");
    let text = text_of(&pdf, None);
    for needle in ["Zoë Müller", "Łódź", "Δημήτρης", "Иван Петров", "山田太郎"]
    {
        assert!(
            text.contains(needle),
            "`{needle}` not in the text layer:\n{text}"
        );
    }
    assert!(
        text.contains("EUR 1,214.87"),
        "total printed with its currency:\n{text}"
    );
    assert!(text.contains("Page 1 of 1"));

    let (ok, fonts) = tool("pdffonts", &[&pdf.0.to_string_lossy()]);
    assert!(ok);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(rows.len(), 3, "{fonts}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(cols[0].contains('+'), "subset prefix: {row}");
        // emb sub uni
        assert_eq!(
            &cols[cols.len() - 5..cols.len() - 2],
            &["yes", "yes", "yes"],
            "{row}"
        );
    }
}

#[test]
fn qpdf_finds_no_errors() {
    for order in [sample(), long_order(300)] {
        let rendered = render(&order);
        let pdf = TempPdf::new(&rendered.pdf.bytes, "qpdf");
        let (ok, out) = tool("qpdf", &["--check", &pdf.0.to_string_lossy()]);
        assert!(
            ok && out.contains("No syntax or stream encoding errors"),
            "{out}"
        );
    }
}

fn long_order(lines: usize) -> Value {
    let mut order = sample();
    order["order_id"] = json!("LONG-300");
    order["lines"] = Value::Array(
        (0..lines)
            .map(|i| {
                json!({
                    "description": format!("Item {i:03} Zoë Müller Łódź 山田太郎"),
                    "quantity": format!("{}", i % 7 + 1),
                    "unit_price": format!("{}.{:02}", i % 90 + 1, i % 100),
                    "tax_rate": if i % 3 == 0 { "7" } else { "19" },
                })
            })
            .collect(),
    );
    order
}

#[test]
fn a_300_line_order_breaks_across_pages_with_headers_and_correct_totals() {
    let order = long_order(300);
    let rendered = render(&order);
    let pages = rendered.pdf.pages;
    assert!(pages >= 5, "300 lines need several pages, got {pages}");

    let pdf = TempPdf::new(&rendered.pdf.bytes, "long");
    let mut seen = 0;
    for page in 1..=pages {
        let text = text_of(&pdf, Some(page));
        assert!(
            text.contains(&format!("Page {page} of {pages}")),
            "page {page}:\n{text}"
        );
        assert!(
            text.contains("Description") && text.contains("Amount"),
            "header repeated on page {page}"
        );
        seen += text.matches("Item ").count();
    }
    assert_eq!(seen, 300, "every line printed exactly once");

    // Totals recomputed independently, in integer cents.
    let mut subtotal = 0i64;
    let mut tax_cents = [0i64; 2];
    let mut bases = [0i64; 2];
    for i in 0..300i64 {
        let qty = i % 7 + 1;
        let price_cents = (i % 90 + 1) * 100 + i % 100;
        let line = qty * price_cents;
        subtotal += line;
        bases[usize::from(i % 3 != 0)] += line;
    }
    for (slot, rate) in [(0, 7), (1, 19)] {
        // Half away from zero on a positive amount.
        tax_cents[slot] = (bases[slot] * rate + 50) / 100;
    }
    let grand = subtotal + tax_cents[0] + tax_cents[1];
    let expected = format!("{}.{:02}", grand / 100, grand % 100);
    assert_eq!(rendered.totals.grand_total.to_string(), expected);
    let cents = |c: i64| {
        let int = (c / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!("EUR {grouped}.{:02}", c % 100)
    };
    let last = text_of(&pdf, Some(pages));
    assert!(
        last.contains(&cents(grand)),
        "printed total {} on the last page:\n{last}",
        cents(grand)
    );
}

#[test]
fn same_order_same_bytes_in_one_process_and_across_processes() {
    let first = render(&sample()).pdf.bytes;
    let second = render(&sample()).pdf.bytes;
    assert!(first == second, "two renders in one warm process differ");

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/invoice_order.json"
    );
    for _ in 0..2 {
        let output = Command::new(env!("CARGO_BIN_EXE_render-invoice"))
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(output.status.success());
        assert!(
            output.stdout == first,
            "a fresh process rendered different bytes"
        );
    }

    let mut other = sample();
    other["order_id"] = json!("A-1002");
    assert!(
        render(&other).pdf.bytes != first,
        "a different order gives different bytes"
    );
}

/// Many distinct tax rates (one per line): the tax rows alone fill more
/// than a page. Every line, every tax row and the grand total must be on a
/// page, found by extracting each page's text.
#[test]
fn totals_longer_than_a_page_continue_on_the_next_pages() {
    const LINES: usize = 150;
    let mut order = sample();
    order["order_id"] = json!("RATES-150");
    order["lines"] = Value::Array(
        (0..LINES)
            .map(|i| {
                json!({
                    "description": format!("Rated item {i:03}"),
                    "quantity": "1",
                    "unit_price": "10.00",
                    // 150 distinct rates: 0.25 %, 0.50 %, ... 37.50 %.
                    "tax_rate": format!("{}.{:02}", (i + 1) / 4, (i + 1) % 4 * 25),
                })
            })
            .collect(),
    );
    let rendered = render(&order);
    assert_eq!(rendered.totals.tax_by_rate.len(), LINES);
    let pdf = TempPdf::new(&rendered.pdf.bytes, "rates");
    let pages = rendered.pdf.pages;
    let mut text = String::new();
    for page in 1..=pages {
        let one = text_of(&pdf, Some(page));
        assert!(
            one.contains(&format!("Page {page} of {pages}")),
            "page {page}"
        );
        text.push_str(&one);
    }
    for i in 0..LINES {
        assert!(
            text.contains(&format!("Rated item {i:03}")),
            "line {i} missing"
        );
    }
    // A tax row reads "Tax 0.25% on 10.00".
    assert_eq!(
        text.matches("% on ").count(),
        LINES,
        "every tax row is on a page"
    );
    let grand = rendered.totals.grand_total.to_string();
    let (int, frac) = grand.split_once('.').unwrap_or((&grand, "00"));
    let printed = format!(
        "EUR {},{}.{frac}",
        &int[..int.len() - 3],
        &int[int.len() - 3..]
    );
    assert!(
        text_of(&pdf, Some(pages)).contains(&printed),
        "the grand total {printed} on the last page"
    );
}
