//! Observation and action spaces, as Gymnasium's `spaces.Discrete` and
//! `spaces.Box`.

use serde::{Deserialize, Serialize};
use wray_guest_core::Error;

/// A space of observations or actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// `{0, 1, …, n - 1}`.
    Discrete(u32),
    /// Real vectors of `low.len()` elements, each within its bounds
    /// (infinite bounds allowed).
    Box {
        /// Lower bounds.
        low: Vec<f32>,
        /// Upper bounds.
        high: Vec<f32>,
    },
}

impl Space {
    /// A box with the same bounds on each of `n` elements.
    pub fn uniform_box(n: usize, low: f32, high: f32) -> Space {
        Space::Box { low: vec![low; n], high: vec![high; n] }
    }

    /// The number of elements of a value of this space as a policy sees it:
    /// 1 for a discrete space, the vector's length for a box.
    pub fn dim(&self) -> usize {
        match self {
            Space::Discrete(_) => 1,
            Space::Box { low, .. } => low.len(),
        }
    }

    /// Whether `action` lies in this space.
    pub fn contains(&self, action: &Action) -> bool {
        match (self, action) {
            (Space::Discrete(n), Action::Discrete(a)) => a < n,
            (Space::Box { low, high }, Action::Continuous(v)) => {
                v.len() == low.len() && v.iter().zip(low.iter().zip(high)).all(|(x, (l, h))| *x >= *l && *x <= *h)
            }
            _ => false,
        }
    }

    /// `Ok` if `action` lies in this space, else an error naming both.
    pub fn check(&self, action: &Action) -> Result<(), Error> {
        if self.contains(action) { Ok(()) } else { Err(self.outside(action)) }
    }

    /// The error for an `action` outside this space.
    pub fn outside(&self, action: &Action) -> Error {
        Error::InvalidArgument(format!("the action {action:?} is outside the action space {self:?}"))
    }
}

/// One action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// An action of a [`Space::Discrete`].
    Discrete(u32),
    /// An action of a [`Space::Box`].
    Continuous(Vec<f32>),
}
