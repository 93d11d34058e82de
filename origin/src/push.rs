//! Pushes a room's replay to an object store, in an order that never lets the store's playlist
//! name an object it does not have: each segment after its init section, then the playlist that
//! lists it (RFC 8216bis §6.2.1: a server must not list a segment before it is available).
//!
//! The replay directory is the spool: segments are on disk before the index lists them, and
//! the pusher keeps its own position in that index (`push.cursor`, the number of index lines
//! pushed) on disk too. So while the store is down nothing is held in memory, nothing is
//! skipped, and after a restart or an outage the pusher drains what is left, oldest first.
//!
//! Decided here:
//! - Objects: `{room}/init-{id}.mp4`, `{room}/seg-{msn}.m4s` (immutable, cached a year) and
//!   `{room}/replay.m3u8` (EVENT while live, cached 1 s; VOD with ENDLIST once the event ends,
//!   cached an hour). A static bucket cannot block a request, so the bucket serves standard
//!   HLS, not LL-HLS: players poll `replay.m3u8`.
//! - A failed put is retried after 0.5 s, doubling up to 10 s, for ever; the error is kept in
//!   [`PushStatus`] for `/healthz` and the metrics until a put succeeds.
//! - While draining a backlog the playlist is pushed every 30 segments, so a long outage shows
//!   progress in the bucket as it drains.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use townhall_packager::playlist::{MediaPlaylist, PlaylistKind, Skip};

use crate::object_store::{IMMUTABLE, ObjectSink, StoreError};
use crate::replay_index::{ReplayEntry, ReplayIndex, fill_playlist};
use crate::stream::HlsStream;

/// Segments pushed between two playlist pushes while draining a backlog.
const PLAYLIST_EVERY: usize = 30;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the index is looked at when nothing wakes the pusher.
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// What the pushers of all rooms have done, for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct PushStatus {
    pub objects_pushed: AtomicU64,
    pub failures: AtomicU64,
    /// Segments listed in the replays but not in the store yet, over all rooms.
    pub backlog: AtomicU64,
    /// The last failure, until a put succeeds.
    pub last_error: Mutex<Option<String>>,
}

impl PushStatus {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// Pushes one room's replay.
pub struct Pusher<S: ObjectSink> {
    pub sink: Arc<S>,
    pub stream: Arc<HlsStream>,
    pub status: Arc<PushStatus>,
}

impl<S: ObjectSink> Pusher<S> {
    /// Runs until the task is aborted.
    pub async fn run(self) {
        let Some(dir) = self.stream.replay_dir.clone() else { return };
        let index = ReplayIndex::new(&dir);
        let cursor_path = dir.join("push.cursor");
        let room = self.stream.room.clone();
        let mut inits_pushed: HashSet<u32> = HashSet::new();
        let mut counted_backlog = 0u64;
        loop {
            let (entries, cursor) = {
                let index = index.clone();
                let cursor_path = cursor_path.clone();
                tokio::task::spawn_blocking(move || {
                    let entries = index.read().unwrap_or_else(|err| {
                        tracing::error!(dir = %index.dir().display(), %err, "replay index unreadable: nothing to push");
                        Vec::new()
                    });
                    let cursor = std::fs::read_to_string(&cursor_path)
                        .ok()
                        .and_then(|text| text.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    (entries, cursor)
                })
                .await
                .unwrap_or_default()
            };
            let cursor = cursor.min(entries.len());
            let backlog = entries[cursor..].iter().filter(|e| matches!(e, ReplayEntry::Segment { .. })).count() as u64;
            self.status.backlog.fetch_add(backlog, Ordering::Relaxed);
            self.status.backlog.fetch_sub(counted_backlog, Ordering::Relaxed);
            counted_backlog = backlog;
            if cursor == entries.len() {
                tokio::select! {
                    _ = self.stream.replay_written() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
                continue;
            }
            let mut done = cursor;
            for (position, entry) in entries.iter().enumerate().skip(cursor) {
                if let ReplayEntry::Segment { msn, init_id, .. } = *entry {
                    if !inits_pushed.contains(&init_id) {
                        let name = format!("init-{init_id}.mp4");
                        self.push_file(&room, &dir, &name, "video/mp4").await;
                        inits_pushed.insert(init_id);
                    }
                    self.push_file(&room, &dir, &format!("seg-{msn}.m4s"), "video/iso.segment").await;
                    self.status.backlog.fetch_sub(1, Ordering::Relaxed);
                    counted_backlog = counted_backlog.saturating_sub(1);
                }
                done = position + 1;
                if (done - cursor) % PLAYLIST_EVERY == 0 {
                    self.push_playlist(&room, &entries[..done]).await;
                    write_cursor(&cursor_path, done).await;
                }
            }
            self.push_playlist(&room, &entries[..done]).await;
            write_cursor(&cursor_path, done).await;
        }
    }

    /// The replay playlist of `entries`, pushed.
    async fn push_playlist(&self, room: &str, entries: &[ReplayEntry]) {
        let limits = self.stream.limits;
        let mut playlist =
            MediaPlaylist::new(PlaylistKind::Event, limits.part_target_s, limits.segment_target_s, usize::MAX);
        fill_playlist(&mut playlist, entries);
        if playlist.segments().next().is_none() {
            return; // a retired replay: nothing to list
        }
        let cache = if playlist.is_ended() { "public, max-age=3600" } else { "public, max-age=1" };
        let body = Bytes::from(playlist.render(Skip::No));
        let key = format!("{room}/replay.m3u8");
        self.retry(&key, || self.sink.put(&key, body.clone(), "application/vnd.apple.mpegurl", cache)).await;
    }

    /// A file of the replay directory, pushed as an immutable object.
    async fn push_file(&self, room: &str, dir: &std::path::Path, name: &str, content_type: &'static str) {
        let path = dir.join(name);
        let body = match tokio::fs::read(&path).await {
            Ok(bytes) => Bytes::from(bytes),
            Err(err) => {
                // The index lists only files that were on disk: one that is gone was removed by
                // hand (or the room is being deleted). Nothing to push.
                tracing::error!(%room, path = %path.display(), %err, "replay file missing: not pushed");
                return;
            }
        };
        let key = format!("{room}/{name}");
        self.retry(&key, || self.sink.put(&key, body.clone(), content_type, IMMUTABLE)).await;
    }

    /// Runs `put` until it succeeds, backing off.
    async fn retry<F, Fut>(&self, key: &str, mut put: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match put().await {
                Ok(()) => {
                    self.status.objects_pushed.fetch_add(1, Ordering::Relaxed);
                    if self.status.last_error().is_some() {
                        tracing::info!(room = %self.stream.room, key, "object store reachable again");
                        self.status.set_error(None);
                    }
                    return;
                }
                Err(err) => {
                    self.status.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(room = %self.stream.room, %err, retry_in = ?backoff, "push failed");
                    self.status.set_error(Some(err.to_string()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

async fn write_cursor(path: &std::path::Path, position: usize) {
    let path: PathBuf = path.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, position.to_string())?;
        std::fs::rename(&tmp, &path)
    })
    .await;
    if let Ok(Err(err)) = written {
        tracing::warn!(%err, "push cursor not saved: a restart pushes some objects again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamLimits;

    /// A store in memory that fails while `down` is set, and records the order of puts.
    #[derive(Default)]
    struct FakeSink {
        down: std::sync::atomic::AtomicBool,
        log: Mutex<Vec<(String, Bytes)>>,
    }

    impl ObjectSink for FakeSink {
        async fn put(&self, key: &str, body: Bytes, _: &'static str, _: &'static str) -> Result<(), StoreError> {
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError {
                    operation: "PutObject",
                    key: key.into(),
                    detail: "connection refused".into(),
                });
            }
            self.log.lock().unwrap().push((key.to_owned(), body));
            Ok(())
        }

        async fn delete_prefix(&self, _: &str) -> Result<usize, StoreError> {
            Ok(0)
        }
    }

    fn segment(msn: u64) -> ReplayEntry {
        ReplayEntry::Segment {
            msn,
            program_time_ms: 1_700_000_000_000,
            discontinuity: false,
            init_id: 1,
            duration_s: 2.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn objects_go_in_order_the_playlist_last_and_an_outage_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("townhall-push-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("init-1.mp4"), b"init").unwrap();
        let index = ReplayIndex::new(&dir);
        let limits = StreamLimits { part_target_s: 0.2, segment_target_s: 2.0, live_window: 6 };
        let stream = Arc::new(HlsStream::new("room", limits, Some(dir.clone())));
        let sink = Arc::new(FakeSink::default());
        let status = Arc::new(PushStatus::default());
        let add = |msn: u64| {
            std::fs::write(dir.join(format!("seg-{msn}.m4s")), format!("segment {msn}")).unwrap();
            index.append(&segment(msn)).unwrap();
            stream.notify_replay_written();
        };
        add(0);
        let task = tokio::spawn(Pusher { sink: sink.clone(), stream: stream.clone(), status: status.clone() }.run());
        let settle = || async {
            for _ in 0..200 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        settle().await;
        let keys = |sink: &FakeSink| sink.log.lock().unwrap().iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&sink), vec!["room/init-1.mp4", "room/seg-0.m4s", "room/replay.m3u8"]);

        // The store goes down for a while; segments keep coming.
        sink.down.store(true, Ordering::Relaxed);
        add(1);
        add(2);
        settle().await;
        assert!(status.last_error().is_some_and(|e| e.contains("connection refused")));
        assert_eq!(status.backlog.load(Ordering::Relaxed), 2);
        sink.down.store(false, Ordering::Relaxed);
        index.append(&ReplayEntry::Ended).unwrap();
        stream.notify_replay_written();
        settle().await;
        assert_eq!(status.last_error(), None);
        assert_eq!(status.backlog.load(Ordering::Relaxed), 0);
        let log = sink.log.lock().unwrap().clone();
        let order: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&order[3..5], &["room/seg-1.m4s", "room/seg-2.m4s"]);
        // Every playlist pushed names only segments pushed before it; the last one is VOD.
        for (i, (key, body)) in log.iter().enumerate() {
            if key.ends_with(".m3u8") {
                let text = String::from_utf8_lossy(body);
                for line in text.lines().filter(|l| l.starts_with("seg-")) {
                    assert!(
                        order[..i].contains(&format!("room/{line}").as_str()),
                        "{line} listed before it was pushed"
                    );
                }
            }
        }
        assert!(String::from_utf8_lossy(&log.last().unwrap().1).ends_with("#EXT-X-ENDLIST\n"));
        // The cursor is on disk: a new pusher pushes nothing again.
        task.abort();
        let before = log.len();
        let again = tokio::spawn(Pusher { sink: sink.clone(), stream, status }.run());
        settle().await;
        assert_eq!(sink.log.lock().unwrap().len(), before);
        again.abort();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
