//! Loading rule files from disk — one file or a directory of them, in name order — and
//! resolving what applies to a dataset: built-in defaults, then files for "*", then files
//! naming the dataset, a later file winning setting by setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RuleError;
use super::model::{AlertSpec, DatasetRules, InferenceNames};
use super::validate::{self, RuleFile};

/// All rule files of a directory (or one file).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    files: Vec<RuleFile>,
}

/// Largest rule file read: rules are configuration, not data.
pub const MAX_RULE_FILE_BYTES: u64 = 4 << 20;

impl RuleSet {
    /// Loads `path` (a `.yaml`/`.yml` file, or a directory of them, in name order). Returns
    /// every problem found, not just the first.
    pub fn load(path: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let at_file = |file: &Path, message: String| RuleError {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message,
        };
        let files: Vec<PathBuf> = if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| vec![at_file(path, format!("cannot read directory: {e}"))])?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_owned()]
        };
        let mut errors = Vec::new();
        let mut set = RuleSet::default();
        for file in files {
            let text = match std::fs::metadata(&file) {
                Ok(m) if m.len() > MAX_RULE_FILE_BYTES => {
                    errors.push(at_file(
                        &file,
                        format!("larger than {MAX_RULE_FILE_BYTES} bytes"),
                    ));
                    continue;
                }
                Ok(_) => match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(at_file(&file, format!("cannot read: {e}")));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(at_file(&file, format!("cannot read: {e}")));
                    continue;
                }
            };
            match validate::parse(&file, &text) {
                Ok(parsed) => set.files.push(parsed),
                Err(mut problems) => errors.append(&mut problems),
            }
        }
        errors.extend(set.conflicts());
        // Files are read in name order, so this is the order of the files, then of the lines.
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Parses rules from text (for tests and embedded defaults).
    pub fn from_str(file: &Path, text: &str) -> Result<RuleSet, Vec<RuleError>> {
        let set = RuleSet {
            files: vec![validate::parse(file, text)?],
        };
        Ok(set)
    }

    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Names of datasets with rules of their own ("*" included when present).
    pub fn datasets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.files.iter().map(|f| f.dataset.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Every alert rule of every file.
    pub fn alerts(&self) -> Vec<AlertSpec> {
        self.files
            .iter()
            .flat_map(|f| f.alerts.iter().cloned())
            .collect()
    }

    /// The record field the dataset's rows are sampled by for the skew join, if a rule file
    /// names one (`skew: id:`; the last file naming it wins, as in `for_dataset`).
    pub fn skew_id(&self, dataset: &str) -> Option<String> {
        let wildcard = self.files.iter().filter(|f| f.dataset == "*");
        let named = self.files.iter().filter(|f| f.dataset == dataset);
        wildcard
            .chain(named)
            .rev()
            .find_map(|f| f.skew.as_ref().and_then(|s| s.id.clone()))
    }

    /// The rules for `dataset`: defaults, then files for "*", then files naming it.
    /// The dataset's `inference:` names alone (the last file naming them wins, as in
    /// `for_dataset`), without resolving the rest: what each inference-log request needs.
    pub fn inference_names(&self, dataset: &str) -> InferenceNames {
        let wildcard = self.files.iter().filter(|f| f.dataset == "*");
        let named = self.files.iter().filter(|f| f.dataset == dataset);
        wildcard
            .chain(named)
            .rev()
            .find_map(|f| f.inference.clone())
            .unwrap_or_default()
    }

    pub fn for_dataset(&self, dataset: &str) -> DatasetRules {
        let mut rules = DatasetRules::default();
        let wildcard = self.files.iter().filter(|f| f.dataset == "*");
        let named = self.files.iter().filter(|f| f.dataset == dataset);
        for file in wildcard.chain(named) {
            if let Some(p) = file.numeric {
                rules.numeric = p;
            }
            if let Some(p) = file.categorical {
                rules.categorical = p;
            }
            if let Some(n) = file.min_count {
                rules.min_count = n;
            }
            if let Some(x) = file.null_ratio_increase {
                rules.null_ratio_increase = x;
            }
            if let Some(x) = file.out_of_range_share {
                rules.out_of_range_share = x;
            }
            if let Some(x) = file.new_category_share {
                rules.new_category_share = x;
            }
            for (name, (rule, _)) in &file.features {
                rules.features.insert(name.clone(), rule.clone());
            }
            if let Some(a) = &file.anomaly {
                let r = &mut rules.anomaly;
                r.policy.min_runs = a.min_runs.unwrap_or(r.policy.min_runs);
                r.history = a.history.unwrap_or(r.history);
                r.policy.threshold = a.threshold.unwrap_or(r.policy.threshold);
                r.policy.seasonality = a.seasonality.unwrap_or(r.policy.seasonality);
                r.policy.min_change = a.min_change.unwrap_or(r.policy.min_change);
                r.policy.min_relative_change = a
                    .min_relative_change
                    .unwrap_or(r.policy.min_relative_change);
                for (name, rule) in &a.counters {
                    r.counters.insert(name.clone(), rule.clone());
                }
            }
            if let Some(s) = &file.skew {
                rules.skew.overlay(s);
            }
            if let Some(names) = &file.inference {
                rules.inference = names.clone();
            }
            if let Some(p) = &file.parity {
                rules.parity.ratios.extend(p.ratios.iter().cloned());
                if p.null_ratio_tolerance.is_some() {
                    rules.parity.null_ratio_tolerance = p.null_ratio_tolerance;
                }
            }
        }
        rules
    }

    /// A feature configured twice for the same dataset is an error: which would win is not
    /// something a reader of the files should have to work out.
    fn conflicts(&self) -> Vec<RuleError> {
        let mut seen: BTreeMap<(&str, &str), (&Path, u64)> = BTreeMap::new();
        let mut errors = Vec::new();
        for file in &self.files {
            for (name, (_, line)) in &file.features {
                let key = (file.dataset.as_str(), name.as_str());
                if let Some((other, other_line)) = seen.get(&key) {
                    errors.push(RuleError {
                        file: file.path.clone(),
                        line: *line,
                        column: 1,
                        message: format!(
                            "feature {name:?} of dataset {:?} is already configured at {}:{other_line}",
                            file.dataset,
                            other.display()
                        ),
                    });
                } else {
                    seen.insert(key, (&file.path, *line));
                }
            }
        }
        errors
    }
}
