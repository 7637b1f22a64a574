//! Deflates the CJK fallback font into `OUT_DIR`: 4.0 MB raw, 2.1 MB
//! deflated, and only an invoice with a character DejaVu lacks inflates it
//! (`fonts.rs`). The DejaVu faces, which every invoice uses, stay raw.

use std::path::PathBuf;

fn main() {
    let font = "fonts/DroidSansFallbackFull.ttf";
    println!("cargo::rerun-if-changed={font}");
    let raw = std::fs::read(font).unwrap_or_else(|e| panic!("{font}: {e}"));
    let deflated = miniz_oxide::deflate::compress_to_vec(&raw, 9);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let target = out.join("DroidSansFallbackFull.ttf.deflate");
    std::fs::write(&target, deflated).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}
