//! [`Matrix`]: the row-major `f32` table estimators take, NaN for a missing
//! value.

use crate::invalid;
use serde::{Deserialize, Serialize};
use wray_guest_core::Error;

/// Rows × columns of `f32`, row-major; `NaN` marks a missing value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Matrix {
    /// A matrix of `cols` columns over row-major `data` (what
    /// `wray::data`'s `Batch::matrix` returns).
    pub fn new(data: Vec<f32>, cols: usize) -> Result<Matrix, Error> {
        if cols == 0 {
            return Err(invalid("a matrix needs at least one column".into()));
        }
        if !data.len().is_multiple_of(cols) {
            return Err(invalid(format!("{} values do not make rows of {cols} columns", data.len())));
        }
        Ok(Matrix { rows: data.len() / cols, data, cols })
    }

    /// A matrix from rows (what `wray::nn::Table` and `Split` hold); rows of
    /// differing lengths are an error naming the first.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Matrix, Error> {
        let cols = rows.first().map(Vec::len).unwrap_or(0);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            if r.len() != cols {
                return Err(invalid(format!("row {i} has {} values, row 0 has {cols}", r.len())));
            }
            data.extend_from_slice(r);
        }
        if rows.is_empty() {
            return Ok(Matrix { data, rows: 0, cols: 0 });
        }
        Matrix::new(data, cols)
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The value at row `r`, column `c`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Fails unless the rows have `features` columns (`what` and `model`
    /// name them in the error: "the rows to predict have 2 features; the
    /// model was trained on 3"). No rows fit any model.
    pub fn check_features(&self, features: usize, what: &str, model: &str) -> Result<(), Error> {
        if self.rows > 0 && self.cols != features {
            return Err(invalid(format!("{what} have {} features; {model} was trained on {features}", self.cols)));
        }
        Ok(())
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix { data, rows: indices.len(), cols: self.cols }
    }
}
