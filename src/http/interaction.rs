//! The interaction API over plain HTTP, beside the WebSocket (`ws.rs`): for scripts, for the
//! replay page (which shows the log on the replay's clock) and for exports.
//!
//! - `GET /api/rooms/{room}/events?since=N&limit=M`: the log after `seq` N (at most M, default
//!   and maximum 1000) as the bearer sees it (no token: as any attendee); `{"events":[…],"more":…}`.
//! - `GET /api/rooms/{room}/chat?before=SEQ&limit=M`: a page of chat history (≤ 100), newest
//!   last; `{"messages":[…],"more":…}`.
//! - `GET /api/rooms/{room}/questions/unanswered` (host token; `?format=csv` for CSV).
//! - `POST /api/rooms/{room}/commands` (bearer: host, publish or attendee identity token;
//!   body: one command as on the WebSocket) → `{"events":[…],"replayed":…}`, or the problem
//!   with the command's error code and status.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use townhall_interaction::{Actor, Request, Role};

use super::SharedState;
use super::api::room_or_404;
use super::auth;
use super::problem::{ApiResult, Problem};
use super::signalling::read_body;
use crate::interaction::RoomHub;
use crate::rooms::Room;

/// Most events per `events` page.
pub const EVENTS_PAGE_MAX: usize = 1_000;

pub(super) fn query<T: serde::de::DeserializeOwned + Default>(uri: &Uri, keys: &str) -> ApiResult<T> {
    if uri.query().is_none_or(str::is_empty) {
        return Ok(T::default());
    }
    Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| Problem::bad_request("bad_query", format!("{}: the parameters are {keys}", e.body_text())))
}

/// The room, who asks and the room's hub.
fn room_viewer_hub(
    state: &SharedState,
    room: &str,
    headers: &HeaderMap,
    token_required: bool,
) -> ApiResult<(Arc<Room>, Actor, Arc<RoomHub>)> {
    let room = room_or_404(state, room)?;
    let viewer = viewer(state, &room, headers, token_required)?;
    let hub = state.interaction.hub(&room.record.id, &room.hls)?;
    Ok((room, viewer, hub))
}

/// Who asks: the bearer's identity in this room, or any attendee without a token.
fn viewer(state: &SharedState, room: &Room, headers: &HeaderMap, required: bool) -> ApiResult<Actor> {
    match auth::caller(state, room, headers, None)? {
        Some(caller) => Ok(caller.actor),
        None if required => Err(Problem::unauthorized(
            "missing bearer token: send the host or publish key, or a signed token of this room",
        )),
        None => Ok(Actor::new("", "", Role::Attendee)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

pub async fn events(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q: EventsQuery = query(&uri, "since and limit")?;
    let (_, viewer, hub) = room_viewer_hub(&state, &room, &headers, false)?;
    let limit = q.limit.unwrap_or(EVENTS_PAGE_MAX).clamp(1, EVENTS_PAGE_MAX);
    let (events, more) = hub.events_since(&viewer, q.since.unwrap_or(0), limit)?;
    Ok(Json(json!({"events": events, "more": more})).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

pub async fn chat(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q: ChatQuery = query(&uri, "before and limit")?;
    let (_, viewer, hub) = room_viewer_hub(&state, &room, &headers, false)?;
    Ok(Json(hub.history(&viewer, q.before, q.limit.unwrap_or(50).clamp(1, 100))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    pub format: Option<String>,
}

/// What an export's `?format=` asks for.
pub(super) enum ExportFormat {
    Json,
    Csv,
}

impl ExportQuery {
    /// The format asked for (JSON when absent); 400 `bad_query` for any other.
    pub fn export_format(&self) -> Result<ExportFormat, Problem> {
        match self.format.as_deref() {
            None | Some("json") => Ok(ExportFormat::Json),
            Some("csv") => Ok(ExportFormat::Csv),
            Some(other) => Err(Problem::bad_request("bad_query", format!("format={other:?}: use json or csv"))),
        }
    }
}

/// A CSV export (RFC 4180), as a download named `file`.
pub(super) fn csv_download(file: &str, csv: String) -> Response {
    let disposition = format!("attachment; filename=\"{file}\"");
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)], csv)
        .into_response()
}

pub async fn unanswered(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q: ExportQuery = query(&uri, "format")?;
    let room = room_or_404(&state, &room)?;
    auth::require_host(&state, &room, &headers)?;
    let hub = state.interaction.hub(&room.record.id, &room.hls)?;
    match q.export_format()? {
        ExportFormat::Json => Ok(Json(json!({"questions": hub.unanswered()})).into_response()),
        ExportFormat::Csv => Ok(csv_download(&format!("{}-unanswered.csv", room.record.id), hub.unanswered_csv())),
    }
}

pub async fn command(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (_, actor, hub) = room_viewer_hub(&state, &room, &headers, true)?;
    let bytes = read_body(&state, body).await?;
    let request = Request::from_slice(&bytes)?;
    let handled = hub.handle(&actor, request)?;
    Ok((StatusCode::OK, Json(json!({"events": handled.events, "replayed": handled.replayed}))).into_response())
}
