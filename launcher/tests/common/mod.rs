//! Helpers shared by the launcher's integration tests (`launcher.rs`, `hostile.rs`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use facerec_core::engine::{Engine, EngineConfig, load_rgb};
use facerec_core::gallery::Gallery;
use facerec_core::testsupport::{require, require_runtime};

pub const BIN: &str = env!("CARGO_BIN_EXE_facerec-launcher");
pub const TD: &str = "testdata/face_recognition";
pub const MIRANDA: &str = "Lin-Manuel Miranda";

/// Launchers are CPU-heavy: one test at a time keeps rates meaningful on two cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The launcher's preflight opens the models, so a launcher that serves needs them.
pub fn ready() -> bool {
    require("models/yunet_s_dynamic.onnx").is_some() && require(TD).is_some() && require_runtime()
}

pub fn asset(relative: &str) -> PathBuf {
    require(relative).expect("checked by ready()")
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "facerec-launcher-test-{}-{tag}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gallery of `(name, photo)` pairs, saved as `model.data` in a folder named after `tag`.
pub fn make_gallery(tag: &str, people: &[(&str, &str)]) -> PathBuf {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let mut g = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
    for (name, photo) in people {
        let face = engine
            .analyze(&load_rgb(&asset(&format!("{TD}/{photo}"))).unwrap())
            .unwrap()
            .remove(0);
        g.add(name, photo, face.embedding.unwrap()).unwrap();
    }
    let path = temp_dir(tag).join("model.data");
    g.save(&path).unwrap();
    path
}
