//! wray on Kubernetes, checked without a Kubernetes cluster (none runs on
//! these machines): the manifests in `deploy/kubernetes` read into
//! Kubernetes' own types, rendered by `kubectl kustomize`, their command
//! lines parsed by the real `wray` and compared with the pods' resources,
//! then run — a head and two workers started exactly as the manifests say,
//! on 127.0.0.x — and the image of `deploy/image` built and run with buildah.

use crate::util::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Namespace, PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The kustomizations a user applies.
const KUSTOMIZATIONS: [&str; 3] = ["base", "overlays/gpu", "overlays/external"];

fn kubernetes_dir() -> PathBuf {
    workspace().join("deploy/kubernetes")
}

/// One object of a manifest, in Kubernetes' own type.
enum Object {
    Namespace(Namespace),
    Service(Service),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    Budget(PodDisruptionBudget),
}

/// Reads every document of `yaml` into its Kubernetes type. A kind the
/// manifests should not hold fails, and so does a field the type does not
/// know (a typo such as `readinesProbe` would otherwise be dropped silently):
/// each object must serialize back to exactly what was written.
fn objects(yaml: &str, origin: &str) -> Vec<Object> {
    fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &serde_json::Value, origin: &str) -> T {
        let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{origin}: {e}\n{doc:#}"));
        let back = serde_json::to_value(&t).unwrap();
        if let Some(at) = first_difference(doc, &back, String::new()) {
            panic!("{origin}: at {at}, what was written is not what Kubernetes reads (a misspelt or misplaced field?)");
        }
        t
    }
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value: serde_yaml_ng::Value =
            serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{origin}: {e}"));
        if value.is_null() {
            continue;
        }
        let doc: serde_json::Value = serde_json::to_value(&value).unwrap();
        let what = format!("{origin}: {} {}", doc["kind"], doc["metadata"]["name"]);
        out.push(match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
            (Some("v1"), Some("Namespace")) => Object::Namespace(typed(&doc, &what)),
            (Some("v1"), Some("Service")) => Object::Service(typed(&doc, &what)),
            (Some("apps/v1"), Some("StatefulSet")) => Object::StatefulSet(typed(&doc, &what)),
            (Some("apps/v1"), Some("Deployment")) => Object::Deployment(typed(&doc, &what)),
            (Some("policy/v1"), Some("PodDisruptionBudget")) => Object::Budget(typed(&doc, &what)),
            (v, k) => panic!("{origin}: unexpected object {v:?} {k:?}"),
        });
    }
    out
}

/// Where `a` and `b` first differ, as a path (`.spec.template...`).
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| match (x.get(k), y.get(k)) {
            (Some(u), Some(v)) => first_difference(u, v, format!("{at}.{k}")),
            _ => Some(format!("{at}.{k}")),
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| first_difference(u, v, format!("{at}[{i}]")))
        }
        _ => (a != b).then_some(at),
    }
}

/// `kubectl kustomize DIR`, which is what `kubectl apply -k` applies.
fn render(kustomization: &str) -> String {
    let dir = kubernetes_dir().join(kustomization);
    let out = Command::new("kubectl")
        .args(["kustomize", path(&dir)])
        .output()
        .unwrap_or_else(|e| panic!("kubectl kustomize needs kubectl (scripts/setup checks for it): {e}"));
    assert!(out.status.success(), "kubectl kustomize {kustomization}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A workload's pods as the manifests describe them.
struct Pods {
    name: String,
    replicas: i32,
    selector: BTreeMap<String, String>,
    template: PodTemplateSpec,
    /// Volumes from the StatefulSet's claim templates (they outlive pods).
    claims: Vec<String>,
}

impl Pods {
    fn labels(&self) -> BTreeMap<String, String> {
        self.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default()
    }

    fn container(&self) -> &Container {
        let spec = self.template.spec.as_ref().expect("a pod spec");
        assert_eq!(spec.containers.len(), 1, "{}: one container per wray pod", self.name);
        &spec.containers[0]
    }

    fn is_head(&self) -> bool {
        self.container().args.as_ref().is_some_and(|a| a.iter().any(|a| a == "--head"))
    }
}

fn workloads(objects: &[Object]) -> Vec<Pods> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    let pods = |meta: &ObjectMeta, replicas: Option<i32>, selector: LabelSelector, template, claims| Pods {
        name: meta.name.clone().unwrap(),
        replicas: replicas.unwrap_or(1),
        selector: selector.match_labels.unwrap_or_default(),
        template,
        claims,
    };
    objects
        .iter()
        .filter_map(|o| match o {
            Object::StatefulSet(s) => {
                let spec = s.spec.clone().unwrap();
                let claims = spec.volume_claim_templates.iter().flatten();
                let claims = claims.map(|c| c.metadata.name.clone().unwrap()).collect();
                Some(pods(&s.metadata, spec.replicas, spec.selector, spec.template, claims))
            }
            Object::Deployment(d) => {
                let spec = d.spec.clone().unwrap();
                Some(pods(&d.metadata, spec.replicas, spec.selector, spec.template, Vec::new()))
            }
            _ => None,
        })
        .collect()
}

/// A port a Service or probe refers to by name (the manifests name every
/// port, so that a container's number is written once).
fn port_name(p: &IntOrString) -> &str {
    match p {
        IntOrString::String(name) => name,
        IntOrString::Int(n) => panic!("port {n} is referred to by number: the manifests name their ports"),
    }
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes quantity (`2`, `500m`, `4Gi`, `1G`) in base units.
fn quantity(q: &str) -> f64 {
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("quantity {q:?}"));
    n * match unit {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => panic!("quantity {q:?}: unknown unit"),
    }
}

fn resource(c: &Container, which: &str, name: &str) -> Option<f64> {
    let r = c.resources.as_ref()?;
    let map = if which == "requests" { r.requests.as_ref()? } else { r.limits.as_ref()? };
    map.get(name).map(|q| quantity(&q.0))
}

/// The container's environment as the kubelet would set it in a pod with
/// address `pod_ip`, the Secret `wray-token` holding `token`.
fn environment(c: &Container, pod_ip: &str, token: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in c.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            v.clone()
        } else {
            let from = var.value_from.as_ref().unwrap_or_else(|| panic!("{}: no value", var.name));
            if let Some(f) = &from.field_ref {
                assert_eq!(f.field_path, "status.podIP", "{}", var.name);
                pod_ip.to_string()
            } else if let Some(s) = &from.secret_key_ref {
                assert_eq!((s.name.as_str(), s.key.as_str()), ("wray-token", "token"), "{}", var.name);
                token.to_string()
            } else if let Some(r) = &from.resource_field_ref {
                assert_eq!(r.container_name.as_deref(), Some(c.name.as_str()), "{}: its own container", var.name);
                let (which, name) = r.resource.split_once('.').unwrap();
                let amount = resource(c, which, name)
                    .unwrap_or_else(|| panic!("{}: {} is not set, so the node's would be used", var.name, r.resource));
                let divisor = r.divisor.as_ref().map_or(1.0, |d| quantity(&d.0));
                // The kubelet rounds up.
                format!("{}", (amount / divisor).ceil() as u64)
            } else {
                panic!("{}: an environment source the tests do not model", var.name)
            }
        };
        env.insert(var.name.clone(), value);
    }
    env
}

/// The container's arguments with `$(VAR)` replaced from `env`, as the
/// kubelet does.
fn expand(args: &[String], env: &BTreeMap<String, String>) -> Vec<String> {
    args.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in env {
                a = a.replace(&format!("$({k})"), v);
            }
            assert!(!a.contains("$("), "{a}: a variable the container does not define");
            a
        })
        .collect()
}

fn port<'a>(c: &'a Container, name: &str) -> &'a k8s_openapi::api::core::v1::ContainerPort {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("container {} declares no port {name}", c.name))
}

fn port_of(addr: &serde_json::Value) -> i32 {
    addr.as_str().and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{addr}"))
}

/// `wray ARGS --dry-run`: the node the command line starts, as the CLI's own
/// parser reads it.
fn dry_run(args: &[String], env: &BTreeMap<String, String>) -> serde_json::Value {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.push("--dry-run");
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = wray_with(&all, &envs, Duration::from_secs(30));
    assert_code(&out, 0);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[test]
fn every_manifest_reads_into_kubernetes_types() {
    let mut files = Vec::new();
    for k in KUSTOMIZATIONS {
        for entry in std::fs::read_dir(kubernetes_dir().join(k)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml") && p.file_name().is_some_and(|n| n != "kustomization.yaml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 7, "{files:?}");
    for f in files {
        let objects = objects(&std::fs::read_to_string(&f).unwrap(), path(&f));
        assert!(!objects.is_empty(), "{}", f.display());
    }
}

#[test]
fn the_rendered_manifests_hang_together() {
    let version = stdout(&wray(&["--version"])).trim().trim_start_matches("wray ").to_string();
    let token = "ab".repeat(32);
    for k in KUSTOMIZATIONS {
        let rendered = render(k);
        // The token only ever comes from the Secret.
        assert!(!rendered.contains("--token"), "{k}: a token on a command line");
        assert!(!rendered.to_lowercase().contains("kind: secret"), "{k}: a Secret in a manifest");
        let objects = objects(&rendered, &format!("kubectl kustomize {k}"));
        let pods = workloads(&objects);
        let services: Vec<&Service> =
            objects.iter().filter_map(|o| if let Object::Service(s) = o { Some(s) } else { None }).collect();
        let budgets: Vec<&PodDisruptionBudget> =
            objects.iter().filter_map(|o| if let Object::Budget(b) = o { Some(b) } else { None }).collect();
        // Everything lands in the namespace the manifests create.
        let namespaces: Vec<&str> = objects
            .iter()
            .filter_map(|o| if let Object::Namespace(n) = o { n.metadata.name.as_deref() } else { None })
            .collect();
        assert_eq!(namespaces.len(), 1, "{k}: one namespace");
        for o in &objects {
            let meta = match o {
                Object::Namespace(_) => continue,
                Object::Service(x) => &x.metadata,
                Object::StatefulSet(x) => &x.metadata,
                Object::Deployment(x) => &x.metadata,
                Object::Budget(x) => &x.metadata,
            };
            assert_eq!(meta.namespace.as_deref(), Some(namespaces[0]), "{k}: {:?}", meta.name);
        }
        let heads: Vec<&Pods> = pods.iter().filter(|p| p.is_head()).collect();
        assert_eq!(heads.len(), 1, "{k}: one head");
        let head = heads[0];
        assert_eq!(head.replicas, 1, "{k}: one head pod");
        assert!(pods.iter().any(|p| !p.is_head()), "{k}: workers");

        for p in &pods {
            let labels = p.labels();
            assert!(selects(&p.selector, &labels), "{k}: {} does not select its own pods", p.name);
            for other in pods.iter().filter(|o| o.name != p.name) {
                assert!(!selects(&p.selector, &other.labels()), "{k}: {} selects {}'s pods", p.name, other.name);
            }
            let c = p.container();
            assert_eq!(c.image.as_deref(), Some(format!("wray:{version}").as_str()), "{k}: {}'s image", p.name);

            // Probes: liveness on /livez, readiness on /readyz, both on the
            // health port the node is told to serve.
            for (probe, path) in [(&c.liveness_probe, "/livez"), (&c.readiness_probe, "/readyz")] {
                let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).unwrap_or_else(|| panic!("{}", p.name));
                assert_eq!(get.path.as_deref(), Some(path), "{k}: {}", p.name);
                assert_eq!(port_name(&get.port), "health", "{k}: {}", p.name);
            }
            let env = environment(c, "10.0.0.7", &token);
            assert!(
                c.env.iter().flatten().any(|v| v.name == "WRAY_TOKEN"
                    && v.value.is_none()
                    && v.value_from.as_ref().is_some_and(|f| f.secret_key_ref.is_some())),
                "{k}: {}'s token is not from the Secret",
                p.name
            );
            let args = expand(c.args.as_deref().unwrap(), &env);
            let node = dry_run(&args, &env);

            // What the node offers is what the pod requests.
            let cpus = resource(c, "requests", "cpu").unwrap();
            assert_eq!(node["cpus"].as_f64(), Some(cpus), "{k}: {}: --cpus vs requests.cpu", p.name);
            let memory = resource(c, "requests", "memory").unwrap();
            assert_eq!(node["memory"].as_f64(), Some(memory), "{k}: {}: --memory vs requests.memory", p.name);
            let gpus = resource(c, "limits", "nvidia.com/gpu");
            assert_eq!(node["gpus"].as_f64(), gpus, "{k}: {}: --gpus vs nvidia.com/gpu", p.name);
            let store = node["object_store_memory"].as_f64().unwrap();
            let limit = resource(c, "limits", "memory").unwrap_or_else(|| panic!("{}: no memory limit", p.name));
            assert!(limit >= memory + store, "{k}: {}: limit {limit} < memory {memory} + object store {store}", p.name);
            assert_eq!(node["token"], "given", "{k}: {}", p.name);

            let health = port(c, "health");
            assert_eq!(port_of(&node["health"]), health.container_port, "{k}: {}", p.name);
            assert_eq!(health.protocol.as_deref(), Some("TCP"));
            assert_eq!(node["health"].as_str().unwrap().rsplit_once(':').unwrap().0, "10.0.0.7", "{k}: the pod's IP");

            // The data directory is a volume: the head's from its claim
            // template, so that it outlives the pod.
            let data_dir = node["data_dir"].as_str().unwrap();
            let mount = c
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| m.mount_path == data_dir)
                .unwrap_or_else(|| panic!("{k}: {}: the data directory {data_dir} is not a volume", p.name));
            if p.is_head() {
                assert!(p.claims.contains(&mount.name), "{k}: the head's data is not on a claimed volume");
            }
            let secure = c.security_context.as_ref().unwrap();
            assert_eq!(secure.read_only_root_filesystem, Some(true));
            assert!(c.volume_mounts.iter().flatten().any(|m| m.mount_path == "/tmp"), "{k}: {}: /tmp", p.name);

            if p.is_head() {
                assert_eq!(node["role"], "head");
                let quic = port(c, "quic");
                assert_eq!(quic.protocol.as_deref(), Some("UDP"), "{k}: QUIC is UDP");
                assert_eq!(port_of(&node["listen"]), quic.container_port);
                assert_eq!(port_of(&node["serve"]), port(c, "serve").container_port);
                assert_eq!(port_of(&node["dashboard"]), port(c, "dashboard").container_port);
            } else {
                // A worker joins through a Service that reaches the head's
                // QUIC port over UDP, and only the head.
                assert_eq!(node["role"], "worker");
                let (name, svc_port) = node["head"].as_str().unwrap().split_once(':').unwrap();
                let svc = services
                    .iter()
                    .find(|s| s.metadata.name.as_deref() == Some(name))
                    .unwrap_or_else(|| panic!("{k}: {}: no Service {name}", p.name));
                let spec = svc.spec.as_ref().unwrap();
                let sel = spec.selector.clone().unwrap_or_default();
                assert!(selects(&sel, &head.labels()), "{k}: {name} does not select the head");
                assert!(pods.iter().filter(|o| !o.is_head()).all(|o| !selects(&sel, &o.labels())));
                let sp = spec.ports.iter().flatten().find(|sp| sp.port.to_string() == svc_port).unwrap();
                assert_eq!(sp.protocol.as_deref(), Some("UDP"), "{k}: {name}:{svc_port}");
                assert_eq!(sp.target_port.as_ref().map(port_name), Some("quic"));
                // One disruption budget covers each worker group.
                let covering = budgets
                    .iter()
                    .filter(|b| {
                        let sel =
                            b.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.match_labels.clone());
                        selects(&sel.unwrap_or_default(), &labels)
                    })
                    .count();
                assert_eq!(covering, 1, "{k}: {} is covered by {covering} disruption budgets", p.name);
            }
        }
        // Every Service port leads to a declared container port of the same
        // protocol on the pods it selects.
        for svc in &services {
            let spec = svc.spec.as_ref().unwrap();
            let sel = spec.selector.clone().unwrap_or_default();
            let targets: Vec<&Pods> = pods.iter().filter(|p| selects(&sel, &p.labels())).collect();
            assert!(!targets.is_empty(), "{k}: {:?} selects no pods", svc.metadata.name);
            for sp in spec.ports.iter().flatten() {
                let name = port_name(sp.target_port.as_ref().unwrap());
                for t in &targets {
                    assert_eq!(port(t.container(), name).protocol, sp.protocol, "{k}: {:?} {name}", svc.metadata.name);
                }
            }
        }
    }
}

/// A process standing in for a pod: its command line and environment from
/// the manifests, its address `ip`, its volumes directories of a temporary
/// directory.
struct PodProcess {
    child: std::process::Child,
    ip: String,
}

impl Drop for PodProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the first container of `pods` as the kubelet would on a pod
/// with address `ip`: `$(VAR)`s expanded, a Service name in the
/// environment resolved to the head pod's address (cluster DNS), volume
/// paths moved under `volumes`, and in a PID namespace of its own, where
/// `wray` is pid 1 as in a container: every pod's node has the same pid
/// (which once made them all one node id, `node-00000001`).
fn start_pod(pods: &Pods, ip: &str, token: &str, services: &BTreeMap<String, String>, volumes: &Path) -> PodProcess {
    let c = pods.container();
    let mut env = environment(c, ip, token);
    for v in env.values_mut() {
        if let Some((name, port)) = v.split_once(':')
            && let Some(addr) = services.get(&format!("{name}:{port}"))
        {
            *v = addr.clone();
        }
    }
    let mut args = expand(c.args.as_deref().unwrap(), &env);
    for m in c.volume_mounts.iter().flatten() {
        let dir = volumes.join(&m.name);
        std::fs::create_dir_all(&dir).unwrap();
        for a in &mut args {
            if a.starts_with(&m.mount_path) {
                *a = a.replacen(&m.mount_path, path(&dir), 1);
            }
        }
    }
    let log = std::fs::File::create(volumes.join("log")).unwrap();
    // In a PID namespace of its own where it can be: pid 1, as in a pod.
    let mut cmd = match pid_namespace() {
        Some(unshare) => {
            let mut c = Command::new("unshare");
            c.args(unshare).arg("--").arg(wray_bin());
            c
        }
        None => Command::new(wray_bin()),
    };
    let child = cmd
        .args(&args)
        .envs(&env)
        .env("HOME", volumes.join("data"))
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        .env_remove("WRAY_ALLOW_SOFTWARE_GPU")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    PodProcess { child, ip: ip.to_string() }
}

/// How `unshare` starts a process in a PID namespace of its own here (as
/// root; with a user namespace too otherwise, where unprivileged ones may
/// make PID namespaces; `--kill-child`: the process ends with `unshare`),
/// tried once. `None` where neither is allowed (a container without
/// `CAP_SYS_ADMIN`, say): the pods then run as plain processes, and only
/// the check that every node is pid 1 is left out — that ids stay apart
/// under one pid is `wray-node`'s `nodes_made_in_one_process_have_ids_of_their_own`.
fn pid_namespace() -> Option<&'static [&'static str]> {
    static FOUND: std::sync::OnceLock<Option<&'static [&'static str]>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let ways: [&'static [&'static str]; 2] =
            [&["--pid", "--fork", "--kill-child"], &["--user", "--map-root-user", "--pid", "--fork", "--kill-child"]];
        let found = ways.into_iter().find(|way| {
            Command::new("unshare").args(*way).args(["--", "true"]).output().is_ok_and(|o| o.status.success())
        });
        if found.is_none() {
            eprintln!("no PID namespaces here: the pods run as plain processes, not each as pid 1");
        }
        found
    })
}

/// `GET http://ADDR/PATH` → status code (0 if nothing answers yet).
fn probe(addr: &str, path: &str) -> u16 {
    if std::net::TcpStream::connect(addr).is_err() {
        return 0;
    }
    request(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).status
}

#[test]
fn a_cluster_started_as_the_manifests_say_runs_a_submitted_job() {
    let objects = objects(&render("base"), "kubectl kustomize base");
    let pods = workloads(&objects);
    let head = pods.iter().find(|p| p.is_head()).unwrap();
    let workers = pods.iter().find(|p| !p.is_head()).unwrap();
    let token = String::from_utf8(
        Command::new("openssl").args(["rand", "-hex", "32"]).output().map(|o| o.stdout).unwrap_or_default(),
    )
    .ok()
    .filter(|t| t.trim().len() == 64)
    .unwrap_or_else(|| "5e".repeat(32));
    let token = token.trim();
    let dir = tempfile::tempdir().unwrap();

    // Cluster DNS: every Service port that selects the head, to the head
    // pod's address and the container port it targets.
    let head_ip = "127.0.0.2";
    let mut dns = BTreeMap::new();
    for o in &objects {
        if let Object::Service(s) = o {
            let spec = s.spec.as_ref().unwrap();
            if selects(&spec.selector.clone().unwrap_or_default(), &head.labels()) {
                for sp in spec.ports.iter().flatten() {
                    let to = port(head.container(), port_name(sp.target_port.as_ref().unwrap())).container_port;
                    dns.insert(
                        format!("{}:{}", s.metadata.name.as_deref().unwrap(), sp.port),
                        format!("{head_ip}:{to}"),
                    );
                }
            }
        }
    }
    let quic = dns["wray-head:6380"].clone();
    let health = |p: &PodProcess| format!("{}:{}", p.ip, port(head.container(), "health").container_port);

    let head_pod = start_pod(head, head_ip, token, &dns, &dir.path().join("head"));
    wait_until(
        Duration::from_secs(60),
        || probe(&health(&head_pod), "/readyz") == 200,
        || std::fs::read_to_string(dir.path().join("head/log")).unwrap_or_default(),
    );
    let worker_pods: Vec<PodProcess> = ["127.0.0.3", "127.0.0.4"]
        .iter()
        .enumerate()
        .map(|(i, ip)| start_pod(workers, ip, token, &dns, &dir.path().join(format!("worker-{i}"))))
        .collect();
    for (i, w) in worker_pods.iter().enumerate() {
        wait_until(Duration::from_secs(60), || probe(&health(w), "/livez") == 200, || "a worker is not live".into());
        wait_until(
            Duration::from_secs(60),
            || probe(&health(w), "/readyz") == 200,
            || std::fs::read_to_string(dir.path().join(format!("worker-{i}/log"))).unwrap_or_default(),
        );
    }

    // The cluster offers what the pods request: the head's CPU and memory
    // and each worker's.
    let status = wray(&["status", "--address", &quic, "--token", token]);
    assert_code(&status, 0);
    let text = stdout(&status);
    let cpu = |p: &Pods| resource(p.container(), "requests", "cpu").unwrap();
    let mem = |p: &Pods| resource(p.container(), "requests", "memory").unwrap();
    for (p, count) in [(head, 1), (workers, 2)] {
        let line = format!("resources: CPU: {}, memory: {}", cpu(p), mem(p));
        assert_eq!(text.matches(&line).count(), count, "{line:?} in:\n{text}");
    }
    // Three nodes, each pid 1 in its pod, each an id of its own.
    let mut ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("node ")?.strip_suffix(" (alive)")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{text}");
    if pid_namespace().is_some() {
        assert!(ids.iter().all(|id| id.starts_with("node-1-")), "{text}");
    }

    // A job submitted through the Service runs on the cluster.
    let job = &guests().pi;
    let out = wray(&["job", "--address", &quic, "--token", token, "submit", path(job)]);
    assert_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    let out = wray_with(
        &["job", "--address", &quic, "--token", token, "logs", "--follow", &id],
        &[],
        Duration::from_secs(120),
    );
    assert_code(&out, 0);
    assert!(stdout(&out).contains("100 tasks x 1000000 samples: pi ~ 3.14"), "{}", stdout(&out));
    let out = wray(&["job", "--address", &quic, "--token", token, "status", &id]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("SUCCEEDED"), "{}", stdout(&out));

    // The head pod restarts (a rolled image, an evicted pod): on the same
    // volume it keeps its job records, and the workers join it again.
    drop(head_pod);
    for w in &worker_pods {
        wait_until(Duration::from_secs(30), || probe(&health(w), "/readyz") == 503, || "a worker stayed ready".into());
    }
    let head_pod = start_pod(head, head_ip, token, &dns, &dir.path().join("head"));
    for w in &worker_pods {
        wait_until(
            Duration::from_secs(60),
            || probe(&health(w), "/readyz") == 200,
            || "a worker did not rejoin".into(),
        );
    }
    let out = wray(&["job", "--address", &quic, "--token", token, "list"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    drop(head_pod);
}

#[test]
fn the_image_holds_wray_and_runs_a_job() {
    if Command::new("buildah").arg("--version").output().is_err() {
        panic!("building the image needs buildah (scripts/setup installs it: apt-get install buildah)");
    }
    let store = tempfile::tempdir().unwrap();
    let archive = store.path().join("wray.tar");
    let out = Command::new(workspace().join("deploy/image/build.sh"))
        .args(["--binary", wray_bin(), "--tag", "wray-test:latest", "--archive", path(&archive)])
        .env("WRAY_BUILDAH_ROOT", store.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let version = stdout(&wray(&["--version"]));
    let buildah = |args: &[&str]| {
        let out = Command::new("buildah")
            .args(["--root", path(&store.path().join("storage")), "--runroot", path(&store.path().join("run"))])
            .args(args)
            .env("STORAGE_DRIVER", "vfs")
            .env("BUILDAH_ISOLATION", "chroot")
            .output()
            .unwrap();
        assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // Labelled with the binary's version; run as a user of its own.
    let image: serde_json::Value =
        serde_json::from_str(&buildah(&["inspect", "--type", "image", "wray-test:latest"])).unwrap();
    let config = &image["OCIv1"]["config"];
    assert_eq!(config["Labels"]["org.opencontainers.image.version"], version.trim().trim_start_matches("wray "));
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/bin/wray"]));

    // Nothing but what the binary needs: its libraries, the Vulkan loader,
    // the user and name-service files, and two directories.
    let files = image_files(&archive, store.path());
    let needed = |f: &str| {
        f == "usr/bin/wray"
            || ((f.starts_with("lib/") || f.starts_with("lib64/") || f.starts_with("usr/lib/")) && f.contains(".so"))
            || ["etc/passwd", "etc/group", "etc/nsswitch.conf"].contains(&f)
            || f.ends_with('/')
    };
    assert!(files.iter().all(|f| needed(f)), "unexpected files in the image: {files:?}");
    assert!(files.iter().any(|f| f.contains("libvulkan.so.1")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("lib64/ld-linux")), "{files:?}");

    let container = buildah(&["from", "wray-test:latest"]).trim().to_string();
    assert_eq!(buildah(&["run", &container, "--", "/usr/bin/wray", "--version"]), version);
    let job = &guests().pi;
    let mount = format!("{}:/job.wasm:ro", path(job));
    let ran = buildah(&["run", "-v", &mount, &container, "--", "/usr/bin/wray", "run", "/job.wasm"]);
    assert!(ran.contains("100 tasks x 1000000 samples: pi ~ 3.14"), "{ran}");
    buildah(&["rm", &container]);
}

/// Every path in the layers of the OCI archive `archive` (unpacked under
/// `scratch`), directories ending in `/`.
fn image_files(archive: &Path, scratch: &Path) -> Vec<String> {
    let dir = scratch.join("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = |args: &[&str]| {
        let out = Command::new("tar").args(args).output().unwrap();
        assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    tar(&["-xf", path(archive), "-C", path(&dir)]);
    let blob = |digest: &str| dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let read = |p: PathBuf| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let index = read(dir.join("index.json"));
    let manifest = read(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let mut files = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let listing = tar(&["-tf", path(&blob(layer["digest"].as_str().unwrap()))]);
        files.extend(listing.lines().map(|l| l.trim_start_matches("./").to_string()).filter(|l| !l.is_empty()));
    }
    files
}

#[test]
fn the_flags_for_supervisors_refuse_bad_values_by_name() {
    let token = "cd".repeat(32);
    // (arguments, environment, what the error must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&["start", "--head", "--dry-run"], &[("WRAY_TOKEN", "not-a-token")], "--token (or WRAY_TOKEN)"),
        (&["start", "--head", "--token", "12ab", "--dry-run"], &[], "64 hex digits"),
        (
            &["start", "--head", "--memory", "4Gi", "--resources", r#"{"memory": 5}"#, "--dry-run"],
            &[("WRAY_TOKEN", &token)],
            "give the node's memory once",
        ),
        (&["start", "--head", "--cpus", "2 cores", "--dry-run"], &[], "not a number of CPUs"),
        (&["start", "--head", "--health-host", "0.0.0.0", "--dry-run"], &[], "--health-port"),
    ];
    for (args, envs, needle) in cases {
        let out = wray_with(args, envs, Duration::from_secs(30));
        assert_code(&out, 2);
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }

    // A health port that is taken stops the node at once with its name,
    // rather than leaving a supervisor to restart a healthy node for ever.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = wray_with(
        &[
            "start",
            "--head",
            "--block",
            "--port",
            "0",
            "--no-dashboard",
            "--data-dir",
            path(data.path()),
            "--health-port",
            &port,
        ],
        &[("WRAY_TOKEN", &token)],
        Duration::from_secs(60),
    );
    assert_code(&out, 2);
    assert!(stderr(&out).contains(&format!("health endpoints: cannot listen on 127.0.0.1:{port}")), "{}", stderr(&out));
    // The token given was kept in the data directory (and never printed).
    assert_eq!(std::fs::read_to_string(data.path().join("token")).unwrap(), token);
    assert!(!stdout(&out).contains(&token));
}
