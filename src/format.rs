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

/// Every line of `text` cut to `columns` (display width, never inside a character); `None`
/// keeps whole lines, for pipes and files.
pub fn fit(text: &str, columns: Option<usize>) -> String {
    let Some(columns) = columns else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        out.push_str(&truncate(body, columns));
        out.push_str(end);
    }
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

/// `x` rounded to `digits` significant digits, without trailing zeros: 0.0997 at 2 digits is
/// "0.1", 123456 is "123456" (integer digits are never dropped), 1.5e-7 is "1.5e-7".
pub fn significant(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let digits = digits.max(1);
    let magnitude = x.abs().log10().floor();
    if !(-5.0..15.0).contains(&magnitude) {
        let s = format!("{x:.*e}", digits - 1);
        let (mantissa, exponent) = s.split_once('e').expect("exponent notation");
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (digits as f64 - 1.0 - magnitude).max(0.0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `values` printed with the fewest significant digits (at least 2) for which `agrees`, given
/// the values as printed, holds: a comparison shown in a message reads as it was made. 17
/// digits print every f64 exactly, so the search ends.
pub fn telling(values: &[f64], agrees: impl Fn(&[f64]) -> bool) -> Vec<String> {
    // A value is never given more digits than its shortest exact form has.
    let at = |x: f64, digits: usize| significant(x, digits.min(exact_digits(x)));
    for digits in 2..17 {
        let shown: Vec<String> = values.iter().map(|&x| at(x, digits)).collect();
        if reads_true(values, &shown, &agrees) {
            return shown;
        }
    }
    values.iter().map(|&x| at(x, 17)).collect()
}

/// The significant digits of the shortest text that reads back as `x` exactly.
fn exact_digits(x: f64) -> usize {
    let text = format!("{x:e}");
    let mantissa = text.split('e').next().unwrap_or_default();
    mantissa.chars().filter(char::is_ascii_digit).count().max(1)
}

/// Whether `shown`, read back, keeps `agrees` and prints no value as zero that is not.
fn reads_true(values: &[f64], shown: &[String], agrees: &impl Fn(&[f64]) -> bool) -> bool {
    let parsed: Option<Vec<f64>> = shown.iter().map(|s| s.parse().ok()).collect();
    parsed.is_some_and(|p| {
        p.iter()
            .zip(values)
            .all(|(p, v)| (*p == 0.0) == (*v == 0.0))
            && agrees(&p)
    })
}

/// `values` as `print` shows them when, read back, `agrees` still holds and no value reads as
/// zero that is not (so a message keeps its usual look); otherwise as `telling` shows them. A printed value that does not read as a
/// number ("<0.1") counts as disagreeing.
pub fn telling_as(
    values: &[f64],
    print: impl Fn(f64) -> String,
    agrees: impl Fn(&[f64]) -> bool,
) -> Vec<String> {
    let shown: Vec<String> = values.iter().map(|&x| print(x)).collect();
    if reads_true(values, &shown, &agrees) {
        return shown;
    }
    telling(values, agrees)
}

/// A score and the threshold it was judged against, printed so they differ when they differ
/// and compare as they do: 0.0997 and 0.1 print as "0.0997" and "0.1", not "0.10" and "0.10".
pub fn against(score: f64, threshold: f64) -> (String, String) {
    let order = score.partial_cmp(&threshold);
    let mut shown = telling(&[score, threshold], |p| p[0].partial_cmp(&p[1]) == order);
    let threshold = shown.pop().expect("two values");
    (shown.pop().expect("two values"), threshold)
}

/// `one` for a count of 1, `many` otherwise.
pub fn plural<'a>(count: impl TryInto<u64>, one: &'a str, many: &'a str) -> &'a str {
    if count.try_into().ok() == Some(1) {
        one
    } else {
        many
    }
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
    fn significant_digits_without_trailing_zeros() {
        assert_eq!(significant(0.0997, 2), "0.1");
        assert_eq!(significant(0.0997, 3), "0.0997");
        assert_eq!(significant(0.25, 2), "0.25");
        assert_eq!(significant(0.2, 2), "0.2");
        assert_eq!(significant(7.924560244822863, 3), "7.92");
        assert_eq!(significant(123456.7, 2), "123457");
        assert_eq!(significant(-0.5, 2), "-0.5");
        assert_eq!(significant(0.0, 5), "0");
        assert_eq!(significant(1.5e-7, 2), "1.5e-7");
        assert_eq!(significant(3e-300, 2), "3e-300");
        assert_eq!(significant(f64::INFINITY, 2), "inf");
    }

    #[test]
    fn scores_and_thresholds_compare_as_printed() {
        let pair = |s, t| {
            let (s, t) = against(s, t);
            format!("{s} {t}")
        };
        assert_eq!(pair(0.0997, 0.1), "0.0997 0.1");
        assert_eq!(pair(0.25, 0.2), "0.25 0.2");
        assert_eq!(pair(0.3991177064199277, 0.1), "0.4 0.1");
        assert_eq!(pair(7.924560244822863, 0.2), "7.9 0.2");
        assert_eq!(pair(0.0, 0.1), "0 0.1");
        assert_eq!(pair(0.2, 0.2), "0.2 0.2");
        assert_eq!(pair(0.19999, 0.2), "0.19999 0.2");
        assert_eq!(pair(0.200004, 0.2), "0.200004 0.2");
        let next = f64::from_bits(0.1f64.to_bits() + 1);
        let (s, t) = against(next, 0.1);
        assert_eq!((s.parse::<f64>().unwrap(), t.as_str()), (next, "0.1"));
        assert_eq!(pair(1e-20, 0.05), "1e-20 0.05");
    }

    #[test]
    fn telling_keeps_a_tolerance_check_true() {
        // |a - b| > tolerance, which two digits would hide: 0.1 vs 0.1 "more than 0.0002 apart".
        let shown = telling(&[0.10036, 0.10009, 0.0002], |p| (p[0] - p[1]).abs() > p[2]);
        assert_eq!(shown, ["0.1004", "0.1001", "0.0002"]);
    }

    #[test]
    fn a_usual_look_is_kept_while_it_tells_the_truth() {
        let four = |x: f64| format!("{x:.4}");
        let more = |p: &[f64]| (p[0] - p[1]).abs() > p[2];
        assert_eq!(
            telling_as(&[0.01, 0.05, 0.01], four, more),
            ["0.0100", "0.0500", "0.0100"]
        );
        // More than 0.00002 apart; at four decimals, 0.1000 vs 0.1000 and 0.0000.
        assert_eq!(
            telling_as(&[0.10004, 0.10001, 0.00002], four, more),
            ["0.10004", "0.10001", "0.00002"]
        );
        // Apart at four decimals too, but the tolerance would read as 0.
        assert_eq!(
            telling_as(&[0.01, 0.01007, 0.00004], four, more),
            ["0.01", "0.0101", "0.00004"]
        );
        let shown = telling_as(&[0.05, 0.01], |_| "<0.1".to_owned(), |p| p[0] > p[1]);
        assert_eq!(shown, ["0.05", "0.01"]);
    }

    #[test]
    fn lines_fit_a_width_or_stay_whole() {
        let text = "abcdef\n語語語語\n\nxy\n";
        assert_eq!(fit(text, None), text);
        assert_eq!(fit(text, Some(5)), "abcd…\n語語…\n\nxy\n");
        assert_eq!(fit("語語語", Some(4)), "語…");
    }

    #[test]
    fn plurals_follow_the_count() {
        assert_eq!(plural(1usize, "row", "rows"), "row");
        assert_eq!(plural(1u64, "row", "rows"), "row");
        assert_eq!(plural(0usize, "row", "rows"), "rows");
        assert_eq!(plural(2u64, "row", "rows"), "rows");
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
