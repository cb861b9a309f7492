// SPDX-License-Identifier: MPL-2.0

//! The per-run processor: the engine on the streaming thread, every frame in order, or behind
//! the live worker, which analyses the newest frame while frames pass with the latest results.
//! Either way one call turns a frame into the faces to redact, draw and attach, and in sync
//! mode into the message to post (the live worker posts its own).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facerec_core::detect::NetworkInput;
use facerec_core::engine::{Engine, FaceResult, StageTimes};
use facerec_core::frame::Frame;
use facerec_core::gallery::Gallery;
use facerec_core::schedule::{Client, ClientStats, Scheduler};
use facerec_core::tunables::Tunables;

use super::crops::CropPolicy;
use super::frame::FrameTimes;
use super::live::{LiveJob, LiveSink, LiveWorker};
use super::message::FaceCrop;
use super::sync::lock;

enum Mode {
    Sync(Box<Engine>),
    Live(LiveWorker),
}

/// The engine of one run (`start` to `stop`), in the mode the `live` property chose.
pub(super) struct Processor {
    mode: Mode,
    /// This element's turns on the process's engine (`facerec_core::schedule`): its sessions
    /// are shared with every other facerec element in the process.
    client: Arc<Client>,
    /// Copying frames for the live worker (`stats`' convert-ns, with the scaling).
    pub(super) copy_time: Duration,
}

/// What the processor made of one frame.
pub(super) struct Analysis {
    /// The faces to show on the frame: its own, or the latest known.
    pub(super) faces: Arc<Vec<FaceResult>>,
    /// Sync mode, a frame that was detected on: the message to post now.
    pub(super) post: Option<Post>,
}

/// The rest of a frame's message, beside its faces and times.
pub(super) struct Post {
    /// Empty, or one per face.
    pub(super) crops: Vec<Option<FaceCrop>>,
    pub(super) inference: Duration,
}

impl Processor {
    /// Every frame in order on the streaming thread.
    pub(super) fn sync(engine: Engine) -> Processor {
        Processor {
            mode: Mode::Sync(Box::new(engine)),
            client: Arc::new(Scheduler::global().client()),
            copy_time: Duration::ZERO,
        }
    }

    /// The newest frame on the live worker's thread, which posts its results to `sink`.
    pub(super) fn live(engine: Engine, sink: impl LiveSink) -> Processor {
        let client = Arc::new(Scheduler::global().client());
        Processor {
            mode: Mode::Live(LiveWorker::spawn(engine, client.clone(), sink)),
            client,
            copy_time: Duration::ZERO,
        }
    }

    pub(super) fn set_gallery(&mut self, gallery: Option<Arc<Gallery>>) {
        match &mut self.mode {
            Mode::Sync(engine) => {
                // The gallery was checked against this recognizer when it was loaded.
                let _ = engine.set_gallery(gallery);
            }
            Mode::Live(worker) => worker.set_gallery(gallery),
        }
    }

    /// Forgets all tracks, after a seek or a change of frame size.
    pub(super) fn reset_tracks(&mut self) {
        match &mut self.mode {
            Mode::Sync(engine) => engine.reset(),
            Mode::Live(worker) => worker.reset(),
        }
    }

    pub(super) fn stage_times(&self) -> StageTimes {
        match &self.mode {
            Mode::Sync(engine) => engine.times.clone(),
            Mode::Live(worker) => worker.times(),
        }
    }

    /// This element's turns on the shared engine, and the frames it dropped as stale (live
    /// mode: replaced by a newer frame before the worker took them).
    pub(super) fn schedule_stats(&self) -> (ClientStats, u64) {
        let stale = match &self.mode {
            Mode::Live(worker) => worker.stale(),
            Mode::Sync(_) => 0,
        };
        (self.client.stats(), stale)
    }

    /// Test hook: see `FaceRec::hold_live_worker`. Nothing to hold in sync mode.
    pub(super) fn hold(&self, hold: bool) {
        if let Mode::Live(worker) = &self.mode {
            worker.hold(hold);
        }
    }

    /// Whether the live worker is holding a frame now.
    pub(super) fn holding(&self) -> bool {
        match &self.mode {
            Mode::Live(worker) => worker.holding(),
            Mode::Sync(_) => false,
        }
    }

    /// Applies `tuning` and says whether the next frame needs the detector's input: in sync
    /// mode, frames between detections (detect-interval > 1) are not scaled at all; in live
    /// mode, frames the worker would drop as stale are not either.
    pub(super) fn needs_input(&mut self, tuning: &Tunables) -> bool {
        match &mut self.mode {
            Mode::Sync(engine) => {
                engine.tune(tuning);
                engine.needs_frame()
            }
            Mode::Live(worker) => worker.wants_frame(),
        }
    }

    /// Analyses one frame: `source` is its planes at full resolution, `input` the detector's
    /// input when [`Self::needs_input`] asked for it. With `crops` (`face-crops` on) they are
    /// cut here, before redaction and drawing touch the frame.
    pub(super) fn analyse(
        &mut self,
        element: &super::FaceRec,
        input: Option<NetworkInput<'static>>,
        source: &Frame<&[u8]>,
        times: &FrameTimes,
        tuning: Tunables,
        crops: Option<&Mutex<CropPolicy>>,
    ) -> Result<Analysis, gst::FlowError> {
        match (&mut self.mode, input) {
            (Mode::Sync(engine), Some(input)) => {
                self.client.set_min_rate(tuning.min_detect_fps);
                let turn = self.client.turn(engine.recognising());
                let faces = engine.process_turn(turn, &input, source).map_err(|e| {
                    gst::element_error!(
                        element,
                        gst::StreamError::Failed,
                        ("Inference failed: {}", e)
                    );
                    gst::FlowError::Error
                })?;
                let crops = match crops {
                    Some(policy) if !faces.is_empty() => lock(policy).crops(faces, source),
                    _ => Vec::new(),
                };
                Ok(Analysis {
                    faces: Arc::new(faces.to_vec()),
                    post: Some(Post {
                        crops,
                        inference: engine.last_inference,
                    }),
                })
            }
            (Mode::Sync(engine), None) => Ok(Analysis {
                faces: Arc::new(engine.carry_over().to_vec()),
                post: None,
            }),
            (Mode::Live(worker), input) => {
                if let Some(input) = input {
                    let started = Instant::now();
                    let copied = match worker.take_spare() {
                        Some(mut spare) => source.copy_into(&mut spare).map(|()| spare),
                        None => source.to_owned_frame(),
                    };
                    let job_source = Arc::new(copied.map_err(|e| {
                        gst::element_error!(element, gst::StreamError::Format, ("{}", e));
                        gst::FlowError::Error
                    })?);
                    // The worker posts later, when this frame may be drawn on: its crops are
                    // cut from the worker's copy, which nothing draws on.
                    let mut job_times = times.clone();
                    if crops.is_some() {
                        job_times.crop_source = Some(job_source.clone());
                    }
                    self.copy_time += started.elapsed();
                    worker.submit(LiveJob {
                        input,
                        source: job_source,
                        times: job_times,
                        tuning,
                    });
                }
                Ok(Analysis {
                    faces: worker.latest(),
                    post: None,
                })
            }
        }
    }
}
