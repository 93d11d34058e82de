//! Signed tokens of a room ([`crate::access`]):
//! - `POST /api/rooms/{room}/tokens` (admin or host) `{"role": "host"|"presenter"|"attendee",
//!   "name": "…", "participant_id"?: "…", "ttl_s"?: N}` → 201 `{"token", "jti", "room", "role",
//!   "participant_id", "name", "expires_at"}`;
//! - `POST /api/rooms/{room}/tokens/revoke` (admin or host) `{"jti": "…"}` or
//!   `{"participant_id": "…"}` → 204: that token, or every token of that participant, is refused
//!   from now on, and the WebSockets opened with it (or by that participant) are closed with
//!   `{"type":"removed"}` and code 4003; the WHIP sessions it opened end, with
//!   `presenter_removed` to the room; a banned participant's raised hand is lowered.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use townhall_interaction::{Command, Request, Role};

use super::SharedState;
use super::api::room_or_404;
use super::auth;
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;
use crate::access::{Access, display_name, unix_now_s};
use crate::interaction::Removal;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    role: Role,
    name: String,
    participant_id: Option<String>,
    ttl_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    jti: Option<String>,
    participant_id: Option<String>,
}

pub async fn issue(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &room)?;
    auth::require_host(&state, &room, &headers)?;
    let request: IssueRequest =
        parse_json(&read_body(&state, body).await?, r#"{"role", "name", "participant_id"?, "ttl_s"?}"#)?;
    let name = display_name(Some(&request.name))?.unwrap_or_default();
    let participant = Access::participant_id(request.participant_id.as_deref(), request.role)?;
    let max = state.access.max_ttl_s;
    let ttl = request.ttl_s.unwrap_or(max);
    if ttl == 0 || ttl > max {
        return Err(Problem::bad_request(
            "bad_ttl",
            format!("ttl_s must be between 1 and {max} (server.token_max_ttl_s)"),
        ));
    }
    let (token, claims) = state.access.issue(&room.record.id, request.role, &participant, &name, ttl, unix_now_s());
    tracing::info!(room = %room.record.id, participant = %claims.sub, role = ?claims.role, jti = %claims.jti, "token issued");
    let body = json!({
        "token": token,
        "jti": claims.jti,
        "room": claims.room,
        "role": claims.role,
        "participant_id": claims.sub,
        "name": claims.name,
        "expires_at": claims.exp,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Ends the WHIP sessions that `removal` takes away ([`crate::session_owners`]), announced as
/// the host's *Remove* is (`presenter_removed`).
fn end_sessions(state: &SharedState, room: &crate::rooms::Room, removal: &Removal) -> ApiResult<()> {
    let id = &room.record.id;
    for session in state.session_owners.revoked(id, removal).iter().filter_map(|s| state.ingest.session(s)) {
        session.close();
        tracing::info!(room = %id, session = %session.id, presenter = ?session.presenter, "session ended: token revoked");
        if let Some(presenter) = &session.presenter {
            let notice = json!({"type": "presenter_removed", "presenter": presenter});
            state.interaction.announce(id, &room.hls, &notice)?;
        }
    }
    Ok(())
}

pub async fn revoke(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let room = room_or_404(&state, &room)?;
    let host = auth::require_host(&state, &room, &headers)?;
    let request: RevokeRequest =
        parse_json(&read_body(&state, body).await?, r#"{"jti": "…"} or {"participant_id": "…"}"#)?;
    if request.jti.is_none() == request.participant_id.is_none() {
        return Err(Problem::bad_request("malformed_json", "give exactly one of jti and participant_id"));
    }
    state
        .access
        .revoke(&room.record.id, request.jti.as_deref(), request.participant_id.as_deref(), unix_now_s())
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?;
    tracing::info!(room = %room.record.id, jti = ?request.jti, participant = ?request.participant_id, "token revoked");
    let removal = match (request.jti, request.participant_id) {
        (Some(jti), _) => Removal::Token(jti),
        (None, participant) => Removal::Participant(participant.unwrap_or_default()),
    };
    end_sessions(&state, &room, &removal)?;
    if let Removal::Participant(participant) = &removal {
        // A banned participant's raised hand goes with them (nothing happens without one).
        let lower = Command::HandClear { participant: Some(participant.clone()) };
        state
            .interaction
            .hub(&room.record.id, &room.hls)?
            .handle(&host.actor, Request { nonce: None, command: lower })?;
    }
    state.interaction.remove(&room.record.id, removal);
    Ok(StatusCode::NO_CONTENT)
}
