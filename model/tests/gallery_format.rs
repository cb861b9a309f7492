//! Gallery formats through `facerec-model`: `inspect` shows a file's format, and `upgrade` turns
//! the format 1 fixture (written by the code from before format 3, see
//! `gst-facerec/core/tests/fixtures/README.md`) into format 3 with the same people,
//! bit-identical embeddings and identical match distances.

mod common;

use std::path::{Path, PathBuf};

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::gallery::{DEFAULT_THRESHOLD, Gallery};
use facerec_core::stills::StillScales;
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{require, require_runtime};
use serde_json::Value;

use common::{run, s, stderr, stdout, temp_dir};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-facerec/core/tests/fixtures/gallery-v1.data")
}

fn version_field(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// The `format:` line of `inspect`, and `format_version` and `needs_upgrade` of `--json`.
fn inspected(path: &Path) -> (String, Value, Value) {
    let o = run(&["inspect", s(path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("format:"))
        .unwrap()
        .to_string();
    let o = run(&["inspect", "--json", s(path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).unwrap();
    (
        line,
        json["format_version"].clone(),
        json["needs_upgrade"].clone(),
    )
}

/// Every embedding (people then rejects) as raw bits, with its person and source.
fn embedding_bits(g: &Gallery) -> Vec<(String, String, Vec<u32>)> {
    g.people
        .iter()
        .chain(&g.rejects)
        .flat_map(|p| {
            p.enrolments.iter().map(|e| {
                (
                    p.name.clone(),
                    e.source.clone(),
                    e.embedding.iter().map(|v| v.to_bits()).collect(),
                )
            })
        })
        .collect()
}

#[test]
fn inspect_shows_the_format_and_upgrade_rewrites_the_fixture_in_place() {
    let dir = temp_dir("in-place");
    let dir = dir.path();
    let path = dir.join("model.data");
    std::fs::copy(fixture(), &path).unwrap();
    let old = Gallery::load(&path).unwrap();
    assert_eq!(
        inspected(&path),
        (
            "format:      1 (bincode; run facerec-model upgrade)".to_string(),
            Value::from(1),
            Value::from(true)
        )
    );

    let o = run(&["upgrade", s(&path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "upgraded {} from format 1 to format 3: {}\n",
            path.display(),
            path.display()
        )
    );
    assert_eq!(stderr(&o), "");
    assert_eq!(version_field(&path), 3);
    let new = Gallery::load(&path).unwrap();
    assert_eq!(new.format_version(), 3);
    assert_eq!(new.header, old.header);
    assert_eq!(embedding_bits(&new), embedding_bits(&old));
    assert_eq!(embedding_bits(&new).len(), 9);
    assert_eq!(
        inspected(&path),
        (
            "format:      3".to_string(),
            Value::from(3),
            Value::from(false)
        )
    );
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("model.data")]);

    // A format 3 file is left untouched: same bytes, same modification time.
    let bytes = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = run(&["upgrade", s(&path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{} is already format 3; left untouched\n", path.display())
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn upgrade_to_another_file_leaves_the_input_alone_and_errors_name_the_file() {
    let dir = temp_dir("output");
    let dir = dir.path();
    let input = dir.join("in.data");
    std::fs::copy(fixture(), &input).unwrap();
    let original = std::fs::read(&input).unwrap();
    let out = dir.join("out.data");
    let o = run(&["upgrade", s(&input), "--output", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "upgraded {} from format 1 to format 3: {}\n",
            input.display(),
            out.display()
        )
    );
    assert_eq!(std::fs::read(&input).unwrap(), original);
    assert_eq!(version_field(&out), 3);
    assert_eq!(Gallery::load(&out).unwrap(), Gallery::load(&input).unwrap());
    let copy = dir.join("copy.data");
    let o = run(&["upgrade", s(&out), "-o", s(&copy)]);
    assert_eq!(
        stdout(&o),
        format!(
            "{} is already format 3; copied unchanged to {}\n",
            out.display(),
            copy.display()
        )
    );
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&out).unwrap());

    // Each error is one line naming the file at fault, and nothing is written.
    let missing = dir.join("missing.data");
    let garbage = dir.join("garbage.data");
    std::fs::write(&garbage, b"\x80\x04\x95pickle").unwrap();
    let flipped = dir.join("flipped.data");
    let mut bits = original.clone();
    bits[100] ^= 0x10;
    std::fs::write(&flipped, &bits).unwrap();
    let stored: String = original[original.len() - 32..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let nowhere = dir.join("no-such-folder/model.data");
    let cases = [
        (
            vec![s(&missing)],
            format!(
                "gallery {}: cannot be read: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
        (
            vec![s(&garbage)],
            format!(
                "gallery {}: not a facerec gallery (wrong magic string)",
                garbage.display()
            ),
        ),
        (
            vec![s(&flipped)],
            format!(
                "gallery {}: corrupt: checksum mismatch (stored {stored})",
                flipped.display()
            ),
        ),
        (
            vec![s(&input), "-o", s(&nowhere)],
            format!(
                "{}: No such file or directory (os error 2)",
                nowhere.display()
            ),
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["upgrade"];
        all.extend(args);
        let o = run(&all);
        assert!(!o.status.success());
        assert_eq!(stdout(&o), "");
        assert_eq!(stderr(&o), format!("facerec-model: {want}\n"));
    }
    assert_eq!(std::fs::read(&flipped).unwrap(), bits);
    assert_eq!(std::fs::read(&garbage).unwrap(), b"\x80\x04\x95pickle");
    assert_eq!(std::fs::read(&input).unwrap(), original);
    assert!(!missing.exists() && !nowhere.exists());
}

/// The old and the upgraded gallery name every face of the knn test photos alike, at the same
/// distances to the last bit (in process), and `identify` prints the same for both.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_upgraded_fixture_names_the_knn_test_photos_at_identical_distances() {
    if require("models/yunet_s_dynamic.onnx").is_none() || !require_runtime() {
        return;
    }
    let Some(test) = require("testdata/face_recognition/knn_examples/test") else {
        return;
    };
    let dir = temp_dir("identify");
    let dir = dir.path();
    let v1 = fixture();
    let v3 = dir.join("model.data");
    let o = run(&["upgrade", s(&v1), "-o", s(&v3)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(version_field(&v3), 3);

    let expect = [
        ("alex_lacamoire1.jpg", vec!["alex_lacamoire"]),
        ("johnsnow_test1.jpg", vec!["kit_harington"]),
        ("kit_with_rose.jpg", vec!["rose_leslie", "kit_harington"]),
        ("obama1.jpg", vec!["obama"]),
        ("obama_and_biden.jpg", vec!["biden", "obama", "unknown"]),
    ];
    let images: Vec<PathBuf> = expect.iter().map(|(f, _)| test.join(f)).collect();
    let identified = |gallery: &Path| {
        let mut args = vec!["identify", "--json", "--gallery", s(gallery)];
        args.extend(images.iter().map(|p| s(p)));
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let (old, new) = (identified(&v1), identified(&v3));
    assert_eq!(old, new);
    for (line, (file, names)) in new.lines().zip(&expect) {
        let line: Value = serde_json::from_str(line).unwrap();
        let got: Vec<&str> = line["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(&got, names, "{file}");
    }

    let old = Gallery::load(&v1).unwrap();
    let new = Gallery::load(&v3).unwrap();
    assert_eq!((old.format_version(), new.format_version()), (1, 3));
    let mut engine = Engine::new(EngineConfig::default()).expect("models load");
    let mut compared = 0;
    for image in &images {
        let faces = engine
            .analyze_at(&load_rgb(image).unwrap(), StillScales::Pyramid)
            .unwrap();
        for embedding in faces.iter().filter_map(|f| f.embedding.as_ref()) {
            let (a, b) = (
                old.best_match(embedding, DEFAULT_THRESHOLD),
                new.best_match(embedding, DEFAULT_THRESHOLD),
            );
            eprintln!(
                "{}: {} at {:?} (second {:?})",
                image.file_name().unwrap().to_string_lossy(),
                b.label(),
                b.distance,
                b.second
            );
            assert_eq!(a.name, b.name);
            assert_eq!(
                (a.distance.map(f32::to_bits), a.second.map(f32::to_bits)),
                (b.distance.map(f32::to_bits), b.second.map(f32::to_bits))
            );
            compared += 1;
        }
    }
    // Every face of the five photos: 1 + 1 + 2 + 1 + 3.
    assert_eq!(compared, 8);
}
