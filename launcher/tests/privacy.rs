//! A person's rights over their data, on the sample clip with a real broker: the
//! subject-access export, erasure everywhere (the API, the data folder and what mosquitto
//! retains), and the audit log of both.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::broker::*;
use common::*;

const TOKEN: &str = "privacy-t0ken";
const NODE: &str = "privacynode";

fn get(launcher: &Launcher, path: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(&launcher.url(path))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
}

fn get_json(launcher: &Launcher, path: &str) -> Value {
    let (status, body) = get(launcher, path);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_person_is_exported_then_erased_everywhere() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let broker = Broker::start("privacy");
    let data = fresh_data_dir().join("data");
    let launcher = Launcher::start(
        &[
            "--gallery".into(),
            gallery().display().to_string(),
            "--source".into(),
            clip_source(),
            "--data-dir".into(),
            data.display().to_string(),
            "--mqtt".into(),
            broker.url(),
            "--mqtt-node-id".into(),
            NODE.into(),
        ],
        &[("FACEREC_API_TOKEN", TOKEN)],
    );
    // Enrol Miranda with a photo of his own (he is in the starting gallery too).
    let photo = std::fs::read(asset("testdata/face_recognition/lin-manuel-miranda.png")).unwrap();
    let (content_type, body) = multipart("photo", &[("miranda.png", &photo)]);
    let (status, text) = send(
        &launcher.url("/api/people/Lin-Manuel%20Miranda/photos"),
        "POST",
        Some(TOKEN),
        &content_type,
        &body,
    );
    assert_eq!(status, 201, "{text}");
    // The history fills with events naming him, and MQTT retains his state and entity.
    let start = Instant::now();
    let named = loop {
        let page = get_json(
            &launcher,
            "/api/history?name=Lin-Manuel%20Miranda&limit=500",
        );
        let n = page["events"].as_array().unwrap().len();
        if n >= 3 {
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{n} events naming Miranda"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mentions = |filter: &str| -> Vec<String> {
        broker
            .retained(filter)
            .into_values()
            .filter(|m| {
                m.topic.contains("miranda")
                    || m.topic.contains("Miranda")
                    || m.payload.as_deref().is_some_and(|p| p.contains("Miranda"))
            })
            .map(|m| m.topic)
            .collect()
    };
    let before_mqtt = [mentions("facerec/#"), mentions("homeassistant/#")].concat();
    assert!(!before_mqtt.is_empty(), "nothing about Miranda is retained");

    // Subject access: his photo, his events and their crops.
    let (status, zip_bytes) = get(&launcher, "/api/people/Lin-Manuel%20Miranda/export");
    assert_eq!(status, 200);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("photos/")).count(),
        1,
        "{names:?}"
    );
    let mut history = String::new();
    zip.by_name("history.json")
        .unwrap()
        .read_to_string(&mut history)
        .unwrap();
    let exported: Vec<Value> = serde_json::from_str(&history).unwrap();
    assert!(exported.len() >= named, "{} < {named}", exported.len());
    assert!(exported.iter().all(|e| e["name"] == "Lin-Manuel Miranda"));
    let crops = names.iter().filter(|n| n.starts_with("history/")).count();
    assert_eq!(
        crops,
        exported.iter().filter(|e| !e["face_url"].is_null()).count(),
        "{names:?}"
    );
    assert!(crops > 0);

    // Erase him: the answer counts what went.
    let (status, text) = send(
        &launcher.url("/api/people/Lin-Manuel%20Miranda?erase=history"),
        "DELETE",
        Some(TOKEN),
        "application/json",
        b"",
    );
    assert_eq!(status, 200, "{text}");
    let erased: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(erased["name"], "Lin-Manuel Miranda");
    assert_eq!(erased["photos"], 1, "{erased}");
    assert!(
        erased["embeddings"].as_u64().unwrap() >= 2,
        "the seed's and the photo's: {erased}"
    );
    assert!(
        erased["history_events"].as_u64().unwrap() >= exported.len() as u64,
        "{erased}"
    );
    assert!(
        erased["crops"].as_u64().unwrap() >= crops as u64,
        "{erased}"
    );

    // Nothing of him is left: the API, the library folder, the gallery, the crops on disk.
    let page = get_json(
        &launcher,
        "/api/history?name=Lin-Manuel%20Miranda&limit=500",
    );
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
    let people = get_json(&launcher, "/api/people");
    assert!(
        people
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "Lin-Manuel Miranda"),
        "{people}"
    );
    let (_, export) = get(&launcher, "/api/library/export");
    let gallery = facerec_core::gallery::Gallery::from_bytes(&export).unwrap();
    assert!(
        gallery
            .people
            .iter()
            .all(|p| p.name != "Lin-Manuel Miranda")
    );
    assert!(
        gallery
            .rejects
            .iter()
            .all(|p| p.name != "Lin-Manuel Miranda")
    );
    let library_files = files_under(&data.join("library"));
    assert!(
        library_files
            .iter()
            .all(|f| !f.display().to_string().contains("Miranda")),
        "{library_files:?}"
    );
    for event in &exported {
        let id = event["id"].as_i64().unwrap();
        assert_eq!(get(&launcher, &format!("/api/history/{id}")).0, 404);
        assert_eq!(
            get(&launcher, &format!("/api/history/{id}/face.jpg")).0,
            404
        );
    }
    // MQTT: his retained state and Home Assistant entity are gone.
    let start = Instant::now();
    loop {
        let left = [mentions("facerec/#"), mentions("homeassistant/#")].concat();
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still retained about Miranda: {left:?} (before: {before_mqtt:?})"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Erasing someone who is not there says so.
    let (status, text) = send(
        &launcher.url("/api/people/Nobody%20Here?erase=history"),
        "DELETE",
        Some(TOKEN),
        "application/json",
        b"",
    );
    assert_eq!(status, 404, "{text}");

    // The audit log has both, with who did them.
    let audit = get_json(&launcher, "/api/audit");
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            format!(
                "{} {} {}",
                e["user"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["status"]
            )
        })
        .collect();
    for expected in [
        "FACEREC_API_TOKEN POST /api/people/{name}/photos 201",
        "FACEREC_API_TOKEN GET /api/people/{name}/export 200",
        "FACEREC_API_TOKEN DELETE /api/people/{name} 200",
        "FACEREC_API_TOKEN DELETE /api/people/{name} 404",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} not in {actions:?}"
        );
    }
}
