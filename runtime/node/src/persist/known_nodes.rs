//! The worker nodes a head has seen, with what each offered, so that a head
//! restarted on its data directory remembers them. Until they join again it
//! counts them as lost rather than unknown: a demand only they could meet
//! then waits [`crate::cluster`]'s long rejoin grace for them instead of
//! failing after the short grace for nodes never seen (workers reconnect
//! every half second, but their first QUIC handshake to a head that is not
//! up yet retransmits on its own, slower, schedule).
//!
//! One key per node id; the value is the resources as `(name length: u16,
//! name, amount: f64)` records, little-endian — small, and decoded with
//! every length checked, since the file is not trusted more than a peer.

/// Records that `node` offers `total`.
pub(crate) fn remember_node(tree: &sled::Tree, node: &str, total: &[(String, f64)]) -> Result<(), String> {
    let mut value = Vec::new();
    for (name, amount) in total {
        let len = u16::try_from(name.len()).map_err(|_| format!("resource name of {} bytes", name.len()))?;
        value.extend(len.to_le_bytes());
        value.extend(name.as_bytes());
        value.extend(amount.to_le_bytes());
    }
    tree.insert(node.as_bytes(), value).and_then(|_| tree.flush()).map(drop).map_err(|e| e.to_string())
}

/// Forgets `node`.
pub(crate) fn forget_node(tree: &sled::Tree, node: &str) -> Result<(), String> {
    tree.remove(node.as_bytes()).map(drop).map_err(|e| e.to_string())
}

/// Every remembered node. A record that does not decode is skipped (and
/// named in the log), not fatal: it only costs that node its long grace.
pub(crate) fn known_nodes(tree: &sled::Tree) -> Vec<(String, Vec<(String, f64)>)> {
    let mut nodes = Vec::new();
    for item in tree.iter() {
        let decoded = item.map_err(|e| e.to_string()).and_then(|(k, v)| {
            let id = String::from_utf8(k.to_vec()).map_err(|_| "a node id that is not UTF-8".to_string())?;
            Ok((id, decode(&v).ok_or("a malformed resource record")?))
        });
        match decoded {
            Ok(node) => nodes.push(node),
            Err(e) => tracing::warn!("skipping a remembered node: {e}"),
        }
    }
    nodes
}

fn decode(mut bytes: &[u8]) -> Option<Vec<(String, f64)>> {
    let mut total = Vec::new();
    while !bytes.is_empty() {
        let len = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(bytes.get(2..2 + len)?).ok()?.to_string();
        let amount = f64::from_le_bytes(bytes.get(2 + len..10 + len)?.try_into().ok()?);
        total.push((name, amount));
        bytes = &bytes[10 + len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_survive_a_reopen_and_bad_records_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let tree = db.open_tree("nodes").unwrap();
            remember_node(&tree, "w1", &[("CPU".into(), 2.0), ("spot".into(), 2.0)]).unwrap();
            remember_node(&tree, "w2", &[]).unwrap();
            remember_node(&tree, "w3", &[("GPU".into(), 1.0)]).unwrap();
            forget_node(&tree, "w3").unwrap();
            tree.insert("bad", &[5, 0, b'x'][..]).unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let nodes = known_nodes(&db.open_tree("nodes").unwrap());
        assert_eq!(
            nodes,
            vec![("w1".to_string(), vec![("CPU".to_string(), 2.0), ("spot".to_string(), 2.0)]), ("w2".into(), vec![])]
        );
    }
}
