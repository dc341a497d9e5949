//! DQN's replay buffer: a ring of transitions (n-step returns folded in
//! when fragments are added), sampled uniformly or in proportion to their
//! priority (Schaul et al. 2016) through a sum tree. Pure logic, no I/O.

use crate::runner::Fragment;
use serde::{Deserialize, Serialize};
use wray_guest_core::Rng;

/// Most transitions a buffer may hold: a config must not make the driver
/// allocate without bound.
pub const MAX_REPLAY_CAPACITY: usize = 1 << 24;

/// A binary tree whose leaves are priorities and whose inner nodes are the
/// sums below them: finding the leaf where a running sum crosses a value
/// and updating a leaf both take O(log n).
#[derive(Clone, Debug)]
pub struct SumTree {
    /// Leaves start at `capacity` (a power of two); node `i`'s children are
    /// `2i` and `2i + 1`; node 1 is the root.
    nodes: Vec<f64>,
    capacity: usize,
}

impl SumTree {
    /// A tree of `n` zero leaves.
    pub fn new(n: usize) -> SumTree {
        let capacity = n.max(1).next_power_of_two();
        SumTree { nodes: vec![0.0; 2 * capacity], capacity }
    }

    /// The sum of all leaves.
    pub fn total(&self) -> f64 {
        self.nodes[1]
    }

    /// Leaf `i`'s value.
    pub fn get(&self, i: usize) -> f64 {
        self.nodes[self.capacity + i]
    }

    /// Sets leaf `i`.
    pub fn set(&mut self, i: usize, value: f64) {
        let mut node = self.capacity + i;
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1];
        }
    }

    /// The leaf in which the prefix sum crosses `mass` (`0 ≤ mass < total`).
    pub fn find(&self, mut mass: f64) -> usize {
        let mut node = 1;
        while node < self.capacity {
            let left = self.nodes[2 * node];
            if mass < left {
                node *= 2;
            } else {
                mass -= left;
                node = 2 * node + 1;
            }
        }
        node - self.capacity
    }
}

/// One n-step transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The observation acted on.
    pub obs: Vec<f32>,
    /// The action (index).
    pub action: u32,
    /// The discounted sum of up to n rewards.
    pub reward: f32,
    /// The observation n steps later (or where the episode stopped).
    pub next_obs: Vec<f32>,
    /// What multiplies the value of `next_obs`: γ^k after k steps, 0 when
    /// the episode terminated within them.
    pub discount: f32,
}

/// A sampled batch: the transitions, their indices (for new priorities)
/// and their importance weights (all 1 without prioritized replay).
pub struct Sampled {
    /// Indices into the buffer.
    pub indices: Vec<usize>,
    /// The transitions.
    pub transitions: Vec<Transition>,
    /// Importance-sampling weights, normalized so the largest is 1.
    pub weights: Vec<f32>,
}

/// The replay buffer.
pub struct ReplayBuffer {
    items: Vec<Transition>,
    capacity: usize,
    next: usize,
    /// Priorities raised to α, when prioritized.
    tree: Option<SumTree>,
    alpha: f64,
    max_priority: f64,
}

impl ReplayBuffer {
    /// A buffer of `capacity` transitions (at most [`MAX_REPLAY_CAPACITY`]);
    /// `prioritized` with exponent `alpha`.
    pub fn new(capacity: usize, prioritized: bool, alpha: f64) -> ReplayBuffer {
        let capacity = capacity.clamp(1, MAX_REPLAY_CAPACITY);
        ReplayBuffer {
            items: Vec::new(),
            capacity,
            next: 0,
            tree: prioritized.then(|| SumTree::new(capacity)),
            alpha,
            max_priority: 1.0,
        }
    }

    /// Transitions held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a transition (over the oldest once full) at the highest
    /// priority seen, so that it is sampled at least once soon.
    pub fn push(&mut self, t: Transition) {
        let i = self.next;
        if self.items.len() < self.capacity {
            self.items.push(t);
        } else {
            self.items[i] = t;
        }
        self.next = (self.next + 1) % self.capacity;
        let p = self.max_priority.powf(self.alpha);
        if let Some(tree) = &mut self.tree {
            tree.set(i, p);
        }
    }

    /// Adds a fragment's steps as n-step transitions: each step's return
    /// sums rewards until `n` steps, the episode's end or the fragment's
    /// end, whichever comes first; a terminated episode has no value after
    /// it, a truncated one is bootstrapped from its last observation.
    pub fn add_fragment(&mut self, f: &Fragment, n: u32, gamma: f32) {
        let d = f.obs_dim as usize;
        let final_of = f.final_of();
        for (segment, (start, steps)) in f.segments().into_iter().enumerate() {
            let row = |t: usize| start + t;
            for t in 0..steps {
                let (mut reward, mut discount) = (0.0f32, 1.0f32);
                let mut k = t;
                let next_obs = loop {
                    let r = row(k);
                    reward += discount * f.rewards[r];
                    discount *= gamma;
                    if f.terminated[r] {
                        discount = 0.0;
                        break f.obs[r * d..(r + 1) * d].to_vec();
                    }
                    if f.truncated[r] {
                        break final_of
                            .get(&(r as u32))
                            .map_or_else(|| f.obs[r * d..(r + 1) * d].to_vec(), |o| (*o).clone());
                    }
                    k += 1;
                    if k == steps {
                        break f.next_obs[segment * d..(segment + 1) * d].to_vec();
                    }
                    if k - t == n as usize {
                        break f.obs[row(k) * d..(row(k) + 1) * d].to_vec();
                    }
                };
                let r = row(t);
                self.push(Transition {
                    obs: f.obs[r * d..(r + 1) * d].to_vec(),
                    action: f.actions[r] as u32,
                    reward,
                    next_obs,
                    discount,
                });
            }
        }
    }

    /// `n` transitions: uniformly, or by priority with importance weights
    /// for exponent `beta`.
    pub fn sample(&self, n: usize, beta: f64, rng: &mut Rng) -> Sampled {
        let len = self.items.len();
        let indices: Vec<usize> = match &self.tree {
            None => (0..n).map(|_| rng.below(len)).collect(),
            Some(tree) => {
                // Stratified: one draw from each of n equal slices of the mass.
                let total = tree.total();
                (0..n)
                    .map(|i| {
                        let u = (i as f64 + f64::from(rng.uniform())) / n as f64;
                        tree.find((u * total).min(total * (1.0 - 1e-12))).min(len - 1)
                    })
                    .collect()
            }
        };
        let weights = match &self.tree {
            None => vec![1.0; n],
            Some(tree) => {
                let total = tree.total();
                let w: Vec<f64> = indices.iter().map(|i| (len as f64 * tree.get(*i) / total).powf(-beta)).collect();
                let max = w.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
                w.iter().map(|x| (x / max) as f32).collect()
            }
        };
        let transitions = indices.iter().map(|i| self.items[*i].clone()).collect();
        Sampled { indices, transitions, weights }
    }

    /// New priorities (absolute TD errors plus `eps`) for sampled indices.
    pub fn update_priorities(&mut self, indices: &[usize], td_errors: &[f32], eps: f64) {
        let Some(tree) = &mut self.tree else { return };
        for (i, td) in indices.iter().zip(td_errors) {
            let p = f64::from(td.abs()) + eps;
            self.max_priority = self.max_priority.max(p);
            tree.set(*i, p.powf(self.alpha));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_tree_finds_leaves_in_proportion_to_their_values() {
        let mut tree = SumTree::new(5);
        for (i, v) in [1.0, 0.0, 3.0, 2.0, 4.0].into_iter().enumerate() {
            tree.set(i, v);
        }
        assert_eq!(tree.total(), 10.0);
        assert_eq!([0.5, 1.0, 3.9, 4.0, 5.9, 6.0, 9.99].map(|m| tree.find(m)), [0, 2, 2, 3, 3, 4, 4]);
        tree.set(4, 0.0);
        assert_eq!(tree.find(5.99), 3);
        // Seeded sampling follows the priorities.
        let mut buffer = ReplayBuffer::new(4, true, 1.0);
        for a in 0..4 {
            buffer.push(Transition { obs: vec![0.0], action: a, reward: 0.0, next_obs: vec![0.0], discount: 1.0 });
        }
        buffer.update_priorities(&[0, 1, 2, 3], &[1.0, 1.0, 1.0, 7.0], 0.0);
        let mut rng = Rng::new(3);
        let s = buffer.sample(1000, 1.0, &mut rng);
        let share = s.indices.iter().filter(|i| **i == 3).count() as f64 / 1000.0;
        assert!((share - 0.7).abs() < 0.03, "{share}");
        let w3 = s.weights[s.indices.iter().position(|i| *i == 3).unwrap()];
        let w0 = s.weights[s.indices.iter().position(|i| *i == 0).unwrap()];
        assert!((w0 - 1.0).abs() < 1e-6 && (w3 - 1.0 / 7.0).abs() < 1e-6, "{w0} {w3}");
    }

    #[test]
    fn n_step_transitions_stop_at_episode_and_fragment_ends() {
        // One copy, 5 steps, observations 0..5, rewards 1; the episode
        // terminates at step 1 and is truncated at step 3 (final obs 30).
        let f = Fragment {
            obs_dim: 1,
            act_dim: 1,
            num_envs: 1,
            steps: 5,
            obs: vec![0.0, 1.0, 2.0, 3.0, 4.0],
            actions: vec![0.0, 1.0, 0.0, 1.0, 0.0],
            logp: vec![0.0; 5],
            rewards: vec![1.0; 5],
            terminated: vec![false, true, false, false, false],
            truncated: vec![false, false, false, true, false],
            next_obs: vec![5.0],
            final_obs: vec![(3, vec![30.0])],
            ..Fragment::default()
        };
        let mut buffer = ReplayBuffer::new(10, false, 0.6);
        buffer.add_fragment(&f, 3, 0.5);
        let got: Vec<(f32, f32, f32)> = buffer.items.iter().map(|t| (t.reward, t.next_obs[0], t.discount)).collect();
        assert_eq!(
            got,
            vec![
                (1.5, 1.0, 0.0),   // 0 → 1 terminates: no bootstrap
                (1.0, 1.0, 0.0),   // the terminal step itself
                (1.5, 30.0, 0.25), // 2 → 3 truncated: bootstrap from the final obs
                (1.0, 30.0, 0.5),
                (1.0, 5.0, 0.5), // the fragment's end: from next_obs
            ]
        );
    }
}
