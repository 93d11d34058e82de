//! Recordings of a room's program: the host marks ranges of the program (start, stop), and
//! each range is served from the replay's segments as one MP4 and as VOD HLS.
//!
//! A range is a half-open interval of LL-HLS parts, `[start, stop)`, each end being the part
//! that was *next* (the preload hint) when the host asked: so a recording holds what the
//! program showed between the two requests, to within one part. [`RecordingBook`] is the pure
//! state machine (time and positions come in as arguments); [`RecordingStore`] keeps it in
//! `recordings.json` in the room's replay directory, written atomically, so recordings survive
//! a restart with the replay they point into.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A part of the program: media sequence number and part index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartPosition {
    pub msn: u64,
    pub part: u32,
}

/// One recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Unguessable: its media URLs are served without a token, like the replay.
    pub id: String,
    /// Wall-clock time of the start request (ms since the Unix epoch).
    pub started_at_ms: i64,
    pub start: PartPosition,
    pub stopped_at_ms: Option<i64>,
    pub stop: Option<PartPosition>,
}

impl Recording {
    /// The segment holding the recording's last part, once it is stopped: `stop` is the first
    /// part not recorded.
    pub fn last_segment(&self) -> Option<u64> {
        let stop = self.stop?;
        if stop.part > 0 { Some(stop.msn) } else { stop.msn.checked_sub(1) }
    }

    /// Whether it holds no part at all.
    pub fn is_empty(&self) -> bool {
        self.stop.is_some_and(|stop| stop <= self.start)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("recording {0} is already running: stop it first")]
    AlreadyRecording(String),
    #[error("no recording is running: start one first")]
    NotRecording,
}

/// The recordings of one room, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingBook {
    pub recordings: Vec<Recording>,
}

impl RecordingBook {
    /// The running recording, if any.
    pub fn running(&self) -> Option<&Recording> {
        self.recordings.iter().find(|r| r.stop.is_none())
    }

    pub fn get(&self, id: &str) -> Option<&Recording> {
        self.recordings.iter().find(|r| r.id == id)
    }

    /// Starts a recording at `position` (the next part to come).
    pub fn start(&mut self, id: String, now_ms: i64, position: PartPosition) -> Result<&Recording, RecordingError> {
        if let Some(running) = self.running() {
            return Err(RecordingError::AlreadyRecording(running.id.clone()));
        }
        self.recordings.push(Recording { id, started_at_ms: now_ms, start: position, stopped_at_ms: None, stop: None });
        Ok(self.recordings.last().expect("pushed"))
    }

    /// Stops the running recording before `position` (the next part to come).
    pub fn stop(&mut self, now_ms: i64, position: PartPosition) -> Result<&Recording, RecordingError> {
        let running = self.recordings.iter_mut().find(|r| r.stop.is_none()).ok_or(RecordingError::NotRecording)?;
        running.stop = Some(position.max(running.start));
        running.stopped_at_ms = Some(now_ms);
        Ok(running)
    }
}

/// A room's recording book, kept in `recordings.json` beside its replay.
#[derive(Debug)]
pub struct RecordingStore {
    path: PathBuf,
    book: Mutex<RecordingBook>,
}

impl RecordingStore {
    /// Loads the book of the replay directory `dir` (empty if there is none; an unreadable
    /// file is set aside as `recordings.json.bad` rather than lost).
    pub fn open(dir: &Path) -> Self {
        let path = dir.join("recordings.json");
        let book = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::error!(path = %path.display(), %err, "recordings unreadable: kept aside as recordings.json.bad");
                let _ = std::fs::rename(&path, path.with_extension("json.bad"));
                RecordingBook::default()
            }),
            Err(_) => RecordingBook::default(),
        };
        Self { path, book: Mutex::new(book) }
    }

    pub fn snapshot(&self) -> RecordingBook {
        self.lock().clone()
    }

    /// Changes the book with `change` and writes it to disk before returning what `change`
    /// returned; if the write fails, the change is undone and the error returned.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut RecordingBook) -> Result<T, RecordingError>,
    ) -> Result<Result<T, RecordingError>, std::io::Error> {
        let mut book = self.lock();
        let before = book.clone();
        let result = change(&mut book);
        if result.is_ok() {
            let written = std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))
                .and_then(|()| serde_json::to_vec_pretty(&*book).map_err(std::io::Error::other))
                .and_then(|bytes| crate::rooms::write_atomically(&self.path, &bytes));
            if let Err(err) = written {
                *book = before;
                return Err(err);
            }
        }
        Ok(result)
    }

    /// Forgets every recording (their replay was removed by retention).
    pub fn clear(&self) -> Result<(), std::io::Error> {
        self.update(|book| {
            book.recordings.clear();
            Ok(())
        })
        .map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordingBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(msn: u64, part: u32) -> PartPosition {
        PartPosition { msn, part }
    }

    #[test]
    fn one_recording_runs_at_a_time_and_stop_needs_a_start() {
        let mut book = RecordingBook::default();
        assert_eq!(book.stop(1, at(3, 0)).unwrap_err(), RecordingError::NotRecording);
        book.start("a".into(), 10, at(2, 4)).unwrap();
        assert_eq!(book.start("b".into(), 11, at(2, 5)).unwrap_err(), RecordingError::AlreadyRecording("a".into()));
        let stopped = book.stop(20, at(5, 0)).unwrap().clone();
        assert_eq!((stopped.stop, stopped.stopped_at_ms, stopped.last_segment()), (Some(at(5, 0)), Some(20), Some(4)));
        assert!(!stopped.is_empty());
        book.start("b".into(), 30, at(6, 1)).unwrap();
        // Stopping before anything came: an empty recording, never a reversed one.
        let empty = book.stop(31, at(6, 1)).unwrap();
        assert!(empty.is_empty());
        assert_eq!(book.recordings.len(), 2);
        assert!(book.running().is_none());
    }

    #[test]
    fn the_book_survives_a_reopen_and_a_corrupt_file_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("townhall-recordings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = RecordingStore::open(&dir);
        store.update(|book| book.start("r1".into(), 5, at(1, 2)).map(|r| r.id.clone())).unwrap().unwrap();
        assert_eq!(store.update(|book| book.stop(6, at(0, 0)).map(|_| ())).unwrap(), Ok(()));
        let reopened = RecordingStore::open(&dir);
        assert_eq!(reopened.snapshot(), store.snapshot());
        std::fs::write(dir.join("recordings.json"), b"{not json").unwrap();
        assert_eq!(RecordingStore::open(&dir).snapshot(), RecordingBook::default());
        assert!(dir.join("recordings.json.bad").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
