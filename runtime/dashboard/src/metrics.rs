//! `/metrics`: the cluster in Prometheus' text format (0.0.4), through
//! `prometheus-client`.
//!
//! The values are read off a state snapshot (`wray_net::state`) at scrape
//! time rather than kept as live metric objects in the node: the node
//! already counts everything the snapshot holds, so one more set of atomics
//! on the task path would cost every task for the benefit of a scrape every
//! few seconds. Counters are the node's own totals since it started (a
//! restarted node starts again from zero, which Prometheus' `rate` treats
//! as a reset). Names follow Prometheus' conventions: a `wray_` prefix,
//! base units (`_bytes`, `_seconds`), `_total` on counters.

use prometheus_client::encoding::prometheus_text::encode as encode_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use wray_net::state::NodeState;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The dashboard's own counters.
pub struct Dashboard {
    pub gathers: u64,
    pub requests: u64,
}

type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
type Counters = Family<Labels, Counter>;

/// Registers a family and hands it back for filling.
fn family<M>(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>) -> Family<Labels, M>
where
    Family<Labels, M>: prometheus_client::registry::Metric + Clone + Default,
{
    let f = Family::<Labels, M>::default();
    match unit {
        Some(u) => registry.register_with_unit(name, help, u, f.clone()),
        None => registry.register(name, help, f.clone()),
    }
    f
}

fn node(n: &NodeState) -> Labels {
    vec![("node", n.id.clone())]
}

fn with(mut labels: Labels, key: &'static str, value: &str) -> Labels {
    labels.push((key, value.to_string()));
    labels
}

fn set(g: &Gauges, labels: Labels, v: u64) {
    g.get_or_create(&labels).set(i64::try_from(v).unwrap_or(i64::MAX));
}

fn count(c: &Counters, labels: Labels, v: u64) {
    c.get_or_create(&labels).inc_by(v);
}

/// The text of one scrape.
pub fn encode(
    nodes: &[NodeState],
    serve: Option<&serde_json::Value>,
    dashboard: &Dashboard,
) -> Result<String, std::fmt::Error> {
    let mut r = Registry::with_prefix("wray");
    let nodes_by_state: Gauges = family(&mut r, "nodes", "Nodes known to the head, by liveness", None);
    let up: Gauges = family(&mut r, "node_up", "1 if the node answers, 0 if it is dead or silent", None);
    let beat_age: FloatGauges =
        family(&mut r, "node_heartbeat_age", "Time since the head last heard the worker", Some(Unit::Seconds));
    let heartbeats: Counters = family(&mut r, "heartbeats_received", "Heartbeats the head received from workers", None);
    let uptime: FloatGauges = family(&mut r, "node_uptime", "Time since the node started", Some(Unit::Seconds));
    let rss: Gauges =
        family(&mut r, "node_resident_memory", "Resident memory of the node's process", Some(Unit::Bytes));
    let resources: FloatGauges = family(&mut r, "resources", "Resources the node offers", None);
    let available: FloatGauges = family(&mut r, "resources_available", "Resources not held", None);
    let queued: Gauges = family(&mut r, "scheduler_queued_tasks", "Tasks waiting in the scheduler's queue", None);
    let tasks: Gauges = family(&mut r, "tasks", "Unfinished tasks by state (PENDING, RUNNING)", None);
    let ended: Counters = family(&mut r, "tasks_ended", "Tasks ended, by state (FINISHED, FAILED, CANCELLED)", None);
    let actors: Gauges = family(&mut r, "actors", "Actors by state (PENDING, ALIVE, DEAD)", None);
    let jobs: Gauges = family(&mut r, "jobs", "Jobs by status", None);
    let objects: Gauges = family(&mut r, "object_store_objects", "Objects in the node's store", None);
    let memory: Gauges = family(&mut r, "object_store_memory", "Object bytes held in memory", Some(Unit::Bytes));
    let budget: Gauges = family(&mut r, "object_store_budget", "Object memory before objects spill", Some(Unit::Bytes));
    let spilled: Gauges = family(&mut r, "object_store_spilled", "Object bytes spilled to disk now", Some(Unit::Bytes));
    let spilled_objects: Gauges = family(&mut r, "object_store_spilled_objects", "Objects spilled to disk now", None);
    let spills: Counters = family(&mut r, "object_spills", "Objects written to the spill store", None);
    let restores: Counters = family(&mut r, "object_restores", "Reads served from the spill store", None);
    let sent: Counters =
        family(&mut r, "network_sent", "UDP bytes sent on open cluster connections", Some(Unit::Bytes));
    let received: Counters =
        family(&mut r, "network_received", "UDP bytes received on open cluster connections", Some(Unit::Bytes));

    let mut alive = 0;
    let mut job_status: Vec<(String, u64)> = Vec::new();
    for n in nodes {
        alive += u64::from(n.alive);
        set(&up, with(node(n), "role", &n.role), u64::from(n.alive));
        if n.role == "worker" {
            beat_age.get_or_create(&node(n)).set(n.net.last_heartbeat_ms as f64 / 1000.0);
        }
        if !n.alive {
            continue;
        }
        if n.role == "head" {
            count(&heartbeats, Vec::new(), n.net.heartbeats);
        }
        uptime.get_or_create(&node(n)).set(n.uptime_ms as f64 / 1000.0);
        set(&rss, node(n), n.memory_rss);
        for (k, v) in &n.total {
            resources.get_or_create(&with(node(n), "resource", k)).set(*v);
        }
        for (k, v) in &n.available {
            available.get_or_create(&with(node(n), "resource", k)).set(*v);
        }
        set(&queued, node(n), n.queued);
        let c = &n.task_counts;
        set(&tasks, with(node(n), "state", "PENDING"), c.pending);
        set(&tasks, with(node(n), "state", "RUNNING"), c.running);
        count(&ended, with(node(n), "state", "FINISHED"), c.finished);
        count(&ended, with(node(n), "state", "FAILED"), c.failed);
        count(&ended, with(node(n), "state", "CANCELLED"), c.cancelled);
        for state in ["PENDING", "ALIVE", "DEAD"] {
            let k = n.actors.iter().filter(|a| a.state == state).count() as u64;
            set(&actors, with(node(n), "state", state), k);
        }
        for j in &n.jobs {
            match job_status.iter_mut().find(|(s, _)| *s == j.status) {
                Some((_, k)) => *k += 1,
                None => job_status.push((j.status.clone(), 1)),
            }
        }
        let s = &n.store;
        set(&objects, node(n), s.objects);
        set(&memory, node(n), s.memory_bytes);
        set(&budget, node(n), s.budget_bytes);
        set(&spilled, node(n), s.spilled_bytes);
        set(&spilled_objects, node(n), s.spilled_objects);
        count(&spills, node(n), s.spills);
        count(&restores, node(n), s.restores);
        count(&sent, node(n), n.net.bytes_sent);
        count(&received, node(n), n.net.bytes_received);
    }
    set(&nodes_by_state, vec![("state", "alive".into())], alive);
    set(&nodes_by_state, vec![("state", "dead".into())], nodes.len() as u64 - alive);
    for status in ["RUNNING", "SUCCEEDED", "FAILED", "STOPPED"] {
        let k = job_status.iter().find(|(s, _)| s == status).map_or(0, |(_, k)| *k);
        set(&jobs, vec![("status", status.into())], k);
    }

    if let Some(serve) = serve {
        let answered: Counters = family(&mut r, "serve_requests", "Requests the proxy answered, by status class", None);
        let mut latencies = Latencies(Vec::new());
        let replicas: Gauges = family(&mut r, "serve_replicas", "Running replicas of a deployment", None);
        let target: Gauges = family(&mut r, "serve_target_replicas", "Replicas a deployment aims for", None);
        let queued: Gauges = family(&mut r, "serve_queued_requests", "Requests waiting for a replica", None);
        let ongoing: Gauges = family(&mut r, "serve_ongoing_requests", "Requests replicas are handling now", None);
        let handled: Counters =
            family(&mut r, "serve_requests_handled", "Requests handled by a deployment's live replicas", None);
        for app in serve["applications"].as_array().into_iter().flatten() {
            let app_name = app["name"].as_str().unwrap_or("");
            for d in app["deployments"].as_array().into_iter().flatten() {
                let labels: Labels = vec![
                    ("application", app_name.to_string()),
                    ("deployment", d["name"].as_str().unwrap_or("").into()),
                ];
                let reps = d["replicas"].as_array().map_or(&[][..], Vec::as_slice);
                set(&replicas, labels.clone(), reps.len() as u64);
                set(&target, labels.clone(), d["target_replicas"].as_u64().unwrap_or(reps.len() as u64));
                set(&queued, labels.clone(), d["queued_requests"].as_u64().unwrap_or(0));
                let sum = |key: &str| reps.iter().filter_map(|x| x[key].as_u64()).sum::<u64>();
                set(&ongoing, labels.clone(), sum("ongoing_requests"));
                count(&handled, labels.clone(), sum("handled"));
                let req = &d["requests"];
                for (class, key) in [("2xx", "ok"), ("4xx", "client_errors"), ("5xx", "server_errors")] {
                    count(&answered, with(labels.clone(), "code", class), req[key].as_u64().unwrap_or(0));
                }
                let bounds = req["latency_bucket_bounds"].as_array().map_or(&[][..], Vec::as_slice);
                let counts = req["latency_buckets"].as_array().map_or(&[][..], Vec::as_slice);
                let buckets: Vec<(f64, u64)> = bounds
                    .iter()
                    .zip(counts)
                    .map(|(b, c)| (b.as_f64().unwrap_or(f64::INFINITY), c.as_u64().unwrap_or(0)))
                    .collect();
                let count = buckets.iter().map(|(_, c)| c).sum();
                let sum = req["latency_seconds_sum"].as_f64().unwrap_or(0.0);
                latencies.0.push(Latency { labels, sum, count, buckets });
            }
        }
        r.register_with_unit(
            "serve_request_duration",
            "Time from a request's arrival at the proxy to its answer",
            Unit::Seconds,
            latencies,
        );
    }

    let gathers: Counter = Counter::default();
    gathers.inc_by(dashboard.gathers);
    r.register("dashboard_state_gathers", "Times the dashboard gathered the cluster's state", gathers);
    let requests: Counter = Counter::default();
    requests.inc_by(dashboard.requests);
    r.register("dashboard_requests", "HTTP requests the dashboard received", requests);

    let mut out = String::new();
    encode_text(&mut out, &r)?;
    Ok(out)
}

/// Histograms whose buckets were counted elsewhere (the proxy's
/// `RequestStats`), one per label set: `prometheus-client`'s own
/// `Histogram` only counts observations it is handed itself.
#[derive(Debug)]
struct Latencies(Vec<Latency>);

/// One deployment's histogram: labels, sum of seconds, count, and
/// (upper bound, count in that bucket) pairs.
#[derive(Debug)]
struct Latency {
    labels: Labels,
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl prometheus_client::encoding::EncodeMetric for Latencies {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        for l in &self.0 {
            encoder
                .encode_family(&l.labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(l.sum, l.count, &l.buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}
