//! The recordings API: the host starts and stops recordings of the program; each recording
//! downloads as one MP4 (remuxed from the replay's segments, no re-encode:
//! `townhall_packager::mp4file`) and plays as VOD HLS (RFC 8216bis §4.4.3.5 PLAYLIST-TYPE VOD,
//! §4.4.2.6 EXT-X-START to begin at the recorded part, §4.4.4.2 EXT-X-BYTERANGE to end at it).
//!
//! - `POST /api/rooms/{room}/recordings` `{"action": "start" | "stop"}` (host or admin)
//! - `GET /api/rooms/{room}/recordings` (host or admin): the list
//! - `GET /api/rooms/{room}/recordings/{id}` (host or admin): one, with its state
//! - `GET /api/rooms/{room}/recordings/{id}.mp4` and `{id}.m3u8`: the media, without a token
//!   (the id is unguessable, and the replay it comes from is public too)
//!
//! A stopped recording is `processing` until the segment holding its last part is on disk
//! (at most one segment target later), then `ready`; its media before that is a 409.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use townhall_packager::mp4file::{self, Fragment, InitTrack, Mp4Builder, Mp4Plan};
use townhall_packager::playlist::{SegmentEntry, format_program_date_time};

use super::SharedState;
use super::api::{base_url, room_or_404};
use super::auth;
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;
use crate::recordings::{PartPosition, Recording, RecordingError};
use crate::rooms::{Room, random_token};
use crate::webhooks::EventType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingAction {
    pub action: Action,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Start,
    Stop,
}

#[derive(Debug, Serialize)]
pub struct RecordingView {
    pub id: String,
    /// `recording`, `processing` (stopped, its last segment not on disk yet) or `ready`.
    pub state: &'static str,
    pub started_at: String,
    pub stopped_at: Option<String>,
    pub start: PartPosition,
    pub stop: Option<PartPosition>,
    pub mp4_url: String,
    pub hls_url: String,
}

fn view(room: &Room, recording: &Recording, base: &str) -> RecordingView {
    let id = &recording.id;
    let path = format!("{base}/api/rooms/{}/recordings/{id}", room.record.id);
    RecordingView {
        id: id.clone(),
        state: state_of(room, recording),
        started_at: format_program_date_time(recording.started_at_ms),
        stopped_at: recording.stopped_at_ms.map(format_program_date_time),
        start: recording.start,
        stop: recording.stop,
        mp4_url: format!("{path}.mp4"),
        hls_url: format!("{path}.m3u8"),
    }
}

fn state_of(room: &Room, recording: &Recording) -> &'static str {
    match recording.last_segment() {
        None if recording.stop.is_none() => "recording",
        _ if recording.is_empty() => "ready",
        Some(last) if room.hls.last_replay_msn().is_some_and(|m| m >= last) => "ready",
        _ => "processing",
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn host(state: &SharedState, room: &Room, headers: &HeaderMap) -> ApiResult<()> {
    auth::require_host(state, room, headers).map(drop)
}

/// `POST /api/rooms/{room}/recordings`: start (201) or stop (200) a recording.
pub async fn start_or_stop(
    State(state): State<SharedState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &id)?;
    host(&state, &room, &headers)?;
    let bytes = read_body(&state, body).await?;
    let request: RecordingAction = parse_json(&bytes, r#"{"action": "start" | "stop"}"#)?;
    // The part the program shows next: a recording starts with it, or ends before it.
    let Some((msn, part)) = room.hls.next_part() else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not_live",
            format!("the program of room {id:?} is not running: nothing to record"),
        ));
    };
    let position = PartPosition { msn, part };
    let now = now_ms();
    let result = room.recordings.update(|book| match request.action {
        Action::Start => book.start(format!("rec-{}", random_token(16)), now, position).cloned(),
        Action::Stop => book.stop(now, position).cloned(),
    });
    let recording = match result {
        Ok(Ok(recording)) => recording,
        Ok(Err(err @ RecordingError::AlreadyRecording(_))) => {
            return Err(Problem::new(StatusCode::CONFLICT, "already_recording", err.to_string()));
        }
        Ok(Err(err @ RecordingError::NotRecording)) => {
            return Err(Problem::new(StatusCode::CONFLICT, "not_recording", err.to_string()));
        }
        Err(err) => {
            return Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                format!("the recording could not be saved: {err}"),
            ));
        }
    };
    tracing::info!(room = %id, recording = %recording.id, action = ?request.action, msn, part, "recording");
    let status = if matches!(request.action, Action::Start) { StatusCode::CREATED } else { StatusCode::OK };
    let base = base_url(&state, &headers);
    if matches!(request.action, Action::Stop) {
        announce_when_ready(&state, &room, recording.clone(), base.clone());
    }
    Ok((status, Json(view(&room, &recording, &base))).into_response())
}

/// Longest wait for a stopped recording's last segment before `recording.ready` is given up.
const READY_WAIT: Duration = Duration::from_secs(3_600);

/// Emits `recording.ready` once a stopped recording's media is served: at once, or when the
/// segment holding its last part is on disk (looked at 4 times a second; given up if the room
/// is deleted first).
fn announce_when_ready(state: &SharedState, room: &Arc<Room>, recording: Recording, base: String) {
    if !state.webhooks.is_enabled() {
        return;
    }
    let (state, room) = (state.clone(), room.clone());
    tokio::spawn(async move {
        let deadline = Instant::now() + READY_WAIT;
        while state_of(&room, &recording) != "ready" {
            if Instant::now() > deadline || state.rooms.get(&room.record.id).is_none() {
                tracing::warn!(room = %room.record.id, recording = %recording.id, "recording never became ready: no webhook");
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let view = view(&room, &recording, &base);
        let data = serde_json::json!({
            "room": room.record.id,
            "recording": view.id,
            "started_at": view.started_at,
            "stopped_at": view.stopped_at,
            "empty": recording.is_empty(),
            "mp4_url": view.mp4_url,
            "hls_url": view.hls_url,
        });
        state.webhooks.emit(EventType::RecordingReady, data);
    });
}

/// `GET /api/rooms/{room}/recordings`.
pub async fn list(
    State(state): State<SharedState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RecordingView>>> {
    let room = room_or_404(&state, &id)?;
    host(&state, &room, &headers)?;
    let base = base_url(&state, &headers);
    Ok(Json(room.recordings.snapshot().recordings.iter().map(|r| view(&room, r, &base)).collect()))
}

/// `GET /api/rooms/{room}/recordings/{file}`: `{id}` (JSON), `{id}.mp4`, `{id}.m3u8`.
pub async fn get(
    State(state): State<SharedState>,
    UrlPath((id, file)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &id)?;
    let (recording_id, kind) = match file.rsplit_once('.') {
        Some((rid, "mp4")) => (rid, Some("mp4")),
        Some((rid, "m3u8")) => (rid, Some("m3u8")),
        _ => (file.as_str(), None),
    };
    // The recording's state is the host's; its media needs no token, but one that is sent must
    // be valid (as everywhere). Checked first, so an unknown id tells a stranger nothing.
    match kind {
        None => host(&state, &room, &headers)?,
        Some(_) => drop(auth::caller(&state, &room, &headers, None)?),
    }
    let Some(recording) = room.recordings.snapshot().get(recording_id).cloned() else {
        return Err(Problem::not_found("unknown_recording", format!("room {id:?} has no recording {recording_id:?}")));
    };
    let Some(kind) = kind else {
        return Ok(Json(view(&room, &recording, &base_url(&state, &headers))).into_response());
    };
    let state_now = state_of(&room, &recording);
    if state_now != "ready" {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "recording_not_ready",
            format!("recording {recording_id} is {state_now}: its media is there once it is ready"),
        ));
    }
    if recording.is_empty() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "empty_recording",
            format!("recording {recording_id} was stopped before any part was recorded"),
        ));
    }
    let (Some(dir), Some(last)) = (room.hls.replay_dir.clone(), recording.last_segment()) else {
        return Err(Problem::not_found("unknown_recording", "the room keeps no replay"));
    };
    let segments = room.hls.replay_segments(recording.start.msn, last);
    let (start, stop) = (recording.start, recording.stop.unwrap_or(recording.start));
    let media = tokio::task::spawn_blocking(move || RecordingMedia::read(&dir, segments, start, stop))
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "recording_unreadable", e))?;
    if kind == "m3u8" {
        let body = media.playlist(&room.record.id);
        return Ok((
            [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl"), (header::CACHE_CONTROL, "public, max-age=3600")],
            body,
        )
            .into_response());
    }
    let (plan, sources) =
        media.mp4().map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "recording_unreadable", e))?;
    let disposition = format!("attachment; filename=\"{}-{recording_id}.mp4\"", room.record.id);
    let total = plan.total_len;
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4".to_owned()),
            (header::CONTENT_LENGTH, total.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        Body::from_stream(stream_file(plan, sources)),
    )
        .into_response())
}

/// The head of the file, then its byte ranges read from the segment files in 256 KiB pieces.
fn stream_file(plan: Mp4Plan, sources: Vec<PathBuf>) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(plan.head))).await.is_err() {
            return;
        }
        let mut open: Option<(usize, tokio::fs::File)> = None;
        for copy in plan.copies {
            let result = async {
                if open.as_ref().is_none_or(|(source, _)| *source != copy.source) {
                    open = Some((copy.source, tokio::fs::File::open(&sources[copy.source]).await?));
                }
                let (_, file) = open.as_mut().expect("opened above");
                file.seek(std::io::SeekFrom::Start(copy.offset)).await?;
                let mut left = copy.len;
                while left > 0 {
                    let mut buf = vec![0; left.min(256 * 1024) as usize];
                    file.read_exact(&mut buf).await?;
                    left -= buf.len() as u64;
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return Ok(false);
                    }
                }
                Ok::<bool, std::io::Error>(true)
            }
            .await;
            match result {
                Ok(true) => {}
                Ok(false) => return, // the client went away
                Err(err) => {
                    tracing::warn!(%err, "recording download cut short");
                    let _ = tx.send(Err(err)).await;
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// A recording's segments, read from the replay directory: what both its MP4 and its
/// playlist are made of.
struct RecordingMedia {
    dir: PathBuf,
    /// Each segment with its fragments (parts), the recorded ones only at the end.
    segments: Vec<(SegmentEntry, Vec<Fragment>)>,
    inits: HashMap<u32, Vec<InitTrack>>,
    start: PartPosition,
    /// Bytes of the last segment that are recorded (its parts before `stop`).
    last_len: Option<u64>,
}

impl RecordingMedia {
    /// Blocking: reads the segment files and init sections.
    fn read(dir: &Path, listed: Vec<SegmentEntry>, start: PartPosition, stop: PartPosition) -> Result<Self, String> {
        let mut segments = Vec::with_capacity(listed.len());
        let mut inits = HashMap::new();
        let mut last_len = None;
        for entry in listed {
            let path = dir.join(format!("seg-{}.m4s", entry.msn));
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut fragments = mp4file::parse_segment(&data).map_err(|e| format!("{}: {e}", path.display()))?;
            if entry.msn == stop.msn {
                fragments.truncate(stop.part as usize);
                last_len = fragments.last().map(|f| f.mdat_payload_offset + f.mdat_payload_len);
            }
            if fragments.is_empty() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = inits.entry(entry.init_id) {
                let path = dir.join(format!("init-{}.mp4", entry.init_id));
                let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                slot.insert(mp4file::parse_init(&data).map_err(|e| format!("{}: {e}", path.display()))?);
            }
            segments.push((entry, fragments));
        }
        if segments.is_empty() {
            return Err("none of the recording's segments is on disk".into());
        }
        Ok(Self { dir: dir.to_owned(), segments, inits, start, last_len })
    }

    /// Where a fragment's video starts and ends, in seconds of decode time.
    fn video_span_s(&self, init_id: u32, fragment: &Fragment) -> Option<(f64, f64)> {
        let tracks = self.inits.get(&init_id)?;
        fragment.runs.iter().find_map(|run| {
            let track = tracks.iter().find(|t| t.track_id == run.track_id && t.is_video)?;
            let ticks: u64 = run.samples.iter().map(|s| u64::from(s.duration)).sum();
            let scale = f64::from(track.timescale);
            Some((run.base_decode_time as f64 / scale, (run.base_decode_time + ticks) as f64 / scale))
        })
    }

    /// Decode time of the first video sample of a fragment, in seconds.
    fn video_start_s(&self, init_id: u32, fragment: &Fragment) -> Option<f64> {
        self.video_span_s(init_id, fragment).map(|(start, _)| start)
    }

    /// Where the recording starts within its first segment, in seconds.
    fn start_offset_s(&self) -> f64 {
        let Some((entry, fragments)) = self.segments.first() else { return 0.0 };
        if entry.msn != self.start.msn {
            return 0.0;
        }
        let first = fragments.first().and_then(|f| self.video_start_s(entry.init_id, f));
        let start = fragments.get(self.start.part as usize).and_then(|f| self.video_start_s(entry.init_id, f));
        match (first, start) {
            (Some(first), Some(start)) => (start - first).max(0.0),
            _ => 0.0,
        }
    }

    fn mp4(&self) -> Result<(Mp4Plan, Vec<PathBuf>), String> {
        let mut builder = Mp4Builder::new();
        let mut sources = Vec::with_capacity(self.segments.len());
        for (entry, fragments) in &self.segments {
            let init = &self.inits[&entry.init_id];
            for fragment in fragments {
                builder.add_fragment(sources.len(), init, fragment);
            }
            sources.push(self.dir.join(format!("seg-{}.m4s", entry.msn)));
        }
        let (first_entry, first_fragments) = &self.segments[0];
        let start_s = first_fragments
            .first()
            .and_then(|f| self.video_start_s(first_entry.init_id, f))
            .map(|t| t + self.start_offset_s());
        let plan = builder.finish(start_s).map_err(|e| e.to_string())?;
        Ok((plan, sources))
    }

    /// The VOD playlist: whole segments, the first entered at the recorded part, the last cut
    /// after the recorded part by a byte range.
    fn playlist(&self, room: &str) -> String {
        let count = self.segments.len();
        let durations: Vec<f64> = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, (entry, fragments))| {
                if i + 1 == count && self.last_len.is_some() {
                    // The cut last segment: from its first part's video to its last kept part's.
                    let start = fragments.first().and_then(|f| self.video_start_s(entry.init_id, f));
                    let end = fragments.last().and_then(|f| self.video_span_s(entry.init_id, f)).map(|(_, end)| end);
                    start.zip(end).map_or(0.0, |(start, end)| (end - start).max(0.0))
                } else {
                    entry.duration_s
                }
            })
            .collect();
        let target = durations.iter().fold(1.0f64, |a, b| a.max(*b)).round().max(1.0);
        let mut out = String::with_capacity(256 + 128 * count);
        let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS");
        let _ = writeln!(out, "#EXT-X-START:TIME-OFFSET={:.3},PRECISE=YES", self.start_offset_s());
        let mut init = None;
        for (i, ((entry, _), duration)) in self.segments.iter().zip(&durations).enumerate() {
            if i > 0 && (entry.discontinuity || init != Some(entry.init_id)) {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            if init != Some(entry.init_id) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"/hls/{room}/init-{}.mp4\"", entry.init_id);
                init = Some(entry.init_id);
            }
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_program_date_time(entry.program_time_ms));
            let _ = writeln!(out, "#EXTINF:{duration:.5},");
            if i + 1 == count
                && let Some(len) = self.last_len
            {
                let _ = writeln!(out, "#EXT-X-BYTERANGE:{len}@0");
            }
            let _ = writeln!(out, "/hls/{room}/seg-{}.m4s", entry.msn);
        }
        out.push_str("#EXT-X-ENDLIST\n");
        out
    }
}
