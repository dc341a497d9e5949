//! Preprocessors (Ray's `ray.data.preprocessors`, scikit-learn's
//! transformers): fitted on a [`Dataset`] by one distributed pass — every
//! block summarised in a task, the summaries merged in the driver — then
//! applied lazily to datasets ([`Preprocessor::transform`]) or to single
//! batches ([`Preprocessor::transform_batch`]). A preprocessor is a serde
//! value: save it in a checkpoint beside the model
//! (`checkpoint.insert_value("preprocessor", &p)`) so that prediction
//! applies exactly the statistics training used.
//!
//! Outputs follow scikit-learn's on the same data (checked by the tests
//! against values scikit-learn computed): numeric outputs are `Float64`,
//! `StandardScaler` divides by the population standard deviation, a column
//! whose scale is zero is left unscaled, categories are sorted (numbers
//! numerically, text lexicographically), `OneHotEncoder` writes one column
//! `{column}_{category}` per category, `LabelEncoder` writes `Int64` codes.
//! Missing values are Arrow nulls and, in float columns, NaN.

use crate::invalid;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use wray_data::{Batch, Dataset};
use wray_guest_core::Error;

/// Categories one column may have when fitting an encoder or the
/// most-frequent imputer (each is counted in every block's summary).
pub const MAX_CATEGORIES: usize = 10_000;

/// Values one column may have when fitting `RobustScaler` or the median
/// imputer: their quantiles are exact (as scikit-learn's), so every value
/// reaches the driver — 8 bytes each.
pub const MAX_QUANTILE_VALUES: usize = 16 << 20;

/// A value of a categorical column.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Category {
    /// From a numeric column.
    Number(f64),
    /// From a text column.
    Text(String),
}

impl PartialEq for Category {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Category {}
impl PartialOrd for Category {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Category {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Category::Number(a), Category::Number(b)) => a.total_cmp(b),
            (Category::Text(a), Category::Text(b)) => a.cmp(b),
            (Category::Number(_), Category::Text(_)) => Ordering::Less,
            (Category::Text(_), Category::Number(_)) => Ordering::Greater,
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Category::Number(x) => write!(f, "{x}"),
            Category::Text(s) => f.write_str(s),
        }
    }
}

/// How `SimpleImputer` fills missing values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Strategy {
    /// The column's mean (numeric columns).
    Mean,
    /// The column's median (numeric columns; exact, as NumPy's).
    Median,
    /// The most frequent value (the smallest of the most frequent on ties,
    /// as scikit-learn).
    MostFrequent,
    /// A constant.
    Constant(Category),
}

/// Which norm `Normalizer` scales each row's columns to one of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Norm {
    /// Euclidean.
    L2,
    /// Sum of absolute values.
    L1,
    /// Largest absolute value.
    Max,
}

/// Per column: what a fitted preprocessor learned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Fitted {
    mean: f64,
    /// Population standard deviation.
    std: f64,
    min: f64,
    max: f64,
    categories: Vec<Category>,
    /// For the imputer.
    fill: Option<Category>,
    /// RobustScaler's center (the median) and scale (the quantile range).
    center: f64,
    scale: f64,
}

/// A preprocessor: what it does, to which columns, and — once fitted — the
/// statistics it learned. Build one with the functions named as Ray's
/// classes ([`Preprocessor::standard_scaler`], ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    kind: Kind,
    columns: Vec<String>,
    fitted: Option<Vec<Fitted>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    StandardScaler,
    MinMaxScaler,
    MaxAbsScaler,
    Normalizer(Norm),
    OrdinalEncoder,
    OneHotEncoder,
    LabelEncoder,
    SimpleImputer(Strategy),
    /// Quantile range, e.g. (0.25, 0.75).
    RobustScaler(f64, f64),
    /// The output column.
    Concatenator(String),
    Chain(Vec<Preprocessor>),
}

fn names(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

impl Preprocessor {
    fn new(kind: Kind, columns: &[&str]) -> Preprocessor {
        Preprocessor { kind, columns: names(columns), fitted: None }
    }

    /// `(x - mean) / std` per column (population std; 1 where it is 0).
    pub fn standard_scaler(columns: &[&str]) -> Preprocessor {
        Preprocessor::new(Kind::StandardScaler, columns)
    }

    /// `(x - min) / (max - min)` per column (1 where the range is 0).
    pub fn min_max_scaler(columns: &[&str]) -> Preprocessor {
        Preprocessor::new(Kind::MinMaxScaler, columns)
    }

    /// `x / max|x|` per column (1 where it is 0).
    pub fn max_abs_scaler(columns: &[&str]) -> Preprocessor {
        Preprocessor::new(Kind::MaxAbsScaler, columns)
    }

    /// `(x - median) / (q75 - q25)` per column (1 where the range is 0):
    /// scaling that outliers barely move. Quantiles are exact, as
    /// scikit-learn's (every value reaches the driver; at most
    /// [`MAX_QUANTILE_VALUES`] per column).
    pub fn robust_scaler(columns: &[&str]) -> Preprocessor {
        Preprocessor::robust_scaler_with(columns, (0.25, 0.75))
    }

    /// [`robust_scaler`](Preprocessor::robust_scaler) with another quantile
    /// range (`(0.1, 0.9)`: the 10th to the 90th percentile).
    pub fn robust_scaler_with(columns: &[&str], quantile_range: (f64, f64)) -> Preprocessor {
        Preprocessor::new(Kind::RobustScaler(quantile_range.0, quantile_range.1), columns)
    }

    /// `columns` joined into one column `output` of feature vectors (an
    /// Arrow fixed-size list of `Float64`), which replace them — Ray's
    /// `Concatenator`. `batch.tensor(&[output])` reads it as a matrix.
    /// Needs no fitting.
    pub fn concatenator(columns: &[&str], output: &str) -> Preprocessor {
        Preprocessor { kind: Kind::Concatenator(output.to_string()), columns: names(columns), fitted: Some(Vec::new()) }
    }

    /// Scales each row's `columns` to unit `norm` (rows of zeros stay
    /// zeros). Needs no fitting.
    pub fn normalizer(columns: &[&str], norm: Norm) -> Preprocessor {
        Preprocessor { kind: Kind::Normalizer(norm), columns: names(columns), fitted: Some(Vec::new()) }
    }

    /// Each column's values replaced by their index among its sorted
    /// categories (`Float64`). A value not seen when fitting is an error.
    pub fn ordinal_encoder(columns: &[&str]) -> Preprocessor {
        Preprocessor::new(Kind::OrdinalEncoder, columns)
    }

    /// Each column replaced by one 0/1 column `{column}_{category}` per
    /// category, in sorted order. A value not seen when fitting is an error.
    pub fn one_hot_encoder(columns: &[&str]) -> Preprocessor {
        Preprocessor::new(Kind::OneHotEncoder, columns)
    }

    /// The label column's values replaced by their index among its sorted
    /// classes (`Int64`).
    pub fn label_encoder(label_column: &str) -> Preprocessor {
        Preprocessor::new(Kind::LabelEncoder, &[label_column])
    }

    /// Missing values (nulls, NaN) of `columns` filled by `strategy`.
    pub fn simple_imputer(columns: &[&str], strategy: Strategy) -> Preprocessor {
        Preprocessor::new(Kind::SimpleImputer(strategy), columns)
    }

    /// `steps` one after the other: each is fitted on the output of the
    /// ones before it.
    pub fn chain(steps: Vec<Preprocessor>) -> Preprocessor {
        Preprocessor { kind: Kind::Chain(steps), columns: Vec::new(), fitted: None }
    }

    /// Whether it has been fitted (or needs no fitting).
    pub fn is_fitted(&self) -> bool {
        match &self.kind {
            Kind::Chain(steps) => steps.iter().all(Preprocessor::is_fitted),
            _ => self.fitted.is_some(),
        }
    }

    /// The categories an encoder learned for `column`.
    pub fn categories(&self, column: &str) -> Option<&[Category]> {
        let i = self.columns.iter().position(|c| c == column)?;
        Some(&self.fitted.as_ref()?.get(i)?.categories)
    }

    /// Learns the statistics from `dataset`: one task per block summarises
    /// the columns, the driver merges the summaries. Returns `self`.
    pub fn fit(&mut self, dataset: &Dataset) -> Result<&mut Preprocessor, Error> {
        if let Kind::Chain(steps) = &mut self.kind {
            let mut ds = dataset.clone();
            for step in steps.iter_mut() {
                step.fit(&ds)?;
                ds = step.transform(&ds);
            }
            return Ok(self);
        }
        if matches!(self.kind, Kind::Normalizer(_) | Kind::Concatenator(_)) {
            return Ok(self);
        }
        if let Kind::RobustScaler(lo, hi) = self.kind
            && !((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && lo < hi)
        {
            return Err(invalid(format!(
                "RobustScaler: the quantile range must be 0 <= low < high <= 1, got ({lo}, {hi})"
            )));
        }
        let categories = matches!(
            self.kind,
            Kind::OrdinalEncoder
                | Kind::OneHotEncoder
                | Kind::LabelEncoder
                | Kind::SimpleImputer(Strategy::MostFrequent)
        );
        let values = matches!(self.kind, Kind::RobustScaler(..) | Kind::SimpleImputer(Strategy::Median));
        let request = SummaryRequest { columns: self.columns.clone(), categories, values };
        let parts = dataset.map_batches_with(request, summarize, None).take_all_batches()?;
        let mut total: Vec<Summary> = vec![Summary::default(); self.columns.len()];
        for part in parts {
            let bytes =
                part.array(SUMMARY)?.as_binary::<i32>().iter().flatten().map(<[u8]>::to_vec).collect::<Vec<_>>();
            for b in bytes {
                let summaries: Vec<Summary> =
                    wray_codec::decode(&b).map_err(|e| invalid(format!("preprocessor: a block summary: {e}")))?;
                for (t, s) in total.iter_mut().zip(summaries) {
                    t.merge(s);
                    if t.counts.len() > MAX_CATEGORIES {
                        return Err(invalid(format!(
                            "preprocessor: a column has more than {MAX_CATEGORIES} categories"
                        )));
                    }
                    if t.values.len() > MAX_QUANTILE_VALUES {
                        return Err(invalid(format!(
                            "{}: a column has more than {MAX_QUANTILE_VALUES} values; its exact quantiles need \
                             them all in the driver",
                            self.name()
                        )));
                    }
                }
            }
        }
        let fitted = self
            .columns
            .iter()
            .zip(total)
            .map(|(column, s)| self.learn(column, s))
            .collect::<Result<Vec<Fitted>, Error>>()?;
        self.fitted = Some(fitted);
        Ok(self)
    }

    fn learn(&self, column: &str, mut s: Summary) -> Result<Fitted, Error> {
        s.values.sort_by(f64::total_cmp);
        let (mut center, mut scale) = (0.0, 1.0);
        if let Kind::RobustScaler(lo, hi) = self.kind {
            center = quantile(&s.values, 0.5);
            let range = quantile(&s.values, hi) - quantile(&s.values, lo);
            scale = if range == 0.0 { 1.0 } else { range };
        }
        let mean = if s.n > 0 { s.mean } else { f64::NAN };
        let std = if s.n > 0 { (s.m2 / s.n as f64).sqrt() } else { f64::NAN };
        let categories: Vec<Category> = s.counts.keys().cloned().collect();
        let fill = match &self.kind {
            Kind::SimpleImputer(Strategy::Mean) => {
                if s.text {
                    return Err(invalid(format!("SimpleImputer: the mean of text column '{column}'")));
                }
                Some(Category::Number(mean))
            }
            Kind::SimpleImputer(Strategy::MostFrequent) => {
                let most = s.counts.values().copied().max().unwrap_or(0);
                s.counts.iter().find(|(_, n)| **n == most).map(|(c, _)| c.clone())
            }
            Kind::SimpleImputer(Strategy::Median) => {
                if s.text {
                    return Err(invalid(format!("SimpleImputer: the median of text column '{column}'")));
                }
                Some(Category::Number(quantile(&s.values, 0.5)))
            }
            Kind::SimpleImputer(Strategy::Constant(c)) => Some(c.clone()),
            _ => None,
        };
        if matches!(self.kind, Kind::StandardScaler | Kind::MinMaxScaler | Kind::MaxAbsScaler | Kind::RobustScaler(..))
            && s.text
        {
            return Err(invalid(format!("{:?}: column '{column}' is text, not numbers", self.kind)));
        }
        Ok(Fitted { mean, std, min: s.min, max: s.max, categories, fill, center, scale })
    }

    /// Applies the preprocessor to `dataset`, lazily (a `map_batches`
    /// stage, fused with its neighbours).
    pub fn transform(&self, dataset: &Dataset) -> Dataset {
        dataset.map_batches_with(self.clone(), |p: &Preprocessor, b: Batch| p.transform_batch(b), None)
    }

    /// [`fit`](Preprocessor::fit), then [`transform`](Preprocessor::transform).
    pub fn fit_transform(&mut self, dataset: &Dataset) -> Result<Dataset, Error> {
        self.fit(dataset)?;
        Ok(self.transform(dataset))
    }

    /// Applies the preprocessor to one batch. Fails if it was not fitted.
    pub fn transform_batch(&self, batch: Batch) -> Result<Batch, Error> {
        if let Kind::Chain(steps) = &self.kind {
            return steps.iter().try_fold(batch, |b, step| step.transform_batch(b));
        }
        let fitted = self.fitted.as_ref().ok_or_else(|| invalid(format!("{}: transform before fit", self.name())))?;
        let mut rb = batch.into_record_batch();
        if let Kind::Normalizer(norm) = self.kind {
            let cols = self.columns.iter().map(|c| numbers(&rb, c)).collect::<Result<Vec<_>, _>>()?;
            let rows = rb.num_rows();
            let scale: Vec<f64> = (0..rows)
                .map(|r| {
                    let v = cols.iter().map(|c| c[r].abs());
                    let n = match norm {
                        Norm::L2 => v.map(|x| x * x).sum::<f64>().sqrt(),
                        Norm::L1 => v.sum(),
                        Norm::Max => v.fold(0.0, f64::max),
                    };
                    if n == 0.0 { 1.0 } else { n }
                })
                .collect();
            for (c, values) in self.columns.iter().zip(cols) {
                let out: Vec<f64> = values.iter().zip(&scale).map(|(x, s)| x / s).collect();
                rb = replace(rb, c, Arc::new(Float64Array::from(out)))?;
            }
            return Ok(Batch::new(rb));
        }
        if let Kind::Concatenator(output) = &self.kind {
            return concatenate(rb, &self.columns, output).map(Batch::new);
        }
        for (c, f) in self.columns.iter().zip(fitted) {
            rb = match &self.kind {
                Kind::StandardScaler => {
                    let scale = if f.std == 0.0 { 1.0 } else { f.std };
                    let out: Vec<f64> = numbers(&rb, c)?.iter().map(|x| (x - f.mean) / scale).collect();
                    replace(rb, c, Arc::new(Float64Array::from(out)))?
                }
                Kind::MinMaxScaler => {
                    let range = if f.max - f.min == 0.0 { 1.0 } else { f.max - f.min };
                    let out: Vec<f64> = numbers(&rb, c)?.iter().map(|x| (x - f.min) / range).collect();
                    replace(rb, c, Arc::new(Float64Array::from(out)))?
                }
                Kind::RobustScaler(..) => {
                    let out: Vec<f64> = numbers(&rb, c)?.iter().map(|x| (x - f.center) / f.scale).collect();
                    replace(rb, c, Arc::new(Float64Array::from(out)))?
                }
                Kind::MaxAbsScaler => {
                    let m = f.max.abs().max(f.min.abs());
                    let m = if m == 0.0 { 1.0 } else { m };
                    let out: Vec<f64> = numbers(&rb, c)?.iter().map(|x| x / m).collect();
                    replace(rb, c, Arc::new(Float64Array::from(out)))?
                }
                Kind::OrdinalEncoder => {
                    let codes = codes(&rb, c, &f.categories, self.name())?;
                    let out: Vec<f64> = codes.iter().map(|&i| i as f64).collect();
                    replace(rb, c, Arc::new(Float64Array::from(out)))?
                }
                Kind::LabelEncoder => {
                    let codes = codes(&rb, c, &f.categories, self.name())?;
                    let out: Vec<i64> = codes.iter().map(|&i| i as i64).collect();
                    replace(rb, c, Arc::new(Int64Array::from(out)))?
                }
                Kind::OneHotEncoder => {
                    let codes = codes(&rb, c, &f.categories, self.name())?;
                    let mut rb = drop_column(rb, c)?;
                    for (k, cat) in f.categories.iter().enumerate() {
                        let out: Vec<f64> = codes.iter().map(|&i| f64::from(u8::from(i == k))).collect();
                        rb = replace(rb, &format!("{c}_{cat}"), Arc::new(Float64Array::from(out)))?;
                    }
                    rb
                }
                Kind::SimpleImputer(_) => impute(rb, c, f.fill.as_ref())?,
                Kind::Normalizer(_) | Kind::Concatenator(_) | Kind::Chain(_) => rb,
            };
        }
        Ok(Batch::new(rb))
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::StandardScaler => "StandardScaler",
            Kind::MinMaxScaler => "MinMaxScaler",
            Kind::MaxAbsScaler => "MaxAbsScaler",
            Kind::Normalizer(_) => "Normalizer",
            Kind::OrdinalEncoder => "OrdinalEncoder",
            Kind::OneHotEncoder => "OneHotEncoder",
            Kind::LabelEncoder => "LabelEncoder",
            Kind::SimpleImputer(_) => "SimpleImputer",
            Kind::RobustScaler(..) => "RobustScaler",
            Kind::Concatenator(_) => "Concatenator",
            Kind::Chain(_) => "Chain",
        }
    }
}

/// The column holding each block's encoded summaries.
const SUMMARY: &str = "summary";

#[derive(Clone, Serialize, Deserialize)]
struct SummaryRequest {
    columns: Vec<String>,
    categories: bool,
    /// Every value, for exact quantiles.
    values: bool,
}

/// One column of one block: count, mean and squared deviations (merged
/// with Chan's formula, so the variance is as exact as one pass over all
/// rows), extremes, and the values' counts when categories are wanted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Summary {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    text: bool,
    counts: BTreeMap<Category, u64>,
    /// The values themselves, when quantiles are wanted (NaN left out).
    values: Vec<f64>,
}

impl Summary {
    fn merge(&mut self, o: Summary) {
        self.text |= o.text;
        for (k, v) in o.counts {
            *self.counts.entry(k).or_default() += v;
        }
        self.values.extend(o.values);
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            (self.n, self.mean, self.m2, self.min, self.max) = (o.n, o.mean, o.m2, o.min, o.max);
            return;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        self.mean += delta * o.n as f64 / n as f64;
        self.m2 += o.m2 + delta * delta * self.n as f64 * o.n as f64 / n as f64;
        self.n = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// The per-block task: one row holding the block's summaries.
fn summarize(request: &SummaryRequest, batch: Batch) -> Result<Batch, Error> {
    let rb = batch.record_batch();
    let mut out = Vec::with_capacity(request.columns.len());
    for c in &request.columns {
        let mut s = Summary::default();
        if is_text(rb, c)? {
            s.text = true;
            for v in texts(rb, c)?.into_iter().flatten() {
                *s.counts.entry(Category::Text(v)).or_default() += 1;
            }
        } else {
            for x in numbers(rb, c)? {
                if x.is_nan() {
                    continue;
                }
                if request.values {
                    s.values.push(x);
                }
                let mut one = Summary { n: 1, mean: x, m2: 0.0, min: x, max: x, ..Summary::default() };
                if request.categories {
                    one.counts.insert(Category::Number(x), 1);
                }
                s.merge(one);
            }
        }
        if s.counts.len() > MAX_CATEGORIES {
            return Err(invalid(format!("preprocessor: column '{c}' has more than {MAX_CATEGORIES} categories")));
        }
        out.push(s);
    }
    let bytes = wray_codec::encode(&out).map_err(|e| invalid(format!("preprocessor: {e}")))?;
    let array: ArrayRef = Arc::new(arrow_array::BinaryArray::from_vec(vec![bytes.as_slice()]));
    let schema = Arc::new(Schema::new(vec![Field::new(SUMMARY, DataType::Binary, false)]));
    RecordBatch::try_new(schema, vec![array]).map(Batch::new).map_err(|e| invalid(format!("preprocessor: {e}")))
}

fn column<'a>(rb: &'a RecordBatch, c: &str) -> Result<&'a ArrayRef, Error> {
    rb.column_by_name(c).ok_or_else(|| {
        let have: Vec<&String> = rb.schema_ref().fields().iter().map(|f| f.name()).collect();
        invalid(format!("preprocessor: no column '{c}' (the data has {have:?})"))
    })
}

fn is_text(rb: &RecordBatch, c: &str) -> Result<bool, Error> {
    Ok(matches!(column(rb, c)?.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
}

/// A numeric column as f64, missing values as NaN.
fn numbers(rb: &RecordBatch, c: &str) -> Result<Vec<f64>, Error> {
    let a = column(rb, c)?;
    let f = arrow_cast::cast(a, &DataType::Float64)
        .map_err(|e| invalid(format!("preprocessor: column '{c}' is not numeric: {e}")))?;
    let f = f.as_primitive::<Float64Type>();
    Ok((0..f.len()).map(|i| if f.is_null(i) { f64::NAN } else { f.value(i) }).collect())
}

/// A text column, missing values as `None`.
fn texts(rb: &RecordBatch, c: &str) -> Result<Vec<Option<String>>, Error> {
    let a = arrow_cast::cast(column(rb, c)?, &DataType::Utf8)
        .map_err(|e| invalid(format!("preprocessor: column '{c}': {e}")))?;
    Ok(a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
}

/// Each row's category index; unknown or missing values are errors.
fn codes(rb: &RecordBatch, c: &str, categories: &[Category], who: &str) -> Result<Vec<usize>, Error> {
    let values: Vec<Option<Category>> = if is_text(rb, c)? {
        texts(rb, c)?.into_iter().map(|v| v.map(Category::Text)).collect()
    } else {
        numbers(rb, c)?.into_iter().map(|x| (!x.is_nan()).then_some(Category::Number(x))).collect()
    };
    values
        .into_iter()
        .map(|v| match v {
            None => Err(invalid(format!("{who}: column '{c}' has a missing value (impute it first)"))),
            Some(v) => categories
                .binary_search(&v)
                .map_err(|_| invalid(format!("{who}: column '{c}' has the value {v}, not seen when fitting"))),
        })
        .collect()
}

fn impute(rb: RecordBatch, c: &str, fill: Option<&Category>) -> Result<RecordBatch, Error> {
    let Some(fill) = fill else {
        return Ok(rb);
    };
    if is_text(&rb, c)? {
        let Category::Text(fill) = fill else {
            return Err(invalid(format!("SimpleImputer: text column '{c}' filled with the number {fill}")));
        };
        let out: StringArray = texts(&rb, c)?.into_iter().map(|v| Some(v.unwrap_or_else(|| fill.clone()))).collect();
        return replace(rb, c, Arc::new(out));
    }
    let Category::Number(fill) = fill else {
        return Err(invalid(format!("SimpleImputer: numeric column '{c}' filled with the text {fill}")));
    };
    let out: Vec<f64> = numbers(&rb, c)?.into_iter().map(|x| if x.is_nan() { *fill } else { x }).collect();
    replace(rb, c, Arc::new(Float64Array::from(out)))
}

/// The `q` quantile of sorted `values` by linear interpolation (NumPy's
/// default, which scikit-learn uses); NaN for no values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // NumPy's lerp: from the nearer end, so that t = 1 gives b exactly.
    if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t }
}

/// `columns` replaced by one fixed-size list column `output`.
fn concatenate(rb: RecordBatch, columns: &[String], output: &str) -> Result<RecordBatch, Error> {
    let cols = columns.iter().map(|c| numbers(&rb, c)).collect::<Result<Vec<_>, _>>()?;
    let rows = rb.num_rows();
    let mut flat = Vec::with_capacity(rows * cols.len());
    for r in 0..rows {
        flat.extend(cols.iter().map(|c| c[r]));
    }
    let item = Arc::new(Field::new("item", DataType::Float64, true));
    let list =
        arrow_array::FixedSizeListArray::try_new(item, cols.len() as i32, Arc::new(Float64Array::from(flat)), None)
            .map_err(|e| invalid(format!("Concatenator: {e}")))?;
    let mut rb = rb;
    for c in columns {
        rb = drop_column(rb, c)?;
    }
    replace(rb, output, Arc::new(list))
}

/// `rb` with column `c` replaced by `array` (or added at the end).
fn replace(rb: RecordBatch, c: &str, array: ArrayRef) -> Result<RecordBatch, Error> {
    Batch::new(rb).with_array(c, array).map(Batch::into_record_batch)
}

fn drop_column(rb: RecordBatch, c: &str) -> Result<RecordBatch, Error> {
    let schema = rb.schema();
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|i| schema.field(*i).name() != c).collect();
    rb.project(&keep).map_err(|e| invalid(format!("preprocessor: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_summaries_equal_one_pass() {
        let xs = [1.5, -2.0, 3.25, 8.0, 0.0, 7.5, -1.0];
        let one = |x: f64| Summary { n: 1, mean: x, min: x, max: x, ..Summary::default() };
        let mut all = Summary::default();
        xs.iter().for_each(|&x| all.merge(one(x)));
        let (mut a, mut b) = (Summary::default(), Summary::default());
        xs[..3].iter().for_each(|&x| a.merge(one(x)));
        xs[3..].iter().for_each(|&x| b.merge(one(x)));
        a.merge(b);
        let mean = xs.iter().sum::<f64>() / 7.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 7.0;
        for s in [all, a] {
            assert!((s.mean - mean).abs() < 1e-12 && (s.m2 / 7.0 - var).abs() < 1e-12);
            assert_eq!((s.min, s.max, s.n), (-2.0, 8.0, 7));
        }
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 4.0, 10.0];
        // numpy.percentile([1, 2, 4, 10], [0, 25, 50, 75, 100]).
        let got: Vec<f64> = [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|q| quantile(&v, *q)).collect();
        assert_eq!(got, [1.0, 1.75, 3.0, 5.5, 10.0]);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[7.0], 0.25), 7.0);
    }

    #[test]
    fn categories_sort_numbers_numerically_then_text() {
        let mut c =
            [Category::Text("b".into()), Category::Number(10.0), Category::Text("a".into()), Category::Number(9.0)];
        c.sort();
        let shown: Vec<String> = c.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["9", "10", "a", "b"]);
    }
}
