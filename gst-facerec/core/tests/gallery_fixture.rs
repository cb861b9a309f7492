//! `tests/fixtures/gallery-v1.data`: a format 1 (bincode) gallery written by the code from
//! before format 3 (see `tests/fixtures/README.md`) still loads, through the same
//! `Gallery::load_for` the element and the launcher use, with its people and embeddings.

use std::path::{Path, PathBuf};

use facerec_core::gallery::{FORMAT_VERSION, Gallery};
use facerec_core::models::RECOGNIZER_SHA256;
use facerec_core::testsupport::require;
use sha2::{Digest, Sha256};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gallery-v1.data")
}

/// sha256 of every embedding's `f32`s (little-endian), people and photos in file order.
fn embeddings_digest(g: &Gallery) -> String {
    let mut sha = Sha256::new();
    for e in g.people.iter().flat_map(|p| &p.enrolments) {
        for v in &e.embedding {
            sha.update(v.to_le_bytes());
        }
    }
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_version_1_fixture_loads_with_its_people() {
    let path = fixture();
    let g = Gallery::load_for(&path, RECOGNIZER_SHA256, 128).unwrap();
    assert_eq!((g.format_version(), g.needs_upgrade()), (1, true));
    assert_eq!(FORMAT_VERSION, 3);
    assert_eq!(g.header.recognizer_sha256, RECOGNIZER_SHA256);
    assert_eq!(
        (
            g.header.embedding_dim,
            g.header.threshold,
            g.header.created_unix
        ),
        (128, 0.6, 1_796_054_522)
    );
    let people: Vec<(&str, Vec<&str>)> = g
        .people
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.enrolments.iter().map(|e| e.source.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        people,
        [
            ("alex_lacamoire", vec!["train/alex_lacamoire/img1.jpg"]),
            (
                "biden",
                vec!["train/biden/biden.jpg", "train/biden/biden2.jpg"]
            ),
            (
                "kit_harington",
                vec![
                    "train/kit_harington/john1.jpeg",
                    "train/kit_harington/john2.jpeg"
                ]
            ),
            (
                "obama",
                vec!["train/obama/obama.jpg", "train/obama/obama2.jpg"]
            ),
            (
                "rose_leslie",
                vec!["train/rose_leslie/img1.jpg", "train/rose_leslie/img2.jpg"]
            ),
        ]
    );
    assert!(g.rejects.is_empty());
    assert_eq!(g.embedding_count(), 9);
    // The numbers themselves, as the old code wrote them (the same digest comes from reading
    // the file by hand along the documented layout): any change in how format 1 is decoded
    // changes this.
    assert_eq!(
        embeddings_digest(&g),
        "acaa02d2a29fbe241cbff68bbe23aee63ca39498afe0832b3d46760062ea8a89"
    );
}

/// Each embedding is that of the reference pipeline for its photo
/// (`../shared/testdata/expected/embeddings.json`).
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_version_1_fixture_holds_the_reference_embeddings() {
    let Some(reference) = require("testdata/expected/embeddings.json") else {
        return;
    };
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let g = Gallery::load(&fixture()).unwrap();
    let mut farthest = 0f64;
    for e in g.people.iter().flat_map(|p| &p.enrolments) {
        let key = format!("face_recognition/knn_examples/{}", e.source);
        let faces = reference["images"][&key]["onnx_pipeline"]
            .as_array()
            .unwrap_or_else(|| panic!("no reference for {key}"));
        assert_eq!(faces.len(), 1, "{key}");
        let want = faces[0]["embedding_onnx_pipeline"].as_array().unwrap();
        assert_eq!(want.len(), e.embedding.len());
        let distance = e
            .embedding
            .iter()
            .zip(want)
            .map(|(a, b)| (*a as f64 - b.as_f64().unwrap()).powi(2))
            .sum::<f64>()
            .sqrt();
        eprintln!("{}: {distance:.4} from the reference embedding", e.source);
        farthest = farthest.max(distance);
    }
    // Measured: 0.0017 to 0.0149 (john1.jpeg); the bound of `embed`'s own reference test.
    assert!(farthest < 0.02, "{farthest}");
}
