//! Identifiers. Task ids are derived from their parent task and the parent's
//! submission counter, and object ids from the task that creates them, so that
//! a re-run of the same task in the same job produces the same ids (what
//! lineage reconstruction needs).

use std::fmt;

/// A job: one run of a job component's `main`. Unique within a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u32);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job-{:04}", self.0)
    }
}

/// A task: one invocation of a remote function, an actor constructor or an
/// actor method — or the driver itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u128);

impl TaskId {
    /// The driver task of `job`: the root every other task id descends from.
    pub fn driver(job: JobId) -> TaskId {
        TaskId::root(0, job)
    }

    /// The driver task of `job` on a node whose job ids are made unique in
    /// the cluster by `salt` (job ids count from 1 on every node; the salt,
    /// random per node, keeps the tasks and objects of two nodes' job 1
    /// apart when they meet on a third node).
    pub fn root(salt: u64, job: JobId) -> TaskId {
        TaskId(mix((u128::from(salt) << 32) | u128::from(job.0), 0x5772_6179_6472_6976))
    }

    /// The `n`th task submitted by `self`. Deterministic: the same parent and
    /// counter always give the same child.
    pub fn child(self, n: u64) -> TaskId {
        TaskId(mix(self.0, u128::from(n)))
    }

    /// High and low halves, as the WIT `object-id` record carries them.
    pub fn halves(self) -> (u64, u64) {
        ((self.0 >> 64) as u64, self.0 as u64)
    }

    /// Inverse of [`TaskId::halves`].
    pub fn from_halves(hi: u64, lo: u64) -> TaskId {
        TaskId((u128::from(hi) << 64) | u128::from(lo))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// An object: output `index` of task `task` (0 = return value, 1.. = puts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// The task that creates the object.
    pub task: TaskId,
    /// Which of the task's outputs it is.
    pub index: u32,
}

impl ObjectId {
    /// The return value of `task`.
    pub fn returned_by(task: TaskId) -> ObjectId {
        ObjectId { task, index: 0 }
    }

    /// The `n`th object `task` put (n starts at 1, and stays below
    /// [`ObjectId::FIRST_ITEM`]).
    pub fn put_by(task: TaskId, n: u32) -> ObjectId {
        ObjectId { task, index: n }
    }

    /// Where a generator task's items start among its outputs: a task's
    /// puts are numbered from 1 below it, its items from it, so that a
    /// retried generator yields its items under the ids the first attempt
    /// gave them whatever it put in between.
    pub const FIRST_ITEM: u32 = 1 << 31;

    /// Item `n` (from 0) a generator task yielded.
    pub fn item_of(task: TaskId, n: u32) -> ObjectId {
        debug_assert!(n < Self::FIRST_ITEM);
        ObjectId { task, index: Self::FIRST_ITEM + n }
    }

    /// The index of an actor's handle object: above every item a
    /// generator may yield (`limits::MAX_GENERATOR_ITEMS`), and an actor's
    /// creation task yields none.
    const ACTOR_HANDLE: u32 = u32::MAX;

    /// The object whose references are the handles of the actor that
    /// task `creator` created: empty, it lives while a handle does — in a
    /// guest, nested in a value, in a task's arguments — and its freeing
    /// lets the actor end (`actors.handle` in the WIT).
    pub fn actor_handle(creator: TaskId) -> ObjectId {
        ObjectId { task: creator, index: Self::ACTOR_HANDLE }
    }

    /// Whether this is an actor's handle object.
    pub fn is_actor_handle(self) -> bool {
        self.index == Self::ACTOR_HANDLE
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.task, self.index)
    }
}

/// An actor, unique within a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(pub u128);

impl ActorId {
    /// The actor created by task `creator` (each actor has its own creation
    /// task, so this is unique).
    pub fn created_by(creator: TaskId) -> ActorId {
        ActorId(mix(creator.0, 0x0061_6374_6f72))
    }

    /// High and low halves, as the WIT `actor-id` record carries them.
    pub fn halves(self) -> (u64, u64) {
        ((self.0 >> 64) as u64, self.0 as u64)
    }

    /// Inverse of [`ActorId::halves`].
    pub fn from_halves(hi: u64, lo: u64) -> ActorId {
        ActorId((u128::from(hi) << 64) | u128::from(lo))
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor-{:032x}", self.0)
    }
}

/// A 128-bit mixing function (two rounds of a splitmix-style finalizer over
/// each half, cross-fed). Ids are not secrets — guests cannot choose them and
/// every id a guest presents is checked against the store — so a fast,
/// well-distributed mix is enough; collisions are as unlikely as for random
/// 128-bit values.
fn mix(a: u128, b: u128) -> u128 {
    fn fmix(mut x: u64) -> u64 {
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    let (ah, al) = ((a >> 64) as u64, a as u64);
    let (bh, bl) = ((b >> 64) as u64, b as u64);
    let lo = fmix(al ^ fmix(bl.wrapping_add(0x9e37_79b9_7f4a_7c15)) ^ ah.rotate_left(17));
    let hi = fmix(ah ^ fmix(bh.wrapping_add(lo)) ^ al.rotate_left(41));
    (u128::from(hi) << 64) | u128::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn child_ids_are_deterministic_and_distinct() {
        let root = TaskId::driver(JobId(1));
        assert_eq!(root.child(7), root.child(7));
        let mut seen = HashSet::new();
        for n in 0..10_000 {
            assert!(seen.insert(root.child(n)));
            assert!(seen.insert(root.child(n).child(0)));
        }
        assert_ne!(TaskId::driver(JobId(1)), TaskId::driver(JobId(2)));
    }

    #[test]
    fn halves_round_trip() {
        let t = TaskId::driver(JobId(3)).child(9);
        let (hi, lo) = t.halves();
        assert_eq!(TaskId::from_halves(hi, lo), t);
        let a = ActorId::created_by(t);
        let (hi, lo) = a.halves();
        assert_eq!(ActorId::from_halves(hi, lo), a);
    }
}
