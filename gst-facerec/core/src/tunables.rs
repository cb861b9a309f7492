//! The engine's tunables: the numeric settings that may change from one frame to the next,
//! each declared once below with its name, type, range, default, unit, nick and blurb.
//!
//! Everything else is derived from [`TUNABLES`] and [`Tunables`]: the facerec element's
//! properties, the launcher's flags, environment variables and config-file keys with their
//! range checks, the model tool's defaults, and [`crate::engine::EngineConfig`], which holds a
//! [`Tunables`]. Adding one is one entry here and its use in the engine.

use std::fmt;

/// A tunable's value, typed as declared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TunableValue {
    Float(f32),
    UInt(u32),
}

impl TunableValue {
    pub fn as_f64(self) -> f64 {
        match self {
            TunableValue::Float(v) => v as f64,
            TunableValue::UInt(v) => v as f64,
        }
    }
}

/// As a user writes it: `0.85`, `640` (an `f32` is shown as `f32`, not widened to `f64`).
impl fmt::Display for TunableValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunableValue::Float(v) => v.fmt(f),
            TunableValue::UInt(v) => v.fmt(f),
        }
    }
}

/// The Rust types a tunable may have, and how they convert to and from [`TunableValue`].
pub trait TunableType: Copy {
    fn into_value(self) -> TunableValue;
    fn from_value(value: TunableValue) -> Option<Self>;
}

impl TunableType for f32 {
    fn into_value(self) -> TunableValue {
        TunableValue::Float(self)
    }
    fn from_value(value: TunableValue) -> Option<Self> {
        match value {
            TunableValue::Float(v) => Some(v),
            TunableValue::UInt(_) => None,
        }
    }
}

impl TunableType for u32 {
    fn into_value(self) -> TunableValue {
        TunableValue::UInt(self)
    }
    fn from_value(value: TunableValue) -> Option<Self> {
        match value {
            TunableValue::UInt(v) => Some(v),
            TunableValue::Float(_) => None,
        }
    }
}

/// A tunable's type with its default and inclusive range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    Float { default: f32, min: f32, max: f32 },
    UInt { default: u32, min: u32, max: u32 },
}

/// The description of one tunable: what the element, the launcher and the docs show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tunable {
    /// The element's property, the launcher's flag (`--NAME`) and config-file key.
    pub name: &'static str,
    pub nick: &'static str,
    pub blurb: &'static str,
    /// What the number counts (`px`, `frames`); empty for a score or a distance.
    pub unit: &'static str,
    pub domain: Domain,
}

impl Tunable {
    /// The tunable called `name`.
    pub fn find(name: &str) -> Option<&'static Tunable> {
        TUNABLES.iter().find(|t| t.name == name)
    }

    pub fn default_value(&self) -> TunableValue {
        match self.domain {
            Domain::Float { default, .. } => TunableValue::Float(default),
            Domain::UInt { default, .. } => TunableValue::UInt(default),
        }
    }

    /// The inclusive range.
    pub fn range(&self) -> (TunableValue, TunableValue) {
        match self.domain {
            Domain::Float { min, max, .. } => (TunableValue::Float(min), TunableValue::Float(max)),
            Domain::UInt { min, max, .. } => (TunableValue::UInt(min), TunableValue::UInt(max)),
        }
    }

    /// Whether `value` is within the range (NaN never is).
    pub fn accepts(&self, value: f64) -> bool {
        let (min, max) = self.range();
        (min.as_f64()..=max.as_f64()).contains(&value)
    }

    /// The launcher's environment variable: `FACEREC_` and the name in upper snake case.
    pub fn env(&self) -> String {
        format!("FACEREC_{}", self.name.to_uppercase().replace('-', "_"))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TunableError {
    #[error("no tunable is called {0}")]
    Unknown(String),
    #[error("{name} takes a {expected}, not {value}")]
    WrongType {
        name: &'static str,
        expected: &'static str,
        value: TunableValue,
    },
    #[error("{name} {value} is out of range: {min} to {max}")]
    OutOfRange {
        name: &'static str,
        value: TunableValue,
        min: TunableValue,
        max: TunableValue,
    },
}

/// The [`TunableValue`] variant of a declared type: only these types can be declared.
macro_rules! domain {
    (f32, $default:expr, $min:expr, $max:expr) => {
        Domain::Float {
            default: $default,
            min: $min,
            max: $max,
        }
    };
    (u32, $default:expr, $min:expr, $max:expr) => {
        Domain::UInt {
            default: $default,
            min: $min,
            max: $max,
        }
    };
}

/// Declares the tunables: the [`Tunables`] struct (a typed field each, and its defaults) and
/// the [`TUNABLES`] table, in the same order.
macro_rules! tunables {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ident {
            name: $name:literal,
            nick: $nick:literal,
            unit: $unit:literal,
            default: $default:expr,
            range: $min:expr, $max:expr,
            blurb: $blurb:literal $(,)?
        }
    )*) => {
        /// Every tunable's value. Its `Default` is the declared defaults.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct Tunables {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl Tunables {
            /// The declared defaults, usable in constants.
            pub const DEFAULT: Tunables = Tunables { $($field: $default,)* };

            /// The value of the tunable called `name`.
            pub fn get(&self, name: &str) -> Option<TunableValue> {
                match name {
                    $($name => Some(self.$field.into_value()),)*
                    _ => None,
                }
            }

            /// Sets the tunable called `name`, refusing a value of another type or out of range.
            pub fn set(&mut self, name: &str, value: TunableValue) -> Result<(), TunableError> {
                let tunable =
                    Tunable::find(name).ok_or_else(|| TunableError::Unknown(name.to_string()))?;
                if !tunable.accepts(value.as_f64()) {
                    let (min, max) = tunable.range();
                    return Err(TunableError::OutOfRange { name: tunable.name, value, min, max });
                }
                match name {
                    $($name => {
                        self.$field = <$ty as TunableType>::from_value(value).ok_or(
                            TunableError::WrongType {
                                name: tunable.name,
                                expected: stringify!($ty),
                                value,
                            },
                        )?;
                    })*
                    _ => unreachable!("found in TUNABLES"),
                }
                Ok(())
            }
        }

        /// Every tunable, in the order of the element's properties.
        pub static TUNABLES: &[Tunable] = &[$(
            Tunable {
                name: $name,
                nick: $nick,
                blurb: $blurb,
                unit: $unit,
                domain: domain!($ty, $default, $min, $max),
            },
        )*];
    };
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables::DEFAULT
    }
}

tunables! {
    /// Minimum YuNet score for a detection.
    detect_threshold: f32 {
        name: "detect-threshold",
        nick: "Detection threshold",
        unit: "",
        default: 0.8,
        range: 0.0, 1.0,
        blurb: "Minimum detection score (YuNet), for video and stills: 0.8 is the highest recall with no false detection and no wrong name on the test data (docs/ACCURACY.md); dog faces score up to 0.77",
    }
    /// Largest embedding distance that still names a face ([`crate::gallery`]).
    match_threshold: f32 {
        name: "match-threshold",
        nick: "Match threshold",
        unit: "",
        default: 0.6,
        range: 0.0, 4.0,
        blurb: "Maximum Euclidean embedding distance for a face to be named (dlib: same person below 0.6)",
    }
    /// The nearest person must be closer than the second-nearest person by this much for an
    /// attempt to count for them ([`crate::identity`]).
    match_margin: f32 {
        name: "match-margin",
        nick: "Match margin",
        unit: "",
        default: 0.15,
        range: 0.0, 4.0,
        blurb: "When two people are both within match-threshold of a face, it is named only if the nearer is closer by at least this distance; otherwise the attempt counts as unknown (a look-alike, or one person enrolled under two names)",
    }
    /// Attempts of lower quality ([`crate::quality`]) are not used for naming.
    min_quality: f32 {
        name: "min-quality",
        nick: "Minimum quality",
        unit: "",
        default: 0.25,
        range: 0.0, 1.0,
        blurb: "Embedding attempts of lower quality (0-1, from face size, sharpness and pose) are not used to name a track",
    }
    /// Evidence a person needs before a track shows their name.
    confidence_bar: f32 {
        name: "confidence-bar",
        nick: "Confidence bar",
        unit: "",
        default: 0.6,
        range: 0.0, 100.0,
        blurb: "Evidence a person needs, summed over a track's attempts (quality x match strength, 1 for one perfect attempt), before the track shows their name",
    }
    /// Run detection on every N-th frame; in between, the last faces are reported again.
    detect_interval: u32 {
        name: "detect-interval",
        nick: "Detection interval",
        unit: "frames",
        default: 1,
        range: 1, 1000,
        blurb: "Run detection on every N-th frame; frames in between carry the tracked faces of the last detection",
    }
    /// Re-embed a named track every N detection frames (unknown tracks: three times as often).
    recognize_interval: u32 {
        name: "recognize-interval",
        nick: "Recognition interval",
        unit: "detections",
        default: 15,
        range: 1, 10000,
        blurb: "Re-run recognition on a named track every N detections (unknown tracks three times as often); new tracks are recognised at once",
    }
    /// Width frames are scaled down to before detection; 0 keeps the native resolution.
    /// Frames narrower than this are never scaled up.
    network_width: u32 {
        name: "network-width",
        nick: "Network width",
        unit: "px",
        default: 640,
        range: 0, 8192,
        blurb: "Width frames are scaled down to before detection (never up); 0 keeps the native width. Above about 640 YuNet may see large faces poorly",
    }
    /// Faces narrower than this (in frame pixels) are boxed but not embedded: YuNet's landmarks
    /// get too noisy for a reliable embedding (shared/models/README.md §1).
    min_face_size: u32 {
        name: "min-face-size",
        nick: "Minimum face size",
        unit: "px",
        default: 40,
        range: 0, 8192,
        blurb: "Faces narrower than this many pixels are boxed but not recognised (their landmarks are too noisy)",
    }
    /// Detections per second every live stream is promised before any stream gets more than
    /// its share of a shared engine ([`crate::schedule`]); below it a camera is overloaded.
    min_detect_fps: f32 {
        name: "min-detect-fps",
        nick: "Minimum detection rate",
        unit: "fps",
        default: 2.0,
        range: 0.0, 30.0,
        blurb: "Detections per second each live stream sharing the process's inference engine is served first, before any stream gets more than its share; a stream served less is overloaded",
    }
    /// Most chips in one recognizer run shared by several streams ([`crate::batch`]); 1 runs
    /// each stream's chips in its own turn.
    recognition_batch: u32 {
        name: "recognition-batch",
        nick: "Recognition batch",
        unit: "faces",
        default: 8,
        range: 1, 64,
        blurb: "Most faces, from every stream sharing the process's recognizer, embedded in one run: while other streams wait for the engine, a stream's faces wait for the next turn to share its run (faster per face, docs/PERFORMANCE.md); 1 embeds each stream's faces in its own turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declaration is consistent: its default within its range, its name unique, and
    /// `get`/`set` by name reach its field.
    #[test]
    fn every_tunable_is_declared_consistently() {
        let defaults = Tunables::default();
        for (i, tunable) in TUNABLES.iter().enumerate() {
            assert!(
                tunable.accepts(tunable.default_value().as_f64()),
                "{}",
                tunable.name
            );
            assert_eq!(defaults.get(tunable.name), Some(tunable.default_value()));
            assert!(
                TUNABLES[..i].iter().all(|t| t.name != tunable.name),
                "{} is declared twice",
                tunable.name
            );
            let (min, max) = tunable.range();
            let mut tunables = defaults;
            tunables.set(tunable.name, max).unwrap();
            assert_eq!(tunables.get(tunable.name), Some(max));
            tunables.set(tunable.name, min).unwrap();
            assert_eq!(tunables.get(tunable.name), Some(min));
        }
    }

    #[test]
    fn set_refuses_unknown_names_wrong_types_and_values_out_of_range() {
        let mut tunables = Tunables::default();
        assert_eq!(
            tunables
                .set("detect-threshold", TunableValue::Float(1.5))
                .unwrap_err()
                .to_string(),
            "detect-threshold 1.5 is out of range: 0 to 1"
        );
        assert!(
            tunables
                .set("detect-threshold", TunableValue::Float(f32::NAN))
                .is_err()
        );
        assert_eq!(
            tunables
                .set("detect-interval", TunableValue::Float(2.0))
                .unwrap_err()
                .to_string(),
            "detect-interval takes a u32, not 2"
        );
        assert_eq!(
            tunables
                .set("nms-threshold", TunableValue::Float(0.3))
                .unwrap_err(),
            TunableError::Unknown("nms-threshold".into())
        );
        assert_eq!(tunables, Tunables::default(), "nothing refused was set");
        assert_eq!(
            Tunable::find("min-face-size").unwrap().env(),
            "FACEREC_MIN_FACE_SIZE"
        );
    }
}
