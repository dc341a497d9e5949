//! Placement groups: resources reserved together, for gang scheduling.

use crate::Error;
use crate::bindings::wray::runtime::{cluster, types as wit};

/// How a placement group's bundles spread over the cluster's nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementStrategy {
    /// As few nodes as possible (one if the group fits), more if needed.
    Pack,
    /// As many nodes as possible, fewer if needed.
    Spread,
    /// All bundles on one node, or the group is not created.
    StrictPack,
    /// Each bundle on a node of its own, or the group is not created.
    StrictSpread,
}

/// Resources reserved on the cluster's nodes, bundle by bundle, until
/// [`remove_placement_group`] (or the end of the job). Tasks and actors
/// created with `.placement_group(&group, bundle)` run on that bundle's node,
/// out of the bundle's resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementGroup {
    id: u64,
    nodes: Vec<String>,
}

impl PlacementGroup {
    /// The group's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many bundles it has.
    pub fn bundle_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node bundle `index` is reserved on (as
    /// [`runtime_context`](crate::runtime_context) names nodes).
    pub fn bundle_node(&self, index: usize) -> Option<&str> {
        self.nodes.get(index).map(String::as_str)
    }
}

/// Reserves `bundles` (each a list of `(resource, amount)`, e.g.
/// `&[("CPU", 1.0), ("GPU", 1.0)]`) on the nodes `strategy` chooses, all or
/// nothing, and returns once they are reserved. Fails with
/// [`Error::InvalidArgument`] if the cluster cannot hold the group now (Ray
/// would wait; wray tells you).
///
/// ```no_run
/// use wray::PlacementStrategy;
///
/// #[wray::remote]
/// fn work(i: u32) -> u32 { i }
///
/// # fn main() -> Result<(), wray::Error> {
/// let group = wray::placement_group(&[&[("CPU", 1.0)], &[("CPU", 1.0)]], PlacementStrategy::Spread)?;
/// let a = work::options().placement_group(&group, 0).remote(1);
/// let b = work::options().placement_group(&group, 1).remote(2);
/// assert_eq!(wray::get(&a)? + wray::get(&b)?, 3);
/// wray::remove_placement_group(&group)?;
/// # Ok(()) }
/// ```
pub fn placement_group(bundles: &[&[(&str, f64)]], strategy: PlacementStrategy) -> Result<PlacementGroup, Error> {
    let bundles: Vec<Vec<wit::ResourceAmount>> = bundles
        .iter()
        .map(|b| {
            b.iter().map(|(name, amount)| wit::ResourceAmount { name: name.to_string(), amount: *amount }).collect()
        })
        .collect();
    let strategy = match strategy {
        PlacementStrategy::Pack => cluster::PlacementStrategy::Pack,
        PlacementStrategy::Spread => cluster::PlacementStrategy::Spread,
        PlacementStrategy::StrictPack => cluster::PlacementStrategy::StrictPack,
        PlacementStrategy::StrictSpread => cluster::PlacementStrategy::StrictSpread,
    };
    let g = cluster::create_placement_group(&bundles, strategy)?;
    Ok(PlacementGroup { id: g.id, nodes: g.nodes })
}

/// Frees a placement group's reservations. Tasks and actors already running
/// in it keep running; new ones can no longer be placed in it.
pub fn remove_placement_group(group: &PlacementGroup) -> Result<(), Error> {
    Ok(cluster::remove_placement_group(group.id)?)
}
