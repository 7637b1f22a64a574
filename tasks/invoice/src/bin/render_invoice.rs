//! Renders an order (JSON on stdin or the file named by the first argument)
//! to a PDF on stdout, without S3: `render-invoice events/invoice_order.json > a.pdf`.

use std::io::{Read, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::new();
    match std::env::args().nth(1) {
        Some(path) => text = std::fs::read_to_string(path)?,
        None => {
            std::io::stdin().read_to_string(&mut text)?;
        }
    }
    let order: invoice::OrderInput = serde_json::from_str(&text)?;
    let rendered = invoice::render(order)?;
    std::io::stdout().write_all(&rendered.pdf.bytes)?;
    Ok(())
}
