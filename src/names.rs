//! Names that travel into URLs, metric labels, file names and SQL parameters, each checked
//! once where it enters driftd: a [`DatasetName`] and counter names.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest dataset name accepted.
pub const MAX_DATASET_NAME: usize = 128;

/// A dataset's name: 1 to 128 letters, digits, `_ - . :`. Parsed once; holding one means it
/// is valid.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DatasetName(String);

/// Why a text is not a dataset name. The wording is what the CLI and HTTP API print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetNameError {
    #[error("dataset name must be 1 to {MAX_DATASET_NAME} characters, got {0}")]
    Length(usize),
    #[error("dataset name {name:?} contains {found:?}; use letters, digits, '_', '-', '.' or ':'")]
    Character { name: String, found: char },
}

fn dataset_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

impl DatasetName {
    /// The default name of a file's dataset: its file name up to the first dot, with other
    /// characters than letters, digits, `_` and `-` as `_`; "dataset" when nothing is left.
    pub fn from_path(path: &Path) -> DatasetName {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file_name.split('.').next().unwrap_or_default();
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_DATASET_NAME)
            .collect();
        if name.is_empty() {
            DatasetName("dataset".to_owned())
        } else {
            DatasetName(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for DatasetName {
    type Err = DatasetNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.is_empty() || name.len() > MAX_DATASET_NAME {
            return Err(DatasetNameError::Length(name.len()));
        }
        if let Some(found) = name.chars().find(|&c| !dataset_char(c)) {
            return Err(DatasetNameError::Character {
                name: name.to_owned(),
                found,
            });
        }
        Ok(DatasetName(name.to_owned()))
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    /// Refuses what `FromStr` refuses, with the same message.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Quoted like the text it is: `"search"` in messages, never `DatasetName("search")`.
impl fmt::Debug for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for DatasetName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DatasetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for DatasetName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DatasetName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A counter name: what `driftd_counter_total{name}` can carry, `[a-zA-Z_][a-zA-Z0-9_]*`, at
/// most 128 characters.
pub fn valid_counter_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_are_checked_with_the_cli_wording() {
        assert_eq!(
            "search_v2.1:eu".parse::<DatasetName>().unwrap(),
            "search_v2.1:eu"
        );
        assert_eq!(
            "".parse::<DatasetName>().unwrap_err().to_string(),
            "dataset name must be 1 to 128 characters, got 0"
        );
        assert_eq!(
            "x".repeat(129)
                .parse::<DatasetName>()
                .unwrap_err()
                .to_string(),
            "dataset name must be 1 to 128 characters, got 129"
        );
        assert_eq!(
            "a b".parse::<DatasetName>().unwrap_err().to_string(),
            "dataset name \"a b\" contains ' '; use letters, digits, '_', '-', '.' or ':'"
        );
    }

    #[test]
    fn deserializing_refuses_with_the_same_message() {
        let err = serde_json::from_str::<DatasetName>("\"a/b\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("dataset name \"a/b\" contains '/'; use letters"),
            "{err}"
        );
        let ok: DatasetName = serde_json::from_str("\"orders\"").unwrap();
        assert_eq!(ok.as_str(), "orders");
    }

    #[test]
    fn file_names_become_dataset_names() {
        assert_eq!(
            DatasetName::from_path(Path::new("/d/orders.v2.csv")),
            "orders"
        );
        assert_eq!(DatasetName::from_path(Path::new("a b+c.jsonl")), "a_b_c");
        assert_eq!(DatasetName::from_path(Path::new(".hidden")), "dataset");
    }

    #[test]
    fn counter_names() {
        assert!(valid_counter_name("rows_read"));
        assert!(valid_counter_name("_x1"));
        assert!(!valid_counter_name("1x"));
        assert!(!valid_counter_name("a-b"));
        assert!(!valid_counter_name(""));
        assert!(!valid_counter_name(&"a".repeat(129)));
    }
}
