//! Reading a rule file that the schema refuses, to find every mistake rather than the first.
//!
//! serde stops at the first error, so the file is first read into a tree of located YAML nodes
//! (which any well-formed file is), and the schema is then read out of the tree again and
//! again: each attempt names the innermost node of its first mistake, which the next attempt
//! leaves out, until the rest reads. What is left is validated like any file, so a file's
//! wrong keys, wrong values and out-of-range settings are all reported together.

mod located;
mod mistake;
mod reader;
mod tree;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use serde::Deserialize;
use serde_saphyr::Location;

use super::schema::RawFile;
use reader::{Attempt, Mistake, Reader};
use tree::{Node, Value};

/// Mistakes counted in one file at most; beyond, reading stops.
pub(super) const MAX_COUNTED: usize = 1000;
/// Attempts at reading one file at most. Unknown keys are all found in the first; every other
/// mistake (a wrong value, a missing field) costs one, and an attempt reads the whole file, so
/// this bounds the time a 4 MiB file full of wrong values takes.
pub(super) const MAX_ATTEMPTS: usize = 200;

/// One mistake against the schema.
#[derive(Debug)]
pub(super) struct Found {
    pub(super) at: Location,
    pub(super) message: String,
    /// "did you mean `threshold`?" for a near miss of a known key or value.
    pub(super) hint: Option<String>,
}

/// What reading a refused file found.
#[derive(Debug, Default)]
pub(super) struct Recovered {
    /// The file without its wrong nodes; `None` when the document as a whole cannot be read.
    pub(super) rest: Option<RawFile>,
    /// Mistakes against the schema, in the order they were found.
    pub(super) found: Vec<Found>,
    /// Top-level sections holding a mistake: their values are checked once it is fixed, since
    /// a section read in part can mislead (a `history` checked against a `min_runs` left out).
    pub(super) sections: Vec<String>,
}

/// Every mistake of `text` against the schema, and what remains of it without them.
pub(super) fn read(text: &str) -> Recovered {
    let Ok(root) = serde_saphyr::from_str_with_options::<Node>(text, super::schema::yaml_options())
    else {
        return Recovered::default();
    };
    let excluded = RefCell::new(HashSet::new());
    let (rest, found) = read_all(&root, text, &excluded);
    let sections = sections_with(&root, &excluded.borrow());
    Recovered {
        rest,
        found,
        sections,
    }
}

fn read_all(
    root: &Node,
    text: &str,
    excluded: &RefCell<HashSet<*const Node>>,
) -> (Option<RawFile>, Vec<Found>) {
    let found = RefCell::new(Vec::new());
    let mut rest = None;
    for _ in 0..MAX_ATTEMPTS {
        let attempt = Attempt {
            excluded,
            found: &found,
            source: text,
            blamed: Cell::new(None),
        };
        let reader = Reader {
            node: root,
            attempt: &attempt,
        };
        let mistake = match RawFile::deserialize(reader) {
            Ok(raw) => {
                rest = Some(raw);
                break;
            }
            Err(mistake) => mistake,
        };
        let blamed = attempt.blamed.get().unwrap_or(root);
        if !left_out_before(&mistake, blamed, &excluded.borrow()) {
            found.borrow_mut().push(Found {
                at: place(&mistake, blamed),
                message: mistake.message,
                hint: mistake.hint,
            });
        }
        if std::ptr::eq(blamed, root) || found.borrow().len() >= MAX_COUNTED {
            break;
        }
        excluded.borrow_mut().insert(blamed as *const Node);
    }
    let mut found = found.into_inner();
    found.truncate(MAX_COUNTED);
    (rest, found)
}

/// Where a mistake is shown: its node, or for a missing field the mapping's last key, where
/// serde-saphyr shows it too (so a mistake stands at one place whichever reader found it).
fn place(mistake: &Mistake, blamed: &Node) -> Location {
    match (&mistake.missing, &blamed.value) {
        (Some(_), Value::Map(entries)) => entries.last().map_or(blamed.at, |(key, _)| key.at),
        _ => blamed.at,
    }
}

/// The names of the top-level sections that hold a left-out node.
fn sections_with(root: &Node, excluded: &HashSet<*const Node>) -> Vec<String> {
    let Value::Map(entries) = &root.value else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(key, value)| holds(key, excluded) || holds(value, excluded))
        .filter_map(|(key, _)| match &key.value {
            Value::Text(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn holds(node: &Node, excluded: &HashSet<*const Node>) -> bool {
    excluded.contains(&(node as *const Node))
        || match &node.value {
            Value::Seq(items) => items.iter().any(|n| holds(n, excluded)),
            Value::Map(entries) => entries
                .iter()
                .any(|(k, v)| holds(k, excluded) || holds(v, excluded)),
            _ => false,
        }
}

/// A field reported missing because an earlier attempt left out its wrong value: already told.
fn left_out_before(mistake: &Mistake, blamed: &Node, excluded: &HashSet<*const Node>) -> bool {
    let (Some(field), Value::Map(entries)) = (mistake.missing, &blamed.value) else {
        return false;
    };
    entries.iter().any(|(key, value)| {
        matches!(&key.value, Value::Text(k) if k == field)
            && (excluded.contains(&(key as *const Node))
                || excluded.contains(&(value as *const Node)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(text: &str) -> Vec<(u64, u64, String)> {
        read(text)
            .found
            .into_iter()
            .map(|f| (f.at.line(), f.at.column(), f.message))
            .collect()
    }

    #[test]
    fn every_mistake_against_the_schema_is_found_at_its_node() {
        let found = places(
            "dataset: d\nfeatures:\n  x: {methd: psi}\n  y: {range: [1, 2, 3]}\nalerts:\n  - {name: a, when: drfit}\n  - {name: b}\nparity:\n  ratios:\n    - {ratio: a / b, tolerance: abc}\n",
        );
        let at: Vec<(u64, u64)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(
            at,
            [(3, 7), (4, 14), (6, 21), (7, 6), (10, 33)],
            "{found:?}"
        );
        assert!(found[0].2.starts_with("unknown field `methd`"), "{found:?}");
        assert!(
            found[2].2.starts_with("unknown variant `drfit`"),
            "{found:?}"
        );
        assert_eq!(found[3].2, "missing field `when`");
        assert!(found[4].2.contains("expected f64"), "{found:?}");
    }

    #[test]
    fn what_remains_is_read_with_its_places() {
        let Recovered {
            rest,
            found,
            sections,
        } = read(
            "dataset: d\nfeatures:\n  x: {treshold: 1}\n  y: {threshold: 0.5, allowed_values: [no, 1.50]}\ndrift: {min_count: 5}\n",
        );
        assert_eq!(sections, ["features"]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].hint.as_deref(), Some("did you mean `threshold`?"));
        let rest = rest.expect("the rest of the file reads");
        assert_eq!(rest.dataset.value, "d");
        let y = &rest.features["y"];
        assert_eq!(y.referenced.line(), 4);
        let threshold = y.value.threshold.as_ref().unwrap();
        assert_eq!((threshold.value, threshold.referenced.line()), (0.5, 4));
        assert_eq!(threshold.referenced.column(), 18);
        // Plain scalars where text is expected read as written, as serde-saphyr reads them.
        assert_eq!(
            y.value.allowed_values.as_deref(),
            Some(&["no".to_owned(), "1.50".to_owned()][..])
        );
    }

    #[test]
    fn a_field_left_out_for_its_wrong_value_is_not_missing_again() {
        let found =
            places("dataset: d\nparity:\n  ratios:\n    - {ratio: a / b, tolerance: abc}\n");
        assert_eq!(found.len(), 1, "{found:?}");
        let found = places("dataset: [d]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (1, 10));
    }

    #[test]
    fn unknown_keys_are_found_in_one_reading_and_counting_is_bounded() {
        let mut text = String::from("dataset: d\nfeatures:\n");
        for i in 0..1200 {
            text.push_str(&format!("  f{i}: {{treshold: 1, kind: numeric}}\n"));
        }
        let recovered = read(&text);
        assert_eq!(recovered.found.len(), MAX_COUNTED);
        assert_eq!(recovered.rest.expect("the rest reads").features.len(), 1200);

        let mut text = String::from("dataset: d\nfeatures:\n");
        for i in 0..250 {
            text.push_str(&format!("  f{i}: {{threshold: abc}}\n"));
        }
        let found = read(&text).found;
        assert_eq!(found.len(), MAX_ATTEMPTS, "one wrong value per reading");
        assert_eq!(found[0].at.line(), 3);
        assert_eq!(found[MAX_ATTEMPTS - 1].at.line(), 2 + MAX_ATTEMPTS as u64);
    }

    #[test]
    fn text_that_is_not_yaml_is_left_to_the_reader_error() {
        let recovered = read("dataset: d\nfeatures: {x: [\n");
        assert!(recovered.rest.is_none() && recovered.found.is_empty());
    }
}
