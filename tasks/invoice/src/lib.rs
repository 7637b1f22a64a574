//! The `invoice` task: renders a PDF invoice for an order and stores it in
//! S3 at `invoices/{yyyy}/{order_id}.pdf`, exactly once.
//!
//! The flow is validate ([`order`]) → compute ([`money`]) → lay out
//! ([`layout`]) → draw ([`pdf`], which explains the choice of krilla) →
//! store ([`store`]). Bad input fails before anything is written.

pub mod fonts;
pub mod layout;
pub mod money;
pub mod order;
pub mod pdf;
pub mod store;

use aws_sdk_s3::Client;
use chrono::Datelike;
use common::{TaskContext, TaskError};
use serde::Serialize;

pub use order::OrderInput;

/// Settings read at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `INVOICE_BUCKET`: where invoices are stored.
    pub bucket: String,
}

impl Config {
    /// Reads `INVOICE_BUCKET`.
    pub fn from_env() -> Result<Self, TaskError> {
        match std::env::var("INVOICE_BUCKET") {
            Ok(bucket) if !bucket.trim().is_empty() => Ok(Self { bucket }),
            _ => Err(TaskError::failed("INVOICE_BUCKET is not set")),
        }
    }
}

/// The task's output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Output {
    /// Bucket holding the invoice.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Hex SHA-256 of the PDF.
    pub sha256: String,
    /// PDF size in bytes.
    pub size: u64,
    /// Number of pages.
    pub page_count: usize,
    /// Grand total, as a decimal string with the currency's minor units.
    pub total: String,
    /// ISO 4217 code.
    pub currency: String,
    /// True when the identical invoice was already stored (a retry or rerun).
    pub already_existed: bool,
}

/// A rendered invoice and its numbers, before storage.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The validated order.
    pub order: order::Order,
    /// Its totals.
    pub totals: money::Totals,
    /// The PDF.
    pub pdf: pdf::Pdf,
}

/// Validates and renders, without touching S3.
pub fn render(input: OrderInput) -> Result<Rendered, TaskError> {
    let order = input.validate()?;
    let fonts = Fonts::get().ok_or_else(|| TaskError::failed("embedded fonts are unreadable"))?;
    let totals = money::totals(&order);
    let pages = layout::layout(&order, &totals, fonts);
    let pdf = pdf::draw(&order, &pages, fonts)?;
    Ok(Rendered { order, totals, pdf })
}

use fonts::Fonts;

/// The S3 key of an order's invoice.
pub fn key_for(order: &order::Order) -> String {
    format!(
        "invoices/{:04}/{}.pdf",
        order.issue_date.year(),
        order.order_id
    )
}

/// The handler: render, then store once.
pub async fn handle(
    s3: &Client,
    config: &Config,
    input: OrderInput,
    ctx: TaskContext,
) -> Result<Output, TaskError> {
    // Rendering is CPU work: off the async threads, so the deadline guard
    // can still fire while a large invoice renders.
    let Rendered { order, totals, pdf } = tokio::task::spawn_blocking(move || render(input))
        .await
        .map_err(|e| TaskError::Panic(format!("rendering the invoice: {e}")))??;
    let key = key_for(&order);
    let pages = pdf.pages;
    let stored = store::put_once(
        s3,
        &config.bucket,
        &key,
        pdf.bytes,
        store::Labels {
            correlation_id: ctx.correlation_id(),
            order_id: &order.order_id,
        },
    )
    .await?;
    tracing::info!(
        key,
        pages,
        bytes = stored.size,
        already_existed = stored.already_existed,
        "invoice stored"
    );
    Ok(Output {
        bucket: config.bucket.clone(),
        key,
        sha256: stored.sha256,
        size: stored.size,
        page_count: pages,
        total: totals.grand_total.to_string(),
        currency: order.currency.code().to_owned(),
        already_existed: stored.already_existed,
    })
}
