//! Printing helpers shared by the tables, the alert messages and the findings: numbers,
//! counts, percentages, plurals and text cut to a width. Display only: nothing judged or
//! stored depends on how these print.

use unicode_width::UnicodeWidthChar;

/// A compact number: integers as they are (up to 1e15), others with four significant digits.
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let magnitude = x.abs().log10().floor();
    if !(-3.0..6.0).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    let decimals = (3.0 - magnitude).max(0.0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let p = part as f64 * 100.0 / whole as f64;
    match p {
        0.0 => "0%".to_owned(),
        p if p < 0.1 => "<0.1%".to_owned(),
        p if p < 10.0 => format!("{p:.1}%"),
        p => format!("{p:.0}%"),
    }
}

/// Text safe for a terminal: control characters escaped, cut to `max` columns.
pub fn printable(text: &str, max: usize) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            let keep = !c.is_control() && !is_bidi_control(c);
            let esc: Vec<char> = if keep {
                vec![c]
            } else {
                c.escape_unicode().collect()
            };
            esc
        })
        .collect();
    truncate(&escaped, max)
}

/// Bidirectional overrides can make a terminal show text in a misleading order.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

pub fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Text cut to `max` characters, ending in "…" when cut (for names echoed in messages).
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// "did you mean `window`?" when one of `known` is at most two edits from `name` (the nearest,
/// the first in order on a tie): for unknown settings, keys and values in messages.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(name, k), k))
        .min()
        .filter(|(distance, _)| *distance <= 2)
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

/// `one` for a count of 1, `many` otherwise.
pub fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested() {
        let known = ["window", "rollup", "max_features"];
        assert_eq!(
            did_you_mean("windw", known).as_deref(),
            Some("did you mean `window`?")
        );
        assert_eq!(
            did_you_mean("max_featurs", known).as_deref(),
            Some("did you mean `max_features`?")
        );
        assert_eq!(did_you_mean("foo", known), None);
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(format_number(18.0), "18");
        assert_eq!(format_number(33.1234), "33.12");
        assert_eq!(format_number(0.123456), "0.1235");
        assert_eq!(format_number(1234.5678), "1235");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_number(1.5e7), "15000000");
        assert_eq!(format_number(1.23456e7 + 0.5), "1.235e7");
        assert_eq!(format_number(0.000012), "1.200e-5");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(12), "12");
    }

    #[test]
    fn hostile_text_is_escaped_and_fits() {
        assert_eq!(printable("a\u{1b}[31mb", 40), "a\\u{1b}[31mb");
        assert_eq!(printable("x\u{202e}y", 40), "x\\u{202e}y");
        let cut = printable(&"語".repeat(30), 10);
        assert!(width(&cut) <= 10 && width(&cut) >= 9);
        assert!(cut.ends_with('…'));
    }
}
