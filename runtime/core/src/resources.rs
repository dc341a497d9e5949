//! Resource sets: named, fractional amounts such as `CPU: 1.5`, `GPU: 0.25`.

use std::collections::BTreeMap;
use std::fmt;

/// The CPU resource: one unit per core slot.
pub const CPU: &str = "CPU";
/// The GPU resource: one unit per device.
pub const GPU: &str = "GPU";
/// The memory resource, in bytes.
pub const MEMORY: &str = "memory";

/// Amounts are kept in fixed point (1/10_000 of a unit) so that adding and
/// subtracting fractional demands never drifts: four 0.25 GPU tasks release
/// exactly one GPU.
const SCALE: f64 = 10_000.0;

/// A set of named amounts. Missing names are zero.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Resources {
    amounts: BTreeMap<String, u64>,
}

/// What every task in a placement-group bundle asks of the bundle's marker
/// resource, so that even a task demanding nothing else lands on the
/// bundle's node; a bundle holds [`BUNDLE_MARKER_CAPACITY`] of it.
pub const BUNDLE_MARKER_DEMAND: f64 = 0.001;
/// See [`BUNDLE_MARKER_DEMAND`]: a million tasks may share one bundle.
pub const BUNDLE_MARKER_CAPACITY: f64 = 1000.0;

impl Resources {
    /// This demand taken out of bundle `index` of placement group `group`:
    /// every name renamed to the bundle's own copy (as Ray does), plus the
    /// bundle's marker.
    pub fn in_bundle(&self, group: u64, index: u32) -> Resources {
        let mut r = Resources::new();
        for (k, v) in &self.amounts {
            r.amounts.insert(bundle_name(k, group, index), *v);
        }
        r.set(&bundle_name("bundle", group, index), BUNDLE_MARKER_DEMAND);
        r
    }

    /// What a bundle reserving `self` offers the tasks placed in it.
    pub fn bundle_offer(&self, group: u64, index: u32) -> Resources {
        let mut r = self.in_bundle(group, index);
        r.set(&bundle_name("bundle", group, index), BUNDLE_MARKER_CAPACITY);
        r
    }

    /// The empty set.
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Adds `amount` of `name` (builder style). Negative and non-finite
    /// amounts are rejected by the callers that read user input; here they
    /// count as zero.
    pub fn with(mut self, name: &str, amount: f64) -> Resources {
        self.set(name, amount);
        self
    }

    /// Sets `name` to `amount`.
    pub fn set(&mut self, name: &str, amount: f64) {
        let units = to_units(amount);
        if units == 0 {
            self.amounts.remove(name);
        } else {
            self.amounts.insert(name.to_string(), units);
        }
    }

    /// The amount of `name`.
    pub fn get(&self, name: &str) -> f64 {
        self.amounts.get(name).map_or(0.0, |u| *u as f64 / SCALE)
    }

    /// The part of `name`'s amount below a whole unit (0.5 of 2.5), exact.
    pub fn fraction(&self, name: &str) -> f64 {
        self.amounts.get(name).map_or(0.0, |u| (*u % SCALE as u64) as f64 / SCALE)
    }

    /// GPUs held, whether plain or out of placement-group bundles.
    pub fn gpus(&self) -> f64 {
        self.amounts.iter().filter(|(k, _)| is_gpu(k)).map(|(_, u)| *u as f64 / SCALE).sum()
    }

    /// Whether every amount in `demand` is available in `self`.
    pub fn contains(&self, demand: &Resources) -> bool {
        demand.amounts.iter().all(|(k, v)| self.amounts.get(k).copied().unwrap_or(0) >= *v)
    }

    /// Takes `demand` out of `self`. Callers check [`Resources::contains`]
    /// first; amounts saturate at zero rather than underflow.
    pub fn subtract(&mut self, demand: &Resources) {
        for (k, v) in &demand.amounts {
            if let Some(have) = self.amounts.get_mut(k) {
                *have = have.saturating_sub(*v);
            }
        }
    }

    /// Forgets names whose amount is zero (a placement-group bundle's
    /// resources once the bundle is removed).
    pub fn prune(&mut self) {
        self.amounts.retain(|_, v| *v > 0);
    }

    /// Puts `demand` back into `self`.
    pub fn add(&mut self, demand: &Resources) {
        for (k, v) in &demand.amounts {
            *self.amounts.entry(k.clone()).or_insert(0) += *v;
        }
    }

    /// `(name, amount)` pairs in name order, zeros included for names present.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.amounts.iter().map(|(k, v)| (k.as_str(), *v as f64 / SCALE))
    }

    /// Names present in `self`.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.amounts.keys().map(String::as_str)
    }

    /// Whether nothing is demanded.
    pub fn is_empty(&self) -> bool {
        self.amounts.is_empty()
    }
}

fn to_units(amount: f64) -> u64 {
    if amount.is_finite() && amount > 0.0 { (amount * SCALE).round() as u64 } else { 0 }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn bundle_name(name: &str, group: u64, index: u32) -> String {
    format!("{name}_group_{index}_{group:016x}")
}

/// Whether `name` is CPUs: `CPU` itself, or a placement-group bundle's copy
/// of it ([`Resources::in_bundle`]).
pub fn is_cpu(name: &str) -> bool {
    name == CPU || name.strip_prefix(CPU).is_some_and(|rest| rest.starts_with("_group_"))
}

/// Whether `name` is the GPU resource or a placement-group bundle's copy of it.
pub fn is_gpu(name: &str) -> bool {
    name == GPU || name.strip_prefix(GPU).is_some_and(|rest| rest.starts_with("_group_"))
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}: {v}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_add_up_exactly() {
        let mut avail = Resources::new().with(GPU, 1.0);
        let quarter = Resources::new().with(GPU, 0.25);
        for _ in 0..4 {
            assert!(avail.contains(&quarter));
            avail.subtract(&quarter);
        }
        assert!(!avail.contains(&quarter));
        for _ in 0..4 {
            avail.add(&quarter);
        }
        assert_eq!(avail.get(GPU), 1.0);
    }

    #[test]
    fn missing_names_are_zero() {
        let avail = Resources::new().with(CPU, 2.0);
        assert!(avail.contains(&Resources::new()));
        assert!(!avail.contains(&Resources::new().with("custom", 1.0)));
        assert_eq!(avail.get("custom"), 0.0);
        assert_eq!(format!("{avail}"), "{CPU: 2}");
    }
}
