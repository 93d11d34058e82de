//! [`Registrations`]: every room's registrations in one SQLite file,
//! `<data_dir>/registrations.sqlite3` (WAL, `synchronous=NORMAL`, as the interaction log: a
//! committed registration survives `kill -9`).
//!
//! One table, `registrations (id, room, participant, email_key, status, registered_at, body)`,
//! `body` the registration's JSON; `UNIQUE (room, email_key)` makes a second registration of
//! an address fail even if two arrive at once; the capacity check and the insert run in one
//! transaction under the store's lock. Migrations as in `townhall_interaction::sqlite`:
//! `PRAGMA user_version` counts the applied steps of [`MIGRATIONS`].

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Registrant, Registration, RegistrationError, RegistrationSettings, RegistrationStatus, admit, email_key, may_move,
};
use crate::rooms::random_token;

/// The file name under the data dir.
pub const FILE_NAME: &str = "registrations.sqlite3";

/// Schema steps, applied in order; never edit one that has shipped, append a new one.
pub const MIGRATIONS: &[&str] = &["CREATE TABLE registrations (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        participant TEXT NOT NULL,
        email_key TEXT NOT NULL,
        status TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (room, email_key)
    ) STRICT;
    CREATE INDEX registrations_participant ON registrations (room, participant);"];

type Result<T> = std::result::Result<T, RegistrationError>;

/// Every room's registrations.
pub struct Registrations {
    conn: Mutex<Connection>,
}

impl Registrations {
    /// Opens (creating and migrating it) `<data_dir>/registrations.sqlite3`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let storage = |e: rusqlite::Error| RegistrationError::Storage(format!("{}: {e}", path.display()));
        let mut conn = Connection::open(&path).map_err(storage)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(storage)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(RegistrationError::Storage(format!("{}: journal mode {mode}, not WAL", path.display())));
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(storage)?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(storage)?;
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(RegistrationError::Storage(format!(
                "{}: schema version {applied} is newer than this build's {}",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction().map_err(storage)?;
            tx.execute_batch(step).map_err(storage)?;
            tx.pragma_update(None, "user_version", i + 1).map_err(storage)?;
            tx.commit().map_err(storage)?;
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `registrant` in `room`: refused when the address is already registered or the
    /// room is full; `token` signs the new participant's attendee token (its id given).
    pub fn register(
        &self,
        room: &str,
        settings: &RegistrationSettings,
        registrant: Registrant,
        now_s: i64,
        token: impl FnOnce(&str) -> String,
    ) -> Result<Registration> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let key = email_key(&registrant.email);
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM registrations WHERE room = ?1 AND email_key = ?2)",
            params![room, key],
            |row| row.get(0),
        )?;
        if taken {
            return Err(RegistrationError::AlreadyRegistered);
        }
        let status = admit(settings, active(&tx, room)?)?;
        let participant = format!("r-{}", random_token(16));
        let registration = Registration {
            id: random_token(32),
            room: room.to_owned(),
            token: token(&participant),
            participant,
            name: registrant.name,
            email: registrant.email,
            fields: registrant.fields,
            status,
            registered_at: now_s,
        };
        let body = serde_json::to_string(&registration).map_err(|e| RegistrationError::Storage(e.to_string()))?;
        tx.execute(
            "INSERT INTO registrations (id, room, participant, email_key, status, registered_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                registration.id,
                room,
                registration.participant,
                key,
                status.as_str(),
                registration.registered_at,
                body
            ],
        )?;
        tx.commit()?;
        Ok(registration)
    }

    /// A room's registrations, oldest first.
    pub fn list(&self, room: &str) -> Result<Vec<Registration>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT body FROM registrations WHERE room = ?1 ORDER BY registered_at, rowid")?;
        let rows = stmt.query_map([room], |row| row.get::<_, String>(0))?;
        let mut list = Vec::new();
        for body in rows {
            list.push(parse(&body?)?);
        }
        Ok(list)
    }

    /// One registration of `room` by its id.
    pub fn get(&self, room: &str, id: &str) -> Result<Option<Registration>> {
        let conn = self.lock();
        let body: Option<String> = conn
            .query_row("SELECT body FROM registrations WHERE room = ?1 AND id = ?2", params![room, id], |row| {
                row.get(0)
            })
            .optional()?;
        body.as_deref().map(parse).transpose()
    }

    /// Moves a registration to `to`; returns it and whether it changed.
    pub fn set_status(
        &self,
        room: &str,
        id: &str,
        to: RegistrationStatus,
        settings: &RegistrationSettings,
    ) -> Result<(Registration, bool)> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let body: Option<String> = tx
            .query_row("SELECT body FROM registrations WHERE room = ?1 AND id = ?2", params![room, id], |row| {
                row.get(0)
            })
            .optional()?;
        let mut registration = parse(&body.ok_or_else(|| RegistrationError::Unknown(id.to_owned()))?)?;
        if registration.status == to {
            return Ok((registration, false));
        }
        may_move(registration.status, to, settings, active(&tx, room)?)?;
        registration.status = to;
        let body = serde_json::to_string(&registration).map_err(|e| RegistrationError::Storage(e.to_string()))?;
        tx.execute(
            "UPDATE registrations SET status = ?1, body = ?2 WHERE room = ?3 AND id = ?4",
            params![to.as_str(), body, room, id],
        )?;
        tx.commit()?;
        Ok((registration, true))
    }

    /// The status of the registration behind `participant` in `room`, if it registered (for the
    /// waiting room and the WebSocket: a pending registrant waits, a rejected one is refused).
    pub fn status(&self, room: &str, participant: &str) -> Option<RegistrationStatus> {
        if !participant.starts_with("r-") {
            return None;
        }
        let status: Option<String> = self
            .lock()
            .query_row(
                "SELECT status FROM registrations WHERE room = ?1 AND participant = ?2",
                params![room, participant],
                |row| row.get(0),
            )
            .optional()
            .unwrap_or_else(|err| {
                tracing::error!(room, participant, %err, "registration status could not be read");
                None
            });
        status.as_deref().and_then(RegistrationStatus::parse)
    }

    /// Places taken in `room`: pending and approved registrations (for the public event view:
    /// whether it is full).
    pub fn active(&self, room: &str) -> Result<u64> {
        active(&self.lock(), room)
    }

    /// Forgets a deleted room's registrations.
    pub fn delete_room(&self, room: &str) -> Result<()> {
        self.lock().execute("DELETE FROM registrations WHERE room = ?1", [room])?;
        Ok(())
    }
}

/// Places taken in `room`: pending and approved registrations.
fn active(conn: &Connection, room: &str) -> Result<u64> {
    let n: i64 =
        conn.query_row("SELECT COUNT(*) FROM registrations WHERE room = ?1 AND status != 'rejected'", [room], |row| {
            row.get(0)
        })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn parse(body: &str) -> Result<Registration> {
    serde_json::from_str(body)
        .map_err(|e| RegistrationError::Storage(format!("a stored registration is unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn registrant(email: &str) -> Registrant {
        Registrant { name: "Ada".into(), email: email.into(), fields: BTreeMap::new() }
    }

    #[test]
    fn registers_refuses_duplicates_and_full_rooms_and_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("townhall-registrations-{}", random_token(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = RegistrationSettings { approval: true, capacity: Some(2), fields: Vec::new() };
        let store = Registrations::open(&dir).unwrap();
        let a = store.register("r1", &settings, registrant("a@x.org"), 10, |p| format!("token-{p}")).unwrap();
        assert_eq!((a.status, a.token.clone()), (RegistrationStatus::Pending, format!("token-{}", a.participant)));
        assert_eq!(a.id.len(), 32);
        let dup = store.register("r1", &settings, registrant("A@X.ORG"), 11, |_| String::new());
        assert_eq!(dup.unwrap_err(), RegistrationError::AlreadyRegistered);
        let b = store.register("r1", &settings, registrant("b@x.org"), 12, |_| String::new()).unwrap();
        let full = store.register("r1", &settings, registrant("c@x.org"), 13, |_| String::new());
        assert_eq!(full.unwrap_err(), RegistrationError::Full(2));
        // Another room has its own places.
        store.register("r2", &settings, registrant("a@x.org"), 14, |_| String::new()).unwrap();
        // A rejection frees a place; approving it again needs one.
        let (rejected, changed) = store.set_status("r1", &b.id, RegistrationStatus::Rejected, &settings).unwrap();
        assert!(changed && rejected.status == RegistrationStatus::Rejected);
        let c = store.register("r1", &settings, registrant("c@x.org"), 15, |_| String::new()).unwrap();
        let again = store.set_status("r1", &b.id, RegistrationStatus::Approved, &settings);
        assert_eq!(again.unwrap_err(), RegistrationError::Full(2));
        assert!(!store.set_status("r1", &a.id, RegistrationStatus::Pending, &settings).unwrap().1);
        store.set_status("r1", &a.id, RegistrationStatus::Approved, &settings).unwrap();
        assert_eq!(
            store.set_status("r1", "nope", RegistrationStatus::Approved, &settings).unwrap_err().code(),
            "unknown_registration"
        );
        drop(store);

        let store = Registrations::open(&dir).unwrap();
        let list = store.list("r1").unwrap();
        assert_eq!(list.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [&a.id, &b.id, &c.id]);
        assert_eq!(store.status("r1", &a.participant), Some(RegistrationStatus::Approved));
        assert_eq!(store.status("r1", &b.participant), Some(RegistrationStatus::Rejected));
        assert_eq!(store.status("r2", &a.participant), None);
        assert_eq!(store.status("r1", "a-guest"), None);
        assert_eq!(store.get("r1", &c.id).unwrap().unwrap(), c);
        assert_eq!(store.get("r2", &c.id).unwrap(), None, "ids are per room");
        store.delete_room("r1").unwrap();
        assert!(store.list("r1").unwrap().is_empty());
        assert_eq!(store.list("r2").unwrap().len(), 1);
        assert_eq!((store.active("r1").unwrap(), store.active("r2").unwrap()), (0, 1));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
