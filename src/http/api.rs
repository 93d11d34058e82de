//! The REST API for rooms: create, list, read, delete, and choose the program's presenter.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SharedState;
use super::auth;
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;
use crate::lifecycle::Phase;
use crate::registration::{DEFAULT_DURATION_MIN, EventDetails, RegistrationError, RegistrationSettings};
use crate::rooms::{Room, RoomError, RoomState};
use crate::webhooks::EventType;
use townhall_origin::object_store::{DiskSink, ObjectSink};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// Optional id (1–64 of a-z, A-Z, 0-9, '-', '_'); random when absent.
    pub id: Option<String>,
    /// Display name; the id when absent.
    pub name: Option<String>,
    /// Where the webinar starts: `scheduled` (attendees wait, nothing is broadcast until the
    /// host goes live), `green_room` (presenters on stage, nothing broadcast) or `live` (the
    /// program runs at once: an ad-hoc room). Default: `scheduled` when `starts_at` is given,
    /// else `live`.
    pub phase: Option<Phase>,
    /// Attendees wait until the host lets them in, even once live. Default false.
    #[serde(default)]
    pub waiting_room: bool,
    /// When the event starts (RFC 3339).
    pub starts_at: Option<String>,
    /// Minutes; 60 when absent.
    pub duration_min: Option<u32>,
    pub description: Option<String>,
    /// Who may register and what they are asked ([`RegistrationSettings`]).
    pub registration: Option<RegistrationSettings>,
}

impl CreateRoom {
    /// The event's details it asks for, checked.
    fn details(&mut self) -> Result<EventDetails, RegistrationError> {
        EventDetails {
            starts_at: self.starts_at.take(),
            duration_min: self.duration_min.unwrap_or(DEFAULT_DURATION_MIN),
            description: self.description.take(),
            registration: self.registration.take().unwrap_or_default(),
        }
        .validated()
    }
}

#[derive(Debug, Serialize)]
pub struct PresenterView {
    pub name: String,
    pub live: bool,
    /// Muted by a moderator (`POST /api/rooms/{room}/presenters/{name}/audio`).
    pub muted: bool,
    /// Video turned off by a moderator (`POST /api/rooms/{room}/presenters/{name}/video`).
    pub video_off: bool,
}

#[derive(Debug, Serialize)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_token: Option<String>,
    pub whip_url: String,
    pub whep_url: String,
    pub hls_url: String,
    pub publish_page: String,
    pub stage_page: String,
    pub watch_page: String,
    /// The attendees' registration form (web/register.html).
    pub register_page: String,
    pub replay_url: String,
    pub program: Option<String>,
    pub presenters: Vec<PresenterView>,
    /// `scheduled`, `green_room`, `live` or `ended` (crate::lifecycle).
    pub phase: Phase,
    /// Attendees are let in by hand.
    pub waiting_room: bool,
    /// How many attendees wait to be let in.
    pub waiting: usize,
    /// Distinct participants connected to the room's WebSocket now.
    pub participants: usize,
    /// `starts_at`, `duration_min`, `description`, `registration`.
    #[serde(flatten)]
    pub details: EventDetails,
    /// Where attendees register (`POST`).
    pub registration_url: String,
}

/// The base URL for links: `server.public_url`, else the request's Host.
pub fn base_url(state: &SharedState, headers: &HeaderMap) -> String {
    if !state.config.server.public_url.is_empty() {
        return state.config.server.public_url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| state.config.server.listen.to_string());
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

pub(super) fn view(state: &SharedState, room: &Room, base: &str, with_tokens: bool, with_host_token: bool) -> RoomView {
    let id = &room.record.id;
    let stage = &room.stage;
    let room_state = room.state();
    RoomView {
        id: id.clone(),
        name: room.record.name.clone(),
        created_at: room.record.created_at,
        publish_token: with_tokens.then(|| room.record.publish_token.clone()),
        host_token: with_host_token.then(|| room.record.host_token.clone()),
        whip_url: format!("{base}/whip/{id}"),
        whep_url: format!("{base}/whep/{id}"),
        hls_url: format!("{base}/hls/{id}/index.m3u8"),
        publish_page: format!("{base}/publish/{id}"),
        stage_page: format!("{base}/stage/{id}"),
        watch_page: format!("{base}/watch/{id}"),
        register_page: format!("{base}/register/{id}"),
        replay_url: format!("{base}/hls/{id}/replay.m3u8"),
        program: stage.program(),
        presenters: stage
            .live_feeds()
            .into_iter()
            .map(|f| PresenterView {
                name: f.presenter.clone(),
                live: true,
                muted: f.is_audio_muted(),
                video_off: f.is_video_off(),
            })
            .collect(),
        phase: room_state.phase,
        waiting_room: room_state.waiting_room,
        waiting: room.lobby.waiting.lock().unwrap_or_else(|e| e.into_inner()).count(),
        participants: state.presence.count(id),
        details: room.record.details.clone(),
        registration_url: format!("{base}/api/rooms/{id}/registrations"),
    }
}

pub(super) fn room_or_404(state: &SharedState, id: &str) -> ApiResult<std::sync::Arc<Room>> {
    state.rooms.get(id).ok_or_else(|| Problem::not_found("unknown_room", format!("no room {id:?}")))
}

pub(super) fn is_admin(state: &SharedState, headers: &HeaderMap) -> bool {
    auth::bearer(headers).is_some_and(|t| auth::constant_time_eq(t, &state.admin_token))
}

/// `POST /api/rooms` (admin): 201 with the room, its tokens and URLs.
pub async fn create_room(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    auth::require(&headers, &[&state.admin_token], "admin token")?;
    let bytes = read_body(&state, body).await?;
    let mut request: CreateRoom = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateRoom::default()
    } else {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the room as Content-Type: application/json (or an empty body)",
            ));
        }
        parse_json(&bytes, "a room as JSON")?
    };
    let details = request.details()?;
    let default_phase = if details.starts_at.is_some() { Phase::Scheduled } else { Phase::Live };
    let phase = request.phase.unwrap_or(default_phase);
    if phase == Phase::Ended {
        return Err(Problem::bad_request("bad_phase", "a room starts scheduled, green_room or live"));
    }
    let mut initial = RoomState::new(phase, request.waiting_room);
    initial.live_at = (phase == Phase::Live).then(crate::access::unix_now_s);
    let room = state.rooms.create_with(request.id, request.name, details, initial).map_err(|e| match e {
        RoomError::Taken(_) => Problem::new(StatusCode::CONFLICT, "room_exists", e.to_string()),
        RoomError::InvalidId(_) => Problem::bad_request("invalid_room_id", e.to_string()),
        RoomError::Io(_) | RoomError::Unknown(_) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
        }
    })?;
    if phase.broadcasts() {
        state.start_program(&room, None);
    }
    tracing::info!(room = %room.record.id, "room created");
    let data = json!({ "room": room.record.id, "name": room.record.name });
    state.webhooks.emit(EventType::RoomCreated, data);
    let base = base_url(&state, &headers);
    let location = format!("/api/rooms/{}", room.record.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&state, &room, &base, true, true)))
        .into_response())
}

/// `GET /api/rooms` (admin).
pub async fn list_rooms(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Vec<RoomView>>> {
    auth::require(&headers, &[&state.admin_token], "admin token")?;
    let base = base_url(&state, &headers);
    Ok(Json(state.rooms.list().iter().map(|r| view(&state, r, &base, true, true)).collect()))
}

/// `GET /api/rooms/{room}` (admin or the room's host token).
pub async fn get_room(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<RoomView>> {
    let room = room_or_404(&state, &id)?;
    let admin = auth::require_host(&state, &room, &headers)?.admin;
    Ok(Json(view(&state, &room, &base_url(&state, &headers), true, admin)))
}

/// `DELETE /api/rooms/{room}` (admin): ends every session of the room.
pub async fn delete_room(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    auth::require(&headers, &[&state.admin_token], "admin token")?;
    match state.rooms.delete(&id) {
        Ok(Some(room)) => {
            super::breakouts::end_for_deleted_room(&state, &id);
            state.ingest.close_room(&id);
            state.stop_program(&room);
            if let Err(err) = state.interaction.remove_room(&id) {
                tracing::error!(room = %id, %err, "the room's interaction events could not be removed");
            }
            if let Err(err) = state.registrations.delete_room(&id) {
                tracing::error!(room = %id, %err, "the room's registrations could not be removed");
            }
            if let Err(err) = state.reports.delete_room(&id) {
                tracing::error!(room = %id, %err, "the room's attendance could not be removed");
            }
            // Its replay, recordings and everything else it stored go with it.
            if let Some(dir) = room.hls.replay_dir.clone()
                && let Err(err) = DiskSink::new(dir).delete_prefix("").await
            {
                tracing::error!(room = %id, %err, "the room's stored media could not be removed");
            }
            if let Some((sink, _)) = &state.s3 {
                let (sink, room_id) = (sink.clone(), id.clone());
                tokio::spawn(async move {
                    match sink.delete_prefix(&format!("{room_id}/")).await {
                        Ok(count) => tracing::info!(room = %room_id, count, "the room's objects were removed from S3"),
                        Err(err) => {
                            tracing::error!(room = %room_id, %err, "the room's objects could not be removed from S3")
                        }
                    }
                });
            }
            tracing::info!(room = %id, "room deleted");
            state.webhooks.emit(EventType::RoomDeleted, json!({ "room": id }));
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(None) => Err(Problem::not_found("unknown_room", format!("no room {id:?}"))),
        Err(e) => Err(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())),
    }
}

/// The body of `PATCH /api/rooms/{room}`: what is given changes, the rest stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    pub name: Option<String>,
    pub starts_at: Option<String>,
    pub duration_min: Option<u32>,
    /// `""` removes the description.
    pub description: Option<String>,
    pub registration: Option<RegistrationSettings>,
}

/// `PATCH /api/rooms/{room}` (host or admin): changes the name and the event's details. Links
/// and tokens already handed out stay as they are (a registrant's token keeps its expiry);
/// calendar files made from now on carry the new details.
pub async fn update_room(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<RoomView>> {
    let room = room_or_404(&state, &id)?;
    let admin = auth::require_host(&state, &room, &headers)?.admin;
    let bytes = read_body(&state, body).await?;
    let request: UpdateRoom = parse_json(&bytes, "the room's changes as JSON")?;
    let name = match request.name.map(|n| n.trim().to_owned()) {
        Some(n) if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) => {
            return Err(Problem::bad_request("invalid_name", "name: 1 to 200 characters, no control characters"));
        }
        other => other,
    };
    let mut details = room.record.details.clone();
    if let Some(starts_at) = request.starts_at {
        details.starts_at = Some(starts_at);
    }
    if let Some(duration) = request.duration_min {
        details.duration_min = duration;
    }
    if let Some(description) = request.description {
        details.description = Some(description).filter(|d| !d.is_empty());
    }
    if let Some(registration) = request.registration {
        details.registration = registration;
    }
    let details = details.validated()?;
    let updated = state
        .rooms
        .update_record(&id, |record| {
            if let Some(name) = name {
                record.name = name;
            }
            record.details = details;
        })
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?
        .ok_or_else(|| Problem::not_found("unknown_room", format!("no room {id:?}")))?;
    tracing::info!(room = %id, "room details changed");
    Ok(Json(view(&state, &updated, &base_url(&state, &headers), true, admin)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetProgram {
    pub publisher: String,
}

/// `POST /api/rooms/{room}/program` (host or admin): `{"publisher": name}` goes on the program.
pub async fn set_program(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<RoomView>> {
    let room = room_or_404(&state, &id)?;
    auth::require_host(&state, &room, &headers)?;
    let bytes = read_body(&state, body).await?;
    let request: SetProgram = parse_json(&bytes, r#"{"publisher": "<name>"}"#)?;
    room.stage.set_program(&request.publisher)?;
    tracing::info!(room = %id, publisher = %request.publisher, "program switched");
    Ok(Json(view(&state, &room, &base_url(&state, &headers), true, is_admin(&state, &headers))))
}
