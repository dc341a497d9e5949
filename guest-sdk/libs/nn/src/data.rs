//! Getting data in: CSV, train/test split, standardisation, batches.

use wray_guest_core::Error;
use wray_guest_core::Rng;
use wray_guest_core::Tensor;
pub use wray_guest_core::numpy_permutation;

/// A table of numbers read from CSV text: the header's column names and
/// the rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column names (from the first line).
    pub columns: Vec<String>,
    /// One `Vec` per data line, as many values as columns.
    pub rows: Vec<Vec<f32>>,
}

impl Table {
    /// Parses comma-separated text with a header line. Every other line must
    /// hold one number per column; blank lines are skipped.
    pub fn from_csv(text: &str) -> Result<Table, Error> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().ok_or_else(|| Error::InvalidArgument("csv: no header line".into()))?;
        let columns: Vec<String> = header.split(',').map(|c| c.trim().trim_matches('"').to_string()).collect();
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            let row = line
                .split(',')
                .map(|v| v.trim().parse::<f32>())
                .collect::<Result<Vec<f32>, _>>()
                .map_err(|e| Error::InvalidArgument(format!("csv line {}: {e}: {line:?}", i + 2)))?;
            if row.len() != columns.len() {
                return Err(Error::InvalidArgument(format!(
                    "csv line {}: {} values for {} columns",
                    i + 2,
                    row.len(),
                    columns.len()
                )));
            }
            rows.push(row);
        }
        Ok(Table { columns, rows })
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Result<usize, Error> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::InvalidArgument(format!("csv: no column {name:?} in {:?}", self.columns)))
    }

    /// Splits into features (every column but `target`) and the target
    /// column.
    pub fn split_target(&self, target: &str) -> Result<(Vec<Vec<f32>>, Vec<f32>), Error> {
        let t = self.column(target)?;
        let x = self
            .rows
            .iter()
            .map(|r| r.iter().enumerate().filter(|(i, _)| *i != t).map(|(_, v)| *v).collect())
            .collect();
        Ok((x, self.rows.iter().map(|r| r[t]).collect()))
    }
}

/// Splits the rows `0..n` into `(train, test)` indices exactly as
/// scikit-learn's `train_test_split(..., test_size=test_fraction,
/// random_state=seed)` does (the same numpy permutation; the test part is
/// `ceil(test_fraction · n)` rows), so results compare on the same split.
pub fn train_test_split(n: usize, test_fraction: f32, seed: u32) -> (Vec<usize>, Vec<usize>) {
    let mut idx = numpy_permutation(n, seed);
    let test = ((f64::from(test_fraction.clamp(0.0, 1.0)) * n as f64).ceil() as usize).min(n);
    let train = idx.split_off(test);
    (train, idx)
}

/// Picks `rows[i]` for each index.
pub fn select<T: Clone>(rows: &[T], indices: &[usize]) -> Vec<T> {
    indices.iter().map(|&i| rows[i].clone()).collect()
}

/// Standardises features to zero mean and unit variance (scikit-learn's
/// `StandardScaler`: population standard deviation; constant columns are
/// left unscaled).
#[derive(Clone, Debug, PartialEq)]
pub struct StandardScaler {
    /// Per-column means.
    pub mean: Vec<f32>,
    /// Per-column standard deviations (1 for constant columns).
    pub scale: Vec<f32>,
}

impl StandardScaler {
    /// Learns the columns' means and deviations.
    pub fn fit(rows: &[Vec<f32>]) -> StandardScaler {
        let cols = rows.first().map_or(0, Vec::len);
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; cols];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += f64::from(*v) / n;
            }
        }
        let mut var = vec![0f64; cols];
        for r in rows {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (f64::from(*v) - m).powi(2) / n;
            }
        }
        StandardScaler {
            mean: mean.iter().map(|&m| m as f32).collect(),
            scale: var.iter().map(|&v| if v > 0.0 { v.sqrt() as f32 } else { 1.0 }).collect(),
        }
    }

    /// `(x - mean) / scale`, row by row.
    pub fn transform(&self, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        rows.iter()
            .map(|r| r.iter().zip(&self.mean).zip(&self.scale).map(|((v, m), s)| (v - m) / s).collect())
            .collect()
    }
}

/// Rows as a `[rows, columns]` tensor.
pub fn to_tensor(rows: &[Vec<f32>]) -> Result<Tensor, Error> {
    let cols = rows.first().map_or(0, Vec::len);
    if let Some(r) = rows.iter().find(|r| r.len() != cols) {
        return Err(Error::InvalidArgument(format!("rows of {} and {} values", cols, r.len())));
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(&[rows.len(), cols], &flat)
}

/// One batch: its rows of features and targets, and which rows they were.
pub struct Batch {
    /// `[batch, features]`
    pub x: Tensor,
    /// `[batch, ...]` targets.
    pub y: Tensor,
    /// The rows' indices in the dataset.
    pub indices: Vec<u32>,
}

/// Shuffled mini-batches of a dataset kept on the host: each batch is
/// gathered on the device, so features never go back through guest memory.
pub struct DataLoader {
    x: Tensor,
    y: Tensor,
    batch_size: usize,
    shuffle: bool,
    rng: Rng,
}

impl DataLoader {
    /// Batches of `batch_size` rows of `x` and `y` (same number of rows),
    /// reshuffled every epoch from `seed`.
    pub fn new(x: Tensor, y: Tensor, batch_size: usize, seed: u64) -> Result<DataLoader, Error> {
        let (nx, ny) = (x.shape().first().copied().unwrap_or(0), y.shape().first().copied().unwrap_or(0));
        if nx != ny {
            return Err(Error::InvalidArgument(format!("DataLoader: {nx} feature rows but {ny} target rows")));
        }
        if batch_size == 0 {
            return Err(Error::InvalidArgument("DataLoader: batch_size must be at least 1".into()));
        }
        Ok(DataLoader { x, y, batch_size, shuffle: true, rng: Rng::new(seed) })
    }

    /// Keeps the rows in order (evaluation).
    pub fn sequential(mut self) -> DataLoader {
        self.shuffle = false;
        self
    }

    /// Rows in the dataset.
    pub fn len(&self) -> usize {
        self.x.shape().first().copied().unwrap_or(0)
    }

    /// Whether the dataset is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batches of one epoch (the last one may be smaller), in a fresh
    /// order.
    pub fn epoch(&mut self) -> impl Iterator<Item = Result<Batch, Error>> + '_ {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        if self.shuffle {
            self.rng.shuffle(&mut order);
        }
        let chunks: Vec<Vec<u32>> = order.chunks(self.batch_size).map(<[u32]>::to_vec).collect();
        chunks.into_iter().map(move |indices| {
            Ok(Batch { x: self.x.gather_rows(&indices)?, y: self.y.gather_rows(&indices)?, indices })
        })
    }
}

/// A dataset split for training and testing, features standardised with a
/// [`StandardScaler`] fit on the training rows only.
#[derive(Clone, Debug)]
pub struct Split {
    /// Standardised training features.
    pub x_train: Vec<Vec<f32>>,
    /// Training targets.
    pub y_train: Vec<f32>,
    /// Standardised test features.
    pub x_test: Vec<Vec<f32>>,
    /// Test targets.
    pub y_test: Vec<f32>,
    /// The scaler (to standardise new rows the same way).
    pub scaler: StandardScaler,
}

impl Split {
    /// [`train_test_split`] then [`StandardScaler`], as the usual
    /// scikit-learn recipe does.
    pub fn standardized(x: &[Vec<f32>], y: &[f32], test_fraction: f32, seed: u32) -> Split {
        let (train, test) = train_test_split(x.len(), test_fraction, seed);
        let scaler = StandardScaler::fit(&select(x, &train));
        Split {
            x_train: scaler.transform(&select(x, &train)),
            y_train: select(y, &train),
            x_test: scaler.transform(&select(x, &test)),
            y_test: select(y, &test),
            scaler,
        }
    }
}
