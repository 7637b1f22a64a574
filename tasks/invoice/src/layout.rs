//! Lays an invoice out on A4 pages as plain drawing operations, before any
//! PDF exists, so the page count ("Page N of M") is known when drawing and
//! pagination can be tested without parsing a PDF.

use crate::fonts::{Fonts, Style};
use crate::money::{self, Totals};
use crate::order::{Order, Party};

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.28;
/// A4 in points.
pub const PAGE_HEIGHT: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = PAGE_WIDTH - 50.0;
const TOP: f32 = 60.0;
/// Content stops here; the footer sits below.
const BOTTOM: f32 = PAGE_HEIGHT - 70.0;
const FOOTER_Y: f32 = PAGE_HEIGHT - 35.0;

const BODY: f32 = 9.5;
const SMALL: f32 = 8.0;
const ROW: f32 = 13.5;

// Table columns: description on the left, the numbers right-aligned.
const DESCRIPTION_WIDTH: f32 = 235.0;
const QTY_RIGHT: f32 = 340.0;
const PRICE_RIGHT: f32 = 420.0;
const TAX_RIGHT: f32 = 465.0;
const AMOUNT_RIGHT: f32 = RIGHT;

/// Horizontal alignment of a text op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// `x` is the left edge.
    Left,
    /// `x` is the right edge.
    Right,
}

/// One thing to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Text with its baseline at `y` (from the top of the page).
    Text {
        /// Anchor x.
        x: f32,
        /// Baseline y.
        y: f32,
        /// Size in points.
        size: f32,
        /// Face.
        style: Style,
        /// Alignment of `x`.
        align: Align,
        /// Grey level 0–255 (0 black).
        grey: u8,
        /// The text.
        text: String,
    },
    /// A horizontal rule.
    Rule {
        /// From x.
        x1: f32,
        /// To x.
        x2: f32,
        /// At y.
        y: f32,
        /// Line width.
        width: f32,
    },
}

/// A laid-out page; the footer is added when drawing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Operations in drawing order.
    pub ops: Vec<Op>,
}

/// Lays out `order` with its `totals`.
pub fn layout(order: &Order, totals: &Totals, fonts: &Fonts) -> Vec<Page> {
    let mut w = Writer {
        fonts,
        pages: vec![Page::default()],
        y: TOP,
        order,
    };
    w.heading();
    w.table_header();
    // The running subtotal, carried from page to page.
    let mut carried = rust_decimal::Decimal::ZERO;
    for (line, total) in order.lines.iter().zip(&totals.line_totals) {
        let wrapped = wrap(
            &line.description,
            DESCRIPTION_WIDTH,
            Style::Regular,
            BODY,
            fonts,
        );
        let height = ROW * wrapped.len() as f32;
        // A row for "Carried forward" stays free at the bottom of the page.
        if w.y + height > BOTTOM - ROW {
            w.carry(carried, "Carried forward");
            w.new_page();
            w.table_header();
            w.carry(carried, "Brought forward");
        }
        let baseline = w.y;
        for (i, part) in wrapped.into_iter().enumerate() {
            w.text(
                LEFT,
                baseline + ROW * i as f32,
                BODY,
                Style::Regular,
                Align::Left,
                part,
            );
        }
        let cells = [
            (QTY_RIGHT, money::format_plain(line.quantity)),
            // Unit prices may be finer than the currency's minor unit; print
            // them exactly, never rounded.
            (
                PRICE_RIGHT,
                money::format_amount(
                    line.unit_price,
                    order.exponent.max(line.unit_price.normalize().scale()),
                ),
            ),
            (
                TAX_RIGHT,
                format!("{}%", money::format_plain(line.tax_rate)),
            ),
            (AMOUNT_RIGHT, money::format_amount(*total, order.exponent)),
        ];
        for (x, cell) in cells {
            w.text(x, baseline, BODY, Style::Regular, Align::Right, cell);
        }
        w.y += height;
        carried += *total;
    }
    w.rule(w.y - ROW + 4.0, 0.6);
    w.totals(totals);
    w.notes();
    w.pages
}

struct Writer<'a> {
    fonts: &'a Fonts,
    pages: Vec<Page>,
    y: f32,
    order: &'a Order,
}

impl Writer<'_> {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn text(&mut self, x: f32, y: f32, size: f32, style: Style, align: Align, text: String) {
        self.styled(x, y, size, style, align, 0, text);
    }

    #[allow(clippy::too_many_arguments)]
    fn styled(
        &mut self,
        x: f32,
        y: f32,
        size: f32,
        style: Style,
        align: Align,
        grey: u8,
        text: String,
    ) {
        if text.is_empty() {
            return;
        }
        self.page().ops.push(Op::Text {
            x,
            y,
            size,
            style,
            align,
            grey,
            text,
        });
    }

    fn rule(&mut self, y: f32, width: f32) {
        self.page().ops.push(Op::Rule {
            x1: LEFT,
            x2: RIGHT,
            y,
            width,
        });
    }

    fn new_page(&mut self) {
        self.pages.push(Page::default());
        self.y = TOP;
        let title = format!("Invoice {} (continued)", self.order.order_id);
        self.styled(LEFT, self.y, BODY, Style::Bold, Align::Left, 80, title);
        self.y += ROW * 2.0;
    }

    /// Makes room for `height` more points, starting a page if needed.
    fn room(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.new_page();
        }
    }

    fn heading(&mut self) {
        let order = self.order;
        self.text(
            LEFT,
            self.y + 8.0,
            22.0,
            Style::Bold,
            Align::Left,
            "INVOICE".to_owned(),
        );
        let mut facts = vec![
            ("Invoice no.", order.order_id.clone()),
            (
                "Issue date",
                order.issue_date.format("%Y-%m-%d").to_string(),
            ),
        ];
        if let Some(due) = order.due_date {
            facts.push(("Due date", due.format("%Y-%m-%d").to_string()));
        }
        facts.push(("Currency", order.currency.code().to_owned()));
        let mut y = self.y;
        for (label, value) in facts {
            self.styled(
                RIGHT - 110.0,
                y,
                BODY,
                Style::Regular,
                Align::Right,
                90,
                label.to_owned(),
            );
            self.text(RIGHT, y, BODY, Style::Bold, Align::Right, value);
            y += ROW;
        }
        self.y = self.y.max(y) + ROW * 1.5;

        let top = self.y;
        let seller_end = self.party(LEFT, top, "From", &order.seller);
        let buyer_end = self.party(PAGE_WIDTH / 2.0 + 20.0, top, "Bill to", &order.buyer);
        self.y = seller_end.max(buyer_end) + ROW * 1.5;
    }

    /// Draws a party block; returns the y below it.
    fn party(&mut self, x: f32, top: f32, label: &str, party: &Party) -> f32 {
        let width = PAGE_WIDTH / 2.0 - 70.0;
        let mut y = top;
        self.styled(
            x,
            y,
            SMALL,
            Style::Bold,
            Align::Left,
            90,
            label.to_uppercase(),
        );
        y += ROW;
        for part in wrap(&party.name, width, Style::Bold, 11.0, self.fonts) {
            self.text(x, y, 11.0, Style::Bold, Align::Left, part);
            y += ROW + 1.0;
        }
        let mut rest: Vec<String> = party.address.clone();
        rest.push(party.email.clone());
        if let Some(tax_id) = &party.tax_id {
            rest.push(format!("Tax ID: {tax_id}"));
        }
        for line in rest {
            for part in wrap(&line, width, Style::Regular, BODY, self.fonts) {
                self.text(x, y, BODY, Style::Regular, Align::Left, part);
                y += ROW;
            }
        }
        y
    }

    /// A "Carried forward" or "Brought forward" row with the running
    /// subtotal, where the line table breaks across pages.
    fn carry(&mut self, subtotal: rust_decimal::Decimal, label: &str) {
        let exp = self.order.exponent;
        let code = self.order.currency.code();
        let value = format!("{code} {}", money::format_amount(subtotal, exp));
        self.styled(
            TAX_RIGHT,
            self.y,
            BODY,
            Style::Regular,
            Align::Right,
            90,
            label.to_owned(),
        );
        self.styled(
            AMOUNT_RIGHT,
            self.y,
            BODY,
            Style::Regular,
            Align::Right,
            90,
            value,
        );
        self.y += ROW;
    }

    fn table_header(&mut self) {
        let y = self.y;
        for (x, align, label) in [
            (LEFT, Align::Left, "Description"),
            (QTY_RIGHT, Align::Right, "Qty"),
            (PRICE_RIGHT, Align::Right, "Unit price"),
            (TAX_RIGHT, Align::Right, "Tax"),
            (AMOUNT_RIGHT, Align::Right, "Amount"),
        ] {
            self.text(x, y, BODY, Style::Bold, align, label.to_owned());
        }
        self.rule(y + 5.0, 0.8);
        self.y += ROW * 1.4;
    }

    fn totals(&mut self, totals: &Totals) {
        let exp = self.order.exponent;
        let code = self.order.currency.code();
        let amount = |v| format!("{code} {}", money::format_amount(v, exp));
        let mut rows = vec![(
            Style::Regular,
            "Subtotal".to_owned(),
            amount(totals.subtotal),
        )];
        for (rate, (base, tax)) in &totals.tax_by_rate {
            rows.push((
                Style::Regular,
                format!(
                    "Tax {}% on {}",
                    money::format_plain(*rate),
                    money::format_amount(*base, exp)
                ),
                amount(*tax),
            ));
        }
        rows.push((Style::Bold, "Total".to_owned(), amount(totals.grand_total)));
        self.y += ROW * 0.5;
        // Short totals stay together; longer ones (many tax rates) continue
        // on the next pages, row by row, the grand total never alone.
        self.room(ROW * (rows.len() as f32 + 1.0).min(8.0));
        let count = rows.len();
        for (i, (style, label, value)) in rows.into_iter().enumerate() {
            let last = i + 1 == count;
            self.room(if last { ROW * 2.0 } else { ROW });
            if last {
                let y = self.y - ROW + 4.0;
                self.page().ops.push(Op::Rule {
                    x1: PRICE_RIGHT - 100.0,
                    x2: RIGHT,
                    y,
                    width: 0.6,
                });
            }
            self.text(TAX_RIGHT, self.y, BODY, style, Align::Right, label);
            self.text(AMOUNT_RIGHT, self.y, BODY, style, Align::Right, value);
            self.y += ROW;
        }
    }

    fn notes(&mut self) {
        let order = self.order;
        let width = RIGHT - LEFT;
        let mut blocks = Vec::new();
        if let Some(terms) = &order.payment_terms {
            blocks.push(("Payment terms", terms.as_str()));
        }
        if let Some(notes) = &order.notes {
            blocks.push(("Notes", notes.as_str()));
        }
        for (label, body) in blocks {
            self.y += ROW;
            self.room(ROW * 2.0);
            self.text(
                LEFT,
                self.y,
                BODY,
                Style::Bold,
                Align::Left,
                label.to_owned(),
            );
            self.y += ROW;
            for paragraph in body.split('\n') {
                for part in wrap(paragraph, width, Style::Regular, BODY, self.fonts) {
                    self.room(ROW);
                    self.text(LEFT, self.y, BODY, Style::Regular, Align::Left, part);
                    self.y += ROW;
                }
            }
        }
    }
}

/// The footer of page `number` of `count`.
pub fn footer(order_id: &str, number: usize, count: usize) -> [Op; 2] {
    [
        Op::Text {
            x: LEFT,
            y: FOOTER_Y,
            size: SMALL,
            style: Style::Regular,
            align: Align::Left,
            grey: 90,
            text: format!("Invoice {order_id}"),
        },
        Op::Text {
            x: RIGHT,
            y: FOOTER_Y,
            size: SMALL,
            style: Style::Regular,
            align: Align::Right,
            grey: 90,
            text: format!("Page {number} of {count}"),
        },
    ]
}

/// Greedy word wrap to `width`; a word wider than a line (or CJK text with
/// no spaces) is split between characters. Never returns an empty vector
/// for non-empty text.
pub fn wrap(text: &str, width: f32, style: Style, size: f32, fonts: &Fonts) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if fonts.width(&candidate, style, size) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // A word wider than the column breaks between characters; its
        // characters are measured in one shaping (a 240-character word
        // shaped prefix by prefix took seconds).
        let mut used = 0.0;
        for (c, advance) in word.chars().zip(fonts.char_advances(word, style, size)) {
            if used + advance > width && !current.is_empty() {
                lines.push(std::mem::take(&mut current));
                used = 0.0;
            }
            current.push(c);
            used += advance;
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}
