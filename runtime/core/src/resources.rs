//! Resource sets: named, fractional amounts such as `CPU: 1.5`, `GPU: 0.25`.

use smallvec::SmallVec;
use std::fmt;
use std::sync::Arc;

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

/// Names a set holds without a heap allocation: a task's demand is nearly
/// always `{CPU: n}`, sometimes with a GPU or memory beside it.
const INLINE_NAMES: usize = 2;

/// A set of named amounts. Missing names are zero.
///
/// Every task's demand is cloned several times on its way (into its caller's
/// record, the scheduler's grant, the resources it holds), so a clone must be
/// cheap: the names sit in a small vector sorted by name, inline up to
/// [`INLINE_NAMES`], and the common names are static strings. As a
/// `BTreeMap<String, _>` each clone of `{CPU: 1}` cost two allocations, and
/// the resource maps were a quarter of all allocations of a task.
///
/// Sets are ordered by their sorted `(name, amount)` pairs: equal demands
/// share one queue in a node's scheduler, keyed by the set itself.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resources {
    /// Sorted by name, each name once.
    amounts: SmallVec<[(Name, u64); INLINE_NAMES]>,
}

/// A resource's name; the built-in ones ([`CPU`], [`GPU`], [`MEMORY`]) are
/// not allocated, others are shared by every set that names them.
#[derive(Clone)]
enum Name {
    Builtin(&'static str),
    Custom(Arc<str>),
}

impl Name {
    fn new(name: &str) -> Name {
        match name {
            CPU => Name::Builtin(CPU),
            GPU => Name::Builtin(GPU),
            MEMORY => Name::Builtin(MEMORY),
            _ => Name::Custom(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Name::Builtin(s) => s,
            Name::Custom(s) => s,
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
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
            r.set_units(&bundle_name(k.as_str(), group, index), *v);
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
        self.set_units(name, to_units(amount));
    }

    fn set_units(&mut self, name: &str, units: u64) {
        match (self.position(name), units) {
            (Ok(i), 0) => {
                self.amounts.remove(i);
            }
            (Ok(i), _) => self.amounts[i].1 = units,
            (Err(_), 0) => {}
            (Err(i), _) => self.amounts.insert(i, (Name::new(name), units)),
        }
    }

    /// Where `name` is, or where it would go.
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.amounts.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    fn units(&self, name: &str) -> u64 {
        self.position(name).map_or(0, |i| self.amounts[i].1)
    }

    /// The amount of `name`.
    pub fn get(&self, name: &str) -> f64 {
        self.units(name) as f64 / SCALE
    }

    /// The part of `name`'s amount below a whole unit (0.5 of 2.5), exact.
    pub fn fraction(&self, name: &str) -> f64 {
        (self.units(name) % SCALE as u64) as f64 / SCALE
    }

    /// GPUs held, whether plain or out of placement-group bundles.
    pub fn gpus(&self) -> f64 {
        self.amounts.iter().filter(|(k, _)| is_gpu(k.as_str())).map(|(_, u)| *u as f64 / SCALE).sum()
    }

    /// Whether every amount in `demand` is available in `self`.
    pub fn contains(&self, demand: &Resources) -> bool {
        demand.amounts.iter().all(|(k, v)| self.units(k.as_str()) >= *v)
    }

    /// Whether every amount in `demand` is available in what `self` has
    /// beyond `used` — `self` minus `used`, without making that set (a
    /// scheduler asks this of its total and what is in use for every task).
    pub fn contains_beyond(&self, used: &Resources, demand: &Resources) -> bool {
        demand.amounts.iter().all(|(k, v)| {
            let name = k.as_str();
            self.units(name).saturating_sub(used.units(name)) >= *v
        })
    }

    /// Takes `demand` out of `self`. Callers check [`Resources::contains`]
    /// first; amounts saturate at zero rather than underflow.
    pub fn subtract(&mut self, demand: &Resources) {
        for (k, v) in &demand.amounts {
            if let Ok(i) = self.position(k.as_str()) {
                let have = &mut self.amounts[i].1;
                *have = have.saturating_sub(*v);
            }
        }
    }

    /// Forgets names whose amount is zero (a placement-group bundle's
    /// resources once the bundle is removed).
    pub fn prune(&mut self) {
        self.amounts.retain(|(_, v)| *v > 0);
    }

    /// Puts `demand` back into `self`.
    pub fn add(&mut self, demand: &Resources) {
        for (k, v) in &demand.amounts {
            match self.position(k.as_str()) {
                Ok(i) => self.amounts[i].1 += *v,
                Err(i) => self.amounts.insert(i, (k.clone(), *v)),
            }
        }
    }

    /// `(name, amount)` pairs in name order, zeros included for names present.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.amounts.iter().map(|(k, v)| (k.as_str(), *v as f64 / SCALE))
    }

    /// Names present in `self`.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.amounts.iter().map(|(k, _)| k.as_str())
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

    #[test]
    fn contains_beyond_is_contains_of_the_difference() {
        let total = Resources::new().with(CPU, 2.0).with(MEMORY, 8.0).with("node", 1.0);
        let used = Resources::new().with(CPU, 1.5).with("node", 1.0);
        let mut free = total.clone();
        free.subtract(&used);
        for demand in [
            Resources::new(),
            Resources::new().with(CPU, 0.5),
            Resources::new().with(CPU, 0.75),
            Resources::new().with(MEMORY, 8.0).with(CPU, 0.25),
            Resources::new().with("node", 0.1),
            Resources::new().with("absent", 1.0),
        ] {
            assert_eq!(total.contains_beyond(&used, &demand), free.contains(&demand), "{demand}");
        }
    }

    /// The sorted small vector behaves as the `BTreeMap<String, u64>` it
    /// replaced: a seeded run of every mutation against that model.
    #[test]
    fn behaves_as_a_sorted_map() {
        use std::collections::BTreeMap;
        const NAMES: [&str; 7] = [CPU, GPU, MEMORY, "custom", "CPU_group_0_00000000000000aa", "a", "zz"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut set, mut model) = (Resources::new(), BTreeMap::<String, u64>::new());
        for _ in 0..20_000 {
            let name = NAMES[next() as usize % NAMES.len()];
            let amount = (next() % 5) as f64 * 0.5;
            let other = Resources::new().with(name, amount).with(NAMES[next() as usize % NAMES.len()], 1.0);
            match next() % 4 {
                0 => {
                    set.set(name, amount);
                    match to_units(amount) {
                        0 => model.remove(name),
                        u => model.insert(name.to_string(), u),
                    };
                }
                1 => {
                    set.add(&other);
                    for (k, v) in other.iter() {
                        *model.entry(k.to_string()).or_insert(0) += to_units(v);
                    }
                }
                2 => {
                    let fits = other.iter().all(|(k, v)| model.get(k).copied().unwrap_or(0) >= to_units(v));
                    assert_eq!(set.contains(&other), fits);
                    set.subtract(&other);
                    for (k, v) in other.iter() {
                        if let Some(have) = model.get_mut(k) {
                            *have = have.saturating_sub(to_units(v));
                        }
                    }
                }
                _ => {
                    set.prune();
                    model.retain(|_, v| *v > 0);
                }
            }
            let listed: Vec<(String, u64)> = set.iter().map(|(k, v)| (k.to_string(), to_units(v))).collect();
            let expected: Vec<(String, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
            assert_eq!(listed, expected);
            assert_eq!(set.clone(), set);
        }
    }
}
