// SPDX-License-Identifier: MPL-2.0

//! The live worker: inference on its own thread, so the streaming thread never waits for it.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use facerec_core::detect::NetworkInput;
use facerec_core::engine::{Engine, FaceResult, StageTimes};
use facerec_core::frame::Frame;
use facerec_core::gallery::Gallery;
use facerec_core::schedule::{Client, Newest};
use facerec_core::tunables::Tunables;

use super::frame::FrameTimes;
use super::sync::lock;

/// Where the worker's results go (the element, through `bus::ElementSink`). A trait, so that
/// the worker needs nothing of the element and the element's modules need the worker only to
/// start it.
pub(super) trait LiveSink: Send + 'static {
    /// The element is gone: the worker stops.
    fn is_gone(&self) -> bool;
    /// A detected frame's faces, with the frame's times and the inference time.
    fn post(&self, faces: &[FaceResult], times: &FrameTimes, inference: std::time::Duration);
    /// Inference failed; the worker stops after this.
    fn fail(&self, err: &facerec_core::Error);
}

/// A frame handed to the live worker: the detector's network-size input, and a copy of the
/// frame's planes to align faces from at full resolution (the streaming thread draws on the
/// original once it has handed this over). With `face-crops` on, `times.crop_source` shares
/// the same copy.
pub(super) struct LiveJob {
    pub(super) input: NetworkInput<'static>,
    pub(super) source: Arc<Frame<Vec<u8>>>,
    pub(super) times: FrameTimes,
    pub(super) tuning: Tunables,
}

/// A waiting frame is replaced only once it is older than the worker's latest wait for a turn,
/// and at least this: about one preparation per turn however long turns take to come, and what
/// the worker analyses is at most one wait (or this) plus one frame interval old.
const REPLACE_AFTER: Duration = Duration::from_millis(100);
/// ... and at most this, so that a long wait once does not leave an old frame waiting.
const REPLACE_AFTER_MAX: Duration = Duration::from_secs(1);

#[derive(Default)]
struct LiveSlot {
    /// Only the newest frame waits: older ones are replaced (counted as stale), never queued.
    job: Newest<LiveJob>,
    /// When the waiting frame was handed over.
    queued_at: Option<Instant>,
    /// Frames not even prepared, because the waiting one was fresh enough.
    skipped: u64,
    /// How long the worker last waited for its turn.
    last_wait: Duration,
    /// A gallery swap for the worker to apply before its next frame.
    gallery: Option<Option<Arc<Gallery>>>,
    reset: bool,
    stop: bool,
    /// Test hook ([`super::FaceRec::hold_live_worker`]): the worker keeps the frame it took
    /// without analysing it, as a slow inference would.
    hold: bool,
    /// The worker is holding a frame now.
    holding: bool,
}

struct LiveShared {
    /// This stream's turns on the process's engine, which it shares with every other element.
    client: Arc<Client>,
    slot: Mutex<LiveSlot>,
    /// The copy of a frame the worker is done with, for the streaming thread to copy the next
    /// one into ([`LiveWorker::take_spare`]).
    spare: Mutex<Option<Frame<Vec<u8>>>>,
    wake: Condvar,
    latest: Mutex<Arc<Vec<FaceResult>>>,
    times: Mutex<StageTimes>,
}

impl LiveShared {
    /// Keeps the job's frame copy for the next job, once nothing else holds it (the crops'
    /// share goes with the job's times).
    fn recycle(&self, job: LiveJob) {
        let LiveJob { source, times, .. } = job;
        drop(times);
        if let Ok(frame) = Arc::try_unwrap(source) {
            *lock(&self.spare) = Some(frame);
        }
    }
}

/// Inference off the streaming thread: frames pass at input rate and are annotated with the
/// latest results, so a slow CPU never stalls a live source.
pub(super) struct LiveWorker {
    shared: Arc<LiveShared>,
    thread: Option<JoinHandle<()>>,
}

impl LiveWorker {
    pub(super) fn spawn(
        mut engine: Engine,
        client: Arc<Client>,
        sink: impl LiveSink,
    ) -> LiveWorker {
        let shared = Arc::new(LiveShared {
            client,
            slot: Mutex::default(),
            spare: Mutex::default(),
            wake: Condvar::new(),
            latest: Mutex::default(),
            times: Mutex::default(),
        });
        let worker_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("facerec-live".into())
            .spawn(move || {
                let shared = worker_shared;
                loop {
                    {
                        let mut slot = lock(&shared.slot);
                        while slot.job.is_empty() && !slot.stop {
                            slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
                        }
                        if slot.stop {
                            return;
                        }
                    }
                    // The frame is taken only once it is this stream's turn, so that it is
                    // the newest one: the frames that came while others ran were stale.
                    shared.client.set_min_rate(engine.tuning().min_detect_fps);
                    let asked = Instant::now();
                    let mut turn = Some(shared.client.turn(engine.recognising()));
                    let waited = asked.elapsed();
                    let (job, gallery, reset) = {
                        let mut slot = lock(&shared.slot);
                        slot.last_wait = waited;
                        let taken = (
                            slot.job.take(),
                            slot.gallery.take(),
                            std::mem::take(&mut slot.reset),
                        );
                        if slot.hold {
                            // Held without the turn, so that other streams keep running.
                            turn = None;
                            while slot.hold && !slot.stop {
                                slot.holding = true;
                                slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
                            }
                        }
                        slot.holding = false;
                        if slot.stop {
                            return;
                        }
                        taken
                    };
                    let Some(job) = job else { continue };
                    let turn = turn.unwrap_or_else(|| shared.client.turn(engine.recognising()));
                    if let Some(gallery) = gallery {
                        // Checked against the recognizer before it was handed over.
                        let _ = engine.set_gallery(gallery);
                    }
                    if reset {
                        engine.reset();
                    }
                    engine.tune(&job.tuning);
                    let runs_before = engine.times.detect_runs;
                    let result = engine
                        .process_turn(turn, &job.input, job.source.as_ref())
                        .map(|faces| faces.to_vec());
                    let detected = engine.times.detect_runs > runs_before;
                    *lock(&shared.times) = engine.times.clone();
                    if sink.is_gone() {
                        return;
                    }
                    match result {
                        Ok(faces) => {
                            let faces = Arc::new(faces);
                            *lock(&shared.latest) = faces.clone();
                            if detected {
                                sink.post(&faces, &job.times, engine.last_inference);
                            }
                            shared.recycle(job);
                        }
                        Err(err) => {
                            sink.fail(&err);
                            return;
                        }
                    }
                }
            })
            .expect("spawning a thread");
        LiveWorker {
            shared,
            thread: Some(thread),
        }
    }

    /// Whether the next frame should be prepared and submitted. While the worker waits for its
    /// turn with a frame younger than its latest wait ([`REPLACE_AFTER`] at least), the next
    /// one is not even scaled or copied (it counts as stale): with 8 cameras at 1080p on a busy
    /// engine, preparing frames at the source's rate took about a third of a core that the
    /// engine then lacked.
    pub(super) fn wants_frame(&self) -> bool {
        let mut slot = lock(&self.shared.slot);
        let keep_for = slot.last_wait.clamp(REPLACE_AFTER, REPLACE_AFTER_MAX);
        let fresh =
            !slot.job.is_empty() && slot.queued_at.is_some_and(|at| at.elapsed() < keep_for);
        if fresh {
            slot.skipped += 1;
        }
        !fresh
    }

    pub(super) fn submit(&self, job: LiveJob) {
        let mut slot = lock(&self.shared.slot);
        let replaced = slot.job.put(job);
        slot.queued_at = Some(Instant::now());
        drop(slot);
        self.shared.wake.notify_one();
        if let Some(replaced) = replaced {
            self.shared.recycle(replaced);
        }
    }

    /// A frame copy to reuse for the next job, if the worker has one spare.
    pub(super) fn take_spare(&self) -> Option<Frame<Vec<u8>>> {
        lock(&self.shared.spare).take()
    }

    pub(super) fn set_gallery(&self, gallery: Option<Arc<Gallery>>) {
        lock(&self.shared.slot).gallery = Some(gallery);
    }

    pub(super) fn reset(&self) {
        lock(&self.shared.slot).reset = true;
    }

    /// See [`super::FaceRec::hold_live_worker`].
    pub(super) fn hold(&self, hold: bool) {
        lock(&self.shared.slot).hold = hold;
        self.shared.wake.notify_all();
    }

    pub(super) fn holding(&self) -> bool {
        lock(&self.shared.slot).holding
    }

    pub(super) fn latest(&self) -> Arc<Vec<FaceResult>> {
        lock(&self.shared.latest).clone()
    }

    /// Frames dropped before the worker took them: replaced by a newer one, or not prepared.
    pub(super) fn stale(&self) -> u64 {
        let slot = lock(&self.shared.slot);
        slot.job.stale() + slot.skipped
    }

    /// The worker's engine times as of its last frame.
    pub(super) fn times(&self) -> StageTimes {
        lock(&self.shared.times).clone()
    }
}

impl Drop for LiveWorker {
    fn drop(&mut self) {
        lock(&self.shared.slot).stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
