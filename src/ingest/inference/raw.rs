//! Walking JSON that serde_json has already validated, in place: the elements of an array one
//! at a time, and the scalars of nested arrays in row-major order. Memory is one element, never
//! the array: a tensor of a million numbers is read without a million values in memory.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

/// What a raw JSON value is, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Array,
    Object,
    Scalar,
}

pub(super) fn shape(raw: &RawValue) -> Shape {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'[') => Shape::Array,
        Some(b'{') => Shape::Object,
        _ => Shape::Scalar,
    }
}

/// A scalar's value (null, boolean, number or string); `None` for arrays and objects, which
/// are never parsed into values here.
pub(super) fn scalar(raw: &RawValue) -> Option<Value> {
    match shape(raw) {
        Shape::Scalar => serde_json::from_str(raw.get()).ok(),
        _ => None,
    }
}

/// "an array", "a string": how a raw value is named in a refusal.
pub(super) fn kind(raw: &RawValue) -> &'static str {
    match shape(raw) {
        Shape::Array => "an array",
        Shape::Object => "an object",
        Shape::Scalar => scalar(raw).map_or("a value", |v| super::super::json_type(&v)),
    }
}

/// An object's members, borrowed; `None` if `raw` is not an object.
pub(super) fn members(raw: &RawValue) -> Option<Vec<(String, &RawValue)>> {
    if shape(raw) != Shape::Object {
        return None;
    }
    let members = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()).ok()?;
    Some(members.into_iter().collect())
}

/// The elements of a JSON array, in order.
pub(super) struct Elements<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Elements<'a> {
    /// `None` if `raw` is not an array.
    pub(super) fn of(raw: &'a RawValue) -> Option<Elements<'a>> {
        let text = raw.get().trim_start();
        text.starts_with('[').then_some(Elements { text, pos: 1 })
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a RawValue;

    fn next(&mut self) -> Option<&'a RawValue> {
        let rest = self.text.get(self.pos..)?;
        // The array is valid JSON: between elements there are only a comma and whitespace.
        let start = rest.len()
            - rest
                .trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace())
                .len();
        self.pos += start;
        let rest = &self.text[self.pos..];
        if rest.is_empty() || rest.starts_with(']') {
            self.pos = self.text.len() + 1;
            return None;
        }
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
        match stream.next() {
            Some(Ok(element)) => {
                self.pos += stream.byte_offset();
                Some(element)
            }
            _ => {
                self.pos = self.text.len() + 1;
                None
            }
        }
    }
}

/// The scalars (and objects) of nested arrays in row-major order: `[[1, 2], [3]]` gives 1, 2,
/// 3; a value that is not an array gives itself.
pub(super) struct Leaves<'a> {
    stack: Vec<Elements<'a>>,
    single: Option<&'a RawValue>,
}

impl<'a> Leaves<'a> {
    pub(super) fn of(raw: &'a RawValue) -> Leaves<'a> {
        match Elements::of(raw) {
            Some(elements) => Leaves {
                stack: vec![elements],
                single: None,
            },
            None => Leaves {
                stack: Vec::new(),
                single: Some(raw),
            },
        }
    }
}

impl<'a> Iterator for Leaves<'a> {
    type Item = &'a RawValue;

    fn next(&mut self) -> Option<&'a RawValue> {
        if let Some(single) = self.single.take() {
            return Some(single);
        }
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                None => {
                    self.stack.pop();
                }
                Some(element) => match Elements::of(element) {
                    Some(nested) => self.stack.push(nested),
                    None => return Some(element),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).unwrap()
    }

    fn texts<'a>(it: impl Iterator<Item = &'a RawValue>) -> Vec<&'a str> {
        it.map(RawValue::get).collect()
    }

    #[test]
    fn elements_and_leaves_walk_in_place() {
        let a = raw(r#"[ 1, "two" , [3, [4]], {"k": [5]}, null ,true ]"#);
        assert_eq!(
            texts(Elements::of(&a).unwrap()),
            ["1", "\"two\"", "[3, [4]]", "{\"k\": [5]}", "null", "true"]
        );
        assert_eq!(
            texts(Leaves::of(&a)),
            ["1", "\"two\"", "3", "4", "{\"k\": [5]}", "null", "true"]
        );
        assert_eq!(texts(Elements::of(&raw("[]")).unwrap()), Vec::<&str>::new());
        assert_eq!(texts(Leaves::of(&raw("[[], [[]]]"))), Vec::<&str>::new());
        assert_eq!(texts(Leaves::of(&raw("7.5"))), ["7.5"]);
        assert!(Elements::of(&raw("{}")).is_none());
    }

    #[test]
    fn scalars_kinds_and_members() {
        assert_eq!(scalar(&raw("\"x\"")), Some(Value::String("x".into())));
        assert_eq!(scalar(&raw("[1]")), None);
        assert_eq!(kind(&raw("[1]")), "an array");
        assert_eq!(kind(&raw("\"s\"")), "a string");
        assert_eq!(kind(&raw("{}")), "an object");
        let o = raw(r#"{"b": [1, 2], "a": 1}"#);
        let m = members(&o).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].0.as_str(), m[0].1.get()), ("a", "1"));
        assert!(members(&raw("[1]")).is_none());
    }
}
