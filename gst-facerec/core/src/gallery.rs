//! The gallery file `model.data`, format version 1.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `FRGALLRY` |
//! | 4 | format version (`u32`) |
//! | 8 | payload length (`u64`) |
//! | n | payload: bincode 2 (serde, standard config) of [`GalleryHeader`] then the people |
//! | 32 | sha256 of the payload |
//!
//! The explicit length and checksum turn a truncated or bit-flipped file into a clear error
//! instead of a gallery with wrong numbers in it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::embed::{Embedding, euclidean};
use crate::models::hex;
use crate::{Error, Result};

pub const MAGIC: &[u8; 8] = b"FRGALLRY";
pub const FORMAT_VERSION: u32 = 1;
/// The distance below which the dlib network calls two faces the same person.
pub const DEFAULT_THRESHOLD: f32 = 0.6;
/// The name shown for a face that matches nobody.
pub const UNKNOWN: &str = "unknown";

/// The longest person name, in characters. Names are drawn on every frame and sent with every
/// event: a megabyte-long name slowed the sample clip six times.
pub const MAX_NAME_CHARS: usize = 128;

/// The rules every person name obeys, in `train` and at load alike, so that `train` can never
/// write a gallery that loading refuses. The error says what is wrong, without the name.
pub fn check_person_name(name: &str) -> std::result::Result<(), String> {
    if name.trim().is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!("contains a control character (U+{:04X})", c as u32));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("is longer than {MAX_NAME_CHARS} characters"));
    }
    if name != name.trim() {
        return Err("starts or ends with white space".into());
    }
    Ok(())
}

const PREAMBLE_LEN: usize = 8 + 4 + 8;
const CHECKSUM_LEN: usize = 32;

/// Why a gallery file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GalleryError {
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("not a facerec gallery (wrong magic string)")]
    BadMagic,
    #[error(
        "unsupported gallery format version {found} (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion { found: u32 },
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error(
        "embedding dimension mismatch: the gallery holds {found}-d embeddings, the recognizer produces {expected}-d"
    )]
    DimensionMismatch { expected: usize, found: usize },
    #[error(
        "built with a different recognizer (model sha256 {gallery}, loaded recognizer {loaded}): re-enrol the faces with this recognizer"
    )]
    RecognizerMismatch { gallery: String, loaded: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    Euclidean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryHeader {
    /// sha256 of the recognizer ONNX file the embeddings were computed with.
    pub recognizer_sha256: String,
    pub embedding_dim: u32,
    pub metric: Metric,
    /// The match threshold recommended by whoever built the gallery.
    pub threshold: f32,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    /// The photo the embedding came from, as given when enrolling.
    pub source: String,
    pub embedding: Embedding,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub enrolments: Vec<Enrolment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gallery {
    pub header: GalleryHeader,
    pub people: Vec<Person>,
}

/// The nearest known person for an embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// `None` when the nearest person is farther than the threshold.
    pub name: Option<String>,
    /// Distance to the nearest person, matched or not (`None` for an empty gallery).
    pub distance: Option<f32>,
}

impl Match {
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(UNKNOWN)
    }
}

impl Gallery {
    /// An empty gallery for embeddings of the given recognizer.
    pub fn new(recognizer_sha256: &str, embedding_dim: usize) -> Gallery {
        Gallery {
            header: GalleryHeader {
                recognizer_sha256: recognizer_sha256.to_string(),
                embedding_dim: embedding_dim as u32,
                metric: Metric::Euclidean,
                threshold: DEFAULT_THRESHOLD,
                created_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            },
            people: Vec::new(),
        }
    }

    /// Adds one photo's embedding to a person, creating the person if needed.
    pub fn add(
        &mut self,
        name: &str,
        source: &str,
        embedding: Embedding,
    ) -> Result<(), GalleryError> {
        if embedding.len() != self.header.embedding_dim as usize {
            return Err(GalleryError::DimensionMismatch {
                expected: self.header.embedding_dim as usize,
                found: embedding.len(),
            });
        }
        let enrolment = Enrolment {
            source: source.to_string(),
            embedding,
        };
        match self.people.iter_mut().find(|p| p.name == name) {
            Some(person) => person.enrolments.push(enrolment),
            None => self.people.push(Person {
                name: name.to_string(),
                enrolments: vec![enrolment],
            }),
        }
        Ok(())
    }

    pub fn embedding_count(&self) -> usize {
        self.people.iter().map(|p| p.enrolments.len()).sum()
    }

    /// The nearest person over all enrolled embeddings; a match if closer than `threshold`.
    pub fn best_match(&self, embedding: &[f32], threshold: f32) -> Match {
        let nearest = self
            .people
            .iter()
            .flat_map(|p| {
                p.enrolments
                    .iter()
                    .map(move |e| (p, euclidean(&e.embedding, embedding)))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match nearest {
            Some((person, distance)) => Match {
                name: (distance < threshold).then(|| person.name.clone()),
                distance: Some(distance),
            },
            None => Match {
                name: None,
                distance: None,
            },
        }
    }

    /// Checks internal consistency: dimensions, finite values, names.
    pub fn validate(&self) -> Result<(), GalleryError> {
        let dim = self.header.embedding_dim as usize;
        if dim == 0 {
            return Err(GalleryError::Corrupt("embedding dimension is 0".into()));
        }
        if self.header.recognizer_sha256.len() != 64
            || !self
                .header
                .recognizer_sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        {
            return Err(GalleryError::Corrupt(
                "recognizer fingerprint is not a sha256".into(),
            ));
        }
        for person in &self.people {
            if person.name.trim().is_empty() {
                return Err(GalleryError::Corrupt("a person has an empty name".into()));
            }
            if let Err(why) = check_person_name(&person.name) {
                let shown: String = person.name.chars().take(40).collect();
                return Err(GalleryError::Corrupt(format!(
                    "the person name {shown:?} {why}"
                )));
            }
            for e in &person.enrolments {
                if e.embedding.len() != dim {
                    return Err(GalleryError::DimensionMismatch {
                        expected: dim,
                        found: e.embedding.len(),
                    });
                }
                if e.embedding.iter().any(|v| !v.is_finite()) {
                    return Err(GalleryError::Corrupt(format!(
                        "{} ({}) has a non-finite embedding",
                        person.name, e.source
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks that the gallery was built with the loaded recognizer.
    pub fn check_recognizer(
        &self,
        recognizer_sha256: &str,
        dim: usize,
    ) -> Result<(), GalleryError> {
        if self.header.embedding_dim as usize != dim {
            return Err(GalleryError::DimensionMismatch {
                expected: dim,
                found: self.header.embedding_dim as usize,
            });
        }
        if !self
            .header
            .recognizer_sha256
            .eq_ignore_ascii_case(recognizer_sha256)
        {
            return Err(GalleryError::RecognizerMismatch {
                gallery: self.header.recognizer_sha256.clone(),
                loaded: recognizer_sha256.to_string(),
            });
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let payload = bincode::serde::encode_to_vec(
            (&self.header, &self.people),
            bincode::config::standard(),
        )
        .expect("encoding plain data into a Vec cannot fail");
        let mut out = Vec::with_capacity(PREAMBLE_LEN + payload.len() + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&Sha256::digest(&payload));
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Gallery, GalleryError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(GalleryError::BadMagic);
        }
        if bytes.len() < PREAMBLE_LEN {
            return Err(GalleryError::Truncated(format!(
                "{} bytes, the header alone is {PREAMBLE_LEN}",
                bytes.len()
            )));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(GalleryError::UnsupportedVersion { found: version });
        }
        let payload_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let expected_len = (PREAMBLE_LEN as u64)
            .saturating_add(payload_len)
            .saturating_add(CHECKSUM_LEN as u64);
        if (bytes.len() as u64) < expected_len {
            return Err(GalleryError::Truncated(format!(
                "{} bytes, expected {expected_len}",
                bytes.len()
            )));
        }
        if (bytes.len() as u64) > expected_len {
            return Err(GalleryError::Corrupt(format!(
                "{} trailing bytes",
                bytes.len() as u64 - expected_len
            )));
        }
        let payload = &bytes[PREAMBLE_LEN..PREAMBLE_LEN + payload_len as usize];
        let checksum = &bytes[PREAMBLE_LEN + payload_len as usize..];
        if Sha256::digest(payload).as_slice() != checksum {
            return Err(GalleryError::Corrupt(format!(
                "checksum mismatch (stored {})",
                hex(checksum)
            )));
        }
        let ((header, people), used): ((GalleryHeader, Vec<Person>), usize) =
            bincode::serde::decode_from_slice(payload, bincode::config::standard())
                .map_err(|e| GalleryError::Corrupt(e.to_string()))?;
        if used != payload.len() {
            return Err(GalleryError::Corrupt(format!(
                "{} unread payload bytes",
                payload.len() - used
            )));
        }
        let gallery = Gallery { header, people };
        gallery.validate()?;
        Ok(gallery)
    }

    /// Loads and validates a gallery; errors name the file.
    pub fn load(path: &Path) -> Result<Gallery> {
        let gallery_error = |kind| Error::Gallery {
            path: path.to_path_buf(),
            kind,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| gallery_error(GalleryError::Unreadable(e.to_string())))?;
        Gallery::from_bytes(&bytes).map_err(|kind| Error::Gallery {
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Loads a gallery and checks it against the recognizer that will produce the embeddings.
    pub fn load_for(path: &Path, recognizer_sha256: &str, dim: usize) -> Result<Gallery> {
        let gallery = Gallery::load(path)?;
        gallery
            .check_recognizer(recognizer_sha256, dim)
            .map_err(|kind| Error::Gallery {
                path: path.to_path_buf(),
                kind,
            })?;
        Ok(gallery)
    }

    /// Writes the gallery atomically: a temporary file in the same directory, fsync, rename.
    /// A failure at any point leaves an existing file untouched.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomically(path, &self.to_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gallery".into());
    let tmp: PathBuf = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "55bf9cc891f3d8edcc93501e849f2532733b50ce6383bff88ffbfac8b220d1b8";

    fn sample() -> Gallery {
        let mut g = Gallery::new(SHA, 4);
        g.add("Greg", "Greg.jpg", vec![0.0, 0.0, 0.0, 0.0]).unwrap();
        g.add("Robert Bohne", "rbohne.jpg", vec![1.0, 0.0, 0.0, 0.0])
            .unwrap();
        g.add("Greg", "Greg2.jpg", vec![0.0, 0.1, 0.0, 0.0])
            .unwrap();
        g
    }

    #[test]
    fn round_trip_and_matching() {
        let g = sample();
        let back = Gallery::from_bytes(&g.to_bytes()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.people.len(), 2);
        assert_eq!(back.embedding_count(), 3);
        let m = back.best_match(&[0.0, 0.12, 0.0, 0.0], 0.6);
        assert_eq!(m.label(), "Greg");
        assert!((m.distance.unwrap() - 0.02).abs() < 1e-6);
        let m = back.best_match(&[0.5, 0.5, 0.5, 0.5], 0.6);
        assert_eq!(m.label(), UNKNOWN);
    }

    #[test]
    fn every_damage_is_named() {
        let bytes = sample().to_bytes();
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert_eq!(Gallery::from_bytes(&bad_magic), Err(GalleryError::BadMagic));
        // The demo's pickle starts with 0x80: not ours.
        assert_eq!(
            Gallery::from_bytes(b"\x80\x04\x95pickle"),
            Err(GalleryError::BadMagic)
        );

        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert_eq!(
            Gallery::from_bytes(&v2),
            Err(GalleryError::UnsupportedVersion { found: 2 })
        );

        let truncated = &bytes[..bytes.len() - 10];
        assert!(matches!(
            Gallery::from_bytes(truncated),
            Err(GalleryError::Truncated(_))
        ));

        let mut flipped = bytes.clone();
        flipped[PREAMBLE_LEN + 5] ^= 0x40;
        let err = Gallery::from_bytes(&flipped).unwrap_err();
        assert!(
            matches!(err, GalleryError::Corrupt(ref m) if m.starts_with("checksum mismatch")),
            "{err}"
        );
    }

    #[test]
    fn recognizer_and_dimension_are_checked() {
        let g = sample();
        assert!(g.check_recognizer(SHA, 4).is_ok());
        assert_eq!(
            g.check_recognizer(SHA, 128),
            Err(GalleryError::DimensionMismatch {
                expected: 128,
                found: 4
            })
        );
        let other = "0".repeat(64);
        assert!(matches!(
            g.check_recognizer(&other, 4),
            Err(GalleryError::RecognizerMismatch { .. })
        ));
        assert_eq!(
            Gallery::new(SHA, 4).add("x", "x.jpg", vec![0.0; 3]),
            Err(GalleryError::DimensionMismatch {
                expected: 4,
                found: 3
            })
        );
    }

    #[test]
    fn save_is_atomic_and_load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("facerec-gallery-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.data");
        sample().save(&path).unwrap();
        assert_eq!(Gallery::load(&path).unwrap(), sample());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.data")]);

        std::fs::write(&path, b"garbage").unwrap();
        let err = Gallery::load(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "gallery {}: not a facerec gallery (wrong magic string)",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
