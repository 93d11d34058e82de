//! [`SqliteStore`]: the event logs in one SQLite file, `<data_dir>/interaction.sqlite3`.
//!
//! One table, `events (room, seq, at, ts, type, body)`, primary key `(room, seq)` (unique and
//! indexed), `body` the event's JSON as sent to clients. WAL journal with `synchronous=NORMAL`:
//! a committed append survives the process being killed (`kill -9`); only a power cut may lose
//! the last transactions, never corrupt the file.
//!
//! Migrations: [`MIGRATIONS`] is the list of schema steps; `PRAGMA user_version` is how many are
//! applied. Opening a file applies the missing ones, each in its own transaction; a file from a
//! newer build (more steps than this one knows) is refused rather than misread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{InteractionError, Result};
use crate::event::Event;
use crate::store::{EventStore, check_order};

/// The file name under the data dir.
pub const FILE_NAME: &str = "interaction.sqlite3";

/// Schema steps, applied in order; never edit one that has shipped, append a new one.
pub const MIGRATIONS: &[&str] = &["CREATE TABLE events (
        room TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (room, seq)
    ) STRICT, WITHOUT ROWID;"];

/// The event logs in SQLite.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating it and the directory if needed) `<data_dir>/interaction.sqlite3`.
    pub fn open_in(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| InteractionError::Storage(format!("create {}: {e}", data_dir.display())))?;
        Self::open(&data_dir.join(FILE_NAME))
    }

    /// Opens (creating it if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        let storage = |e: rusqlite::Error| InteractionError::Storage(format!("{}: {e}", path.display()));
        let mut conn = Connection::open(path).map_err(storage)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(storage)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(InteractionError::Storage(format!("{}: journal mode {mode}, not WAL", path.display())));
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(storage)?;
        migrate(&mut conn).map_err(|e| InteractionError::Storage(format!("{}: {e}", path.display())))?;
        Ok(Self { conn, path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many [`MIGRATIONS`] the file has.
    pub fn schema_version(&self) -> Result<usize> {
        schema_version(&self.conn)
    }

    fn query_events(&self, sql: &str, room: &str, seq: i64, limit: i64) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows =
            stmt.query_map(params![room, seq, limit], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        let mut events = Vec::new();
        for row in rows {
            let (seq, body) = row?;
            let event = serde_json::from_str(&body)
                .map_err(|e| InteractionError::Storage(format!("room {room} seq {seq}: bad event JSON: {e}")))?;
            events.push(event);
        }
        Ok(events)
    }
}

fn schema_version(conn: &Connection) -> Result<usize> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    usize::try_from(v).map_err(|_| InteractionError::Storage(format!("negative schema version {v}")))
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let applied = schema_version(conn)?;
    if applied > MIGRATIONS.len() {
        return Err(InteractionError::Storage(format!(
            "schema version {applied} is newer than this build's {}",
            MIGRATIONS.len()
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn sql_int(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| InteractionError::Storage(format!("{field} {value} does not fit SQLite")))
}

impl EventStore for SqliteStore {
    fn append(&mut self, room: &str, events: &[Event]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let last: Option<i64> =
            tx.query_row("SELECT MAX(seq) FROM events WHERE room = ?1", [room], |row| row.get(0)).optional()?.flatten();
        check_order(last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0), events)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO events (room, seq, at, ts, type, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for e in events {
                let body = serde_json::to_string(e).map_err(|err| InteractionError::Storage(err.to_string()))?;
                insert.execute(params![
                    room,
                    sql_int("seq", e.seq)?,
                    sql_int("at", e.at.as_millis())?,
                    sql_int("ts", e.ts)?,
                    e.kind.type_name(),
                    body
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self, room: &str) -> Result<Vec<Event>> {
        self.since(room, 0, usize::MAX)
    }

    fn since(&self, room: &str, seq: u64, limit: usize) -> Result<Vec<Event>> {
        let sql = "SELECT seq, body FROM events WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
        self.query_events(sql, room, sql_int("seq", seq)?, i64::try_from(limit).unwrap_or(i64::MAX))
    }

    fn last_seq(&self, room: &str) -> Result<u64> {
        let last: Option<i64> =
            self.conn.query_row("SELECT MAX(seq) FROM events WHERE room = ?1", [room], |row| row.get(0))?;
        Ok(last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    fn rooms(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached("SELECT DISTINCT room FROM events ORDER BY room")?;
        let rooms = stmt.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rooms)
    }

    fn delete_room(&mut self, room: &str) -> Result<()> {
        self.conn.execute("DELETE FROM events WHERE room = ?1", [room])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("townhall-interaction-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn sqlite_store_keeps_the_contract() {
        let dir = TempDir::new("contract");
        let mut store = SqliteStore::open_in(&dir.0.join("data")).expect("open");
        contract::check(&mut store);
    }

    #[test]
    fn events_survive_reopening() {
        let dir = TempDir::new("reopen");
        let events = contract::three_events();
        {
            let mut store = SqliteStore::open_in(&dir.0).expect("open");
            store.append("r1", &events).expect("append");
        }
        let store = SqliteStore::open_in(&dir.0).expect("reopen");
        assert_eq!(store.load("r1"), Ok(events));
        assert_eq!(store.schema_version(), Ok(MIGRATIONS.len()));
        let mode: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("pragma");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn an_empty_file_is_migrated_and_a_newer_one_refused() {
        let dir = TempDir::new("migrate");
        let path = dir.0.join(FILE_NAME);
        std::fs::write(&path, b"").expect("empty file");
        let store = SqliteStore::open(&path).expect("migrates an empty file");
        assert_eq!(store.schema_version(), Ok(MIGRATIONS.len()));
        store.conn.pragma_update(None, "user_version", MIGRATIONS.len() + 1).expect("pragma");
        drop(store);
        let e = SqliteStore::open(&path).expect_err("newer schema");
        assert_eq!(e.code(), "storage");
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn a_damaged_event_is_a_storage_error_naming_it() {
        let dir = TempDir::new("damaged");
        let mut store = SqliteStore::open_in(&dir.0).expect("open");
        store.append("r1", &contract::three_events()).expect("append");
        store.conn.execute("UPDATE events SET body = '{' WHERE seq = 2", []).expect("damage");
        let e = store.load("r1").expect_err("damaged");
        assert!(e.to_string().contains("room r1 seq 2"), "{e}");
    }
}
