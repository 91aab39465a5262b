//! Data sets: CSV parsing, standardisation, stratified splits and fixed-point encoding.
//!
//! Two data sets are embedded in the crate ([`WDBC_CSV`], [`IRIS_CSV`]; attribution in
//! `smlp/data/README.md`), so tests and examples never read files at run time.

use std::path::Path;

use paillier::FixedPoint;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{fixed_target, float_target, outputs_for_classes};

/// Breast Cancer Wisconsin (Diagnostic): 569 samples, 30 features, label column `malignant`
/// (1 = malignant, 0 = benign). W. H. Wolberg, W. N. Street, O. L. Mangasarian, UCI Machine
/// Learning Repository, 1995 (CC BY 4.0); copy as shipped in scikit-learn 1.9.1.
pub const WDBC_CSV: &str = include_str!("../data/wdbc.csv");

/// Iris: 150 samples, 4 features, label column `species` (0, 1, 2). R. A. Fisher, 1936, UCI
/// Machine Learning Repository (CC BY 4.0); copy as shipped in scikit-learn 1.9.1.
pub const IRIS_CSV: &str = include_str!("../data/iris.csv");

/// Default number of integer bits for encoding standardised features (|x| < 2^20).
pub const DEFAULT_INT_BITS: u32 = 20;

/// What can go wrong reading, transforming or encoding a data set. Line numbers are 1-based lines
/// of the file (the header is line 1).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DataError {
    /// The file has no header row.
    #[error("empty CSV: expected a header row")]
    Empty,
    /// The file has a header but no sample.
    #[error("CSV has a header but no data rows")]
    NoRows,
    /// Rows of features without column names.
    #[error("a data set needs at least one feature")]
    NoFeatureNames,
    /// A row of an array has the wrong number of features (0-based row).
    #[error("row {row}: expected {expected} features, found {found}")]
    RowLength {
        /// 0-based row.
        row: usize,
        /// Number of feature names.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
    /// A feature value is NaN or infinite (0-based row).
    #[error("row {row}, feature `{column}`: not a finite number")]
    NotFinite {
        /// 0-based row.
        row: usize,
        /// Feature name.
        column: String,
    },
    /// A label at or above the number of classes given (0-based row).
    #[error("row {row}: label {label} is not below the {classes} classes given")]
    LabelNotBelow {
        /// 0-based row.
        row: usize,
        /// The label.
        label: usize,
        /// Classes given.
        classes: usize,
    },
    /// Labels and rows differ in number.
    #[error("{rows} rows of features but {labels} labels")]
    LabelCount {
        /// Rows of features.
        rows: usize,
        /// Labels given.
        labels: usize,
    },
    /// The header names only the label column.
    #[error("CSV has no feature column (only the label column `{label}`)")]
    NoFeatures {
        /// Label column name.
        label: String,
    },
    /// Two columns share a name.
    #[error("duplicate column name `{name}` in the header")]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },
    /// The requested label column is not in the header.
    #[error("label column `{name}` not found in the header (columns: {columns})")]
    LabelColumnAbsent {
        /// Requested name.
        name: String,
        /// The header's columns, comma separated.
        columns: String,
    },
    /// A row has a different number of fields than the header.
    #[error("line {line}: expected {expected} fields (as in the header), found {found}")]
    Ragged {
        /// File line.
        line: usize,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// An empty field.
    #[error("line {line}: missing value in column `{column}`")]
    Missing {
        /// File line.
        line: usize,
        /// Column name.
        column: String,
    },
    /// A feature that does not parse as a finite number.
    #[error("line {line}: value `{value}` in column `{column}` is not a finite number")]
    NotNumeric {
        /// File line.
        line: usize,
        /// Column name.
        column: String,
        /// The offending text.
        value: String,
    },
    /// A label that is not a non-negative integer.
    #[error("line {line}: label `{value}` in column `{column}` is not a class index (an integer 0, 1, ..., k-1)")]
    BadLabel {
        /// File line.
        line: usize,
        /// Label column name.
        column: String,
        /// The offending text.
        value: String,
    },
    /// A label at or above the number of classes given for the file.
    #[error("line {line}: label {label} is not below the {classes} classes given (--classes)")]
    LabelTooLarge {
        /// File line.
        line: usize,
        /// The label.
        label: usize,
        /// Classes given.
        classes: usize,
    },
    /// The columns of a file do not match the standardiser's.
    #[error("column {index} is `{found}`, the standardiser was fitted with `{expected}` there (columns must match the training file's features, in order)")]
    ColumnMismatch {
        /// 0-based feature index.
        index: usize,
        /// The standardiser's column name.
        expected: String,
        /// This file's.
        found: String,
    },
    /// Labels are not 0..k−1: some class below the largest label has no sample.
    #[error("labels must be the integers 0..{classes_minus_one}: class {missing} has no sample")]
    MissingClass {
        /// A class index without samples.
        missing: usize,
        /// Largest label seen.
        classes_minus_one: usize,
    },
    /// A sample has the wrong number of features for this standardiser or model.
    #[error("expected {expected} features, found {found}")]
    FeatureCount {
        /// Expected count.
        expected: usize,
        /// Count found.
        found: usize,
    },
    /// A feature does not fit the fixed-point range.
    #[error("sample {row}, feature `{column}`: {source}")]
    Encoding {
        /// 0-based sample index.
        row: usize,
        /// Feature name.
        column: String,
        /// The fixed-point error.
        source: paillier::Error,
    },
    /// A label does not fit the number of outputs, or similar inconsistency.
    #[error("sample {row}: label {label} is not below the number of classes {classes}")]
    LabelRange {
        /// 0-based sample index.
        row: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A test fraction outside [0, 1].
    #[error("test fraction {0} must lie in [0, 1]")]
    BadFraction(f64),
    /// A standardiser file could not be read, written or parsed.
    #[error("standardiser file: {0}")]
    Io(String),
}

/// A labelled data set with real-valued features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Feature column names, in order.
    pub feature_names: Vec<String>,
    /// One row of features per sample.
    pub features: Vec<Vec<f64>>,
    /// Class index of each sample.
    pub labels: Vec<usize>,
    /// Number of classes: largest label + 1, at least 2.
    pub classes: usize,
}

/// Where the labels of a CSV file are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels<'a> {
    /// In the last column.
    Last,
    /// In the column of this name.
    Column(&'a str),
    /// Nowhere: every column is a feature (new samples to classify). The parsed [`Dataset`]
    /// carries placeholder labels 0, which must not be used as targets: encrypt it without
    /// labels.
    Absent,
}

impl Dataset {
    /// Parses a CSV file whose last column holds the labels.
    pub fn from_csv(text: &str) -> Result<Self, DataError> {
        parse_csv(text, Labels::Last, None)
    }

    /// Parses a CSV file with the labels in column `label` (by name).
    pub fn from_csv_with_label(text: &str, label: &str) -> Result<Self, DataError> {
        parse_csv(text, Labels::Column(label), None)
    }

    /// Parses a CSV file with its labels where `labels` says. With `classes`, labels must be
    /// below it and classes may be missing (a small test file); without, labels must be exactly
    /// 0..=max.
    pub fn from_csv_with(
        text: &str,
        labels: Labels<'_>,
        classes: Option<usize>,
    ) -> Result<Self, DataError> {
        parse_csv(text, labels, classes)
    }

    /// Reads and parses a CSV file (labels in `label`, or the last column if `None`).
    pub fn load_csv(path: &Path, label: Option<&str>) -> Result<Self, DataError> {
        let labels = label.map_or(Labels::Last, Labels::Column);
        Self::load_csv_with(path, labels, None)
    }

    /// Reads and parses a CSV file (see [`Dataset::from_csv_with`]).
    pub fn load_csv_with(
        path: &Path,
        labels: Labels<'_>,
        classes: Option<usize>,
    ) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DataError::Io(format!("{}: {e}", path.display())))?;
        parse_csv(&text, labels, classes)
    }

    /// A data set from rows of features (e.g. a numpy array) and, for training data, labels.
    ///
    /// Every row must have one value per name, all finite. Labels and `classes` follow
    /// [`Dataset::from_csv_with`]; without labels (new samples to classify) every label is the
    /// placeholder 0, as with [`Labels::Absent`].
    pub fn from_rows(
        feature_names: Vec<String>,
        features: Vec<Vec<f64>>,
        labels: Option<Vec<usize>>,
        classes: Option<usize>,
    ) -> Result<Self, DataError> {
        if feature_names.is_empty() {
            return Err(DataError::NoFeatureNames);
        }
        for (row, x) in features.iter().enumerate() {
            if x.len() != feature_names.len() {
                return Err(DataError::RowLength {
                    row,
                    expected: feature_names.len(),
                    found: x.len(),
                });
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(DataError::NotFinite {
                    row,
                    column: feature_names[i].clone(),
                });
            }
        }
        let labelled = labels.is_some();
        let labels = match labels {
            Some(l) if l.len() != features.len() => {
                return Err(DataError::LabelCount {
                    rows: features.len(),
                    labels: l.len(),
                })
            }
            Some(l) => {
                if let Some(k) = classes {
                    if let Some(row) = l.iter().position(|&y| y >= k) {
                        return Err(DataError::LabelNotBelow {
                            row,
                            label: l[row],
                            classes: k,
                        });
                    }
                }
                l
            }
            None => vec![0; features.len()],
        };
        finish(feature_names, features, labels, classes, labelled)
    }

    /// The embedded wdbc data set.
    pub fn wdbc() -> Self {
        Dataset::from_csv(WDBC_CSV).expect("embedded wdbc.csv parses")
    }

    /// The embedded iris data set.
    pub fn iris() -> Self {
        Dataset::from_csv(IRIS_CSV).expect("embedded iris.csv parses")
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// No sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of features d.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Number of network outputs: 1 for a binary problem, else the number of classes.
    pub fn outputs(&self) -> usize {
        outputs_for_classes(self.classes)
    }

    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &y in &self.labels {
            counts[y] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order (same names and number of classes).
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            feature_names: self.feature_names.clone(),
            features: indices.iter().map(|&i| self.features[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes,
        }
    }

    /// Real-valued targets for a network with [`Dataset::outputs`] outputs (label, or one-hot).
    pub fn float_targets(&self) -> Vec<Vec<f64>> {
        let k = self.outputs();
        self.labels
            .iter()
            .map(|&y| float_target(y, k).expect("labels are below the number of classes"))
            .collect()
    }
}

fn parse_csv(text: &str, label: Labels<'_>, classes: Option<usize>) -> Result<Dataset, DataError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(DataError::Empty)?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(DataError::DuplicateColumn { name: c.clone() });
        }
    }
    let label_idx = match label {
        Labels::Last => Some(columns.len() - 1),
        Labels::Column(name) => Some(columns.iter().position(|c| c == name).ok_or_else(|| {
            DataError::LabelColumnAbsent {
                name: name.to_string(),
                columns: columns.join(","),
            }
        })?),
        Labels::Absent => None,
    };
    if let Some(l) = label_idx.filter(|_| columns.len() < 2) {
        return Err(DataError::NoFeatures {
            label: columns[l].clone(),
        });
    }
    let feature_names: Vec<String> = columns
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != label_idx)
        .map(|(_, c)| c.clone())
        .collect();

    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(DataError::Ragged {
                line,
                expected: columns.len(),
                found: fields.len(),
            });
        }
        let mut x = Vec::with_capacity(columns.len() - 1);
        for (i, field) in fields.iter().enumerate() {
            if field.is_empty() {
                return Err(DataError::Missing {
                    line,
                    column: columns[i].clone(),
                });
            }
            if Some(i) == label_idx {
                let y = field.parse::<usize>().map_err(|_| DataError::BadLabel {
                    line,
                    column: columns[i].clone(),
                    value: field.to_string(),
                })?;
                labels.push(y);
            } else {
                match field.parse::<f64>() {
                    Ok(v) if v.is_finite() => x.push(v),
                    _ => {
                        return Err(DataError::NotNumeric {
                            line,
                            column: columns[i].clone(),
                            value: field.to_string(),
                        })
                    }
                }
            }
        }
        if label_idx.is_none() {
            labels.push(0); // placeholder of an unlabelled file (Labels::Absent)
        } else if let Some(k) = classes.filter(|&k| labels.last().is_some_and(|&y| y >= k)) {
            return Err(DataError::LabelTooLarge {
                line,
                label: labels[labels.len() - 1],
                classes: k,
            });
        }
        features.push(x);
    }
    finish(
        feature_names,
        features,
        labels,
        classes,
        label_idx.is_some(),
    )
}

/// Checks the labels and counts the classes of a parsed data set (see [`Dataset::from_csv_with`]).
fn finish(
    feature_names: Vec<String>,
    features: Vec<Vec<f64>>,
    labels: Vec<usize>,
    classes: Option<usize>,
    labelled: bool,
) -> Result<Dataset, DataError> {
    if labels.is_empty() {
        return Err(DataError::NoRows);
    }
    let max = *labels.iter().max().expect("non-empty");
    let classes = match classes {
        Some(k) => k.max(2),
        None if !labelled => 2,
        None => {
            let mut seen = vec![false; max + 1];
            for &y in &labels {
                seen[y] = true;
            }
            if let Some(missing) = seen.iter().position(|s| !s) {
                return Err(DataError::MissingClass {
                    missing,
                    classes_minus_one: max,
                });
            }
            (max + 1).max(2)
        }
    };
    Ok(Dataset {
        feature_names,
        features,
        labels,
        classes,
    })
}

/// Per-feature standardisation x ↦ (x − mean) / std, fitted by the data owner on the training
/// split. Population standard deviation; a zero standard deviation is replaced by 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Names of the features it was fitted on, in order (empty in files written before names
    /// were recorded: then only their number is checked).
    #[serde(default)]
    pub feature_names: Vec<String>,
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Population standard deviation of each feature (1 where it was 0).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits mean and standard deviation of every feature of `data` (mean 0, std 1 when empty).
    pub fn fit(data: &Dataset) -> Self {
        let d = data.num_features();
        let n = data.len() as f64;
        let mut mean = vec![0.0; d];
        let mut std = vec![1.0; d];
        let feature_names = data.feature_names.clone();
        if data.is_empty() {
            return Standardizer {
                feature_names,
                mean,
                std,
            };
        }
        for (j, m) in mean.iter_mut().enumerate() {
            *m = data.features.iter().map(|x| x[j]).sum::<f64>() / n;
        }
        for (j, s) in std.iter_mut().enumerate() {
            let var = data
                .features
                .iter()
                .map(|x| (x[j] - mean[j]).powi(2))
                .sum::<f64>()
                / n;
            let sd = var.sqrt();
            *s = if sd > 0.0 && sd.is_finite() { sd } else { 1.0 };
        }
        Standardizer {
            feature_names,
            mean,
            std,
        }
    }

    /// Standardises one sample.
    pub fn transform(&self, x: &[f64]) -> Result<Vec<f64>, DataError> {
        if x.len() != self.mean.len() {
            return Err(DataError::FeatureCount {
                expected: self.mean.len(),
                found: x.len(),
            });
        }
        Ok(x.iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(v, (m, s))| (v - m) / s)
            .collect())
    }

    /// Standardises every sample of `data` (labels and names unchanged). `data`'s feature names
    /// must be those the standardiser was fitted on (where it recorded them).
    pub fn apply(&self, data: &Dataset) -> Result<Dataset, DataError> {
        if !self.feature_names.is_empty() {
            if let Some((index, (expected, found))) = self
                .feature_names
                .iter()
                .zip(&data.feature_names)
                .enumerate()
                .find(|(_, (e, f))| e != f)
            {
                return Err(DataError::ColumnMismatch {
                    index,
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
        }
        let features = data
            .features
            .iter()
            .map(|x| self.transform(x))
            .collect::<Result<Vec<_>, _>>()?;
        if data.is_empty() && data.num_features() != self.mean.len() {
            return Err(DataError::FeatureCount {
                expected: self.mean.len(),
                found: data.num_features(),
            });
        }
        Ok(Dataset {
            features,
            ..data.clone()
        })
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a standardiser serialises")
    }

    /// Parses JSON text (checks that mean and std have the same length and std > 0).
    pub fn from_json(text: &str) -> Result<Self, DataError> {
        let s: Standardizer =
            serde_json::from_str(text).map_err(|e| DataError::Io(e.to_string()))?;
        if s.mean.len() != s.std.len()
            || (!s.feature_names.is_empty() && s.feature_names.len() != s.mean.len())
        {
            return Err(DataError::Io(format!(
                "{} means, {} standard deviations and {} feature names",
                s.mean.len(),
                s.std.len(),
                s.feature_names.len()
            )));
        }
        if s.std.iter().any(|v| !(v.is_finite() && *v > 0.0))
            || s.mean.iter().any(|v| !v.is_finite())
        {
            return Err(DataError::Io(
                "means must be finite and standard deviations finite and positive".into(),
            ));
        }
        Ok(s)
    }

    /// Writes JSON to `path`.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        std::fs::write(path, self.to_json())
            .map_err(|e| DataError::Io(format!("{}: {e}", path.display())))
    }

    /// Reads JSON from `path`.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DataError::Io(format!("{}: {e}", path.display())))?;
        Standardizer::from_json(&text)
    }
}

/// Splits `data` into (train, test), class by class: the indices of class 0, 1, … (in file order)
/// are shuffled in turn with one `ChaCha8Rng::seed_from_u64(seed)`, and the first
/// round(test_fraction · count) of each class go to the test set. Both parts keep the original
/// sample order.
pub fn stratified_split(
    data: &Dataset,
    test_fraction: f64,
    seed: u64,
) -> Result<(Dataset, Dataset), DataError> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(DataError::BadFraction(test_fraction));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in 0..data.classes {
        let mut idx: Vec<usize> = (0..data.len())
            .filter(|&i| data.labels[i] == class)
            .collect();
        idx.shuffle(&mut rng);
        let n_test = (test_fraction * idx.len() as f64).round() as usize;
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((data.subset(&train), data.subset(&test)))
}

/// `n` indices of `data` (all if `n` ≥ len) with the class proportions kept (largest remainders),
/// drawn with `seed`, in the original order.
pub fn stratified_subset(data: &Dataset, n: usize, seed: u64) -> Vec<usize> {
    let len = data.len();
    if n >= len {
        return (0..len).collect();
    }
    let counts = data.class_counts();
    let exact: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 * n as f64 / len as f64)
        .collect();
    let mut take: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = n - take.iter().sum::<usize>();
    let mut by_rem: Vec<usize> = (0..counts.len()).collect();
    by_rem.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for &c in by_rem.iter().cycle() {
        if left == 0 {
            break;
        }
        if take[c] < counts[c] {
            take[c] += 1;
            left -= 1;
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5b5e7);
    let mut chosen = Vec::with_capacity(n);
    for (class, &k) in take.iter().enumerate() {
        let mut idx: Vec<usize> = (0..len).filter(|&i| data.labels[i] == class).collect();
        idx.shuffle(&mut rng);
        chosen.extend_from_slice(&idx[..k]);
    }
    chosen.sort_unstable();
    chosen
}

/// Encodes one sample's features with `fp` (x̂ = round(x·2^f)); `names` label the errors.
pub fn encode_features(
    x: &[f64],
    fp: &FixedPoint,
    row: usize,
    names: &[String],
) -> Result<Vec<i64>, DataError> {
    x.iter()
        .enumerate()
        .map(|(j, &v)| {
            fp.encode(v).map_err(|source| DataError::Encoding {
                row,
                column: names.get(j).cloned().unwrap_or_else(|| format!("#{j}")),
                source,
            })
        })
        .collect()
}

/// A data set in fixed point, ready for the fixed-point reference or for encryption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedDataset {
    /// f: fractional bits of features and targets.
    pub frac_bits: u32,
    /// x̂ = round(x·2^f) per sample.
    pub features: Vec<Vec<i64>>,
    /// Targets at scale 2^f: `[label·2^f]` for a binary problem, one-hot·2^f for k > 2 classes.
    pub targets: Vec<Vec<i64>>,
    /// Class index of each sample.
    pub labels: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

impl EncodedDataset {
    /// Encodes features with `fp` and targets at scale 2^`fp.frac_bits`.
    pub fn encode(data: &Dataset, fp: &FixedPoint) -> Result<Self, DataError> {
        let k = data.outputs();
        let features = data
            .features
            .iter()
            .enumerate()
            .map(|(row, x)| encode_features(x, fp, row, &data.feature_names))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = data
            .labels
            .iter()
            .enumerate()
            .map(|(row, &y)| {
                fixed_target(y, k, fp.frac_bits).map_err(|_| DataError::LabelRange {
                    row,
                    label: y,
                    classes: data.classes,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EncodedDataset {
            frac_bits: fp.frac_bits,
            features,
            targets,
            labels: data.labels.clone(),
            classes: data.classes,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// No sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_the_same_data_set_as_csv_and_bad_rows_are_refused() {
        let csv = "a,b,y\n1.5,-2,1\n0,3.25,0\n4,4,2\n";
        let names = vec!["a".to_string(), "b".to_string()];
        let x = vec![vec![1.5, -2.0], vec![0.0, 3.25], vec![4.0, 4.0]];
        let rows = Dataset::from_rows(names.clone(), x.clone(), Some(vec![1, 0, 2]), None);
        assert_eq!(rows.unwrap(), Dataset::from_csv(csv).unwrap());
        let unlabelled = Dataset::from_rows(names.clone(), x.clone(), None, None).unwrap();
        let absent = Dataset::from_csv_with("a,b\n1.5,-2\n0,3.25\n4,4\n", Labels::Absent, None);
        assert_eq!(unlabelled, absent.unwrap());
        let err = |x, y, k| Dataset::from_rows(names.clone(), x, y, k).unwrap_err();
        assert!(matches!(
            err(vec![vec![1.0]], None, None),
            DataError::RowLength { row: 0, .. }
        ));
        assert!(matches!(
            err(vec![vec![1.0, f64::NAN]], None, None),
            DataError::NotFinite { row: 0, .. }
        ));
        assert!(matches!(
            err(x.clone(), Some(vec![0, 1]), None),
            DataError::LabelCount { .. }
        ));
        assert!(matches!(
            err(x.clone(), Some(vec![0, 2, 0]), None),
            DataError::MissingClass { missing: 1, .. }
        ));
        assert!(matches!(
            err(x, Some(vec![0, 2, 0]), Some(2)),
            DataError::LabelNotBelow { row: 1, .. }
        ));
    }

    fn err(text: &str) -> DataError {
        Dataset::from_csv(text).unwrap_err()
    }

    #[test]
    fn embedded_data_sets_parse() {
        let w = Dataset::wdbc();
        assert_eq!((w.len(), w.num_features(), w.classes), (569, 30, 2));
        assert_eq!(w.class_counts(), vec![357, 212]);
        assert_eq!(w.feature_names[0], "mean_radius");
        assert_eq!(w.features[0][0], 17.99);
        assert_eq!(w.outputs(), 1);
        let i = Dataset::iris();
        assert_eq!((i.len(), i.num_features(), i.classes), (150, 4, 3));
        assert_eq!(i.class_counts(), vec![50, 50, 50]);
        assert_eq!(i.outputs(), 3);
    }

    #[test]
    fn label_column_by_name() {
        let d = Dataset::from_csv_with_label("y,a,b\n1,2,3\n0,5,6\n", "y").unwrap();
        assert_eq!(d.feature_names, vec!["a", "b"]);
        assert_eq!(d.features, vec![vec![2.0, 3.0], vec![5.0, 6.0]]);
        assert_eq!(d.labels, vec![1, 0]);
        let e = Dataset::from_csv_with_label("a,b\n1,0\n", "y").unwrap_err();
        assert!(matches!(e, DataError::LabelColumnAbsent { .. }));
        assert_eq!(
            e.to_string(),
            "label column `y` not found in the header (columns: a,b)"
        );
    }

    #[test]
    fn unlabelled_files_and_given_classes() {
        // New samples: every column is a feature.
        let d = Dataset::from_csv_with("a,b\n1,2\n3,4\n", Labels::Absent, None).unwrap();
        assert_eq!(d.feature_names, vec!["a", "b"]);
        assert_eq!(d.features, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert_eq!((d.len(), d.classes), (2, 2));
        let d = Dataset::from_csv_with("a\n7\n", Labels::Absent, Some(3)).unwrap();
        assert_eq!((d.num_features(), d.classes), (1, 3));
        // A test file without class 1: refused without --classes, accepted with it.
        let text = "a,y\n1,0\n2,2\n";
        assert!(matches!(
            Dataset::from_csv(text).unwrap_err(),
            DataError::MissingClass { missing: 1, .. }
        ));
        let d = Dataset::from_csv_with(text, Labels::Last, Some(3)).unwrap();
        assert_eq!((d.labels.clone(), d.classes), (vec![0, 2], 3));
        // Labels must be below the classes given.
        let e = Dataset::from_csv_with(text, Labels::Last, Some(2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: label 2 is not below the 2 classes given (--classes)"
        );
    }

    #[test]
    fn standardiser_checks_column_names() {
        let train = Dataset::from_csv("a,b,y\n1,2,0\n3,5,1\n").unwrap();
        let s = Standardizer::fit(&train);
        assert_eq!(s.feature_names, vec!["a", "b"]);
        let same = Dataset::from_csv_with("a,b\n1,1\n", Labels::Absent, None).unwrap();
        assert_eq!(
            s.apply(&same).unwrap().features,
            vec![vec![-1.0, -2.5 / 1.5]]
        );
        let swapped = Dataset::from_csv_with("b,a\n1,1\n", Labels::Absent, None).unwrap();
        assert_eq!(
            s.apply(&swapped).unwrap_err().to_string(),
            "column 0 is `b`, the standardiser was fitted with `a` there (columns must match the training file's features, in order)"
        );
        // A scaler file from before names were recorded still loads and applies.
        let old = Standardizer::from_json(r#"{"mean": [2.0, 3.5], "std": [1.0, 1.5]}"#).unwrap();
        assert!(old.feature_names.is_empty());
        assert!(old.apply(&swapped).is_ok());
        assert!(Standardizer::from_json(
            r#"{"feature_names": ["a"], "mean": [2.0, 3.5], "std": [1.0, 1.5]}"#
        )
        .is_err());
    }

    #[test]
    fn single_class_gives_two_classes() {
        let d = Dataset::from_csv("a,y\n1,0\n2,0\n").unwrap();
        assert_eq!(d.classes, 2);
    }

    #[test]
    fn csv_errors_are_specific() {
        assert_eq!(err(""), DataError::Empty);
        assert_eq!(err("\n \n"), DataError::Empty);
        assert_eq!(err("a,b,y\n"), DataError::NoRows);
        assert_eq!(
            err("y\n1\n").to_string(),
            "CSV has no feature column (only the label column `y`)"
        );

        let e = err("a,b,y\n1,2,0\n1,2\n");
        assert_eq!(
            e,
            DataError::Ragged {
                line: 3,
                expected: 3,
                found: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "line 3: expected 3 fields (as in the header), found 2"
        );

        let e = err("a,b,y\n1,,0\n");
        assert_eq!(e.to_string(), "line 2: missing value in column `b`");

        let e = err("a,b,y\n1,2,0\n1,abc,1\n");
        assert_eq!(
            e.to_string(),
            "line 3: value `abc` in column `b` is not a finite number"
        );
        assert!(matches!(
            err("a,y\nNaN,0\n"),
            DataError::NotNumeric { line: 2, .. }
        ));
        assert!(matches!(err("a,y\ninf,0\n"), DataError::NotNumeric { .. }));

        let e = err("a,y\n1,0\n2,1.5\n");
        assert_eq!(
            e.to_string(),
            "line 3: label `1.5` in column `y` is not a class index (an integer 0, 1, ..., k-1)"
        );
        assert!(matches!(err("a,y\n1,-1\n"), DataError::BadLabel { .. }));

        let e = err("a,y\n1,0\n2,2\n");
        assert_eq!(
            e,
            DataError::MissingClass {
                missing: 1,
                classes_minus_one: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "labels must be the integers 0..2: class 1 has no sample"
        );

        assert!(matches!(
            err("a,a,y\n1,2,0\n"),
            DataError::DuplicateColumn { .. }
        ));
    }

    #[test]
    fn crlf_blank_lines_and_spaces_are_accepted() {
        let d = Dataset::from_csv("a, b ,y\r\n 1.5 ,2e-3, 1\r\n\r\n3,4,0\r\n").unwrap();
        assert_eq!(d.feature_names, vec!["a", "b"]);
        assert_eq!(d.features, vec![vec![1.5, 0.002], vec![3.0, 4.0]]);
        assert_eq!(d.labels, vec![1, 0]);
        // Line numbers count blank lines.
        let e = err("a,y\n\n1,0\n,1\n");
        assert_eq!(
            e,
            DataError::Missing {
                line: 4,
                column: "a".into()
            }
        );
    }

    #[test]
    fn standardizer_centres_and_scales() {
        let d = Dataset::wdbc();
        let s = Standardizer::fit(&d);
        let z = s.apply(&d).unwrap();
        let n = z.len() as f64;
        for j in 0..z.num_features() {
            let mean = z.features.iter().map(|x| x[j]).sum::<f64>() / n;
            let var = z
                .features
                .iter()
                .map(|x| (x[j] - mean).powi(2))
                .sum::<f64>()
                / n;
            assert!(mean.abs() < 1e-9, "feature {j}: mean {mean}");
            assert!(
                (var.sqrt() - 1.0).abs() < 1e-9,
                "feature {j}: std {}",
                var.sqrt()
            );
        }
        assert_eq!(z.labels, d.labels);
    }

    #[test]
    fn standardizer_constant_feature_and_json() {
        let d = Dataset::from_csv("a,b,y\n1,5,0\n3,5,1\n").unwrap();
        let s = Standardizer::fit(&d);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![1.0, 1.0]); // population std of {1,3} is 1; constant → 1
        assert_eq!(s.transform(&[3.0, 7.0]).unwrap(), vec![1.0, 2.0]);
        assert!(matches!(
            s.transform(&[1.0]),
            Err(DataError::FeatureCount {
                expected: 2,
                found: 1
            })
        ));
        let back = Standardizer::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert!(Standardizer::from_json("{\"mean\":[0],\"std\":[0]}").is_err());
        assert!(Standardizer::from_json("{\"mean\":[0,1],\"std\":[1]}").is_err());
        assert!(Standardizer::from_json("not json").is_err());

        let dir = std::env::temp_dir().join(format!("smlp-std-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scaler.json");
        s.save(&path).unwrap();
        assert_eq!(Standardizer::load(&path).unwrap(), s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stratified_subset_keeps_proportions_and_size() {
        let d = Dataset::wdbc();
        for n in [1, 7, 40, 100, 568] {
            let idx = stratified_subset(&d, n, 3);
            assert_eq!(idx.len(), n);
            assert!(idx.windows(2).all(|w| w[0] < w[1]));
            let ones = idx.iter().filter(|&&i| d.labels[i] == 1).count() as f64;
            assert!((ones - n as f64 * 212.0 / 569.0).abs() <= 1.0);
        }
        assert_eq!(stratified_subset(&d, 1000, 3).len(), 569);
    }

    #[test]
    fn stratified_split_keeps_proportions() {
        let d = Dataset::wdbc();
        let (train, test) = stratified_split(&d, 0.2, 1).unwrap();
        assert_eq!(train.len() + test.len(), 569);
        // round(0.2·357) = 71, round(0.2·212) = 42
        assert_eq!(test.class_counts(), vec![71, 42]);
        assert_eq!(train.class_counts(), vec![286, 170]);
        // Disjoint and covering: every original row appears exactly once.
        let mut rows: Vec<Vec<u64>> = train
            .features
            .iter()
            .chain(&test.features)
            .map(|x| x.iter().map(|v| v.to_bits()).collect())
            .collect();
        rows.sort();
        let mut all: Vec<Vec<u64>> = d
            .features
            .iter()
            .map(|x| x.iter().map(|v| v.to_bits()).collect())
            .collect();
        all.sort();
        assert_eq!(rows, all);
        // Deterministic per seed, different across seeds.
        assert_eq!(stratified_split(&d, 0.2, 1).unwrap().1, test);
        assert_ne!(stratified_split(&d, 0.2, 2).unwrap().1, test);

        let (tr, te) = stratified_split(&Dataset::iris(), 0.3, 9).unwrap();
        assert_eq!(te.class_counts(), vec![15, 15, 15]);
        assert_eq!(tr.class_counts(), vec![35, 35, 35]);
        assert!(matches!(
            stratified_split(&d, 1.5, 0),
            Err(DataError::BadFraction(_))
        ));
    }

    #[test]
    fn encoding_features_and_targets() {
        let d = Dataset::from_csv("a,b,y\n1.5,-0.25,1\n0,3,0\n").unwrap();
        let fp = FixedPoint::new(16, DEFAULT_INT_BITS).unwrap();
        let e = EncodedDataset::encode(&d, &fp).unwrap();
        assert_eq!(e.features, vec![vec![98304, -16384], vec![0, 196608]]);
        assert_eq!(e.targets, vec![vec![65536], vec![0]]);
        let iris = EncodedDataset::encode(&Dataset::iris(), &fp).unwrap();
        assert_eq!(iris.targets[0], vec![65536, 0, 0]);
        assert_eq!(iris.targets[149], vec![0, 0, 65536]);

        let small = FixedPoint::new(16, 1).unwrap(); // |x| < 2
        let e = EncodedDataset::encode(&d, &small).unwrap_err();
        assert!(matches!(&e, DataError::Encoding { row: 1, column, .. } if column == "b"));
        assert!(e.to_string().starts_with("sample 1, feature `b`:"), "{e}");
    }
}
