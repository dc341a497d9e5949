//! The dashboard in a real browser (Debian's headless Chromium), its
//! metrics through a Prometheus text-format parser, its access rules, and
//! the state CLI, against a real head with two workers.

use crate::cluster::Head;
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the views' screenshots go (docs/DASHBOARD.md shows copies).
fn screenshots() -> PathBuf {
    let dir = target_dir().join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium with the flags a closed network needs (no background
/// connections, no QUIC), a fresh profile, and virtual time so the page's
/// polling runs to completion before the DOM is read.
fn chromium(args: &[&str]) -> std::process::Output {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("Chromium is not installed: scripts/setup installs Debian's chromium");
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_exit(child, "chromium", Duration::from_secs(60))
}

/// The DOM of `view` after the page has rendered it, and a screenshot of it
/// in `screenshots()/name.png`.
fn render(dashboard: &str, view: &str, name: &str) -> String {
    let url = format!("http://{dashboard}/#{view}");
    let shot = screenshots().join(format!("{name}.png"));
    let out = chromium(&[&format!("--screenshot={}", shot.display()), &url]);
    assert!(out.status.success() && shot.exists(), "no screenshot of {url}: {}", stderr(&out));
    let out = chromium(&["--dump-dom", &url]);
    assert!(out.status.success(), "chromium could not load {url}: {}", stderr(&out));
    stdout(&out)
}

fn get(dashboard: &str, path: &str, headers: &str) -> Reply {
    request(dashboard, format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes())
}

fn post(dashboard: &str, path: &str, headers: &str, body: &str) -> Reply {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    request(dashboard, raw.as_bytes())
}

fn list_json(head: &Head, what: &str, filters: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["list", what, "--json", "--address", &head.address, "--token", &head.token];
    for f in filters {
        args.extend(["--filter", f]);
    }
    let out = head.wray(&args);
    assert_code(&out, 0);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// Submits the testjob's `dashboard` scenario and waits until it holds its
/// tasks, actor, group and object.
fn submit_dashboard_job(head: &Head, hold_secs: &str) -> String {
    let out = head.wray(&[
        "job",
        "submit",
        "--address",
        &head.address,
        "--token",
        &head.token,
        path(&guests().testjob),
        "--",
        "dashboard",
        hold_secs,
    ]);
    assert_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    wait_until(
        Duration::from_secs(120),
        || {
            let out = head.wray(&["job", "logs", "--address", &head.address, "--token", &head.token, &id]);
            stdout(&out).contains("dashboard-marker: holding")
        },
        || format!("job {id} never reached its hold"),
    );
    id
}

/// The sum of the samples of `name` with `labels` (and any others: a
/// node's value alone when `node` is among them).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let values: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: unexpected value {other:?}"),
        })
        .collect();
    assert!(!values.is_empty(), "no sample {name}{labels:?}");
    values.iter().sum()
}

#[test]
fn the_dashboard_shows_a_live_cluster_in_a_real_browser() {
    let head = Head::start_with_cpus("2");
    head.add_worker("2");
    head.add_worker("2");
    let dash = head.dashboard.clone().expect("the head printed no dashboard line");
    let id = submit_dashboard_job(&head, "120");

    // The state CLI first: it names what the page must show.
    let nodes = list_json(&head, "nodes", &[]);
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(list_json(&head, "nodes", &["role=worker"]).len(), 2);
    let actors = list_json(&head, "actors", &["name=dash-counter"]);
    assert_eq!(actors.len(), 1, "{actors:?}");
    assert_eq!(actors[0]["state"], "ALIVE");
    assert!(actors[0]["calls"].as_u64().unwrap() >= 4, "three incr and a get: {actors:?}");
    let gone = list_json(&head, "actors", &["name=dash-gone"]);
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["state"], "DEAD");
    assert!(gone[0]["death"].as_str().unwrap().contains("all its handles were dropped"), "{gone:?}");
    let failed = list_json(&head, "tasks", &["state=FAILED"]);
    assert!(failed.iter().any(|t| t["error"].as_str().unwrap().contains("dashboard-boom")), "{failed:?}");
    let squares = list_json(&head, "tasks", &["function=testjob::tasks::square_where", "state=FINISHED"]);
    assert_eq!(squares.len(), 12, "{squares:?}");
    let groups = list_json(&head, "placement-groups", &[]);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["bundles"], 2);
    assert!(list_json(&head, "jobs", &["status=RUNNING"]).iter().any(|j| j["id"] == id.as_str()));
    let objects = list_json(&head, "objects", &[]);
    assert_eq!(objects[0]["size"], 3 << 20, "the put object is the largest: {objects:?}");
    let bad =
        head.wray(&["list", "tasks", "--filter", "colour=red", "--address", &head.address, "--token", &head.token]);
    assert_code(&bad, 2);
    assert!(stderr(&bad).contains("no field \"colour\""), "{}", stderr(&bad));
    let status = head.wray(&["status", "--json", "--address", &head.address, "--token", &head.token]);
    assert_code(&status, 0);
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3);

    // Each view in Chromium, checked for the values the cluster has.
    let overview = render(&dash, "overview", "overview");
    assert!(overview.contains(r#"id="node-count">3<"#), "{overview}");
    assert!(overview.contains(r#"id="running-jobs">1<"#), "{overview}");
    let page = render(&dash, "nodes", "nodes");
    for n in &nodes {
        assert!(page.contains(n["id"].as_str().unwrap()), "{page}");
    }
    let page = render(&dash, "jobs", "jobs");
    assert!(page.contains(&id) && page.contains("RUNNING"), "{page}");
    let page = render(&dash, &format!("job/{id}"), "job");
    assert!(page.contains("dashboard-marker: holding for 120 s"), "the job's output: {page}");
    assert!(page.contains("squares ran on"), "{page}");
    let page = render(&dash, "tasks", "tasks");
    assert!(page.contains("dashboard-boom") && page.contains("testjob::tasks::square_where"), "{page}");
    assert!(page.contains(r#"id="count-FAILED">1<"#), "{page}");
    let page = render(&dash, "actors", "actors");
    assert!(page.contains("dash-counter") && page.contains("ALIVE"), "{page}");
    let page = render(&dash, "objects", "objects");
    assert!(page.contains("3.0 MiB"), "{page}");
    let page = render(&dash, "groups", "groups");
    assert!(page.contains("#0 on node-") && page.contains("#1 on node-"), "{page}");
    let page = render(&dash, "serve", "serve");
    assert!(page.contains("serves no HTTP"), "{page}");

    // The metrics, through a Prometheus parser.
    let worker = nodes.iter().find(|n| n["role"] == "worker").unwrap()["id"].as_str().unwrap().to_string();
    let metrics = get(&dash, "/metrics", "");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let scrape = prometheus_parse::Scrape::parse(metrics.body.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(sample(&scrape, "wray_nodes", &[("state", "alive")]), 3.0);
    assert!(sample(&scrape, "wray_tasks_ended_total", &[("state", "FAILED")]) >= 1.0);
    assert_eq!(sample(&scrape, "wray_jobs", &[("status", "RUNNING")]), 1.0);
    assert!(sample(&scrape, "wray_heartbeats_received_total", &[]) > 0.0);
    assert!(sample(&scrape, "wray_network_sent_bytes_total", &[("node", &worker)]) > 0.0);
    assert!(sample(&scrape, "wray_node_heartbeat_age_seconds", &[("node", &worker)]) < 3.0);
    assert!(sample(&scrape, "wray_object_store_memory_bytes", &[]) >= f64::from(3 << 20), "the put object");
    assert!(
        scrape.samples.iter().filter(|s| s.metric == "wray_actors" && s.labels.get("state") == Some("ALIVE")).count()
            >= 1
    );

    // Logs: a worker's, through the head, on the command line and on its
    // node's page; a submitted job's; a node that does not exist.
    let logs = |args: &[&str]| {
        let mut all = vec!["logs", "--address", &head.address, "--token", &head.token];
        all.extend_from_slice(args);
        head.wray(&all)
    };
    let out = logs(&["--node", &worker]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&format!("as {worker}")), "the worker's log says it joined: {}", stdout(&out));
    let out = logs(&["--job", &id]);
    assert!(stdout(&out).contains("dashboard-marker: holding"), "{}", stdout(&out));
    let out = logs(&[]);
    assert!(stdout(&out).contains(&worker) && stdout(&out).contains(&id), "{}", stdout(&out));
    let out = logs(&["--node", "node-nope"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("no node \"node-nope\" in this cluster"), "{}", stderr(&out));
    let page = render(&dash, &format!("node/{worker}"), "node");
    assert!(page.contains(&format!("as {worker}")), "{page}");

    // What jobs publish: the testjob's own document, its refused ones, and
    // a Tune experiment's trial table with the best trial's metric.
    let out = head.wray(&["job", "logs", "--address", &head.address, "--token", &head.token, &id]);
    let log = stdout(&out);
    assert!(log.contains("empty topic: invalid argument: publish_status: a topic is 1 to 128 bytes"), "{log}");
    assert!(log.contains("big body: invalid argument: publish_status: dash/big: the body is 65537 bytes"), "{log}");
    let custom = list_json(&head, "experiments", &["topic=dash/custom"]);
    assert_eq!(custom[0]["document"]["rows"], 3, "{custom:?}");
    assert_eq!(custom[0]["job"], id.as_str());
    let tune = head.run(&guests().tune_grid, &[]);
    assert_code(&tune, 0);
    assert!(stdout(&tune).contains("best score: 0"), "{}", stdout(&tune));
    let exp = list_json(&head, "experiments", &["topic=tune/experiment"]);
    assert_eq!((exp[0]["state"].as_str(), exp[0]["trials"].as_u64()), (Some("FINISHED"), Some(25)), "{exp:?}");
    assert_eq!(exp[0]["document"]["best"]["name"], "trial_00012");
    assert_eq!(exp[0]["document"]["best"]["value"], 0.0);
    let page = render(&dash, "experiments", "experiments");
    assert!(page.contains(r#"id="best-experiment">0 · trial_00012<"#), "{page}");
    assert!(page.contains("x=-0.500000, y=0.500000") && page.contains("0.7906"), "a trial's config and score: {page}");
    assert!(page.contains(r#"id="exp-dash/custom""#) && page.contains("\"rows\": 3"), "{page}");

    // Stopping the job needs the token, from loopback too.
    let refused = post(&dash, &format!("/api/jobs/{id}/stop"), "", "");
    assert_eq!(refused.status, 401, "{refused:?}");
    let stopped =
        post(&dash, &format!("/api/jobs/{id}/stop"), &format!("Authorization: Bearer {}\r\n", head.token), "");
    assert_eq!(stopped.status, 200, "{stopped:?}");
    wait_until(
        Duration::from_secs(30),
        || list_json(&head, "jobs", &[&format!("id={id}")]).first().is_some_and(|j| j["status"] == "STOPPED"),
        || format!("{id} was not stopped"),
    );
}

#[test]
fn the_dashboard_checks_tokens_and_stays_bounded_under_a_flood() {
    let head = Head::start_with_cpus("2");
    head.add_worker("2");
    let dash = head.dashboard.clone().unwrap();

    // Loopback reads without a token; a wrong token is 401 all the same.
    assert_eq!(get(&dash, "/api/state", "").status, 200);
    assert_eq!(get(&dash, "/api/state", "Authorization: Bearer nope\r\n").status, 401);
    assert_eq!(get(&dash, "/api/state", &format!("Authorization: Bearer {}\r\n", head.token)).status, 200);
    assert_eq!(get(&dash, "/no/such/page", "").status, 404);
    assert_eq!(get(&dash, "/api/jobs/job-999999/logs", "").status, 404);
    assert_eq!(get(&dash, "/api/jobs/..%2Ftoken/logs", "").status, 404);
    let session: serde_json::Value = serde_json::from_str(&get(&dash, "/api/session", "").body).unwrap();
    assert_eq!(session["can_act"], false);

    // The login form: a wrong token is 401; the right one sets a cookie
    // that acts as the token does.
    assert_eq!(post(&dash, "/login", "", "token=wrong").status, 401);
    let login = post(&dash, "/login", "", &format!("token={}", head.token));
    assert_eq!(login.status, 303, "{login:?}");
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("wray_session=") && !cookie.contains(&head.token), "{cookie}");
    let session: serde_json::Value =
        serde_json::from_str(&get(&dash, "/api/session", &format!("Cookie: {cookie}\r\n")).body).unwrap();
    assert_eq!(session["can_act"], true);
    assert_eq!(post(&dash, "/login", "", &"x".repeat(10_000)).status, 413);

    // A flood of requests while a job runs 5000 tasks: the state is
    // gathered at most once per 500 ms whatever the number of requests,
    // the workers' heartbeats keep arriving, and the job finishes.
    let baseline = Instant::now();
    let out = head.run(&guests().testjob, &["flood", "5000"]);
    assert_code(&out, 0);
    let quiet = baseline.elapsed();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let served = std::sync::atomic::AtomicUsize::new(0);
    let (flooded, elapsed) = std::thread::scope(|s| {
        for i in 0..6 {
            let (dash, stop, served) = (&dash, &stop, &served);
            s.spawn(move || {
                let paths = ["/api/state", "/metrics", "/", "/app.js"];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = get(dash, paths[i % paths.len()], "");
                    assert_eq!(r.status, 200);
                    served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        let start = Instant::now();
        let out = head.run(&guests().testjob, &["flood", "5000"]);
        let elapsed = start.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, elapsed)
    });
    assert_code(&flooded, 0);
    assert!(stdout(&flooded).contains("flood: 5000 tasks, sum 12502500"), "{}", stdout(&flooded));
    let served = served.into_inner();
    eprintln!("5000 tasks: {quiet:?} quiet, {elapsed:?} under {served} dashboard requests");
    let metrics = get(&dash, "/metrics", "");
    let scrape = prometheus_parse::Scrape::parse(metrics.body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let gathers = sample(&scrape, "wray_dashboard_state_gathers_total", &[]);
    let requests = sample(&scrape, "wray_dashboard_requests_total", &[]);
    assert!(requests >= served as f64, "{requests} < {served}");
    // Every gather before and during the flood, at most one per 500 ms
    // (plus the ones the checks above made).
    let bound = (baseline.elapsed().as_secs_f64() / 0.5).ceil() + 8.0;
    assert!(gathers <= bound, "{gathers} gathers for {served} requests (bound {bound})");
    assert!(served > 50, "the flood sent only {served} requests");
    let log = std::fs::read_to_string(head.data.join("node.log")).unwrap();
    assert!(!log.contains("missed its heartbeats"), "a worker was lost during the flood:\n{log}");
}

#[test]
fn wray_run_serves_the_embedded_runtime_s_dashboard() {
    let mut child = Command::new(wray_bin())
        .args(["run", "--dashboard", "--dashboard-port", "0", path(&guests().testjob), "--", "dashboard", "30"])
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stderr.take().unwrap());
    let out = lines_of(child.stdout.take().unwrap());
    let url = loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).expect("no dashboard line");
        if let Some(u) = line.strip_prefix("wray: dashboard at http://") {
            break u.trim().to_string();
        }
    };
    wait_for_line(&out, "dashboard-marker: holding", Duration::from_secs(120));
    // The job's sleeping task is listed as running once it has started
    // (its record kept with the task until it ends), beside those ended.
    // (Looked for during at most 10 s of the job's 30 s hold.)
    let sleeping = |node: &serde_json::Value| {
        node["tasks"].as_array().unwrap().iter().any(|t| {
            t["state"] == "RUNNING" && t["function"].as_str().unwrap().ends_with("timed_sleep") && t["started_ms"] != 0
        })
    };
    let mut node = serde_json::Value::Null;
    holds_within(Duration::from_secs(10), || {
        let state: serde_json::Value = serde_json::from_str(&get(&url, "/api/state", "").body).unwrap();
        node = state["nodes"][0].clone();
        sleeping(&node)
    });
    assert!(sleeping(&node), "{node}");
    let tasks = node["tasks"].as_array().unwrap();
    assert!(
        tasks.iter().any(|t| t["state"] == "FAILED" && t["error"].as_str().unwrap().contains("dashboard-boom")),
        "{node}"
    );
    assert!(node["task_counts"]["running"].as_u64().unwrap() >= 1, "{node}");
    assert!(node["task_counts"]["finished"].as_u64().unwrap() >= 12, "{node}");
    assert_eq!(node["role"], "local");
    assert!(node["actors"].as_array().unwrap().iter().any(|a| a["name"] == "dash-counter"), "{node}");
    let page = render(&url, "tasks", "embedded-tasks");
    assert!(page.contains("dashboard-boom"), "{page}");
    // Without a token nobody stops anything, and there are no job records.
    assert_eq!(post(&url, "/api/jobs/job-000001/stop", "", "").status, 404);
    let _ = child.kill();
    let _ = child.wait();
    assert!(Path::new(&screenshots().join("embedded-tasks.png")).exists());
}

#[test]
fn wray_run_shows_task_progress_live_on_a_terminal_and_a_summary_otherwise() {
    let job = path(&guests().testjob);
    let (out, _) = run_ok(&guests().testjob, &[], &["flood", "500"], &[]);
    assert!(out.contains("flood: 500 tasks"), "{out}");
    let piped = wray(&["run", job, "--", "flood", "500"]);
    assert_code(&piped, 0);
    assert!(stderr(&piped).contains("wray: 500 tasks: 500 finished, 0 failed, 0 cancelled in"), "{}", stderr(&piped));
    let quiet = wray(&["run", "--no-progress", job, "--", "flood", "500"]);
    assert!(!stderr(&quiet).contains("tasks:"), "{}", stderr(&quiet));
    let small = wray(&["run", job, "--", "nested"]);
    assert!(!stderr(&small).contains("tasks:"), "a small job gets no summary: {}", stderr(&small));

    // On a terminal (util-linux's `script` gives it one): the live line,
    // redrawn under the job's output, and the output intact.
    let command = format!("{} run {job} -- flood 60000", wray_bin());
    let child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux's script");
    let tty = wait_for_exit(child, "wray run under script", Duration::from_secs(120));
    assert_code(&tty, 0);
    let text = stdout(&tty);
    assert!(text.contains("flood: 60000 tasks, sum"), "{text}");
    let lines: Vec<&str> = text.split(['\r', '\n']).filter(|l| l.contains("/60000 done")).collect();
    assert!(!lines.is_empty(), "no live line in {text:?}");
    assert!(lines.iter().any(|l| l.contains(" running · ") && l.contains(" pending")), "{lines:?}");
    assert!(text.contains("wray: 60000 tasks: 60000 finished"), "{text}");
}

#[test]
fn the_dashboard_shows_serve_applications_with_their_requests_and_latency() {
    let head = Head::start_with_flags("2", &["--serve-port", "0"]);
    let (server, dash) = (head.serve.clone().unwrap(), head.dashboard.clone().unwrap());
    let out = head.serve_deploy(&guests().serve_hello, &[]);
    assert_code(&out, 0);
    for _ in 0..20 {
        let r = request(&server, b"GET /hello?name=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
    }
    // A body over the proxy's limit is a 413, counted apart.
    let bad = request(
        &server,
        b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(bad.status, 413, "{bad:?}");

    let metrics = get(&dash, "/metrics", "");
    let scrape = prometheus_parse::Scrape::parse(metrics.body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let labels = [("deployment", "Hello")];
    assert_eq!(sample(&scrape, "wray_serve_requests_total", &[labels[0], ("code", "2xx")]), 20.0);
    assert_eq!(sample(&scrape, "wray_serve_requests_total", &[labels[0], ("code", "4xx")]), 1.0);
    assert_eq!(sample(&scrape, "wray_serve_request_duration_seconds_count", &labels), 21.0);
    assert!(sample(&scrape, "wray_serve_request_duration_seconds_sum", &labels) > 0.0);
    assert!(metrics.body.contains("wray_serve_request_duration_seconds_bucket{"), "{}", metrics.body);
    assert_eq!(sample(&scrape, "wray_serve_replicas", &labels), 2.0, "serve_hello runs two");

    let page = render(&dash, "serve", "serve-app");
    assert!(page.contains("Hello") && page.contains("HEALTHY"), "{page}");
    assert!(page.contains(">21<"), "the requests column: {page}");
    assert!(page.contains("≤ 5 ms") || page.contains("≤ 10 ms") || page.contains("≤ 25 ms"), "a p50: {page}");
}
