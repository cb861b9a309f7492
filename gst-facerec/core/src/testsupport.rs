//! Locating the shared test data and models for tests and benchmarks. Not part of the
//! library's API: it is compiled only for the core's own unit tests and under the
//! `testsupport` feature, which the workspace's crates enable for their tests alone (as a
//! dev-dependency), so no release build carries it.
//!
//! Tests that need `../shared` skip with a loud message only when it is genuinely absent and
//! `CI` is unset; under `CI=true` a missing asset fails the test.

use std::path::PathBuf;

mod ci;
pub use ci::on_ci;

/// `../shared` beside the source tree, or `$FACEREC_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("FACEREC_SHARED_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

/// The path of a file under the shared folder, or `None` (after a loud message) when it is
/// missing outside CI. Panics when it is missing under CI.
pub fn require(relative: &str) -> Option<PathBuf> {
    let path = shared_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    if on_ci() {
        panic!(
            "required test asset {} is missing (CI=true)",
            path.display()
        );
    }
    eprintln!(
        "\n!!!! SKIPPED: test asset {} is missing (set FACEREC_SHARED_DIR) !!!!\n",
        path.display()
    );
    None
}

/// The ONNX Runtime library must be loadable for inference tests; the same skip rule applies.
pub fn require_runtime() -> bool {
    match crate::runtime::environment() {
        Ok(_) => true,
        Err(e) if on_ci() => panic!("ONNX Runtime is required under CI: {e}"),
        Err(e) => {
            eprintln!("\n!!!! SKIPPED: {e} !!!!\n");
            false
        }
    }
}

/// A gallery file that is well-formed on the outside (magic, version, payload length and
/// checksum all right) but whose payload opens with a string length prefix of `len` bytes: the
/// crafted input that used to make the decoder allocate `len` bytes and abort the process.
pub fn gallery_with_length_prefix(len: u64) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    // bincode's standard config writes lengths as varints: 253 then a little-endian u64.
    let mut payload = vec![253u8];
    payload.extend_from_slice(&len.to_le_bytes());
    payload.extend_from_slice(&[b'a'; 64]);
    let mut out = Vec::new();
    out.extend_from_slice(crate::gallery::MAGIC);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&Sha256::digest(&payload));
    out
}

/// The `knn_examples/train` photos as `(person folder, path)`, sorted; `None` when the folder is
/// missing outside CI (see [`require`]).
pub fn knn_train_photos() -> Option<Vec<(String, PathBuf)>> {
    let train = require("testdata/face_recognition/knn_examples/train")?;
    let mut photos = Vec::new();
    for person in std::fs::read_dir(&train).unwrap() {
        let person = person.unwrap().path();
        let name = person.file_name().unwrap().to_string_lossy().into_owned();
        for photo in std::fs::read_dir(&person).unwrap() {
            photos.push((name.clone(), photo.unwrap().path()));
        }
    }
    photos.sort();
    Some(photos)
}

/// The knn gallery as `Engine::analyze` enrols it (each photo must hold exactly one face).
pub fn knn_gallery(engine: &mut crate::engine::Engine) -> crate::gallery::Gallery {
    let recognizer = engine.recognizer();
    let mut gallery = crate::gallery::Gallery::new(recognizer.sha256(), recognizer.dim());
    for (name, photo) in knn_train_photos().unwrap_or_default() {
        let image = crate::stills::load_rgb(&photo).unwrap();
        let faces = engine.analyze(&image).unwrap();
        assert_eq!(faces.len(), 1, "{}", photo.display());
        let embedding = faces[0].embedding.clone().unwrap();
        gallery
            .add(&name, &photo.display().to_string(), embedding)
            .unwrap();
    }
    gallery
}
