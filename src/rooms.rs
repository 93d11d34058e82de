//! Rooms and their tokens: the one place a room's state lives, persisted as JSON under the
//! data directory (written to a temporary file, then renamed, so a crash never leaves half a
//! file). A room's identity (id, name, keys) never changes; its [`RoomState`] (lifecycle
//! phase, waiting room) changes through [`Rooms::update`], which saves before it returns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use townhall_ingest::{Stage, StageLimits};
use townhall_origin::{HlsStream, StreamLimits};

use crate::lifecycle::Phase;
use crate::recordings::RecordingStore;
use crate::registration::EventDetails;
use crate::waiting_room::WaitingRoom;

/// What is stored of a room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoomRecord {
    pub id: String,
    pub name: String,
    /// Bearer token for WHIP publishing on this room's stage.
    pub publish_token: String,
    /// Bearer token for the host's actions in this room.
    pub host_token: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// When, how long, what, and who may register (`starts_at`, `duration_min`,
    /// `description`, `registration`: see [`EventDetails`]); defaults for older records.
    #[serde(flatten)]
    pub details: EventDetails,
}

/// What changes of a room, stored with its record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoomState {
    /// Where the webinar is in its lifecycle. Rooms stored before phases existed were live.
    #[serde(default = "live")]
    pub phase: Phase,
    /// Attendees wait until the host lets them in, even once live.
    #[serde(default)]
    pub waiting_room: bool,
    /// Attendees the host let in (participant ids).
    #[serde(default)]
    pub admitted: std::collections::BTreeSet<String>,
    /// When the room went live and ended (Unix s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
}

fn live() -> Phase {
    Phase::Live
}

impl RoomState {
    pub fn new(phase: Phase, waiting_room: bool) -> Self {
        Self { phase, waiting_room, admitted: Default::default(), live_at: None, ended_at: None }
    }
}

/// A room as stored in `rooms.json`.
#[derive(Serialize, Deserialize)]
struct StoredRoom {
    #[serde(flatten)]
    record: RoomRecord,
    #[serde(flatten)]
    state: RoomState,
}

/// What changes of a room while it runs: its stored state and who waits.
#[derive(Debug)]
pub struct Lobby {
    /// Its phase and waiting room; changed through [`Rooms::update`].
    state: Mutex<RoomState>,
    /// Who waits to be let in (not stored).
    pub waiting: Mutex<WaitingRoom>,
    /// Bumped at every change of the room's state, which waiting connections watch.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// A waiting list is about to be sent to the moderators ([`crate::http::ws_waiting`]).
    pub waiting_list_due: std::sync::atomic::AtomicBool,
}

/// A live room: its record, its stage and its program as the origin serves it.
#[derive(Debug)]
pub struct Room {
    pub record: RoomRecord,
    /// Its lifecycle and waiting room, shared by every version of the room (a new version
    /// is made when its details change, [`Rooms::update_record`]).
    pub lobby: Arc<Lobby>,
    pub stage: Arc<Stage>,
    pub hls: Arc<HlsStream>,
    /// The host's recordings of the program, kept beside its replay (shared with the room's
    /// next version when its details change, [`Rooms::update`]).
    pub recordings: Arc<RecordingStore>,
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("room id {0:?} is taken")]
    Taken(String),
    #[error("invalid room id {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidId(String),
    #[error("saving rooms: {0}")]
    Io(#[from] std::io::Error),
    #[error("no room {0:?}")]
    Unknown(String),
}

impl Lobby {
    fn new(state: RoomState) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(state),
            waiting: Mutex::default(),
            changed: tokio::sync::watch::Sender::new(0),
            waiting_list_due: Default::default(),
        })
    }
}

impl Room {
    /// Its state now.
    pub fn state(&self) -> RoomState {
        self.lobby.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn phase(&self) -> Phase {
        self.lobby.state.lock().unwrap_or_else(|e| e.into_inner()).phase
    }

    /// Tells the room's waiting connections to look again.
    pub fn notify_changed(&self) {
        self.lobby.changed.send_modify(|n| *n += 1);
    }
}

/// The registry of rooms.
pub struct Rooms {
    path: PathBuf,
    hls_dir: PathBuf,
    limits: StageLimits,
    hls_limits: StreamLimits,
    rooms: Mutex<BTreeMap<String, Arc<Room>>>,
    /// Rooms that live in memory only (breakout rooms, [`crate::breakouts`]): found by `get`,
    /// never listed nor saved.
    transient: Mutex<BTreeMap<String, Arc<Room>>>,
}

pub fn random_token(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// Room ids, presenter names: short, URL-safe, case-sensitive names.
pub fn is_valid_name(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Rooms {
    /// Loads the rooms saved under `data_dir`.
    pub fn open(data_dir: &Path, limits: StageLimits, hls_limits: StreamLimits) -> anyhow::Result<Self> {
        let hls_dir = data_dir.join("hls");
        let path = data_dir.join("rooms.json");
        let records: Vec<StoredRoom> = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{} is corrupt: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        let rooms = records
            .into_iter()
            .map(|stored| {
                (
                    stored.record.id.clone(),
                    Arc::new(new_room(stored.record, stored.state, limits, hls_limits, &hls_dir)),
                )
            })
            .collect();
        Ok(Self { path, hls_dir, limits, hls_limits, rooms: Mutex::new(rooms), transient: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        self.lock().get(id).cloned().or_else(|| self.transient().get(id).cloned())
    }

    fn transient(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Room>>> {
        self.transient.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a room that lives in memory only (a breakout room): its own stage for up to
    /// `max_presenters`, no replay on disk, never saved.
    pub fn insert_transient(&self, record: RoomRecord, max_presenters: usize) -> Arc<Room> {
        let limits = StageLimits { max_presenters: max_presenters.max(self.limits.max_presenters), ..self.limits };
        let stage = Stage::new(record.id.clone(), limits);
        let recordings = RecordingStore::open(&self.hls_dir.join(&record.id));
        let hls = Arc::new(HlsStream::new(record.id.clone(), self.hls_limits, None));
        let lobby = Lobby::new(RoomState::new(Phase::Live, false));
        let room = Arc::new(Room { record, lobby, stage, hls, recordings: Arc::new(recordings) });
        self.transient().insert(room.record.id.clone(), room.clone());
        room
    }

    /// Removes a room added by [`Rooms::insert_transient`].
    pub fn remove_transient(&self, id: &str) -> Option<Arc<Room>> {
        self.transient().remove(id)
    }

    pub fn list(&self) -> Vec<Arc<Room>> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Creates a room with fresh tokens.
    #[cfg(test)]
    pub fn create(&self, id: Option<String>, name: Option<String>, state: RoomState) -> Result<Arc<Room>, RoomError> {
        self.create_with(id, name, EventDetails::default(), state)
    }

    /// Creates a room with fresh tokens, its event's details (already checked) and its
    /// initial state.
    pub fn create_with(
        &self,
        id: Option<String>,
        name: Option<String>,
        details: EventDetails,
        state: RoomState,
    ) -> Result<Arc<Room>, RoomError> {
        let mut rooms = self.lock();
        let id = match id {
            Some(id) if !is_valid_name(&id) => return Err(RoomError::InvalidId(id)),
            Some(id) if rooms.contains_key(&id) => return Err(RoomError::Taken(id)),
            Some(id) => id,
            None => loop {
                let id = random_token(10).to_ascii_lowercase();
                if !rooms.contains_key(&id) {
                    break id;
                }
            },
        };
        let record = RoomRecord {
            name: name.unwrap_or_else(|| id.clone()),
            id: id.clone(),
            publish_token: random_token(32),
            host_token: random_token(32),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            details,
        };
        let room = Arc::new(new_room(record, state, self.limits, self.hls_limits, &self.hls_dir));
        rooms.insert(id.clone(), room.clone());
        if let Err(e) = self.save(&rooms) {
            rooms.remove(&id);
            return Err(e);
        }
        Ok(room)
    }

    /// Changes a room's record (`PATCH`): the room is replaced by one with the new record and
    /// the same stage, program and recordings; holders of the old `Arc` see the old record.
    pub fn update_record(
        &self,
        id: &str,
        change: impl FnOnce(&mut RoomRecord),
    ) -> Result<Option<Arc<Room>>, RoomError> {
        let mut rooms = self.lock();
        let Some(old) = rooms.get(id).cloned() else {
            return Ok(None);
        };
        let mut record = old.record.clone();
        change(&mut record);
        let room = Arc::new(Room {
            record,
            lobby: old.lobby.clone(),
            stage: old.stage.clone(),
            hls: old.hls.clone(),
            recordings: old.recordings.clone(),
        });
        rooms.insert(id.to_owned(), room.clone());
        if let Err(e) = self.save(&rooms) {
            rooms.insert(id.to_owned(), old);
            return Err(e);
        }
        Ok(Some(room))
    }

    /// Deletes a room; returns it if it existed.
    pub fn delete(&self, id: &str) -> Result<Option<Arc<Room>>, RoomError> {
        let mut rooms = self.lock();
        let Some(room) = rooms.remove(id) else {
            return Ok(None);
        };
        if let Err(e) = self.save(&rooms) {
            rooms.insert(id.to_owned(), room);
            return Err(e);
        }
        Ok(Some(room))
    }

    /// Changes a room's state with `change` and saves it; on a failed save the change is
    /// undone. Returns what `change` returned.
    pub fn update<T>(&self, id: &str, change: impl FnOnce(&mut RoomState) -> T) -> Result<T, RoomError> {
        let rooms = self.lock();
        let room = rooms.get(id).ok_or_else(|| RoomError::Unknown(id.to_owned()))?;
        let before = room.state();
        let result = change(&mut room.lobby.state.lock().unwrap_or_else(|e| e.into_inner()));
        if room.state() != before
            && let Err(e) = self.save(&rooms)
        {
            *room.lobby.state.lock().unwrap_or_else(|e| e.into_inner()) = before;
            return Err(e);
        }
        room.notify_changed();
        Ok(result)
    }

    fn save(&self, rooms: &BTreeMap<String, Arc<Room>>) -> Result<(), RoomError> {
        let records: Vec<StoredRoom> =
            rooms.values().map(|r| StoredRoom { record: r.record.clone(), state: r.state() }).collect();
        let json = serde_json::to_vec_pretty(&records).map_err(std::io::Error::other)?;
        write_atomically(&self.path, &json)?;
        Ok(())
    }
}

fn new_room(
    record: RoomRecord,
    state: RoomState,
    limits: StageLimits,
    hls_limits: StreamLimits,
    hls_dir: &Path,
) -> Room {
    let stage = Stage::new(record.id.clone(), limits);
    let dir = hls_dir.join(&record.id);
    let recordings = Arc::new(RecordingStore::open(&dir));
    let hls = Arc::new(HlsStream::new(record.id.clone(), hls_limits, Some(dir)));
    Room { record, lobby: Lobby::new(state), stage, hls, recordings }
}

pub use townhall_origin::object_store::write_atomically;

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> StageLimits {
        StageLimits { max_presenters: 2, subscriber_queue_packets: 64, frame_bus_capacity: 64 }
    }

    fn hls() -> StreamLimits {
        StreamLimits { part_target_s: 0.2, segment_target_s: 2.0, live_window: 6 }
    }

    #[test]
    fn rooms_survive_a_reopen_and_ids_are_checked() {
        let dir = std::env::temp_dir().join(format!("townhall-rooms-{}", random_token(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let rooms = Rooms::open(&dir, limits(), hls()).unwrap();
        let state = || RoomState::new(Phase::Scheduled, true);
        let a = rooms.create(Some("town-hall_1".into()), Some("Town hall".into()), state()).unwrap();
        let b = rooms.create(None, None, state()).unwrap();
        assert_eq!(b.record.id.len(), 10);
        assert!(matches!(rooms.create(Some("town-hall_1".into()), None, state()), Err(RoomError::Taken(_))));
        assert!(matches!(rooms.create(Some("../x".into()), None, state()), Err(RoomError::InvalidId(_))));
        assert!(rooms.delete(&b.record.id).unwrap().is_some());
        rooms.update("town-hall_1", |s| s.phase = Phase::Live).unwrap();
        assert!(matches!(rooms.update("nope", |_| ()), Err(RoomError::Unknown(_))));
        let reopened = Rooms::open(&dir, limits(), hls()).unwrap();
        assert_eq!(reopened.len(), 1);
        let a2 = reopened.get("town-hall_1").unwrap();
        assert_eq!(a2.record, a.record);
        assert_eq!(a2.state(), RoomState { phase: Phase::Live, ..state() });
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rooms_stored_before_phases_were_live() {
        let json = r#"{"id":"r","name":"R","publish_token":"p","host_token":"h","created_at":1}"#;
        let stored: StoredRoom = serde_json::from_str(json).unwrap();
        assert_eq!(stored.state, RoomState::new(Phase::Live, false));
    }
}
