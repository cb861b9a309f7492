//! `facerec-model` as a user runs it, on the real photos in `../shared/testdata`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use facerec_core::gallery::Gallery;
use facerec_core::testsupport::{on_ci, require, require_runtime};
use serde_json::Value;

use common::{BIN, run, s, stderr, stdout, temp_dir};

const TD: &str = "testdata/face_recognition";

fn ready() -> bool {
    require("models/yunet_s_dynamic.onnx").is_some()
        && require("testdata/README.md").is_some()
        && require_runtime()
}

fn asset(relative: &str) -> PathBuf {
    require(relative).expect("checked by ready()")
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn train_and_identify_the_knn_examples() {
    if !ready() {
        return;
    }
    let dir = temp_dir("knn");
    let dir = dir.path();
    let model = knn_model(dir);
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn bad_photos_are_reported_and_the_old_gallery_survives() {
    if !ready() {
        return;
    }
    let dir = temp_dir("greg");
    let dir = dir.path();
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
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn metadata_yaml_and_append() {
    if !ready() {
        return;
    }
    let dir = temp_dir("yaml");
    let dir = dir.path();
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
    assert_eq!(info["format_version"], 3);
    assert_eq!(info["needs_upgrade"], false);
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn eval_on_sixteen_photos_of_eight_people_makes_no_error() {
    if !ready() {
        return;
    }
    let dir = temp_dir("eval");
    let dir = dir.path();
    let model = knn_model(dir);
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn every_error_is_one_line_naming_the_file() {
    if !ready() {
        return;
    }
    let dir = temp_dir("errors");
    let dir = dir.path();
    let model = knn_model(dir);
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
    use facerec_core::gallery::{FORMAT_VERSION, GalleryError};
    // Fuzz-style: thousands of mutations of a real gallery through the parser. Each must be
    // refused, never panic, and with an error of the envelope (magic, version, length,
    // checksum): no changed file gets as far as the payload decoder.
    let mut g = Gallery::new(facerec_core::models::RECOGNIZER_SHA256, 128);
    for i in 0..6 {
        g.add(
            &format!("person {}", i % 3),
            &format!("p{i}.jpg"),
            (0..128).map(|k| (k * (i + 1)) as f32 / 1000.0).collect(),
        )
        .unwrap();
    }
    g.add_reject("person 0", "r.jpg", vec![0.25; 128]).unwrap();
    let bytes = g.to_bytes();
    assert_eq!(bytes[8..12], FORMAT_VERSION.to_le_bytes());
    let mut state: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut mutated, mut loaded, mut unnamed) = (0, Vec::new(), Vec::new());
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
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
        if m == bytes {
            continue;
        }
        mutated += 1;
        let kind = match parsed {
            Ok(_) => {
                loaded.push(round);
                continue;
            }
            Err(GalleryError::BadMagic) => "BadMagic",
            Err(GalleryError::UnsupportedVersion { .. }) => "UnsupportedVersion",
            Err(GalleryError::Truncated(_)) => "Truncated",
            Err(GalleryError::ChecksumMismatch { .. }) => "ChecksumMismatch",
            Err(GalleryError::Corrupt(ref t)) if t.ends_with(" trailing bytes") => {
                "Corrupt(trailing bytes)"
            }
            Err(other) => {
                unnamed.push((round, other));
                continue;
            }
        };
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!("{mutated} mutated galleries: {kinds:?}");
    // Every byte is covered by the magic, the version, the length or the checksum (which, in
    // version 3, covers the preamble too), so every change must be refused by one of them.
    assert!(
        loaded.is_empty(),
        "{} of {mutated} mutated galleries loaded, first rounds {:?}",
        loaded.len(),
        &loaded[..loaded.len().min(8)]
    );
    assert_eq!(
        unnamed,
        Vec::<(usize, GalleryError)>::new(),
        "refused past the envelope"
    );
    assert_eq!(kinds.values().sum::<usize>(), mutated);
    assert!(
        mutated > 4900,
        "only {mutated} of 5000 rounds changed the bytes"
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
        if on_ci() {
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
    let dir = dir.path();
    let shared_models = asset("models");
    let o = Command::new(BIN)
        .args([
            "models",
            "fetch",
            "--dir",
            s(dir),
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
    let other = other.path();
    let o = Command::new(BIN)
        .args([
            "models",
            "fetch",
            "--detector-only",
            "--dir",
            s(other),
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
    assert!(std::fs::read_dir(other).unwrap().next().is_none());
}

/// A finished child: exit code (128 + signal when killed), output, and its own peak RSS from
/// `wait4`, which reports the resources of that one process (unlike `RUSAGE_CHILDREN`, which the
/// concurrent tests of this binary would pollute).
struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    peak_rss_kb: i64,
}

// `wait4` reaps the child (std cannot report its rusage), so clippy does not see a `wait()`.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> Measured {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("facerec-model runs");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Measured {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        // Linux reports ru_maxrss in KiB.
        peak_rss_kb: usage.ru_maxrss,
    }
}

/// Runs the tool and kills it if it has not finished within `limit`: the bound is the point of
/// the tests that use it (a FIFO or /dev/zero must not block or stream forever).
fn run_within(args: &[&str], limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("facerec-model runs");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("facerec-model {args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_crafted_length_prefix_is_one_line_not_an_abort() {
    let dir = temp_dir("crafted");
    let dir = dir.path();
    for len in [1u64 << 20, 1 << 31, 1 << 40, u64::MAX] {
        let path = dir.join("crafted.data");
        std::fs::write(
            &path,
            facerec_core::testsupport::gallery_with_length_prefix(len),
        )
        .unwrap();
        let o = run_measured(&["inspect", s(&path)]);
        assert_eq!(o.code, 1, "length {len}: {}", o.stderr);
        assert_eq!(
            o.stderr,
            format!(
                "facerec-model: gallery {}: corrupt: a length field claims more than the 73-byte payload can hold\n",
                path.display()
            ),
            "length {len}"
        );
        assert_eq!(o.stdout, "");
        assert!(o.peak_rss_kb < 100_000, "peak RSS {} KiB", o.peak_rss_kb);
    }
}

#[test]
fn special_and_oversized_galleries_are_refused_promptly() {
    let dir = temp_dir("special");
    let dir = dir.path();
    let fifo = dir.join("fifo.data");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let big = dir.join("big.data");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(facerec_core::gallery::MAX_GALLERY_BYTES + 1)
        .unwrap();
    let cases = [
        (
            PathBuf::from("/dev/zero"),
            "not a regular file (a character device); a gallery must be a regular file",
        ),
        (
            fifo.clone(),
            "not a regular file (a FIFO); a gallery must be a regular file",
        ),
        (
            dir.to_path_buf(),
            "not a regular file (a directory); a gallery must be a regular file",
        ),
        (
            big.clone(),
            "67108865 bytes, more than the 67108864-byte limit for a gallery (MAX_GALLERY_BYTES)",
        ),
    ];
    for (path, reason) in cases {
        let o = run_within(&["inspect", s(&path)], std::time::Duration::from_secs(10));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("facerec-model: gallery {}: {reason}\n", path.display())
        );
    }
}

/// A `width`x`height` 8-bit grey PNG of zeros, written row by row: 1.6 gigapixels compress to
/// a couple of megabytes without ever being in memory.
fn zero_png(path: &Path, width: u32, height: u32) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    encoder.set_filter(png::Filter::NoFilter);
    let mut writer = encoder
        .write_header()
        .unwrap()
        .into_stream_writer()
        .unwrap();
    let row = vec![0u8; width as usize];
    for _ in 0..height {
        std::io::Write::write_all(&mut writer, &row).unwrap();
    }
    writer.finish().unwrap();
}

/// A real 16x16 JPEG whose frame header (SOF0) is rewritten to claim `width`x`height`: what the
/// decoder reads before it allocates.
fn jpeg_claiming(path: &Path, width: u16, height: u16) {
    use facerec_core::image::{ImageEncoder, codecs::jpeg::JpegEncoder};
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90)
        .write_image(
            &[128u8; 16 * 16 * 3],
            16,
            16,
            facerec_core::image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG has SOF0");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn decompression_bombs_are_refused_from_their_header() {
    if !ready() {
        return;
    }
    let dir = temp_dir("bombs");
    let dir = dir.path();
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let png = photos.join("bomb.png");
    zero_png(&png, 40_000, 40_000);
    let png_size = std::fs::metadata(&png).unwrap().len();
    eprintln!("40000x40000 PNG: {png_size} bytes");
    assert!(png_size < 4 << 20, "{png_size}");
    let jpeg = photos.join("huge.jpg");
    jpeg_claiming(&jpeg, 12_000, 12_000);
    let out = dir.join("model.data");

    let o = run_measured(&["train", s(&photos), "-o", s(&out)]);
    eprintln!("train peak RSS: {} KiB", o.peak_rss_kb);
    assert_eq!(o.code, 1, "{}", o.stderr);
    for (path, size, mp) in [
        (&png, "40000x40000", "1600.0"),
        (&jpeg, "12000x12000", "144.0"),
    ] {
        let line = format!(
            "skipped {}: cannot be read: image {}: {size} pixels ({mp} megapixels) is larger than the limit of 64 megapixels and 32768 pixels a side; scale it down",
            path.display(),
            path.display()
        );
        assert!(o.stderr.lines().any(|l| l == line), "{line}\n{}", o.stderr);
    }
    assert!(
        o.stderr.ends_with(&format!(
            "facerec-model: no face could be enrolled; {} not written\n",
            out.display()
        )),
        "{}",
        o.stderr
    );
    assert!(!out.exists());
    // The models and ONNX Runtime take about 150 MB; decoding the PNG would take 1.6 GB and
    // its RGB copy 4.8 GB more.
    assert!(o.peak_rss_kb < 500 * 1024, "peak RSS {} KiB", o.peak_rss_kb);
}

/// `train` on `input`, which must fail before any model loads (so these tests need no assets).
fn train_refused(input: &Path, out: &Path) -> String {
    let o = run(&["train", s(input), "-o", s(out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written");
    stderr(&o)
}

#[test]
fn train_refuses_names_that_loading_would_refuse() {
    let dir = temp_dir("names");
    let dir = dir.path();
    let out = dir.join("model.data");
    let long = "x".repeat(129);
    let long_file = format!("{long}.jpg");
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "blank-photo",
            vec![" .jpg"],
            "photo \"{D}/ .jpg\": the person name \" \" is empty".into(),
        ),
        (
            "blank-folder",
            vec![" /a.jpg"],
            "folder \"{D}/ \": the person name \" \" is empty".into(),
        ),
        (
            "newline",
            vec!["Greg\nSmith.jpg"],
            "photo \"{D}/Greg\\nSmith.jpg\": the person name \"Greg\\nSmith\" contains a control character (U+000A)".into(),
        ),
        (
            "padded",
            vec!["Greg /x.jpg"],
            "folder \"{D}/Greg \": the person name \"Greg \" starts or ends with white space".into(),
        ),
        (
            "long",
            vec![&long_file],
            format!(
                "photo \"{{D}}/{long}.jpg\": the person name \"{}\"... (129 characters) is longer than 128 characters",
                "x".repeat(40)
            ),
        ),
    ];
    for (tag, files, problem) in cases {
        let photos = dir.join(tag);
        for file in &files {
            let path = photos.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"not decoded: names are checked first").unwrap();
        }
        let err = train_refused(&photos, &out);
        let problem = problem.replace("{D}", s(&photos));
        assert_eq!(
            err,
            format!(
                "error: {problem}\nfacerec-model: 1 problem(s) in {}, so {} was not written\n",
                photos.display(),
                out.display()
            ),
            "{tag}"
        );
    }
    // A valid 128-character name is accepted by the check (it fails later, on the photo).
    assert!(facerec_core::gallery::check_person_name(&"x".repeat(128)).is_ok());

    // metadata.yaml names obey the same rule, and --allow-missing does not override it.
    let yaml = dir.join("metadata.yaml");
    std::fs::write(&yaml, "faces:\n  - name: \" \"\n    image: a.jpg\n").unwrap();
    let o = run(&["train", s(&yaml), "-o", s(&out), "--allow-missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "facerec-model: {}: the entry for a.jpg: the person name \" \" is empty\n",
            yaml.display()
        )
    );
    assert!(!out.exists());
}

#[test]
fn one_photo_under_several_names_is_refused() {
    let dir = temp_dir("dup");
    let dir = dir.path();
    std::fs::write(dir.join("p.jpg"), b"x").unwrap();
    let yaml = dir.join("metadata.yaml");
    std::fs::write(
        &yaml,
        "faces:\n  - {name: Ann, image: p.jpg}\n  - {name: Bob, image: ./p.jpg}\n  - {name: Cy, image: p.jpg}\n  - {name: Ann, image: p.jpg}\n",
    )
    .unwrap();
    let out = dir.join("model.data");
    let err = train_refused(&yaml, &out);
    assert_eq!(
        err,
        format!(
            "error: photo \"{}\" is listed under 3 names (\"Ann\", \"Bob\", \"Cy\"): one photo enrols one person\nfacerec-model: 1 problem(s) in {}, so {} was not written\n",
            dir.join("p.jpg").display(),
            yaml.display(),
            out.display()
        )
    );
}

#[test]
fn hidden_entries_and_symlink_loops_are_reported() {
    let dir = temp_dir("hidden");
    let dir = dir.path();
    let photos = dir.join("photos");
    std::fs::create_dir_all(photos.join(".git")).unwrap();
    std::fs::create_dir_all(photos.join("Ann/.thumbs")).unwrap();
    std::fs::write(photos.join(".Bob.jpg"), b"x").unwrap();
    std::fs::write(photos.join("Ann/.x.jpg"), b"x").unwrap();
    std::os::unix::fs::symlink("loop.jpg", photos.join("loop.jpg")).unwrap();
    std::os::unix::fs::symlink("b", photos.join("Ann/a")).unwrap();
    std::os::unix::fs::symlink("a", photos.join("Ann/b")).unwrap();
    let out = dir.join("model.data");
    let err = train_refused(&photos, &out);
    let p = |rel: &str| photos.join(rel).display().to_string();
    let looped = "Too many levels of symbolic links (os error 40)";
    let expected = [
        format!("warning: skipping hidden file {}", p(".Bob.jpg")),
        format!("warning: skipping hidden folder {}", p(".git")),
        format!("warning: skipping hidden folder {}", p("Ann/.thumbs")),
        format!("warning: skipping hidden file {}", p("Ann/.x.jpg")),
        format!("warning: skipping {}: {looped}", p("Ann/a")),
        format!("warning: skipping {}: {looped}", p("Ann/b")),
        format!("warning: skipping {}: {looped}", p("loop.jpg")),
        format!("facerec-model: no photos in {}", photos.display()),
    ];
    assert_eq!(err.lines().collect::<Vec<_>>(), expected, "{err}");
}

#[test]
fn metadata_parsing_touches_no_file() {
    use facerec_model::photos::{LabelledPhoto, parse_metadata};
    let base = Path::new("/nonexistent/base");
    assert_eq!(
        parse_metadata("faces:\n  - {name: Ann, image: a.jpg}\n", base).unwrap(),
        vec![LabelledPhoto {
            person: "Ann".into(),
            path: base.join("a.jpg")
        }]
    );
    assert_eq!(
        parse_metadata("faces:\n  - {name: \"A\\nB\", image: a.jpg}\n", base)
            .unwrap_err()
            .to_string(),
        "the entry for a.jpg: the person name \"A\\nB\" contains a control character (U+000A)"
    );
    assert!(
        parse_metadata("faces: 3", base)
            .unwrap_err()
            .to_string()
            .starts_with("not a valid metadata.yaml: faces: invalid type")
    );
}

/// `obama.jpg` upscaled 4x (3640x4548, a 928 px face), saved as a JPEG in `dir`.
fn upscaled_obama(dir: &Path, file: &str) -> PathBuf {
    use facerec_core::image::imageops;
    let native = facerec_core::stills::load_rgb(&asset(&format!("{TD}/obama.jpg"))).unwrap();
    let big = imageops::resize(
        &native,
        native.width() * 4,
        native.height() * 4,
        imageops::FilterType::CatmullRom,
    );
    let path = dir.join(file);
    big.save(&path).unwrap();
    path
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_photo_at_camera_size_is_found_by_embed_identify_and_train() {
    if !ready() {
        return;
    }
    let dir = temp_dir("upscaled");
    let dir = dir.path();
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let big = upscaled_obama(&photos, "Obama.jpg");

    // One native pass (the old default, now `--network-width 0`) finds nothing...
    let o = run(&["--network-width", "0", "embed", "--json", s(&big)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["faces"].as_array().unwrap().len(), 0);
    let o = run(&[
        "--network-width",
        "0",
        "train",
        s(&photos),
        "-o",
        s(&dir.join("old.data")),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("skipped {}: no face found", big.display())),
        "{}",
        stderr(&o)
    );

    // ...the default finds the face, boxed as the native one times 4 (within 3% of its width).
    let native = run(&["embed", "--json", s(&asset(&format!("{TD}/obama.jpg")))]);
    let o = run(&["embed", "--json", s(&big)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let faces = json_lines(&o)[0]["faces"].as_array().unwrap().clone();
    assert_eq!(faces.len(), 1);
    assert!(
        faces[0]["embedding"]
            .as_array()
            .is_some_and(|e| e.len() == 128)
    );
    let want: Vec<f64> = json_lines(&native)[0]["faces"][0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want = [
        (want[0] + 0.5) * 4.0 - 0.5,
        (want[1] + 0.5) * 4.0 - 0.5,
        want[2] * 4.0,
        want[3] * 4.0,
    ];
    for (i, got) in faces[0]["box"].as_array().unwrap().iter().enumerate() {
        let got = got.as_f64().unwrap();
        assert!(
            (got - want[i]).abs() <= 0.03 * want[2],
            "box {:?} against {want:?}",
            faces[0]["box"]
        );
    }

    // identify names it against the knn gallery (enrolled at native size)...
    let knn = knn_model(dir);
    let o = run(&["identify", "--gallery", s(&knn), "--json", s(&big)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let faces = json_lines(&o)[0]["faces"].as_array().unwrap().clone();
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0]["name"], "obama");

    // ...and train enrols it.
    let out = dir.join("model.data");
    let o = run(&["train", s(&photos), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("people: 1, photos used: 1, photos skipped: 0"),
        "{}",
        stderr(&o)
    );
    assert_eq!(Gallery::load(&out).unwrap().embedding_count(), 1);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn train_and_inspect_warn_of_two_names_for_one_face() {
    if !ready() {
        return;
    }
    let dir = temp_dir("lint");
    let dir = dir.path();
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(asset(&format!("{TD}/obama.jpg")), photos.join("obama.jpg")).unwrap();
    std::fs::copy(
        asset(&format!("{TD}/obama2.jpg")),
        photos.join("barack.jpg"),
    )
    .unwrap();
    let out = dir.join("model.data");
    let o = run(&["train", s(&photos), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g = Gallery::load(&out).unwrap();
    let pair = g.close_pairs(f32::INFINITY).remove(0);
    let (a, b) = (
        &g.people[0].enrolments[0].embedding,
        &g.people[1].enrolments[0].embedding,
    );
    let distance = facerec_core::embed::euclidean(a, b);
    assert_eq!(pair.distance, distance);
    eprintln!("obama.jpg to obama2.jpg: {distance:.3}");
    let line = format!(
        "warning: {:?} and {:?} are {distance:.3} apart, closer than the match threshold 0.6: the same person under two names, or look-alikes that recognition will confuse",
        g.people[0].name, g.people[1].name
    );
    assert!(line.contains("\"barack\"") && line.contains("\"obama\""));
    let warnings: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings, vec![line.clone()], "{}", stderr(&o));

    // inspect prints the same line, and lists the pair in its JSON.
    let o = run(&["inspect", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect();
    assert_eq!(printed, vec![line.clone()], "{}", stdout(&o));
    let o = run(&["inspect", "--json", s(&out)]);
    let summary: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let pairs = summary["close_pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0]["first"], g.people[0].name.as_str());
    assert_eq!(pairs[0]["second"], g.people[1].name.as_str());
    assert!((pairs[0]["distance"].as_f64().unwrap() - distance as f64).abs() < 1e-6);
    assert_eq!(summary["warnings"][0], &line["warning: ".len()..]);

    // The knn gallery's people are all farther apart than the threshold: no warning.
    let knn_dir = temp_dir("lint-knn");
    let knn_dir = knn_dir.path();
    let knn = knn_dir.join("model.data");
    let o = run(&[
        "train",
        s(&asset(&format!("{TD}/knn_examples/train"))),
        "-o",
        s(&knn),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning:"), "{}", stderr(&o));
    let closest = Gallery::load(&knn)
        .unwrap()
        .close_pairs(f32::INFINITY)
        .remove(0);
    eprintln!(
        "knn gallery's closest people: {} and {} at {:.3}",
        closest.first, closest.second, closest.distance
    );
    let o = run(&["inspect", s(&knn)]);
    assert!(!stdout(&o).contains("warning:"), "{}", stdout(&o));
    let o = run(&["inspect", "--json", s(&knn)]);
    let summary: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(summary["close_pairs"].as_array().unwrap().len(), 0);
}

/// The converter venv can make the variants (onnx, onnxruntime, numpy, Pillow); skips loudly
/// without it outside CI.
fn quantizer_python() -> Option<PathBuf> {
    let python = facerec_model::fetch::default_python();
    let ok = Command::new(&python)
        .args(["-c", "import onnx, onnxruntime, numpy, PIL"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if on_ci() {
        panic!(
            "{} lacks onnx/onnxruntime/numpy/Pillow under CI: run deploy/setup.sh",
            python.display()
        );
    }
    eprintln!(
        "\n!!!! SKIPPED: {} lacks onnx/onnxruntime/numpy/Pillow; run deploy/setup.sh !!!!\n",
        python.display()
    );
    None
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn models_fetch_variant_all_makes_the_recorded_variants() {
    if !ready() || quantizer_python().is_none() {
        return;
    }
    use facerec_core::models::ModelVariant;
    use facerec_model::fetch::recorded;
    let dir = temp_dir("fetch-variants");
    let dir = dir.path();
    let shared_models = asset("models");
    let fetch = |extra: &[&str]| {
        let mut args = vec!["models", "fetch", "--dir", s(dir)];
        args.extend(["--detector-from", s(&shared_models)]);
        args.extend(extra);
        run(&args)
    };
    let o = fetch(&["--variant", "all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for variant in ModelVariant::ALL {
        for detector in [true, false] {
            let (file, sha) = recorded(variant, detector);
            assert_eq!(
                facerec_core::models::sha256_file(&dir.join(&file)).unwrap(),
                sha,
                "{file}"
            );
        }
    }
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 6, "no stray files");
    assert!(
        stderr(&o).contains(&format!(
            "recognizer int8: {} (made from {}, sha256 verified)",
            dir.join("dlib_face_recognition_resnet_model_v1.int8.onnx")
                .display(),
            dir.join("dlib_face_recognition_resnet_model_v1.onnx")
                .display()
        )),
        "{}",
        stderr(&o)
    );
    // A second run keeps the verified files; a damaged variant is made again.
    let int8 = dir.join("yunet_s_dynamic.int8.onnx");
    std::fs::write(&int8, b"damaged").unwrap();
    let o = fetch(&["--variant", "all", "--detector-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "detector fp16: {} is already verified",
            dir.join("yunet_s_dynamic.fp16.onnx").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("detector int8: {} (made from", int8.display())),
        "{err}"
    );
    assert_eq!(
        facerec_core::models::sha256_file(&int8).unwrap(),
        recorded(ModelVariant::Int8, true).1
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn models_fetch_variant_refuses_bytes_that_are_not_the_recorded_ones() {
    if !ready() || quantizer_python().is_none() {
        return;
    }
    // Calibration photos that are not the knn_examples ones (obama.jpg stands in for
    // obama2.jpg) give other int8 bytes, which must be refused and not written.
    let fake = temp_dir("fetch-variant-testdata");
    let testdata = fake.path().join("testdata");
    std::fs::create_dir_all(&testdata).unwrap();
    std::os::unix::fs::symlink(asset("testdata/expected"), testdata.join("expected")).unwrap();
    let train = asset(&format!("{TD}/knn_examples/train"));
    for person in std::fs::read_dir(&train).unwrap() {
        let person = person.unwrap().path();
        let to = testdata
            .join("face_recognition/knn_examples/train")
            .join(person.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for photo in std::fs::read_dir(&person).unwrap() {
            let photo = photo.unwrap().path();
            let name = photo.file_name().unwrap();
            let from = if name == "obama2.jpg" {
                person.join("obama.jpg")
            } else {
                photo.clone()
            };
            std::fs::copy(from, to.join(name)).unwrap();
        }
    }
    let dir = temp_dir("fetch-variant-refused");
    let dir = dir.path();
    let o = run(&[
        "models",
        "fetch",
        "--dir",
        s(dir),
        "--detector-from",
        s(&asset("models")),
        "--detector-only",
        "--variant",
        "int8",
        "--testdata",
        s(&testdata),
    ]);
    assert!(!o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            ", expected {}: refusing it (the pinned packages of model/convert/requirements.txt make the recorded bytes)",
            facerec_core::models::DETECTOR_INT8_SHA256
        )),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["yunet_s_dynamic.onnx"],
        "only the verified fp32 file"
    );

    let o = run(&["models", "fetch", "--dir", s(dir), "--variant", "bf16"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "invalid value 'bf16' for '--variant <VARIANT>': unknown model variant 'bf16': expected fp32, fp16, int8 or all"
        ),
        "{}",
        stderr(&o)
    );
}
