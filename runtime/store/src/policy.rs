//! Which objects to spill: least recently used first, until enough memory
//! is freed. Pure logic, no I/O.

/// An object in memory, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resident<K> {
    /// The object.
    pub key: K,
    /// Bytes it occupies.
    pub size: usize,
    /// Logical time of its last access (larger is more recent).
    pub last_access: u64,
}

/// Picks objects to spill so that `used - freed <= budget`: least recently
/// used first. Returns them in spill order. If even spilling everything
/// cannot reach the budget, everything is returned.
pub fn victims<K: Copy>(mut resident: Vec<Resident<K>>, used: usize, budget: usize) -> Vec<K> {
    if used <= budget {
        return Vec::new();
    }
    resident.sort_by_key(|r| r.last_access);
    let mut to_free = used - budget;
    let mut out = Vec::new();
    for r in resident {
        if to_free == 0 {
            break;
        }
        to_free = to_free.saturating_sub(r.size);
        out.push(r.key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_least_recent_until_under_budget() {
        let r = |key, size, last_access| Resident { key, size, last_access };
        let resident = vec![r('a', 10, 5), r('b', 10, 1), r('c', 10, 3)];
        assert_eq!(victims(resident.clone(), 30, 30), Vec::<char>::new());
        assert_eq!(victims(resident.clone(), 30, 25), vec!['b']);
        assert_eq!(victims(resident.clone(), 30, 10), vec!['b', 'c']);
        assert_eq!(victims(resident, 30, 0), vec!['b', 'c', 'a']);
    }
}
