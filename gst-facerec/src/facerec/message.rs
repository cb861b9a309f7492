// SPDX-License-Identifier: MPL-2.0

//! The `facerec` bus message as a type, so applications read it without knowing field names.
//! Absent timestamps are written as `GST_CLOCK_TIME_NONE` (`u64::MAX`, type `guint64`), and an
//! unembedded face's `distance` and `quality` as -1. A face's crop (property `face-crops`)
//! travels as fields `crop` (a buffer of packed RGB), `crop-x`, `crop-y`, `crop-width` and
//! `crop-height`, all absent when the face carries no crop.

use std::fmt;

use gst::glib;
use gst::prelude::*;

use facerec_core::engine::FaceResult;
use facerec_core::gallery::UNKNOWN;

/// Name of the element message's structure.
pub const MESSAGE_NAME: &str = "facerec";
/// Name of each structure in the message's `faces` array.
pub const FACE_NAME: &str = "face";

/// One face of a [`FaceRecMessage`].
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
    /// Detection score, 0..1.
    pub score: f64,
    /// The person's name, or `unknown`.
    pub name: String,
    /// Distance to the matched person; `None` when the face was not embedded (narrower than
    /// `min-face-size`, or no gallery), written as -1 on the bus.
    pub distance: Option<f64>,
    /// Whether the face was embedded and compared with the gallery.
    pub recognized: bool,
    pub track_id: u64,
    /// The latest embedding attempt's quality, 0..1 (size, sharpness, pose); `None` when the
    /// face was never tried (narrower than `min-face-size`, or no gallery), -1 on the bus.
    pub quality: Option<f64>,
    /// How sure the track is of `name`: its share of the track's evidence, 0..1 (0 until an
    /// attempt of good quality was made).
    pub confidence: f64,
    /// The face cut from the frame before anything was drawn on it (property `face-crops`):
    /// sent when the track first appears, when its decided name changes, and when its quality
    /// beats the best crop sent for it by 0.05.
    pub crop: Option<FaceCrop>,
}

/// A face cut from the full-resolution frame: its box plus 25% of its size on every side,
/// clipped to the frame, as packed RGB (3 bytes per pixel, rows without padding).
#[derive(Clone, PartialEq, Eq)]
pub struct FaceCrop {
    /// The crop's top-left corner in frame pixels.
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, R, G, B.
    pub rgb: Vec<u8>,
}

impl fmt::Debug for FaceCrop {
    // The pixels would drown any log line: their count says enough.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaceCrop")
            .field("x", &self.x)
            .field("y", &self.y)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rgb", &format_args!("<{} bytes>", self.rgb.len()))
            .finish()
    }
}

/// The `facerec` element message, posted for each processed frame that has faces.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRecMessage {
    /// The buffer's PTS (`timestamp` on the bus).
    pub pts: Option<gst::ClockTime>,
    pub stream_time: Option<gst::ClockTime>,
    pub running_time: Option<gst::ClockTime>,
    pub duration: Option<gst::ClockTime>,
    /// Time detection, alignment and embedding took for this frame.
    pub inference_ns: u64,
    pub faces: Vec<Face>,
}

/// Why a structure is not a [`FaceRecMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The structure (or a face in it) has another name.
    WrongName {
        expected: &'static str,
        found: String,
    },
    /// A field is missing or has another type.
    Field {
        field: &'static str,
        /// Index in `faces` when the field belongs to a face.
        face: Option<usize>,
        reason: String,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::WrongName { expected, found } => {
                write!(f, "structure is named {found:?}, expected {expected:?}")
            }
            MessageError::Field {
                field,
                face: Some(i),
                reason,
            } => write!(f, "faces[{i}].{field}: {reason}"),
            MessageError::Field {
                field,
                face: None,
                reason,
            } => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for MessageError {}

fn field<'a, T: glib::value::FromValue<'a>>(
    s: &'a gst::StructureRef,
    name: &'static str,
    face: Option<usize>,
) -> Result<T, MessageError> {
    s.get::<T>(name).map_err(|e| MessageError::Field {
        field: name,
        face,
        reason: e.to_string(),
    })
}

impl Face {
    /// Adds the fields the ROI meta's `facerec` parameters share with the bus message.
    fn shared_fields(&self, builder: gst::structure::Builder) -> gst::structure::Builder {
        builder
            .field("name", self.name.as_str())
            .field("distance", self.distance.unwrap_or(-1.0))
            .field("score", self.score)
            .field("track-id", self.track_id)
            .field("quality", self.quality.unwrap_or(-1.0))
            .field("confidence", self.confidence)
    }

    /// The `facerec` parameter structure of the face's `GstVideoRegionOfInterestMeta`.
    pub(crate) fn meta_params(&self) -> gst::Structure {
        self.shared_fields(gst::Structure::builder(MESSAGE_NAME))
            .build()
    }
}

impl From<&FaceResult> for Face {
    fn from(face: &FaceResult) -> Self {
        let b = face.bbox;
        Face {
            x: b.x.round() as i32,
            y: b.y.round() as i32,
            width: b.w.round() as i32,
            height: b.h.round() as i32,
            score: face.score as f64,
            name: face.label().unwrap_or(UNKNOWN).to_string(),
            distance: face
                .identity
                .as_ref()
                .and_then(|m| m.distance)
                .map(f64::from),
            recognized: face.identity.is_some(),
            track_id: face.track_id,
            quality: face.quality.map(f64::from),
            confidence: face.confidence as f64,
            crop: None,
        }
    }
}

impl From<&Face> for gst::Structure {
    fn from(face: &Face) -> Self {
        let builder = gst::Structure::builder(FACE_NAME)
            .field("x", face.x)
            .field("y", face.y)
            .field("width", face.width)
            .field("height", face.height)
            .field("recognized", face.recognized);
        let mut s = face.shared_fields(builder).build();
        if let Some(crop) = &face.crop {
            s.set("crop", gst::Buffer::from_slice(crop.rgb.clone()));
            s.set("crop-x", crop.x);
            s.set("crop-y", crop.y);
            s.set("crop-width", crop.width);
            s.set("crop-height", crop.height);
        }
        s
    }
}

impl Face {
    fn parse(s: &gst::StructureRef, index: usize) -> Result<Self, MessageError> {
        if s.name() != FACE_NAME {
            return Err(MessageError::WrongName {
                expected: FACE_NAME,
                found: s.name().to_string(),
            });
        }
        let i = Some(index);
        let distance: f64 = field(s, "distance", i)?;
        let quality: f64 = field(s, "quality", i)?;
        Ok(Face {
            x: field(s, "x", i)?,
            y: field(s, "y", i)?,
            width: field(s, "width", i)?,
            height: field(s, "height", i)?,
            score: field(s, "score", i)?,
            name: field(s, "name", i)?,
            // -1 on the bus: not embedded.
            distance: (distance >= 0.0).then_some(distance),
            recognized: field(s, "recognized", i)?,
            track_id: field(s, "track-id", i)?,
            // -1 on the bus: never tried.
            quality: (quality >= 0.0).then_some(quality),
            confidence: field(s, "confidence", i)?,
            crop: FaceCrop::parse(s, i)?,
        })
    }
}

impl FaceCrop {
    /// The crop fields of a face structure: `None` without a `crop` field, an error when it
    /// is there but its geometry is missing or does not match its size.
    fn parse(s: &gst::StructureRef, face: Option<usize>) -> Result<Option<Self>, MessageError> {
        if !s.has_field("crop") {
            return Ok(None);
        }
        let buffer: gst::Buffer = field(s, "crop", face)?;
        let (width, height): (u32, u32) = (
            field(s, "crop-width", face)?,
            field(s, "crop-height", face)?,
        );
        let map = buffer.map_readable().map_err(|e| MessageError::Field {
            field: "crop",
            face,
            reason: e.to_string(),
        })?;
        let expected = width as u64 * height as u64 * 3;
        if map.len() as u64 != expected {
            return Err(MessageError::Field {
                field: "crop",
                face,
                reason: format!(
                    "{} bytes, a {width}x{height} RGB crop has {expected}",
                    map.len()
                ),
            });
        }
        Ok(Some(FaceCrop {
            x: field(s, "crop-x", face)?,
            y: field(s, "crop-y", face)?,
            width,
            height,
            rgb: map.as_slice().to_vec(),
        }))
    }
}

impl TryFrom<&gst::StructureRef> for Face {
    type Error = MessageError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, MessageError> {
        Face::parse(s, 0)
    }
}

impl From<&FaceRecMessage> for gst::Structure {
    fn from(msg: &FaceRecMessage) -> Self {
        let faces: Vec<glib::SendValue> = msg
            .faces
            .iter()
            .map(|f| gst::Structure::from(f).to_send_value())
            .collect();
        // `Option<ClockTime>` is a `guint64` on the bus, `u64::MAX` when absent, as before.
        gst::Structure::builder(MESSAGE_NAME)
            .field("timestamp", msg.pts)
            .field("stream-time", msg.stream_time)
            .field("running-time", msg.running_time)
            .field("duration", msg.duration)
            .field("inference-ns", msg.inference_ns)
            .field("faces", gst::Array::from_values(faces))
            .build()
    }
}

impl TryFrom<&gst::StructureRef> for FaceRecMessage {
    type Error = MessageError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, MessageError> {
        if s.name() != MESSAGE_NAME {
            return Err(MessageError::WrongName {
                expected: MESSAGE_NAME,
                found: s.name().to_string(),
            });
        }
        let faces = field::<gst::Array>(s, "faces", None)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let face = v
                    .get::<&gst::StructureRef>()
                    .map_err(|e| MessageError::Field {
                        field: "faces",
                        face: Some(i),
                        reason: e.to_string(),
                    })?;
                Face::parse(face, i)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FaceRecMessage {
            pts: field(s, "timestamp", None)?,
            stream_time: field(s, "stream-time", None)?,
            running_time: field(s, "running-time", None)?,
            duration: field(s, "duration", None)?,
            inference_ns: field(s, "inference-ns", None)?,
            faces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FaceRecMessage {
        FaceRecMessage {
            pts: Some(gst::ClockTime::from_mseconds(40)),
            stream_time: Some(gst::ClockTime::from_mseconds(40)),
            running_time: None,
            duration: Some(gst::ClockTime::from_mseconds(33)),
            inference_ns: 12_345_678,
            faces: vec![
                Face {
                    x: 10,
                    y: -2,
                    width: 64,
                    height: 80,
                    score: 0.93,
                    name: "obama".into(),
                    distance: Some(0.41),
                    recognized: true,
                    track_id: 7,
                    quality: Some(0.82),
                    confidence: 0.75,
                    crop: Some(FaceCrop {
                        x: -6,
                        y: 0,
                        width: 2,
                        height: 3,
                        rgb: (0..18).collect(),
                    }),
                },
                Face {
                    x: 300,
                    y: 20,
                    width: 20,
                    height: 24,
                    score: 0.87,
                    name: UNKNOWN.into(),
                    distance: None,
                    recognized: false,
                    track_id: 8,
                    quality: None,
                    confidence: 0.0,
                    crop: None,
                },
            ],
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        gst::init().unwrap();
        let msg = sample();
        let s = gst::Structure::from(&msg);
        assert_eq!(FaceRecMessage::try_from(s.as_ref()), Ok(msg));
    }

    #[test]
    fn bus_fields_keep_their_names_and_types() {
        gst::init().unwrap();
        let s = gst::Structure::from(&sample());
        assert_eq!(s.name(), "facerec");
        assert_eq!(s.get::<u64>("timestamp"), Ok(40_000_000));
        assert_eq!(s.get::<u64>("stream-time"), Ok(40_000_000));
        // An absent timestamp is GST_CLOCK_TIME_NONE, as it was before the type existed.
        assert_eq!(s.get::<u64>("running-time"), Ok(u64::MAX));
        assert_eq!(s.get::<u64>("duration"), Ok(33_000_000));
        assert_eq!(s.get::<u64>("inference-ns"), Ok(12_345_678));
        let faces = s.get::<gst::Array>("faces").unwrap();
        assert_eq!(faces.len(), 2);
        let f = faces[1].get::<gst::Structure>().unwrap();
        assert_eq!(f.name(), "face");
        assert_eq!(
            (
                f.get::<i32>("x").unwrap(),
                f.get::<i32>("y").unwrap(),
                f.get::<i32>("width").unwrap(),
                f.get::<i32>("height").unwrap(),
            ),
            (300, 20, 20, 24)
        );
        assert_eq!(f.get::<f64>("score"), Ok(0.87));
        assert_eq!(f.get::<String>("name").unwrap(), "unknown");
        assert_eq!(f.get::<f64>("distance"), Ok(-1.0));
        assert_eq!(f.get::<bool>("recognized"), Ok(false));
        assert_eq!(f.get::<u64>("track-id"), Ok(8));
        assert_eq!(f.get::<f64>("quality"), Ok(-1.0));
        assert_eq!(f.get::<f64>("confidence"), Ok(0.0));
        assert_eq!(
            sample().faces[0].meta_params().to_string(),
            "facerec, name=(string)obama, distance=(double)0.40999999999999998, \
             score=(double)0.93000000000000005, track-id=(guint64)7, \
             quality=(double)0.81999999999999995, confidence=(double)0.75;"
        );
    }

    #[test]
    fn crops_travel_as_a_buffer_and_four_numbers_or_not_at_all() {
        gst::init().unwrap();
        let s = gst::Structure::from(&sample());
        let faces = s.get::<gst::Array>("faces").unwrap();
        let with = faces[0].get::<gst::Structure>().unwrap();
        let buffer = with.get::<gst::Buffer>("crop").unwrap();
        assert_eq!(
            buffer.map_readable().unwrap().as_slice(),
            (0..18).collect::<Vec<u8>>()
        );
        assert_eq!(with.get::<i32>("crop-x"), Ok(-6));
        assert_eq!(with.get::<i32>("crop-y"), Ok(0));
        assert_eq!(with.get::<u32>("crop-width"), Ok(2));
        assert_eq!(with.get::<u32>("crop-height"), Ok(3));
        let without = faces[1].get::<gst::Structure>().unwrap();
        for name in ["crop", "crop-x", "crop-y", "crop-width", "crop-height"] {
            assert!(!without.has_field(name), "{name}");
        }
        // The ROI meta never carries the pixels.
        assert!(!sample().faces[0].meta_params().has_field("crop"));
        assert_eq!(
            format!("{:?}", sample().faces[0].crop.as_ref().unwrap()),
            "FaceCrop { x: -6, y: 0, width: 2, height: 3, rgb: <18 bytes> }"
        );

        // A crop whose size does not match its geometry, or without its geometry, is refused.
        let mut bad = with.clone();
        bad.set("crop-width", 3u32);
        assert_eq!(
            Face::try_from(bad.as_ref()).unwrap_err().to_string(),
            "faces[0].crop: 18 bytes, a 3x3 RGB crop has 27"
        );
        let mut bad = with.clone();
        bad.remove_field("crop-y");
        assert!(matches!(
            Face::try_from(bad.as_ref()),
            Err(MessageError::Field {
                field: "crop-y",
                ..
            })
        ));
    }

    #[test]
    fn malformed_structures_give_a_typed_error() {
        gst::init().unwrap();
        let other = gst::Structure::builder("facerec-stats").build();
        assert_eq!(
            FaceRecMessage::try_from(other.as_ref()),
            Err(MessageError::WrongName {
                expected: "facerec",
                found: "facerec-stats".into()
            })
        );

        let mut s = gst::Structure::from(&sample());
        s.set("inference-ns", "fast");
        let err = FaceRecMessage::try_from(s.as_ref()).unwrap_err();
        assert!(
            matches!(
                err,
                MessageError::Field {
                    field: "inference-ns",
                    face: None,
                    ..
                }
            ),
            "{err:?}"
        );

        let mut s = gst::Structure::from(&sample());
        s.remove_field("timestamp");
        let err = FaceRecMessage::try_from(s.as_ref()).unwrap_err();
        assert!(
            matches!(
                err,
                MessageError::Field {
                    field: "timestamp",
                    face: None,
                    ..
                }
            ),
            "{err:?}"
        );

        // A face without its track id names the face and the field.
        let mut broken = gst::Structure::from(&sample().faces[1]);
        broken.remove_field("track-id");
        let mut s = gst::Structure::from(&sample());
        s.set(
            "faces",
            gst::Array::new([gst::Structure::from(&sample().faces[0]), broken]),
        );
        let err = FaceRecMessage::try_from(s.as_ref()).unwrap_err();
        assert!(
            matches!(
                err,
                MessageError::Field {
                    field: "track-id",
                    face: Some(1),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("faces[1].track-id: "), "{err}");
    }
}
