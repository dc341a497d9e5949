//! Placement groups: bundles of resources reserved together on nodes chosen
//! by a strategy, so that the tasks and actors placed in them find their
//! resources where the group put them.
//!
//! The head decides ([`wray_sched::ClusterView::place_group`]) and reserves
//! every bundle, all or nothing; a worker's job asks the head; a node
//! without a cluster is a cluster of one. A reserved bundle takes its
//! resources out of the node's pool and offers them again under names of
//! its own (`CPU_group_0_<id>`, as in Ray), which is what tasks in the
//! bundle ask for: placing them is then ordinary resource-aware placement.
//! A job's groups are removed when the job ends.

use crate::cluster::link::Link;
use crate::cluster::wire::{accepted, ask, ask_for, pairs, resources};
use crate::{NodeInner, lock};
use std::sync::Arc;
use wray_core::{Error, Resources, Strategy};
use wray_net::NetError;
use wray_net::proto::{Event, Request};

/// A group this node created: each bundle's node and resources.
pub(crate) type GroupRecord = Vec<(String, Resources)>;

fn strategy_code(s: Strategy) -> u8 {
    match s {
        Strategy::Pack => 0,
        Strategy::Spread => 1,
        Strategy::StrictPack => 2,
        Strategy::StrictSpread => 3,
    }
}

pub(crate) fn strategy(code: u8) -> Result<Strategy, NetError> {
    Ok(match code {
        0 => Strategy::Pack,
        1 => Strategy::Spread,
        2 => Strategy::StrictPack,
        3 => Strategy::StrictSpread,
        _ => return Err(NetError::Malformed(format!("no placement strategy {code}"))),
    })
}

impl NodeInner {
    /// Reserves bundle `index` of `group` on this node.
    pub(crate) fn reserve_bundle(&self, group: u64, index: u32, demand: &Resources) -> Result<(), String> {
        let mut sched = lock(&self.sched);
        if !sched.reserve(demand) {
            return Err(format!("{} has no room for {demand} any more", self.id));
        }
        // A bundle keeps its share until its group is removed.
        sched.hold_lasting(demand);
        sched.grow(&demand.bundle_offer(group, index));
        drop(sched);
        lock(&self.bundles).insert((group, index), demand.clone());
        Ok(())
    }

    /// Frees a bundle reserved here (nothing if it is not).
    pub(crate) fn release_bundle(&self, group: u64, index: u32) {
        let Some(demand) = lock(&self.bundles).remove(&(group, index)) else { return };
        {
            let mut sched = lock(&self.sched);
            sched.shrink(&demand.bundle_offer(group, index));
            sched.end_lasting(&demand);
            sched.release(&demand);
        }
        self.dispatch();
    }

    /// Creates a placement group for a job of this node.
    pub(crate) async fn create_group(
        &self,
        bundles: Vec<Resources>,
        strategy: Strategy,
    ) -> Result<(u64, Vec<String>), Error> {
        if let Some(Link::Worker(w)) = self.link.get() {
            let head = &w.head();
            let request = Request::CreateGroup {
                bundles: bundles.iter().map(pairs).collect(),
                strategy: strategy_code(strategy),
            };
            let group = ask_for(head, &request, |answer| match answer {
                Event::Group { id, nodes } => Ok((id, nodes)),
                other => Err(other.into()),
            })
            .await;
            return group.map_err(|e| Error::InvalidArgument(e.message("the head")));
        }
        self.place_group(bundles, strategy).await.map_err(Error::InvalidArgument)
    }

    /// Removes a placement group created by a job of this node.
    pub(crate) async fn remove_group(&self, id: u64) -> Result<(), Error> {
        if let Some(Link::Worker(w)) = self.link.get() {
            let removed = ask_for(&w.head(), &Request::RemoveGroup { id }, accepted).await;
            return removed.map_err(|e| Error::InvalidArgument(e.message("the head")));
        }
        self.unplace_group(id).await
    }

    /// The head's (or a lone node's) part: choose nodes, reserve every
    /// bundle or none.
    pub(crate) async fn place_group(
        &self,
        bundles: Vec<Resources>,
        strategy: Strategy,
    ) -> Result<(u64, Vec<String>), String> {
        let nodes = match self.link.get() {
            Some(Link::Head(peers)) => peers.place_group(self, &bundles, strategy)?,
            _ => {
                // A cluster of one.
                let mut view = wray_sched::ClusterView::new(u64::MAX);
                view.join(self.id.clone(), self.total_with_store(), 0);
                view.heartbeat(&self.id, self.free_resources(), &[], 0);
                view.place_group(&bundles, strategy)?
            }
        };
        let id = self.new_group_id();
        let mut reserved: GroupRecord = Vec::with_capacity(bundles.len());
        let mut failure = None;
        for (index, (node, demand)) in nodes.iter().zip(&bundles).enumerate() {
            let index = index as u32;
            let outcome = if *node == self.id {
                self.reserve_bundle(id, index, demand)
            } else {
                self.reserve_on(node, id, index, demand).await
            };
            match outcome {
                Ok(()) => reserved.push((node.clone(), demand.clone())),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(Link::Head(peers)) = self.link.get() {
            peers.group_reserved(id, &nodes, &bundles, reserved.len());
        }
        if let Some(e) = failure {
            self.release_record(id, reserved).await;
            return Err(e);
        }
        lock(&self.groups).insert(id, reserved);
        Ok((id, nodes))
    }

    async fn reserve_on(&self, node: &str, group: u64, index: u32, demand: &Resources) -> Result<(), String> {
        let Some(Link::Head(peers)) = self.link.get() else { return Err(format!("node {node} is unknown")) };
        let conn = peers.connection(node).ok_or_else(|| format!("node {node} is gone"))?;
        let request = Request::Reserve { group, index, resources: pairs(demand) };
        ask_for(&conn, &request, accepted).await.map_err(|e| format!("reserving on node {node}: {}", e.message(node)))
    }

    /// Frees a group's bundles and forgets it.
    pub(crate) async fn unplace_group(&self, id: u64) -> Result<(), Error> {
        let record = lock(&self.groups)
            .remove(&id)
            .ok_or_else(|| Error::InvalidArgument(format!("no placement group {id:016x}")))?;
        self.release_record(id, record).await;
        Ok(())
    }

    async fn release_record(&self, id: u64, record: GroupRecord) {
        for (index, (node, demand)) in record.into_iter().enumerate() {
            let index = index as u32;
            if node == self.id {
                self.release_bundle(id, index);
            } else if let Some(Link::Head(peers)) = self.link.get()
                && let Some(conn) = peers.connection(&node)
                && let Err(e) = ask(&conn, &Request::Unreserve { group: id, index }).await
            {
                tracing::warn!("cannot free bundle {index} of group {id:016x} on {node}: {e}");
            }
            if let Some(Link::Head(peers)) = self.link.get() {
                peers.group_released(&node, id, index, &demand);
            }
        }
    }

    fn new_group_id(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let n = self.next_group.fetch_add(1, Ordering::Relaxed);
        // Unique in the cluster: the node's salt, then a counter.
        (self.salt << 20) ^ n
    }

    /// Serves a worker's group request at the head, or the head's
    /// reservation request at a worker.
    pub(crate) async fn serve_group_request(self: &Arc<Self>, request: Request) -> Result<Event, NetError> {
        Ok(match request {
            Request::CreateGroup { bundles, strategy: code } => {
                let bundles: Result<Vec<Resources>, NetError> = bundles.iter().map(|b| resources(b)).collect();
                let bundles = bundles?;
                if bundles.is_empty() || bundles.len() > wray_core::limits::MAX_BUNDLES {
                    return Ok(Event::Refused(format!(
                        "a placement group has 1 to {} bundles",
                        wray_core::limits::MAX_BUNDLES
                    )));
                }
                match self.place_group(bundles, strategy(code)?).await {
                    Ok((id, nodes)) => Event::Group { id, nodes },
                    Err(why) => Event::Refused(why),
                }
            }
            Request::RemoveGroup { id } => match self.unplace_group(id).await {
                Ok(()) => Event::Accepted,
                Err(e) => Event::Refused(e.to_string()),
            },
            Request::Reserve { group, index, resources: r } => match self.reserve_bundle(group, index, &resources(&r)?)
            {
                Ok(()) => Event::Accepted,
                Err(why) => Event::Refused(why),
            },
            Request::Unreserve { group, index } => {
                self.release_bundle(group, index);
                Event::Accepted
            }
            other => Event::Refused(format!("not a placement-group request: {other:?}")),
        })
    }
}
