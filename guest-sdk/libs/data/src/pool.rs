//! `map_batches` on a pool of actors: for work with state worth keeping
//! between batches — a model loaded once per actor, a connection, a
//! tokenizer. The pool starts `min_size` actors, adds one (up to
//! `max_size`) whenever every actor is busy and a block waits, and kills
//! its actors when the stream ends or is dropped.

use crate::batch::Batch;
use crate::exec::{BlockStream, Exec, Submit, TaskOut, TaskStream};
use crate::ops::Row;
use crate::plan::Code;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wray_guest_core::{ActorHandle, Error};

/// A stateful batch function for [`Dataset::map_batches_on_actors`]: built
/// once per actor from `Args`, then called on batch after batch.
///
/// ```no_run
/// use wray::data::{Batch, BatchMapper};
///
/// struct Scale { factor: f32 }
///
/// impl BatchMapper for Scale {
///     type Args = f32;
///     fn new(factor: f32) -> Result<Self, wray::Error> {
///         Ok(Scale { factor }) // e.g. load a model here, once per actor
///     }
///     fn call(&mut self, batch: Batch) -> Result<Batch, wray::Error> {
///         let x: Vec<f32> = batch.column::<f32>("x")?.iter().map(|v| v * self.factor).collect();
///         batch.with_column("x", x)
///     }
/// }
/// ```
///
/// [`Dataset::map_batches_on_actors`]: crate::Dataset::map_batches_on_actors
pub trait BatchMapper: Sized + 'static {
    /// What the constructor takes (sent to every actor of the pool).
    type Args: Row;
    /// Builds one actor's state.
    fn new(args: Self::Args) -> Result<Self, Error>;
    /// Maps one batch.
    fn call(&mut self, batch: Batch) -> Result<Batch, Error>;
}

/// The size of an actor pool and what each actor holds. The pool never
/// takes the cluster's last CPU slot: the tasks that feed it need one (a
/// pool whose `min_size` would is refused with an error saying so).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ActorPool {
    /// Actors started at once.
    pub min_size: usize,
    /// Actors at most.
    pub max_size: usize,
    /// CPU slots per actor.
    pub num_cpus: f64,
    /// GPUs per actor (fractional allowed).
    pub num_gpus: f64,
}

impl ActorPool {
    /// A pool of `min_size..=max_size` actors of one CPU each.
    pub fn new(min_size: usize, max_size: usize) -> ActorPool {
        ActorPool { min_size: min_size.max(1), max_size: max_size.max(min_size).max(1), num_cpus: 1.0, num_gpus: 0.0 }
    }

    /// A pool of exactly `n` actors.
    pub fn fixed(n: usize) -> ActorPool {
        ActorPool::new(n, n)
    }

    /// CPU slots per actor.
    pub fn num_cpus(mut self, cpus: f64) -> ActorPool {
        self.num_cpus = cpus;
        self
    }

    /// GPUs per actor.
    pub fn num_gpus(mut self, gpus: f64) -> ActorPool {
        self.num_gpus = gpus;
        self
    }
}

pub(crate) type Mapper = Box<dyn FnMut(Batch) -> Result<Batch, Error>>;
pub(crate) type NewFn = fn(&[u8]) -> Result<Mapper, Error>;

pub(crate) fn new_mapper<M: BatchMapper>(args: &[u8]) -> Result<Mapper, Error> {
    let args: M::Args = wray_codec::decode(args).map_err(|e| Error::InvalidArgument(format!("pool arguments: {e}")))?;
    let mut m = M::new(args)?;
    Ok(Box::new(move |b| m.call(b)))
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PoolSpec {
    pub name: String,
    pub code: Code<NewFn>,
    pub args: Vec<u8>,
    pub pool: ActorPool,
    pub batch_size: Option<u64>,
}

/// One actor of a pool.
#[wray::actor]
pub(crate) struct PoolActor {
    name: String,
    mapper: Mapper,
}

#[wray::actor]
impl PoolActor {
    /// Builds the user's mapper.
    pub(crate) fn new(name: String, code: Code<NewFn>, args: Vec<u8>) -> Result<PoolActor, Error> {
        Ok(PoolActor { name, mapper: (code.get()?)(&args)? })
    }

    /// Maps one block.
    pub(crate) fn call(
        &mut self,
        block: Vec<u8>,
        batch_size: Option<u64>,
        index: u64,
        target: u64,
    ) -> Result<TaskOut, Error> {
        crate::exec::run_mapper(block, &self.name, batch_size, index, target, &mut self.mapper)
    }
}

struct Pool {
    actors: Vec<ActorHandle<PoolActor>>,
}

impl Pool {
    /// Kills every actor of the pool.
    fn release(&mut self) {
        for a in self.actors.drain(..) {
            wray_guest_core::kill(&a);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.release();
    }
}

fn start(spec: &PoolSpec) -> Result<ActorHandle<PoolActor>, Error> {
    PoolActor::options().num_cpus(spec.pool.num_cpus).num_gpus(spec.pool.num_gpus).try_remote(
        spec.name.clone(),
        spec.code,
        spec.args.clone(),
    )
}

/// Actors the pool may grow to: as many as leave one CPU slot of the
/// cluster to the tasks that feed the pool and take its blocks — a pool
/// holding every slot would wait forever for blocks no task can make.
fn max_actors(pool: &ActorPool, cluster_cpus: f64) -> Result<usize, Error> {
    let spare = cluster_cpus - 1.0;
    let fits = if pool.num_cpus > 0.0 { (spare / pool.num_cpus + 1e-9).floor().max(0.0) as usize } else { usize::MAX };
    if fits < pool.min_size {
        return Err(Error::InvalidArgument(format!(
            "map_batches_on_actors: {} actors of {} CPU each leave no CPU slot of the cluster's {cluster_cpus} \
             for the tasks that feed them; give each actor less (ActorPool::num_cpus) or start fewer",
            pool.min_size, pool.num_cpus
        )));
    }
    Ok(pool.max_size.min(fits))
}

pub(crate) fn stream(mut upstream: BlockStream, spec: PoolSpec, exec: &Exec) -> Result<BlockStream, Error> {
    let cpus = wray_guest_core::cluster_resources().get("CPU").copied().unwrap_or(0.0);
    let max = max_actors(&spec.pool, cpus)?;
    let pool = Rc::new(RefCell::new(Pool { actors: Vec::new() }));
    for _ in 0..spec.pool.min_size {
        pool.borrow_mut().actors.push(start(&spec)?);
    }
    let released = pool.clone();
    let name = spec.name.clone();
    let busy = Rc::new(Cell::new(0usize));
    let in_flight = busy.clone();
    let target = exec.target;
    let submit: Submit = Box::new(move |index| {
        let block = match upstream.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let mut pool = pool.borrow_mut();
        if pool.actors.is_empty() || (in_flight.get() >= pool.actors.len() && pool.actors.len() < max) {
            match start(&spec) {
                Ok(a) => pool.actors.push(a),
                Err(e) => return Some(Err(e)),
            }
        }
        let actor = &pool.actors[index as usize % pool.actors.len()];
        Some(Ok(actor.call(&block.object, spec.batch_size, index, target)))
    });
    // Two calls per actor keep each busy while its next block is decoded.
    let exec = Exec { in_flight: 2 * max, ..exec.clone() };
    let ops = vec![None, Some(exec.stats.op(&name))];
    let mut s = TaskStream::new(submit, &exec, ops, name);
    s.in_flight_gauge = Some(busy);
    // Every block mapped: the actors are idle, and the CPU slots they hold
    // go back to the stages downstream while the stream still runs (a
    // pool kept until the stream was dropped could starve them for good
    // when its actors sat one per node: seen on a three-node cluster).
    s.on_done = Some(Box::new(move || released.borrow_mut().release()));
    Ok(Box::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_leaves_a_cpu_slot_to_the_tasks_around_it() {
        assert_eq!(max_actors(&ActorPool::new(1, 8), 4.0).unwrap(), 3);
        assert_eq!(max_actors(&ActorPool::new(1, 8).num_cpus(0.5), 4.0).unwrap(), 6);
        assert_eq!(max_actors(&ActorPool::fixed(2).num_cpus(0.5), 2.0).unwrap(), 2);
        assert_eq!(max_actors(&ActorPool::new(1, 3).num_cpus(0.0), 1.0).unwrap(), 3);
        let e = max_actors(&ActorPool::fixed(2), 2.0).unwrap_err().to_string();
        assert!(e.contains("leave no CPU slot") && e.contains("ActorPool::num_cpus"), "{e}");
    }
}
