//! A job that exercises the SDK; the integration tests run it with a
//! scenario name as its first argument and check what it prints. The
//! scenarios and what they call are split by topic; `main` dispatches.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use wray::{ActorHandle, Error, ObjectRef};

mod actors;
mod data;
mod hostile;
mod learn;
mod ml;
mod pool;
mod rl;
mod scenarios;
mod serve;
mod soak;
mod tasks;
mod train;

pub use actors::*;
use hostile::*;
use ml::*;
use scenarios::*;
use soak::*;
use tasks::*;

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Error> {
    let scenario = args.first().map(String::as_str).unwrap_or("basics");
    match scenario {
        "basics" => basics()?,
        "spread" => {
            // N tasks of `ms` each: on a cluster they spread over the nodes.
            let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
            let ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
            let refs: Vec<_> = (0..n).map(|i| square_where::remote(i, ms)).collect();
            let mut nodes = std::collections::BTreeMap::<String, u32>::new();
            for (i, r) in refs.iter().enumerate() {
                let (sq, node) = wray::get(r)?;
                assert_eq!(sq, (i * i) as u64, "task {i} returned a wrong result");
                *nodes.entry(node).or_default() += 1;
            }
            println!("spread ok: {n}");
            println!("nodes: {}", nodes.len());
            for (node, count) in nodes {
                println!("ran {count} on {node}");
            }
        }
        "special" => {
            // A task asking for a resource only some node has.
            let amount: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
            let r = square_where::options().num_cpus(0.5).resource("special", amount).remote(7, 0);
            match wray::get(&r) {
                Ok((sq, node)) => println!("special: {sq} on {node}"),
                Err(e) => println!("special failed: {e}"),
            }
            println!("cluster CPU: {}", wray::cluster_resources().get("CPU").copied().unwrap_or(0.0));
            println!("cluster special: {}", wray::cluster_resources().get("special").copied().unwrap_or(0.0));
            println!("nodes from the driver: {}", tasks::nodes_line());
            if amount <= 2.0 {
                // From a task on the worker, which asks the head.
                let (node, line) =
                    wray::get(&tasks::nodes_from_task::options().num_cpus(0.5).resource("special", 0.5).remote())?;
                println!("nodes from {node}: {line}");
                // A task's own environment travels with it.
                let far = env_of::options().num_cpus(0.5).resource("special", 0.5).env("OWN", "far");
                println!("env on the worker: {:?}", wray::get(&far.remote(vec!["OWN".into()]))?);
            }
        }
        "actors-cluster" => {
            // An actor placed where its resource is; a task on a third node
            // calls it through a handle and by name; calls keep their order.
            let c = Counter::options().resource("special", 0.5).name("shared").remote(10);
            println!("actor on: {}", wray::get(&c.node())?);
            println!("its name there: {:?}", wray::get(&c.name())?);
            for _ in 0..5 {
                c.incr(1);
            }
            println!("after incr: {}", wray::get(&c.get())?);
            let by_handle = bump::options().resource("elsewhere", 1.0).remote(c.clone(), 10);
            println!("bump: {}", wray::get(&by_handle)?);
            let by_name = bump_named::options().resource("elsewhere", 1.0).remote("shared".to_string());
            println!("bump_named: {}", wray::get(&by_name)?);
            let listed = named_actors::options().resource("elsewhere", 1.0).remote();
            println!("named from the other worker: {:?}", wray::get(&listed)?);
            let near = bump_named::options().resource("special", 0.5).remote("shared".to_string());
            println!("bump_named on its node: {}", wray::get(&near)?);
            println!("final: {}", wray::get(&c.get())?);
            wray::kill(&c);
            println!("after kill: {}", wray::get(&c.get()).map_or_else(|e| format!("{e}"), |v| v.to_string()));
        }
        "actors-on-one-node" => {
            // More actors on one node than QUIC's default stream limit
            // (100): each holds a stream of the connection it came over.
            // With a larger share of `special` each (the third argument),
            // the actors fill every node that has it.
            let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(150);
            let share: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.001);
            let actors: Vec<_> = (0..n).map(|i| Counter::options().resource("special", share).remote(i)).collect();
            let refs: Vec<_> = actors.iter().map(|c| c.get()).collect();
            let sum: i64 = wray::get_all(&refs)?.into_iter().sum();
            let nodes: std::collections::BTreeSet<String> =
                wray::get_all(&actors.iter().map(|c| c.node()).collect::<Vec<_>>())?.into_iter().collect();
            println!("actors: {n}, sum: {sum}, nodes: {}", nodes.len());
        }
        "actor-restart" => {
            // An actor on a node that dies is re-created on another one.
            let c = Counter::options().resource("spot", 1.0).max_restarts(1).remote(0);
            let first = wray::get(&c.node())?;
            println!("actor on: {first}");
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
                if let Err(e) = wray::get(&c.incr(1)) {
                    println!("call failed: {e}");
                }
                match wray::get(&c.node()) {
                    Ok(n) if n != first => {
                        println!("restarted on: {n}");
                        println!("count after restart: {}", wray::get(&c.incr(1))?);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => println!("call failed: {e}"),
                }
            }
        }
        "restart-budget" => {
            // One restart in all: a crash on the hosting node uses it, so
            // the loss of that node is final.
            let c = Counter::options().resource("spot", 1.0).max_restarts(1).remote(0);
            let first = wray::get(&c.node())?;
            wray::get(&c.crash()).ok();
            println!("after a crash: {}", wray::get(&c.incr(1))?);
            println!("kill: {first}");
            let start = std::time::Instant::now();
            let mut lost = false;
            while start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
                match wray::get(&c.incr(1)) {
                    // The call in flight when the node died fails first;
                    // then the actor is either dead or (wrongly) back.
                    Err(e) if e.to_string().contains("no restarts left") => {
                        println!("after the node's loss: {e}");
                        break;
                    }
                    Err(_) => lost = true,
                    Ok(n) if lost => {
                        println!("restarted again: {n}");
                        break;
                    }
                    Ok(_) => {}
                }
            }
        }
        "actor-node-retry" => {
            // Calls in flight when the node hosting their actor dies: run
            // again on the restarted actor with max_task_retries, failed
            // without. The test kills the node named by each `kill:` line.
            for retries in [1u32, 0] {
                let c = Counter::options().resource("spot", 1.0).max_restarts(1).max_task_retries(retries).remote(0);
                let first = wray::get(&c.node())?;
                wray::get(&c.incr(5))?;
                let slow = c.slow(4000);
                let after = c.incr(1);
                std::thread::sleep(Duration::from_millis(300));
                println!("kill: {first}");
                let show = |r: Result<String, Error>| r.unwrap_or_else(|e| format!("error: {e}"));
                println!("retries {retries}: slow: {}", show(wray::get(&slow).map(|v| v.to_string())));
                println!("retries {retries}: after: {}", show(wray::get(&after).map(|v| v.to_string())));
                println!("retries {retries}: moved: {}", wray::get(&c.node())? != first);
                // Frees its `spot` for the next round's restart.
                wray::kill(&c);
            }
        }
        "groups" => {
            // A placement group; tasks and an actor in its bundles run on
            // the bundles' nodes.
            let strategy = match args.get(1).map(String::as_str).unwrap_or("pack") {
                "spread" => wray::PlacementStrategy::Spread,
                "strict-pack" => wray::PlacementStrategy::StrictPack,
                "strict-spread" => wray::PlacementStrategy::StrictSpread,
                _ => wray::PlacementStrategy::Pack,
            };
            let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
            let cpus_before = wray::available_resources().get("CPU").copied().unwrap_or(0.0);
            let bundle: &[(&str, f64)] = &[("CPU", 1.0)];
            let group = match wray::placement_group(&vec![bundle; n], strategy) {
                Ok(g) => g,
                Err(e) => {
                    println!("group failed: {e}");
                    return Ok(());
                }
            };
            let nodes: std::collections::BTreeSet<_> = (0..n).filter_map(|i| group.bundle_node(i)).collect();
            println!("group nodes: {}", nodes.len());
            println!("cpu reserved: {}", cpus_before - wray::available_resources().get("CPU").copied().unwrap_or(0.0));
            for i in 0..n {
                let r = square_where::options().placement_group(&group, i as u32).remote(i as u64, 0);
                let (sq, node) = wray::get(&r)?;
                assert_eq!(sq, (i * i) as u64);
                assert_eq!(Some(node.as_str()), group.bundle_node(i), "task of bundle {i} ran elsewhere");
            }
            println!("tasks ran in their bundles: {n}");
            let c = Counter::options().num_cpus(1.0).placement_group(&group, 0).remote(1);
            assert_eq!(Some(wray::get(&c.node())?.as_str()), group.bundle_node(0));
            println!("actor ran in its bundle");
            wray::kill(&c);
            wray::remove_placement_group(&group)?;
            println!("removed");
        }
        "locality" => {
            // Tasks whose arguments are large stay with their data (on the
            // job's node) even when it is busy.
            let data = wray::put(&vec![1u8; 32 << 20]);
            let refs: Vec<_> = (0..6).map(|_| where_with::remote(&data, 200)).collect();
            let nodes: std::collections::BTreeSet<String> = wray::get_all(&refs)?
                .into_iter()
                .map(|(len, node)| {
                    assert_eq!(len, 32 << 20);
                    node
                })
                .collect();
            println!("locality nodes: {}", nodes.len());
            println!("ran on job node: {}", nodes.contains(&wray::runtime_context().node_id));
        }
        "streams" => {
            println!("driver to stdout");
            eprintln!("driver to stderr");
            wray::get(&to_both_streams::remote())?;
        }
        "waits-for-room" => waits_for_room()?,
        "stuck-behind-actors" => stuck_behind_actors()?,
        "actor-lifetimes" => actor_lifetimes(args.get(1).is_some_and(|a| a == "elsewhere"))?,
        "actors-from-afar" => actors_from_afar()?,
        "spread-strategy" => spread_strategy()?,
        "node-affinity" => node_affinity()?,
        "node-affinity-basics" => node_affinity_basics()?,
        "fresh-instances" => fresh_instances()?,
        "reused-instances" => reused_instances()?,
        "queue-order" => queue_order()?,
        "generators" => generators(args.get(1).map(String::as_str))?,
        "generator-node-loss" => {
            // A generator on a `spot` worker; the test kills that worker
            // after three items, and the retry on the other one goes on:
            // every item read once, in order.
            let mut stream = slow_items::options().resource("spot", 1.0).max_retries(2).remote(20, 100);
            let mut items = Vec::new();
            let mut nodes = std::collections::BTreeSet::new();
            for item in stream.by_ref() {
                let (i, node) = wray::get(&item?)?;
                if i == 2 {
                    println!("kill: {node}");
                }
                items.push(i);
                nodes.insert(node);
            }
            println!("items after a lost node: {}", items == (0..20).collect::<Vec<_>>());
            println!("made on nodes: {}", nodes.len());
            wray::get(stream.result())?;
        }
        "environments" => environments()?,
        "detached-create" => {
            // A named actor that outlives this job.
            let c = Counter::options().name("keeper").detached().remote(100);
            for _ in 0..5 {
                c.incr(1);
            }
            println!("keeper: {}", wray::get(&c.get())?);
        }
        "detached-use" => {
            let c = wray::get_actor::<Counter>("keeper")?;
            println!("keeper: {}", wray::get(&c.incr(1))?);
            println!("named: {:?}", wray::list_named_actors()?);
            // From a task on another node than the job's (the head, when
            // the job runs on a worker): asked through the job's node.
            let elsewhere = wray::nodes()?.into_iter().find(|n| n.node_id != wray::runtime_context().node_id);
            if let Some(node) = elsewhere {
                let there = wray::SchedulingStrategy::NodeAffinity { node_id: node.node_id, soft: false };
                let found = bump_named::options().scheduling_strategy(there.clone()).remote("keeper".to_string());
                println!("keeper from another node: {}", wray::get(&found)?);
                let listed = named_actors::options().scheduling_strategy(there).remote();
                println!("named from another node: {:?}", wray::get(&listed)?);
            }
        }
        "vault-fill" => {
            // Hands a detached actor refs to objects this job owns: a put
            // and a task's result. The test then kills this job's node.
            let vault = Vault::options().name("vault").detached().remote(0);
            let refs = vec![wray::put(&40i64), add::remote(1, 1)];
            println!("vault holds: {}", wray::get(&vault.keep(refs))?);
            println!("node: {}", wray::runtime_context().node_id);
            std::thread::sleep(Duration::from_secs(600));
        }
        "vault-read" => {
            let vault = wray::get_actor::<Vault>("vault")?;
            println!("vault total: {}", wray::get(&vault.total())?);
        }
        "detached-ledger" => {
            // A detached actor taking snapshots: created on first use,
            // then one entry per run; prints its state.
            let l = match wray::get_actor::<Ledger>("ledger") {
                Ok(l) => l,
                Err(_) => Ledger::options().name("ledger").detached().checkpoint_every(1).max_restarts(1).remote(1),
            };
            wray::get(&l.add(args.get(1).cloned().unwrap_or_default(), 10))?;
            println!("ledger: {}", wray::get(&l.summary())?);
        }
        "detached-kill" => {
            let c = wray::get_actor::<Counter>("keeper")?;
            wray::kill(&c);
            println!("killed");
        }
        "big" => {
            // `mib` MiB made on the node with `producer`, checked on the one
            // with `consumer`.
            let mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
            let made = produce::options().resource("producer", 1.0).remote(mib);
            let r = consume::options().resource("consumer", 1.0).remote(&made);
            let (len, intact, node) = wray::get(&r)?;
            println!("big: {len} bytes intact={intact} consumed on {node}");
            // Three results of a mebibyte, left on the producer, read here
            // together (fetched at once).
            let parts: Vec<_> = (0..3).map(|_| produce::options().resource("producer", 1.0).remote(1)).collect();
            let parts = wray::get_all(&parts)?;
            let intact =
                parts.iter().all(|p| p.len() == 1 << 20 && p.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
            println!("big parts: {} intact={intact}", parts.len());
            // 32 MiB left on the producer draw a task that needs only a CPU
            // to the producer (which has one free), rather than have it run
            // here and fetch them.
            let made = produce::options().resource("producer", 1.0).remote(32);
            let (len, intact, on) = wray::get(&consume::remote(&made))?;
            println!("near: {len} bytes intact={intact} consumed on {on}");
        }
        "held-orphan" => {
            // 16 MiB made on a `producer` node and left there; then the test
            // kills this job's own node, the object's owner: the producer
            // frees it when the stream its owner held open breaks.
            let made = produce::options().resource("producer", 1.0).remote(16);
            let (ready, _) = wray::wait(std::slice::from_ref(&made), 1, None);
            println!("made: {}", ready.len());
            println!("kill: {}", wray::runtime_context().node_id);
            // Idle until the test kills this node (what it tests); a bound
            // so that a test that failed to kill it does not leave it on.
            std::thread::sleep(Duration::from_secs(120));
        }
        "held-lost" => {
            // 16 MiB made on node `args[1]` (a `producer`) and left there
            // (it is over a mebibyte and the job's node reached it
            // directly); the test kills that node once the job says so.
            // The consumer on another node, and the job itself, still get
            // it whole: its task runs again on the other producer.
            let node = args.get(1).cloned().unwrap_or_default();
            let there = wray::SchedulingStrategy::NodeAffinity { node_id: node.clone(), soft: true };
            let made = produce::options().resource("producer", 1.0).scheduling_strategy(there).remote(16);
            let (ready, _) = wray::wait(std::slice::from_ref(&made), 1, None);
            println!("made: {}", ready.len());
            println!("kill: {node}");
            // Until the cluster has lost it (the head declares it dead
            // after `--node-timeout`), so that the consumer finds it gone.
            let start = std::time::Instant::now();
            while wray::cluster_resources().get("producer").copied().unwrap_or(0.0) > 1.0 {
                if start.elapsed() > Duration::from_secs(30) {
                    return Err(Error::InvalidArgument(format!("node {node} is still in the cluster after 30 s")));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let r = consume::options().resource("consumer", 1.0).remote(&made);
            let (len, intact, on) = wray::get(&r)?;
            println!("held-lost: {len} bytes intact={intact} consumed on {on}");
            let data = wray::get(&made)?;
            let intact = data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8);
            println!("held-lost at home: {} bytes intact={intact}", data.len());
        }
        "soak" => soak(
            args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1),
            args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100),
            args.get(3).map(String::as_str),
        )?,
        "forged" => forged()?,
        "release-while-computing" => release_while_computing()?,
        "actor-reads-its-own-results" => actor_reads_its_own_results()?,
        "checkpoints" => checkpoints()?,
        "checkpoint-node" => {
            // An actor whose node dies continues from its snapshot on
            // another node. The test kills the node named by `kill:`.
            let l = Ledger::options().resource("spot", 1.0).checkpoint_every(1).max_restarts(1).remote(3);
            let first = wray::get(&l.node())?;
            for i in 0..50u64 {
                wray::get(&l.add(format!("k{}", i % 4), i))?;
            }
            wray::get(&l.grow(args.get(1).map_or(500_000, |n| n.parse().unwrap_or(500_000))))?;
            let before = wray::get(&l.summary())?;
            println!("before: {before}");
            println!("kill: {first}");
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
                match wray::get(&l.node()) {
                    Ok(n) if n != first => {
                        println!("moved: true");
                        let after = wray::get(&l.summary())?;
                        println!("after: {after}");
                        println!("state kept: {}", after == before);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => println!("call failed: {e}"),
                }
            }
        }
        "errors" => errors()?,
        "limits" => limits()?,
        "actors" => actors()?,
        "cancel" => cancel()?,
        "spill" => spill(32, 1)?,
        "store-full" => store_full()?,
        "parallel" => {
            // Four tasks of 300 ms holding one CPU each, each saying when
            // it ran: the most that ran at one instant is how many the node
            // ran at once.
            let refs: Vec<_> = (0..4).map(|_| timed_sleep::remote(300)).collect();
            let spans = wray::get_all(&refs)?;
            let most = spans.iter().map(|&(start, _)| spans.iter().filter(|&&(s, e)| s <= start && start < e).count());
            println!("parallel: at most {} at once", most.max().unwrap_or(0));
        }
        "dashboard" => {
            // What the dashboard's test looks for: tasks over the cluster
            // (one failing with a known message), a named actor with calls
            // made, a placement group and a put object; held for `secs`
            // seconds so the views can be read while it all lives.
            let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
            println!("dashboard-marker: job started");
            let refs: Vec<_> = (0..12).map(|i| square_where::remote(i, 50)).collect();
            let nodes: std::collections::BTreeSet<String> =
                wray::get_all(&refs)?.into_iter().map(|(_, node)| node).collect();
            println!("squares ran on {} nodes", nodes.len());
            let failed = fail::remote("dashboard-boom".to_string());
            println!("fail: {}", wray::get(&failed).map_or_else(|e| e.to_string(), |v| v.to_string()));
            let counter = Counter::options().name("dash-counter").remote(5);
            for _ in 0..3 {
                counter.incr(1);
            }
            println!("counter: {}", wray::get(&counter.get())?);
            // An actor that ended with its last handle: listed DEAD, with why.
            let gone = Counter::options().name("dash-gone").remote(1);
            wray::get(&gone.incr(1))?;
            drop(gone);
            name_gone_within("dash-gone", Duration::from_secs(60));
            let bundle: &[(&str, f64)] = &[("CPU", 0.5)];
            let _group = wray::placement_group(&[bundle, bundle], wray::PlacementStrategy::Spread)?;
            let _big = wray::put(&vec![7u8; 3 << 20]);
            wray::publish_status("dash/custom", r#"{"rows": 3, "of": 5}"#)?;
            let too_big = "x".repeat(wray::MAX_STATUS_BYTES + 1);
            println!(
                "empty topic: {}",
                wray::publish_status("", "{}").map_or_else(|e| e.to_string(), |()| "ok".into())
            );
            println!(
                "big body: {}",
                wray::publish_status("dash/big", &too_big).map_or_else(|e| e.to_string(), |()| "ok".into())
            );
            // A task still running while the views are read: listed RUNNING.
            let _running = timed_sleep::remote(secs * 1000);
            println!("dashboard-marker: holding for {secs} s");
            std::thread::sleep(Duration::from_secs(secs));
            println!("dashboard-marker: done");
        }
        "whereami" => {
            // Which node runs the driver (and its tasks), and for how long:
            // concurrent jobs overlap while they sleep.
            let ctx = wray::runtime_context();
            let cpus = wray::cluster_resources().get("CPU").copied().unwrap_or(0.0);
            std::thread::sleep(Duration::from_millis(1500));
            println!("node: {} cpus: {cpus}", ctx.node_id);
        }
        "churn" => {
            // 256 MiB through the store, 1 MiB at a time, each ref dropped
            // after use: with a small budget, nothing should ever spill.
            for i in 0..256u32 {
                let r = wray::put(&vec![i as u8; 1 << 20]);
                let task = add::remote(i64::from(i), 1);
                assert_eq!(wray::get(&r)?.len(), 1 << 20);
                assert_eq!(wray::get(&task)?, i64::from(i) + 1);
            }
            println!("churn: done");
        }
        "nested" => println!("nested: {}", wray::get(&nested::remote(4))?),
        "read" => println!("{}", wray::get(&read_file::remote(args.get(1).cloned().unwrap_or_default()))?),
        "env" => {
            let name = args.get(1).map(String::as_str).unwrap_or("HOME");
            println!("env: {:?}", std::env::var(name));
            println!("task env: {:?}", wray::get(&env_var::remote(name.to_string()))?);
        }
        "read-main" => println!(
            "{}",
            std::fs::read_to_string(args.get(1).map(String::as_str).unwrap_or("/etc/passwd"))
                .map_or_else(|e| format!("main cannot read: {e}"), |s| format!("main read {} bytes", s.len()))
        ),
        "panic-main" => panic!("the driver gave up"),
        "spin-main" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "hog-task" => println!("{}", wray::get(&hog::remote())?),
        "spin-task" => println!("{}", wray::get(&spin::remote())?),
        "recurse-task" => println!("{}", wray::get(&recurse::remote())?),
        "print" => {
            for i in 0..3 {
                println!("line {i}");
            }
            eprintln!("to stderr");
        }
        "fail-main" => return Err(Error::InvalidArgument("the driver returned an error".into())),
        "exit" => {
            // `std::process::exit` in the driver ends the job with its status.
            let status: i32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            println!("exiting with {status}");
            std::process::exit(status);
        }
        "exit-task" => {
            // In a task it fails that task, naming the status; the job goes on.
            match wray::get(&exit_with::remote(4)) {
                Ok(()) => println!("exit-task returned"),
                Err(e) => println!("exit-task: {e}"),
            }
        }
        "nn-gradcheck" => nn_gradcheck()?,
        "nn-errors" => nn_errors()?,
        "nn-objects" => nn_objects()?,
        "gpu-share" => {
            // Four tasks of 0.25 GPU each run at once on one GPU.
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
            let refs: Vec<_> = (0..n).map(|i| gpu_task::options().num_gpus(0.25).remote(i as u32, 300)).collect();
            let mut out = wray::get_all(&refs)?;
            out.sort();
            for line in out {
                println!("{line}");
            }
            println!("cpu task: {}", wray::get(&gpu_task::remote(9, 0))?);
        }
        "gpu-infeasible" => match wray::get(&gpu_task::options().num_gpus(2.0).remote(0, 0)) {
            Ok(v) => println!("unexpected success: {v}"),
            Err(e) => println!("too many gpus: {e}"),
        },
        "tune-errors" => tune_errors()?,
        "tune-pbt" => tune_pbt()?,
        "tune-stoppers" => tune_stoppers()?,
        "tune-two-functions" => tune_two_functions()?,
        "tune-loop" => tune_loop()?,
        "tune-resume" => tune_resume(
            args.get(1).map(String::as_str).unwrap_or("/store"),
            args.get(2).is_some_and(|a| a == "resume"),
        )?,
        "flood" => {
            // N submissions at once, every ref held: the runtime makes the
            // driver wait when too many are unfinished (back-pressure).
            let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
            let start = std::time::Instant::now();
            let refs: Vec<_> = (0..n).map(|i| add::remote(i, 1)).collect();
            let mut sum = 0i64;
            for chunk in refs.chunks(10_000) {
                sum += wray::get_all(chunk)?.iter().sum::<i64>();
            }
            println!(
                "flood: {n} tasks, sum {sum} (expected {}), {:.1} s",
                n * (n + 1) / 2,
                start.elapsed().as_secs_f64()
            );
        }
        "task-retries" => {
            // Crashes until a separate tally reaches 3: with retries the
            // call survives two crashes; without, the first crash fails it.
            let tally = Counter::remote(0);
            let flaky = Flaky::options().max_restarts(5).max_task_retries(3).remote(tally.clone());
            println!("retried: {:?}", wray::get(&flaky.work()).map_err(|e| e.to_string()));
            let tally = Counter::remote(0);
            let plain = Flaky::options().max_restarts(5).remote(tally);
            println!("not retried: {:?}", wray::get(&plain.work()).map_err(|e| e.to_string()));
            let tally = Counter::remote(0);
            let short = Flaky::options().max_restarts(1).max_task_retries(5).remote(tally);
            println!("restarts used up: {:?}", wray::get(&short.work()).map_err(|e| e.to_string()));
        }
        "isatty" => {
            use std::io::IsTerminal;
            println!("stdout is a terminal: {}", std::io::stdout().is_terminal());
        }
        "perm" => println!("perm10: {:?}", wray::nn::numpy_permutation(10, 0)),
        s if s.starts_with("data-") => data::run(s, &args[1..])?,
        s if s.starts_with("train-") => train::run(s, &args[1..])?,
        s if s.starts_with("learn-") => learn::run(s)?,
        s if s.starts_with("rl-") => rl::run(s)?,
        s if s.starts_with("serve-") => serve::run(s)?,
        "pool" => pool::run()?,
        other => panic!("unknown scenario {other}"),
    }
    Ok(())
}

/// `waits-for-room`: two 1-CPU actors fill a head and a worker of 1 CPU
/// each; a third waits (no node has room). The one on the other node is
/// killed while the driver's node stays full: the third must go there,
/// not wait for the driver's node for ever.
/// On a node of 2 CPUs: two actors hold both, and a task asks for one.
/// It waits until an actor is killed (warned about on stderr meanwhile).
fn stuck_behind_actors() -> Result<(), Error> {
    let (a, b) = (Counter::options().num_cpus(1.0).remote(0), Counter::options().num_cpus(1.0).remote(0));
    wray::get(&a.incr(1))?;
    wray::get(&b.incr(1))?;
    let sum = add::remote(3, 4);
    // The warning comes 10-11 s after the task queued: 15 s leave room
    // for a loaded machine.
    let ready = wray::wait(std::slice::from_ref(&sum), 1, Some(Duration::from_secs(15))).0;
    println!("the task waits while actors hold every CPU: {}", ready.is_empty());
    wray::kill(&a);
    println!("the task ran once an actor was killed: {}", wray::get_timeout(&sum, Duration::from_secs(30))?);
    Ok(())
}

/// Actors end once their last handle is gone (run with `--cpus 2`; each
/// step would wait for ever if they did not). With `elsewhere` (on a
/// cluster), the actor holding a handle runs on another node than the
/// job's, whose copy of the handle keeps the actor until that node frees
/// it.
fn actor_lifetimes(elsewhere: bool) -> Result<(), Error> {
    // Generous: on a fresh cluster the first actor waits for its node to
    // compile the component (tens of seconds in a debug build).
    let within = Duration::from_secs(120);
    // A collection takes milliseconds; a name still there after this is not
    // coming back (and the harness's own limit is `within`).
    let collected = Duration::from_secs(30);
    let here = wray::runtime_context().node_id;
    // Ray's loop: an actor per round, each holding a CPU, its handle dropped
    // at the end of the round.
    let mut got = Vec::new();
    for i in 0..6 {
        let c = Counter::options().num_cpus(1.0).remote(i * 10);
        got.push(wray::get_timeout(&c.incr(1), within)?);
    }
    println!("six 1-CPU actors in turn: {got:?}");

    // Calls queued before the last handle went still run.
    let c = Counter::options().num_cpus(1.0).remote(0);
    let queued: Vec<_> = (0..5).map(|_| c.incr(1)).collect();
    drop(c);
    println!("calls queued before the handle went: {:?}", wray::get_all(&queued)?);

    // A handle nested in a stored value, or held by a running task, keeps
    // the actor alive after the driver's own handle is dropped.
    let c = Counter::options().name("kept").num_cpus(1.0).remote(10);
    let stored = wray::put(&vec![c.clone()]);
    let gate = Counter::remote(0);
    // On the job's node, needing no CPU (the previous round's actor may
    // still hold its CPU for a moment).
    let pinned = wray::SchedulingStrategy::NodeAffinity { node_id: here.clone(), soft: false };
    let later = bump_after::options().num_cpus(0.0).scheduling_strategy(pinned).remote(c.clone(), gate.clone());
    drop(c);
    let back: Vec<ActorHandle<Counter>> = wray::get(&stored)?;
    println!("through a stored handle: {}", wray::get(&back[0].incr(1))?);
    println!("found by name while a handle lives: {}", wray::get_actor::<Counter>("kept").is_ok());
    drop(back);
    drop(stored);
    // The task's handle is the last: the actor ends when the task does.
    gate.incr(1);
    println!("the running task's call: {}", wray::get_timeout(&later, within)?);
    println!("the name went with the last handle: {}", name_gone_within("kept", collected));
    println!("listed: {:?}", wray::list_named_actors()?);

    if elsewhere {
        // A task on the other node holding the only handle keeps the actor
        // until it ends; a handle returned from there is as good as one
        // made here.
        let there = other_node(&here)?.1;
        let c = Counter::options().name("lent").remote(0);
        let gate = Counter::remote(0);
        let later =
            bump_after::options().num_cpus(0.0).scheduling_strategy(there.clone()).remote(c.clone(), gate.clone());
        drop(c);
        // The thing under test is that nothing happens: a wrong collection
        // has this long to end the actor first.
        std::thread::sleep(Duration::from_millis(200));
        println!("a task elsewhere keeps it: {}", wray::get_actor::<Counter>("lent").is_ok());
        gate.incr(1);
        println!("the task elsewhere's call: {}", wray::get_timeout(&later, within)?);
        println!("gone once the task elsewhere ended: {}", name_gone_within("lent", collected));
        let c = Counter::options().name("returned").remote(0);
        let back = wray::get(&echo_handle::options().num_cpus(0.0).scheduling_strategy(there).remote(c.clone()))?;
        drop(c);
        // Again, nothing must happen meanwhile.
        std::thread::sleep(Duration::from_millis(200));
        println!("through the handle it returned: {}", wray::get(&back.incr(1))?);
        drop(back);
        println!("gone with the returned handle: {}", name_gone_within("returned", collected));
    }

    // An actor holding the only handle to another keeps it alive.
    let mut options = Holder::options();
    if elsewhere {
        options = options.scheduling_strategy(other_node(&here)?.1);
    }
    let holder = options.remote();
    let c = Counter::options().name("held").remote(5);
    wray::get(&holder.hold(c.clone()))?;
    drop(c);
    // The thing under test is that nothing happens: a wrong collection,
    // which takes microseconds, has this long to end the held actor first.
    std::thread::sleep(Duration::from_millis(200));
    println!("an actor holding the only handle calls it: {}", wray::get(&holder.bump())?);
    drop(holder);
    println!("the held actor ended with its holder: {}", name_gone_within("held", collected));

    // An actor never placed (the two below hold every CPU) and never
    // called ends at once: the two CPUs go to the task below, not to it.
    let (a, b) = (Counter::options().num_cpus(1.0).remote(0), Counter::options().num_cpus(1.0).remote(0));
    wray::get(&a.incr(1))?;
    wray::get(&b.incr(1))?;
    let waiting = Counter::options().num_cpus(2.0).remote(0);
    drop(waiting);
    drop((a, b));
    let sum = add::options().num_cpus(2.0).remote(3, 4);
    println!("a 2-CPU task after them: {}", wray::get_timeout(&sum, within)?);
    Ok(())
}

/// `actors-from-afar` (on a cluster): actors that tasks and an actor's
/// method create on another node than the job's are the job's actors like
/// any other — reached from the driver and from every node, by handle and
/// by name, after the task that made them ended, until killed or their last
/// handle is gone; so is an actor a task there looked up by name.
fn actors_from_afar() -> Result<(), Error> {
    let (other, there) = other_node(&wray::runtime_context().node_id)?;
    let made = make_counter::options().scheduling_strategy(there.clone()).remote("afar".to_string(), 40, other.clone());
    let c = wray::get(&made)?;
    // Longer than a task's node keeps the job's state after its last task
    // (`STAND_IN_LINGER`, 500 ms), where such an actor used to live.
    std::thread::sleep(Duration::from_millis(1500));
    println!("a task's actor, called from the driver: {}", wray::get(&c.incr(1))?);
    println!("placed where the task asked: {}", wray::get(&c.node())? == other);
    println!("found by name: {}", wray::get(&wray::get_actor::<Counter>("afar")?.incr(1))?);
    let again = make_counter::options().scheduling_strategy(there.clone()).remote("afar".to_string(), 0, other.clone());
    let taken = wray::get(&again).map(|_| ()).map_err(|e| e.to_string());
    let refused = taken.as_ref().is_err_and(|e| e.contains("an actor named \"afar\" already exists in this job"));
    println!("its name taken again from afar is refused: {refused} ({taken:?})");
    let first = Relay::remote(1, None);
    let second = wray::get(&relay_before::options().scheduling_strategy(there.clone()).remote(2, first.clone()))?;
    println!("a chain made afar on a handle from here: {}", wray::get(&second.pass(10))?);
    let holder = Holder::options().scheduling_strategy(there.clone()).remote();
    let counter = wray::get(&holder.make(5))?;
    println!("an actor's method's actor: {}", wray::get(&counter.incr(1))?);
    println!("placed next to its maker by default: {}", wray::get(&counter.node())? == other);
    wray::kill(&c);
    println!("killed from the driver: {}", wray::get(&c.incr(1)).is_err());

    // Their handles count wherever they are: dropped, they end the actor.
    let collected = Duration::from_secs(30);
    // (The task's result holds a handle too: it goes at the end of the line.)
    let d =
        wray::get(&make_counter::options().scheduling_strategy(there.clone()).remote("dropped".to_string(), 0, other))?;
    println!("a task's actor answers: {}", wray::get(&d.incr(1))?);
    drop(d);
    println!("a task's actor ended with its last handle: {}", name_gone_within("dropped", collected));
    // A task with a handle submitted while every CPU of the cluster is
    // taken: sent nowhere at first (no node has room), it runs once one
    // frees; the copy lent for the attempt comes back.
    let b = Counter::options().name("busy-lent").remote(0);
    let busy: Vec<_> = (0..3).map(|_| sleepy::remote(1500)).collect();
    // Until they hold every CPU (the cluster's view lags by a heartbeat).
    holds_within(Duration::from_secs(1), || wray::available_resources().get("CPU").is_some_and(|c| *c <= 0.0));
    let bumped = bump::remote(b.clone(), 1);
    drop(b);
    println!("a task sent while the cluster was full: {}", wray::get(&bumped)?);
    wray::get_all(&busy)?;
    drop(bumped);
    println!("its actor ended with its last handle: {}", name_gone_within("busy-lent", collected));
    let n = Counter::options().name("looked-up").remote(0);
    let bumped = bump_named::options().scheduling_strategy(there).remote("looked-up".to_string());
    println!("looked up by name from there: {}", wray::get(&bumped)?);
    drop(n);
    println!("an actor looked up from there ended with its last handle: {}", name_gone_within("looked-up", collected));
    Ok(())
}

/// A live node other than `here`, and a (hard) node affinity to it.
fn other_node(here: &str) -> Result<(String, wray::SchedulingStrategy), Error> {
    let other = wray::nodes()?.into_iter().find(|n| n.alive && n.node_id != here);
    let other = other.ok_or_else(|| Error::InvalidArgument("no other node".into()))?.node_id;
    Ok((other.clone(), wray::SchedulingStrategy::NodeAffinity { node_id: other, soft: false }))
}

/// Whether, within `wait` (asked every 10 ms), no actor answers to `name`
/// and `list_named_actors` no longer lists it. The two part for a moment:
/// `get_actor` already fails for an actor whose last handle went, while its
/// name is freed by the collector an instant later.
fn name_gone_within(name: &str, wait: Duration) -> bool {
    holds_within(wait, || {
        wray::get_actor::<Counter>(name).is_err()
            && !wray::list_named_actors().is_ok_and(|n| n.iter().any(|n| n == name))
    })
}

/// Whether `holds` comes true within `wait` (asked every 10 ms).
fn holds_within(wait: Duration, mut holds: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + wait;
    while !holds() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn waits_for_room() -> Result<(), Error> {
    let here = wray::runtime_context().node_id;
    let (a, b) = (Counter::options().num_cpus(1.0).remote(0), Counter::options().num_cpus(1.0).remote(0));
    let (node_a, node_b) = (wray::get(&a.node())?, wray::get(&b.node())?);
    let third = Counter::options().num_cpus(1.0).remote(0);
    let mut asked = third.node();
    // Let the third find every node full and start waiting.
    let ready = wray::wait(std::slice::from_ref(&asked), 1, Some(Duration::from_secs(2))).0;
    println!("third actor waits while both nodes are full: {}", ready.is_empty());
    let freed = if node_a != here { (a, node_a) } else { (b, node_b) };
    wray::kill(&freed.0);
    asked = third.node();
    match wray::get_timeout(&asked, Duration::from_secs(60)) {
        Ok(node) => println!("third actor placed on the freed node: {}", node == freed.1),
        Err(e) => println!("third actor not placed: {e}"),
    }
    Ok(())
}
