//! Replay retention (`hls.replay_retention_days`): a room's replay is removed once its newest
//! segment is older than the retention period, on disk and in the bucket, with the recordings
//! that point into it. The room, its tokens and its numbering stay: the replay index keeps a
//! `retired` line, so the next program goes on after the last media sequence number (a CDN
//! may still hold the old, immutable objects).
//!
//! An EVENT or VOD playlist may not drop segments (RFC 8216bis §6.2.1), so the replay goes
//! whole, never segment by segment: the retention counts from the last segment, i.e. from the
//! end of the event for a webinar. The sweep runs at start-up and then every hour.

use std::sync::Arc;
use std::time::Duration;

use townhall_origin::object_store::ObjectSink;
use townhall_origin::replay_index::ReplayIndex;

use crate::http::SharedState;
use crate::rooms::Room;

/// How often the rooms are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Whether a replay whose newest segment started at `last_segment_ms` (program time) has
/// outlived `days` at `now_ms`. `days == 0` keeps replays for ever.
pub fn expired(last_segment_ms: i64, now_ms: i64, days: u32) -> bool {
    days > 0 && now_ms.saturating_sub(last_segment_ms) > i64::from(days) * 86_400_000
}

/// Sweeps for ever (with `days > 0`).
pub async fn run(state: SharedState, days: u32) {
    loop {
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        for room in state.rooms.list() {
            if let Some((msn, last_ms, init_id)) = room.hls.last_replay_segment()
                && expired(last_ms, now_ms, days)
            {
                retire(&state, &room, msn + 1, init_id).await;
            }
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

/// Removes a room's replay: the pusher stops, the files go (the index keeps where numbering
/// goes on), the origin forgets it, the recordings go, the bucket's objects go, and the pusher
/// starts again for what comes next.
async fn retire(state: &SharedState, room: &Arc<Room>, next_msn: u64, last_init_id: u32) {
    let Some(dir) = room.hls.replay_dir.clone() else { return };
    let id = room.record.id.clone();
    state.stop_pusher(room);
    let ended = room.hls.is_ended();
    let index = ReplayIndex::new(dir);
    let retired = tokio::task::spawn_blocking(move || index.retire(next_msn, last_init_id, ended)).await;
    match retired {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(room = %id, %err, "replay retention: files could not all be removed"),
        Err(err) => tracing::error!(room = %id, %err, "replay retention failed"),
    }
    room.hls.clear_replay();
    if let Err(err) = room.recordings.clear() {
        tracing::error!(room = %id, %err, "replay retention: the recordings could not be forgotten");
    }
    if let Some((sink, _)) = &state.s3 {
        match sink.delete_prefix(&format!("{id}/")).await {
            Ok(count) => tracing::info!(room = %id, count, "replay retention: objects removed from the bucket"),
            Err(err) => {
                tracing::error!(room = %id, %err, "replay retention: the bucket's objects could not be removed")
            }
        }
    }
    state.start_pusher(room);
    tracing::info!(room = %id, next_msn, "replay retention: the replay was removed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_expires_after_the_retention_and_zero_keeps_it() {
        let day = 86_400_000;
        assert!(!expired(0, 30 * day, 30));
        assert!(expired(0, 30 * day + 1, 30));
        assert!(!expired(0, 10_000 * day, 0), "0: for ever");
        assert!(!expired(5 * day, 0, 1), "a clock behind the media never expires it");
    }
}
