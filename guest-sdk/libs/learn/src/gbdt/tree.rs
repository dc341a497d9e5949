//! A regression tree as boosting grows it, and how it predicts.

use serde::{Deserialize, Serialize};

/// One node. Children are indices into the tree's `nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// `x[feature] < threshold` goes left, a missing value goes left when
    /// `default_left`.
    Split {
        /// The feature's column.
        feature: u32,
        /// The split value.
        threshold: f32,
        /// Where a missing value goes.
        default_left: bool,
        /// The left child.
        left: u32,
        /// The right child.
        right: u32,
        /// The split's loss reduction (XGBoost's `gain`).
        gain: f64,
        /// Sum of the hessians of the node's training rows.
        cover: f64,
    },
    /// A leaf: its value (learning rate applied) is added to the margin.
    Leaf {
        /// The value.
        value: f64,
        /// Sum of the hessians of the leaf's training rows.
        cover: f64,
    },
}

/// A tree: node 0 is the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value `row` reaches.
    pub fn predict(&self, row: &[f32]) -> f64 {
        let mut i = 0usize;
        loop {
            match &self.nodes[i] {
                Node::Leaf { value, .. } => return *value,
                Node::Split { feature, threshold, default_left, left, right, .. } => {
                    let v = row[*feature as usize];
                    let go_left = if v.is_nan() { *default_left } else { v < *threshold };
                    i = if go_left { *left } else { *right } as usize;
                }
            }
        }
    }

    /// Leaves.
    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n, Node::Leaf { .. })).count()
    }

    /// The longest path from the root to a leaf, in splits.
    pub fn depth(&self) -> usize {
        fn walk(t: &Tree, i: usize) -> usize {
            match &t.nodes[i] {
                Node::Leaf { .. } => 0,
                Node::Split { left, right, .. } => 1 + walk(t, *left as usize).max(walk(t, *right as usize)),
            }
        }
        if self.nodes.is_empty() { 0 } else { walk(self, 0) }
    }

    /// Checks that children exist, come after their parent (so there is no
    /// cycle) and that features fit `features` columns: a loaded model must
    /// not make `predict` index out of bounds or loop.
    pub fn validate(&self, features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a tree has no nodes".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Node::Split { feature, left, right, .. } = n {
                for c in [*left, *right] {
                    if c as usize <= i || c as usize >= self.nodes.len() {
                        return Err(format!("node {i} has child {c}, which is not a later node of the tree"));
                    }
                }
                if *feature as usize >= features {
                    return Err(format!("node {i} splits on feature {feature} of {features}"));
                }
            }
        }
        Ok(())
    }
}
