//! Meeting points (`meeting` in `wit/runtime.wit`): where members of a
//! collective group that run on this node hand each other buffers.
//!
//! Before them, members met only through a rendezvous actor: a rank that
//! came early asked the actor again and again (the actor runs one call at a
//! time, so it cannot hold a caller), and one allreduce of a small model's
//! gradients cost ~0.2 ms of actor round trips and sleeps. Here a member's
//! host call waits on a [`Notify`] until the round is complete and is woken
//! by the member that completes it: a handful of microseconds on one node.
//!
//! A round is kept until every member has taken its result; a member that
//! never comes leaves the others waiting only as long as each call's timeout
//! (the SDK then asks the group's actor whether someone aborted, and gives
//! up at the group's own timeout). Everything a member controls is bounded:
//! the name, the size, the rounds in flight per point, the bytes all points
//! hold, and the number of points.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use wray_core::{Error, JobId};

/// Longest name of a meeting point.
pub(crate) const MAX_POINT_NAME: usize = 256;

/// Members one point may have (a collective group's bound; the host checks
/// it too, before it cuts a guest's buffer into parts).
pub(crate) const MAX_MEMBERS: u32 = wray_host::MAX_MEETING_MEMBERS;

/// Unfinished rounds a point keeps: members run rounds in order and each
/// waits for all, so a member can only be one round ahead in a correct
/// program; a point past this is a guest bug, refused rather than grown.
pub(crate) const MAX_ROUNDS_IN_FLIGHT: usize = 64;

/// Buffer bytes all the points of a node hold at once. A 100 MiB allreduce
/// over 4 members holds 400 MiB while its round is open; beyond this a
/// contribution fails instead of growing the host's memory without bound
/// (buffers this large belong in the object store, which spills).
pub(crate) const MAX_HELD_BYTES: usize = 4 << 30;

/// Points a node keeps at once. A point with no open round is dropped at
/// once unless it was aborted (an abort must still fail later rounds); the
/// aborted ones stay until their job ends.
pub(crate) const MAX_POINTS: usize = 1 << 16;

use wray_host::MeetingShare as Share;

/// Every point of the node, by job and name.
#[derive(Default)]
pub(crate) struct Meetings {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    points: HashMap<(JobId, String), Arc<Point>>,
    /// The bytes of every open round's parts.
    held: usize,
}

struct Point {
    name: String,
    state: Mutex<PointState>,
    /// Woken when a round completes or the point is aborted.
    changed: Notify,
}

struct PointState {
    size: u32,
    rounds: BTreeMap<u64, Round>,
    aborted: Option<String>,
}

struct Round {
    what: String,
    /// The first member that contributed (named in a mismatch).
    first: u32,
    parts: Vec<Option<Vec<Bytes>>>,
    taken: Vec<bool>,
    /// Set when members disagree: every member gets this error.
    mismatch: Option<String>,
    bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Meetings {
    /// Member `rank` of `point` contributes `share` to `round` (or, with
    /// `None`, waits again for a round it contributed to) and waits up to
    /// `timeout` for the round to complete. `Ok(None)`: the time passed.
    pub(crate) async fn meet(
        &self,
        job: JobId,
        point: &str,
        rank: u32,
        round: u64,
        share: Option<Share>,
        timeout: Duration,
    ) -> Result<Option<Vec<Bytes>>, Error> {
        let p = match share {
            Some(share) => self.contribute(job, point, rank, round, share)?,
            None => lock(&self.inner)
                .points
                .get(&(job, point.to_string()))
                .cloned()
                .ok_or_else(|| never_joined(point, rank, round))?,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a completion between the look
            // and the wait still wakes this member.
            let changed = p.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(done) = self.take(job, &p, rank, round)? {
                return Ok(Some(done));
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(None);
            }
        }
    }

    fn contribute(&self, job: JobId, point: &str, rank: u32, round: u64, share: Share) -> Result<Arc<Point>, Error> {
        let invalid = |what: String| Error::InvalidArgument(format!("meeting point '{point}': {what}"));
        check_name(point)?;
        if share.size == 0 || share.size > MAX_MEMBERS {
            return Err(invalid(format!("{} members (1 to {MAX_MEMBERS})", share.size)));
        }
        if rank >= share.size {
            return Err(invalid(format!("rank {rank} of {}", share.size)));
        }
        if round == 0 {
            return Err(invalid("round 0 (rounds start at 1)".into()));
        }
        let n = share.parts.len();
        if n > 1 && n != share.size as usize {
            return Err(invalid(format!(
                "rank {rank} sent {n} parts to round {round}: none, one for all, or one per member ({})",
                share.size
            )));
        }
        let bytes: usize = share.parts.iter().map(Bytes::len).sum();
        let mut inner = lock(&self.inner);
        if inner.held + bytes > MAX_HELD_BYTES {
            return Err(invalid(format!(
                "rank {rank} brings {bytes} bytes to round {round} while this node's meeting points hold {}; \
                 they hold at most {MAX_HELD_BYTES}",
                inner.held
            )));
        }
        let p = inner
            .point(job, point, share.size)
            .ok_or_else(|| invalid(format!("this node keeps at most {MAX_POINTS} meeting points")))?;
        let mut st = lock(&p.state);
        if let Some(reason) = &st.aborted {
            return Err(aborted(point, reason));
        }
        if st.size != share.size {
            return Err(invalid(format!("rank {rank} says {} members where others said {}", share.size, st.size)));
        }
        if !st.rounds.contains_key(&round) && st.rounds.len() >= MAX_ROUNDS_IN_FLIGHT {
            return Err(invalid(format!(
                "rank {rank} started round {round} while {MAX_ROUNDS_IN_FLIGHT} earlier ones are unfinished"
            )));
        }
        let size = st.size as usize;
        let r = st.rounds.entry(round).or_insert_with(|| Round {
            what: share.what.clone(),
            first: rank,
            parts: vec![None; size],
            taken: vec![false; size],
            mismatch: None,
            bytes: 0,
        });
        if r.parts[rank as usize].is_some() {
            return Err(invalid(format!("rank {rank} joined round {round} twice (two members share a rank?)")));
        }
        if r.mismatch.is_none() && r.what != share.what {
            // The lower rank first, whichever came first.
            let mut two = [(r.first, r.what.clone()), (rank, share.what.clone())];
            two.sort_by_key(|(m, _)| *m);
            let [(m0, w0), (m1, w1)] = two;
            r.mismatch = Some(format!(
                "meeting point '{point}', round {round}: rank {m0} called {w0} but rank {m1} called {w1}"
            ));
        }
        r.parts[rank as usize] = Some(share.parts);
        r.bytes += bytes;
        let complete = r.parts.iter().all(Option::is_some);
        inner.held += bytes;
        drop(st);
        drop(inner);
        if complete {
            p.changed.notify_waiters();
        }
        Ok(p)
    }

    /// Member `rank`'s result of `round` if the round is complete: by
    /// rank, what each member sent it. The round goes once every member has
    /// taken its result.
    fn take(&self, job: JobId, p: &Arc<Point>, rank: u32, round: u64) -> Result<Option<Vec<Bytes>>, Error> {
        let mut st = lock(&p.state);
        if let Some(reason) = &st.aborted {
            return Err(aborted(&p.name, reason));
        }
        let joined = |r: &&mut Round| r.parts.get(rank as usize).is_some_and(Option::is_some);
        let Some(r) = st.rounds.get_mut(&round).filter(joined) else {
            return Err(never_joined(&p.name, rank, round));
        };
        if r.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        r.taken[rank as usize] = true;
        let me = rank as usize;
        let result = match &r.mismatch {
            Some(m) => Err(Error::InvalidArgument(m.clone())),
            None => Ok(Some(
                r.parts
                    .iter_mut()
                    .enumerate()
                    .map(|(from, parts)| match parts.as_deref_mut() {
                        _ if from == me => Bytes::new(),
                        // One part for all: shared.
                        Some([one]) => one.clone(),
                        // A part per member: only this one reads its part,
                        // so it is moved out (no copy on the way to the
                        // guest).
                        Some(many) if many.len() > 1 => std::mem::take(&mut many[me]),
                        _ => Bytes::new(),
                    })
                    .collect(),
            )),
        };
        if r.taken.iter().all(|t| *t) {
            let bytes = r.bytes;
            st.rounds.remove(&round);
            let empty = st.rounds.is_empty();
            drop(st);
            let mut inner = lock(&self.inner);
            inner.held -= bytes;
            // An idle point costs nothing to make again: drop it, unless
            // it is the same point (not one made after an abort removed it).
            if empty {
                let key = (job, p.name.clone());
                if inner.points.get(&key).is_some_and(|q| Arc::ptr_eq(q, p)) {
                    let st = lock(&p.state);
                    if st.rounds.is_empty() && st.aborted.is_none() {
                        inner.points.remove(&key);
                    }
                }
            }
        }
        result
    }

    /// Fails every round of `point`, open and to come, with `reason`.
    pub(crate) fn abort(&self, job: JobId, point: &str, reason: &str) {
        if check_name(point).is_err() {
            return;
        }
        let mut inner = lock(&self.inner);
        // Made if need be: rounds that start later must fail too. Its size
        // does not matter, since an aborted point takes no contribution.
        let Some(p) = inner.point(job, point, 0) else { return };
        let freed = abort_point(&p, reason);
        inner.held -= freed;
    }

    /// Drops a job's points, failing members that still wait.
    pub(crate) fn end_job(&self, job: JobId) {
        let mut inner = lock(&self.inner);
        let ended: Vec<Arc<Point>> = inner.points.extract_if(|(j, _), _| *j == job).map(|(_, p)| p).collect();
        for p in ended {
            let freed = abort_point(&p, "the job ended");
            inner.held -= freed;
        }
    }

    /// Bytes held by open rounds (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        lock(&self.inner).held
    }

    #[cfg(test)]
    fn points(&self) -> usize {
        lock(&self.inner).points.len()
    }
}

impl Inner {
    /// The point `name` of `job`, made for `size` members if it does not
    /// exist; `None` when that would pass [`MAX_POINTS`].
    fn point(&mut self, job: JobId, name: &str, size: u32) -> Option<Arc<Point>> {
        let key = (job, name.to_string());
        if !self.points.contains_key(&key) && self.points.len() >= MAX_POINTS {
            return None;
        }
        let p = self.points.entry(key).or_insert_with(|| {
            Arc::new(Point {
                name: name.to_string(),
                state: Mutex::new(PointState { size, rounds: BTreeMap::new(), aborted: None }),
                changed: Notify::new(),
            })
        });
        Some(p.clone())
    }
}

/// Marks `p` aborted, drops its rounds and wakes its members; returns the
/// bytes freed.
fn abort_point(p: &Point, reason: &str) -> usize {
    let mut st = lock(&p.state);
    if st.aborted.is_none() {
        // A reason is a guest's string: bounded like a panic message.
        let cut = reason.floor_char_boundary(wray_core::limits::MAX_PANIC_MESSAGE);
        st.aborted = Some(reason[..cut].to_string());
    }
    let freed = st.rounds.values().map(|r| r.bytes).sum();
    st.rounds.clear();
    drop(st);
    p.changed.notify_waiters();
    freed
}

fn check_name(point: &str) -> Result<(), Error> {
    if point.is_empty() || point.len() > MAX_POINT_NAME {
        return Err(Error::InvalidArgument(format!(
            "a meeting point's name is 1 to {MAX_POINT_NAME} bytes, got {}",
            point.len()
        )));
    }
    Ok(())
}

fn never_joined(point: &str, rank: u32, round: u64) -> Error {
    Error::InvalidArgument(format!(
        "meeting point '{point}': rank {rank} waits for round {round}, which it never joined"
    ))
}

fn aborted(point: &str, reason: &str) -> Error {
    Error::InvalidArgument(format!("meeting point '{point}' aborted: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: JobId = JobId(1);
    const LONG: Duration = Duration::from_secs(10);

    fn share(size: u32, what: &str, parts: &[&[u8]]) -> Option<Share> {
        Some(Share { size, what: what.into(), parts: parts.iter().map(|p| Bytes::copy_from_slice(p)).collect() })
    }

    #[tokio::test]
    async fn members_get_what_the_others_sent_them() {
        let m = Arc::new(Meetings::default());
        let mut waits = Vec::new();
        for rank in 0..3u32 {
            let m = m.clone();
            waits.push(tokio::spawn(async move {
                // One part for all from rank 0, a part per member from the
                // others, addressed by rank.
                let parts: Vec<Vec<u8>> =
                    if rank == 0 { vec![vec![9]] } else { (0..3).map(|to| vec![rank as u8, to]).collect() };
                let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                m.meet(JOB, "g", rank, 1, share(3, "x", &parts), LONG).await
            }));
        }
        for (rank, w) in waits.into_iter().enumerate() {
            let got = w.await.unwrap().unwrap().unwrap();
            let want: Vec<Vec<u8>> = (0..3u8)
                .map(|from| match from {
                    _ if from as usize == rank => vec![],
                    0 => vec![9],
                    _ => vec![from, rank as u8],
                })
                .collect();
            assert_eq!(got.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), want);
        }
        // Every member took its result: nothing is held, the point is gone.
        assert_eq!((m.held(), m.points()), (0, 0));
    }

    #[tokio::test]
    async fn an_early_member_times_out_and_waits_again() {
        let m = Meetings::default();
        let r = m.meet(JOB, "g", 0, 1, share(2, "barrier", &[]), Duration::from_millis(20)).await;
        assert!(r.unwrap().is_none());
        let late = m.meet(JOB, "g", 1, 1, share(2, "barrier", &[b"ab"]), LONG).await.unwrap().unwrap();
        assert_eq!(late[0], Bytes::new());
        let early = m.meet(JOB, "g", 0, 1, None, LONG).await.unwrap().unwrap();
        assert_eq!(early[1], Bytes::from_static(b"ab"));
        assert_eq!((m.held(), m.points()), (0, 0));
    }

    #[tokio::test]
    async fn disagreeing_members_both_fail_naming_both() {
        let m = Arc::new(Meetings::default());
        let m2 = m.clone();
        let a = tokio::spawn(async move { m2.meet(JOB, "g", 1, 1, share(2, "allreduce of 5", &[]), LONG).await });
        let b = m.meet(JOB, "g", 0, 1, share(2, "allreduce of 4", &[]), LONG).await.unwrap_err().to_string();
        let a = a.await.unwrap().unwrap_err().to_string();
        let want = "rank 0 called allreduce of 4 but rank 1 called allreduce of 5";
        assert!(a.contains(want) && b.contains(want), "{a} / {b}");
    }

    #[tokio::test]
    async fn an_abort_fails_a_waiting_member_and_later_rounds() {
        let m = Arc::new(Meetings::default());
        let m2 = m.clone();
        let waiting = tokio::spawn(async move { m2.meet(JOB, "g", 0, 1, share(2, "x", &[b"1234"]), LONG).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(m.held(), 4);
        m.abort(JOB, "g", "rank 1 died");
        let e = waiting.await.unwrap().unwrap_err().to_string();
        assert!(e.contains("aborted: rank 1 died"), "{e}");
        let later = m.meet(JOB, "g", 0, 2, share(2, "x", &[]), LONG).await.unwrap_err().to_string();
        assert!(later.contains("aborted: rank 1 died"), "{later}");
        assert_eq!(m.held(), 0);
        // Another job's point of the same name is another point.
        let other = m.meet(JobId(2), "g", 0, 1, share(1, "x", &[]), LONG).await.unwrap();
        assert!(other.is_some());
        m.end_job(JOB);
        assert_eq!(m.points(), 0);
    }

    #[tokio::test]
    async fn the_job_ending_fails_its_waiting_members() {
        let m = Arc::new(Meetings::default());
        let m2 = m.clone();
        let waiting = tokio::spawn(async move { m2.meet(JOB, "g", 0, 1, share(2, "x", &[b"12"]), LONG).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        m.end_job(JOB);
        assert!(waiting.await.unwrap().unwrap_err().to_string().contains("the job ended"));
        assert_eq!((m.held(), m.points()), (0, 0));
    }

    #[tokio::test]
    async fn bad_contributions_are_refused_by_name() {
        let m = Meetings::default();
        let err = |r: Result<Option<Vec<Bytes>>, Error>| r.unwrap_err().to_string();
        let short = Duration::from_millis(1);
        assert!(err(m.meet(JOB, "", 0, 1, share(2, "x", &[]), short).await).contains("1 to 256 bytes"));
        assert!(err(m.meet(JOB, "g", 0, 1, share(0, "x", &[]), short).await).contains("0 members (1 to 1024)"));
        assert!(err(m.meet(JOB, "g", 2, 1, share(2, "x", &[]), short).await).contains("rank 2 of 2"));
        assert!(err(m.meet(JOB, "g", 0, 0, share(2, "x", &[]), short).await).contains("round 0"));
        let three: [&[u8]; 3] = [b"a", b"b", b"c"];
        assert!(err(m.meet(JOB, "g", 0, 1, share(2, "x", &three), short).await).contains("sent 3 parts"));
        assert!(err(m.meet(JOB, "g", 0, 1, None, short).await).contains("never joined"));
        assert!(m.meet(JOB, "g", 0, 1, share(2, "x", &[]), short).await.unwrap().is_none());
        assert!(err(m.meet(JOB, "g", 0, 1, share(2, "x", &[]), short).await).contains("joined round 1 twice"));
        assert!(err(m.meet(JOB, "g", 1, 1, share(3, "x", &[]), short).await).contains("says 3 members"));
        for round in 2..=MAX_ROUNDS_IN_FLIGHT as u64 {
            assert!(m.meet(JOB, "g", 0, round, share(2, "x", &[]), short).await.unwrap().is_none());
        }
        let past = MAX_ROUNDS_IN_FLIGHT as u64 + 1;
        assert!(
            err(m.meet(JOB, "g", 0, past, share(2, "x", &[]), short).await).contains("earlier ones are unfinished")
        );
    }
}
