//! `facerec-model` as a user runs it, on the real photos in `../shared/testdata`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use facerec_core::gallery::Gallery;
use facerec_core::testsupport::{require, require_runtime};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_facerec-model");
const TD: &str = "testdata/face_recognition";

fn ready() -> bool {
    require("models/yunet_s_dynamic.onnx").is_some()
        && require("testdata/README.md").is_some()
        && require_runtime()
}

fn asset(relative: &str) -> PathBuf {
    require(relative).expect("checked by ready()")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facerec-model-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("facerec-model runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn knn_model(dir: &Path) -> PathBuf {
    let out = dir.join("model.data");
    let o = run(&[
        "train",
        s(&asset(&format!("{TD}/knn_examples/train"))),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("people: 5, photos used: 9, photos skipped: 0"),
        "{}",
        stderr(&o)
    );
    out
}

#[test]
fn train_and_identify_the_knn_examples() {
    if !ready() {
        return;
    }
    let dir = temp_dir("knn");
    let model = knn_model(&dir);
    let g = Gallery::load(&model).unwrap();
    assert_eq!(g.people.len(), 5);
    assert_eq!(g.embedding_count(), 9);

    let test = asset(&format!("{TD}/knn_examples/test"));
    let expect = [
        ("alex_lacamoire1.jpg", vec!["alex_lacamoire"]),
        ("johnsnow_test1.jpg", vec!["kit_harington"]),
        ("kit_with_rose.jpg", vec!["rose_leslie", "kit_harington"]),
        ("obama1.jpg", vec!["obama"]),
        ("obama_and_biden.jpg", vec!["biden", "obama", "unknown"]),
    ];
    let images: Vec<String> = expect
        .iter()
        .map(|(f, _)| test.join(f).display().to_string())
        .collect();
    let mut args = vec!["identify", "--gallery", s(&model), "--json"];
    args.extend(images.iter().map(String::as_str));
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expect.len());
    for (line, (file, names)) in lines.iter().zip(&expect) {
        let got: Vec<&str> = line["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(&got, names, "{file}");
        for face in line["faces"].as_array().unwrap() {
            assert_eq!(face["box"].as_array().unwrap().len(), 4);
            assert!(face["distance"].as_f64().unwrap() > 0.0);
        }
    }
    // The text form names the file and the person.
    let o = run(&["identify", "--gallery", s(&model), &images[3]]);
    assert!(
        stdout(&o).starts_with(&format!("{}: obama (distance 0.", images[3])),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_photos_are_reported_and_the_old_gallery_survives() {
    if !ready() {
        return;
    }
    let dir = temp_dir("greg");
    let photos = dir.join("face-images");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(asset(&format!("{TD}/biden.jpg")), photos.join("Greg.jpg")).unwrap();
    std::fs::copy(asset("testdata/dlib/dogs.jpg"), photos.join("dogs.jpg")).unwrap();
    std::fs::copy(
        asset(&format!("{TD}/two_people.jpg")),
        photos.join("Pair.jpg"),
    )
    .unwrap();
    std::fs::write(photos.join("broken.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
    let out = dir.join("model.data");
    std::fs::write(&out, b"previous gallery").unwrap();

    let o = run(&["train", s(&photos), "-o", s(&out)]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("people: 2, photos used: 2, photos skipped: 2"),
        "{err}"
    );
    let warning = format!(
        "warning: {} shows 2 faces; using the largest",
        photos.join("Pair.jpg").display()
    );
    assert!(err.contains(&warning), "{err}");
    assert!(
        err.contains(&format!(
            "skipped {}: no face found",
            photos.join("dogs.jpg").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "skipped {}: cannot be read: image {}",
            photos.join("broken.jpg").display(),
            photos.join("broken.jpg").display()
        )),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with(&format!(
            "2 photo(s) skipped, so {} was not written (--allow-missing writes it anyway)",
            out.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"previous gallery",
        "the old file is untouched"
    );

    let o = run(&["train", s(&photos), "-o", s(&out), "--allow-missing"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g = Gallery::load(&out).unwrap();
    let names: Vec<&str> = g.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["Greg", "Pair"],
        "the stem names the person, not 'Gre'"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
}

#[test]
fn metadata_yaml_and_append() {
    if !ready() {
        return;
    }
    let dir = temp_dir("yaml");
    std::fs::create_dir_all(dir.join("img")).unwrap();
    std::fs::copy(asset(&format!("{TD}/obama.jpg")), dir.join("img/bo.jpg")).unwrap();
    std::fs::copy(
        asset("testdata/face_recognition/test_images/32bit.png"),
        dir.join("img/bo-alpha.png"),
    )
    .unwrap();
    std::fs::copy(asset(&format!("{TD}/biden.jpg")), dir.join("img/jb.jpg")).unwrap();
    let yaml = dir.join("metadata.yaml");
    std::fs::write(&yaml, "faces:\n  - name: \"Barack Obama\"\n    image: img/bo.jpg\n  - name: \"Barack Obama\"\n    image: img/bo-alpha.png\n").unwrap();
    let out = dir.join("model.data");
    let o = run(&["train", s(&yaml), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["inspect", s(&out), "--json"]);
    let info: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(info["format_version"], 1);
    assert_eq!(
        info["recognizer_sha256"],
        facerec_core::models::RECOGNIZER_SHA256
    );
    assert_eq!(info["people"][0]["name"], "Barack Obama");
    assert_eq!(info["people"][0]["embeddings"], 2);

    // --append adds Biden from a second metadata file.
    let yaml2 = dir.join("more.yaml");
    std::fs::write(
        &yaml2,
        "faces:\n  - name: \"Joe Biden\"\n    image: img/jb.jpg\n",
    )
    .unwrap();
    let o = run(&["train", s(&yaml2), "-o", s(&out), "--append"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g = Gallery::load(&out).unwrap();
    assert_eq!(
        g.people.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Barack Obama", "Joe Biden"]
    );

    // --append refuses a gallery from another recognizer.
    let mut foreign = Gallery::new(&"ab".repeat(32), 128);
    foreign.add("x", "x.jpg", vec![0.0; 128]).unwrap();
    let foreign_path = dir.join("foreign.data");
    foreign.save(&foreign_path).unwrap();
    let o = run(&["train", s(&yaml2), "-o", s(&foreign_path), "--append"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "facerec-model: gallery {}: built with a different recognizer",
            foreign_path.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_on_sixteen_photos_of_eight_people_makes_no_error() {
    if !ready() {
        return;
    }
    let dir = temp_dir("eval");
    let model = knn_model(&dir);
    // The testdata README's 16 single-face photos of 8 identities, one folder per person.
    let people: [(&str, &[&str]); 8] = [
        (
            "obama",
            &[
                "obama.jpg",
                "obama2.jpg",
                "knn_examples/test/obama1.jpg",
                "test_images/obama3.jpg",
            ],
        ),
        (
            "biden",
            &["biden.jpg", "knn_examples/train/biden/biden2.jpg"],
        ),
        (
            "alex_lacamoire",
            &[
                "knn_examples/train/alex_lacamoire/img1.jpg",
                "knn_examples/test/alex_lacamoire1.jpg",
                "alex-lacamoire.png",
            ],
        ),
        (
            "kit_harington",
            &[
                "knn_examples/train/kit_harington/john1.jpeg",
                "knn_examples/train/kit_harington/john2.jpeg",
                "knn_examples/test/johnsnow_test1.jpg",
            ],
        ),
        (
            "rose_leslie",
            &[
                "knn_examples/train/rose_leslie/img1.jpg",
                "knn_examples/train/rose_leslie/img2.jpg",
            ],
        ),
        ("lin_manuel_miranda", &["lin-manuel-miranda.png"]),
        ("tom_cruise", &["../dlib/Tom_Cruise_avp_2014_4.jpg"]),
        ("nobody", &[]),
    ];
    let folder = dir.join("labelled");
    let mut count = 0;
    for (person, photos) in people {
        std::fs::create_dir_all(folder.join(person)).unwrap();
        for photo in photos {
            let src = asset(&format!("{TD}/{photo}"));
            std::os::unix::fs::symlink(&src, folder.join(person).join(src.file_name().unwrap()))
                .unwrap();
            count += 1;
        }
    }
    assert_eq!(count, 16);
    let o = run(&["eval", "--gallery", s(&model), s(&folder), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = &r["identification"];
    assert_eq!(id["photos"], 16);
    assert_eq!(id["correct"], 16, "{}", id["errors"]);
    assert_eq!(id["false_accepts"], 0);
    assert_eq!(id["false_rejects"], 0);
    assert_eq!(
        id["confusion"]["unknown"]["unknown"], 2,
        "Miranda and Cruise are not in the gallery"
    );
    let v = &r["verification"];
    assert_eq!(v["same_pairs"], 14);
    assert_eq!(v["different_pairs"], 106);
    assert_eq!(v["errors_at_threshold"], 0);
    assert_eq!(v["auc"], 1.0);
    eprintln!("verification: {v}");
    let o = run(&["eval", "--gallery", s(&model), s(&folder)]);
    assert!(
        stdout(&o)
            .contains("16 photos, 16 correct, accuracy 100.0%, 0 false accepts, 0 false rejects"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn embed_matches_the_reference_embedding() {
    if !ready() {
        return;
    }
    let obama = asset(&format!("{TD}/obama.jpg"));
    let o = run(&["embed", "--json", s(&obama)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(got["image"], s(&obama));
    let face = &got["faces"][0];
    assert_eq!(got["faces"].as_array().unwrap().len(), 1);
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    assert!(face["score"].as_f64().unwrap() > 0.9);
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(asset("testdata/expected/embeddings.json")).unwrap(),
    )
    .unwrap();
    let want = &reference["images"]["face_recognition/obama.jpg"]["onnx_pipeline"][0]["embedding_onnx_pipeline"];
    let distance: f64 = face["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want.as_array().unwrap())
        .map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).powi(2))
        .sum::<f64>()
        .sqrt();
    eprintln!("distance to the reference embedding: {distance:.4}");
    assert!(distance < 0.02, "{distance}");
}

#[test]
fn every_error_is_one_line_naming_the_file() {
    if !ready() {
        return;
    }
    let dir = temp_dir("errors");
    let model = knn_model(&dir);
    let bytes = std::fs::read(&model).unwrap();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "pickle.data",
            b"\x80\x04\x95".to_vec(),
            "not a facerec gallery (wrong magic string)".into(),
        ),
        (
            "truncated.data",
            bytes[..bytes.len() - 7].to_vec(),
            "truncated:".into(),
        ),
        (
            "flipped.data",
            {
                let mut b = bytes.clone();
                b[40] ^= 4;
                b
            },
            "corrupt: checksum mismatch".into(),
        ),
    ];
    let obama = asset(&format!("{TD}/obama.jpg"));
    for (name, content, reason) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        for args in [
            vec!["inspect", s(&path)],
            vec!["identify", "--gallery", s(&path), s(&obama)],
        ] {
            let o = run(&args);
            let err = stderr(&o);
            assert!(!o.status.success());
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.starts_with(&format!(
                    "facerec-model: gallery {}: {reason}",
                    path.display()
                )),
                "{err}"
            );
        }
    }
    let missing = dir.join("missing.jpg");
    let o = run(&["embed", s(&missing)]);
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "facerec-model: {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let o = run(&[
        "train",
        s(&dir.join("nowhere")),
        "-o",
        s(&dir.join("x.data")),
    ]);
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "facerec-model: {} does not exist",
            dir.join("nowhere").display()
        )
    );
}

#[test]
fn mutated_gallery_bytes_never_panic() {
    // Fuzz-style: thousands of mutations of a real gallery through the parser. Each must load
    // or be refused, never panic, and a refusal must never pass for the original.
    let mut g = Gallery::new(facerec_core::models::RECOGNIZER_SHA256, 128);
    for i in 0..6 {
        g.add(
            &format!("person {}", i % 3),
            &format!("p{i}.jpg"),
            (0..128).map(|k| (k * (i + 1)) as f32 / 1000.0).collect(),
        )
        .unwrap();
    }
    let bytes = g.to_bytes();
    let mut state: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    for round in 0..5000 {
        let mut m = bytes.clone();
        match round % 4 {
            0 => {
                let i = next() as usize % m.len();
                m[i] ^= 1 << (next() % 8);
            }
            1 => m.truncate(next() as usize % m.len()),
            2 => {
                let i = next() as usize % m.len();
                m[i] = next() as u8;
                m.push(next() as u8);
            }
            _ => {
                let start = 20 + next() as usize % (m.len() - 52);
                for b in &mut m[start..start + 8] {
                    *b = next() as u8;
                }
            }
        }
        let result = std::panic::catch_unwind(|| Gallery::from_bytes(&m));
        let parsed = result.unwrap_or_else(|_| panic!("round {round} panicked"));
        if m != bytes {
            refused += parsed.is_err() as usize;
        }
    }
    assert!(refused > 4900, "only {refused} of 5000 mutations refused");
}

#[test]
fn models_fetch_reproduces_both_models() {
    if !ready() {
        return;
    }
    let python = facerec_model::fetch::default_python();
    let has_onnx = Command::new(&python)
        .args(["-c", "import onnx, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_onnx {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{} lacks onnx/numpy under CI: run deploy/setup.sh",
                python.display()
            );
        }
        eprintln!(
            "\n!!!! SKIPPED: {} has no onnx/numpy; run deploy/setup.sh !!!!\n",
            python.display()
        );
        return;
    }
    let dir = temp_dir("fetch");
    let shared_models = asset("models");
    let o = Command::new(BIN)
        .args([
            "models",
            "fetch",
            "--dir",
            s(&dir),
            "--detector-from",
            s(&shared_models),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for (file, sha) in [
        (
            facerec_core::models::DETECTOR_FILE,
            facerec_core::models::DETECTOR_SHA256,
        ),
        (
            facerec_core::models::RECOGNIZER_FILE,
            facerec_core::models::RECOGNIZER_SHA256,
        ),
    ] {
        assert_eq!(
            facerec_core::models::sha256_file(&dir.join(file)).unwrap(),
            sha,
            "{file}"
        );
    }
    // A detector that is not the recorded one is refused, and nothing is written.
    let wrong = dir.join("wrong.onnx");
    std::fs::write(&wrong, b"not yunet").unwrap();
    let other = temp_dir("fetch-wrong");
    let o = Command::new(BIN)
        .args([
            "models",
            "fetch",
            "--detector-only",
            "--dir",
            s(&other),
            "--detector-from",
            s(&wrong),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "expected daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3: refusing it"
        ),
        "{}",
        stderr(&o)
    );
    assert!(std::fs::read_dir(&other).unwrap().next().is_none());
}
