//! Breakout rooms over HTTP and the WebSocket: the thin shell around [`crate::breakouts`].
//!
//! - `POST /api/rooms/{room}/breakouts` (admin or host) `{"rooms": 2, "duration_s": 300}` splits
//!   the attendees connected to the room's WebSocket at random, or by hand with
//!   `{"rooms": [{"name": "Team A", "participants": ["a-…", …]}, …], "duration_s": …}`
//!   → 201 with the run (below). 409 `breakouts_running`; 400 `malformed_json`,
//!   `bad_room_count`, `not_enough_attendees`, `unknown_participant`, `duplicate_participant`,
//!   `empty_room`, `bad_name`, `bad_duration`, `breakout_room` (a breakout room cannot split).
//! - `GET /api/rooms/{room}/breakouts` (admin or host) → 200 the run, or `{"running": false}`.
//! - `DELETE /api/rooms/{room}/breakouts` (admin or host) → 204: everyone comes back now;
//!   404 `no_breakouts` when none run.
//!
//! The run: `{"running": true, "started_at", "ends_at" (Unix ms), "rooms": [{"id", "name",
//! "participants": [{"id", "name"}], "whip_url", "whep_url", "ws_url"}]}`.
//!
//! Each breakout room is a room in memory only ([`crate::rooms::Rooms::insert_transient`]): its
//! own stage (a presenter per member, and one more for a visiting host), its own interaction
//! hub (chat; kept in the store until the run ends), no program and no LL-HLS. Every member gets
//! a signed presenter token of that room only, with its own participant id and name, over its
//! main-room WebSocket only:
//! `{"type":"breakout_assigned","breakout":{"id","name","ends_at","participants"},"token","jti",
//! "ws_url","whip_url","whep_url"}` (`whip_url` names the member as presenter; `whep_url` +
//! `/{presenter}` plays a room-mate). A member who reconnects while the run lasts gets it again
//! right after `welcome`. `{"type":"breakout_closing","ends_at"}` goes to the main room and the
//! breakout rooms before the end ([`crate::breakouts::CLOSING_WARNING_S`]). At the end (timer or
//! DELETE) every breakout room's WebSockets get `{"type":"breakout_ended","breakout","reason"}`
//! and are closed (4003), its WHIP/WHEP sessions end, the members' tokens are revoked, its chat is
//! deleted and the room is gone (its URLs answer 404); the main room gets
//! `{"type":"breakout_ended","reason":"timer"|"host"}`. Deleting the main room ends its run too.
//!
//! Decided here: runs live in memory (after a restart there are none; the members' tokens name
//! rooms that no longer exist, so they open nothing); members are presenters in their room, so
//! they may moderate its chat as presenters do on a stage; the host's `whip_url` for a visit is
//! `?presenter=host` (each room has one presenter slot more than it has members).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use townhall_interaction::Role;

use super::SharedState;
use super::api::{base_url, room_or_404};
use super::auth;
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;
use crate::access::unix_now_s;
use crate::breakouts::{self, BreakoutError, Due, Member, Run, Split};
use crate::rooms::{Room, RoomRecord, random_token};

/// What a member was given.
struct Assignment {
    room: String,
    jti: String,
    message: Value,
}

/// A run in progress.
struct Running {
    run: Run,
    /// The run as `GET` shows it (URLs from the request that started it).
    view: Value,
    /// Participant id → assignment.
    members: HashMap<String, Assignment>,
    timer: Option<tokio::task::AbortHandle>,
}

/// The runs of every main room.
#[derive(Default)]
pub struct Breakouts {
    runs: Mutex<HashMap<String, Running>>,
}

impl Breakouts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `breakout_assigned` of a participant of main room `room`, while its run lasts.
    pub fn assignment(&self, room: &str, participant: &str) -> Option<String> {
        self.lock().get(room)?.members.get(participant).map(|a| a.message.to_string())
    }

    fn deadline(&self, room: &str, tag: &str) -> Option<u64> {
        self.lock().get(room).filter(|r| r.run.tag == tag).map(|r| r.run.next_deadline())
    }

    fn poll(&self, room: &str, tag: &str, now_ms: u64) -> Option<Due> {
        self.lock().get_mut(room).filter(|r| r.run.tag == tag)?.run.poll(now_ms)
    }
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    rooms: Split,
    duration_s: u64,
}

impl From<BreakoutError> for Problem {
    fn from(err: BreakoutError) -> Self {
        Problem::bad_request(err.code(), err.to_string())
    }
}

/// The main room of the path, and its host.
fn main_room(state: &SharedState, room: &str, headers: &HeaderMap) -> ApiResult<std::sync::Arc<Room>> {
    let room = room_or_404(state, room)?;
    auth::require_host(state, &room, headers)?;
    if breakouts::parent_of(&room.record.id).is_some() {
        return Err(Problem::bad_request("breakout_room", "a breakout room has no breakout rooms of its own"));
    }
    Ok(room)
}

/// `POST /api/rooms/{room}/breakouts`.
pub async fn start(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let main = main_room(&state, &room, &headers)?;
    let bytes = read_body(&state, body).await?;
    let request: StartRequest = parse_json(&bytes, r#"{"rooms": N or [{"name", "participants"}], "duration_s": S}"#)?;
    let duration_s = breakouts::check_duration(request.duration_s)?;
    let base = base_url(&state, &headers);
    let ws_base = base.replacen("http", "ws", 1);
    let parent = main.record.id.clone();
    let (now_ms, now_s) = (unix_now_ms(), unix_now_s());

    let mut runs = state.breakouts.lock();
    if runs.contains_key(&parent) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "breakouts_running",
            "breakout rooms are open: end them (DELETE) before splitting again",
        ));
    }
    // Attendees still in the waiting room stay there.
    let waiting = main.lobby.waiting.lock().unwrap_or_else(|e| e.into_inner()).everyone();
    let attendees: Vec<Member> = state
        .presence
        .attendees(&parent)
        .into_iter()
        .filter(|a| !waiting.contains(&a.participant_id))
        .map(|a| Member { id: a.participant_id, name: a.name })
        .collect();
    let groups = breakouts::plan(&request.rooms, &attendees, &mut rand::rng())?;
    let tag = random_token(6).to_ascii_lowercase();
    let run = Run::new(&parent, &tag, groups, duration_s, now_ms);
    let mut members = HashMap::new();
    let mut rooms = Vec::new();
    for breakout in &run.rooms {
        let record = RoomRecord {
            id: breakout.id.clone(),
            name: breakout.name.clone(),
            // Never handed out: members publish with their own tokens.
            publish_token: random_token(32),
            // The main room's host key visits.
            host_token: main.record.host_token.clone(),
            created_at: now_s,
            details: Default::default(),
        };
        state.rooms.insert_transient(record, breakout.participants.len() + 1);
        let id = &breakout.id;
        let (whip_url, whep_url, ws_url) =
            (format!("{base}/whip/{id}"), format!("{base}/whep/{id}"), format!("{ws_base}/ws/{id}"));
        for member in &breakout.participants {
            let ttl = duration_s + 120;
            let (token, claims) = state.access.issue(id, Role::Presenter, &member.id, &member.name, ttl, now_s);
            let message = json!({
                "type": "breakout_assigned",
                "breakout": {
                    "id": id,
                    "name": breakout.name,
                    "ends_at": run.ends_at_ms,
                    "participants": breakout.participants,
                },
                "token": token,
                "jti": claims.jti,
                "ws_url": ws_url,
                "whip_url": format!("{whip_url}?presenter={}", member.id),
                "whep_url": whep_url,
            });
            members.insert(member.id.clone(), Assignment { room: id.clone(), jti: claims.jti, message });
        }
        rooms.push(json!({
            "id": id,
            "name": breakout.name,
            "participants": breakout.participants,
            "whip_url": whip_url,
            "whep_url": whep_url,
            "ws_url": ws_url,
        }));
    }
    let view = json!({
        "running": true,
        "started_at": run.started_at_ms,
        "ends_at": run.ends_at_ms,
        "rooms": rooms,
    });
    for (participant, assignment) in &members {
        if let Err(err) = state.interaction.tell(&parent, &main.hls, participant, &assignment.message) {
            tracing::error!(room = %parent, %participant, %err, "breakout assignment not delivered");
        }
    }
    tracing::info!(room = %parent, run = %tag, rooms = run.rooms.len(), members = members.len(), duration_s, "breakout rooms open");
    let timer = tokio::spawn(timer(state.clone(), parent.clone(), tag)).abort_handle();
    runs.insert(parent, Running { run, view: view.clone(), members, timer: Some(timer) });
    drop(runs);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /api/rooms/{room}/breakouts`.
pub async fn get(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let main = main_room(&state, &room, &headers)?;
    let view = state.breakouts.lock().get(&main.record.id).map(|r| r.view.clone());
    Ok(Json(view.unwrap_or_else(|| json!({"running": false, "rooms": []}))))
}

/// `DELETE /api/rooms/{room}/breakouts`.
pub async fn end(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let main = main_room(&state, &room, &headers)?;
    if finish(&state, &main.record.id, "host") {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("no_breakouts", "no breakout rooms are open in this room"))
    }
}

/// Sleeps until the run's next deadline and does what is due, until it ends (or another run,
/// or none, is in its place).
async fn timer(state: SharedState, parent: String, tag: String) {
    while let Some(deadline) = state.breakouts.deadline(&parent, &tag) {
        tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(unix_now_ms()))).await;
        match state.breakouts.poll(&parent, &tag, unix_now_ms()) {
            Some(Due::Closing) => closing(&state, &parent),
            Some(Due::End) => {
                finish(&state, &parent, "timer");
                return;
            }
            None => {}
        }
    }
}

/// `breakout_closing` to the main room and every breakout room.
fn closing(state: &SharedState, parent: &str) {
    let Some((ends_at, rooms)) = state.breakouts.lock().get(parent).map(|r| (r.run.ends_at_ms, r.run.rooms.clone()))
    else {
        return;
    };
    let message = json!({"type": "breakout_closing", "ends_at": ends_at});
    tracing::info!(room = %parent, ends_at, "breakout rooms closing soon");
    for id in std::iter::once(parent.to_owned()).chain(rooms.into_iter().map(|r| r.id)) {
        if let Some(room) = state.rooms.get(&id)
            && let Err(err) = state.interaction.announce(&id, &room.hls, &message)
        {
            tracing::warn!(room = %id, %err, "breakout_closing not delivered");
        }
    }
}

/// Ends the breakouts of a main room that is being deleted (its sockets and sessions go anyway).
pub fn end_for_deleted_room(state: &SharedState, room: &str) {
    finish(state, room, "deleted");
}

/// Ends the breakouts of a main room whose event ended.
pub fn end_for_ended_event(state: &SharedState, room: &str) {
    finish(state, room, "event_ended");
}

/// Ends the run of main room `parent`, if any: everyone comes back. `false` if none ran.
fn finish(state: &SharedState, parent: &str, reason: &'static str) -> bool {
    let Some(running) = state.breakouts.lock().remove(parent) else {
        return false;
    };
    // The timer ends itself; the host's end stops it.
    if reason != "timer"
        && let Some(timer) = &running.timer
    {
        timer.abort();
    }
    let now_s = unix_now_s();
    for breakout in &running.run.rooms {
        let id = &breakout.id;
        state.interaction.close_all(id, &json!({"type": "breakout_ended", "breakout": id, "reason": reason}));
        state.ingest.close_room(id);
        let tokens: Vec<(Option<&str>, Option<&str>)> =
            running.members.values().filter(|a| a.room == *id).map(|a| (Some(a.jti.as_str()), None)).collect();
        if let Err(err) = state.access.revoke_all(id, &tokens, now_s) {
            tracing::error!(room = %id, %err, "the breakout room's tokens could not be revoked");
        }
        state.rooms.remove_transient(id);
        if let Err(err) = state.interaction.remove_room(id) {
            tracing::warn!(room = %id, %err, "a breakout room's chat could not be deleted");
        }
    }
    let ended = json!({"type": "breakout_ended", "reason": reason});
    if let Some(main) = state.rooms.get(parent)
        && let Err(err) = state.interaction.announce(parent, &main.hls, &ended)
    {
        tracing::error!(room = %parent, %err, "breakout_ended not delivered");
    }
    tracing::info!(room = %parent, run = %running.run.tag, reason, "breakout rooms closed: everyone is back");
    true
}
