//! The profile file: a versioned, checksummed, compact encoding of a `DatasetProfile`.
//!
//! ```text
//! offset  size  field
//! 0       8     magic: 89 44 50 46 0D 0A 1A 0A  ("\x89DPF\r\n\x1a\n")
//! 8       2     format version, u16 little-endian (this driftd writes 1)
//! 10      2     flags, u16 little-endian (0; any other value is refused)
//! 12      4     body length in bytes, u32 little-endian
//! 16      4     CRC-32 (IEEE) of the body, u32 little-endian
//! 20      n     body: one CBOR map (RFC 8949), see `Body`
//! ```
//!
//! Sketches inside the body are byte strings in Apache DataSketches' own serialisation (KLL
//! doubles sketch, HLL sketch, frequent-items sketch of strings), so any DataSketches library
//! (Java, C++, Python) can read them. Later driftd versions add keys to the CBOR maps, which
//! older readers ignore, and keep reading every earlier format version; a change that older
//! readers would misread gets a new format version, which they refuse by name.
//!
//! The optional `sample` key (added without a version change: older readers ignore it) holds
//! the hash-sampled rows of `driftd profile --id-column` for the skew join; see `SampleBody`
//! and `profile::sample` for the rule that chose them.

use std::collections::BTreeMap;
use std::io::Read;

use datasketches::frequencies::{ErrorType, FrequentItemsSketch};
use datasketches::hll::HllSketch;
use serde::{Deserialize, Serialize};

use super::dataset::{DatasetProfile, Stage};
use super::feature::{
    BooleanCounts, FeatureProfile, Kind, NonFinite, NumericSummary, QuantileSketch, StringSummary,
    TypeCounts,
};
use super::moments::Moments;
use super::sample::{Sample, SampleParts, SamplePolicy, SampleValue, SampledRow};

pub const MAGIC: [u8; 8] = *b"\x89DPF\r\n\x1a\n";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 20;
/// Larger bodies are refused before they are read: a profile is kilobytes per feature.
pub const MAX_BODY_BYTES: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ProfileFileError {
    #[error("not a driftd profile file (bad magic bytes)")]
    NotAProfile,
    #[error("truncated profile file: {0}")]
    Truncated(String),
    #[error(
        "profile file format version {found} is not supported by this driftd (reads versions 1 to {supported}); upgrade driftd"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("profile file uses unknown flags {0:#06x}")]
    UnknownFlags(u16),
    #[error("profile file body of {0} bytes exceeds the limit of {MAX_BODY_BYTES} bytes")]
    TooLarge(u64),
    #[error(
        "corrupt profile file: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error("corrupt profile file: {0}")]
    Corrupt(String),
    #[error("cannot read profile file: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Serialize, Deserialize)]
struct Body {
    dataset: String,
    stage: Stage,
    rows: u64,
    rejected_rows: u64,
    labels: BTreeMap<String, String>,
    created_by: String,
    features: Vec<FeatureBody>,
    /// Hash-sampled rows for the skew join (`driftd profile --id-column`); absent in files
    /// written without one and in files of earlier driftd versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sample: Option<SampleBody>,
}

#[derive(Serialize, Deserialize)]
struct SampleBody {
    id_column: String,
    rate: f64,
    max_rows: u64,
    max_bytes: u64,
    /// The smallest evicted (hash, id), when the sample was capped.
    bound: Option<(u64, String)>,
    offered: u64,
    without_id: u64,
    features: Vec<String>,
    /// In key order.
    rows: Vec<SampleRowBody>,
}

/// `[id, copies, [[feature index, value], ...]]`.
type SampleRowBody = (String, u32, Vec<(u32, WireValue)>);

/// A sampled value in CBOR: null, a float, a boolean, a text string, or `{}` for a nested or
/// binary value (present, not compared).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireValue {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    Other {},
}

#[derive(Serialize, Deserialize)]
struct FeatureBody {
    name: String,
    nulls: u64,
    types: TypeCounts,
    non_finite: NonFinite,
    declared: Option<Kind>,
    numeric: NumericBody,
    booleans: BooleanCounts,
    strings: StringBody,
    #[serde(with = "serde_bytes")]
    hll: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct NumericBody {
    n: u64,
    mean: f64,
    m2: f64,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(with = "serde_bytes")]
    kll: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StringBody {
    n: u64,
    mean_len: f64,
    m2_len: f64,
    min_len: Option<u64>,
    max_len: Option<u64>,
    #[serde(with = "serde_bytes")]
    items: Vec<u8>,
}

/// Encodes a profile, with its sample if it has one, as a profile file.
pub fn encode(profile: &DatasetProfile) -> Vec<u8> {
    encode_with_sample(profile, None)
}

/// Encodes a profile and sampled rows (`sample`, else the profile's own) as a profile file.
pub fn encode_with_sample(profile: &DatasetProfile, sample: Option<&Sample>) -> Vec<u8> {
    let sample = sample.or(profile.sample.as_ref());
    let body = Body {
        dataset: profile.dataset.clone(),
        stage: profile.stage,
        rows: profile.rows,
        rejected_rows: profile.rejected_rows,
        labels: profile.labels.clone(),
        created_by: concat!("driftd ", env!("CARGO_PKG_VERSION")).to_owned(),
        features: profile
            .features
            .iter()
            .map(|(name, f)| encode_feature(name, f))
            .collect(),
        sample: sample.map(encode_sample),
    };
    let mut cbor = Vec::new();
    ciborium::into_writer(&body, &mut cbor).expect("writing CBOR to memory cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + cbor.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(cbor.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&cbor).to_le_bytes());
    out.extend_from_slice(&cbor);
    out
}

fn encode_feature(name: &str, f: &FeatureProfile) -> FeatureBody {
    let (n, mean, m2) = f.numeric.moments.parts();
    let (sn, smean, sm2) = f.strings.lengths.parts();
    FeatureBody {
        name: name.to_owned(),
        nulls: f.nulls,
        types: f.types,
        non_finite: f.non_finite,
        declared: f.declared,
        numeric: NumericBody {
            n,
            mean,
            m2,
            min: f.numeric.min(),
            max: f.numeric.max(),
            kll: f.numeric.quantiles.serialize(),
        },
        booleans: f.booleans,
        strings: StringBody {
            n: sn,
            mean_len: smean,
            m2_len: sm2,
            min_len: f.strings.min_len(),
            max_len: f.strings.max_len(),
            items: f.strings.items.serialize(),
        },
        hll: f.distinct.serialize(),
    }
}

fn encode_sample(sample: &Sample) -> SampleBody {
    let policy = sample.policy();
    let wire = |v: &SampleValue| match v {
        SampleValue::Null => WireValue::Null,
        SampleValue::Bool(b) => WireValue::Bool(*b),
        SampleValue::Number(x) => WireValue::Number(*x),
        SampleValue::Str(s) => WireValue::Str(s.to_string()),
        SampleValue::Other => WireValue::Other {},
    };
    SampleBody {
        id_column: sample.id_column().to_owned(),
        rate: policy.rate,
        max_rows: policy.max_rows as u64,
        max_bytes: policy.max_bytes as u64,
        bound: sample.bound().map(|(h, id)| (h, id.to_owned())),
        offered: sample.offered(),
        without_id: sample.without_id(),
        features: sample.features().to_vec(),
        rows: sample
            .rows()
            .map(|(_, id, row)| {
                let values = row.values.iter().map(|(i, v)| (*i, wire(v))).collect();
                (id.to_owned(), row.copies, values)
            })
            .collect(),
    }
}

fn decode_sample(body: SampleBody) -> Result<Sample, String> {
    let value = |v: WireValue| match v {
        WireValue::Null => SampleValue::Null,
        WireValue::Bool(b) => SampleValue::Bool(b),
        WireValue::Number(x) => SampleValue::Number(x),
        WireValue::Str(s) => SampleValue::Str(s.into()),
        WireValue::Other {} => SampleValue::Other,
    };
    let size = |n: u64| usize::try_from(n).map_err(|_| format!("{n} is too large"));
    Sample::from_parts(SampleParts {
        id_column: body.id_column,
        policy: SamplePolicy {
            rate: body.rate,
            max_rows: size(body.max_rows)?,
            max_bytes: size(body.max_bytes)?,
        },
        features: body.features,
        rows: body
            .rows
            .into_iter()
            .map(|(id, copies, values)| {
                let values = values.into_iter().map(|(i, v)| (i, value(v))).collect();
                (id, SampledRow { copies, values })
            })
            .collect(),
        bound: body.bound,
        offered: body.offered,
        without_id: body.without_id,
    })
}

/// Reads a profile file, refusing anything truncated, corrupt or of an unknown version.
/// A sample section, if any, is checked and kept in `DatasetProfile::sample`.
pub fn decode(input: impl Read) -> Result<DatasetProfile, ProfileFileError> {
    let (mut profile, sample) = decode_with_sample(input)?;
    profile.sample = sample;
    Ok(profile)
}

/// Reads a profile file and, apart, its sampled rows, if it has them.
pub fn decode_with_sample(
    mut input: impl Read,
) -> Result<(DatasetProfile, Option<Sample>), ProfileFileError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = input.read(&mut header[got..])?;
        if n == 0 {
            let prefix = got.min(MAGIC.len());
            return Err(if got > 0 && header[..prefix] == MAGIC[..prefix] {
                ProfileFileError::Truncated(format!("{got} of {HEADER_LEN} header bytes"))
            } else {
                ProfileFileError::NotAProfile
            });
        }
        got += n;
    }
    if header[..8] != MAGIC {
        return Err(ProfileFileError::NotAProfile);
    }
    let u16_at = |i: usize| u16::from_le_bytes([header[i], header[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let version = u16_at(8);
    if version == 0 || version > FORMAT_VERSION {
        return Err(ProfileFileError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let flags = u16_at(10);
    if flags != 0 {
        return Err(ProfileFileError::UnknownFlags(flags));
    }
    let len = u32_at(12);
    if len > MAX_BODY_BYTES {
        return Err(ProfileFileError::TooLarge(len.into()));
    }
    let stored = u32_at(16);
    // `take` grows the buffer as bytes arrive, so a lying length cannot reserve memory.
    let mut body = Vec::new();
    input.by_ref().take(len.into()).read_to_end(&mut body)?;
    if body.len() < len as usize {
        return Err(ProfileFileError::Truncated(format!(
            "body has {} of {len} bytes",
            body.len()
        )));
    }
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(ProfileFileError::Corrupt(
            "trailing bytes after the body".into(),
        ));
    }
    let computed = crc32fast::hash(&body);
    if computed != stored {
        return Err(ProfileFileError::Checksum { stored, computed });
    }
    let body: Body = ciborium::from_reader(body.as_slice())
        .map_err(|e| ProfileFileError::Corrupt(format!("body: {e}")))?;
    decode_body(body)
}

fn decode_body(mut body: Body) -> Result<(DatasetProfile, Option<Sample>), ProfileFileError> {
    let sample = body
        .sample
        .take()
        .map(decode_sample)
        .transpose()
        .map_err(|why| ProfileFileError::Corrupt(format!("sample: {why}")))?;
    let mut profile = DatasetProfile::new(body.dataset, body.stage);
    profile.rows = body.rows;
    profile.rejected_rows = body.rejected_rows;
    profile.labels = body.labels;
    for fb in body.features {
        let name = fb.name.clone();
        let feature = decode_feature(fb, profile.rows)
            .map_err(|why| ProfileFileError::Corrupt(format!("feature {name:?}: {why}")))?;
        if profile.features.insert(name.clone(), feature).is_some() {
            return Err(ProfileFileError::Corrupt(format!(
                "feature {name:?} appears twice"
            )));
        }
    }
    Ok((profile, sample))
}

/// What an honest frequent-items sketch holds: its counts, and its error bound, within the
/// values it saw. A forged one could overflow a later merge (which adds bounds and counts).
fn check_frequent_items(items: &FrequentItemsSketch<String>) -> Result<(), String> {
    let total = items.total_weight();
    if items.maximum_error() > total {
        return Err("frequent-items sketch error bound exceeds its count".into());
    }
    let counted = items
        .frequent_items_with_threshold(ErrorType::NoFalsePositives, 0)
        .iter()
        .try_fold(0u64, |sum, row| sum.checked_add(row.lower_bound()));
    match counted {
        Some(sum) if sum <= total => Ok(()),
        _ => Err("frequent-items sketch counts exceed its count".into()),
    }
}

fn decode_feature(fb: FeatureBody, rows: u64) -> Result<FeatureProfile, String> {
    let types = fb.types;
    let total = [types.numeric, types.boolean, types.string, types.other]
        .iter()
        .try_fold(0u64, |acc, &x| acc.checked_add(x))
        .ok_or("type counts overflow")?;
    if total.checked_add(fb.nulls) != Some(rows) {
        return Err(format!(
            "{total} values and {} nulls do not add up to {rows} rows",
            fb.nulls
        ));
    }
    let nf = fb.non_finite;
    let non_finite = nf
        .nan
        .checked_add(nf.pos_inf)
        .and_then(|x| x.checked_add(nf.neg_inf))
        .ok_or("non-finite counts overflow")?;
    if fb.numeric.n.checked_add(non_finite) != Some(types.numeric) {
        return Err("numeric counts disagree".into());
    }
    if fb.booleans.true_count.checked_add(fb.booleans.false_count) != Some(types.boolean) {
        return Err("boolean counts disagree".into());
    }
    if fb.strings.n != types.string {
        return Err("string counts disagree".into());
    }

    let quantiles = QuantileSketch::deserialize(&fb.numeric.kll)
        .map_err(|e| format!("quantile sketch: {e}"))?;
    if quantiles.n() != fb.numeric.n {
        return Err("quantile sketch count disagrees".into());
    }
    let moments = Moments::from_parts(fb.numeric.n, fb.numeric.mean, fb.numeric.m2)
        .ok_or("numeric moments are invalid")?;
    let (min, max) = match (fb.numeric.n, fb.numeric.min, fb.numeric.max) {
        (0, None, None) => (f64::INFINITY, f64::NEG_INFINITY),
        (n, Some(lo), Some(hi)) if n > 0 && lo.is_finite() && hi.is_finite() && lo <= hi => {
            (lo, hi)
        }
        _ => return Err("numeric min/max are invalid".into()),
    };

    let items = FrequentItemsSketch::<String>::deserialize(&fb.strings.items)
        .map_err(|e| format!("frequent-items sketch: {e}"))?;
    if items.total_weight() != fb.strings.n {
        return Err("frequent-items sketch count disagrees".into());
    }
    check_frequent_items(&items)?;
    let lengths = Moments::from_parts(fb.strings.n, fb.strings.mean_len, fb.strings.m2_len)
        .ok_or("string length moments are invalid")?;
    let (min_len, max_len) = match (fb.strings.n, fb.strings.min_len, fb.strings.max_len) {
        (0, None, None) => (u64::MAX, 0),
        (n, Some(lo), Some(hi)) if n > 0 && lo <= hi => (lo, hi),
        _ => return Err("string length min/max are invalid".into()),
    };

    let distinct = HllSketch::deserialize(&fb.hll).map_err(|e| format!("distinct sketch: {e}"))?;
    // The sketch library reads some inconsistent list-mode sketches it cannot write back: such
    // a profile, once stored, would make every later read of its window fail.
    HllSketch::deserialize(&distinct.serialize())
        .map_err(|e| format!("distinct sketch is inconsistent: {e}"))?;

    Ok(FeatureProfile {
        nulls: fb.nulls,
        types,
        non_finite: nf,
        numeric: NumericSummary {
            moments,
            min,
            max,
            quantiles,
        },
        booleans: fb.booleans,
        strings: StringSummary {
            items,
            lengths,
            min_len,
            max_len,
        },
        distinct,
        declared: fb.declared,
    })
}

#[cfg(test)]
mod tests {
    use datasketches::frequencies::FrequentItemsSketch;
    use datasketches::hll::{HllSketch, HllType};

    use super::{decode, encode};
    use crate::profile::{DatasetProfile, FeatureProfile, Stage, Value};

    /// A feature profiled with the sketch sizes of earlier releases (an HLL-8 distinct sketch,
    /// a frequent-items map of 2,048), as stored windows and profile files still hold them.
    fn earlier_feature(values: impl Iterator<Item = String>) -> FeatureProfile {
        let mut f = FeatureProfile::default();
        f.strings.items = FrequentItemsSketch::new(2048).expect("a power of two");
        f.distinct = HllSketch::new(14, HllType::Hll8).expect("valid HLL parameters");
        for v in values {
            f.observe(Value::Str(&v));
        }
        f
    }

    fn dataset(f: FeatureProfile) -> DatasetProfile {
        let mut p = DatasetProfile::new("d", Stage::Online);
        p.rows = f.count();
        p.features.insert("s".into(), f);
        p
    }

    #[test]
    fn files_of_earlier_sketch_sizes_read_and_merge_with_todays() {
        // 1,000 distinct strings: exact in the earlier map, past what today's holds exactly.
        let earlier = earlier_feature((0..3000).map(|i| format!("v{}", i % 1000)));
        let decoded = decode(&encode(&dataset(earlier))[..]).expect("an earlier file reads");
        let old = &decoded.features["s"];
        assert_eq!(old.strings().max_error(), 0);
        assert_eq!(old.strings().estimate("v7"), 3);

        let mut today = FeatureProfile::default();
        for i in 0..2000 {
            today.observe(Value::Str(&format!("w{i}")));
        }
        for (mut into, from) in [(old.clone(), &today), (today.clone(), old)] {
            into.merge(from).expect("sizes merge");
            assert_eq!(into.count(), 5000);
            let distinct = into.distinct() as f64;
            assert!(
                (distinct - 3000.0).abs() <= 0.03 * 3000.0,
                "distinct {distinct}"
            );
            let s = into.strings();
            assert!(
                s.estimate("v7").abs_diff(3) <= s.max_error(),
                "v7 within the bound"
            );
            let again = decode(&encode(&dataset(into.clone()))[..]).expect("merged reads");
            assert_eq!(again.features["s"].count(), 5000);
        }
    }
}
