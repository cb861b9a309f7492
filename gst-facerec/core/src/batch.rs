//! Recognition batched across streams.
//!
//! Every engine in a process that loads the same recognizer shares one session
//! ([`crate::runtime::shared_session`]), and one run of 8 chips costs less per chip than 8 runs
//! of one on a CPU too (`docs/PERFORMANCE.md`). So a stream that has faces to embed while other
//! streams wait for the engine may leave its chips here ([`ChipBatch::defer`]) and give up its
//! turn; the next stream to hold a turn embeds them together with its own
//! ([`crate::embed::Recognizer::embed_with_waiting`]) and hands each stream its embeddings.
//!
//! Nobody ever waits for chips that may not come: the holder of a turn runs whatever is waiting
//! at once (or leaves its own too, while the run would still have room), and a stream whose
//! chips were not taken within [`DEFER_WAIT`] takes a flush turn, which goes first and does not
//! count as its own, and runs them itself ([`crate::engine::Engine::process_turn`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::align::Chip;
use crate::embed::Embedding;

/// How long a stream waits for another stream's turn to embed its chips before it takes a turn
/// to embed them itself: a few turns at 1080p on a busy 2-core node (15-30 ms each).
pub const DEFER_WAIT: Duration = Duration::from_millis(100);

/// A stream's chips waiting in a [`ChipBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// What a run of the recognizer gives each stream whose chips it took: the embeddings, in the
/// order of the chips, or the run's error.
pub type Outcome = std::result::Result<Vec<Embedding>, String>;

/// How the runs went, since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Runs of the recognizer that took chips of another stream.
    pub shared_runs: u64,
    /// Chips left for another stream's turn.
    pub deferred_chips: u64,
}

static SHARED_RUNS: AtomicU64 = AtomicU64::new(0);
static DEFERRED_CHIPS: AtomicU64 = AtomicU64::new(0);

/// The figures of every batch in the process (every recognizer session): what the element's
/// `stats` report.
pub fn process_totals() -> BatchStats {
    BatchStats {
        shared_runs: SHARED_RUNS.load(Ordering::Relaxed),
        deferred_chips: DEFERRED_CHIPS.load(Ordering::Relaxed),
    }
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    waiting: Vec<(Ticket, Vec<Chip>)>,
    finished: HashMap<Ticket, Outcome>,
    stats: BatchStats,
}

/// The chips waiting to share a run of one recognizer session, and the outcomes not yet
/// collected. One per shared session ([`crate::runtime::SharedSession::batch`]).
#[derive(Debug, Default)]
pub struct ChipBatch {
    state: Mutex<State>,
    done: Condvar,
}

impl ChipBatch {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `chips` for the next run; [`ChipBatch::wait`] collects their embeddings.
    pub fn defer(&self, chips: Vec<Chip>) -> Ticket {
        let mut state = self.lock();
        let ticket = Ticket(state.next);
        state.next += 1;
        state.stats.deferred_chips += chips.len() as u64;
        DEFERRED_CHIPS.fetch_add(chips.len() as u64, Ordering::Relaxed);
        state.waiting.push((ticket, chips));
        ticket
    }

    /// The outcome for `ticket`, waiting at most `timeout` for a run to take its chips; `None`
    /// if none did (the chips still wait).
    pub fn wait(&self, ticket: Ticket, timeout: Duration) -> Option<Outcome> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(outcome) = state.finished.remove(&ticket) {
                return Some(outcome);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .done
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes waiting chips, first come first, as long as they fit in `room` (a stream's chips
    /// are never split); with nothing else to run (`room` is the whole run), at least the first.
    pub(crate) fn take(&self, room: usize, alone: bool) -> Vec<(Ticket, Vec<Chip>)> {
        let mut state = self.lock();
        let mut fits = 0;
        let mut used = 0;
        for (_, chips) in &state.waiting {
            if used + chips.len() > room && !(alone && fits == 0) {
                break;
            }
            used += chips.len();
            fits += 1;
        }
        state.waiting.drain(..fits).collect()
    }

    /// Hands over the outcomes of a run.
    pub(crate) fn finish(&self, outcomes: Vec<(Ticket, Outcome)>, shared: bool) {
        if outcomes.is_empty() {
            return;
        }
        let mut state = self.lock();
        if shared {
            state.stats.shared_runs += 1;
            SHARED_RUNS.fetch_add(1, Ordering::Relaxed);
        }
        state.finished.extend(outcomes);
        drop(state);
        self.done.notify_all();
    }

    /// How many chips wait for a run.
    pub fn waiting_chips(&self) -> usize {
        self.lock()
            .waiting
            .iter()
            .map(|(_, chips)| chips.len())
            .sum()
    }

    /// Whether chips wait for a run.
    pub fn is_waiting(&self) -> bool {
        !self.lock().waiting.is_empty()
    }

    pub fn stats(&self) -> BatchStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chips(n: usize) -> Vec<Chip> {
        (0..n).map(|_| Chip { data: Vec::new() }).collect()
    }

    #[test]
    fn take_keeps_a_streams_chips_together_and_in_order() {
        let batch = ChipBatch::default();
        let a = batch.defer(chips(3));
        let b = batch.defer(chips(2));
        let c = batch.defer(chips(4));
        // Own chips fill part of the run: only whole requests that fit are taken.
        let taken = batch.take(5, false);
        assert_eq!(
            taken.iter().map(|(t, c)| (*t, c.len())).collect::<Vec<_>>(),
            vec![(a, 3), (b, 2)]
        );
        // Nothing fits, but the run is the flush itself: the first one goes anyway.
        let taken = batch.take(1, true);
        assert_eq!(taken.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![c]);
        assert!(!batch.is_waiting());
        assert!(batch.take(8, true).is_empty());
        assert_eq!(batch.stats().deferred_chips, 9);
    }

    #[test]
    fn wait_returns_the_outcome_handed_over_or_times_out() {
        let batch = std::sync::Arc::new(ChipBatch::default());
        let ticket = batch.defer(chips(1));
        assert_eq!(batch.wait(ticket, Duration::from_millis(5)), None);
        let runner = {
            let batch = batch.clone();
            std::thread::spawn(move || {
                let taken = batch.take(8, true);
                let outcomes = taken
                    .into_iter()
                    .map(|(t, c)| (t, Ok(vec![vec![1.0]; c.len()])))
                    .collect();
                batch.finish(outcomes, true);
            })
        };
        assert_eq!(
            batch.wait(ticket, Duration::from_secs(10)),
            Some(Ok(vec![vec![1.0]]))
        );
        runner.join().unwrap();
        assert_eq!(batch.stats().shared_runs, 1);
        // Collected once.
        assert_eq!(batch.wait(ticket, Duration::ZERO), None);
    }
}
