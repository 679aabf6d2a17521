//! The profile of one feature: exact counts and extremes, mergeable moments and three sketches
//! (KLL quantiles, HLL distinct count, frequent items).

use datasketches::frequencies::{ErrorType, FrequentItemsSketch};
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::kll::{KllFloat, KllSketch};
use serde::{Deserialize, Serialize};

use super::Moments;
use super::value::Value;

/// KLL accuracy parameter. k = 400 bounds the single-sided normalised rank error by about
/// 0.68 % with 99 % confidence (DataSketches' bound 2.296 / k^0.9723); k = 200, the library
/// default, only reaches 1.33 %.
pub const KLL_K: u16 = 400;
/// Ranks at which an estimating quantile sketch's CDF is read for comparisons: a 0.2 % step,
/// well inside the sketch's own 0.68 % rank error, at a quarter of the cost of reading every
/// retained value.
pub const CDF_GRID: usize = 512;
/// HLL register count is 2^14: relative standard error about 0.8 %. Sketches stay in sparse
/// (list/set) mode, a few bytes per distinct value, until they hold a few thousand values;
/// then they hold 4-bit registers (HLL-4, 8 KiB), the same estimate as HLL-8 in half the
/// memory (`benches/feature_memory.rs`).
pub const HLL_LG_K: u8 = 14;
/// Frequent-items map size. The map holds 0.75 × 512 = 384 items before its first purge, so
/// every count is exact while a feature has fewer distinct strings than that; beyond, counts
/// carry the sketch's error bound. 512 keeps a high-cardinality string feature's open window
/// near 36 KiB (2,048 took 101 KiB), so a 100-feature window costs a few MiB.
pub const FREQUENT_ITEMS_MAP_SIZE: usize = 512;
/// Distinct strings below which every frequent-value count is exact.
pub const FREQUENT_ITEMS_EXACT: usize = FREQUENT_ITEMS_MAP_SIZE * 3 / 4;
/// Bytes per KLL level beyond its values (the level's `Vec` header), for memory estimates.
const KLL_LEVEL_OVERHEAD: usize = 24;

/// What a feature mostly holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Numeric,
    Boolean,
    String,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Boolean => "boolean",
            Kind::String => "string",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Non-null values by their own type. A feature's kind is the type most of its values have;
/// values of the other types are counted here and profiled by their own type, never dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCounts {
    pub numeric: u64,
    pub boolean: u64,
    pub string: u64,
    /// Values no summary applies to: nested arrays and objects, binary data.
    pub other: u64,
}

impl TypeCounts {
    pub fn total(&self) -> u64 {
        self.numeric + self.boolean + self.string + self.other
    }

    fn merge(&mut self, o: &TypeCounts) {
        self.numeric += o.numeric;
        self.boolean += o.boolean;
        self.string += o.string;
        self.other += o.other;
    }
}

/// Numeric values that are not finite. They count as values but stay out of the moments,
/// extremes and quantiles, which they would otherwise poison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFinite {
    pub nan: u64,
    pub pos_inf: u64,
    pub neg_inf: u64,
}

impl NonFinite {
    pub fn total(&self) -> u64 {
        self.nan + self.pos_inf + self.neg_inf
    }
}

pub(crate) type QuantileSketch = KllSketch<KllFloat<f64>>;

/// Summary of the finite numeric values.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericSummary {
    pub(crate) moments: Moments,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) quantiles: QuantileSketch,
}

impl Default for NumericSummary {
    fn default() -> Self {
        NumericSummary {
            moments: Moments::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            quantiles: KllSketch::new(KLL_K).expect("KLL_K is within the sketch's range"),
        }
    }
}

impl NumericSummary {
    pub fn count(&self) -> u64 {
        self.moments.count()
    }
    pub fn min(&self) -> Option<f64> {
        (self.count() > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<f64> {
        (self.count() > 0).then_some(self.max)
    }
    pub fn mean(&self) -> Option<f64> {
        self.moments.mean()
    }
    pub fn stddev(&self) -> Option<f64> {
        self.moments.sample_stddev()
    }
    pub fn moments(&self) -> &Moments {
        &self.moments
    }

    /// The value at normalised rank `rank` (0..=1), `None` without values.
    pub fn quantile(&self, rank: f64) -> Option<f64> {
        let sketch = &self.quantiles;
        if sketch.is_empty() || !(0.0..=1.0).contains(&rank) {
            return None;
        }
        sketch
            .quantile(rank, datasketches::common::SearchCriteria::Inclusive)
            .ok()
            .flatten()
            .map(|q| q.into_inner())
    }

    /// Normalised rank of `x`: the estimated fraction of values `<= x`.
    pub fn rank(&self, x: f64) -> Option<f64> {
        let item = KllFloat::<f64>::new(x).ok()?;
        self.quantiles
            .rank(&item, datasketches::common::SearchCriteria::Inclusive)
    }

    /// Whether the quantile sketch still holds every value (it does up to `KLL_K` values).
    pub fn is_exact(&self) -> bool {
        self.count() <= u64::from(KLL_K)
    }

    /// The quantile sketch's CDF as (value, fraction of values `<= value`) pairs in increasing
    /// order, plus the exact min and max. An exact sketch gives every value, so the CDF is the
    /// data's; an estimating one is read at `CDF_GRID` evenly spaced ranks, which adds at most
    /// `cdf_grid_error()` to its rank error.
    pub fn cdf_points(&self) -> Vec<(f64, f64)> {
        use datasketches::common::SearchCriteria::Inclusive;
        if self.quantiles.is_empty() {
            return Vec::new();
        }
        let view = self.quantiles.sorted_view();
        // Twice the count when exact: every rank step is then under half a value, so rounding
        // in i / resolution cannot skip one.
        let resolution = if self.is_exact() {
            2 * self.count() as usize
        } else {
            CDF_GRID
        }
        .max(1);
        let mut points: Vec<f64> = (0..=resolution)
            .filter_map(|i| {
                view.quantile(i as f64 / resolution as f64, Inclusive)
                    .ok()
                    .flatten()
                    .map(|q| q.into_inner())
            })
            .chain([self.min, self.max])
            .collect();
        points.sort_by(f64::total_cmp);
        points.dedup();
        points
            .into_iter()
            .filter_map(|x| {
                let item = KllFloat::<f64>::new(x).ok()?;
                Some((x, view.rank(&item, Inclusive)?))
            })
            .collect()
    }

    /// How far `cdf_points` may be from the sketch's own CDF: 0 for an exact sketch.
    pub fn cdf_grid_error(&self) -> f64 {
        if self.is_exact() {
            0.0
        } else {
            1.0 / CDF_GRID as f64
        }
    }

    /// The single-sided normalised rank error the quantile sketch guarantees (99 % confidence).
    pub fn rank_error(&self) -> f64 {
        self.quantiles.normalized_rank_error()
    }

    /// Heap bytes of the quantile sketch: its retained values and their levels.
    fn memory_estimate(&self) -> usize {
        let q = &self.quantiles;
        // Level 0 is allocated to its capacity (k values) as soon as a value arrives.
        let retained = if q.is_empty() {
            0
        } else {
            q.num_retained().max(usize::from(KLL_K))
        };
        retained * std::mem::size_of::<f64>() + KLL_LEVEL_OVERHEAD * 8
    }

    fn push(&mut self, x: f64) {
        self.moments.push(x);
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
        self.quantiles
            .update(KllFloat::<f64>::new(x).expect("finite values only"));
    }

    fn merge(&mut self, o: &NumericSummary) -> Result<(), MergeError> {
        self.quantiles
            .merge(&o.quantiles)
            .map_err(|e| MergeError::Sketch(e.to_string()))?;
        self.moments.merge(&o.moments);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        Ok(())
    }
}

/// Summary of string values: frequent items and lengths in characters (Unicode scalar values).
#[derive(Debug, Clone)]
pub struct StringSummary {
    pub(crate) items: FrequentItemsSketch<String>,
    pub(crate) lengths: Moments,
    pub(crate) min_len: u64,
    pub(crate) max_len: u64,
}

impl Default for StringSummary {
    fn default() -> Self {
        StringSummary {
            items: FrequentItemsSketch::new(FREQUENT_ITEMS_MAP_SIZE)
                .expect("map size is a power of two"),
            lengths: Moments::default(),
            min_len: u64::MAX,
            max_len: 0,
        }
    }
}

impl PartialEq for StringSummary {
    fn eq(&self, other: &Self) -> bool {
        self.lengths == other.lengths
            && self.min_len == other.min_len
            && self.max_len == other.max_len
            && self.items.total_weight() == other.items.total_weight()
            && self.frequent(usize::MAX) == other.frequent(usize::MAX)
    }
}

/// One frequent value with its estimated count and the sketch's error bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrequentValue {
    pub value: String,
    pub count: u64,
    pub lower_bound: u64,
    pub upper_bound: u64,
}

impl StringSummary {
    pub fn count(&self) -> u64 {
        self.lengths.count()
    }

    /// Up to `limit` most frequent strings, most frequent first, ties by value. Only values whose
    /// count is certain to exceed the sketch's error are listed; below `FREQUENT_ITEMS_EXACT`
    /// distinct values every count is exact and every value is listed.
    pub fn frequent(&self, limit: usize) -> Vec<FrequentValue> {
        let mut rows: Vec<FrequentValue> = self
            .items
            .frequent_items_with_threshold(ErrorType::NoFalsePositives, 0)
            .into_iter()
            .map(|r| FrequentValue {
                value: r.item().clone(),
                count: r.estimate(),
                lower_bound: r.lower_bound(),
                upper_bound: r.upper_bound(),
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        rows.truncate(limit);
        rows
    }

    /// Estimated count of one string (exact while the sketch has not purged).
    pub fn estimate(&self, value: &str) -> u64 {
        self.items.estimate(value)
    }

    /// The largest amount by which any count may be underestimated; 0 means all counts are exact.
    pub fn max_error(&self) -> u64 {
        self.items.maximum_error()
    }

    pub fn min_len(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.min_len)
    }
    pub fn max_len(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max_len)
    }
    pub fn lengths(&self) -> &Moments {
        &self.lengths
    }

    /// Heap bytes of the frequent-items map: its slots, and the strings it holds (their mean
    /// length, plus the allocator's rounding).
    fn memory_estimate(&self) -> usize {
        let mean_bytes = self.lengths.mean().unwrap_or(0.0).ceil() as usize;
        let string = (mean_bytes + 15) & !15;
        self.items.estimated_size() + self.items.num_active_items() * string
    }

    fn push(&mut self, s: &str) {
        self.items.update_ref(s);
        let len = if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        } as u64;
        self.lengths.push(len as f64);
        self.min_len = self.min_len.min(len);
        self.max_len = self.max_len.max(len);
    }

    fn merge(&mut self, o: &StringSummary) -> Result<(), MergeError> {
        self.items
            .total_weight()
            .checked_add(o.items.total_weight())
            .ok_or(MergeError::Overflow)?;
        self.items.merge(&o.items);
        self.lengths.merge(&o.lengths);
        self.min_len = self.min_len.min(o.min_len);
        self.max_len = self.max_len.max(o.max_len);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooleanCounts {
    #[serde(rename = "true")]
    pub true_count: u64,
    #[serde(rename = "false")]
    pub false_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("cannot merge profiles of different datasets ({0:?} and {1:?})")]
    Dataset(String, String),
    #[error("cannot merge profiles of different stages ({0} and {1})")]
    Stage(String, String),
    #[error("counts overflow when merged")]
    Overflow,
    #[error("sketches cannot be merged: {0}")]
    Sketch(String),
}

/// The mergeable summary of one feature over some records.
#[derive(Debug, Clone)]
pub struct FeatureProfile {
    pub(crate) nulls: u64,
    pub(crate) types: TypeCounts,
    pub(crate) non_finite: NonFinite,
    pub(crate) numeric: NumericSummary,
    pub(crate) booleans: BooleanCounts,
    pub(crate) strings: StringSummary,
    pub(crate) distinct: HllSketch,
    /// The type the source declared (a Parquet column type), used when no value says more.
    pub(crate) declared: Option<Kind>,
}

impl Default for FeatureProfile {
    fn default() -> Self {
        FeatureProfile {
            nulls: 0,
            types: TypeCounts::default(),
            non_finite: NonFinite::default(),
            numeric: NumericSummary::default(),
            booleans: BooleanCounts::default(),
            strings: StringSummary::default(),
            distinct: new_hll(),
            declared: None,
        }
    }
}

pub(crate) fn new_hll() -> HllSketch {
    HllSketch::new(HLL_LG_K, HllType::Hll4).expect("HLL_LG_K is within the sketch's range")
}

/// Distinct counting hashes a type tag with the value, so `1`, `"1"` and `true` stay distinct.
enum DistinctKey<'a> {
    Number(u64),
    Bool(bool),
    Str(&'a str),
}

/// The bytes `#[derive(Hash)]` would feed the hasher — the variant index as an `isize`, then
/// the value — written in one call for numbers: the sketch's MurmurHash3 is a streaming hash,
/// so the result is identical (profiles stay mergeable with earlier ones) at a third of the
/// cost. `hashes_like_the_derived_impl` pins this.
impl std::hash::Hash for DistinctKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            DistinctKey::Number(bits) => {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&0isize.to_ne_bytes());
                bytes[8..].copy_from_slice(&bits.to_ne_bytes());
                state.write(&bytes);
            }
            DistinctKey::Bool(b) => {
                let mut bytes = [0u8; 9];
                bytes[..8].copy_from_slice(&1isize.to_ne_bytes());
                bytes[8] = u8::from(*b);
                state.write(&bytes);
            }
            DistinctKey::Str(s) => {
                state.write(&2isize.to_ne_bytes());
                s.hash(state);
            }
        }
    }
}

impl FeatureProfile {
    pub fn with_declared(kind: Option<Kind>) -> Self {
        FeatureProfile {
            declared: kind,
            ..Default::default()
        }
    }

    pub fn observe(&mut self, value: Value<'_>) {
        match value {
            Value::Null => self.observe_null(),
            Value::Number(x) => self.observe_number(x),
            Value::Bool(b) => self.observe_bool(b),
            Value::Str(s) => self.observe_str(s),
            Value::Other => self.observe_other(),
        }
    }

    #[inline]
    pub fn observe_null(&mut self) {
        self.nulls += 1;
    }

    #[inline]
    pub fn observe_number(&mut self, x: f64) {
        self.types.numeric += 1;
        if x.is_finite() {
            // -0.0 and 0.0 are one value.
            let canonical = if x == 0.0 { 0.0f64 } else { x };
            self.distinct
                .update(DistinctKey::Number(canonical.to_bits()));
            self.numeric.push(x);
        } else if x.is_nan() {
            self.non_finite.nan += 1;
            self.distinct
                .update(DistinctKey::Number(f64::NAN.to_bits()));
        } else {
            if x > 0.0 {
                self.non_finite.pos_inf += 1;
            } else {
                self.non_finite.neg_inf += 1;
            }
            self.distinct.update(DistinctKey::Number(x.to_bits()));
        }
    }

    #[inline]
    pub fn observe_bool(&mut self, b: bool) {
        self.types.boolean += 1;
        if b {
            self.booleans.true_count += 1;
        } else {
            self.booleans.false_count += 1;
        }
        self.distinct.update(DistinctKey::Bool(b));
    }

    #[inline]
    pub fn observe_str(&mut self, s: &str) {
        self.types.string += 1;
        self.distinct.update(DistinctKey::Str(s));
        self.strings.push(s);
    }

    #[inline]
    pub fn observe_other(&mut self) {
        self.types.other += 1;
    }

    /// Non-null values of any type.
    pub fn count(&self) -> u64 {
        self.types.total()
    }
    pub fn nulls(&self) -> u64 {
        self.nulls
    }
    pub fn types(&self) -> &TypeCounts {
        &self.types
    }
    pub fn non_finite(&self) -> &NonFinite {
        &self.non_finite
    }
    pub fn numeric(&self) -> &NumericSummary {
        &self.numeric
    }
    pub fn booleans(&self) -> &BooleanCounts {
        &self.booleans
    }
    pub fn strings(&self) -> &StringSummary {
        &self.strings
    }
    pub fn declared(&self) -> Option<Kind> {
        self.declared
    }

    /// The kind most values have. Ties go to numeric, then string, then boolean; a feature
    /// without values takes the kind its source declared, else string.
    pub fn kind(&self) -> Kind {
        let t = &self.types;
        if t.numeric + t.boolean + t.string == 0 {
            return self.declared.unwrap_or(Kind::String);
        }
        let candidates = [
            (Kind::Numeric, t.numeric),
            (Kind::String, t.string),
            (Kind::Boolean, t.boolean),
        ];
        candidates
            .iter()
            .copied()
            .reduce(|best, c| if c.1 > best.1 { c } else { best })
            .map(|(k, _)| k)
            .unwrap_or(Kind::String)
    }

    /// Estimated number of distinct non-null values, never more than the number of values.
    pub fn distinct(&self) -> u64 {
        let estimate = self.distinct.estimate().round();
        (estimate.max(0.0) as u64).min(self.count())
    }

    /// (lower, upper) bounds of the distinct count at about 95 % confidence.
    pub fn distinct_bounds(&self) -> (u64, u64) {
        use datasketches::common::NumStdDev;
        let lo = self.distinct.lower_bound(NumStdDev::Two).floor().max(0.0) as u64;
        let hi = self.distinct.upper_bound(NumStdDev::Two).ceil().max(0.0) as u64;
        (lo.min(self.count()), hi.min(self.count()))
    }

    /// Folds `other` into `self`. Associative and commutative: the result equals profiling
    /// both inputs together, within the sketches' error bounds.
    pub fn merge(&mut self, other: &FeatureProfile) -> Result<(), MergeError> {
        let add = |a: u64, b: u64| a.checked_add(b).ok_or(MergeError::Overflow);
        let nulls = add(self.nulls, other.nulls)?;
        add(self.count(), other.count())?;
        add(self.count() + self.nulls, other.count() + other.nulls)?;
        self.numeric.merge(&other.numeric)?;
        self.strings.merge(&other.strings)?;
        self.nulls = nulls;
        self.types.merge(&other.types);
        self.non_finite.nan += other.non_finite.nan;
        self.non_finite.pos_inf += other.non_finite.pos_inf;
        self.non_finite.neg_inf += other.non_finite.neg_inf;
        self.booleans.true_count += other.booleans.true_count;
        self.booleans.false_count += other.booleans.false_count;
        let mut union = HllUnion::new(HLL_LG_K).expect("HLL_LG_K is within the sketch's range");
        union.update(&self.distinct);
        union.update(&other.distinct);
        self.distinct = union.to_sketch(HllType::Hll4);
        self.declared = match (self.declared, other.declared) {
            (a, b) if a == b => a,
            (a, None) => a,
            (None, b) => b,
            // Conflicting declarations: no declaration is better than an arbitrary one.
            _ => None,
        };
        Ok(())
    }

    /// Bytes this profile holds in memory, estimated from the sketches' state: what the
    /// daemon's memory budget (`max_memory`) counts for each feature of an open window.
    /// `benches/feature_memory.rs` compares it with what a counting allocator measures.
    pub fn memory_estimate(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.numeric.memory_estimate()
            + self.strings.memory_estimate()
            + self.distinct.estimated_size()
    }

    /// Adds `n` nulls: rows in which the feature did not appear.
    pub(crate) fn add_nulls(&mut self, n: u64) -> Result<(), MergeError> {
        self.nulls = self.nulls.checked_add(n).ok_or(MergeError::Overflow)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::DistinctKey;
    use datasketches::hll::Coupon;

    #[derive(Hash)]
    enum Derived<'a> {
        Number(u64),
        Bool(bool),
        Str(&'a str),
    }

    #[test]
    fn hashes_like_the_derived_impl() {
        for x in [0.0f64, -1.5, 1e300, f64::NAN, f64::INFINITY] {
            let bits = x.to_bits();
            assert_eq!(
                Coupon::from_value(DistinctKey::Number(bits)),
                Coupon::from_value(Derived::Number(bits))
            );
        }
        for b in [true, false] {
            assert_eq!(
                Coupon::from_value(DistinctKey::Bool(b)),
                Coupon::from_value(Derived::Bool(b))
            );
        }
        for s in ["", "US", "日本🙂", &"x".repeat(100)] {
            assert_eq!(
                Coupon::from_value(DistinctKey::Str(s)),
                Coupon::from_value(Derived::Str(s))
            );
        }
    }
}
