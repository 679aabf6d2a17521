//! `inference:` — names for the positional values of inference-logger payloads.

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::Problems;
use crate::rules::model::InferenceNames;
use crate::rules::schema::RawInference;

/// Longest name accepted, as for feature names at ingest.
const MAX_NAME_BYTES: usize = 256;

/// The section, validated: every name non-empty, at most 256 bytes, and used once per list.
/// Problems are reported at the section.
pub(super) fn validate(raw: &Spanned<RawInference>, p: &mut Problems) -> InferenceNames {
    let mut ok = true;
    for (key, names) in [
        ("inputs", &raw.value.inputs),
        ("outputs", &raw.value.outputs),
    ] {
        let mut seen = HashSet::new();
        for (i, name) in names.iter().enumerate() {
            let problem = if name.is_empty() {
                Some("is empty".to_owned())
            } else if name.len() > MAX_NAME_BYTES {
                Some(format!("is longer than {MAX_NAME_BYTES} bytes"))
            } else if !seen.insert(name.as_str()) {
                Some(format!("{name:?} is named twice"))
            } else {
                None
            };
            if let Some(problem) = problem {
                p.at(&raw.referenced, format!("inference: {key}[{i}] {problem}"));
                ok = false;
            }
        }
    }
    if ok {
        InferenceNames {
            inputs: raw.value.inputs.clone(),
            outputs: raw.value.outputs.clone(),
        }
    } else {
        InferenceNames::default()
    }
}
