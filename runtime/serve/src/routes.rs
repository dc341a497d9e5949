//! Route prefixes to deployments: the longest prefix that matches a whole
//! path segment wins (`/api` takes `/api` and `/api/x`, not `/apix`; `/`
//! takes everything no longer prefix does), as in Ray Serve.

/// A route table.
#[derive(Debug)]
pub struct Routes<T> {
    /// Longest prefix first.
    entries: Vec<(String, T)>,
}

impl<T> Default for Routes<T> {
    fn default() -> Routes<T> {
        Routes { entries: Vec::new() }
    }
}

impl<T: Clone> Routes<T> {
    /// Adds a route; fails if the prefix is taken (naming who holds it).
    pub fn insert(&mut self, prefix: &str, to: T) -> Result<(), &T> {
        if let Some(i) = self.entries.iter().position(|(p, _)| p == prefix) {
            return Err(&self.entries[i].1);
        }
        let at = self.entries.iter().position(|(p, _)| p.len() < prefix.len()).unwrap_or(self.entries.len());
        self.entries.insert(at, (prefix.to_string(), to));
        Ok(())
    }

    /// Drops the routes `pred` selects.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&T) -> bool) {
        self.entries.retain(|(_, t)| !pred(t));
    }

    /// The route registered under exactly `prefix`.
    pub fn find_exact(&self, prefix: &str) -> Option<&T> {
        self.entries.iter().find(|(p, _)| p == prefix).map(|(_, t)| t)
    }

    /// Where `path` goes.
    pub fn find(&self, path: &str) -> Option<&T> {
        self.entries.iter().find(|(p, _)| matches(p, path)).map(|(_, t)| t)
    }

    /// Every route, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|(p, t)| (p.as_str(), t))
    }
}

fn matches(prefix: &str, path: &str) -> bool {
    prefix == "/" || path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_whole_segment_prefix_wins() {
        let mut r = Routes::default();
        r.insert("/api", 1).unwrap();
        r.insert("/", 0).unwrap();
        r.insert("/api/v2", 2).unwrap();
        assert_eq!(r.insert("/api", 9), Err(&1));
        assert_eq!(r.find("/api"), Some(&1));
        assert_eq!(r.find("/api/x"), Some(&1));
        assert_eq!(r.find("/api/v2/predict"), Some(&2));
        assert_eq!(r.find("/apix"), Some(&0));
        r.remove_where(|t| *t == 0);
        assert_eq!(r.find("/apix"), None);
        assert_eq!(r.iter().map(|(p, _)| p).collect::<Vec<_>>(), ["/api/v2", "/api"]);
    }
}
