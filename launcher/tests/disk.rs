//! The data folder when it fails: a full disk (a real, small tmpfs filled to ENOSPC by another
//! file) and a face library that cannot be opened.
//!
//! * On a full disk the recognition events still go out live (SSE) without a history id,
//!   `facerec_store_errors_total` and `facerec_events_dropped_total` count what was not stored,
//!   `events.db` stays sound, and storing resumes once there is room again.
//! * `--min-free-mb` (`Retention::min_free_bytes`) deletes the oldest events and their crops
//!   while the file system has less than that free, whatever filled it.
//! * A corrupt `<data>/model.data` turns the face library off with one error line and a
//!   degraded `/readyz`, and the history stays on disk.
//!
//! The tmpfs tests mount one (root only); they are skipped when that is impossible, except under
//! `CI=true`, where they must run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use facerec_core::testsupport::on_ci;
use facerec_launcher::store::{
    EventKind, HistoryQuery, Integrity, NewEvent, Retention, Store, free_bytes,
};

mod common;
use common::*;

const MIB: u64 = 1024 * 1024;

/// A tmpfs of a fixed size on a fresh folder, unmounted when dropped (lazily if something still
/// holds it), then the folder removed.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (the test is skipped) when it cannot be mounted and CI is unset.
    fn mount(tag: &str, mib: u64) -> Option<Tmpfs> {
        let dir = temp_dir(tag);
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(!on_ci(), "cannot mount a {mib} MiB tmpfs (CI=true): {why}");
                eprintln!("\n!!!! SKIPPED: cannot mount a tmpfs (needs root): {why} !!!!\n");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the file system is full (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; MIB as usize];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    written
}

/// Writes `bytes` to a new file `path` (on a tmpfs the pages are taken at once).
fn write_filler(path: &Path, bytes: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5_u8; MIB as usize];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(MIB) as usize;
        file.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn event(time_ms: i64, crop: Vec<u8>) -> NewEvent {
    NewEvent {
        camera: "door".into(),
        kind: EventKind::Named,
        name: "Anna".into(),
        stranger: None,
        distance: Some(0.4),
        confidence: Some(0.8),
        quality: Some(0.7),
        track_id: 1,
        bbox: [1, 2, 30, 40],
        first_seen_ms: time_ms - 1000,
        last_seen_ms: time_ms,
        time_ms,
        crop_jpeg: Some(crop),
    }
}

/// A crop whose bytes depend on `seed`.
fn crop(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed as usize * 31 + i) as u8).collect()
}

fn all_ids(store: &Store) -> Vec<i64> {
    let q = HistoryQuery {
        limit: 500,
        ..HistoryQuery::default()
    };
    store
        .query(&q)
        .unwrap()
        .events
        .iter()
        .map(|e| e.id)
        .collect()
}

fn sound() -> Integrity {
    Integrity {
        sqlite: "ok".into(),
        rows_without_files: 0,
        files_without_rows: 0,
    }
}

/// `PRAGMA integrity_check` of `<data>/events.db`, through a connection of the test's own.
fn integrity_check(data: &Path) -> String {
    let conn = rusqlite::Connection::open(data.join("events.db")).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Seeds `count` events with `len`-byte crops a day old, oldest first; returns their ids.
fn seed(data: &Path, count: u64, len: usize) -> Vec<i64> {
    let store = Store::open(data, Retention::default()).unwrap();
    let base = now_ms() - 86_400_000;
    (0..count)
        .map(|i| {
            store
                .insert(event(base + i as i64 * 1000, crop(i, len)))
                .unwrap()
                .id
        })
        .collect()
}

/// The store alone on a 32 MiB tmpfs: an insert on a full disk fails cleanly (ENOSPC, nothing
/// half-written, the database sound) and works again once there is room; with
/// `min_free_bytes` the failed insert makes room by deleting the oldest events and succeeds,
/// and the file system is left with at least that much free.
#[test]
fn the_store_on_a_full_disk_fails_cleanly_and_min_free_makes_room() {
    let Some(fs) = Tmpfs::mount("store-full", 32) else {
        return;
    };
    let data = fs.path().join("data");
    let filler = fs.path().join("filler");
    let now = now_ms();

    let store = Store::open(&data, Retention::default()).unwrap();
    let kept = store.insert(event(now - 1000, crop(1, 20_000))).unwrap();
    let filled = fill(&filler);
    assert!(
        free_bytes(&data).unwrap() < 64 * 1024,
        "filled {filled} bytes"
    );
    let err = store
        .insert(event(now, crop(2, 20_000)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("No space left on device") || err.contains("full"),
        "{err}"
    );
    assert_eq!(store.integrity().unwrap(), sound());
    assert_eq!(all_ids(&store), [kept.id]);
    std::fs::remove_file(&filler).unwrap();
    let after = store.insert(event(now, crop(3, 20_000))).unwrap();
    assert_eq!(all_ids(&store), [after.id, kept.id]);
    assert_eq!(store.crop(after.id).unwrap(), Some(crop(3, 20_000)));
    drop(store);

    // 200 day-old events of 40 KB crops (8 MB), then a filler that leaves nothing free.
    let seeded = seed(&data, 200, 40_000);
    let min_free = 4 * MIB;
    let retention = Retention {
        min_free_bytes: Some(min_free),
        ..Retention::default()
    };
    let store = Store::open(&data, retention).unwrap();
    assert_eq!(all_ids(&store).len(), 202, "nothing deleted at open");
    fill(&filler);
    assert!(free_bytes(&data).unwrap() < 64 * 1024);
    let newest = store.insert(event(now + 1000, crop(4, 40_000))).unwrap();
    let free = free_bytes(&data).unwrap();
    assert!(free >= min_free, "{free} bytes free after the insert");
    let ids = all_ids(&store);
    let left: Vec<i64> = seeded.iter().copied().filter(|i| ids.contains(i)).collect();
    // The oldest went first, and only about the missing 4 MiB of them (100 crops of 40 KB).
    assert!(!ids.contains(&seeded[0]));
    assert_eq!(left, seeded[seeded.len() - left.len()..].to_vec());
    assert!(
        (50..=150).contains(&left.len()),
        "{} of 200 seeded events left",
        left.len()
    );
    for id in [newest.id, after.id, kept.id] {
        assert!(ids.contains(&id), "event {id} deleted: {ids:?}");
    }
    assert_eq!(store.integrity().unwrap(), sound());
    drop(store);
    assert_eq!(integrity_check(&data), "ok");
}

fn launcher_args(data: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--source".to_string(),
        clip_source(),
        "--gallery".to_string(),
        gallery().display().to_string(),
        "--data-dir".to_string(),
        data.display().to_string(),
        "--unknown-after".to_string(),
        "0.2s".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn metric(l: &Launcher, series: &str) -> f64 {
    l.metric(series)
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

fn stored(e: &Value) -> bool {
    e["id"].as_i64().is_some_and(|id| id > 0)
}

/// The launcher on the sample clip with its data folder on a 32 MiB tmpfs (32 rather than 8:
/// the WAL alone can reach 4 MB before its first checkpoint).
/// 1. `--min-free-mb 0`: a filler file takes every free byte. Events still reach the SSE
///    stream, with id 0 and `face_url` null; both counters move; `events.db` passes
///    `PRAGMA integrity_check`. The filler removed, events are stored again.
/// 2. `--min-free-mb 4` with 200 day-old events (8 MB) in the history: a filler that leaves
///    1 MiB free makes the launcher delete the oldest events until 4 MiB are free, and no more
///    than that needs.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_full_disk_keeps_live_events_and_min_free_mb_makes_room() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let Some(fs) = Tmpfs::mount("launcher-full", 32) else {
        return;
    };
    let data = fs.path().join("data");
    let filler = fs.path().join("filler");

    let mut launcher = Launcher::start(&launcher_args(&data, &["--min-free-mb", "0"]), &[]);
    let events = launcher.events();
    let (first, _) = wait_event(&events, Duration::from_secs(60), stored)
        .unwrap_or_else(|before| panic!("no stored event: {before:#?}"));
    assert_eq!(metric(&launcher, "facerec_store_errors_total"), 0.0);
    assert_eq!(metric(&launcher, "facerec_events_dropped_total"), 0.0);

    let filled = fill(&filler);
    assert!(
        free_bytes(&data).unwrap() < 64 * 1024,
        "filled {filled} bytes"
    );
    let (unstored, _) = wait_event(&events, Duration::from_secs(60), |e| e["id"] == 0)
        .unwrap_or_else(|before| panic!("no live event on the full disk: {before:#?}"));
    assert_eq!(unstored["face_url"], Value::Null, "{unstored}");
    assert_eq!(unstored["camera"], "clip", "{unstored}");
    assert!(unstored["name"].is_string() && unstored["time"].is_string());
    launcher.wait_for("both counters", Duration::from_secs(10), |l| {
        l.metric("facerec_store_errors_total") >= Some(1.0)
            && l.metric("facerec_events_dropped_total") >= Some(1.0)
    });
    let metrics = launcher.metrics();
    let errors = metric_value(&metrics, "facerec_store_errors_total").unwrap();
    let dropped = metric_value(&metrics, "facerec_events_dropped_total").unwrap();
    assert!(
        dropped >= errors,
        "{dropped} dropped < {errors} store errors"
    );
    assert_eq!(integrity_check(&data), "ok");

    std::fs::remove_file(&filler).unwrap();
    let (resumed, _) = wait_event(&events, Duration::from_secs(60), |e| {
        e["id"].as_i64() > first["id"].as_i64() && e["face_url"].is_string()
    })
    .unwrap_or_else(|before| panic!("storing did not resume: {before:#?}"));
    let (status, exit_after) = launcher.terminate();
    assert!(status.success(), "{status:?} after {exit_after:?}");
    drop(launcher);
    {
        let store = Store::open(&data, Retention::default()).unwrap();
        assert_eq!(store.integrity().unwrap(), sound());
        let id = resumed["id"].as_i64().unwrap();
        assert!(store.get(id).unwrap().is_some(), "event {id} not stored");
    }
    eprintln!(
        "full disk: event {} sent live unstored, {errors} store errors, {dropped} dropped; event {} stored after",
        unstored["name"], resumed["id"]
    );

    let seeded = seed(&data, 200, 40_000);
    let mut launcher = Launcher::start(&launcher_args(&data, &["--min-free-mb", "4"]), &[]);
    let min_free = 4 * MIB;
    let free = free_bytes(&data).unwrap();
    assert!(
        free > min_free + MIB,
        "only {free} bytes free before the filler"
    );
    write_filler(&filler, free - MIB);
    let started = Instant::now();
    let mut free = free_bytes(&data).unwrap();
    while free < min_free {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{free} bytes free after 60 s with --min-free-mb 4"
        );
        std::thread::sleep(Duration::from_millis(200));
        free = free_bytes(&data).unwrap();
    }
    let took = started.elapsed();
    let (status, _) = launcher.terminate();
    assert!(status.success(), "{status:?}");
    let store = Store::open(&data, Retention::default()).unwrap();
    assert_eq!(store.integrity().unwrap(), sound());
    let ids = all_ids(&store);
    let left: Vec<i64> = seeded.iter().copied().filter(|i| ids.contains(i)).collect();
    assert!(!ids.contains(&seeded[0]), "the oldest event was kept");
    assert_eq!(left, seeded[seeded.len() - left.len()..].to_vec());
    // About the missing 3 MiB of 40 KB crops (77), not the whole history.
    assert!(
        (100..=150).contains(&left.len()),
        "{} of 200 seeded events left",
        left.len()
    );
    assert!(
        ids.contains(&resumed["id"].as_i64().unwrap()),
        "a newer event went before older ones"
    );
    eprintln!(
        "--min-free-mb 4: {} bytes free {took:?} after the filler, {} of 200 old events left",
        free,
        left.len()
    );
}

/// The launcher with its stderr collected, line by line (echoed for the test's log).
fn start_collecting(args: &[String]) -> (Launcher, Arc<Mutex<Vec<String>>>) {
    let mut cmd = launcher_command();
    cmd.args(["--listen", "127.0.0.1:0", "--log-json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the launcher starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { return };
            eprintln!("{line}");
            collected.lock().unwrap().push(line);
        }
    });
    (Launcher::wait_listening(child), lines)
}

/// The `ERROR` lines among the JSON log lines.
fn error_lines(lines: &Mutex<Vec<String>>) -> Vec<Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR")
        .collect()
}

fn history_ids(l: &Launcher) -> Vec<i64> {
    l.get_json("/api/history?limit=500")["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect()
}

/// A data folder whose library gallery `<data>/model.data` is garbage: the launcher keeps
/// running on `--gallery` with the library off, says why in exactly one error line and in
/// `/readyz` (503 `degraded: the face library cannot be opened: <reason>`), and keeps the
/// history on disk: the events stored before a restart are listed after it.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_library_that_cannot_be_opened_keeps_history_on_disk_and_readyz_degraded() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let data: PathBuf = fresh_data_dir();
    let model = data.join("model.data");
    std::fs::write(&model, b"this is not a gallery\n").unwrap();

    let (mut launcher, stderr) = start_collecting(&launcher_args(&data, &[]));
    let (status, body) = send(&launcher.url("/readyz"), "GET", None, "", b"");
    assert_eq!(status, 503, "{body}");
    let prefix = "degraded: the face library cannot be opened: ";
    assert!(body.starts_with(prefix), "{body}");
    assert!(body.contains(&model.display().to_string()), "{body}");
    let reason = body.strip_prefix(prefix).unwrap().trim_end();

    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let fields = &errors[0]["fields"];
    assert!(
        fields["message"]
            .as_str()
            .unwrap()
            .starts_with("the face library cannot be opened"),
        "{fields}"
    );
    assert_eq!(fields["error"], reason, "{fields}");

    // The history is on disk: a stored event (with its crop), in events.db.
    let events = launcher.events();
    let (event, _) = wait_event(&events, Duration::from_secs(60), |e| {
        stored(e) && e["face_url"].is_string()
    })
    .unwrap_or_else(|before| panic!("no stored event: {before:#?}"));
    let id = event["id"].as_i64().unwrap();
    assert_eq!(event["name"], MIRANDA, "the pipelines use --gallery");
    let (status, _) = launcher.terminate();
    assert!(status.success(), "{status:?}");
    drop(launcher);
    assert_eq!(integrity_check(&data), "ok");

    let (launcher, stderr) = start_collecting(&launcher_args(&data, &[]));
    assert!(
        history_ids(&launcher).contains(&id),
        "event {id} lost in the restart"
    );
    let (status, body) = send(&launcher.url("/readyz"), "GET", None, "", b"");
    assert_eq!(
        (status, body.as_str()),
        (503, format!("{prefix}{reason}\n").as_str())
    );
    assert_eq!(error_lines(&stderr).len(), 1);
    eprintln!("library off ({reason}); event {id} kept across a restart");
}

/// `--min-free-mb` (and `FACEREC_MIN_FREE_MB`) is checked like the other numeric settings: out
/// of range is one error line and exit 1, before anything else.
#[test]
fn min_free_mb_out_of_range_is_one_line_at_start() {
    let refused = |cmd: &mut Command, value: &str| {
        let out = output_within(cmd, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "facerec-launcher: min-free-mb {value} is out of range: it must be 0 to 10000000"
        );
        assert_eq!(
            (out.status.code(), err.trim_end()),
            (Some(1), expected.as_str())
        );
    };
    refused(launcher_command().arg("--min-free-mb=-1"), "-1");
    refused(
        launcher_command().env("FACEREC_MIN_FREE_MB", "20000000"),
        "20000000",
    );
}
