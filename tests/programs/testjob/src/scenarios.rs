//! The single-node scenarios: the basics, errors, limits, actors,
//! cancellation, spilling and a full store.

use crate::*;

pub(crate) fn basics() -> Result<(), Error> {
    let r = add::remote(1, 2);
    println!("add: {}", wray::get(&r)?);
    println!("ref arg: {}", wray::get(&add::options().num_cpus(0.5).remote(&r, 10))?);
    let puts: Vec<ObjectRef<i64>> = (1..=4).map(|i| wray::put(&i)).collect();
    println!("nested refs in arg: {}", wray::get(&sum_refs::remote(puts))?);
    let made = wray::get(&make_refs::remote(5))?;
    println!("refs returned by a task: {}", wray::get_all(&made)?.iter().sum::<i64>());
    let buf: Vec<f32> = (0..1_000_000).map(|i| (i % 7) as f32).collect();
    let b = wray::put(&buf);
    println!("buffer round trip: {}", wray::get(&b)? == buf);
    let (len, sum) = wray::get(&buffer_stats::remote(&b))?;
    println!("buffer in task: {len} {sum}");
    let p = Point { x: 1.5, label: "p".into(), tags: vec![1, 2] };
    println!("struct: {:?}", wray::get(&scale::remote(p, 2.0))?);
    let c = Counter::remote(5);
    c.incr(2);
    println!("counter: {}", wray::get(&c.get())?);
    println!("actor id: {} hex digits", c.actor_id().len());
    println!("local helper: {}", Counter::doubled(2).n);
    let bumps: Vec<_> = (0..10).map(|_| bump::remote(c.clone(), 1)).collect();
    wray::get_all(&bumps)?;
    println!("counter after tasks: {}", wray::get(&c.get())?);
    let many: Vec<_> = (0..2000).map(|i| add::remote(i, 1)).collect();
    println!("many: {}", wray::get_all(&many)?.into_iter().sum::<i64>());
    // Dependent tasks wait parked for their argument and run where it was
    // made: a chain longer than one worker runs in a row, and a fan-out
    // of tasks waiting for one slow result.
    let mut link = add::remote(0, 1);
    for _ in 1..300 {
        link = add::remote(&link, 1);
    }
    println!("chain: {}", wray::get(&link)?);
    let slow = sleepy::remote(100);
    let fan: Vec<_> = (0..8).map(|_| sleepy::remote(&slow)).collect();
    println!("fan-out: {}", wray::get_all(&fan)?.into_iter().sum::<u64>());
    // `wait` returns the first ready refs in their order, and the rest in
    // theirs; a ref it saw ready once counts without asking again.
    let slow = sleepy::remote(5_000);
    let refs = vec![wray::put(&1u64), slow.clone(), wray::put(&2u64), wray::put(&3u64)];
    let (ready, pending) = wray::wait(&refs, 2, None);
    let (again, left) = wray::wait(&pending, 1, None);
    let (none, still) = wray::wait(&left, 1, Some(Duration::from_millis(20)));
    println!(
        "wait splits: {:?} then {:?}, {} left, {} after a timeout",
        wray::get_all(&ready)?,
        wray::get_all(&again)?,
        left.len(),
        none.len() + 10 * still.len()
    );
    wray::cancel(&slow);
    let res = wray::cluster_resources();
    println!("cluster CPU: {}", res.get("CPU").copied().unwrap_or(0.0));
    println!("nodes: {}", crate::tasks::nodes_line());
    let task = wray::get(&assigned_here::options().num_cpus(0.5).remote())?;
    println!("assigned: driver {:?}, task {task:?}", wray::runtime_context().assigned_resources);
    println!("context task empty in driver: {}", wray::runtime_context().task_id.is_empty());
    Ok(())
}

pub(crate) fn errors() -> Result<(), Error> {
    println!("err: {}", wray::get(&fail::remote("boom".to_string())).unwrap_err());
    println!("panic: {}", wray::get(&explode::remote(7)).unwrap_err());
    let failed = explode::remote(9);
    println!(
        "dependent: {}",
        wray::get(&add::remote(wray::ObjectRef::from_id(failed.id())?, 1))
            .map_err(|e| e.to_string())
            .unwrap_err_or_default()
    );
    println!("still fine: {}", wray::get(&explode::remote(0))?);
    println!("decode: {}", wray::get(&ObjectRef::<String>::from_id(add::remote(1, 1).id())?).unwrap_err());
    Ok(())
}

pub(crate) trait UnwrapErrOrDefault {
    fn unwrap_err_or_default(self) -> String;
}
impl<T, E: std::fmt::Display> UnwrapErrOrDefault for Result<T, E> {
    fn unwrap_err_or_default(self) -> String {
        match self {
            Ok(_) => "unexpected success".into(),
            Err(e) => e.to_string(),
        }
    }
}

pub(crate) fn limits() -> Result<(), Error> {
    let t = spin::options().time_limit(Duration::from_millis(300)).remote();
    println!("loop: {}", wray::get(&t).unwrap_err());
    let m = hog::options().memory_limit(64 << 20).remote();
    println!("memory: {}", wray::get(&m).unwrap_err());
    println!("recursion: {}", wray::get(&recurse::remote()).unwrap_err());
    println!("after limits: {}", wray::get(&add::remote(2, 2))?);
    Ok(())
}

pub(crate) fn actors() -> Result<(), Error> {
    let c = Counter::options().name("main-counter").remote(0);
    println!("named via task: {}", wray::get(&bump_named::remote("main-counter".to_string()))?);
    let again = wray::get_actor::<Counter>("main-counter")?;
    println!("get_actor: {}", wray::get(&again.get())?);
    println!("missing name: {}", wray::get_actor::<Counter>("nobody").unwrap_err());
    let second = Counter::options().name("a-second").remote(0);
    println!("named: {:?}", wray::list_named_actors()?);
    println!("actor names: {:?} {:?}", wray::get(&c.name())?, wray::get(&Counter::remote(0).name())?);
    println!("named from a task: {:?}", wray::get(&named_actors::remote())?);
    wray::kill(&second);
    wray::get(&second.get()).unwrap_err();
    println!("named after a kill: {:?}", wray::list_named_actors()?);
    let dup = Counter::options().name("main-counter").try_remote(1);
    println!("duplicate name: {}", dup.unwrap_err());
    let order: Vec<_> = (1..=50).map(|i| c.incr(i)).collect();
    let seen = wray::get_all(&order)?;
    println!("in order: {}", seen.windows(2).all(|w| w[0] < w[1]));

    // A chain of eight actors, each waiting for the next: deeper than a
    // caller runs actors inline, so the far end is run by a worker.
    let mut next = None;
    for me in 1..=8 {
        next = Some(Relay::remote(me, next));
    }
    let head = next.expect("eight links");
    let sums = (0..20).map(|_| wray::get(&head.pass(0))).collect::<Result<Vec<_>, _>>()?;
    println!("relay through 8 actors, 20 times: {:?}", sums.iter().collect::<std::collections::BTreeSet<_>>());

    let restarting = Counter::options().max_restarts(1).remote(10);
    restarting.incr(5);
    println!("crash: {}", wray::get(&restarting.crash()).unwrap_err());
    println!("after restart: {}", wray::get(&restarting.get())?);
    println!("second crash: {}", wray::get(&restarting.crash()).unwrap_err());
    println!("after restarts used up: {}", wray::get(&restarting.get()).unwrap_err());

    // With max_concurrency > 1 a call whose argument is ready runs before an
    // earlier call still waiting for its argument; by default order is strict.
    for (label, limit) in [("strict", 1), ("concurrent", 4)] {
        let a = Counter::options().max_concurrency(limit).remote(0);
        let first = a.slow(sleepy::options().num_cpus(0.1).remote(300));
        let second = a.slow(1);
        let (ready, _) = wray::wait(&[first.clone(), second.clone()], 1, None);
        println!("{label} actor: later call finished first = {}", ready[0] == second);
    }

    let sleeper = Counter::remote(0);
    let nap = sleeper.slow(30_000);
    std::thread::sleep(Duration::from_millis(100));
    let start = std::time::Instant::now();
    wray::kill(&sleeper);
    println!("killed while sleeping: {}", wray::get(&nap).unwrap_err());
    println!("kill took under a second: {}", start.elapsed() < Duration::from_secs(1));

    // A kill with calls queued behind the running one: the running call
    // ends, and every queued call fails — none runs on the killed actor,
    // whose loop takes queued calls without waiting for a kill between
    // them (it checks for one before each).
    let busy = Counter::remote(0);
    let running = busy.slow(30_000);
    let queued: Vec<_> = (0..1000).map(|_| busy.incr(1)).collect();
    // A head start for the slow call, as for "killed while sleeping" above:
    // nothing a job can observe says an actor's call has begun. Losing the
    // race shows (the first line below would read "was killed: wray::kill").
    std::thread::sleep(Duration::from_millis(100));
    wray::kill(&busy);
    println!("killed with calls queued: {}", wray::get(&running).unwrap_err());
    let failed = queued.iter().filter(|r| wray::get(*r).is_err()).count();
    println!("queued calls failed after the kill: {failed} of 1000");
    println!("the last queued call: {}", wray::get(&queued[999]).unwrap_err());
    // The same with the calls still arriving: a stream of calls taken one
    // after another stops at the kill instead of running to its end.
    let streaming = Counter::remote(0);
    let calls: Vec<_> = (0..1000).map(|_| streaming.slow(2)).collect();
    wray::kill(&streaming);
    let ran = calls.iter().filter(|r| wray::get(*r).is_ok()).count();
    println!("a kill amid a stream of calls stops it: {}", ran < 1000);

    let k = Counter::remote(1);
    wray::get(&k.get())?;
    wray::kill(&k);
    println!("killed: {}", wray::get(&k.get()).unwrap_err());
    // An actor ending itself: for good, though it has restarts left.
    let quitting = Counter::options().max_restarts(3).remote(7);
    println!("before exit_actor: {}", wray::get(&quitting.get())?);
    println!("exit_actor: {}", wray::get(&quitting.quit()).unwrap_err());
    println!("after exit_actor: {}", wray::get(&quitting.get()).unwrap_err());
    let bad = Fragile::remote(false);
    println!("constructor error: {}", wray::get(&bad.ping()).unwrap_err());
    println!("constructor ok: {}", wray::get(&Fragile::remote(true).ping())?);
    Ok(())
}

pub(crate) fn cancel() -> Result<(), Error> {
    let long = sleepy::remote(30_000);
    std::thread::sleep(Duration::from_millis(100));
    let start = std::time::Instant::now();
    wray::cancel(&long);
    println!("cancelled: {}", wray::get(&long).unwrap_err());
    println!("cancel took under a second: {}", start.elapsed() < Duration::from_secs(1));
    // A task waiting for its argument (parked on it when submitted, while
    // it is still being made) ends as soon as it is cancelled, not when
    // its argument is made.
    let making = sleepy::remote(30_000);
    let waiting = sleepy::remote(&making);
    let start = std::time::Instant::now();
    wray::cancel(&waiting);
    println!("cancelled while waiting for its argument: {}", wray::get(&waiting).unwrap_err());
    println!("that cancel took under a second: {}", start.elapsed() < Duration::from_secs(1));
    wray::cancel(&making);
    let spinning = spin::remote();
    std::thread::sleep(Duration::from_millis(100));
    wray::cancel(&spinning);
    println!("cancelled spin: {}", wray::get(&spinning).unwrap_err());
    let (ready, pending) = wray::wait(&[sleepy::remote(5_000)], 1, Some(Duration::from_millis(50)));
    println!("wait timeout: {} {}", ready.len(), pending.len());
    // The caller that gives up on a task it was running itself (it claimed
    // it in `get`) leaves it running: a later `get` has its result.
    let slow = sleepy::remote(300);
    println!("get timeout: {}", wray::get_timeout(&slow, Duration::from_millis(50)).unwrap_err());
    println!("the task went on: {:?}", wray::get(&slow));
    let blocked = waits_for::options().time_limit(Duration::from_millis(300)).remote(900);
    println!("blocked in get past its time limit: {:?}", wray::get(&blocked));
    Ok(())
}

/// Puts 1 MiB objects until the store refuses one (its disk is full), then
/// checks that every object it took is intact, frees half of them and puts
/// again: a full store is an error, never a loss, and recovers when room is
/// made.
pub(crate) fn store_full() -> Result<(), Error> {
    let mut kept: Vec<(u8, ObjectRef<Vec<u8>>)> = Vec::new();
    let refusal = loop {
        let fill = kept.len() as u8;
        match wray::try_put(&vec![fill; 1 << 20]) {
            Ok(r) => kept.push((fill, r)),
            Err(e) => break e,
        }
        if kept.len() == 256 {
            println!("store full: never refused");
            return Ok(());
        }
    };
    println!("refused after {} objects: {refusal}", kept.len());
    // A task's result meets the same full store.
    println!("task result: {}", wray::get(&make_buffer::remote(1 << 20)).map(|v| v.len()).unwrap_err());
    let intact = kept.iter().filter(|(fill, r)| wray::get(r).is_ok_and(|v| v.iter().all(|b| b == fill))).count();
    println!("intact: {intact} of {}", kept.len());
    kept.truncate(kept.len() / 2);
    println!("after freeing half: {}", wray::try_put(&vec![7u8; 1 << 20]).is_ok());
    Ok(())
}

#[wray::remote]
pub(crate) fn make_buffer(len: usize) -> Vec<u8> {
    vec![3; len]
}

/// Puts `n` objects of `mib` MiB each, then reads every one back.
pub(crate) fn spill(n: usize, mib: usize) -> Result<(), Error> {
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..n).map(|i| wray::put(&vec![i as u8; mib << 20])).collect();
    let mut ok = 0;
    for (i, r) in refs.iter().enumerate() {
        let v = wray::get(r)?;
        if v.len() == mib << 20 && v.iter().all(|b| *b == i as u8) {
            ok += 1;
        }
    }
    println!("spill: {ok} of {n} objects intact");
    Ok(())
}

/// How many of `nodes` each node got, most first ("2 2 2").
fn per_node(nodes: Vec<String>) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for n in nodes {
        *counts.entry(n).or_default() += 1;
    }
    let mut counts: Vec<usize> = counts.into_values().collect();
    counts.sort_by(|a, b| b.cmp(a));
    counts.iter().map(usize::to_string).collect::<Vec<_>>().join(" ")
}

/// SPREAD takes the nodes with room in turn (the job's node included);
/// DEFAULT keeps work on the job's node while it has room. Run on a head
/// and two workers (one CPU each, `spot` on the workers only).
pub(crate) fn spread_strategy() -> Result<(), Error> {
    let spread = wray::SchedulingStrategy::Spread;
    let actors: Vec<_> = (0..6).map(|i| Counter::options().scheduling_strategy(spread.clone()).remote(i)).collect();
    let nodes = wray::get_all(&actors.iter().map(|c| c.node()).collect::<Vec<_>>())?;
    println!("spread actors per node: {}", per_node(nodes));
    let packed: Vec<_> = (0..6).map(Counter::remote).collect();
    let nodes = wray::get_all(&packed.iter().map(|c| c.node()).collect::<Vec<_>>())?;
    println!("default actors per node: {}", per_node(nodes));
    // Half a CPU each, together long enough to overlap: two fit per node.
    let tasks: Vec<_> = (0..6)
        .map(|_| where_with::options().num_cpus(0.5).scheduling_strategy(spread.clone()).remote(Vec::new(), 300))
        .collect();
    println!("spread tasks per node: {}", per_node(wray::get_all(&tasks)?.into_iter().map(|(_, n)| n).collect()));
    let tasks: Vec<_> = (0..6).map(|_| where_with::options().num_cpus(0.0).remote(Vec::new(), 0)).collect();
    println!("default tasks per node: {}", per_node(wray::get_all(&tasks)?.into_iter().map(|(_, n)| n).collect()));
    // Submitted on a worker: its own turn keeps a task there.
    let (from, nodes) = wray::get(&spread_from_here::options().num_cpus(0.0).resource("spot", 1.0).remote(3))?;
    let here = wray::runtime_context().node_id;
    println!(
        "spread from a worker: {} (from a worker: {}, its own node among them: {})",
        per_node(nodes.clone()),
        from != here,
        nodes.contains(&from)
    );
    // With a placement group the bundle decides: refused.
    let group = wray::placement_group(&[&[("CPU", 0.5)]], wray::PlacementStrategy::Pack)?;
    let refused = Counter::options().placement_group(&group, 0).scheduling_strategy(spread).try_remote(0);
    println!("spread in a placement group: {}", refused.map_or_else(|e| e.to_string(), |_| "created".into()));
    Ok(())
}

/// Node affinity on any node: to the job's own node, and to one that does
/// not exist (hard fails naming it; soft runs anyway).
pub(crate) fn node_affinity_basics() -> Result<(), Error> {
    let here = wray::runtime_context().node_id;
    let pin = |node: &str, soft| wray::SchedulingStrategy::NodeAffinity { node_id: node.to_string(), soft };
    let (_, ran) =
        wray::get(&where_with::options().num_cpus(0.0).scheduling_strategy(pin(&here, false)).remote(Vec::new(), 0))?;
    println!("pinned to the job's node runs there: {}", ran == here);
    let missing =
        wray::get(&where_with::options().scheduling_strategy(pin("node-nowhere", false)).remote(Vec::new(), 0));
    println!("pinned to a missing node: {}", missing.map_or_else(|e| e.to_string(), |_| "ran".into()));
    let actor = Counter::options().scheduling_strategy(pin("node-nowhere", false)).remote(0);
    println!("actor pinned to a missing node: {}", wray::get(&actor.node()).unwrap_or_else(|e| e.to_string()));
    let soft = wray::get(&where_with::options().scheduling_strategy(pin("node-nowhere", true)).remote(Vec::new(), 0));
    println!("soft affinity to a missing node runs: {}", soft.is_ok());
    Ok(())
}

/// Node affinity on a head and two workers (one CPU each, `spot` on the
/// workers only): hard affinity keeps tasks and an actor on the named
/// worker even when it is busy, from the job's node and from a worker;
/// soft affinity leaves a busy node for one with room.
pub(crate) fn node_affinity() -> Result<(), Error> {
    node_affinity_basics()?;
    let here = wray::runtime_context().node_id;
    let spread = wray::SchedulingStrategy::Spread;
    let probes: Vec<_> =
        (0..3).map(|i| Counter::options().num_cpus(0.0).scheduling_strategy(spread.clone()).remote(i)).collect();
    let mut workers: Vec<String> = wray::get_all(&probes.iter().map(|c| c.node()).collect::<Vec<_>>())?;
    workers.sort();
    workers.dedup();
    workers.retain(|n| *n != here);
    println!("workers found: {}", workers.len());
    let [a, b] = <[String; 2]>::try_from(workers).map_err(|w| Error::InvalidArgument(format!("workers: {w:?}")))?;
    let pin = |node: &str, soft| wray::SchedulingStrategy::NodeAffinity { node_id: node.to_string(), soft };
    // Four whole-CPU tasks on a one-CPU worker: they queue there.
    let tasks: Vec<_> =
        (0..4).map(|_| where_with::options().scheduling_strategy(pin(&b, false)).remote(Vec::new(), 100)).collect();
    let on_b = wray::get_all(&tasks)?.into_iter().filter(|(_, n)| *n == b).count();
    println!("hard affinity tasks on the named worker: {on_b} of 4");
    // The actor holds B's one CPU once placed (its answer says it is),
    // so B is busy: a soft task for B goes where there is room.
    let actor = Counter::options().num_cpus(1.0).scheduling_strategy(pin(&b, false)).remote(0);
    println!("hard affinity actor on the named worker: {}", wray::get(&actor.node())? == b);
    let (_, soft) = wray::get(&where_with::options().scheduling_strategy(pin(&b, true)).remote(Vec::new(), 0))?;
    println!("soft affinity to a busy worker went elsewhere: {}", soft != b);
    wray::kill(&actor);
    // Submitted on worker A, pinned to the head and to B.
    let on_a = |node: &str| {
        pinned_from_here::options().num_cpus(0.0).scheduling_strategy(pin(&a, false)).remote(node.to_string())
    };
    let (from, ran) = wray::get(&on_a(&here))?;
    println!("from a worker, pinned to the head: {}", from == a && ran == here);
    let (from, ran) = wray::get(&on_a(&b))?;
    println!("from a worker, pinned to the other worker: {}", from == a && ran == b);
    Ok(())
}

/// Every task that does not ask for reuse runs in an instance of its own:
/// one after another (instances made ahead and the ended tasks' dropped on
/// the idle core) and in a batch. What an ended task's instance kept alive
/// is freed once the instance is dropped, wherever that happens.
pub(crate) fn fresh_instances() -> Result<(), Error> {
    let ones = |counts: &[u64]| counts.iter().filter(|&&c| c == 1).count();
    let counts = (0..100).map(|_| wray::get(&count_calls::remote())).collect::<Result<Vec<_>, _>>()?;
    println!("one after another, fresh: {} of {}", ones(&counts), counts.len());
    let refs: Vec<_> = (0..100).map(|_| count_calls::remote()).collect();
    let counts = wray::get_all(&refs)?;
    println!("in a batch, fresh: {} of {}", ones(&counts), counts.len());
    let r = wray::put(&7u64);
    let id = r.id();
    wray::get(&keep_in_instance::remote(id))?;
    drop(r);
    let freed = poll_until(Duration::from_secs(10), || Ok(ObjectRef::<u64>::from_id(id).is_err()))?;
    println!("kept by an ended task's instance, then freed: {freed}");
    Ok(())
}

/// `reuse_instance(true)`, one task after another (one CPU): a succeeded
/// task's instance runs the next reusing task of the job (a static keeps
/// counting); a failed one's is dropped; instances are kept per memory
/// limit; a task that does not ask gets a fresh instance and leaves the
/// idle one alone; the driver's instance is its own.
pub(crate) fn reused_instances() -> Result<(), Error> {
    let reused = || count_calls::options().reuse_instance(true).remote();
    let counts = (0..5).map(|_| wray::get(&reused())).collect::<Result<Vec<_>, _>>()?;
    println!("one after another: {counts:?}");
    println!("not asking: {}", wray::get(&count_calls::remote())?);
    println!("asking again: {}", wray::get(&reused())?);
    let failed = wray::get(&count_calls_then_fail::options().reuse_instance(true).remote());
    println!("failed task: {}", if failed.is_err() { "its instance is dropped" } else { "succeeded?" });
    println!("after the failure: {}", wray::get(&reused())?);
    let other = || count_calls::options().reuse_instance(true).memory_limit(64 << 20).remote();
    let counts = (0..3).map(|_| wray::get(&other())).collect::<Result<Vec<_>, _>>()?;
    println!("another memory limit: {counts:?}");
    println!("back to the first: {}", wray::get(&reused())?);
    println!("in the driver: {}", calls_here());
    // max_calls(2): at most two runs of the function per instance (the
    // first here in the instance above, which ran it uncounted).
    let capped = || count_calls::options().reuse_instance(true).max_calls(2).remote();
    let counts = (0..5).map(|_| wray::get(&capped())).collect::<Result<Vec<_>, _>>()?;
    println!("max_calls(2): {counts:?}");
    Ok(())
}

/// The values of environment variables `names` in this instance.
#[wray::remote]
pub(crate) fn env_of(names: Vec<String>) -> Vec<Option<String>> {
    names.iter().map(|n| std::env::var(n).ok()).collect()
}

/// `env_of(["OWN", "JOBWIDE"])` submitted from inside a task.
#[wray::remote]
pub(crate) fn nested_env() -> Result<Vec<Option<String>>, Error> {
    wray::get(&env_of::remote(vec!["OWN".into(), "GRANTED".into()]))
}

/// An actor reporting its environment.
pub(crate) struct EnvReader;

#[wray::actor]
impl EnvReader {
    pub fn new() -> EnvReader {
        EnvReader
    }
    pub fn read(&mut self, name: String) -> Option<String> {
        std::env::var(name).ok()
    }
    pub fn assigned(&mut self) -> std::collections::BTreeMap<String, f64> {
        wray::runtime_context().assigned_resources
    }
}

/// A task's and an actor's own environment variables (Ray's `runtime_env`
/// `env_vars`), over the job's granted ones; run with `--env GRANTED=job`.
pub(crate) fn environments() -> Result<(), Error> {
    let names = || vec!["GRANTED".to_string(), "OWN".to_string()];
    println!("granted: {:?}", wray::get(&env_of::remote(names()))?);
    let own = env_of::options().env("OWN", "a").env("GRANTED", "task").remote(names());
    println!("the task's own: {:?}", wray::get(&own)?);
    // Reused instances serve only tasks with the same variables.
    let reused = |own: &str| env_of::options().reuse_instance(true).env("OWN", own).remote(names());
    let seen = ["x", "y", "x", "y"].map(|v| wray::get(&reused(v)).map(|e| e[1].clone().unwrap_or_default()));
    println!("reused, alternating: {:?}", seen.into_iter().collect::<Result<Vec<_>, _>>()?);
    let plain = env_of::options().reuse_instance(true).remote(names());
    println!("reused, none set: {:?}", wray::get(&plain)?);
    println!("inherited: {:?}", wray::get(&nested_env::options().env("OWN", "outer").remote())?);
    let actor = EnvReader::options().env("OWN", "actor").remote();
    println!("an actor's: {:?}", wray::get(&actor.read("OWN".to_string()))?);
    // An actor of no CPU (the default) holds nothing.
    println!("an actor holds: {:?}", wray::get(&actor.assigned())?);
    match EnvReader::options().env("A=B", "1").try_remote() {
        Err(e) => println!("a bad name: {e}"),
        Ok(_) => println!("a bad name: accepted"),
    }
    Ok(())
}

/// What this task holds, as `runtime_context` reports it.
#[wray::remote]
pub(crate) fn assigned_here() -> std::collections::BTreeMap<String, f64> {
    wray::runtime_context().assigned_resources
}

/// Tasks that queue for a node's CPUs start in the order they were
/// submitted (run with `--cpus 1`): a burst behind one that holds the CPU,
/// waited for with `wait` (which runs nothing itself, unlike `get`).
pub(crate) fn queue_order() -> Result<(), Error> {
    let mut refs = vec![timed_sleep::remote(300)];
    // It holds the CPU before the burst comes.
    let started = std::time::Instant::now();
    while wray::available_resources().get("CPU").is_some_and(|&free| free >= 1.0) {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(Error::InvalidArgument("the first task never took the CPU".into()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    refs.extend((0..8).map(|_| timed_sleep::remote(10)));
    let (ready, _) = wray::wait(&refs, refs.len(), None);
    let starts: Vec<u64> = wray::get_all(&ready)?.into_iter().map(|(start, _)| start).collect();
    println!("started in submission order: {}", starts.windows(2).all(|w| w[0] <= w[1]));
    Ok(())
}

/// Generator tasks: items in order and as they come, failures after
/// items, nested refs in items, a retried generator, one read in a task.
/// With a resource name as argument, the generators run where it is (a
/// worker of a cluster) and their items come over the network.
pub(crate) fn generators(on: Option<&str>) -> Result<(), Error> {
    // The options of function `f`, placed where `on` says.
    macro_rules! placed {
        ($f:ident) => {
            match on {
                Some(r) => $f::options().resource(r, 1.0),
                None => $f::options(),
            }
        };
    }
    let items: Vec<u32> = placed!(countdown).remote(3).map(|r| wray::get(&r?)).collect::<Result<_, _>>()?;
    println!("countdown: {items:?}");
    let empty = placed!(countdown).remote(0).count();
    println!("one item: {empty}");

    // The first item arrives while the task still makes the others.
    let mut stream = placed!(slow_items).remote(3, 300);
    let first = stream.next().expect("an item")?;
    let (ended, _) = wray::wait(std::slice::from_ref(stream.result()), 1, Some(Duration::ZERO));
    let (i, node) = wray::get(&first)?;
    println!("first item {i} before the task ended: {}", ended.is_empty());
    println!("made here: {}", node == wray::runtime_context().node_id);
    println!(
        "then: {}",
        stream
            .map(|r| r.and_then(|r| wray::get(&r)).map(|(i, _)| i.to_string()))
            .collect::<Result<Vec<_>, _>>()?
            .join(",")
    );

    // A failure after two items: the items, then the error, then the end.
    let mut stream = placed!(fails_after).remote(2);
    let mut seen = Vec::new();
    for item in stream.by_ref() {
        match item {
            Ok(r) => seen.push(wray::get(&r)?.to_string()),
            Err(e) => seen
                .push(format!("error ({})", if e.to_string().contains("no item 2") { "no item 2" } else { "other" })),
        }
    }
    println!("fails after two: {}", seen.join(", "));
    println!("after the error: {:?}", stream.next().is_none());
    println!("its result: {}", wray::get(stream.result()).is_err());
    let early: Vec<String> = placed!(checked_items)
        .remote(-1)
        .map(|r| r.map_or_else(|e| format!("error: {e}"), |_| "item".into()))
        .collect();
    println!("fails before any: {}", early.len() == 1 && early[0].contains("cannot count to -1"));
    let some: Vec<i32> = placed!(checked_items).remote(3).map(|r| wray::get(&r?)).collect::<Result<_, _>>()?;
    println!("checked: {some:?}");

    // Items read in batches: the generator has ended before its reader
    // begins, so the reader is handed them many at a time, the small ones
    // (up to 1 KiB) with their values. Every value is right however it is
    // read: a first `get`, a second one, `get_all`, and `wait` finds them
    // all ready.
    let sizes = vec![8, 1000, 1020, 1030, 4000, 0];
    let expected: Vec<Vec<u8>> = (0..200u32).map(|i| vec![i as u8; sizes[i as usize % sizes.len()] as usize]).collect();
    let stream = placed!(sized_items).remote(200, sizes);
    wray::wait(std::slice::from_ref(stream.result()), 1, None);
    let refs: Vec<ObjectRef<Vec<u8>>> = stream.collect::<Result<_, _>>()?;
    let first: Vec<Vec<u8>> = refs.iter().map(wray::get).collect::<Result<_, _>>()?;
    let again: Vec<Vec<u8>> = refs.iter().map(wray::get).collect::<Result<_, _>>()?;
    let (ready, _) = wray::wait(&refs, refs.len(), Some(Duration::ZERO));
    let fresh: Vec<ObjectRef<Vec<u8>>> = placed!(sized_items).remote(200, vec![8, 1030]).collect::<Result<_, _>>()?;
    let all = wray::get_all(&fresh)?;
    println!(
        "in batches: {} items, values right: {}, again: {}, all ready: {}, get_all: {}",
        refs.len(),
        first == expected,
        again == expected,
        ready.len() == refs.len(),
        all.iter().enumerate().all(|(i, v)| *v == vec![i as u8; if i % 2 == 0 { 8 } else { 1030 }]),
    );

    if on.is_none() {
        // 40 MB of items collected unread by a task limited to 32 MiB.
        let read = wray::get(&collect_then_read::options().memory_limit(32 << 20).remote(40_000));
        println!("collected unread past the task's memory: {read:?}");
    }

    // Items nesting refs to objects the generator put.
    let mut values = Vec::new();
    for item in placed!(put_items).remote(3) {
        let refs = wray::get(&item?)?;
        values.push(wray::get_all(&refs)?);
    }
    println!("nested: {values:?}");

    // Items kept after the generator is dropped, and passed to a task.
    let kept: Vec<ObjectRef<u32>> = placed!(countdown).remote(2).collect::<Result<_, _>>()?;
    println!("kept: {}", wray::get(&add::remote(wray::get(&kept[0])? as i64, wray::get(&kept[2])? as i64))?);

    // A retried generator: its first attempt yields 0 and 1, then fails;
    // the retry's 0 and 1 are the same items, not new ones.
    let attempts = Counter::remote(0);
    let items: Vec<u32> = placed!(flaky_items)
        .max_retries(1)
        .retry_exceptions(true)
        .remote(attempts.clone())
        .map(|r| wray::get(&r?))
        .collect::<Result<_, _>>()?;
    println!("retried: {items:?} in {} attempts", wray::get(&attempts.get())?);

    println!("read in a task: {}", wray::get(&placed!(sum_countdown).remote(4))?);

    // Waiting for an item with a bound, then cancelling the generator:
    // the items before, then the cancellation, then the end.
    let mut stream = placed!(slow_items).remote(10, 500);
    let first = stream.next_timeout(Duration::from_secs(30));
    let second = stream.next_timeout(Duration::from_millis(50));
    println!(
        "next_timeout: an item, then timed out: {}",
        matches!(first, Some(Ok(_))) && matches!(second, Some(Err(Error::Timeout)))
    );
    wray::cancel(stream.result());
    let rest: Vec<Result<ObjectRef<(u32, String)>, Error>> = stream.by_ref().collect();
    // (Any items yielded before the cancellation took effect come first.)
    let ok = rest.iter().rev().skip(1).all(|r| r.is_ok());
    println!(
        "cancelled: items, then {:?}",
        rest.last().filter(|_| ok).map(|r| r.as_ref().map(|_| ()).map_err(|e| e.to_string()))
    );

    // A generator nobody holds any more stops at its next item: what it
    // holds (a CPU here, the placed resource elsewhere) comes back long
    // before its 100 items, 100 ms apart, are done.
    let held = on.unwrap_or("CPU");
    let total = wray::cluster_resources().get(held).copied().unwrap_or(0.0);
    let comes_back = || {
        let dropped = std::time::Instant::now();
        while wray::available_resources().get(held).is_none_or(|&free| free < total)
            && dropped.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        dropped.elapsed() < Duration::from_secs(5)
    };
    let mut stream = placed!(slow_items).remote(100, 100);
    drop(stream.next().expect("an item")?);
    drop(stream);
    println!("dropped: the generator stopped early: {}", comes_back());

    // With a window of 2, a generator pauses while two of its items wait
    // unread: a slow reader never finds more than that many made ahead of
    // it. Elsewhere, what is in flight between the nodes comes on top —
    // up to a stream's 16 MiB — so the items there are of 1 MiB.
    let (count, size) = if on.is_some() { (60, 1 << 20) } else { (30, 16) };
    let bounded = most_ahead(placed!(stamped_items).generator_backpressure(2).remote(count, size))?;
    let unbounded = most_ahead(placed!(stamped_items).remote(count, size))?;
    println!("backpressure: at most {bounded} made ahead with a window of 2, {unbounded} without");
    // Dropped while it waits for its reader, it stops too.
    let mut stream = placed!(stamped_items).generator_backpressure(2).remote(count, size);
    drop(stream.next().expect("an item")?);
    // Time to fill its window and pause: the pause is what is under test.
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    println!("dropped while paused: stopped: {}", comes_back());

    // A generator method of an actor, the actor placed as the tasks were.
    let counter = match on {
        Some(r) => Counter::options().resource(r, 1.0).remote(10),
        None => Counter::remote(10),
    };
    let mut counts = counter.count_up(3, 300);
    let first = counts.next().expect("an item")?;
    let (ended, _) = wray::wait(std::slice::from_ref(counts.result()), 1, Some(Duration::ZERO));
    println!("first count {} before the call ended: {}", wray::get(&first)?, ended.is_empty());
    let rest: Vec<i64> = counts.map(|r| wray::get(&r?)).collect::<Result<_, _>>()?;
    println!("then counts: {rest:?}, the actor at {}", wray::get(&counter.get())?);
    // A method's generator paced by its reader, through a handle with a
    // window of 2, as the tasks above; the handle without it is not.
    let bounded = most_ahead(counter.with_generator_backpressure(2).stamped(count, size))?;
    let unbounded = most_ahead(counter.stamped(count, size))?;
    println!("method backpressure: at most {bounded} made ahead with a window of 2, {unbounded} without");
    // Dropped after its first item, the method stops at a later yield, on
    // the actor's node too: the actor's next call does not wait behind the
    // rest of 100 items 100 ms apart.
    let mut counts = counter.count_up(100, 100);
    drop(counts.next().expect("an item")?);
    drop(counts);
    let dropped = std::time::Instant::now();
    wray::get(&counter.get())?;
    println!("dropped method: stopped early: {}", dropped.elapsed() < Duration::from_secs(5));
    // An actor on the job's node, its generator read by a placed task.
    let home = Counter::remote(0);
    println!("counts read in a task: {}", wray::get(&placed!(sum_counts).remote(home.clone(), 4))?);
    println!("dropped method in a task: stopped early: {}", wray::get(&placed!(drop_counts).remote(home.clone()))?);
    let bounded = wray::get(&placed!(method_ahead).remote(home.clone(), 2, count, size))?;
    let unbounded = wray::get(&placed!(method_ahead).remote(home, 0, count, size))?;
    println!("method backpressure in a task: at most {bounded} made ahead with a window of 2, {unbounded} without");
    Ok(())
}

/// At most how many items of a generator of `stamped_items` (or an actor's
/// `stamped`) were made past the one its reader asked for, when it asked —
/// the reader being slow: one item every 20 ms.
pub(crate) fn most_ahead(mut stream: wray::ObjectRefGenerator<(u64, Vec<u8>)>) -> Result<usize, Error> {
    let (mut asked_at, mut made_at) = (Vec::new(), Vec::new());
    // Late to begin: a generator without a bound makes all of its items
    // and ends meanwhile; one with a bound has two seconds to run as
    // far ahead as it can.
    wray::wait(std::slice::from_ref(stream.result()), 1, Some(Duration::from_secs(2)));
    loop {
        // Timed before the ask: once item k is taken the generator may
        // make item k + 2 at once, before the reader's next line runs.
        let asked = micros_now();
        let Some(item) = stream.next() else { break };
        asked_at.push(asked);
        made_at.push(wray::get(&item?)?.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    // When item k was asked for, how many after it were already made.
    Ok((0..asked_at.len())
        .map(|k| made_at.iter().filter(|&&t| t < asked_at[k]).count().saturating_sub(k + 1))
        .max()
        .unwrap_or(0))
}

/// Asks `done` every millisecond until it says so (`true`) or `within` has
/// passed (`false`): for a condition another task or the host brings
/// about, not for a length of time.
pub(crate) fn poll_until(within: Duration, mut done: impl FnMut() -> Result<bool, Error>) -> Result<bool, Error> {
    let start = std::time::Instant::now();
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() > within {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls until the object `id` is freed: how long that took after it was
/// first seen alive (which the named actor `seen` is told).
#[wray::remote]
pub(crate) fn watch_freed(id: wray::ObjectId, seen: String) -> Result<u64, Error> {
    let mut alive_since = None;
    while alive_since.is_none_or(|t: std::time::Instant| t.elapsed() < std::time::Duration::from_secs(10)) {
        match ObjectRef::<u64>::from_id(id) {
            Ok(r) => {
                drop(r);
                if alive_since.is_none() {
                    alive_since = Some(std::time::Instant::now());
                    wray::get(&wray::get_actor::<Counter>(&seen)?.incr(1))?;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(_) => break,
        }
    }
    Ok(alive_since.map_or(0, |t| t.elapsed().as_millis() as u64))
}

/// A ref dropped by a guest that then computes without calling the host
/// for two seconds is released within about a tick, not when it next
/// calls: a task watching the object sees it freed early.
pub(crate) fn release_while_computing() -> Result<(), Error> {
    let seen = Counter::options().name("release-seen").remote(0);
    let r = wray::put(&7u64);
    let watcher = watch_freed::remote(r.id(), "release-seen".to_string());
    // The watcher has seen the object alive before it is dropped, however
    // slowly the machine starts the task.
    if !poll_until(Duration::from_secs(60), || Ok(wray::get(&seen.get())? > 0))? {
        println!("the watcher never saw the object");
        return Ok(());
    }
    println!("watched alive: true");
    drop(r);
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < std::time::Duration::from_secs(2) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let ms = wray::get(&watcher)?;
    println!("freed while the dropper computed: {}", ms < 1_500);
    Ok(())
}

/// Calls queued behind each other settle their results in batches; a call
/// that waits for an earlier call's result — of its own actor, still in
/// the batch — must not wait for ever. Each round: a slow call (so that the
/// next ones are queued when it ends), then calls reading the slow one's
/// result and the one before theirs.
pub(crate) fn actor_reads_its_own_results() -> Result<(), Error> {
    let c = Counter::remote(0);
    let mut last = 0;
    for round in 0..5u64 {
        let slow = c.slow(50 + round);
        let first = c.add_result_of(slow.id());
        let quick = c.incr(1);
        let second = c.add_result_of(slow.id());
        last = wray::get(&second)?;
        wray::get(&first)?;
        wray::get(&quick)?;
    }
    // Each round adds twice its slow call's 50 + round, plus one.
    println!("own results read: {last}");
    Ok(())
}
