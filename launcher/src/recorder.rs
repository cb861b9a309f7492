//! The recorder thread: turns the cameras' event drafts into history. It encodes each face crop
//! as JPEG, gives unknown faces their stranger id (from the crop's embedding), stores the event
//! and its crop, and only then announces it on the SSE stream, with its history id.
//!
//! A thread of its own, so that JPEG encoding, an embedding and a disk write never hold up a
//! camera's bus. The cameras reach it as an [`EventSink`] (its `track` events); it passes the
//! stored events on to the sink it was started with.
//!
//! Services layer: imports the domain, the sink interface and the store, library and
//! strangers services.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::domain::{Draft, EventKind, lock};
use crate::sink::EventSink;
use crate::store::Store;
use crate::strangers::Strangers;

/// Drafts waiting for the recorder; past this, new ones are dropped with a warning rather than
/// letting a stuck disk grow memory without bound.
const QUEUE: usize = 256;

#[derive(Clone)]
pub struct RecorderHandle {
    sender: SyncSender<Draft>,
}

impl RecorderHandle {
    pub fn submit(&self, draft: Draft) {
        match self.sender.try_send(draft) {
            Ok(()) => {}
            Err(TrySendError::Full(d)) => {
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
    /// The engine the library embeds photos with, shared: crops are embedded for stranger ids.
    pub engine: Arc<std::sync::Mutex<facerec_core::engine::Engine>>,
    pub strangers: Arc<std::sync::Mutex<Strangers>>,
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
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || self.run(receiver, stored.as_ref()))
            .expect("spawning a thread");
        RecorderHandle { sender }
    }

    fn run(self, receiver: Receiver<Draft>, stored: &dyn EventSink) {
        // (camera, track) -> stranger id, for the later events of the same track.
        let mut track_strangers: HashMap<(String, u64), String> = HashMap::new();
        let mut last_cleanup = Instant::now();
        loop {
            let draft = match receiver.recv_timeout(Duration::from_secs(60)) {
                Ok(d) => d,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    lock(&self.strangers).expire(Instant::now());
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
            match self.store.insert(event) {
                Ok(event) => stored.recognition(&event),
                Err(e) => tracing::warn!(error = %e, "history event not stored"),
            }
        }
    }
}
