//! Syncs first: the device syncs in flight are counted, and work that can wait (receiving photo uploads) takes
//! turns that yield to them: a few turns at once while no sync runs; while syncs do, one turn at a time and at most
//! one every `DURING_SYNCS_PACE`. A crowd of phones uploading their day's photos then leaves the CPU, the
//! database's pool and its single writer to the volunteers' visits, and the photos still go on arriving, slowly,
//! under a steady stream of syncs, and at full speed between them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long work that can wait waits for a turn before it is told to come back later: well inside the time a
/// client waits for an answer, so that the client hears "busy", not a timeout.
pub const DEFAULT_TURN_WAIT: Duration = Duration::from_secs(20);
/// While syncs run, a turn at most this often: a photo costs about 16 ms of CPU, so about 3% of a core.
pub const DURING_SYNCS_PACE: Duration = Duration::from_millis(500);

pub struct SyncsFirst {
    syncs: AtomicUsize,
    syncs_ended: Notify,
    /// Turns of work that can wait, at once, while no sync runs.
    turns: Arc<Semaphore>,
    /// The one turn that goes on while syncs run, so that a steady stream of syncs does not stop the rest.
    turn_during_syncs: Arc<Semaphore>,
    /// When the next turn during syncs may begin.
    next_during_syncs: std::sync::Mutex<tokio::time::Instant>,
    pace: Duration,
    wait: Duration,
}

/// A sync in flight, counted until dropped.
pub struct SyncRunning(Arc<SyncsFirst>);

impl Drop for SyncRunning {
    fn drop(&mut self) {
        metrics::gauge!(crate::ops::SYNCS_IN_FLIGHT).decrement(1.0);
        if self.0.syncs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.syncs_ended.notify_waiters();
        }
    }
}

/// A turn of work that can wait, held until dropped.
pub struct Turn {
    _turn: OwnedSemaphorePermit,
    _during_syncs: Option<OwnedSemaphorePermit>,
}

impl SyncsFirst {
    /// `turns` at once while no sync runs (at least one), one per `pace` while syncs do; a turn is waited for at
    /// most `wait`.
    pub fn new(turns: usize, pace: Duration, wait: Duration) -> Arc<SyncsFirst> {
        // Shown as zero from the start, not missing until the first sync.
        metrics::gauge!(crate::ops::SYNCS_IN_FLIGHT).set(0.0);
        metrics::gauge!(crate::ops::UPLOADS_WAITING).set(0.0);
        metrics::counter!(crate::ops::UPLOADS_TURNED_AWAY).absolute(0);
        Arc::new(SyncsFirst {
            syncs: AtomicUsize::new(0),
            syncs_ended: Notify::new(),
            turns: Arc::new(Semaphore::new(turns.max(1))),
            turn_during_syncs: Arc::new(Semaphore::new(1)),
            next_during_syncs: std::sync::Mutex::new(tokio::time::Instant::now()),
            pace,
            wait,
        })
    }

    /// Two turns per core (one reading a body while another is checked or written), each waited for at most
    /// `wait`.
    pub fn for_this_machine(wait: Duration) -> Arc<SyncsFirst> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        SyncsFirst::new(2 * cores, DURING_SYNCS_PACE, wait)
    }

    /// Counts a sync as in flight until the returned guard is dropped.
    pub fn sync_running(self: &Arc<Self>) -> SyncRunning {
        metrics::gauge!(crate::ops::SYNCS_IN_FLIGHT).increment(1.0);
        self.syncs.fetch_add(1, Ordering::AcqRel);
        SyncRunning(self.clone())
    }

    /// Syncs in flight now.
    pub fn syncs_in_flight(&self) -> usize {
        self.syncs.load(Ordering::Acquire)
    }

    /// Waits for a turn: one of the turns while no sync runs, or the single, paced turn that goes on during syncs.
    /// `None` when none came within the wait: the caller asks its client to come back later.
    pub async fn turn(&self) -> Option<Turn> {
        /// Counted as waiting until it has its turn, is turned away, or its client goes away.
        struct Waiting;
        impl Drop for Waiting {
            fn drop(&mut self) {
                metrics::gauge!(crate::ops::UPLOADS_WAITING).decrement(1.0);
            }
        }
        metrics::gauge!(crate::ops::UPLOADS_WAITING).increment(1.0);
        let _waiting = Waiting;
        let turn = tokio::time::timeout(self.wait, self.take_turn()).await.ok();
        if turn.is_none() {
            metrics::counter!(crate::ops::UPLOADS_TURNED_AWAY).increment(1);
        }
        turn
    }

    async fn take_turn(&self) -> Turn {
        let turn = self.turns.clone().acquire_owned().await.expect("the turns are never closed");
        loop {
            let ended = self.syncs_ended.notified();
            let mut ended = std::pin::pin!(ended);
            // Registered before looking, so that the last sync ending in between still wakes this one.
            ended.as_mut().enable();
            if self.syncs_in_flight() == 0 {
                return Turn { _turn: turn, _during_syncs: None };
            }
            let during_syncs = async {
                let during = self.turn_during_syncs.clone().acquire_owned().await;
                let during = during.expect("the turn during syncs is never closed");
                let not_before = *self.next_during_syncs.lock().unwrap_or_else(|e| e.into_inner());
                if not_before > tokio::time::Instant::now() {
                    tokio::time::sleep_until(not_before).await;
                }
                *self.next_during_syncs.lock().unwrap_or_else(|e| e.into_inner()) =
                    tokio::time::Instant::now() + self.pace;
                during
            };
            tokio::select! {
                () = &mut ended => continue,
                during = during_syncs => return Turn { _turn: turn, _during_syncs: Some(during) },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_or_never<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
        futures_util::FutureExt::now_or_never(f)
    }

    #[tokio::test]
    async fn without_syncs_turns_are_bounded() {
        let first = SyncsFirst::new(2, Duration::ZERO, Duration::from_secs(5));
        let a = now_or_never(first.turn()).flatten().expect("a first turn at once");
        let _b = now_or_never(first.turn()).flatten().expect("a second turn at once");
        assert!(now_or_never(first.turn()).is_none(), "a third waits while two are taken");
        drop(a);
        assert!(now_or_never(first.turn()).flatten().is_some(), "a turn given back is taken again");
    }

    #[tokio::test]
    async fn during_syncs_one_turn_goes_on_and_the_rest_wait_for_the_syncs_to_end() {
        let first = SyncsFirst::new(4, Duration::ZERO, Duration::from_secs(5));
        let sync = first.sync_running();
        let one = now_or_never(first.turn()).flatten().expect("one turn goes on during syncs");
        let waiting = tokio::spawn({
            let first = first.clone();
            async move { first.turn().await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second turn waits while a sync runs and the one turn is taken");
        drop(sync);
        assert!(waiting.await.unwrap(), "the syncs ended: the waiting turn is taken");
        drop(one);
        assert_eq!(first.syncs_in_flight(), 0);
    }

    #[tokio::test]
    async fn a_turn_not_given_within_the_wait_is_none() {
        let first = SyncsFirst::new(1, Duration::ZERO, Duration::from_millis(50));
        let _sync = first.sync_running();
        let _one = first.turn().await.expect("the turn during syncs");
        assert!(first.turn().await.is_none(), "no turn within the wait");
    }

    #[tokio::test(start_paused = true)]
    async fn during_syncs_turns_are_paced_and_between_syncs_they_are_not() {
        let pace = Duration::from_millis(500);
        let first = SyncsFirst::new(4, pace, Duration::from_secs(60));
        let sync = first.sync_running();
        let start = tokio::time::Instant::now();
        let mut given = Vec::new();
        for _ in 0..3 {
            drop(first.turn().await.expect("a turn within the wait"));
            given.push(start.elapsed());
        }
        assert_eq!(given, [Duration::ZERO, pace, 2 * pace], "one turn per pace while a sync runs");
        drop(sync);
        let after = tokio::time::Instant::now();
        let (_a, _b, _c) = (first.turn().await, first.turn().await, first.turn().await);
        assert_eq!(after.elapsed(), Duration::ZERO, "no pace without syncs");
    }
}
