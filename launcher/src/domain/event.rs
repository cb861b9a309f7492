//! The event vocabulary: why an event was recorded ([`EventKind`]), an event as a camera
//! drafts it ([`Draft`]), as it is stored ([`NewEvent`]) and as it was stored ([`StoredEvent`],
//! the history API's JSON), and who a camera has in view ([`Presence`]).
//!
//! Domain layer: no I/O; imports only std, serde and the element's plain data types.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// Why an event was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A track was first named.
    Named,
    /// A track's decided name changed.
    Renamed,
    /// An unknown face was tracked for long enough.
    Unknown,
    /// A track ended (with its first and last time).
    Ended,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Named => "named",
            EventKind::Renamed => "renamed",
            EventKind::Unknown => "unknown",
            EventKind::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "named" => EventKind::Named,
            "renamed" => EventKind::Renamed,
            "unknown" => EventKind::Unknown,
            "ended" => EventKind::Ended,
            _ => return None,
        })
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub camera: String,
    pub kind: EventKind,
    /// A person, or `unknown`.
    pub name: String,
    /// `stranger-7` for unknown faces.
    pub stranger: Option<String>,
    pub distance: Option<f64>,
    pub confidence: Option<f64>,
    pub quality: Option<f64>,
    pub track_id: u64,
    /// x, y, width, height in frame pixels.
    pub bbox: [i32; 4],
    /// Unix milliseconds.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub time_ms: i64,
    pub crop_jpeg: Option<Vec<u8>>,
}

/// A recorded event. Serializes as the history API's JSON (see the `Serialize` impl).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub camera: String,
    pub kind: EventKind,
    pub name: String,
    pub stranger: Option<String>,
    pub distance: Option<f64>,
    pub confidence: Option<f64>,
    pub quality: Option<f64>,
    pub track_id: u64,
    pub bbox: [i32; 4],
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub time_ms: i64,
    pub has_crop: bool,
}

/// RFC 3339 UTC with milliseconds; times outside year 1970 to 9999 are clamped to it (the
/// formatter covers only that range).
pub fn rfc3339_ms(ms: i64) -> String {
    const MAX_MS: i64 = 253_402_300_799_999;
    let ms = ms.clamp(0, MAX_MS) as u64;
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl Serialize for StoredEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(14))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("camera", &self.camera)?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("stranger", &self.stranger)?;
        map.serialize_entry("distance", &self.distance)?;
        map.serialize_entry("confidence", &self.confidence)?;
        map.serialize_entry("quality", &self.quality)?;
        map.serialize_entry("track_id", &self.track_id)?;
        map.serialize_entry("box", &self.bbox)?;
        map.serialize_entry("first_seen", &rfc3339_ms(self.first_seen_ms))?;
        map.serialize_entry("last_seen", &rfc3339_ms(self.last_seen_ms))?;
        map.serialize_entry("time", &rfc3339_ms(self.time_ms))?;
        let face_url = self
            .has_crop
            .then(|| format!("/api/history/{}/face.jpg", self.id));
        map.serialize_entry("face_url", &face_url)?;
        map.end()
    }
}

/// Who a camera has in view, from its current tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    /// The names that current tracks have been announced with (no `unknown`).
    pub people: BTreeSet<String>,
    /// A current track has been announced as unknown (after --unknown-after).
    pub unknown: bool,
    /// Current tracks, announced or not.
    pub faces: usize,
}

/// A crop of the face from the full-resolution frame, as the element attached it.
pub type Crop = Arc<gstfacerec::FaceCrop>;

/// An event as a camera sees it: the stored event before its stranger id and JPEG, which the
/// recorder adds, with the raw crop they come from.
#[derive(Debug, Clone)]
pub struct Draft {
    pub event: NewEvent,
    pub crop: Option<Crop>,
}
