//! A webinar's lifecycle and waiting room over HTTP (host or admin), around the pure rules of
//! [`crate::lifecycle`] and [`crate::waiting_room`]:
//! - `POST /api/rooms/{room}/phase` `{"phase":"green_room"|"live"|"ended"}` → 200 the room;
//!   409 `bad_transition` backwards. Going live starts the program (LL-HLS) and lets waiting
//!   attendees in (unless the room admits by hand); ending closes every publisher, ends the
//!   live playlist and makes the replay VOD. Every WebSocket of the room is told
//!   `{"type":"phase","phase":…}`.
//! - `POST /api/rooms/{room}/end`: the same as `{"phase":"ended"}`.
//! - `GET /api/rooms/{room}/waiting` → `{"waiting_room":bool,"count":N,"waiting":[{participant,
//!   name,since_ms,reason}]}`; `PUT /api/rooms/{room}/waiting` `{"waiting_room":bool}` turns
//!   admission by hand on or off; `POST /api/rooms/{room}/waiting/admit`
//!   `{"participants":[…]}` or `{"all":true}` → `{"admitted":[…]}` (400 `not_waiting` names
//!   anyone who is not waiting).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SharedState;
use super::api::{RoomView, base_url, is_admin, room_or_404, view};
use super::auth;
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;
use crate::access::unix_now_s;
use crate::lifecycle::{Phase, PhaseError, Transition, transition};
use crate::rooms::{Room, RoomError};
use crate::webhooks::EventType;

fn storage(err: RoomError) -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", err.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseRequest {
    phase: Phase,
}

/// `POST /api/rooms/{room}/phase`.
pub async fn set_phase(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<RoomView>> {
    let room = room_or_404(&state, &id)?;
    auth::require_host(&state, &room, &headers)?;
    let request: PhaseRequest =
        parse_json(&read_body(&state, body).await?, r#"{"phase": "green_room" | "live" | "ended"}"#)?;
    change_phase(&state, &room, request.phase).await?;
    Ok(Json(view(&state, &room, &base_url(&state, &headers), true, is_admin(&state, &headers))))
}

/// `POST /api/rooms/{room}/end` (host or admin): the event ends.
pub async fn end_event(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<RoomView>> {
    let room = room_or_404(&state, &id)?;
    auth::require_host(&state, &room, &headers)?;
    change_phase(&state, &room, Phase::Ended).await?;
    Ok(Json(view(&state, &room, &base_url(&state, &headers), true, is_admin(&state, &headers))))
}

/// Moves `room` to `to` (checked and stored at once, so two hosts clicking "go live" start
/// one program), then does what the move asks.
pub async fn change_phase(state: &SharedState, room: &std::sync::Arc<Room>, to: Phase) -> Result<(), Problem> {
    let id = &room.record.id;
    let now = unix_now_s();
    let moved = state
        .rooms
        .update(id, |s| -> Result<Transition, PhaseError> {
            let step = transition(s.phase, to)?;
            s.phase = to;
            match step {
                Transition::GoLive => s.live_at = Some(now),
                Transition::End => s.ended_at = Some(now),
                Transition::Unchanged | Transition::OpenGreenRoom => {}
            }
            Ok(step)
        })
        .map_err(storage)?
        .map_err(|e| Problem::new(StatusCode::CONFLICT, "bad_transition", e.to_string()))?;
    match moved {
        Transition::Unchanged => return Ok(()),
        Transition::OpenGreenRoom => {}
        Transition::GoLive => state.start_program(room, None),
        Transition::End => {
            super::breakouts::end_for_ended_event(state, id);
            state.ingest.close_room(id);
            state.end_program(room).await;
            state.webhooks.emit(EventType::RoomEnded, json!({ "room": id }));
        }
    }
    tracing::info!(room = %id, phase = %to, "phase");
    state.interaction.announce(id, &room.hls, &json!({"type": "phase", "phase": to}))?;
    Ok(())
}

/// `GET /api/rooms/{room}/waiting`.
pub async fn waiting(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let room = room_or_404(&state, &id)?;
    auth::require_host(&state, &room, &headers)?;
    Ok(Json(waiting_view(&room, usize::MAX)))
}

/// What moderators see of the waiting room: the first `limit` who wait (longest first) and how
/// many wait in all.
pub fn waiting_view(room: &Room, limit: usize) -> Value {
    let mut list = room.lobby.waiting.lock().unwrap_or_else(|e| e.into_inner()).list();
    let count = list.len();
    list.truncate(limit);
    json!({ "waiting_room": room.state().waiting_room, "count": count, "waiting": list })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitingSettings {
    waiting_room: bool,
}

/// `PUT /api/rooms/{room}/waiting`.
pub async fn set_waiting_room(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let room = room_or_404(&state, &id)?;
    auth::require_host(&state, &room, &headers)?;
    let request: WaitingSettings = parse_json(&read_body(&state, body).await?, r#"{"waiting_room": true | false}"#)?;
    state.rooms.update(&id, |s| s.waiting_room = request.waiting_room).map_err(storage)?;
    tracing::info!(room = %id, waiting_room = request.waiting_room, "waiting room");
    Ok(Json(waiting_view(&room, usize::MAX)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdmitRequest {
    #[serde(default)]
    participants: Vec<String>,
    #[serde(default)]
    all: bool,
}

/// `POST /api/rooms/{room}/waiting/admit`.
pub async fn admit(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let room = room_or_404(&state, &id)?;
    auth::require_host(&state, &room, &headers)?;
    let request: AdmitRequest =
        parse_json(&read_body(&state, body).await?, r#"{"participants": ["<id>", …]} or {"all": true}"#)?;
    if request.all != request.participants.is_empty() {
        return Err(Problem::bad_request("bad_admission", "give either participants (a non-empty list) or all: true"));
    }
    let admitted = {
        let waiting = room.lobby.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if request.all {
            waiting.everyone()
        } else {
            waiting.admissible(&request.participants).map_err(|e| Problem::bad_request("not_waiting", e.to_string()))?
        }
    };
    let list: Vec<String> = admitted.iter().cloned().collect();
    state.rooms.update(&id, |s| s.admitted.extend(admitted)).map_err(storage)?;
    tracing::info!(room = %id, count = list.len(), "admitted from the waiting room");
    Ok(Json(json!({ "admitted": list })))
}
