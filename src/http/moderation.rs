//! Moderation of the stage (host): mute a presenter, turn their video off, or take them off the
//! stage.
//! - `POST /api/rooms/{room}/presenters/{presenter}/audio` `{"muted": true|false}` → 200
//!   `{"presenter", "muted"}`: a muted presenter's audio becomes silence for WHEP viewers and
//!   the program alike (the packets go on, with their timing), across reconnections, until
//!   unmuted; the room's WebSockets are told `{"type":"presenter_audio","presenter","muted"}`.
//! - `POST /api/rooms/{room}/presenters/{presenter}/video` `{"off": true|false}` → 200
//!   `{"presenter", "video_off"}`: while off, the presenter's pictures are replaced by black ones
//!   (same timestamps and keyframes, in their own parameter sets: `ingest::video_off`) for WHEP
//!   viewers and the program alike, from their next frame; on again from their next keyframe
//!   (asked for at once); across reconnections, until turned on. The room's WebSockets are
//!   told `{"type":"presenter_video","presenter","off"}`.
//! - `DELETE /api/rooms/{room}/presenters/{presenter}` → 204: the presenter's WHIP session
//!   ends (the program falls back to the next live presenter); the WebSockets are told
//!   `{"type":"presenter_removed","presenter"}`. To keep them off, revoke their signed token
//!   (`/tokens/revoke`); the room's publish key stays valid until the room is deleted.
//! - `GET /api/rooms/{room}/invitations` → 200 `{"invitations":[{"presenter","name","jti",
//!   "expires_at"}]}`: the stage invitations whose token still publishes (not expired, not
//!   revoked), as the moderators' `stage_invitation_sent` said them, so a studio opened (or
//!   reloaded) later can still revoke them. Kept in memory: a restart forgets the list (the
//!   tokens stay valid until they expire or are revoked by participant).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SharedState;
use super::api::room_or_404;
use super::auth;
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioRequest {
    muted: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoRequest {
    off: bool,
}

fn unknown_presenter(presenter: &str) -> Problem {
    Problem::not_found("unknown_presenter", format!("no presenter {presenter:?} on this stage"))
}

/// A stage switch of one presenter (`/audio`, `/video`): the host, the room, its live feed and
/// the request.
async fn presenter_switch<T: serde::de::DeserializeOwned>(
    state: &SharedState,
    (room, presenter): (&str, &str),
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> ApiResult<(std::sync::Arc<crate::rooms::Room>, std::sync::Arc<townhall_ingest::stage::Feed>, T)> {
    let room = room_or_404(state, room)?;
    auth::require_host(state, &room, headers)?;
    let request: T = parse_json(&read_body(state, body).await?, expected)?;
    let feed = room.stage.feed(presenter).ok_or_else(|| unknown_presenter(presenter))?;
    Ok((room, feed, request))
}

pub async fn set_audio(
    State(state): State<SharedState>,
    Path((room, presenter)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let (room, feed, request): (_, _, AudioRequest) =
        presenter_switch(&state, (&room, &presenter), &headers, body, r#"{"muted": true|false}"#).await?;
    feed.set_audio_muted(request.muted);
    tracing::info!(room = %room.record.id, %presenter, muted = request.muted, "presenter audio");
    let notice = json!({"type": "presenter_audio", "presenter": presenter, "muted": request.muted});
    state.interaction.announce(&room.record.id, &room.hls, &notice)?;
    Ok(Json(json!({"presenter": presenter, "muted": request.muted})))
}

pub async fn set_video(
    State(state): State<SharedState>,
    Path((room, presenter)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let (room, feed, request): (_, _, VideoRequest) =
        presenter_switch(&state, (&room, &presenter), &headers, body, r#"{"off": true|false}"#).await?;
    feed.set_video_off(request.off);
    tracing::info!(room = %room.record.id, %presenter, off = request.off, "presenter video");
    let notice = json!({"type": "presenter_video", "presenter": presenter, "off": request.off});
    state.interaction.announce(&room.record.id, &room.hls, &notice)?;
    Ok(Json(json!({"presenter": presenter, "video_off": request.off})))
}

pub async fn invitations(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let room = room_or_404(&state, &room)?;
    auth::require_host(&state, &room, &headers)?;
    let hub = state.interaction.hub(&room.record.id, &room.hls)?;
    Ok(Json(json!({ "invitations": hub.invitations(crate::access::unix_now_s()) })))
}

pub async fn remove(
    State(state): State<SharedState>,
    Path((room, presenter)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let room = room_or_404(&state, &room)?;
    auth::require_host(&state, &room, &headers)?;
    let sessions: Vec<_> = state
        .ingest
        .room_sessions(&room.record.id)
        .into_iter()
        .filter(|s| s.presenter.as_deref() == Some(presenter.as_str()))
        .collect();
    if sessions.is_empty() {
        return Err(unknown_presenter(&presenter));
    }
    for session in sessions {
        session.close();
    }
    tracing::info!(room = %room.record.id, %presenter, "presenter removed from the stage");
    state.interaction.announce(
        &room.record.id,
        &room.hls,
        &json!({"type": "presenter_removed", "presenter": presenter}),
    )?;
    Ok(StatusCode::NO_CONTENT)
}
