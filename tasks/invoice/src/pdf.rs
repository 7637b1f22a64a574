//! Draws laid-out pages into a PDF with krilla.
//!
//! Why krilla (pinned at 0.8.2): it subsets and embeds TrueType fonts with
//! ToUnicode maps, so every script on an invoice comes back exactly from the
//! text layer, and its output is byte-for-byte reproducible, also when the
//! same warm process renders twice (printpdf takes object IDs from a global
//! counter, so its second render in a process differs). The creation date is
//! the order's issue date and the document ID derives from the invoice
//! number, so the same order always gives the same bytes. typst would also
//! do, at six times the dependencies and a 34 MB binary.

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::TextDirection;
use krilla::{Document, SerializeSettings};

use chrono::Datelike;
use sfn_task::TaskError;

use crate::fonts::Fonts;
use crate::layout::{self, Align, Op, PAGE_HEIGHT, PAGE_WIDTH, Page};
use crate::order::Order;

/// A rendered invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdf {
    /// The PDF file.
    pub bytes: Vec<u8>,
    /// How many pages it has.
    pub pages: usize,
}

/// Draws `pages` (from [`layout::layout`]) for `order`.
pub fn draw(order: &Order, pages: &[Page], fonts: &Fonts) -> Result<Pdf, TaskError> {
    let settings = SerializeSettings {
        enable_tagging: false,
        ..SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    let issue = order.issue_date;
    document.set_metadata(
        Metadata::new()
            .title(format!("Invoice {}", order.order_id))
            .creator("invoice task".to_owned())
            .document_id(format!("invoice-{}", order.order_id))
            .creation_date(
                DateTime::new(u16::try_from(issue.year()).unwrap_or(2000))
                    .month(u8::try_from(issue.month()).unwrap_or(1))
                    .day(u8::try_from(issue.day()).unwrap_or(1))
                    .hour(0)
                    .minute(0)
                    .second(0)
                    .utc_offset_hour(0),
            ),
    );
    let size = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| TaskError::failed("rendering the invoice: invalid page size"))?;
    let count = pages.len();
    for (index, page) in pages.iter().enumerate() {
        let mut pdf_page = document.start_page_with(size.clone());
        let mut surface = pdf_page.surface();
        let footer = layout::footer(&order.order_id, index + 1, count);
        for op in page.ops.iter().chain(footer.iter()) {
            draw_op(&mut surface, op, fonts);
        }
        surface.finish();
        pdf_page.finish();
    }
    let bytes = document
        .finish()
        .map_err(|e| TaskError::failed(format!("rendering the invoice: {e:?}")))?;
    Ok(Pdf {
        bytes,
        pages: count,
    })
}

fn grey(level: u8) -> Fill {
    Fill {
        paint: rgb::Color::new(level, level, level).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn draw_op(surface: &mut Surface<'_>, op: &Op, fonts: &Fonts) {
    match op {
        Op::Text {
            x,
            y,
            size,
            style,
            align,
            grey: level,
            text,
        } => {
            let mut x = match align {
                Align::Left => *x,
                Align::Right => *x - fonts.width(text, *style, *size),
            };
            surface.set_fill(Some(grey(*level)));
            for (run, face) in fonts.runs(text, *style) {
                surface.draw_text(
                    Point::from_xy(x, *y),
                    face.font.clone(),
                    *size,
                    run,
                    false,
                    TextDirection::Auto,
                );
                x += face.width(run, *size);
            }
        }
        Op::Rule { x1, x2, y, width } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y);
            path.line_to(*x2, *y);
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: rgb::Color::new(120, 120, 120).into(),
                    width: *width,
                    ..Default::default()
                }));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
    }
}
