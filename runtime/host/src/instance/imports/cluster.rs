//! `cluster`: resources, placement groups, the runtime context.

use crate::bindings::wray::runtime::{cluster, types};
use crate::instance::convert::{bundles_from_wit, resources_to_wit, to_wit_actor, to_wit_error};
use crate::instance::state::State;

impl cluster::Host for State {
    async fn cluster_resources(&mut self) -> wasmtime::Result<Vec<types::ResourceAmount>> {
        Ok(resources_to_wit(self.services.cluster_resources()))
    }

    async fn nodes(&mut self) -> wasmtime::Result<Result<Vec<cluster::NodeInfo>, types::Error>> {
        let nodes = match self.services.nodes().await {
            Ok(nodes) => nodes,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        Ok(Ok(nodes
            .into_iter()
            .map(|n| cluster::NodeInfo {
                node_id: n.id,
                address: n.address,
                alive: n.alive,
                is_head: n.head,
                resources: resources_to_wit(n.total),
                available: resources_to_wit(n.available),
            })
            .collect()))
    }

    async fn available_resources(&mut self) -> wasmtime::Result<Vec<types::ResourceAmount>> {
        Ok(resources_to_wit(self.services.available_resources()))
    }

    async fn create_placement_group(
        &mut self,
        bundles: Vec<Vec<types::ResourceAmount>>,
        strategy: cluster::PlacementStrategy,
    ) -> wasmtime::Result<Result<cluster::PlacementGroup, types::Error>> {
        let strategy = match strategy {
            cluster::PlacementStrategy::Pack => wray_core::Strategy::Pack,
            cluster::PlacementStrategy::Spread => wray_core::Strategy::Spread,
            cluster::PlacementStrategy::StrictPack => wray_core::Strategy::StrictPack,
            cluster::PlacementStrategy::StrictSpread => wray_core::Strategy::StrictSpread,
        };
        let bundles = match bundles_from_wit(bundles) {
            Ok(b) => b,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        Ok(self
            .services
            .create_placement_group(&self.caller, bundles, strategy)
            .await
            .map(|(id, nodes)| cluster::PlacementGroup { id, nodes })
            .map_err(to_wit_error))
    }

    async fn remove_placement_group(&mut self, id: u64) -> wasmtime::Result<Result<(), types::Error>> {
        Ok(self.services.remove_placement_group(&self.caller, id).await.map_err(to_wit_error))
    }

    async fn publish_status(&mut self, topic: String, body: String) -> wasmtime::Result<Result<(), types::Error>> {
        use wray_core::limits::{MAX_STATUS_BYTES, MAX_STATUS_TOPIC_BYTES};
        if topic.is_empty() || topic.len() > MAX_STATUS_TOPIC_BYTES || topic.chars().any(char::is_control) {
            return Ok(Err(to_wit_error(wray_core::Error::InvalidArgument(format!(
                "publish_status: a topic is 1 to {MAX_STATUS_TOPIC_BYTES} bytes without control characters, got {} bytes",
                topic.len()
            )))));
        }
        if body.len() > MAX_STATUS_BYTES {
            return Ok(Err(to_wit_error(wray_core::Error::InvalidArgument(format!(
                "publish_status: {topic}: the body is {} bytes, over the limit of {MAX_STATUS_BYTES}",
                body.len()
            )))));
        }
        self.services.publish_status(&self.caller, topic, body);
        Ok(Ok(()))
    }

    async fn context(&mut self) -> wasmtime::Result<cluster::RuntimeContext> {
        let driver = self.caller.actor.is_none() && &*self.caller.function == "main";
        Ok(cluster::RuntimeContext {
            job_id: self.caller.job.0,
            node_id: self.services.node_id(),
            task_id: if driver { String::new() } else { self.caller.task.to_string() },
            actor_id: self.caller.actor.map(to_wit_actor),
            actor_name: self.services.actor_name(&self.caller),
            // An actor of no CPU holds `CPU: 0`, which is nothing held.
            resources: self
                .caller
                .holds
                .iter()
                .filter(|&(_, amount)| amount > 0.0)
                .map(|(name, amount)| types::ResourceAmount { name: name.to_string(), amount })
                .collect(),
        })
    }
}
