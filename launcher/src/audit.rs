//! The audit log: who changed or took what, when and from where (sign-ins, user and token
//! changes, enrol, reject, delete, erase, export, camera changes). SQLite in WAL mode beside the
//! history (`<data>/audit.db`), so an entry survives a kill at any moment; entries older than
//! `--audit-days` are deleted. Readable by admins (`GET /api/audit`).
//!
//! Services layer: imports the domain only.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::domain::lock;

pub const AUDIT_FILE: &str = "audit.db";
/// Retention is applied at most this often (and at open).
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// One action, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    /// Who: a user name, a token's name, `FACEREC_API_TOKEN`, `anonymous`, or the name given at
    /// a failed sign-in.
    pub user: String,
    /// How they proved it (`session`, `basic`, `token`, …), or `cli`.
    pub via: String,
    /// The client address (the real client behind a trusted proxy), if known.
    pub client: String,
    /// What: `sign-in`, `sign-out`, `user.add`, `POST /api/history/{id}/enrol`, …
    pub action: String,
    /// What it was done to: the concrete path, a user or token name.
    pub target: String,
    /// The HTTP status of the answer (0 for the command line).
    pub status: u16,
    /// Anything else worth keeping (counts of an erasure; never a secret).
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub time: String,
    pub user: String,
    pub via: String,
    pub client: String,
    pub action: String,
    pub target: String,
    pub status: u16,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    path: String,
    source: rusqlite::Error,
}

pub struct Audit {
    conn: Mutex<Connection>,
    path: String,
    keep: Duration,
    last_prune: Mutex<Instant>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    via TEXT NOT NULL,
    client TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    status INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ms);";

impl Audit {
    /// The log in `data_dir`, created if missing; entries older than `keep` are deleted.
    pub fn open(data_dir: &Path, keep: Duration) -> Result<Audit, AuditError> {
        let path = data_dir.join(AUDIT_FILE);
        let shown = path.display().to_string();
        let error = |source| AuditError {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(error)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(error)?;
        conn.execute_batch(SCHEMA).map_err(error)?;
        let audit = Audit {
            conn: Mutex::new(conn),
            path: shown,
            keep,
            last_prune: Mutex::new(Instant::now()),
        };
        audit.prune()?;
        Ok(audit)
    }

    /// A log kept in memory only (no writable data folder).
    pub fn in_memory(keep: Duration) -> Audit {
        let conn = Connection::open_in_memory().expect("an in-memory database");
        conn.execute_batch(SCHEMA).expect("the audit schema");
        Audit {
            conn: Mutex::new(conn),
            path: ":memory:".into(),
            keep,
            last_prune: Mutex::new(Instant::now()),
        }
    }

    fn error(&self, source: rusqlite::Error) -> AuditError {
        AuditError {
            path: self.path.clone(),
            source,
        }
    }

    /// Deletes the entries older than the retention.
    pub fn prune(&self) -> Result<usize, AuditError> {
        let keep = i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(keep);
        *lock(&self.last_prune) = Instant::now();
        lock(&self.conn)
            .execute("DELETE FROM audit WHERE time_ms < ?1", params![cutoff])
            .map_err(|e| self.error(e))
    }

    /// Records `action` now. A failure is logged, never passed on: the action itself happened.
    pub fn record(&self, action: Action) {
        if lock(&self.last_prune).elapsed() >= PRUNE_INTERVAL
            && let Err(e) = self.prune()
        {
            tracing::warn!(error = %e, "cannot apply the audit log's retention");
        }
        let inserted = lock(&self.conn).execute(
            "INSERT INTO audit (time_ms, user, via, client, action, target, status, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now_ms(),
                action.user,
                action.via,
                action.client,
                action.action,
                action.target,
                action.status,
                action.detail
            ],
        );
        if let Err(e) = inserted {
            tracing::error!(error = %self.error(e), action = %action.action, "cannot write the audit log");
        }
    }

    /// The newest entries first, before entry `before` if given; at most `limit`.
    pub fn list(&self, before: Option<i64>, limit: usize) -> Result<Vec<Entry>, AuditError> {
        let conn = lock(&self.conn);
        let mut statement = conn
            .prepare(
                "SELECT id, time_ms, user, via, client, action, target, status, detail FROM audit
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params![before.unwrap_or(i64::MAX), limit as i64], |row| {
                Ok(Entry {
                    id: row.get(0)?,
                    time: rfc3339(row.get(1)?),
                    user: row.get(2)?,
                    via: row.get(3)?,
                    client: row.get(4)?,
                    action: row.get(5)?,
                    target: row.get(6)?,
                    status: row.get(7)?,
                    detail: row.get(8)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen_newest_first_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path(), Duration::from_secs(3600)).unwrap();
        for target in ["alice", "bob"] {
            audit.record(Action {
                user: "admin".into(),
                via: "session".into(),
                client: "127.0.0.1".into(),
                action: "user.add".into(),
                target: target.into(),
                status: 201,
                detail: String::new(),
            });
        }
        drop(audit);
        let audit = Audit::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let entries = audit.list(None, 10).unwrap();
        assert_eq!(
            entries
                .iter()
                .map(|e| e.target.as_str())
                .collect::<Vec<_>>(),
            ["bob", "alice"]
        );
        assert_eq!(audit.list(Some(entries[0].id), 10).unwrap().len(), 1);
        assert!(entries[0].time.ends_with('Z') && entries[0].time.len() == 24);
        // A retention of nothing deletes them at the next open.
        drop(audit);
        std::thread::sleep(Duration::from_millis(5));
        let audit = Audit::open(dir.path(), Duration::ZERO).unwrap();
        assert!(audit.list(None, 10).unwrap().is_empty());
    }

    #[test]
    fn times_are_rfc_3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_620_210_123), "2026-12-07T05:10:10.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
