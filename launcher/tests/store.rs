//! The event store on a real file system: queries, persistence, migrations, retention, repair,
//! and a writer killed with SIGKILL at random moments.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::os::unix::process::ExitStatusExt;

use facerec_launcher::store::{
    EventKind, HistoryQuery, Integrity, NewEvent, ROW_OVERHEAD_BYTES, Reconciled, Retention, Store,
    StoreError,
};

/// Set in the child process of the crash test: the data directory it writes to.
const CHILD_DIR: &str = "FACEREC_STORE_TEST_CHILD_DIR";
/// The crash test's byte budget: about 20 events of the child's 5 to 40 KB crops, so retention
/// deletes as often as the child inserts once it is full.
const CHILD_BUDGET: u64 = 450_000;

/// A fresh directory, removed when the test ends, passed or failed.
fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("facerec-store-test-{tag}-"))
        .tempdir()
        .unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// xorshift64*: enough randomness for sizes and delays without a dependency.
struct Rng(u64);
impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng((nanos ^ (std::process::id() as u64) << 32) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn event(camera: &str, name: &str, time_ms: i64, crop: Option<Vec<u8>>) -> NewEvent {
    NewEvent {
        camera: camera.into(),
        kind: if name == "unknown" {
            EventKind::Unknown
        } else {
            EventKind::Named
        },
        name: name.into(),
        stranger: None,
        distance: Some(0.41),
        confidence: Some(0.8),
        quality: Some(0.7),
        track_id: 3,
        bbox: [10, 20, 64, 80],
        first_seen_ms: time_ms - 1000,
        last_seen_ms: time_ms,
        time_ms,
        crop_jpeg: crop,
    }
}

/// A crop whose bytes depend on `seed`, so that a mixed-up file shows.
fn crop(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed as usize * 31 + i) as u8).collect()
}

/// The crash test's crop length for a track, 5 to 40 KB: known without asking the store, so
/// that a short or long file shows.
fn crop_len(track: u64) -> usize {
    5_000 + (track.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % 35_001
}

fn crop_path(dir: &Path, id: i64) -> PathBuf {
    dir.join("crops").join(format!("{id}.jpg"))
}

fn ids(store: &Store, q: &HistoryQuery) -> Vec<i64> {
    store
        .query(q)
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

fn user_version(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("events.db")).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn insert_get_filter_page_and_delete() {
    let dir = temp_dir("query");
    let dir = dir.path();
    let store = Store::open(dir, Retention::default()).unwrap();
    assert!(store.is_persistent());
    let t = 1_750_000_000_000;
    let mut stranger = event("garden", "unknown", t + 4, Some(crop(4, 500)));
    stranger.stranger = Some("stranger-12".into());
    let inserted: Vec<i64> = [
        event("door", "Anna", t, Some(crop(0, 1000))),
        event("door", "Bob", t + 1, None),
        event("garden", "Anna", t + 2, Some(crop(2, 2000))),
        event("door", "unknown", t + 3, Some(crop(3, 300))),
        stranger,
    ]
    .into_iter()
    .map(|e| store.insert(e).unwrap().id)
    .collect();
    let [a, b, c, d, e] = inserted[..] else {
        unreachable!()
    };
    assert!(a < b && b < c && c < d && d < e);

    let got = store.get(c).unwrap().unwrap();
    assert_eq!(
        (
            got.camera.as_str(),
            got.name.as_str(),
            got.time_ms,
            got.has_crop
        ),
        ("garden", "Anna", t + 2, true)
    );
    assert_eq!(got.bbox, [10, 20, 64, 80]);
    assert!(!store.get(b).unwrap().unwrap().has_crop);
    assert_eq!(store.get(e + 100).unwrap(), None);
    assert_eq!(store.crop(c).unwrap(), Some(crop(2, 2000)));
    assert_eq!(std::fs::read(crop_path(dir, c)).unwrap(), crop(2, 2000));
    assert_eq!(store.crop(b).unwrap(), None);
    assert!(!crop_path(dir, b).exists());

    let q = |f: &dyn Fn(&mut HistoryQuery)| {
        let mut q = HistoryQuery::default();
        f(&mut q);
        ids(&store, &q)
    };
    assert_eq!(q(&|_| {}), vec![e, d, c, b, a]);
    assert_eq!(q(&|q| q.camera = Some("door".into())), vec![d, b, a]);
    assert_eq!(q(&|q| q.name = Some("Anna".into())), vec![c, a]);
    assert_eq!(q(&|q| q.unknown = Some(true)), vec![e, d]);
    assert_eq!(q(&|q| q.unknown = Some(false)), vec![c, b, a]);
    assert_eq!(q(&|q| q.stranger = Some("stranger-12".into())), vec![e]);
    assert_eq!(
        q(&|q| q.stranger = Some("stranger-1".into())),
        Vec::<i64>::new()
    );
    // since inclusive, until exclusive.
    assert_eq!(
        q(&|q| {
            q.since_ms = Some(t + 1);
            q.until_ms = Some(t + 3)
        }),
        vec![c, b]
    );
    // Filters combine with AND.
    assert_eq!(
        q(&|q| {
            q.camera = Some("door".into());
            q.unknown = Some(false);
            q.since_ms = Some(t + 1)
        }),
        vec![b]
    );
    assert_eq!(
        q(&|q| {
            q.camera = Some("garden".into());
            q.name = Some("Bob".into())
        }),
        Vec::<i64>::new()
    );

    // Cursor paging, newest first; the last page says there is no more.
    let mut query = HistoryQuery {
        limit: 2,
        ..HistoryQuery::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = store.query(&query).unwrap();
        pages.push((
            page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            page.next_cursor,
        ));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![
            (vec![e, d], Some(d)),
            (vec![c, b], Some(b)),
            (vec![a], None)
        ]
    );
    // Exactly a page's worth left: no cursor to an empty page.
    query.limit = 2;
    query.cursor = Some(c);
    assert_eq!(store.query(&query).unwrap().next_cursor, None);
    // limit is clamped to 1..=500.
    query.cursor = None;
    query.limit = 0;
    let page = store.query(&query).unwrap();
    assert_eq!((page.events.len(), page.next_cursor), (1, Some(e)));

    assert!(store.delete(c).unwrap());
    assert!(!crop_path(dir, c).exists());
    assert_eq!(store.get(c).unwrap(), None);
    assert_eq!(store.crop(c).unwrap(), None);
    assert!(!store.delete(c).unwrap());
    assert_eq!(q(&|_| {}), vec![e, d, b, a]);
    assert_eq!(store.integrity().unwrap(), sound());
    assert_eq!(
        store.usage().unwrap(),
        (4, 1000 + 300 + 500 + 4 * ROW_OVERHEAD_BYTES)
    );
}

#[test]
fn limit_is_clamped_to_500() {
    let dir = temp_dir("limit");
    let dir = dir.path();
    let store = Store::open(dir, Retention::default()).unwrap();
    for i in 0..502 {
        store.insert(event("door", "Anna", i, None)).unwrap();
    }
    let page = store
        .query(&HistoryQuery {
            limit: 10_000,
            ..HistoryQuery::default()
        })
        .unwrap();
    assert_eq!(page.events.len(), 500);
    assert_eq!(page.next_cursor, Some(page.events[499].id));
    assert_eq!(page.events[0].time_ms, 501);
}

#[test]
fn events_and_crops_persist_across_reopen_and_ids_are_never_reused() {
    let dir = temp_dir("persist");
    let dir = dir.path();
    let (first, second) = {
        let store = Store::open(dir, Retention::default()).unwrap();
        let mut named = event("door", "Anna", 1000, Some(crop(1, 4000)));
        named.stranger = Some("stranger-41".into());
        let first = store.insert(named).unwrap();
        let second = store
            .insert(event("door", "unknown", 2000, Some(crop(2, 3000))))
            .unwrap();
        (first, second)
    };
    let store = Store::open(dir, Retention::default()).unwrap();
    assert_eq!(store.reconciled(), Reconciled::default());
    assert_eq!(store.get(first.id).unwrap(), Some(first.clone()));
    assert_eq!(store.get(second.id).unwrap(), Some(second.clone()));
    assert_eq!(store.crop(first.id).unwrap(), Some(crop(1, 4000)));
    assert_eq!(store.crop(second.id).unwrap(), Some(crop(2, 3000)));
    // Deleting the newest and inserting again must not hand its id (and URL) to another face.
    assert!(store.delete(second.id).unwrap());
    drop(store);
    let store = Store::open(dir, Retention::default()).unwrap();
    let third = store.insert(event("door", "Bob", 3000, None)).unwrap();
    assert_eq!(third.id, second.id + 1);
    assert_eq!(store.max_stranger_number().unwrap(), 41);
    // The stranger high-water mark outlives the events that carried it.
    assert!(store.delete(first.id).unwrap());
    drop(store);
    let store = Store::open(dir, Retention::default()).unwrap();
    assert_eq!(store.max_stranger_number().unwrap(), 41);
    assert_eq!(store.integrity().unwrap(), sound());
}

#[test]
fn migrates_an_empty_file_and_reopens_idempotently() {
    let dir = temp_dir("migrate");
    let dir = dir.path();
    std::fs::write(dir.join("events.db"), b"").unwrap();
    let store = Store::open(dir, Retention::default()).unwrap();
    let id = store
        .insert(event("door", "Anna", 5, Some(crop(5, 10))))
        .unwrap()
        .id;
    drop(store);
    assert_eq!(user_version(dir), 1);
    for _ in 0..2 {
        let store = Store::open(dir, Retention::default()).unwrap();
        assert_eq!(ids(&store, &HistoryQuery::default()), vec![id]);
        drop(store);
        assert_eq!(user_version(dir), 1);
    }
    let conn = rusqlite::Connection::open(dir.join("events.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "events_camera",
            "events_name",
            "events_stranger",
            "events_time"
        ]
    );
    // The query filters use them rather than scanning the table. (An open-ended `since` walks
    // the ids from the newest instead, which stops as soon as the page is full.)
    for (filter, index) in [
        ("camera = 'x'", "events_camera"),
        ("name = 'x'", "events_name"),
        ("stranger = 'x'", "events_stranger"),
        ("time_ms >= 5 AND time_ms < 9", "events_time"),
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT * FROM events WHERE {filter} ORDER BY id DESC LIMIT 5"
            ))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(plan.iter().any(|p| p.contains(index)), "{filter}: {plan:?}");
    }
    // A database from a newer launcher is refused, not downgraded.
    conn.pragma_update(None, "user_version", 7).unwrap();
    drop(conn);
    let err = Store::open(dir, Retention::default()).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: schema version 7 is newer than this launcher supports (1); use a newer \
             launcher or another data directory",
            dir.join("events.db").display()
        )
    );
}

#[test]
fn retention_by_bytes_removes_the_oldest_rows_and_files() {
    let dir = temp_dir("bytes");
    let dir = dir.path();
    let per_event = 10_000 + ROW_OVERHEAD_BYTES;
    let retention = Retention {
        max_age: None,
        max_bytes: Some(3 * per_event),
        min_free_bytes: None,
    };
    let store = Store::open(dir, retention).unwrap();
    let now = now_ms();
    let inserted: Vec<i64> = (0..7)
        .map(|i| {
            store
                .insert(event("door", "Anna", now + i, Some(crop(i as u64, 10_000))))
                .unwrap()
                .id
        })
        .collect();
    // The newest three stay, with their files; the oldest four went, files included.
    assert_eq!(
        ids(&store, &HistoryQuery::default()),
        vec![inserted[6], inserted[5], inserted[4]]
    );
    for (i, &id) in inserted.iter().enumerate() {
        assert_eq!(crop_path(dir, id).exists(), i >= 4, "event {i}");
    }
    assert_eq!(store.crop(inserted[4]).unwrap(), Some(crop(4, 10_000)));
    assert_eq!(store.usage().unwrap(), (3, 3 * per_event));
    let files = std::fs::read_dir(dir.join("crops")).unwrap().count();
    assert_eq!(files, 3);
    assert_eq!(store.integrity().unwrap(), sound());
    drop(store);

    // A smaller budget at the next start applies at once.
    let store = Store::open(
        dir,
        Retention {
            max_age: None,
            max_bytes: Some(per_event),
            min_free_bytes: None,
        },
    )
    .unwrap();
    assert_eq!(ids(&store, &HistoryQuery::default()), vec![inserted[6]]);
    assert_eq!(std::fs::read_dir(dir.join("crops")).unwrap().count(), 1);
}

#[test]
fn retention_by_age_removes_events_older_than_max_age() {
    let dir = temp_dir("age");
    let dir = dir.path();
    let now = now_ms();
    let hour = 3_600_000;
    let inserted: Vec<i64> = {
        let store = Store::open(dir, Retention::default()).unwrap();
        [now - 3 * hour, now - 2 * hour, now - hour / 6, now]
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                store
                    .insert(event("door", "Anna", t, Some(crop(i as u64, 2000))))
                    .unwrap()
                    .id
            })
            .collect()
    };
    let retention = Retention {
        max_age: Some(Duration::from_secs(3600)),
        max_bytes: None,
        min_free_bytes: None,
    };
    // Opening applies it: the two events older than an hour go, with their files.
    let store = Store::open(dir, retention).unwrap();
    assert_eq!(
        ids(&store, &HistoryQuery::default()),
        vec![inserted[3], inserted[2]]
    );
    assert!(!crop_path(dir, inserted[0]).exists());
    assert!(!crop_path(dir, inserted[1]).exists());
    assert!(crop_path(dir, inserted[2]).exists());
    // Half an hour later the ten-minute-old event is 40 minutes old: kept; an hour later, gone.
    assert_eq!(store.enforce_retention(now + hour / 2).unwrap(), 0);
    assert_eq!(store.enforce_retention(now + hour).unwrap(), 1);
    assert_eq!(ids(&store, &HistoryQuery::default()), vec![inserted[3]]);
    assert!(!crop_path(dir, inserted[2]).exists());
    // An insert applies it too: an event already older than the limit is not kept.
    let old = store
        .insert(event("door", "Bob", now - 2 * hour, Some(crop(9, 100))))
        .unwrap();
    assert_eq!(store.get(old.id).unwrap(), None);
    assert!(!crop_path(dir, old.id).exists());
    assert_eq!(store.integrity().unwrap(), sound());
}

#[test]
fn open_repairs_what_a_crash_left_and_leaves_other_files_alone() {
    let dir = temp_dir("repair");
    let dir = dir.path();
    let (kept, lost) = {
        let store = Store::open(dir, Retention::default()).unwrap();
        let kept = store
            .insert(event("door", "Anna", 1, Some(crop(1, 100))))
            .unwrap();
        let lost = store
            .insert(event("door", "Bob", 2, Some(crop(2, 100))))
            .unwrap();
        (kept.id, lost.id)
    };
    let crops = dir.join("crops");
    std::fs::remove_file(crop_path(dir, lost)).unwrap();
    std::fs::write(crops.join("77.jpg.tmp"), b"half").unwrap();
    std::fs::write(crops.join("999.jpg"), b"orphan").unwrap();
    std::fs::write(crops.join("notes.txt"), b"not ours").unwrap();
    let store = Store::open(dir, Retention::default()).unwrap();
    assert_eq!(
        store.reconciled(),
        Reconciled {
            tmp_files_removed: 1,
            orphan_files_removed: 1,
            rows_without_files_removed: 1
        }
    );
    assert_eq!(ids(&store, &HistoryQuery::default()), vec![kept]);
    let mut left: Vec<String> = std::fs::read_dir(&crops)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [format!("{kept}.jpg"), "notes.txt".to_string()]);
    assert_eq!(store.integrity().unwrap(), sound());
    assert_eq!(store.usage().unwrap(), (1, 100 + ROW_OVERHEAD_BYTES));
}

#[test]
fn errors_name_the_path_and_a_second_store_on_one_directory_is_refused() {
    let dir = temp_dir("errors");
    let dir = dir.path();
    let store = Store::open(dir, Retention::default()).unwrap();
    let err = Store::open(dir, Retention::default()).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{} is in use by another process",
            dir.join("events.lock").display()
        )
    );
    drop(store);
    Store::open(dir, Retention::default()).unwrap();

    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("data"), Retention::default())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: Not a directory (os error 20)",
            file.join("data").display()
        )
    );
}

/// The crash test's writer: runs only in the child process that
/// `survives_sigkill_at_random_moments` starts (and kills); a no-op otherwise.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let retention = Retention {
        max_age: None,
        max_bytes: Some(CHILD_BUDGET),
        min_free_bytes: None,
    };
    let store = Store::open(Path::new(&dir), retention).unwrap();
    // Each run its own tracks, so that a crop served for another run's event shows.
    let mut track = Rng::seeded().next() >> 24;
    loop {
        track += 1;
        let mut e = event(
            "door",
            "unknown",
            now_ms(),
            Some(crop(track, crop_len(track))),
        );
        e.stranger = Some(format!("stranger-{}", track % 5));
        e.track_id = track;
        let id = store.insert(e).unwrap().id;
        // Explicit deletes too, besides the retention's.
        if track.is_multiple_of(4) {
            store.delete(id - 2).unwrap();
        }
    }
}

/// Committed rows that have a crop, crop files and `.tmp` files, read straight from the
/// directory before any `Store::open` repairs it.
/// (A writer killed early may not have created them yet.)
fn raw_state(dir: &Path) -> (HashSet<i64>, HashSet<i64>, usize) {
    let mut rows = HashSet::new();
    if dir.join("events.db").exists() {
        let conn = rusqlite::Connection::open(dir.join("events.db")).unwrap();
        let migrated: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if migrated {
            rows = conn
                .prepare("SELECT id FROM events WHERE has_crop")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        }
    }
    let (mut files, mut tmp) = (HashSet::new(), 0);
    let Ok(entries) = std::fs::read_dir(dir.join("crops")) else {
        return (rows, files, tmp);
    };
    for entry in entries {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            tmp += 1;
        } else {
            files.insert(name.strip_suffix(".jpg").unwrap().parse().unwrap());
        }
    }
    (rows, files, tmp)
}

/// SIGKILL is 9 on every Linux architecture.
const SIGKILL: i32 = 9;

#[test]
fn survives_sigkill_at_random_moments() {
    let dir = temp_dir("crash");
    let dir = dir.path();
    let retention = Retention {
        max_age: None,
        max_bytes: Some(CHILD_BUDGET),
        min_free_bytes: None,
    };
    let mut rng = Rng::seeded();
    let (mut leftovers, mut max_id) = (0u64, 0i64);
    for round in 1..=20 {
        let delay = Duration::from_millis(rng.range(20, 400));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.as_os_str())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        std::thread::sleep(delay);
        // SIGKILL: no destructor, no flush, no rollback runs.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "round {round}: the writer exited on its own: {status}"
        );
        let lived = started.elapsed();

        // Before any repair: every committed row already has its file (the ordering's promise);
        // files without rows are what open must clean up.
        let (rows, files, tmp) = raw_state(dir);
        let rows_without = rows.difference(&files).count();
        let files_without = files.difference(&rows).count();
        assert_eq!(
            rows_without, 0,
            "round {round}: committed rows lost their files"
        );

        let store = Store::open(dir, retention).unwrap();
        let integrity = store.integrity().unwrap();
        let reconciled = store.reconciled();
        let (count, bytes) = store.usage().unwrap();
        let newest = store
            .query(&HistoryQuery {
                limit: 1,
                ..HistoryQuery::default()
            })
            .unwrap()
            .events
            .first()
            .map_or(0, |e| e.id);
        println!(
            "round {round:>2}: killed after {:>3} ms; raw: {} rows with crops, {files_without} \
             files without rows, {tmp} .tmp; repaired {reconciled:?}; now {count} rows, \
             {bytes} bytes, newest id {newest}; integrity {integrity:?}",
            lived.as_millis(),
            rows.len(),
        );
        assert_eq!(integrity, sound(), "round {round}");
        assert_eq!(
            reconciled.orphan_files_removed + reconciled.tmp_files_removed,
            (files_without + tmp) as u64
        );
        assert_eq!(reconciled.rows_without_files_removed, 0);
        // Every crop the store serves is the one written for its event, whole.
        for e in store.query(&HistoryQuery::default()).unwrap().events {
            let jpeg = store.crop(e.id).unwrap().unwrap();
            let len = crop_len(e.track_id);
            assert_eq!(jpeg.len(), len, "round {round}: event {} crop length", e.id);
            let differs = jpeg
                .iter()
                .zip(crop(e.track_id, len))
                .position(|(a, b)| *a != b);
            assert_eq!(
                differs, None,
                "round {round}: event {} crop differs at this byte",
                e.id
            );
        }
        assert!(bytes <= CHILD_BUDGET, "{bytes} bytes after retention");
        leftovers += (files_without + tmp) as u64;
        max_id = max_id.max(newest);
    }
    let store = Store::open(dir, retention).unwrap();
    let (count, _) = store.usage().unwrap();
    println!(
        "after 20 kills: {count} rows, {max_id} events written in all, {leftovers} leftover files repaired"
    );
    assert!(count > 0);
    // Otherwise no kill interrupted an insert or a delete, and the rounds proved nothing.
    assert!(
        leftovers > 0,
        "no kill landed during a write: no round left a .tmp or an orphan crop"
    );
    assert!(
        max_id > 20,
        "the writer wrote only {max_id} events in 20 runs"
    );
}

/// An event the recorder could not store (a full disk) still goes out live: as the history
/// API's JSON with id 0 and no `face_url`, even though it has a crop.
#[test]
fn an_event_that_could_not_be_stored_has_id_0_and_no_face_url() {
    use facerec_launcher::store::{UNSTORED_ID, stored_event};
    let e = event("door", "Anna", 1_700_000_000_123, Some(crop(1, 100)));
    let live = serde_json::to_value(stored_event(&e, UNSTORED_ID)).unwrap();
    assert_eq!(live["id"], 0);
    assert_eq!(live["face_url"], serde_json::Value::Null);
    assert_eq!(live["name"], "Anna");
    assert_eq!(live["time"], "2023-11-14T22:13:20.123Z");
    let stored = serde_json::to_value(stored_event(&e, 5)).unwrap();
    assert_eq!(stored["face_url"], "/api/history/5/face.jpg");
    // Everything but the id and the crop is the same.
    let strip = |mut v: serde_json::Value| {
        let map = v.as_object_mut().unwrap();
        map.remove("id");
        map.remove("face_url");
        v
    };
    assert_eq!(strip(live), strip(stored));
}
