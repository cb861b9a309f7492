//! The recorder thread: turns the cameras' event drafts into history. It encodes each face crop
//! as JPEG, gives unknown faces their stranger id (from the crop's embedding), stores the event
//! and its crop, and only then announces it on the SSE stream, with its history id.
//!
//! An event that cannot be stored (a full disk) is announced all the same, with the id
//! [`UNSTORED_ID`] (0) and no crop (`face_url` null), and counted in
//! `facerec_store_errors_total` and `facerec_events_dropped_total`: live notifications do not
//! depend on the disk.
//!
//! A thread of its own, so that JPEG encoding, an embedding and a disk write never hold up a
//! camera's bus. The cameras reach it as an [`EventSink`] (its `track` events); it passes the
//! stored events on to the sink it was started with. While no event comes, it applies the
//! history's retention every [`IDLE_RETENTION`], so that space is freed (`--min-free-mb`) even
//! when nobody is in view.
//!
//! Services layer: imports the domain, the sink interface and the store, library, strangers and
//! metrics services.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::domain::{Draft, EventKind, lock};
use crate::metrics::Metrics;
use crate::sink::EventSink;
use crate::store::{Store, UNSTORED_ID, stored_event};
use crate::strangers::Strangers;

/// Drafts waiting for the recorder; past this, new ones are dropped with a warning rather than
/// letting a stuck disk grow memory without bound.
const QUEUE: usize = 256;

/// How often the retention is applied while no event comes (an insert applies it too).
pub const IDLE_RETENTION: Duration = Duration::from_secs(10);

/// A failure that repeats (every event on a full disk) is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct RecorderHandle {
    sender: SyncSender<Draft>,
    metrics: Arc<Metrics>,
}

impl RecorderHandle {
    pub fn submit(&self, draft: Draft) {
        match self.sender.try_send(draft) {
            Ok(()) => {}
            Err(TrySendError::Full(d)) => {
                self.metrics.events_dropped.inc();
                tracing::warn!(camera = %d.event.camera, track = d.event.track_id, "history queue full: event dropped")
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl EventSink for RecorderHandle {
    fn track(&self, draft: &Draft) {
        self.submit(draft.clone());
    }
}

pub struct Recorder {
    pub store: Arc<Store>,
    /// The recorder's own engine (the library has its own): crops are embedded for stranger ids.
    pub engine: Arc<std::sync::Mutex<facerec_core::engine::Engine>>,
    pub strangers: Arc<std::sync::Mutex<Strangers>>,
    /// `events_dropped` and `store_errors`.
    pub metrics: Arc<Metrics>,
}

/// A repeating failure, logged when it first happens and then at most every [`LOG_EVERY`] with
/// how many times it happened since.
#[derive(Default)]
struct Repeating {
    logged: Option<Instant>,
    unlogged: u64,
}

impl Repeating {
    /// How many failures the line to log now stands for, or `None` to stay quiet.
    fn due(&mut self) -> Option<u64> {
        self.unlogged += 1;
        if self.logged.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return None;
        }
        self.logged = Some(Instant::now());
        Some(std::mem::take(&mut self.unlogged))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// JPEG of a crop (packed RGB), encoded from the crop's own bytes.
pub fn crop_jpeg(crop: &gstfacerec::FaceCrop) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(
            &crop.rgb,
            crop.width,
            crop.height,
            image::ExtendedColorType::Rgb8,
        )
        .ok()?;
    Some(out)
}

impl Recorder {
    /// Starts the recorder thread; `stored` gets each event once it is in the history.
    pub fn start(self, stored: Arc<dyn EventSink>) -> RecorderHandle {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let metrics = self.metrics.clone();
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || self.run(receiver, stored.as_ref()))
            .expect("spawning a thread");
        RecorderHandle { sender, metrics }
    }

    fn run(self, receiver: Receiver<Draft>, stored: &dyn EventSink) {
        // (camera, track) -> stranger id, for the later events of the same track.
        let mut track_strangers: HashMap<(String, u64), String> = HashMap::new();
        let mut last_cleanup = Instant::now();
        let (mut insert_failures, mut retention_failures) =
            (Repeating::default(), Repeating::default());
        loop {
            let draft = match receiver.recv_timeout(IDLE_RETENTION) {
                Ok(d) => d,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    lock(&self.strangers).expire(Instant::now());
                    if let Err(e) = self.store.enforce_retention(now_ms())
                        && let Some(times) = retention_failures.due()
                    {
                        tracing::warn!(error = %e, times, "history retention failed");
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if last_cleanup.elapsed() > Duration::from_secs(60) {
                lock(&self.strangers).expire(Instant::now());
                last_cleanup = Instant::now();
            }
            let Draft { mut event, crop } = draft;
            let key = (event.camera.clone(), event.track_id);
            event.crop_jpeg = crop.as_deref().and_then(crop_jpeg);
            if event.name == facerec_core::gallery::UNKNOWN {
                event.stranger = match track_strangers.get(&key) {
                    Some(id) => Some(id.clone()),
                    None => {
                        let embedding = crop.as_deref().and_then(|c| {
                            let image =
                                image::RgbImage::from_raw(c.width, c.height, c.rgb.clone())?;
                            crate::library::embed_crop(&self.engine, &image)
                        });
                        embedding.map(|e| {
                            let id = lock(&self.strangers).assign(&e, Instant::now());
                            track_strangers.insert(key.clone(), id.clone());
                            id
                        })
                    }
                };
            }
            if event.kind == EventKind::Ended {
                track_strangers.remove(&key);
            }
            if track_strangers.len() > 10_000 {
                track_strangers.clear();
            }
            // The live copy first: `insert` consumes the event.
            let unstored = stored_event(&event, UNSTORED_ID);
            match self.store.insert(event) {
                Ok(event) => stored.recognition(&event),
                Err(e) => {
                    self.metrics.store_errors.inc();
                    self.metrics.events_dropped.inc();
                    if let Some(times) = insert_failures.due() {
                        tracing::warn!(error = %e, times, "history event not stored (sent live without an id)");
                    }
                    stored.recognition(&unstored);
                }
            }
        }
    }
}
