//! The face library: one folder per person under `<data>/library` (the layout
//! `facerec-model train --input` reads), "not this person" crops under `<data>/rejects`, and the
//! gallery derived from both, `<data>/model.data`, written atomically after every change.
//!
//! Photos are embedded once, when they are added: the gallery is changed incrementally, so a
//! change costs one photo's analysis, not the whole library's.
//!
//! Photos are decoded and analysed one request at a time, by the library's own engine: a second
//! upload waits for the first, memory is bounded by one photo's decoding
//! ([`MAX_DECODE_BYTES`]), and the recorder, which embeds strangers' crops with the engine it
//! shares with nobody else, never waits for an upload.
//!
//! Until the library is first changed, the pipelines use `--gallery` (the init container's
//! `model.data`); that gallery is the starting point of the first change, and from then on
//! `<data>/model.data` is the one in use (see the README, "The face library").
//!
//! Services layer: imports the domain only.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::files::write_atomically;
use facerec_core::gallery::{Gallery, UNKNOWN, check_person_name};
use facerec_core::stills::{MAX_IMAGE_SIDE, StillScales, check_image_size};
use image::RgbImage;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::domain::lock;

/// The largest photo file accepted (the decoder's own limits cap the pixels, 64 MP).
pub const MAX_PHOTO_BYTES: u64 = 40 * 1024 * 1024;

/// The most memory decoding one photo may take: the decoder's buffer plus the 8-bit RGB copy the
/// networks read (or the copy that turns the photo upright), counted from the header before any
/// pixel is decoded. 384 MiB admits the largest photo accepted, 64 MP of 8-bit RGB turned
/// upright (2 x 192 MB), and refuses a photo that needs far more than its pixels suggest: an
/// 8000x8000 16-bit RGBA PNG, under the pixel cap, needs 704 MB.
pub const MAX_DECODE_BYTES: u64 = 384 * 1024 * 1024;

/// Why a library change was refused: each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The request is wrong (a name, a photo with no face): 422.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    /// No writable data folder: 503.
    #[error(
        "the face library needs a writable data folder (--data-dir); history is in memory only"
    )]
    Unavailable,
    /// The disk or the networks failed: 500.
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = LibraryError> = std::result::Result<T, E>;

fn internal(e: impl std::fmt::Display) -> LibraryError {
    LibraryError::Internal(format!("{e:#}"))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhotoView {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PersonView {
    pub name: String,
    pub photos: Vec<PhotoView>,
    pub thumbnail: Option<String>,
    /// Embeddings from the starting gallery (`--gallery`), which has no photos.
    pub seeded: usize,
    pub rejects: usize,
}

/// A person name that is also a safe folder name: the gallery's own rules
/// ([`check_person_name`]) plus no path separator, no NUL, not `.`/`..`, no leading dot (hidden
/// folders are skipped by `facerec-model train`), and at most 255 bytes (a file name).
pub fn check_folder_name(name: &str) -> Result<()> {
    let shown: String = name.chars().take(40).collect();
    let bad = |why: &str| LibraryError::Invalid(format!("the name {shown:?} {why}"));
    check_person_name(name).map_err(|why| bad(&why))?;
    if name.contains(['/', '\\', '\0']) {
        return Err(bad("contains a slash"));
    }
    if name.starts_with('.') {
        return Err(bad("starts with a dot"));
    }
    if name.len() > 255 {
        return Err(bad("is longer than 255 bytes"));
    }
    // Belt and braces: the name must be exactly one normal path component.
    let mut components = Path::new(name).components();
    if !matches!(components.next(), Some(Component::Normal(_))) || components.next().is_some() {
        return Err(bad("is not a plain name"));
    }
    Ok(())
}

/// Unicode noncharacters: U+FDD0 to U+FDEF and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE
}

/// The private-use areas (general category Co): no agreed meaning, so no name.
fn is_private_use(c: char) -> bool {
    matches!(c as u32, 0xE000..=0xF8FF | 0xF_0000..=0xF_FFFD | 0x10_0000..=0x10_FFFD)
}

/// A name given to a person (an enrolment, an upload, a rename), in Unicode NFC: the folder
/// rules ([`check_folder_name`], with the gallery's control-character rule), no noncharacter
/// (U+FDD0 to U+FDEF, U+xxFFFE, U+xxFFFF) or private-use character, and not `unknown` in any
/// case (the label of a face that matches nobody). Surrogates cannot occur in a Rust string.
pub fn check_new_name(name: &str) -> Result<String> {
    let nfc: String = name.nfc().collect();
    let shown: String = nfc.chars().take(40).collect();
    let bad = |why: String| LibraryError::Invalid(format!("the name {shown:?} {why}"));
    if let Some(c) = nfc.chars().find(|c| is_noncharacter(*c)) {
        return Err(bad(format!("contains a noncharacter (U+{:04X})", c as u32)));
    }
    if let Some(c) = nfc.chars().find(|c| is_private_use(*c)) {
        return Err(bad(format!(
            "contains a private-use character (U+{:04X})",
            c as u32
        )));
    }
    check_folder_name(&nfc)?;
    if nfc.to_lowercase() == UNKNOWN {
        return Err(bad(format!(
            "is reserved: a face that matches nobody is labelled {UNKNOWN:?}"
        )));
    }
    Ok(nfc)
}

/// Photo ids are made here, so anything else is refused before a path is built from it.
pub fn check_photo_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LibraryError::NotFound(format!("no photo {id:?}")))
    }
}

fn new_photo_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "p{ms:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn url_name(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A photo to add: its file name (for messages only) and where its bytes were spooled.
pub struct Upload {
    pub file_name: String,
    pub path: PathBuf,
}

struct Inner {
    gallery: Gallery,
    /// Whether `<data>/model.data` exists (the library has been changed at least once).
    written: bool,
}

/// What [`Library::erase`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Photo files of the library folder.
    pub photos: usize,
    /// The person's embeddings in the gallery, those of the starting gallery included.
    pub embeddings: usize,
    /// The "not this person" embeddings recorded for the name.
    pub rejects: usize,
}

pub struct Library {
    data: PathBuf,
    /// The settings of the engine the library was opened with, for its own engine.
    engine_config: EngineConfig,
    /// The library's own engine, made for its first photo: never the one the recorder shares,
    /// so that an upload's seconds of analysis never hold up the history. Locked from a
    /// request's first decode to its last embedding, it is also the one-job-at-a-time gate: a
    /// concurrent upload (or enrol, or reject) waits its turn.
    embedder: Mutex<Option<Engine>>,
    inner: Mutex<Inner>,
}

/// A photo refused, as `<file name>: <why>`.
fn photo_error(file: &str, reason: &str) -> LibraryError {
    if reason.contains("format could not be determined") {
        LibraryError::Invalid(format!("{file}: not an image (JPEG or PNG)"))
    } else {
        LibraryError::Invalid(format!("{file}: {reason}"))
    }
}

/// "16-bit RGBA", for a decode error.
fn describe_color(color: image::ColorType) -> String {
    let channels = color.channel_count().max(1);
    let bits = color.bits_per_pixel() / u16::from(channels);
    let kind = match channels {
        1 => "grey",
        2 => "grey and alpha",
        3 => "RGB",
        _ => "RGBA",
    };
    format!("{bits}-bit {kind}")
}

/// Decodes an uploaded photo (JPEG or PNG, any bit depth) to 8-bit RGB, upright by its EXIF
/// orientation, within [`MAX_DECODE_BYTES`]: the size, colour type and orientation are read from
/// the header and the memory they need checked before any pixel is decoded, and the decoder
/// runs under `image`'s [`Limits`](image::Limits) with the same allocation cap.
fn decode_photo(upload: &Upload) -> Result<RgbImage> {
    use image::ImageDecoder;
    use image::metadata::Orientation;
    let file = &upload.file_name;
    let image_error = |e: image::ImageError| photo_error(file, &e.to_string());
    let mut reader = image::ImageReader::open(&upload.path)
        .map_err(internal)?
        .with_guessed_format()
        .map_err(internal)?;
    // As in facerec_core's load_rgb: the PNG decoder takes its limits when it is made (its
    // chunk buffers count against `max_alloc`); the others read only the header then, and the
    // sides are left to `check_image_size`, whose message is the clearer one.
    if reader.format() == Some(image::ImageFormat::Png) {
        let mut header_limits = image::Limits::default();
        header_limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(header_limits);
    } else {
        reader.no_limits();
    }
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    check_image_size(&upload.path, width, height).map_err(|e| match e {
        facerec_core::Error::Image { reason, .. } => photo_error(file, &reason),
        other => photo_error(file, &other.to_string()),
    })?;
    let orientation = decoder.orientation().map_err(image_error)?;
    let color = decoder.color_type();
    let decoded = decoder.total_bytes();
    let rgb = u64::from(width) * u64::from(height) * 3;
    let converted = if color == image::ColorType::Rgb8 {
        0
    } else {
        rgb
    };
    let turned = match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => rgb,
        _ => 0,
    };
    let needed = decoded.saturating_add(converted).max(rgb + turned);
    if needed > MAX_DECODE_BYTES {
        let mib = |bytes: u64| bytes.div_ceil(1024 * 1024);
        return Err(LibraryError::Invalid(format!(
            "{file}: {width}x{height} pixels of {} need {} MiB to decode, more than the {} MiB \
             a photo may use; scale it down or save it with 8 bits a channel",
            describe_color(color),
            mib(needed),
            mib(MAX_DECODE_BYTES)
        )));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits.reserve(decoded).map_err(image_error)?;
    decoder.set_limits(limits).map_err(image_error)?;
    let decoded = image::DynamicImage::from_decoder(decoder).map_err(image_error)?;
    // Converted first (the decoder's buffer goes), then turned: never three copies at once.
    let mut upright = image::DynamicImage::ImageRgb8(decoded.into_rgb8());
    upright.apply_orientation(orientation);
    Ok(upright.into_rgb8())
}

impl Library {
    /// Opens the library in `data`, starting from `<data>/model.data` if the library was ever
    /// changed, else from `seed` (`--gallery`), else from an empty gallery.
    pub fn open(
        data: &Path,
        seed: Option<&Path>,
        engine: Arc<Mutex<Engine>>,
    ) -> anyhow::Result<Library> {
        use anyhow::Context;
        for dir in ["library", "rejects", "uploads"] {
            std::fs::create_dir_all(data.join(dir))
                .with_context(|| format!("cannot create {}", data.join(dir).display()))?;
        }
        // Spooled uploads of a killed process.
        if let Ok(entries) = std::fs::read_dir(data.join("uploads")) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let derived = data.join("model.data");
        // The shared engine only for this: the library's photos go through its own engine.
        let engine = lock(&engine);
        let (gallery, written) = if derived.exists() {
            (engine.load_gallery(&derived)?, true)
        } else if let Some(seed) = seed {
            (engine.load_gallery(seed)?, false)
        } else {
            let r = engine.recognizer();
            (Gallery::new(r.sha256(), r.dim()), false)
        };
        Ok(Library {
            data: data.to_path_buf(),
            engine_config: engine.config().clone(),
            embedder: Mutex::new(None),
            inner: Mutex::new(Inner { gallery, written }),
        })
    }

    /// Every name the library knows: the gallery's people and reject lists, and its folders.
    fn known_names(&self, gallery: &Gallery) -> Vec<String> {
        let mut names: Vec<String> = gallery
            .people
            .iter()
            .chain(&gallery.rejects)
            .map(|p| p.name.clone())
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.data.join("library")) {
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str()
                    && check_folder_name(name).is_ok()
                {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// The stored name of the existing person called `name`: exactly that name, else the one
    /// equal to it in NFC (a name typed decomposed, or a folder made by hand).
    fn existing(&self, gallery: &Gallery, name: &str) -> Option<String> {
        let names = self.known_names(gallery);
        if names.iter().any(|n| n == name) {
            return Some(name.to_string());
        }
        let nfc: String = name.nfc().collect();
        names.into_iter().find(|n| n.nfc().eq(nfc.chars()))
    }

    /// The name to store for a person given `name` ([`check_new_name`]): an existing person's
    /// name when it is theirs up to NFC, else the new name in NFC, unless it differs only in
    /// case from another person's (`renaming` is the person being renamed, who may change the
    /// case of their own name).
    fn target_name(&self, gallery: &Gallery, name: &str, renaming: Option<&str>) -> Result<String> {
        let nfc = check_new_name(name)?;
        if let Some(same) = self.existing(gallery, &nfc) {
            return Ok(same);
        }
        let folded = nfc.to_lowercase();
        let other = self.known_names(gallery).into_iter().find(|n| {
            Some(n.as_str()) != renaming && n.nfc().collect::<String>().to_lowercase() == folded
        });
        if let Some(other) = other {
            let shown: String = nfc.chars().take(40).collect();
            return Err(LibraryError::Invalid(format!(
                "the name {shown:?} differs only in case from {other:?}, who is in the library \
                 already"
            )));
        }
        Ok(nfc)
    }

    /// The name a photo of `name` would be stored under, or why it cannot: for a request to
    /// fail on its name before its photos are read.
    pub fn check_name(&self, name: &str) -> Result<String> {
        let inner = lock(&self.inner);
        self.target_name(&inner.gallery, name, None)
    }

    fn not_found(name: &str) -> LibraryError {
        let shown: String = name.chars().take(40).collect();
        LibraryError::NotFound(format!("no person named {shown:?}"))
    }

    /// The gallery file the pipelines should use: `<data>/model.data` once written.
    pub fn gallery_path(&self) -> Option<PathBuf> {
        lock(&self.inner)
            .written
            .then(|| self.data.join("model.data"))
    }

    pub fn gallery_bytes(&self) -> Vec<u8> {
        lock(&self.inner).gallery.to_bytes()
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.data.join("uploads")
    }

    fn person_dir(&self, kind: &str, name: &str) -> Result<PathBuf> {
        check_folder_name(name)?;
        Ok(self.data.join(kind).join(name))
    }

    /// The photo files of a person, sorted, as (id, path).
    fn photos_in(dir: &Path) -> Vec<(String, PathBuf)> {
        let mut photos: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| {
                        let path = e.path();
                        let id = path.file_stem()?.to_str()?.to_string();
                        check_photo_id(&id).ok()?;
                        Some((id, path))
                    })
                    .collect()
            })
            .unwrap_or_default();
        photos.sort();
        photos
    }

    pub fn people(&self) -> Vec<PersonView> {
        let inner = lock(&self.inner);
        let mut names: Vec<String> = inner
            .gallery
            .people
            .iter()
            .map(|p| p.name.clone())
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.data.join("library")) {
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str()
                    && check_folder_name(name).is_ok()
                    && !names.iter().any(|n| n == name)
                {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        names
            .into_iter()
            .map(|name| self.view(&inner.gallery, &name))
            .collect()
    }

    fn view(&self, gallery: &Gallery, name: &str) -> PersonView {
        let dir = self.data.join("library").join(name);
        let photos: Vec<PhotoView> = Self::photos_in(&dir)
            .into_iter()
            .map(|(id, _)| PhotoView {
                url: format!("/api/people/{}/photos/{id}", url_name(name)),
                id,
            })
            .collect();
        let library_prefix = dir.display().to_string();
        let seeded = gallery
            .people
            .iter()
            .find(|p| p.name == name)
            .map_or(0, |p| {
                p.enrolments
                    .iter()
                    .filter(|e| !e.source.starts_with(&library_prefix))
                    .count()
            });
        let rejects = gallery
            .rejects
            .iter()
            .find(|p| p.name == name)
            .map_or(0, |p| p.enrolments.len());
        PersonView {
            name: name.to_string(),
            thumbnail: photos.first().map(|p| p.url.clone()),
            photos,
            seeded,
            rejects,
        }
    }

    pub fn person(&self, name: &str) -> Result<PersonView> {
        check_folder_name(name)?;
        self.people()
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| LibraryError::NotFound(format!("no person named {name:?}")))
    }

    /// The path of a library photo, for serving it.
    pub fn photo_path(&self, name: &str, id: &str) -> Result<PathBuf> {
        let dir = self.person_dir("library", name)?;
        check_photo_id(id)?;
        Self::photos_in(&dir)
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(_, p)| p)
            .ok_or_else(|| LibraryError::NotFound(format!("no photo {id} of {name:?}")))
    }

    /// The one face of a photo, embedded; the same checks as `facerec-model train` except that
    /// a photo with several faces is refused rather than enrolled by its largest face, since
    /// nobody is there to read a warning.
    fn embed_one(engine: &mut Engine, upload: &Upload, image: &RgbImage) -> Result<Vec<f32>> {
        let file = &upload.file_name;
        let faces = engine
            .analyze_at(image, StillScales::Pyramid)
            .map_err(internal)?;
        let embeddable: Vec<_> = faces.iter().filter(|f| f.embedding.is_some()).collect();
        match (faces.len(), embeddable.len()) {
            (0, _) => Err(LibraryError::Invalid(format!("{file}: no face found"))),
            (n, 0) => Err(LibraryError::Invalid(format!(
                "{file}: {n} face(s) found, all too small to recognise"
            ))),
            (_, 1) => Ok(embeddable[0].embedding.clone().expect("filtered")),
            (_, n) => Err(LibraryError::Invalid(format!(
                "{file}: {n} faces found; a library photo must show one person"
            ))),
        }
    }

    /// Decodes and embeds photos, one at a time, with the library's own engine (made for the
    /// first photo that decodes). The engine's lock is held throughout: one job at a time.
    fn embed_all(&self, uploads: &[Upload]) -> Result<Vec<Vec<f32>>> {
        let mut slot = lock(&self.embedder);
        let mut embeddings = Vec::with_capacity(uploads.len());
        for upload in uploads {
            let image = decode_photo(upload)?;
            let engine = match &mut *slot {
                Some(engine) => engine,
                None => slot.insert(Engine::new(self.engine_config.clone()).map_err(internal)?),
            };
            embeddings.push(Self::embed_one(engine, upload, &image)?);
        }
        Ok(embeddings)
    }

    /// Saves the new gallery atomically and makes it the one in use.
    fn commit(&self, inner: &mut Inner, gallery: Gallery) -> Result<()> {
        gallery
            .save(&self.data.join("model.data"))
            .map_err(internal)?;
        inner.gallery = gallery;
        inner.written = true;
        Ok(())
    }

    /// Adds photos to a person (created if new). Every photo is checked before any is kept.
    /// `name` is checked as a new name ([`check_new_name`]) and stored in NFC; a name that is an
    /// existing person's up to NFC adds to that person.
    pub fn add_photos(&self, name: &str, uploads: &[Upload]) -> Result<PersonView> {
        self.check_name(name)?;
        if uploads.is_empty() {
            return Err(LibraryError::Invalid(
                "no photo in the request (multipart field \"photo\")".into(),
            ));
        }
        let embeddings = self.embed_all(uploads)?;
        let mut inner = lock(&self.inner);
        // Again, now under the lock: the library may have changed during the analysis.
        let name = self.target_name(&inner.gallery, name, None)?;
        let name = name.as_str();
        let dir = self.person_dir("library", name)?;
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let mut gallery = inner.gallery.clone();
        let mut kept = Vec::new();
        for (upload, embedding) in uploads.iter().zip(embeddings) {
            let bytes = std::fs::read(&upload.path).map_err(internal)?;
            let extension = match image::guess_format(&bytes) {
                Ok(image::ImageFormat::Png) => "png",
                _ => "jpg",
            };
            let path = dir.join(format!("{}.{extension}", new_photo_id()));
            write_atomically(&path, &bytes).map_err(internal)?;
            kept.push(path.clone());
            gallery
                .add(name, &path.display().to_string(), embedding)
                .map_err(internal)?;
        }
        if let Err(e) = self.commit(&mut inner, gallery) {
            for path in kept {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        Ok(self.view(&inner.gallery, name))
    }

    /// Records a crop as "not `name`": a face nearest to it is not given that name again.
    pub fn reject(&self, name: &str, upload: &Upload) -> Result<()> {
        let dir = self.person_dir("rejects", name)?;
        let embedding = self.embed_all(std::slice::from_ref(upload))?.remove(0);
        let mut inner = lock(&self.inner);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let bytes = std::fs::read(&upload.path).map_err(internal)?;
        let path = dir.join(format!("{}.jpg", new_photo_id()));
        write_atomically(&path, &bytes).map_err(internal)?;
        let mut gallery = inner.gallery.clone();
        gallery
            .add_reject(name, &path.display().to_string(), embedding)
            .map_err(internal)?;
        self.commit(&mut inner, gallery).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })
    }

    pub fn delete_photo(&self, name: &str, id: &str) -> Result<()> {
        let path = self.photo_path(name, id)?;
        let mut inner = lock(&self.inner);
        let mut gallery = inner.gallery.clone();
        gallery.remove_source(&path.display().to_string());
        // The gallery first: a crash in between leaves a photo that `train` would enrol again,
        // never an embedding without its photo.
        self.commit(&mut inner, gallery)?;
        std::fs::remove_file(&path).map_err(internal)
    }

    pub fn delete_person(&self, name: &str) -> Result<()> {
        self.erase(name).map(drop)
    }

    /// Removes a person everywhere in the library, for the right to erasure: their photos, their
    /// embeddings (those of the starting gallery too) and the "not this person" examples
    /// recorded for their name, the gallery first, committed atomically. `NotFound` when
    /// neither the library nor the gallery knows the name.
    pub fn erase(&self, name: &str) -> Result<Erased> {
        check_folder_name(name)?;
        let mut inner = lock(&self.inner);
        let name = self
            .existing(&inner.gallery, name)
            .ok_or_else(|| Self::not_found(name))?;
        let dir = self.person_dir("library", &name)?;
        let rejects_dir = self.person_dir("rejects", &name)?;
        let count = |list: &[facerec_core::gallery::Person]| {
            list.iter()
                .filter(|p| p.name == name)
                .map(|p| p.enrolments.len())
                .sum::<usize>()
        };
        let erased = Erased {
            photos: Self::photos_in(&dir).len(),
            embeddings: count(&inner.gallery.people),
            rejects: count(&inner.gallery.rejects),
        };
        let mut gallery = inner.gallery.clone();
        gallery.remove_person(&name);
        // The gallery first: a crash in between leaves photos that `train` would enrol again,
        // never an embedding without its photo.
        self.commit(&mut inner, gallery)?;
        for d in [dir, rejects_dir] {
            if d.is_dir() {
                std::fs::remove_dir_all(&d).map_err(internal)?;
            }
        }
        Ok(erased)
    }

    /// A person's photo files, as (file name, bytes), sorted: for a subject-access export.
    /// Empty for a person known only from the starting gallery; `NotFound` for nobody.
    pub fn subject_files(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        check_folder_name(name)?;
        let name = {
            let inner = lock(&self.inner);
            self.existing(&inner.gallery, name)
                .ok_or_else(|| Self::not_found(name))?
        };
        let dir = self.person_dir("library", &name)?;
        Self::photos_in(&dir)
            .into_iter()
            .map(|(_, path)| {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                std::fs::read(&path)
                    .map(|bytes| (file, bytes))
                    .map_err(internal)
            })
            .collect()
    }

    /// Renames a person (merging into `to` if it exists): folders, enrolments and rejects.
    /// `to` is checked as a new name and stored in NFC. All or nothing: the photos are moved,
    /// then the gallery that names them is committed, and any failure moves them back, so that
    /// the folders and the gallery always agree.
    pub fn rename(&self, from: &str, to: &str) -> Result<PersonView> {
        check_folder_name(from)?;
        check_new_name(to)?;
        let mut inner = lock(&self.inner);
        let from = self
            .existing(&inner.gallery, from)
            .ok_or_else(|| Self::not_found(from))?;
        let from = from.as_str();
        let to = self.target_name(&inner.gallery, to, Some(from))?;
        let to = to.as_str();
        if from == to {
            return Ok(self.view(&inner.gallery, to));
        }
        let mut gallery = inner.gallery.clone();
        let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
        for kind in ["library", "rejects"] {
            let source_dir = self.person_dir(kind, from)?;
            let target_dir = self.person_dir(kind, to)?;
            for (_, path) in Self::photos_in(&source_dir) {
                let target = target_dir.join(path.file_name().expect("a file"));
                moves.push((path, target));
            }
        }
        for (old, new) in &moves {
            let (old, new) = (old.display().to_string(), new.display().to_string());
            for person in gallery.people.iter_mut().chain(gallery.rejects.iter_mut()) {
                for e in person.enrolments.iter_mut().filter(|e| e.source == old) {
                    e.source = new.clone();
                }
            }
        }
        let in_gallery =
            |list: &[facerec_core::gallery::Person]| list.iter().any(|p| p.name == from);
        if in_gallery(&gallery.people) || in_gallery(&gallery.rejects) {
            gallery.rename_person(from, to).map_err(internal)?;
        }
        let mut moved: Vec<&(PathBuf, PathBuf)> = Vec::new();
        let mut made: Vec<PathBuf> = Vec::new();
        let result = (|| -> Result<()> {
            for pair in &moves {
                let (old, new) = pair;
                let parent = new.parent().expect("in a folder");
                if !parent.is_dir() {
                    std::fs::create_dir(parent).map_err(internal)?;
                    made.push(parent.to_path_buf());
                }
                // A merge never replaces a photo (`rename` would, silently).
                if std::fs::symlink_metadata(new).is_ok() {
                    return Err(LibraryError::Internal(format!(
                        "cannot move {} to {}: a file of that name is there already",
                        old.display(),
                        new.display()
                    )));
                }
                std::fs::rename(old, new).map_err(internal)?;
                moved.push(pair);
            }
            self.commit(&mut inner, gallery)
        })();
        if let Err(error) = result {
            let mut stuck = Vec::new();
            for (old, new) in moved.into_iter().rev() {
                if let Err(e) = std::fs::rename(new, old) {
                    stuck.push(format!("{} ({e})", new.display()));
                }
            }
            for dir in made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            if stuck.is_empty() {
                return Err(LibraryError::Internal(format!(
                    "{error}; the rename was undone"
                )));
            }
            tracing::error!(%error, stuck = ?stuck, "a failed rename could not move photos back");
            return Err(LibraryError::Internal(format!(
                "{error}; and these photos could not be moved back: {}",
                stuck.join(", ")
            )));
        }
        for kind in ["library", "rejects"] {
            let _ = std::fs::remove_dir(self.data.join(kind).join(from));
        }
        Ok(self.view(&inner.gallery, to))
    }
}

/// Embeds the largest face of a crop, for stranger ids (no face: `None`). The crop is searched
/// at 320 px wide, so that the small faces of a wide shot are found too.
pub fn embed_crop(engine: &Mutex<Engine>, image: &image::RgbImage) -> Option<Vec<f32>> {
    let faces = lock(engine)
        .analyze_at(image, StillScales::Single(320))
        .ok()?;
    facerec_core::engine::enrolment_face(faces).and_then(|f| f.embedding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use facerec_core::engine::EngineConfig;
    use facerec_core::testsupport::{require, require_runtime};

    fn invalid(result: Result<String>) -> String {
        match result {
            Err(LibraryError::Invalid(text)) => text,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn new_names_refuse_noncharacters_controls_private_use_and_unknown() {
        for (name, want) in [
            (
                "A\u{FFFF}",
                r#"the name "A\u{ffff}" contains a noncharacter (U+FFFF)"#,
            ),
            (
                "\u{FDD0}x",
                r#"the name "\u{fdd0}x" contains a noncharacter (U+FDD0)"#,
            ),
            (
                "x\u{10FFFE}",
                r#"the name "x\u{10fffe}" contains a noncharacter (U+10FFFE)"#,
            ),
            (
                "Ann\u{E000}",
                r#"the name "Ann\u{e000}" contains a private-use character (U+E000)"#,
            ),
            (
                "a\u{7}b",
                r#"the name "a\u{7}b" contains a control character (U+0007)"#,
            ),
            (
                "unknown",
                r#"the name "unknown" is reserved: a face that matches nobody is labelled "unknown""#,
            ),
            (
                "Unknown",
                r#"the name "Unknown" is reserved: a face that matches nobody is labelled "unknown""#,
            ),
            (
                "UNKNOWN",
                r#"the name "UNKNOWN" is reserved: a face that matches nobody is labelled "unknown""#,
            ),
        ] {
            assert_eq!(invalid(check_new_name(name)), want, "{name:?}");
        }
        // Every plane's last two code points, and the whole U+FDD0 block; not their neighbours.
        for plane in 0..=16u32 {
            for low in [0xFFFE, 0xFFFF] {
                let c = char::from_u32(plane << 16 | low).unwrap();
                assert!(is_noncharacter(c), "U+{:X}", c as u32);
            }
            let c = char::from_u32(plane << 16 | 0xFFFD).unwrap();
            assert!(!is_noncharacter(c), "U+{:X}", c as u32);
        }
        assert!((0xFDD0..=0xFDEF).all(|u| is_noncharacter(char::from_u32(u).unwrap())));
        assert!(!is_noncharacter('\u{FDCF}') && !is_noncharacter('\u{FDF0}'));
        // Stored in NFC: the decomposed "José" is the composed one.
        assert_eq!(check_new_name("Jose\u{301}").unwrap(), "Jos\u{E9}");
        assert_eq!(check_new_name("Zoë Ünal").unwrap(), "Zoë Ünal");
    }

    /// A 16-bit RGBA PNG of zeros: megabytes on disk, hundreds of MB decoded.
    fn png16(path: &Path, side: u32) {
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut encoder = png::Encoder::new(file, side, side);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Sixteen);
        let mut writer = encoder
            .write_header()
            .unwrap()
            .into_stream_writer()
            .unwrap();
        let row = vec![0u8; side as usize * 8];
        for _ in 0..side {
            std::io::Write::write_all(&mut writer, &row).unwrap();
        }
        writer.finish().unwrap();
    }

    #[test]
    fn a_photo_that_needs_too_much_memory_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big16.png");
        png16(&path, 8000);
        let upload = Upload {
            file_name: "big16.png".into(),
            path,
        };
        match decode_photo(&upload) {
            Err(LibraryError::Invalid(text)) => assert_eq!(
                text,
                "big16.png: 8000x8000 pixels of 16-bit RGBA need 672 MiB to decode, more than \
                 the 384 MiB a photo may use; scale it down or save it with 8 bits a channel"
            ),
            Err(other) => panic!("{other:?}"),
            Ok(image) => panic!("decoded {}x{}", image.width(), image.height()),
        }
        // A small one decodes, to 8-bit RGB.
        let small = dir.path().join("small16.png");
        png16(&small, 64);
        let image = decode_photo(&Upload {
            file_name: "small16.png".into(),
            path: small,
        })
        .unwrap();
        assert_eq!(image.dimensions(), (64, 64));
    }

    fn models() -> Option<(Arc<Mutex<Engine>>, PathBuf)> {
        if !require_runtime() || require("models/yunet_s_dynamic.onnx").is_none() {
            return None;
        }
        let photos = require("testdata/face_recognition")?;
        let engine = Engine::new(EngineConfig::default()).expect("models load");
        Some((Arc::new(Mutex::new(engine)), photos))
    }

    /// A copy of a test photo in the uploads folder, as an upload handler spools it.
    fn spool(library: &Library, photos: &Path, file: &str) -> Upload {
        let path = library.uploads_dir().join(format!("spooled-{file}"));
        std::fs::copy(photos.join(file), &path).unwrap();
        Upload {
            file_name: file.into(),
            path,
        }
    }

    fn embedding_of(engine: &Mutex<Engine>, photo: &Path) -> Vec<f32> {
        let image = facerec_core::stills::load_rgb(photo).unwrap();
        lock(engine).analyze(&image).unwrap()[0]
            .embedding
            .clone()
            .unwrap()
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn erase_removes_photos_seeded_embeddings_and_rejects_and_the_export_lists_the_photos() {
        let Some((engine, photos)) = models() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        // The starting gallery knows Obama (one embedding) and Biden.
        let seed = dir.path().join("seed.data");
        let mut gallery = {
            let e = lock(&engine);
            Gallery::new(e.recognizer().sha256(), e.recognizer().dim())
        };
        let obama2 = photos.join("obama2.jpg");
        gallery
            .add("Barack Obama", "obama2.jpg", embedding_of(&engine, &obama2))
            .unwrap();
        let biden = photos.join("biden.jpg");
        gallery
            .add("Joe Biden", "biden.jpg", embedding_of(&engine, &biden))
            .unwrap();
        gallery.save(&seed).unwrap();
        let data = dir.path().join("data");
        let library = Library::open(&data, Some(&seed), engine.clone()).unwrap();

        library
            .add_photos("Barack Obama", &[spool(&library, &photos, "obama.jpg")])
            .unwrap();
        library
            .reject("Barack Obama", &spool(&library, &photos, "biden.jpg"))
            .unwrap();
        // The subject-access export: the one photo, byte for byte.
        let files = library.subject_files("Barack Obama").unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].0.ends_with(".jpg"), "{}", files[0].0);
        assert_eq!(files[0].1, std::fs::read(photos.join("obama.jpg")).unwrap());
        // Known only from the starting gallery: no photo; nobody: not found.
        assert!(library.subject_files("Joe Biden").unwrap().is_empty());
        assert!(matches!(
            library.subject_files("Nobody"),
            Err(LibraryError::NotFound(_))
        ));

        let erased = library.erase("Barack Obama").unwrap();
        assert_eq!(
            erased,
            Erased {
                photos: 1,
                embeddings: 2,
                rejects: 1
            }
        );
        // Gone from the gallery in use, from the file on disk and from the folders.
        let on_disk = lock(&engine)
            .load_gallery(&library.gallery_path().unwrap())
            .unwrap();
        for g in [
            &on_disk,
            &Gallery::from_bytes(&library.gallery_bytes()).unwrap(),
        ] {
            assert!(g.people.iter().all(|p| p.name != "Barack Obama"));
            assert!(g.rejects.iter().all(|p| p.name != "Barack Obama"));
            assert_eq!(
                g.people.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                ["Joe Biden"]
            );
        }
        assert!(!data.join("library/Barack Obama").exists());
        assert!(!data.join("rejects/Barack Obama").exists());
        assert!(library.people().iter().all(|p| p.name != "Barack Obama"));
        match library.erase("Barack Obama") {
            Err(LibraryError::NotFound(text)) => {
                assert_eq!(text, r#"no person named "Barack Obama""#)
            }
            other => panic!("{other:?}"),
        }
        // A person of the starting gallery alone is erased too (the gallery is written).
        assert_eq!(
            library.erase("Joe Biden").unwrap(),
            Erased {
                photos: 0,
                embeddings: 1,
                rejects: 0
            }
        );
        assert!(
            Gallery::from_bytes(&library.gallery_bytes())
                .unwrap()
                .people
                .is_empty()
        );
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_failed_rename_moves_the_photos_back_and_keeps_the_gallery() {
        let Some((engine, photos)) = models() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let library = Library::open(&data, None, engine.clone()).unwrap();
        library
            .add_photos("Barack Obama", &[spool(&library, &photos, "obama.jpg")])
            .unwrap();
        library
            .reject("Barack Obama", &spool(&library, &photos, "biden.jpg"))
            .unwrap();
        let files = |d: &Path| {
            let mut all = Vec::new();
            for kind in ["library", "rejects"] {
                for entry in std::fs::read_dir(d.join(kind)).unwrap().flatten() {
                    for f in std::fs::read_dir(entry.path()).unwrap().flatten() {
                        all.push(f.path().strip_prefix(d).unwrap().to_path_buf());
                    }
                }
            }
            all.sort();
            all
        };
        let (files_before, gallery_before) = (files(&data), library.gallery_bytes());
        let people_before = library.people();

        // The gallery cannot be written: a folder where the file goes.
        std::fs::remove_file(data.join("model.data")).unwrap();
        std::fs::create_dir_all(data.join("model.data/in-the-way")).unwrap();
        let result = library.rename("Barack Obama", "Barack H. Obama");
        assert!(
            matches!(&result, Err(LibraryError::Internal(_))),
            "{result:?}"
        );
        assert_eq!(files(&data), files_before);
        assert_eq!(library.gallery_bytes(), gallery_before);
        assert_eq!(library.people(), people_before);
        assert!(!data.join("library/Barack H. Obama").exists());
        assert!(!data.join("rejects/Barack H. Obama").exists());
        std::fs::remove_dir_all(data.join("model.data")).unwrap();

        // A merge never overwrites a photo of the same file name: refused before any move.
        let (_, photo) = Library::photos_in(&data.join("library/Barack Obama")).remove(0);
        let target = data.join("library/Obama").join(photo.file_name().unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, b"another photo").unwrap();
        match library.rename("Barack Obama", "Obama") {
            Err(LibraryError::Internal(text)) => {
                assert!(
                    text.ends_with("a file of that name is there already; the rename was undone"),
                    "{text}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"another photo");
        std::fs::remove_dir_all(target.parent().unwrap()).unwrap();
        assert_eq!(files(&data), files_before);
        assert_eq!(library.gallery_bytes(), gallery_before);

        // Then it works, and deleting the moved photo forgets the face.
        let renamed = library.rename("Barack Obama", "Barack H. Obama").unwrap();
        assert_eq!(renamed.photos.len(), 1);
        assert_eq!(renamed.rejects, 1);
        assert!(!data.join("library/Barack Obama").exists());
        library
            .delete_photo("Barack H. Obama", &renamed.photos[0].id)
            .unwrap();
        let gallery = Gallery::from_bytes(&library.gallery_bytes()).unwrap();
        assert_eq!(gallery.embedding_count(), 0);
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn names_are_one_person_up_to_nfc_and_never_differ_only_in_case() {
        let Some((engine, photos)) = models() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let library = Library::open(&data, None, engine).unwrap();
        library
            .add_photos("Jos\u{E9}", &[spool(&library, &photos, "obama.jpg")])
            .unwrap();
        library
            .add_photos(
                "Miranda",
                &[spool(&library, &photos, "lin-manuel-miranda.png")],
            )
            .unwrap();
        let added = library
            .add_photos("Jose\u{301}", &[spool(&library, &photos, "obama2.jpg")])
            .unwrap();
        assert_eq!(added.name, "Jos\u{E9}");
        assert_eq!(added.photos.len(), 2);
        let refused = |r: Result<PersonView>| match r {
            Err(LibraryError::Invalid(text)) => text,
            other => panic!("{other:?}"),
        };
        let case = r#"the name "miranda" differs only in case from "Miranda", who is in the library already"#;
        assert_eq!(
            refused(library.add_photos("miranda", &[spool(&library, &photos, "obama.jpg")])),
            case
        );
        assert_eq!(refused(library.rename("Jos\u{E9}", "miranda")), case);
        // Miranda may change the case of their own name.
        assert_eq!(
            library.rename("Miranda", "miranda").unwrap().name,
            "miranda"
        );
        assert_eq!(
            library
                .people()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["Jos\u{E9}", "miranda"]
        );
    }
}
