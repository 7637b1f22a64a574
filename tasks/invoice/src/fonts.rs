//! The embedded fonts, with glyph coverage and text measurement.
//!
//! Text is drawn in runs: each character goes to the first face of the chain
//! (DejaVu Sans, then Droid Sans Fallback for CJK) that has a glyph for it.
//! Widths are measured by shaping with rustybuzz exactly as krilla's
//! `draw_text` does, so right-aligned amounts line up.

use std::sync::OnceLock;

use krilla::text::Font;
use skrifa::MetadataProvider;
use skrifa::charmap::Charmap;

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
/// Droid Sans Fallback, deflated by `build.rs`: half the binary's size
/// otherwise, and most invoices never need it.
static CJK_DEFLATED: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/DroidSansFallbackFull.ttf.deflate"
));

/// The CJK font, inflated on its first use in a process (23 ms of one CPU
/// measured on the 2-core development machine, opt-level "s").
fn cjk_bytes() -> Option<&'static [u8]> {
    static CJK: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    CJK.get_or_init(|| miniz_oxide::inflate::decompress_to_vec(CJK_DEFLATED).ok())
        .as_deref()
}

/// One font face.
pub struct Face {
    /// The face as krilla draws it.
    pub font: Font,
    charmap: Charmap<'static>,
    shaper: rustybuzz::Face<'static>,
}

impl std::fmt::Debug for Face {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Face")
    }
}

impl Face {
    fn load(bytes: &'static [u8]) -> Option<Self> {
        Some(Self {
            font: Font::new(bytes.into(), 0)?,
            charmap: skrifa::FontRef::from_index(bytes, 0).ok()?.charmap(),
            shaper: rustybuzz::Face::from_slice(bytes, 0)?,
        })
    }

    /// Whether the face has a real glyph (not `.notdef`) for `c`.
    pub fn has_glyph(&self, c: char) -> bool {
        self.charmap.map(c).is_some_and(|g| g.to_u32() != 0)
    }

    /// The advance of each character of `text` at `size` points, from one
    /// shaping of the whole text (kerning included; a character inside a
    /// multi-character cluster gets 0, the cluster's first the whole).
    pub fn char_advances(&self, text: &str, size: f32) -> Vec<f32> {
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&self.shaper, &[], buffer);
        let scale = size / f32::from(self.shaper.units_per_em() as u16);
        let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let mut advances = vec![0.0; starts.len()];
        for (info, position) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            let cluster = info.cluster as usize;
            let index = starts.partition_point(|&start| start < cluster);
            if let Some(advance) = advances.get_mut(index) {
                *advance += position.x_advance as f32 * scale;
            }
        }
        advances
    }

    /// Advance width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&self.shaper, &[], buffer);
        let advance: i64 = shaped
            .glyph_positions()
            .iter()
            .map(|p| i64::from(p.x_advance))
            .sum();
        advance as f32 / f32::from(self.shaper.units_per_em() as u16) * size
    }
}

/// Regular or bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
}

/// The three faces; parsed once per process, the CJK one when a character
/// first needs it.
#[derive(Debug)]
pub struct Fonts {
    regular: Face,
    bold: Face,
    cjk: OnceLock<Option<Face>>,
}

impl Fonts {
    /// The process-wide fonts, parsed on first use. `None` only if the
    /// embedded files are corrupt, which the unit tests rule out.
    pub fn get() -> Option<&'static Fonts> {
        static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
        FONTS
            .get_or_init(|| {
                Some(Fonts {
                    regular: Face::load(REGULAR)?,
                    bold: Face::load(BOLD)?,
                    cjk: OnceLock::new(),
                })
            })
            .as_ref()
    }

    /// The CJK fallback; `None` only if the embedded file is corrupt, which
    /// the unit tests rule out.
    fn cjk(&self) -> Option<&Face> {
        self.cjk
            .get_or_init(|| cjk_bytes().and_then(Face::load))
            .as_ref()
    }

    fn primary(&self, style: Style) -> &Face {
        match style {
            Style::Regular => &self.regular,
            Style::Bold => &self.bold,
        }
    }

    /// Splits `text` into runs, each with the face that draws it. Spaces
    /// stay with the run they are in; a character no face has goes to the
    /// primary face (it shows as a box, the text layer keeps it).
    pub fn runs<'t>(&self, text: &'t str, style: Style) -> Vec<(&'t str, &Face)> {
        let primary = self.primary(style);
        let pick = |c: char| {
            if primary.has_glyph(c) {
                return primary;
            }
            match self.cjk() {
                Some(cjk) if cjk.has_glyph(c) => cjk,
                _ => primary,
            }
        };
        let mut runs: Vec<(&str, &Face)> = Vec::new();
        let mut start = 0;
        let mut current: Option<&Face> = None;
        for (i, c) in text.char_indices() {
            let face = match current {
                Some(face) if c == ' ' => face,
                _ => pick(c),
            };
            if let Some(prev) = current
                && !std::ptr::eq(prev, face)
            {
                runs.push((&text[start..i], prev));
                start = i;
            }
            current = Some(face);
        }
        if let Some(face) = current {
            runs.push((&text[start..], face));
        }
        runs
    }

    /// The advance of each character of `text` in points, each run shaped
    /// once: measuring a long word character by character costs one
    /// shaping, not one per character.
    pub fn char_advances(&self, text: &str, style: Style, size: f32) -> Vec<f32> {
        self.runs(text, style)
            .iter()
            .flat_map(|(run, face)| face.char_advances(run, size))
            .collect()
    }

    /// Width of `text` in points.
    pub fn width(&self, text: &str, style: Style, size: f32) -> f32 {
        self.runs(text, style)
            .iter()
            .map(|(run, face)| face.width(run, size))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> &'static Fonts {
        Fonts::get().unwrap_or_else(|| panic!("embedded fonts must parse"))
    }

    #[test]
    fn coverage_and_fallback() {
        let f = fonts();
        for c in ['ë', 'Ł', 'Δ', 'И', '€'] {
            assert!(f.regular.has_glyph(c) && f.bold.has_glyph(c), "{c}");
        }
        let cjk = f
            .cjk()
            .unwrap_or_else(|| panic!("the embedded CJK font must parse"));
        assert!(!f.regular.has_glyph('山') && cjk.has_glyph('山'));
        let runs = f.runs("Zoë 山田太郎 Ltd", Style::Regular);
        let texts: Vec<_> = runs.iter().map(|(t, _)| *t).collect();
        assert_eq!(texts, vec!["Zoë ", "山田太郎 ", "Ltd"]);
    }

    #[test]
    fn widths_scale_and_add_up() {
        let f = fonts();
        let w10 = f.width("Invoice 1,234.50", Style::Regular, 10.0);
        let w20 = f.width("Invoice 1,234.50", Style::Regular, 20.0);
        assert!(w10 > 40.0 && w10 < 120.0, "{w10}");
        assert!((w20 - 2.0 * w10).abs() < 0.01);
        assert!(f.width("Total", Style::Bold, 10.0) > f.width("Total", Style::Regular, 10.0));
        assert_eq!(f.width("", Style::Regular, 10.0), 0.0);
    }

    #[test]
    fn character_advances_add_up_to_the_width() {
        let f = fonts();
        for text in [
            "Invoice 1,234.50",
            "Zoë 山田太郎 Ltd",
            "AVAVAV",
            "e\u{301}x",
        ] {
            let advances = f.char_advances(text, Style::Regular, 10.0);
            assert_eq!(advances.len(), text.chars().count(), "{text}");
            let sum: f32 = advances.iter().sum();
            let width = f.width(text, Style::Regular, 10.0);
            assert!((sum - width).abs() < 0.01, "{text}: {sum} vs {width}");
        }
    }
}
