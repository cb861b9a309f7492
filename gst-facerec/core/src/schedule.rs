//! Turns on the process's inference engine for many streams.
//!
//! Every engine in a process shares its ONNX Runtime sessions ([`crate::runtime::shared_session`]),
//! and on a small CPU two inferences at once only slow each other down. So each stream (a camera,
//! an element) is a [`Client`] of one [`Scheduler`] and runs a frame only during its [`Turn`]. The
//! scheduler is what makes an overloaded node detect less often on every camera instead of
//! starving some of them:
//!
//! * a stream waits with only its newest frame ([`Newest`]): a frame that a newer one replaces
//!   before its turn is dropped as stale, never queued;
//! * a stream that has had less than its `min-detect-fps` since its last turn is served first,
//!   the most overdue first ([`Candidate::deadline`]);
//! * otherwise a stream recognising a new face goes before one re-checking known faces, and
//!   then the stream served least recently goes first: round-robin among those waiting.

use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Upper bounds, in seconds, of the turn-wait histogram's buckets ([`ClientStats::wait_buckets`]
/// has one more, for longer waits).
pub const WAIT_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A waiting stream, as the choice of the next turn sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: u64,
    /// When its previous turn began; `None` before its first.
    pub last_turn: Option<Instant>,
    /// `1 / min-detect-fps`; `None` when it asked for no minimum.
    pub min_interval: Option<Duration>,
    /// It is recognising a face it has not named yet.
    pub urgent: bool,
    pub waiting_since: Instant,
}

impl Candidate {
    /// When it is owed a turn to keep its minimum rate; `None` for no minimum.
    pub fn deadline(&self) -> Option<Instant> {
        let interval = self.min_interval?;
        Some(match self.last_turn {
            Some(at) => at + interval,
            None => self.waiting_since,
        })
    }
}

/// The candidate to serve at `now` (see the module's rules), as an index into `waiting`.
pub fn pick(waiting: &[Candidate], now: Instant) -> Option<usize> {
    let overdue = waiting
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.deadline().filter(|d| *d <= now).map(|d| (i, d)))
        .min_by_key(|(i, deadline)| (*deadline, waiting[*i].id));
    if let Some((i, _)) = overdue {
        return Some(i);
    }
    waiting
        .iter()
        .enumerate()
        .min_by_key(|(_, c)| (!c.urgent, c.last_turn, c.waiting_since, c.id))
        .map(|(i, _)| i)
}

/// A slot that keeps only the newest item: what a stream waits with. Replacing an item that was
/// never taken counts it as stale.
#[derive(Debug)]
pub struct Newest<T> {
    item: Option<T>,
    stale: u64,
}

impl<T> Default for Newest<T> {
    fn default() -> Self {
        Newest {
            item: None,
            stale: 0,
        }
    }
}

impl<T> Newest<T> {
    /// Puts `item` in and returns the one waiting (if any), counted as stale, so that the
    /// caller can reuse what it holds.
    pub fn put(&mut self, item: T) -> Option<T> {
        let replaced = self.item.replace(item);
        if replaced.is_some() {
            self.stale += 1;
        }
        replaced
    }

    pub fn take(&mut self) -> Option<T> {
        self.item.take()
    }

    pub fn is_empty(&self) -> bool {
        self.item.is_none()
    }

    /// Items replaced before they were taken.
    pub fn stale(&self) -> u64 {
        self.stale
    }
}

/// One stream's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientStats {
    pub turns: u64,
    pub wait_total: Duration,
    /// Waits per bucket of [`WAIT_BUCKETS_SECONDS`] (not cumulative), and the waits longer
    /// than the last bound.
    pub wait_buckets: Vec<u64>,
}

impl ClientStats {
    fn record_wait(&mut self, wait: Duration) {
        if self.wait_buckets.len() != WAIT_BUCKETS_SECONDS.len() + 1 {
            self.wait_buckets = vec![0; WAIT_BUCKETS_SECONDS.len() + 1];
        }
        let seconds = wait.as_secs_f64();
        let bucket = WAIT_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(WAIT_BUCKETS_SECONDS.len());
        self.wait_buckets[bucket] += 1;
        self.turns += 1;
        self.wait_total += wait;
    }
}

#[derive(Debug)]
struct ClientState {
    id: u64,
    min_interval: Option<Duration>,
    last_turn: Option<Instant>,
    /// Set while it waits: since when, and whether it is urgent.
    waiting: Option<(Instant, bool)>,
    /// Set while it waits for a turn only to run what waits in a batch ([`Client::flush_turn`]).
    flush_waiting: Option<Instant>,
    stats: ClientStats,
}

#[derive(Debug, Default)]
struct State {
    clients: Vec<ClientState>,
    next_id: u64,
    holder: Option<u64>,
    busy: Duration,
}

impl State {
    fn client(&mut self, id: u64) -> Option<&mut ClientState> {
        self.clients.iter_mut().find(|c| c.id == id)
    }

    /// Hands the engine to the next waiting stream, if nobody holds it.
    fn grant_next(&mut self, now: Instant) {
        if self.holder.is_some() {
            return;
        }
        // A flush is short and frees a stream that waits for its results: it goes first, and
        // is not a turn of the stream's own (its rate and waits stay as they were).
        let flush = self
            .clients
            .iter()
            .filter_map(|c| c.flush_waiting.map(|since| (since, c.id)))
            .min();
        if let Some((_, id)) = flush {
            if let Some(client) = self.client(id) {
                client.flush_waiting = None;
            }
            self.holder = Some(id);
            return;
        }
        let waiting: Vec<Candidate> = self
            .clients
            .iter()
            .filter_map(|c| {
                c.waiting.map(|(since, urgent)| Candidate {
                    id: c.id,
                    last_turn: c.last_turn,
                    min_interval: c.min_interval,
                    urgent,
                    waiting_since: since,
                })
            })
            .collect();
        if let Some(i) = pick(&waiting, now) {
            let id = waiting[i].id;
            if let Some(client) = self.client(id) {
                let (since, _) = client.waiting.take().expect("a waiting client");
                client.last_turn = Some(now);
                client
                    .stats
                    .record_wait(now.saturating_duration_since(since));
            }
            self.holder = Some(id);
        }
    }
}

/// Serves turns on the inference engine to its clients. One per process ([`Scheduler::global`]);
/// tests make their own.
#[derive(Debug, Default)]
pub struct Scheduler {
    state: Mutex<State>,
    changed: Condvar,
}

static GLOBAL: LazyLock<Arc<Scheduler>> = LazyLock::new(|| Arc::new(Scheduler::default()));

impl Scheduler {
    /// The process's scheduler, which every engine in the process takes turns from.
    pub fn global() -> Arc<Scheduler> {
        GLOBAL.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream.
    pub fn client(self: &Arc<Self>) -> Client {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.clients.push(ClientState {
            id,
            min_interval: None,
            last_turn: None,
            waiting: None,
            flush_waiting: None,
            stats: ClientStats::default(),
        });
        Client {
            scheduler: self.clone(),
            id,
        }
    }

    /// The time turns were held, since the process started: the engine's busy time.
    pub fn busy(&self) -> Duration {
        self.lock().busy
    }

    /// How many streams are registered.
    pub fn clients(&self) -> usize {
        self.lock().clients.len()
    }
}

/// A stream's registration with a [`Scheduler`]; dropping it deregisters the stream.
#[derive(Debug)]
pub struct Client {
    scheduler: Arc<Scheduler>,
    id: u64,
}

impl Client {
    /// Asks to be served at least `fps` turns a second before others get more than their share
    /// (0: no minimum).
    pub fn set_min_rate(&self, fps: f32) {
        let interval = (fps > 0.0 && fps.is_finite()).then(|| Duration::from_secs_f32(1.0 / fps));
        if let Some(client) = self.scheduler.lock().client(self.id) {
            client.min_interval = interval;
        }
    }

    /// Waits for this stream's turn. `urgent`: it is recognising a face not named yet.
    pub fn turn(&self, urgent: bool) -> Turn<'_> {
        self.wait_for_turn(|client, now| client.waiting = Some((now, urgent)))
    }

    /// Waits for a turn only to run what other streams left in a batch ([`crate::batch`]): it
    /// goes before every stream waiting for a frame's turn, and does not count as this
    /// stream's turn.
    pub fn flush_turn(&self) -> Turn<'_> {
        self.wait_for_turn(|client, now| client.flush_waiting = Some(now))
    }

    /// Marks this stream as waiting (`mark`), hands the engine on if it is free, and waits
    /// until it is this stream's.
    fn wait_for_turn(&self, mark: impl FnOnce(&mut ClientState, Instant)) -> Turn<'_> {
        let scheduler = &self.scheduler;
        let mut state = scheduler.lock();
        let now = Instant::now();
        if let Some(client) = state.client(self.id) {
            mark(client, now);
        }
        state.grant_next(now);
        scheduler.changed.notify_all();
        while state.holder != Some(self.id) {
            state = scheduler
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        Turn {
            client: self,
            started: Instant::now(),
        }
    }

    pub fn stats(&self) -> ClientStats {
        let mut state = self.scheduler.lock();
        let mut stats = state
            .client(self.id)
            .map(|c| c.stats.clone())
            .unwrap_or_default();
        stats.wait_buckets.resize(WAIT_BUCKETS_SECONDS.len() + 1, 0);
        stats
    }

    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut state = self.scheduler.lock();
        state.clients.retain(|c| c.id != self.id);
    }
}

/// The engine is this stream's until the turn is dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    client: &'a Client,
    started: Instant,
}

impl<'a> Turn<'a> {
    /// The stream whose turn it is.
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// Whether another stream waits for a turn now: the next turn will not be long in coming
    /// ([`crate::batch`]).
    pub fn others_waiting(&self) -> bool {
        let id = self.client.id;
        let state = self.client.scheduler.lock();
        state
            .clients
            .iter()
            .any(|c| c.id != id && (c.waiting.is_some() || c.flush_waiting.is_some()))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let scheduler = &self.client.scheduler;
        let mut state = scheduler.lock();
        let now = Instant::now();
        state.busy += now.saturating_duration_since(self.started);
        state.holder = None;
        state.grant_next(now);
        scheduler.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic run of the rules: `cameras` streams of `fps` frames a second, each
    /// waiting with its newest frame, and one engine whose turn costs `cost[camera]`, in
    /// virtual time. Returns per camera: frames delivered, analysed, dropped as stale and still
    /// waiting at the end (0 or 1), and the largest age of an analysed frame.
    fn simulate(
        fps: f64,
        cost: &[Duration],
        min_fps: f32,
        urgent: impl Fn(usize, u64) -> bool,
        seconds: u64,
    ) -> Vec<(u64, u64, u64, u64, Duration)> {
        let start = Instant::now();
        let cameras = cost.len();
        let interval = Duration::from_secs_f64(1.0 / fps);
        let min_interval = (min_fps > 0.0).then(|| Duration::from_secs_f32(1.0 / min_fps));
        let mut slots: Vec<Newest<Instant>> = (0..cameras).map(|_| Newest::default()).collect();
        let mut last_turn: Vec<Option<Instant>> = vec![None; cameras];
        let mut waiting_since: Vec<Option<Instant>> = vec![None; cameras];
        let mut served = vec![0u64; cameras];
        let mut delivered = vec![0u64; cameras];
        let mut oldest = vec![Duration::ZERO; cameras];
        // Cameras' frames arrive out of phase, as real ones do.
        let mut next_frame: Vec<Instant> = (0..cameras)
            .map(|c| start + interval.mul_f64(c as f64 / cameras as f64))
            .collect();
        let mut now = start;
        let end = start + Duration::from_secs(seconds);
        while now < end {
            // Frames that arrived by now.
            for c in 0..cameras {
                while next_frame[c] <= now {
                    slots[c].put(next_frame[c]);
                    delivered[c] += 1;
                    waiting_since[c].get_or_insert(next_frame[c]);
                    next_frame[c] += interval;
                }
            }
            let waiting: Vec<Candidate> = (0..cameras)
                .filter(|c| !slots[*c].is_empty())
                .map(|c| Candidate {
                    id: c as u64,
                    last_turn: last_turn[c],
                    min_interval,
                    urgent: urgent(c, served[c]),
                    waiting_since: waiting_since[c].expect("a waiting camera"),
                })
                .collect();
            let Some(i) = pick(&waiting, now) else {
                now = *next_frame.iter().min().unwrap();
                continue;
            };
            let c = waiting[i].id as usize;
            let frame = slots[c].take().unwrap();
            oldest[c] = oldest[c].max(now - frame);
            waiting_since[c] = None;
            last_turn[c] = Some(now);
            served[c] += 1;
            now += cost[c];
        }
        (0..cameras)
            .map(|c| {
                let pending = u64::from(!slots[c].is_empty());
                (
                    delivered[c],
                    served[c],
                    slots[c].stale(),
                    pending,
                    oldest[c],
                )
            })
            .collect()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn an_overloaded_engine_serves_every_camera_evenly() {
        // 8 cameras at 30 fps, 50 ms a detection: the engine does 20 a second, 2.5 each.
        let runs = simulate(30.0, &[ms(50); 8], 2.0, |_, _| false, 20);
        let served: Vec<u64> = runs.iter().map(|r| r.1).collect();
        let (min, max) = (served.iter().min().unwrap(), served.iter().max().unwrap());
        assert!(*min >= 49 && *max <= 51, "{served:?}");
        // Every frame not analysed was dropped as stale, none queued: what a camera analyses
        // is its newest frame, never older than one frame interval.
        for (delivered, served, stale, pending, oldest) in &runs {
            assert_eq!(served + stale + pending, *delivered, "{runs:?}");
            assert!(*delivered >= 598, "{runs:?}");
            assert!(*oldest < ms(34), "{runs:?}");
        }
    }

    #[test]
    fn a_slow_camera_does_not_take_more_turns_but_cannot_push_others_below_the_minimum() {
        // Camera 0's frames cost 300 ms (a crowd), the others 20 ms. Round-robin gives each
        // the same number of turns; the others still get well over their 2 fps minimum.
        let mut cost = vec![ms(20); 4];
        cost[0] = ms(300);
        let runs = simulate(30.0, &cost, 2.0, |_, _| false, 30);
        let served: Vec<u64> = runs.iter().map(|r| r.1).collect();
        assert!(
            served.iter().max().unwrap() - served.iter().min().unwrap() <= 1,
            "{served:?}"
        );
        assert!(served.iter().all(|s| *s >= 2 * 30), "{served:?}");
    }

    #[test]
    fn the_minimum_rate_goes_before_a_new_face() {
        // Camera 0 is always recognising a new face (urgent). Without the minimum it would
        // take every other turn from three cameras; with it, every camera keeps 2 fps.
        let cost = [ms(100); 4];
        let runs = simulate(30.0, &cost, 2.0, |c, _| c == 0, 30);
        let served: Vec<u64> = runs.iter().map(|r| r.1).collect();
        assert!(served[1..].iter().all(|s| *s >= 2 * 30 - 1), "{served:?}");
        assert!(served[0] > served[1], "{served:?}");
    }

    #[test]
    fn a_new_face_is_recognised_before_known_ones_are_rechecked() {
        let now = Instant::now();
        let known = Candidate {
            id: 0,
            last_turn: Some(now - ms(200)),
            min_interval: Some(ms(500)),
            urgent: false,
            waiting_since: now - ms(100),
        };
        let new_face = Candidate {
            id: 1,
            last_turn: Some(now - ms(50)),
            urgent: true,
            ..known
        };
        assert_eq!(pick(&[known, new_face], now), Some(1));
        // Unless the other is owed its minimum rate.
        let owed = Candidate {
            last_turn: Some(now - ms(600)),
            ..known
        };
        assert_eq!(pick(&[owed, new_face], now), Some(0));
        // Round-robin otherwise: the one served least recently.
        let recent = Candidate {
            id: 1,
            last_turn: Some(now - ms(10)),
            ..known
        };
        assert_eq!(pick(&[recent, known], now), Some(1));
        assert_eq!(pick(&[], now), None);
    }

    #[test]
    fn newest_keeps_one_item_and_counts_the_replaced() {
        let mut slot = Newest::default();
        assert_eq!(slot.put(1), None);
        assert_eq!(slot.put(2), Some(1));
        assert_eq!(slot.put(3), Some(2));
        assert_eq!(slot.take(), Some(3));
        assert_eq!(slot.take(), None);
        slot.put(4);
        assert_eq!(slot.take(), Some(4));
        assert_eq!(slot.stale(), 2);
    }

    #[test]
    fn threads_take_turns_one_at_a_time_and_each_is_served() {
        let scheduler = Arc::new(Scheduler::default());
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (scheduler, inside) = (scheduler.clone(), inside.clone());
                std::thread::spawn(move || {
                    let client = scheduler.client();
                    client.set_min_rate(2.0);
                    for _ in 0..50 {
                        let _turn = client.turn(false);
                        let before = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(before, 0, "two turns at once");
                        std::thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    client.stats()
                })
            })
            .collect();
        for thread in threads {
            let stats = thread.join().unwrap();
            assert_eq!(stats.turns, 50);
            assert_eq!(stats.wait_buckets.iter().sum::<u64>(), 50);
        }
        assert_eq!(scheduler.clients(), 0, "dropped clients deregister");
        assert!(scheduler.busy() >= Duration::from_micros(200 * 200));
    }

    /// Polls until `ready`, for at most 30 s.
    fn wait_until(what: &str, ready: impl Fn() -> bool) {
        let started = Instant::now();
        while !ready() {
            assert!(started.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_flush_goes_before_frames_and_is_not_a_turn_of_its_own() {
        let scheduler = Arc::new(Scheduler::default());
        let (holder, framer, flusher) =
            (scheduler.client(), scheduler.client(), scheduler.client());
        let served = Mutex::new(Vec::new());
        let turn = holder.turn(false);
        assert!(!turn.others_waiting());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _turn = framer.turn(true);
                served.lock().unwrap().push("frame");
            });
            wait_until("the frame's stream never waited", || turn.others_waiting());
            let flushed = scope.spawn(|| {
                let _turn = flusher.flush_turn();
                served.lock().unwrap().push("flush");
            });
            wait_until("the flush never waited", || {
                scheduler
                    .lock()
                    .clients
                    .iter()
                    .any(|c| c.flush_waiting.is_some())
            });
            drop(turn);
            flushed.join().unwrap();
        });
        assert_eq!(*served.lock().unwrap(), ["flush", "frame"]);
        assert_eq!(flusher.stats().turns, 0);
        assert_eq!(framer.stats().turns, 1);
        let state = scheduler.lock();
        let flusher_state = state.clients.iter().find(|c| c.id == flusher.id).unwrap();
        assert_eq!(flusher_state.last_turn, None);
    }
}
