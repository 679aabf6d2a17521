//! Text made safe for HTML and SVG, and the number formats the pictures print.

use std::fmt::{self, Display, Write as _};

use unicode_width::UnicodeWidthChar;

/// Text for an HTML or SVG element or a quoted attribute value: `& < > " '` become
/// references, and characters that would hide or reorder what a reader sees (control
/// characters, bidirectional overrides and isolates) are shown as `\u{…}` escapes, as the
/// terminal tables do.
pub struct Text<'a>(pub &'a str);

impl Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found a character");
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'') || c.is_control() || is_bidi_control(c)
}

/// Bidirectional embeddings, overrides, isolates and marks: they can make text read in a
/// misleading order ("Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

/// `text` cut to at most `columns` terminal columns, with `…` when cut: SVG text cannot be
/// cut by CSS.
pub fn clip(text: &str, columns: usize) -> std::borrow::Cow<'_, str> {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        used += c.width().unwrap_or(0);
        if used > columns {
            let mut cut = String::with_capacity(i + 3);
            let mut kept = 0;
            for c in text.chars() {
                let w = c.width().unwrap_or(0);
                if kept + w + 1 > columns {
                    break;
                }
                cut.push(c);
                kept += w;
            }
            cut.push('…');
            return cut.into();
        }
    }
    text.into()
}

/// A share (0..=1) as a percentage: `0%`, `<0.1%`, `4.2%`, `37%`.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    match p {
        p if p <= 0.0 => "0%".to_owned(),
        p if p < 0.1 => "<0.1%".to_owned(),
        p if p < 10.0 => format!("{p:.1}%"),
        p if p < 99.5 => format!("{p:.0}%"),
        p if p < 100.0 => ">99%".to_owned(),
        _ => "100%".to_owned(),
    }
}

/// A coordinate with at most one decimal, without trailing zeros: SVG paths stay short.
pub fn coord(x: f64) -> Coord {
    Coord((x * 10.0).round() as i64)
}

/// A coordinate in tenths of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coord(i64);

impl Display for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, tenths) = (self.0 / 10, (self.0 % 10).abs());
        if self.0 < 0 && whole == 0 {
            f.write_char('-')?;
        }
        if tenths == 0 {
            write!(f, "{whole}")
        } else {
            write!(f, "{whole}.{tenths}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_hostile_unicode_are_escaped() {
        assert_eq!(
            Text("<script>alert('x')</script> & \"y\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(
            Text("ab\u{202e}cd\u{2067}").to_string(),
            "ab\\u{202e}cd\\u{2067}"
        );
        assert_eq!(Text("a\u{0}b\u{1b}[31m").to_string(), "a\\u{0}b\\u{1b}[31m");
        assert_eq!(Text("naïve 語 👩‍🔬").to_string(), "naïve 語 👩‍🔬");
    }

    #[test]
    fn clipping_counts_columns() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghijk", 6), "abcde…");
        assert_eq!(clip(&"語".repeat(10), 7), "語語語…");
    }

    #[test]
    fn coordinates_and_percentages_are_compact() {
        assert_eq!(coord(12.0).to_string(), "12");
        assert_eq!(coord(12.34).to_string(), "12.3");
        assert_eq!(coord(-0.46).to_string(), "-0.5");
        assert_eq!(coord(-3.25).to_string(), "-3.3");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0004), "<0.1%");
        assert_eq!(percent(0.042), "4.2%");
        assert_eq!(percent(0.371), "37%");
        assert_eq!(percent(0.997), ">99%");
        assert_eq!(percent(1.0), "100%");
    }
}
