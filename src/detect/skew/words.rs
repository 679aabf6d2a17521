//! Skew verdicts in words: "b_ms differs in 100% of 1,243 joined examples; median ratio
//! current/reference 0.001".

use super::{Example, SideNames, SkewSettings};

/// What a verdict is written from.
pub(super) struct Facts<'a> {
    pub joined: u64,
    pub compared: u64,
    pub mismatched: u64,
    pub missing_reference: u64,
    pub missing_current: u64,
    pub interval: Option<[f64; 2]>,
    pub skewed: bool,
    pub settings: &'a SkewSettings,
    pub median_ratio: Option<f64>,
    pub median_absolute: Option<f64>,
    pub example: Option<&'a Example>,
    pub numeric: bool,
}

pub(super) fn verdict(name: &str, f: &Facts<'_>, names: SideNames<'_>) -> String {
    let n = thousands(f.compared);
    let examples = crate::format::plural(f.compared, "joined example", "joined examples");
    let mut text = if f.joined == 0 {
        format!("{name}: no joined examples")
    } else if f.compared == 0 {
        let side = match (f.missing_reference > 0, f.missing_current > 0) {
            (true, true) => "both sides",
            (true, false) => names.reference,
            _ => names.current,
        };
        format!(
            "{name} is missing from {side} in {} {}",
            all_or(f.missing_reference.max(f.missing_current), f.joined),
            crate::format::plural(f.joined, "joined example", "joined examples")
        )
    } else if f.compared < f.settings.min_joined {
        format!(
            "{name}: {} of {n} {examples} differ, fewer examples than the {} needed for a verdict",
            thousands(f.mismatched),
            thousands(f.settings.min_joined)
        )
    } else if f.mismatched == 0 {
        format!("{name} agrees in all {n} {examples}")
    } else {
        let ratio = f.mismatched as f64 / f.compared as f64;
        let mut t = format!("{name} differs in {} of {n} {examples}", percent(ratio));
        if let Some([lo, hi]) = f.interval.filter(|_| ratio < 1.0) {
            let relation = if f.skewed {
                "above"
            } else {
                "not clearly above"
            };
            let (lo_shown, threshold_shown) = percent_against(lo, f.settings.threshold);
            t += &format!(
                " (95%: {lo_shown}–{}, {relation} {threshold_shown})",
                percent(hi),
            );
        }
        if f.skewed
            && f.numeric
            && let Some(r) = f.median_ratio
        {
            t += &format!(
                "; median ratio {}/{} {}",
                names.current,
                names.reference,
                significant(r)
            );
        } else if f.skewed
            && f.numeric
            && let Some(d) = f.median_absolute
        {
            t += &format!("; median difference {}", significant(d));
        } else if f.skewed
            && let Some(e) = f.example
        {
            t += &format!("; e.g. id {}: {} vs {}", e.id, e.reference, e.current);
        }
        t
    };
    if f.compared > 0 && (f.missing_reference > 0 || f.missing_current > 0) {
        text += &format!(
            "; missing from {} in {}, from {} in {}",
            names.reference,
            thousands(f.missing_reference),
            names.current,
            thousands(f.missing_current)
        );
    }
    text
}

fn all_or(part: u64, whole: u64) -> String {
    if part == whole {
        format!("all {}", thousands(whole))
    } else {
        format!("{} of {}", thousands(part), thousands(whole))
    }
}

/// 1243 → "1,243".
pub(super) fn thousands(n: u64) -> String {
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

/// A ratio as a percentage with enough digits to tell it from its neighbours: "100%", "3.0%",
/// "0.25%"; "0%" only for zero.
pub(super) fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p == 0.0 || p == 100.0 {
        return format!("{p:.0}%");
    }
    if p >= 1.0 {
        format!("{p:.1}%")
    } else if p >= 0.01 {
        format!("{p:.2}%")
    } else {
        "<0.01%".to_owned()
    }
}

/// The interval's lower end and the threshold it is judged against, as `percent` prints them
/// unless that would hide their order ("0.50%, above 0.50%"); then with the digits it takes.
fn percent_against(lo: f64, threshold: f64) -> (String, String) {
    let (a, b) = (percent(lo), percent(threshold));
    let read = |s: &str| s.trim_end_matches('%').parse::<f64>().ok();
    if let (Some(x), Some(y)) = (read(&a), read(&b))
        && x.partial_cmp(&y) == lo.partial_cmp(&threshold)
    {
        return (a, b);
    }
    let (a, b) = crate::format::against(lo * 100.0, threshold * 100.0);
    (format!("{a}%"), format!("{b}%"))
}

/// Three significant digits, without trailing zeros: 0.001, 1000, 1.5, -0.999.
pub(super) fn significant(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).max(0) as usize;
    let rounded = format!("{x:.decimals$}");
    if rounded.contains('.') {
        rounded
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1243), "1,243");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.03), "3.0%");
        assert_eq!(percent(0.0025), "0.25%");
        assert_eq!(percent(0.9992), "99.9%");
        assert_eq!(significant(0.001), "0.001");
        assert_eq!(significant(0.0010004), "0.001");
        assert_eq!(significant(1000.0), "1000");
        assert_eq!(significant(-0.999), "-0.999");
        assert_eq!(significant(1.5), "1.5");
    }

    #[test]
    fn an_interval_end_and_its_threshold_print_in_their_order() {
        let pair = |lo, t| percent_against(lo, t);
        assert_eq!(pair(0.03, 0.005), ("3.0%".into(), "0.50%".into()));
        assert_eq!(pair(0.00504, 0.005), ("0.504%".into(), "0.5%".into()));
        assert_eq!(pair(0.00004, 0.00005), ("0.004%".into(), "0.005%".into()));
    }
}
