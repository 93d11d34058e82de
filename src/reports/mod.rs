//! Reports (issue 6, "Reports and integrations"): attendance and engagement of each room.
//!
//! - [`attendance`]: the pure state machine of joins, leaves, peak and watch time (heartbeats);
//! - [`report`]: the report itself, from attendance, registrations and the interaction log
//!   (engagement is counted from the log, so it is what the room's events say);
//! - here: [`Reports`], the shell the WebSocket feeds. Every attendance record is written to
//!   `<data_dir>/attendance.sqlite3` (WAL, `synchronous=NORMAL`) before it counts, and every
//!   room is rebuilt from it at start-up, so a report after a restart (or `kill -9`) is the one
//!   before it. A record that cannot be stored is logged and not counted.

pub mod attendance;
pub mod report;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, params};
use townhall_interaction::Actor;

use self::attendance::{Record, RoomAttendance};

/// The file name under the data dir.
pub const FILE_NAME: &str = "attendance.sqlite3";

/// Schema steps, applied in order (`PRAGMA user_version`); never edit one that has shipped.
pub const MIGRATIONS: &[&str] = &["CREATE TABLE attendance (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,
        body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX attendance_room ON attendance (room, seq);"];

/// Why the attendance store failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("attendance store {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for ReportError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Storage(err.to_string())
    }
}

struct Inner {
    conn: Connection,
    rooms: HashMap<String, RoomAttendance>,
}

/// Every room's attendance, live and stored.
pub struct Reports {
    inner: Mutex<Inner>,
    /// Seconds between two heartbeats of a player (`reports.heartbeat_interval_s`).
    pub heartbeat_interval_s: u64,
}

pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Reports {
    /// Opens the store, rebuilds every room, and closes what was open when the server stopped.
    pub fn open(data_dir: &Path, heartbeat_interval_s: u64, now_ms: u64) -> Result<Self, ReportError> {
        let path = data_dir.join(FILE_NAME);
        let storage = |e: rusqlite::Error| ReportError::Storage(format!("{}: {e}", path.display()));
        let mut conn = Connection::open(&path).map_err(storage)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(storage)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(storage)?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(storage)?;
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(ReportError::Storage(format!("{}: schema version {applied} is newer", path.display())));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction().map_err(storage)?;
            tx.execute_batch(step).map_err(storage)?;
            tx.pragma_update(None, "user_version", i + 1).map_err(storage)?;
            tx.commit().map_err(storage)?;
        }
        let mut rooms: HashMap<String, RoomAttendance> = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT seq, room, body FROM attendance ORDER BY seq")?;
            let rows = stmt
                .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))?;
            for row in rows {
                let (seq, room, body) = row?;
                let record: Record = serde_json::from_str(&body)
                    .map_err(|e| ReportError::Storage(format!("{}: record {seq} unreadable: {e}", path.display())))?;
                rooms.entry(room).or_insert_with(|| RoomAttendance::new(heartbeat_interval_s)).apply(&record);
            }
        }
        let mut inner = Inner { conn, rooms };
        let closing: Vec<(String, Vec<Record>)> =
            inner.rooms.iter_mut().map(|(room, a)| (room.clone(), a.close_all(now_ms))).collect();
        for (room, records) in closing {
            for record in records {
                append(&inner.conn, &room, &record)?;
            }
        }
        Ok(Self { inner: Mutex::new(inner), heartbeat_interval_s })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the room's attendance for the record of a change; stores it, then applies it (a
    /// record that cannot be stored is not counted).
    fn change(&self, room: &str, decide: impl FnOnce(&RoomAttendance) -> Option<Record>) {
        let mut inner = self.lock();
        let Inner { conn, rooms } = &mut *inner;
        let interval = self.heartbeat_interval_s;
        let attendance = rooms.entry(room.to_owned()).or_insert_with(|| RoomAttendance::new(interval));
        let Some(record) = decide(attendance) else {
            return;
        };
        match append(conn, room, &record) {
            Ok(()) => attendance.apply(&record),
            Err(err) => tracing::error!(room, %err, "attendance record not stored: not counted"),
        }
    }

    /// A participant's first WebSocket connection to `room` opened.
    pub fn joined(&self, room: &str, actor: &Actor, now_ms: u64) {
        self.change(room, |a| Some(a.join(&actor.participant_id, &actor.name, actor.role, now_ms)));
    }

    /// Its last connection closed.
    pub fn left(&self, room: &str, participant: &str, now_ms: u64) {
        self.change(room, |a| a.leave(participant, now_ms));
    }

    /// A player's heartbeat.
    pub fn heartbeat(&self, room: &str, participant: &str, playing: bool, now_ms: u64) {
        if !playing {
            return;
        }
        self.change(room, |a| a.heartbeat(participant, playing, now_ms));
    }

    /// A copy of the room's attendance (empty if nobody came).
    pub fn attendance(&self, room: &str) -> RoomAttendance {
        self.lock().rooms.get(room).cloned().unwrap_or_else(|| RoomAttendance::new(self.heartbeat_interval_s))
    }

    /// Forgets a deleted room.
    pub fn delete_room(&self, room: &str) -> Result<(), ReportError> {
        let mut inner = self.lock();
        inner.rooms.remove(room);
        inner.conn.execute("DELETE FROM attendance WHERE room = ?1", [room])?;
        Ok(())
    }
}

fn append(conn: &Connection, room: &str, record: &Record) -> Result<(), ReportError> {
    let body = serde_json::to_string(record).map_err(|e| ReportError::Storage(e.to_string()))?;
    conn.prepare_cached("INSERT INTO attendance (room, body) VALUES (?1, ?2)")?.execute(params![room, body])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_interaction::Role;

    #[test]
    fn attendance_survives_a_reopen_and_open_sessions_close_then() {
        let dir = std::env::temp_dir().join(format!("townhall-attendance-{}", crate::rooms::random_token(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = 1_800_000_000_000;
        let reports = Reports::open(&dir, 2, t0).unwrap();
        let ada = Actor::new("a-1", "Ada", Role::Attendee);
        reports.joined("r1", &ada, t0);
        reports.heartbeat("r1", "a-1", true, t0 + 10);
        reports.heartbeat("r1", "a-1", true, t0 + 20);
        reports.joined("r2", &Actor::new("h", "Host", Role::Host), t0);
        reports.left("r2", "h", t0 + 50);
        assert_eq!(reports.attendance("r1").people()["a-1"].watch_s, 2);
        drop(reports);
        let reports = Reports::open(&dir, 2, t0 + 5_000).unwrap();
        let r1 = reports.attendance("r1");
        assert_eq!((r1.connected(), r1.peak(), r1.people()["a-1"].watch_s), (0, 1, 2));
        assert_eq!(r1.people()["a-1"].last_left_ms, Some(t0 + 5_000));
        assert_eq!(reports.attendance("r2").people()["h"].last_left_ms, Some(t0 + 50));
        reports.delete_room("r1").unwrap();
        drop(reports);
        let reports = Reports::open(&dir, 2, t0 + 6_000).unwrap();
        assert!(reports.attendance("r1").people().is_empty());
        assert_eq!(reports.attendance("r2").people().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
