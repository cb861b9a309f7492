//! The persistent event store: the history of recognitions, in SQLite (WAL mode), with each
//! event's face crop as a file `<dir>/crops/<id>.jpg` beside the database.
//!
//! Crash safety rests on one ordering and one repair:
//! * insert: inside the row's transaction the crop is written to `<id>.jpg.tmp`, fsynced and
//!   renamed to `<id>.jpg`, and only then is the row committed; delete (and retention) commits the
//!   removal of the rows first and unlinks their files afterwards. So a kill at any moment can
//!   leave a file without its row (or a `.tmp`), never a committed row without its file.
//! * [`Store::open`] removes `*.tmp` files and crop files whose id has no row, and deletes rows
//!   whose file is missing (which only a lost file system write could cause, or a kill during
//!   the one exception: when retention for `min_free_bytes` cannot commit a deletion on a full
//!   disk, it unlinks those events' crops first to make room, then deletes their rows).
//!
//! Retention counts, per event, the bytes of its crop file plus [`ROW_OVERHEAD_BYTES`] for its
//! row, so that events without a crop are bounded by `max_bytes` too. With
//! `Retention::min_free_bytes` it also deletes the oldest events while the file system of the
//! data folder has less than that free, whatever filled it; and an insert that fails (a full
//! disk) applies the retention and is tried once more.
//!
//! Services layer: imports the domain only (its event types are re-exported here).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Serialize, Serializer};

pub use crate::domain::event::{EventKind, NewEvent, StoredEvent, rfc3339_ms};

/// The bytes an event's row is counted as on top of its crop, for `Retention::max_bytes`: an
/// estimate of the row and its index entries in `events.db` (measured: 193 bytes per event for
/// 10,000 typical events with their four indexes, after VACUUM).
pub const ROW_OVERHEAD_BYTES: u64 = 256;

/// The largest page a query returns.
pub const MAX_LIMIT: usize = 500;

const DB_FILE: &str = "events.db";
const LOCK_FILE: &str = "events.lock";
const CROPS_DIR: &str = "crops";
/// How long [`Store::open`] waits for another process to release the data directory.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The schema, one entry per version: entry `i` takes `PRAGMA user_version` from `i` to `i + 1`.
/// Add a version by appending an entry; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids name crop files and URLs
        camera TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        stranger TEXT,
        distance REAL,
        confidence REAL,
        quality REAL,
        track_id INTEGER NOT NULL,
        box_x INTEGER NOT NULL,
        box_y INTEGER NOT NULL,
        box_w INTEGER NOT NULL,
        box_h INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        has_crop INTEGER NOT NULL,
        crop_bytes INTEGER NOT NULL
     );
     CREATE INDEX events_time ON events(time_ms, id);
     CREATE INDEX events_camera ON events(camera, id);
     CREATE INDEX events_name ON events(name, id);
     CREATE INDEX events_stranger ON events(stranger, id);
     -- Survives retention, so stranger numbers never repeat across restarts.
     CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
];

/// Filters of a history query; they combine with AND.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub camera: Option<String>,
    pub name: Option<String>,
    /// `Some(true)`: only `unknown`; `Some(false)`: only named events.
    pub unknown: Option<bool>,
    pub stranger: Option<String>,
    /// `since_ms <= time_ms < until_ms`.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Clamped to 1..=500.
    pub limit: usize,
    /// Events with an id below this one (the previous page's `next_cursor`).
    pub cursor: Option<i64>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            camera: None,
            name: None,
            unknown: None,
            stranger: None,
            since_ms: None,
            until_ms: None,
            limit: 50,
            cursor: None,
        }
    }
}

/// A page of events, newest (highest id) first. `next_cursor` is the last id returned when more
/// events match; it serializes as a string (`"123"`), as the history API says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPage {
    pub events: Vec<StoredEvent>,
    #[serde(serialize_with = "cursor_as_string")]
    pub next_cursor: Option<i64>,
}

fn cursor_as_string<S: Serializer>(cursor: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match cursor {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}

/// How long and how much history to keep; whichever limit is reached first removes the oldest
/// events. `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
    /// The oldest events (and their crops) are deleted while the file system of the data folder
    /// has less than this many bytes free for unprivileged users (`statvfs`'s `f_bavail`),
    /// whatever filled it. Ignored by the in-memory store.
    pub min_free_bytes: Option<u64>,
}

/// The `id` of an event that could not be stored (a full disk): the recorder still sends it to
/// the live consumers (SSE, MQTT) with this id and no crop (`face_url` null). SQLite's
/// AUTOINCREMENT ids start at 1, so no history event has it.
pub const UNSTORED_ID: i64 = 0;

/// Retention's warning that `min_free_bytes` cannot be reached is repeated at most this often.
const SPACE_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Bytes available to unprivileged users on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let vfs = rustix::fs::statvfs(path)?;
    Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
}

/// The event as it was stored under `id` (with its crop when it has one), or, with
/// [`UNSTORED_ID`], as it is sent live when it could not be stored: without a crop.
pub fn stored_event(event: &NewEvent, id: i64) -> StoredEvent {
    StoredEvent {
        id,
        camera: event.camera.clone(),
        kind: event.kind,
        name: event.name.clone(),
        stranger: event.stranger.clone(),
        distance: event.distance,
        confidence: event.confidence,
        quality: event.quality,
        track_id: event.track_id,
        bbox: event.bbox,
        first_seen_ms: event.first_seen_ms,
        last_seen_ms: event.last_seen_ms,
        time_ms: event.time_ms,
        has_crop: id != UNSTORED_ID && event.crop_jpeg.is_some(),
    }
}

/// The store's consistency, as [`Store::integrity`] measures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    /// `PRAGMA integrity_check`: `ok` when the database is sound.
    pub sqlite: String,
    /// Rows that say they have a crop whose file (or blob) is missing.
    pub rows_without_files: u64,
    /// Crop files (including `*.tmp`) or blobs that no row owns.
    pub files_without_rows: u64,
}

/// What [`Store::open`] repaired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub tmp_files_removed: u64,
    pub orphan_files_removed: u64,
    pub rows_without_files_removed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is in use by another process")]
    Locked { path: PathBuf },
    #[error(
        "{path}: schema version {found} is newer than this launcher supports ({supported}); \
         use a newer launcher or another data directory"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: usize,
    },
    #[error("{path}: event {id} has an unknown kind {kind:?}")]
    BadKind {
        path: PathBuf,
        id: i64,
        kind: String,
    },
}

/// The event store. `Send + Sync`: one connection behind a mutex.
pub struct Store {
    inner: Mutex<Inner>,
    reconciled: Reconciled,
}

struct Inner {
    conn: Connection,
    /// The database file (`:memory:` for the in-memory store), for error messages.
    db_path: PathBuf,
    /// `<dir>/crops`, or `None` when crops are blobs in the in-memory database.
    crops: Option<PathBuf>,
    retention: Retention,
    /// Sum over rows of crop bytes plus [`ROW_OVERHEAD_BYTES`], kept so that retention after
    /// an insert needs no scan.
    total_bytes: u64,
    /// Held (flock) while the store is open: a second launcher on the same directory would
    /// otherwise delete this one's half-written crops when it reconciles.
    _lock: Option<File>,
    /// When retention last warned that `min_free_bytes` cannot be reached.
    space_warned: Option<std::time::Instant>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sql_err(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

const COLUMNS: &str = "id, camera, kind, name, stranger, distance, confidence, quality, track_id, \
     box_x, box_y, box_w, box_h, first_seen_ms, last_seen_ms, time_ms, has_crop";

/// The row, or the unknown kind string.
fn event_from_row(row: &Row) -> rusqlite::Result<Result<StoredEvent, (i64, String)>> {
    let id: i64 = row.get(0)?;
    let kind: String = row.get(2)?;
    let Some(parsed) = EventKind::parse(&kind) else {
        return Ok(Err((id, kind)));
    };
    Ok(Ok(StoredEvent {
        id,
        camera: row.get(1)?,
        kind: parsed,
        name: row.get(3)?,
        stranger: row.get(4)?,
        distance: row.get(5)?,
        confidence: row.get(6)?,
        quality: row.get(7)?,
        track_id: row.get::<_, i64>(8)? as u64,
        bbox: [row.get(9)?, row.get(10)?, row.get(11)?, row.get(12)?],
        first_seen_ms: row.get(13)?,
        last_seen_ms: row.get(14)?,
        time_ms: row.get(15)?,
        has_crop: row.get(16)?,
    }))
}

/// `N` of `stranger-N`.
fn stranger_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("stranger-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn crop_file(crops: &Path, id: i64) -> PathBuf {
    crops.join(format!("{id}.jpg"))
}

/// The id of a crop file name `<id>.jpg`.
fn crop_id(file_name: &str) -> Option<i64> {
    let digits = file_name.strip_suffix(".jpg")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Applies the migrations the database lacks, each in its own transaction.
fn migrate(conn: &mut Connection, db_path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(db_path))?;
    if version < 0 || version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: db_path.to_path_buf(),
            found: version,
            supported: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(sql_err(db_path))?;
        tx.execute_batch(sql).map_err(sql_err(db_path))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql_err(db_path))?;
        tx.commit().map_err(sql_err(db_path))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating) the store in `dir`: `events.db` and `crops/`. Migrates the schema,
    /// repairs what a crash left (see the module docs) and applies the retention.
    pub fn open(dir: &Path, retention: Retention) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let crops = dir.join(CROPS_DIR);
        std::fs::create_dir_all(&crops).map_err(io_err(&crops))?;

        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // Waits a little: a launcher being replaced may still be exiting, and a process that forks
        // holds a copy of the descriptor (and so the lock) until its child calls exec.
        let waited = std::time::Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if waited.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked { path: lock_path });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
            }
        }

        let db_path = dir.join(DB_FILE);
        let mut conn = Connection::open(&db_path).map_err(sql_err(&db_path))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql_err(&db_path))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql_err(&db_path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(db = %db_path.display(), mode, "SQLite refused WAL mode");
        }
        // With WAL, NORMAL can lose the last commits on power loss but never corrupts; the
        // reconciliation below removes the crop files of such lost rows.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_err(&db_path))?;
        migrate(&mut conn, &db_path)?;

        let mut inner = Inner {
            conn,
            db_path,
            crops: Some(crops),
            retention,
            total_bytes: 0,
            _lock: Some(lock),
            space_warned: None,
        };
        let reconciled = inner.reconcile()?;
        inner.total_bytes = inner.sum_bytes()?;
        // A store that opened is kept even when the clean-up fails (a full disk can fail the
        // deletion's own write): the next insert tries again.
        if let Err(e) = inner.enforce_retention(now_ms()) {
            tracing::warn!(error = %e, "history retention failed");
        }
        Ok(Store {
            inner: Mutex::new(inner),
            reconciled,
        })
    }

    /// A store in an in-memory database, crops included (as blobs): the same API, nothing on
    /// disk, nothing kept across restarts.
    pub fn in_memory(retention: Retention) -> Store {
        Self::try_in_memory(retention)
            // Only an allocation failure can fail an in-memory database with a fixed schema.
            .expect("an in-memory SQLite database opens")
    }

    fn try_in_memory(retention: Retention) -> Result<Store, StoreError> {
        let db_path = PathBuf::from(":memory:");
        let mut conn = Connection::open_in_memory().map_err(sql_err(&db_path))?;
        migrate(&mut conn, &db_path)?;
        conn.execute_batch("CREATE TABLE crop_blobs (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);")
            .map_err(sql_err(&db_path))?;
        Ok(Store {
            inner: Mutex::new(Inner {
                conn,
                db_path,
                crops: None,
                retention,
                total_bytes: 0,
                _lock: None,
                space_warned: None,
            }),
            reconciled: Reconciled::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is a transaction, so a panic elsewhere cannot leave the data half done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether events survive a restart (false for [`Store::in_memory`]).
    pub fn is_persistent(&self) -> bool {
        self.lock().crops.is_some()
    }

    /// What [`Store::open`] repaired after the previous run.
    pub fn reconciled(&self) -> Reconciled {
        self.reconciled
    }

    /// Records an event (and its crop), then applies the retention. When the insert fails (a
    /// full disk), the retention is applied first and, if it deleted anything, the insert is
    /// tried once more; the error returned is the last attempt's.
    pub fn insert(&self, event: NewEvent) -> Result<StoredEvent, StoreError> {
        let mut inner = self.lock();
        let stored = match inner.insert(&event) {
            Ok(stored) => stored,
            Err(first) => match inner.enforce_retention(now_ms()) {
                Ok(deleted) if deleted > 0 => inner.insert(&event)?,
                Ok(_) => return Err(first),
                Err(e) => {
                    tracing::warn!(error = %e, "history retention failed");
                    return Err(first);
                }
            },
        };
        let bytes = event.crop_jpeg.as_ref().map_or(0, |c| c.len() as u64);
        inner.total_bytes += bytes + ROW_OVERHEAD_BYTES;
        // The event is committed: a failing clean-up is logged, not reported as a failed insert.
        if let Err(e) = inner.enforce_retention(now_ms()) {
            tracing::warn!(error = %e, "history retention failed");
        }
        Ok(stored)
    }

    pub fn get(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.lock().get(id)
    }

    /// A page of events matching `q`, newest first.
    pub fn query(&self, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let inner = self.lock();
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(camera) = &q.camera {
            sql.push_str(" AND camera = ?");
            args.push(Value::Text(camera.clone()));
        }
        if let Some(name) = &q.name {
            sql.push_str(" AND name = ?");
            args.push(Value::Text(name.clone()));
        }
        match q.unknown {
            Some(true) => sql.push_str(" AND name = 'unknown'"),
            Some(false) => sql.push_str(" AND name <> 'unknown'"),
            None => {}
        }
        if let Some(stranger) = &q.stranger {
            sql.push_str(" AND stranger = ?");
            args.push(Value::Text(stranger.clone()));
        }
        if let Some(since) = q.since_ms {
            sql.push_str(" AND time_ms >= ?");
            args.push(Value::Integer(since));
        }
        if let Some(until) = q.until_ms {
            sql.push_str(" AND time_ms < ?");
            args.push(Value::Integer(until));
        }
        if let Some(cursor) = q.cursor {
            sql.push_str(" AND id < ?");
            args.push(Value::Integer(cursor));
        }
        let limit = q.limit.clamp(1, MAX_LIMIT);
        // One more than the page, to know whether another page exists.
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Value::Integer(limit as i64 + 1));

        let path = &inner.db_path;
        let mut stmt = inner.conn.prepare(&sql).map_err(sql_err(path))?;
        let rows = stmt
            .query_map(params_from_iter(args), event_from_row)
            .map_err(sql_err(path))?;
        let mut events = Vec::new();
        for row in rows {
            events.push(inner.checked(row.map_err(sql_err(path))?)?);
        }
        let next_cursor = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok(HistoryPage {
            events,
            next_cursor,
        })
    }

    /// The event whose crop shows `name` best: the highest quality with a crop, the newest of
    /// equals. A person from the starting gallery has no library photo; the page shows this.
    pub fn best_face(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .query_row(
                "SELECT id FROM events WHERE name = ? AND has_crop = 1 \
                 ORDER BY quality IS NULL, quality DESC, id DESC LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err(&inner.db_path))
    }

    /// The JPEG crop of event `id`, if it has one.
    pub fn crop(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = self.lock();
        let path = &inner.db_path;
        let has_crop: Option<bool> = inner
            .conn
            .query_row("SELECT has_crop FROM events WHERE id = ?", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql_err(path))?;
        if has_crop != Some(true) {
            return Ok(None);
        }
        match &inner.crops {
            Some(dir) => {
                let file = crop_file(dir, id);
                match std::fs::read(&file) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err(&file)(e)),
                }
            }
            None => inner
                .conn
                .query_row("SELECT jpeg FROM crop_blobs WHERE id = ?", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql_err(path)),
        }
    }

    /// Deletes event `id` and its crop; false when there is no such event.
    pub fn delete(&self, id: i64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        Ok(inner.delete_rows(&[id])? == 1)
    }

    /// Deletes what the retention no longer allows at `now_ms` (Unix ms): events older than
    /// `max_age`, then the oldest events until the total is within `max_bytes`, then the oldest
    /// events while the data folder's file system has less than `min_free_bytes` free. Returns
    /// how many events were deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.lock().enforce_retention(now_ms)
    }

    /// Checks the database and the agreement of rows and crop files.
    pub fn integrity(&self) -> Result<Integrity, StoreError> {
        self.lock().integrity()
    }

    /// The highest `N` of any `stranger-N` ever recorded (0 when none), retention or not.
    pub fn max_stranger_number(&self) -> Result<u64, StoreError> {
        let inner = self.lock();
        let n: Option<i64> = inner
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'max_stranger'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err(&inner.db_path))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Events and the bytes retention counts for them (crops plus the row overhead).
    pub fn usage(&self) -> Result<(u64, u64), StoreError> {
        let inner = self.lock();
        let count: i64 = inner
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .map_err(sql_err(&inner.db_path))?;
        Ok((count as u64, inner.total_bytes))
    }
}

impl Inner {
    fn checked(&self, row: Result<StoredEvent, (i64, String)>) -> Result<StoredEvent, StoreError> {
        row.map_err(|(id, kind)| StoreError::BadKind {
            path: self.db_path.clone(),
            id,
            kind,
        })
    }

    fn get(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM events WHERE id = ?"),
                [id],
                event_from_row,
            )
            .optional()
            .map_err(sql_err(&self.db_path))?;
        row.map(|r| self.checked(r)).transpose()
    }

    fn insert(&mut self, event: &NewEvent) -> Result<StoredEvent, StoreError> {
        let db_path = self.db_path.clone();
        let tx = self.conn.transaction().map_err(sql_err(&db_path))?;
        let crop_bytes = event.crop_jpeg.as_ref().map_or(0, |c| c.len() as i64);
        tx.execute(
            "INSERT INTO events (camera, kind, name, stranger, distance, confidence, quality, \
             track_id, box_x, box_y, box_w, box_h, first_seen_ms, last_seen_ms, time_ms, \
             has_crop, crop_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                event.camera,
                event.kind.as_str(),
                event.name,
                event.stranger,
                event.distance,
                event.confidence,
                event.quality,
                event.track_id as i64,
                event.bbox[0],
                event.bbox[1],
                event.bbox[2],
                event.bbox[3],
                event.first_seen_ms,
                event.last_seen_ms,
                event.time_ms,
                event.crop_jpeg.is_some(),
                crop_bytes,
            ],
        )
        .map_err(sql_err(&db_path))?;
        let id = tx.last_insert_rowid();
        if let Some(n) = event.stranger.as_deref().and_then(stranger_number) {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('max_stranger', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                [n.min(i64::MAX as u64) as i64],
            )
            .map_err(sql_err(&db_path))?;
        }
        let mut written = None;
        if let Some(jpeg) = &event.crop_jpeg {
            match &self.crops {
                Some(dir) => {
                    // Dropping `tx` on an error rolls the row back.
                    let file = write_crop(dir, id, jpeg)?;
                    written = Some(file);
                }
                None => {
                    tx.execute(
                        "INSERT INTO crop_blobs (id, jpeg) VALUES (?, ?)",
                        params![id, jpeg],
                    )
                    .map_err(sql_err(&db_path))?;
                }
            }
        }
        if let Err(e) = tx.commit() {
            if let Some(file) = written {
                let _ = std::fs::remove_file(file);
            }
            return Err(sql_err(&db_path)(e));
        }
        Ok(stored_event(event, id))
    }

    /// Deletes rows in one transaction, commits, then removes their crops; returns how many rows
    /// existed. `total_bytes` follows.
    fn delete_rows(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let db_path = self.db_path.clone();
        let tx = self.conn.transaction().map_err(sql_err(&db_path))?;
        let mut deleted = Vec::with_capacity(ids.len());
        let mut freed = 0u64;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM events WHERE id = ? RETURNING has_crop, crop_bytes")
                .map_err(sql_err(&db_path))?;
            let mut blobs = if self.crops.is_none() {
                Some(
                    tx.prepare_cached("DELETE FROM crop_blobs WHERE id = ?")
                        .map_err(sql_err(&db_path))?,
                )
            } else {
                None
            };
            for &id in ids {
                let row: Option<(bool, i64)> = stmt
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql_err(&db_path))?;
                let Some((has_crop, bytes)) = row else {
                    continue;
                };
                freed += bytes.max(0) as u64 + ROW_OVERHEAD_BYTES;
                if let Some(blobs) = &mut blobs {
                    blobs.execute([id]).map_err(sql_err(&db_path))?;
                }
                deleted.push((id, has_crop));
            }
        }
        tx.commit().map_err(sql_err(&db_path))?;
        self.total_bytes = self.total_bytes.saturating_sub(freed);
        if let Some(dir) = &self.crops {
            for &(id, has_crop) in &deleted {
                if !has_crop {
                    continue;
                }
                let file = crop_file(dir, id);
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // The row is gone; the next open removes the orphan.
                    Err(e) => tracing::warn!(file = %file.display(), error = %e,
                        "could not remove a deleted event's crop"),
                }
            }
        }
        Ok(deleted.len())
    }

    fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let db_path = self.db_path.clone();
        let mut removed = 0;
        if let Some(max_age) = self.retention.max_age {
            let cutoff = now_ms.saturating_sub(max_age.as_millis().min(i64::MAX as u128) as i64);
            let ids: Vec<i64> = {
                // Uses events_time; touches only the expired rows.
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT id FROM events WHERE time_ms < ? ORDER BY time_ms, id")
                    .map_err(sql_err(&db_path))?;
                stmt.query_map([cutoff], |r| r.get(0))
                    .map_err(sql_err(&db_path))?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_err(&db_path))?
            };
            removed += self.delete_rows(&ids)?;
        }
        if let Some(max_bytes) = self.retention.max_bytes
            && self.total_bytes > max_bytes
        {
            let excess = self.total_bytes - max_bytes;
            let mut ids = Vec::new();
            {
                // Walks events_time from the oldest and stops once enough is freed.
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT id, crop_bytes FROM events ORDER BY time_ms, id")
                    .map_err(sql_err(&db_path))?;
                let mut rows = stmt.query([]).map_err(sql_err(&db_path))?;
                let mut freed = 0u64;
                while freed < excess {
                    let Some(row) = rows.next().map_err(sql_err(&db_path))? else {
                        break;
                    };
                    let id: i64 = row.get(0).map_err(sql_err(&db_path))?;
                    let bytes: i64 = row.get(1).map_err(sql_err(&db_path))?;
                    freed += bytes.max(0) as u64 + ROW_OVERHEAD_BYTES;
                    ids.push(id);
                }
            }
            removed += self.delete_rows(&ids)?;
        }
        removed += self.keep_free_space()?;
        Ok(removed)
    }

    /// Deletes the oldest events while the crops' file system has less than `min_free_bytes`
    /// free: each round deletes about the missing bytes' worth of events (at least one), then
    /// measures again, since a crop can take more (blocks) or less (shared blocks) on disk than
    /// its size. Returns how many events were deleted.
    fn keep_free_space(&mut self) -> Result<usize, StoreError> {
        let (Some(min_free), Some(dir)) = (self.retention.min_free_bytes, self.crops.clone())
        else {
            return Ok(0);
        };
        let db_path = self.db_path.clone();
        let mut removed = 0;
        loop {
            let free = free_bytes(&dir).map_err(io_err(&dir))?;
            if free >= min_free {
                return Ok(removed);
            }
            let missing = min_free - free;
            let mut ids = Vec::new();
            {
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT id, crop_bytes FROM events ORDER BY time_ms, id")
                    .map_err(sql_err(&db_path))?;
                let mut rows = stmt.query([]).map_err(sql_err(&db_path))?;
                let mut freed = 0u64;
                while freed < missing {
                    let Some(row) = rows.next().map_err(sql_err(&db_path))? else {
                        break;
                    };
                    let id: i64 = row.get(0).map_err(sql_err(&db_path))?;
                    let bytes: i64 = row.get(1).map_err(sql_err(&db_path))?;
                    freed += bytes.max(0) as u64 + ROW_OVERHEAD_BYTES;
                    ids.push(id);
                }
            }
            let deleted = match self.delete_rows(&ids) {
                Ok(deleted) => deleted,
                // On a full disk the deletion's own write (the WAL) can fail: unlinking the
                // crops first makes room for it.
                Err(e) => {
                    tracing::warn!(error = %e, "history retention on a full disk: removing the crops before their rows");
                    for &id in &ids {
                        let _ = std::fs::remove_file(crop_file(&dir, id));
                    }
                    self.delete_rows(&ids)?
                }
            };
            removed += deleted;
            if deleted == 0 {
                let due = self
                    .space_warned
                    .is_none_or(|at| at.elapsed() >= SPACE_WARNING_EVERY);
                if due {
                    self.space_warned = Some(std::time::Instant::now());
                    tracing::warn!(
                        dir = %dir.display(),
                        free_mb = free / (1024 * 1024),
                        min_free_mb = min_free / (1024 * 1024),
                        "the data folder's file system has less free space than --min-free-mb and no history is left to delete: something else fills it"
                    );
                }
                return Ok(removed);
            }
        }
    }

    fn sum_bytes(&self) -> Result<u64, StoreError> {
        let (count, bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(crop_bytes), 0) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql_err(&self.db_path))?;
        Ok(bytes.max(0) as u64 + count.max(0) as u64 * ROW_OVERHEAD_BYTES)
    }

    /// The ids of rows that have a crop.
    fn crop_rows(&self) -> Result<HashSet<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM events WHERE has_crop")
            .map_err(sql_err(&self.db_path))?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sql_err(&self.db_path))?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql_err(&self.db_path))
    }

    /// The crop files: ids of `<id>.jpg`, and the paths of `*.tmp` files.
    fn crop_files(&self, dir: &Path) -> Result<(HashSet<i64>, Vec<PathBuf>), StoreError> {
        let mut ids = HashSet::new();
        let mut tmp = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                tmp.push(entry.path());
            } else if let Some(id) = crop_id(name) {
                ids.insert(id);
            }
        }
        Ok((ids, tmp))
    }

    fn reconcile(&mut self) -> Result<Reconciled, StoreError> {
        let mut done = Reconciled::default();
        let Some(dir) = self.crops.clone() else {
            return Ok(done);
        };
        let (files, tmp) = self.crop_files(&dir)?;
        for path in tmp {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            done.tmp_files_removed += 1;
        }
        let rows = self.crop_rows()?;
        for &id in files.difference(&rows) {
            let path = crop_file(&dir, id);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            done.orphan_files_removed += 1;
        }
        let missing: Vec<i64> = rows.difference(&files).copied().collect();
        // Their files are already gone, so removing them from disk again is a no-op.
        done.rows_without_files_removed = self.delete_rows(&missing)? as u64;
        if done != Reconciled::default() {
            tracing::info!(
                tmp = done.tmp_files_removed,
                orphan_files = done.orphan_files_removed,
                rows_without_files = done.rows_without_files_removed,
                "history store repaired after an interrupted run"
            );
        }
        Ok(done)
    }

    fn integrity(&self) -> Result<Integrity, StoreError> {
        let sqlite = {
            let mut stmt = self
                .conn
                .prepare("PRAGMA integrity_check")
                .map_err(sql_err(&self.db_path))?;
            let lines: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .map_err(sql_err(&self.db_path))?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql_err(&self.db_path))?;
            lines.join("\n")
        };
        let rows = self.crop_rows()?;
        let (files, tmp) = match &self.crops {
            Some(dir) => self.crop_files(dir)?,
            None => {
                let mut stmt = self
                    .conn
                    .prepare("SELECT id FROM crop_blobs")
                    .map_err(sql_err(&self.db_path))?;
                let ids = stmt
                    .query_map([], |r| r.get(0))
                    .map_err(sql_err(&self.db_path))?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_err(&self.db_path))?;
                (ids, Vec::new())
            }
        };
        Ok(Integrity {
            sqlite,
            rows_without_files: rows.difference(&files).count() as u64,
            files_without_rows: files.difference(&rows).count() as u64 + tmp.len() as u64,
        })
    }
}

/// Writes `<dir>/<id>.jpg` atomically: a fsynced `.tmp`, then a rename.
fn write_crop(dir: &Path, id: i64, jpeg: &[u8]) -> Result<PathBuf, StoreError> {
    let file = crop_file(dir, id);
    let tmp = dir.join(format!("{id}.jpg.tmp"));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(jpeg)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, &file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&file)(e));
    }
    Ok(file)
}

// Shared by the cameras and the HTTP handlers.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn event(camera: &str, name: &str, time_ms: i64, crop: Option<Vec<u8>>) -> NewEvent {
        NewEvent {
            camera: camera.into(),
            kind: EventKind::Named,
            name: name.into(),
            stranger: None,
            distance: Some(0.42),
            confidence: None,
            quality: Some(0.9),
            track_id: 7,
            bbox: [1, 2, 30, 40],
            first_seen_ms: time_ms - 1500,
            last_seen_ms: time_ms,
            time_ms,
            crop_jpeg: crop,
        }
    }

    #[test]
    fn stored_event_serializes_as_the_api_says() {
        let store = Store::in_memory(Retention::default());
        let mut e = event("door", "Anna", 1_700_000_000_123, Some(vec![0xff, 0xd8]));
        e.stranger = Some("stranger-3".into());
        e.kind = EventKind::Renamed;
        let stored = store.insert(e).unwrap();
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": stored.id, "camera": "door", "kind": "renamed", "name": "Anna",
                "stranger": "stranger-3", "distance": 0.42, "confidence": null,
                "quality": 0.9, "track_id": 7, "box": [1, 2, 30, 40],
                "first_seen": "2023-11-14T22:13:18.623Z",
                "last_seen": "2023-11-14T22:13:20.123Z",
                "time": "2023-11-14T22:13:20.123Z",
                "face_url": format!("/api/history/{}/face.jpg", stored.id),
            })
        );
        let no_crop = store.insert(event("door", "Anna", 0, None)).unwrap();
        let json = serde_json::to_value(&no_crop).unwrap();
        assert_eq!(json["face_url"], serde_json::Value::Null);
        assert_eq!(json["time"], "1970-01-01T00:00:00.000Z");
        let page = store
            .query(&HistoryQuery {
                limit: 1,
                ..HistoryQuery::default()
            })
            .unwrap();
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(
            json["next_cursor"],
            serde_json::json!(no_crop.id.to_string())
        );
        assert_eq!(json["events"][0]["id"], serde_json::json!(no_crop.id));
        let last = serde_json::to_value(store.query(&HistoryQuery::default()).unwrap()).unwrap();
        assert_eq!(last["next_cursor"], serde_json::Value::Null);
        // Out-of-range times are clamped, not a panic in the formatter.
        assert_eq!(rfc3339_ms(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn best_face_is_the_sharpest_crop_of_that_name() {
        let store = Store::in_memory(Retention::default());
        let jpeg = || Some(vec![0xff, 0xd8]);
        let with = |name: &str, quality: Option<f64>, crop: Option<Vec<u8>>| {
            let mut e = event("door", name, 1_000, crop);
            e.quality = quality;
            store.insert(e).unwrap().id
        };
        assert_eq!(store.best_face("Anna").unwrap(), None);
        with("Anna", Some(0.95), None);
        assert_eq!(store.best_face("Anna").unwrap(), None, "no crop, no face");
        let unrated = with("Anna", None, jpeg());
        assert_eq!(store.best_face("Anna").unwrap(), Some(unrated));
        with("Anna", Some(0.4), jpeg());
        let best = with("Anna", Some(0.8), jpeg());
        with("Bob", Some(0.99), jpeg());
        with("Anna", Some(0.6), jpeg());
        assert_eq!(store.best_face("Anna").unwrap(), Some(best));
        store.delete(best).unwrap();
        assert_ne!(store.best_face("Anna").unwrap(), Some(best));
    }

    #[test]
    fn in_memory_store_keeps_crops_as_blobs_and_deletes_them() {
        let store = Store::in_memory(Retention::default());
        assert!(!store.is_persistent());
        let a = store
            .insert(event("door", "Anna", 1000, Some(vec![1, 2, 3])))
            .unwrap();
        let b = store.insert(event("door", "Bob", 2000, None)).unwrap();
        assert_eq!(store.crop(a.id).unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(store.crop(b.id).unwrap(), None);
        assert_eq!(store.get(b.id).unwrap(), Some(b.clone()));
        assert!(store.delete(a.id).unwrap());
        assert!(!store.delete(a.id).unwrap());
        assert_eq!(store.crop(a.id).unwrap(), None);
        let integrity = store.integrity().unwrap();
        assert_eq!(
            integrity,
            Integrity {
                sqlite: "ok".into(),
                rows_without_files: 0,
                files_without_rows: 0
            }
        );
        assert_eq!(store.usage().unwrap(), (1, ROW_OVERHEAD_BYTES));
    }

    #[test]
    fn in_memory_retention_by_bytes_drops_the_oldest_blobs() {
        let budget = 3 * (1000 + ROW_OVERHEAD_BYTES);
        let store = Store::in_memory(Retention {
            max_age: None,
            max_bytes: Some(budget),
            min_free_bytes: None,
        });
        let now = now_ms();
        let ids: Vec<i64> = (0..5)
            .map(|i| {
                store
                    .insert(event("door", "Anna", now + i, Some(vec![i as u8; 1000])))
                    .unwrap()
                    .id
            })
            .collect();
        let page = store.query(&HistoryQuery::default()).unwrap();
        let kept: Vec<i64> = page.events.iter().map(|e| e.id).collect();
        assert_eq!(kept, vec![ids[4], ids[3], ids[2]]);
        assert_eq!(store.crop(ids[1]).unwrap(), None);
        assert_eq!(store.crop(ids[2]).unwrap(), Some(vec![2; 1000]));
        let blobs: i64 = store
            .lock()
            .conn
            .query_row("SELECT COUNT(*) FROM crop_blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blobs, 3);
    }

    #[test]
    fn stranger_numbers_parse_strictly() {
        assert_eq!(stranger_number("stranger-7"), Some(7));
        assert_eq!(stranger_number("stranger-"), None);
        assert_eq!(stranger_number("stranger-7a"), None);
        assert_eq!(stranger_number("stranger--7"), None);
        assert_eq!(stranger_number("Stranger-7"), None);
        assert_eq!(crop_id("12.jpg"), Some(12));
        assert_eq!(crop_id("12.jpg.tmp"), None);
        assert_eq!(crop_id("../12.jpg"), None);
    }
}
