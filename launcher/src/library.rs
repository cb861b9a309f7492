//! The face library: one folder per person under `<data>/library` (the layout
//! `facerec-model train --input` reads), "not this person" crops under `<data>/rejects`, and the
//! gallery derived from both, `<data>/model.data`, written atomically after every change.
//!
//! Photos are embedded once, when they are added: the gallery is changed incrementally, so a
//! change costs one photo's analysis, not the whole library's.
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

use facerec_core::engine::Engine;
use facerec_core::files::write_atomically;
use facerec_core::gallery::{Gallery, check_person_name};
use facerec_core::stills::StillScales;
use facerec_core::stills::load_rgb;
use serde::Serialize;

use crate::domain::lock;

/// The largest photo file accepted (the decoder's own limits cap the pixels, 64 MP).
pub const MAX_PHOTO_BYTES: u64 = 40 * 1024 * 1024;

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

pub struct Library {
    data: PathBuf,
    engine: Arc<Mutex<Engine>>,
    inner: Mutex<Inner>,
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
        let (gallery, written) = {
            let engine = lock(&engine);
            if derived.exists() {
                (engine.load_gallery(&derived)?, true)
            } else if let Some(seed) = seed {
                (engine.load_gallery(seed)?, false)
            } else {
                let r = engine.recognizer();
                (Gallery::new(r.sha256(), r.dim()), false)
            }
        };
        Ok(Library {
            data: data.to_path_buf(),
            engine,
            inner: Mutex::new(Inner { gallery, written }),
        })
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
    fn embed_one(&self, upload: &Upload) -> Result<Vec<f32>> {
        let file = &upload.file_name;
        let image = load_rgb(&upload.path).map_err(|e| {
            let text = match &e {
                facerec_core::Error::Image { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            if text.contains("format could not be determined") {
                LibraryError::Invalid(format!("{file}: not an image (JPEG or PNG)"))
            } else {
                LibraryError::Invalid(format!("{file}: {text}"))
            }
        })?;
        let faces = lock(&self.engine)
            .analyze_at(&image, StillScales::Pyramid)
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
    pub fn add_photos(&self, name: &str, uploads: &[Upload]) -> Result<PersonView> {
        let dir = self.person_dir("library", name)?;
        if uploads.is_empty() {
            return Err(LibraryError::Invalid(
                "no photo in the request (multipart field \"photo\")".into(),
            ));
        }
        let embeddings = uploads
            .iter()
            .map(|u| self.embed_one(u))
            .collect::<Result<Vec<_>>>()?;
        let mut inner = lock(&self.inner);
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
        let embedding = self.embed_one(upload)?;
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
        let dir = self.person_dir("library", name)?;
        let rejects = self.person_dir("rejects", name)?;
        let mut inner = lock(&self.inner);
        let known = inner.gallery.people.iter().any(|p| p.name == name) || dir.is_dir();
        if !known {
            return Err(LibraryError::NotFound(format!("no person named {name:?}")));
        }
        let mut gallery = inner.gallery.clone();
        gallery.remove_person(name);
        self.commit(&mut inner, gallery)?;
        for d in [dir, rejects] {
            if d.is_dir() {
                std::fs::remove_dir_all(&d).map_err(internal)?;
            }
        }
        Ok(())
    }

    /// Renames a person (merging into `to` if it exists): folders, enrolments and rejects.
    pub fn rename(&self, from: &str, to: &str) -> Result<PersonView> {
        check_folder_name(to)?;
        let mut inner = lock(&self.inner);
        let from_dir = self.person_dir("library", from)?;
        let known = inner.gallery.people.iter().any(|p| p.name == from) || from_dir.is_dir();
        if !known {
            return Err(LibraryError::NotFound(format!("no person named {from:?}")));
        }
        if from == to {
            return Ok(self.view(&inner.gallery, to));
        }
        let mut gallery = inner.gallery.clone();
        let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
        for kind in ["library", "rejects"] {
            let source_dir = self.data.join(kind).join(from);
            let target_dir = self.data.join(kind).join(to);
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
        gallery.rename_person(from, to).map_err(internal)?;
        // Files first (a rename within one folder tree is atomic per file), then the gallery
        // that names them.
        for (old, new) in &moves {
            if let Some(parent) = new.parent() {
                std::fs::create_dir_all(parent).map_err(internal)?;
            }
            std::fs::rename(old, new).map_err(internal)?;
        }
        for kind in ["library", "rejects"] {
            let _ = std::fs::remove_dir(self.data.join(kind).join(from));
        }
        self.commit(&mut inner, gallery)?;
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
