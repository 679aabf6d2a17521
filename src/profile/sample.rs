//! Hash-sampled rows for the training/serving skew join: the same ids are kept offline and
//! online without any coordination, because the id alone decides.
//!
//! The rule, reproducible by any client (Python: `hashlib`):
//!
//! 1. The id's *text* (UTF-8) is hashed with SHA-256; its first 8 bytes, read as a big-endian
//!    unsigned integer, are the id's hash `h` (`int.from_bytes(sha256(id).digest()[:8], "big")`).
//! 2. A row is eligible when `h < rate × 2^64` (exactly; `rate` is a double in (0, 1]).
//! 3. Of the eligible rows, the sample keeps the ids with the smallest `(h, id)` — bottom-k —
//!    up to `max_rows` ids and `max_bytes` of values. Rows are evicted largest key first, and
//!    once a key is evicted no key at or above it is taken again, so a sample is always "every
//!    eligible id below its bound": the same set whatever the order the rows came in, and two
//!    sides of a join keep exactly the same ids below the lower of their two bounds.
//!
//! Pure and synchronous: no I/O, no clock. Memory is bounded by `max_rows` and `max_bytes`.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::value::Value;

/// The record field that carries the id online (the Python client and inference logs set it).
pub const DEFAULT_ID_FIELD: &str = "_id";
/// Ids kept per sample by default: enough to measure a mismatch ratio of 0.5 % to about
/// ±0.1 % (95 %), see docs/skew.md.
pub const DEFAULT_MAX_ROWS: usize = 20_000;
/// Bytes of ids and values kept per sample by default.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Features a sample stores values of; values of further features are not kept.
pub const MAX_SAMPLE_FEATURES: usize = 10_000;
/// Longest id kept; longer ids are counted in `Sample::without_id`.
pub const MAX_ID_BYTES: usize = 1024;

/// The hash that decides whether an id is sampled: the first 8 bytes of SHA-256 of the id's
/// UTF-8 text, big-endian.
pub fn id_hash(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

/// An id value as text: strings as they are, integral numbers (below 2^53) in decimal, other
/// numbers in their shortest round-trip form. Booleans, nulls and nested values are not ids.
pub fn id_text(value: Value<'_>) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::Str(s) => Some(Cow::Borrowed(s)),
        Value::Number(x)
            if x.is_finite() && x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 =>
        {
            Some(Cow::Owned(format!("{}", x as i64)))
        }
        Value::Number(x) if x.is_finite() => Some(Cow::Owned(format!("{x}"))),
        _ => None,
    }
}

/// How rows are sampled. Both sides of a join should use the same rule; when they do not, the
/// join uses the stricter of the two (the lower rate, the lower bound).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplePolicy {
    /// Share of ids eligible, in (0, 1].
    pub rate: f64,
    pub max_rows: usize,
    pub max_bytes: usize,
}

impl Default for SamplePolicy {
    fn default() -> Self {
        SamplePolicy {
            rate: 1.0,
            max_rows: DEFAULT_MAX_ROWS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl SamplePolicy {
    /// Checks the bounds; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate > 0.0 && self.rate <= 1.0) {
            return Err(format!("sample rate must be in (0, 1], got {}", self.rate));
        }
        if self.max_rows == 0 {
            return Err("sample rows must be at least 1".to_owned());
        }
        Ok(())
    }

    /// `h` is eligible when `h < rate_bound()`: `ceil(rate × 2^64)`, exact (rate × 2^64 is a
    /// double, so this is what `h < rate * 2**64` computes in Python).
    pub fn rate_bound(&self) -> u128 {
        rate_bound(self.rate)
    }
}

fn rate_bound(rate: f64) -> u128 {
    if rate >= 1.0 {
        return 1u128 << 64;
    }
    // Scaling by a power of two is exact; the ceiling of a double this size is exact too.
    (rate * 18_446_744_073_709_551_616.0).ceil() as u128
}

/// One value of a sampled row.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Null,
    Number(f64),
    Bool(bool),
    Str(Box<str>),
    /// A nested or binary value: present, but not compared.
    Other,
}

impl SampleValue {
    pub fn from_value(value: Value<'_>) -> SampleValue {
        match value {
            Value::Null => SampleValue::Null,
            Value::Number(x) => SampleValue::Number(x),
            Value::Bool(b) => SampleValue::Bool(b),
            Value::Str(s) => SampleValue::Str(s.into()),
            Value::Other => SampleValue::Other,
        }
    }

    fn bytes(&self) -> usize {
        const SLOT: usize = 24;
        match self {
            SampleValue::Str(s) => SLOT + s.len(),
            _ => SLOT,
        }
    }
}

/// A kept row: its values by feature index (see `Sample::features`), in index order; a feature
/// the record did not carry has no entry (missing, unlike `Null`).
#[derive(Debug, Clone, PartialEq)]
pub struct SampledRow {
    /// Rows seen with this id; more than 1 means the id is duplicated and the join skips it.
    pub copies: u32,
    pub values: Vec<(u32, SampleValue)>,
}

impl SampledRow {
    pub fn get(&self, feature: u32) -> Option<&SampleValue> {
        self.values
            .binary_search_by_key(&feature, |(i, _)| *i)
            .ok()
            .map(|i| &self.values[i].1)
    }

    fn bytes(&self, id: &str) -> usize {
        64 + id.len() + self.values.iter().map(|(_, v)| v.bytes()).sum::<usize>()
    }
}

/// Why two samples cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleMergeError {
    #[error("samples keyed by different id columns ({0:?} and {1:?})")]
    IdColumn(String, String),
}

/// Rows of one dataset side kept by the sampling rule, keyed by `(hash, id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    id_column: String,
    policy: SamplePolicy,
    features: Vec<String>,
    index: HashMap<String, u32>,
    rows: BTreeMap<(u64, Box<str>), SampledRow>,
    /// The smallest key ever evicted: no key at or above it is kept.
    bound: Option<(u64, Box<str>)>,
    bytes: usize,
    /// Rows offered with an id (eligible or not).
    offered: u64,
    /// Rows without a usable id (absent, null, not a string or number, too long).
    without_id: u64,
}

impl Sample {
    pub fn new(id_column: impl Into<String>, policy: SamplePolicy) -> Sample {
        Sample {
            id_column: id_column.into(),
            policy,
            features: Vec::new(),
            index: HashMap::new(),
            rows: BTreeMap::new(),
            bound: None,
            bytes: 0,
            offered: 0,
            without_id: 0,
        }
    }

    pub fn id_column(&self) -> &str {
        &self.id_column
    }
    pub fn policy(&self) -> SamplePolicy {
        self.policy
    }
    /// Feature names; a row's values refer to them by index.
    pub fn features(&self) -> &[String] {
        &self.features
    }
    pub fn feature_index(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Bytes held: the rows' ids and values (what `max_bytes` bounds) and the feature names.
    pub fn memory_estimate(&self) -> usize {
        let names: usize = self.features.iter().map(|n| 2 * n.len() + 48).sum();
        std::mem::size_of::<Self>() + self.bytes + names
    }
    pub fn offered(&self) -> u64 {
        self.offered
    }
    pub fn without_id(&self) -> u64 {
        self.without_id
    }
    /// The smallest evicted `(hash, id)`: `None` while nothing was evicted (every eligible row
    /// is in the sample).
    pub fn bound(&self) -> Option<(u64, &str)> {
        self.bound.as_ref().map(|(h, id)| (*h, &**id))
    }
    /// Kept rows in key order: `(hash, id, row)`.
    pub fn rows(&self) -> impl Iterator<Item = (u64, &str, &SampledRow)> {
        self.rows.iter().map(|((h, id), row)| (*h, &**id, row))
    }
    pub fn row(&self, hash: u64, id: &str) -> Option<&SampledRow> {
        self.rows.get(&(hash, Box::from(id)))
    }

    /// Whether a row with this key would be kept now (before its values are read).
    pub fn admits(&self, hash: u64, id: &str) -> bool {
        (hash as u128) < self.policy.rate_bound()
            && self
                .bound
                .as_ref()
                .is_none_or(|(bh, bid)| (hash, id) < (*bh, &**bid))
    }

    /// Counts a row that has no usable id.
    pub fn offer_without_id(&mut self) {
        self.without_id += 1;
    }

    /// Offers one row: its id's text and its fields. The id column's own value, if among the
    /// fields, is not stored. Values are read only when the row is kept.
    pub fn offer<'v>(&mut self, id: &str, fields: impl IntoIterator<Item = (&'v str, Value<'v>)>) {
        if id.len() > MAX_ID_BYTES {
            self.without_id += 1;
            return;
        }
        self.offered += 1;
        let hash = id_hash(id);
        if !self.admits(hash, id) {
            return;
        }
        let key = (hash, Box::<str>::from(id));
        if let Some(row) = self.rows.get_mut(&key) {
            row.copies = row.copies.saturating_add(1);
            return;
        }
        let mut values = Vec::new();
        for (name, value) in fields {
            if name == self.id_column {
                continue;
            }
            if let Some(i) = self.intern(name) {
                values.push((i, SampleValue::from_value(value)));
            }
        }
        values.sort_by_key(|(i, _)| *i);
        // A field repeated within a record keeps its first value.
        values.dedup_by_key(|(i, _)| *i);
        let row = SampledRow { copies: 1, values };
        self.bytes += row.bytes(id);
        self.rows.insert(key, row);
        self.evict();
    }

    fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        if self.features.len() >= MAX_SAMPLE_FEATURES {
            return None;
        }
        let i = self.features.len() as u32;
        self.features.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        Some(i)
    }

    /// Drops the largest keys until the sample is within its limits, lowering the bound.
    fn evict(&mut self) {
        while self.rows.len() > self.policy.max_rows || self.bytes > self.policy.max_bytes {
            let Some((key, row)) = self.rows.pop_last() else {
                break;
            };
            self.bytes -= row.bytes(&key.1);
            if self.bound.as_ref().is_none_or(|b| key < *b) {
                self.bound = Some(key);
            }
        }
    }

    /// Folds `other` (a sample of other rows under the same id column) into `self`: the result
    /// is the sample of both sets of rows under the stricter of the two policies. Associative
    /// and commutative.
    pub fn merge(&mut self, other: &Sample) -> Result<(), SampleMergeError> {
        if self.id_column != other.id_column {
            return Err(SampleMergeError::IdColumn(
                self.id_column.clone(),
                other.id_column.clone(),
            ));
        }
        self.policy = SamplePolicy {
            rate: self.policy.rate.min(other.policy.rate),
            max_rows: self.policy.max_rows.min(other.policy.max_rows),
            max_bytes: self.policy.max_bytes.min(other.policy.max_bytes),
        };
        if let Some(b) = &other.bound
            && self.bound.as_ref().is_none_or(|mine| b < mine)
        {
            self.bound = Some(b.clone());
        }
        self.offered += other.offered;
        self.without_id += other.without_id;
        for ((hash, id), row) in &other.rows {
            let key = (*hash, id.clone());
            if let Some(mine) = self.rows.get_mut(&key) {
                mine.copies = mine.copies.saturating_add(row.copies);
                continue;
            }
            let mut values = Vec::with_capacity(row.values.len());
            for (i, v) in &row.values {
                if let Some(j) = self.intern(&other.features[*i as usize]) {
                    values.push((j, v.clone()));
                }
            }
            values.sort_by_key(|(i, _)| *i);
            let row = SampledRow {
                copies: row.copies,
                values,
            };
            self.bytes += row.bytes(id);
            self.rows.insert(key, row);
        }
        // Rows of either side at or above the stricter bound or rate are not in the sample of
        // the union: drop them (they set no new bound), then trim to the limits.
        let rate_bound = self.policy.rate_bound();
        let bound = self.bound.clone();
        let outside: Vec<(u64, Box<str>)> = self
            .rows
            .keys()
            .filter(|k| (k.0 as u128) >= rate_bound || bound.as_ref().is_some_and(|b| *k >= b))
            .cloned()
            .collect();
        for key in outside {
            if let Some(row) = self.rows.remove(&key) {
                self.bytes -= row.bytes(&key.1);
            }
        }
        self.evict();
        Ok(())
    }
}

/// The parts of a sample as stored in a profile file.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleParts {
    pub id_column: String,
    pub policy: SamplePolicy,
    pub features: Vec<String>,
    pub rows: Vec<(String, SampledRow)>,
    pub bound: Option<(u64, String)>,
    pub offered: u64,
    pub without_id: u64,
}

impl Sample {
    /// Rebuilds a sample, checking what a reader of a file cannot take on trust: feature
    /// indices in range and in order, no repeated feature or id, every id within the rule.
    pub fn from_parts(parts: SampleParts) -> Result<Sample, String> {
        parts.policy.validate()?;
        let mut sample = Sample::new(parts.id_column, parts.policy);
        for name in parts.features {
            if sample.index.contains_key(&name) {
                return Err(format!("feature {name:?} appears twice"));
            }
            if sample.intern(&name).is_none() {
                return Err(format!("more than {MAX_SAMPLE_FEATURES} features"));
            }
        }
        sample.bound = parts.bound.map(|(h, id)| (h, id.into()));
        sample.offered = parts.offered;
        sample.without_id = parts.without_id;
        for (id, row) in parts.rows {
            let hash = id_hash(&id);
            if !sample.admits(hash, &id) {
                return Err(format!("id {id:?} is outside the sample's rate or bound"));
            }
            if row.copies == 0 {
                return Err(format!("id {id:?}: copies must be at least 1"));
            }
            let n = sample.features.len() as u32;
            if !row.values.windows(2).all(|w| w[0].0 < w[1].0)
                || row.values.last().is_some_and(|(i, _)| *i >= n)
            {
                return Err(format!("id {id:?}: feature indices out of order or range"));
            }
            sample.bytes += row.bytes(&id);
            if sample.rows.insert((hash, id.clone().into()), row).is_some() {
                return Err(format!("id {id:?} appears twice"));
            }
        }
        if sample.rows.len() > sample.policy.max_rows {
            return Err(format!(
                "{} rows exceed the sample's limit of {}",
                sample.rows.len(),
                sample.policy.max_rows
            ));
        }
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_first_eight_bytes_of_sha256() {
        // sha256("") = e3b0c44298fc1c14...; sha256("abc") = ba7816bf8f01cfea...
        assert_eq!(id_hash(""), 0xe3b0_c442_98fc_1c14);
        assert_eq!(id_hash("abc"), 0xba78_16bf_8f01_cfea);
    }

    #[test]
    fn the_rate_bound_is_exact() {
        assert_eq!(rate_bound(1.0), 1u128 << 64);
        assert_eq!(rate_bound(0.5), 1u128 << 63);
        assert_eq!(rate_bound(0.25), 1u128 << 62);
        // 0.1 is not exact in binary: the bound is the ceiling of the double's exact value.
        assert_eq!(rate_bound(0.1), 1_844_674_407_370_955_264);
    }

    #[test]
    fn ids_are_text() {
        assert_eq!(id_text(Value::Number(123.0)).unwrap(), "123");
        assert_eq!(id_text(Value::Number(-7.0)).unwrap(), "-7");
        assert_eq!(id_text(Value::Number(1.5)).unwrap(), "1.5");
        assert_eq!(id_text(Value::Str("00123")).unwrap(), "00123");
        assert!(id_text(Value::Bool(true)).is_none());
        assert!(id_text(Value::Null).is_none());
    }

    #[test]
    fn the_cap_keeps_the_smallest_hashes_and_counts_duplicates() {
        let policy = SamplePolicy {
            max_rows: 10,
            ..SamplePolicy::default()
        };
        let mut s = Sample::new("id", policy);
        let ids: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        for id in &ids {
            s.offer(id, [("id", Value::Str(id)), ("x", Value::Number(1.0))]);
        }
        s.offer("u3", [("x", Value::Number(2.0))]);
        let mut want: Vec<(u64, &str)> = ids.iter().map(|id| (id_hash(id), id.as_str())).collect();
        want.sort();
        let kept: Vec<(u64, &str)> = s.rows().map(|(h, id, _)| (h, id)).collect();
        assert_eq!(kept, want[..10]);
        assert_eq!(s.bound(), Some(want[10]));
        assert_eq!(s.offered(), 101);
        let dup = s
            .rows()
            .find(|(_, id, _)| *id == "u3")
            .map(|(_, _, r)| r.copies);
        // u3 is kept only if it is among the ten smallest; then it was seen twice.
        assert_eq!(
            dup,
            want[..10].iter().any(|(_, id)| *id == "u3").then_some(2)
        );
        // The id column is not stored as a feature.
        assert_eq!(s.features(), ["x"]);
    }
}
