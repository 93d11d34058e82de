//! Rooms and their tokens: the one place a room's state lives, persisted as JSON under the
//! data directory (written to a temporary file, then renamed, so a crash never leaves half a
//! file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use townhall_ingest::{Stage, StageLimits};
use townhall_origin::{HlsStream, StreamLimits};

use crate::recordings::RecordingStore;

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
}

/// A live room: its record, its stage and its program as the origin serves it.
#[derive(Debug)]
pub struct Room {
    pub record: RoomRecord,
    pub stage: Arc<Stage>,
    pub hls: Arc<HlsStream>,
    /// The host's recordings of the program, kept beside its replay.
    pub recordings: RecordingStore,
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("room id {0:?} is taken")]
    Taken(String),
    #[error("invalid room id {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidId(String),
    #[error("saving rooms: {0}")]
    Io(#[from] std::io::Error),
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
        let records: Vec<RoomRecord> = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{} is corrupt: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        let rooms = records
            .into_iter()
            .map(|record| (record.id.clone(), Arc::new(new_room(record, limits, hls_limits, &hls_dir))))
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
        let room = Arc::new(Room { record, stage, hls, recordings });
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
    pub fn create(&self, id: Option<String>, name: Option<String>) -> Result<Arc<Room>, RoomError> {
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
        };
        let room = Arc::new(new_room(record, self.limits, self.hls_limits, &self.hls_dir));
        rooms.insert(id.clone(), room.clone());
        if let Err(e) = self.save(&rooms) {
            rooms.remove(&id);
            return Err(e);
        }
        Ok(room)
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

    fn save(&self, rooms: &BTreeMap<String, Arc<Room>>) -> Result<(), RoomError> {
        let records: Vec<&RoomRecord> = rooms.values().map(|r| &r.record).collect();
        let json = serde_json::to_vec_pretty(&records).map_err(std::io::Error::other)?;
        write_atomically(&self.path, &json)?;
        Ok(())
    }
}

fn new_room(record: RoomRecord, limits: StageLimits, hls_limits: StreamLimits, hls_dir: &Path) -> Room {
    let stage = Stage::new(record.id.clone(), limits);
    let dir = hls_dir.join(&record.id);
    let recordings = RecordingStore::open(&dir);
    let hls = Arc::new(HlsStream::new(record.id.clone(), hls_limits, Some(dir)));
    Room { record, stage, hls, recordings }
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
        let a = rooms.create(Some("town-hall_1".into()), Some("Town hall".into())).unwrap();
        let b = rooms.create(None, None).unwrap();
        assert_eq!(b.record.id.len(), 10);
        assert!(matches!(rooms.create(Some("town-hall_1".into()), None), Err(RoomError::Taken(_))));
        assert!(matches!(rooms.create(Some("../x".into()), None), Err(RoomError::InvalidId(_))));
        assert!(rooms.delete(&b.record.id).unwrap().is_some());
        let reopened = Rooms::open(&dir, limits(), hls()).unwrap();
        assert_eq!(reopened.len(), 1);
        assert_eq!(reopened.get("town-hall_1").unwrap().record, a.record);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
