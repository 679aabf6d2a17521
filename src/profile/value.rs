//! One observed value, borrowed from whatever the input was decoded into.

/// A single value of a record, as the profile sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Number(f64),
    Bool(bool),
    Str(&'a str),
    /// A value no summary applies to (a nested array or object, binary data): counted, not profiled.
    Other,
}

impl<'a> Value<'a> {
    /// Reads a text field the way a CSV column is read: empty is null, `true`/`false` (any case)
    /// are booleans, anything Rust parses as a float is a number (including `NaN` and `inf`,
    /// which are counted as non-finite), and everything else is a string.
    pub fn from_text(field: &'a str) -> Value<'a> {
        if field.is_empty() {
            return Value::Null;
        }
        let trimmed = field.trim_ascii();
        if let Some(first) = trimmed.bytes().next() {
            // Parsing is tried only when the first byte could start a number; most strings
            // are rejected without running the float parser.
            if (first.is_ascii_digit()
                || matches!(first, b'-' | b'+' | b'.' | b'i' | b'I' | b'n' | b'N'))
                && let Ok(x) = trimmed.parse::<f64>()
            {
                return Value::Number(x);
            }
            if trimmed.eq_ignore_ascii_case("true") {
                return Value::Bool(true);
            }
            if trimmed.eq_ignore_ascii_case("false") {
                return Value::Bool(false);
            }
        }
        Value::Str(field)
    }

    pub fn from_json(value: &'a serde_json::Value) -> Value<'a> {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            // Every JSON number has an f64 approximation; integers beyond 2^53 lose precision.
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Other, Value::Number),
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => Value::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Value;

    #[test]
    fn text_fields_are_typed() {
        assert_eq!(Value::from_text(""), Value::Null);
        assert_eq!(Value::from_text("12"), Value::Number(12.0));
        assert_eq!(Value::from_text(" -1.5e3 "), Value::Number(-1500.0));
        assert_eq!(Value::from_text("TRUE"), Value::Bool(true));
        assert_eq!(Value::from_text("false"), Value::Bool(false));
        assert_eq!(Value::from_text("inf"), Value::Number(f64::INFINITY));
        assert!(matches!(Value::from_text("NaN"), Value::Number(x) if x.is_nan()));
        assert_eq!(Value::from_text("naïve"), Value::Str("naïve"));
        assert_eq!(Value::from_text("  "), Value::Str("  "));
        assert_eq!(Value::from_text("1,5"), Value::Str("1,5"));
        assert_eq!(Value::from_text("\u{202e}12"), Value::Str("\u{202e}12"));
    }
}
