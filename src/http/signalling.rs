//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) over HTTP: POST an offer, get a session
//! resource; PATCH it with trickle-ICE or ICE-restart fragments (RFC 8840); DELETE it.
//!
//! Decided here:
//! - WHIP needs the room's publish (or host) token as bearer, on POST, PATCH and DELETE.
//!   WHEP is open: anyone with the room link may watch the stage (a breakout room's stage
//!   needs a token of that room, [`crate::access`]); the session URL carries an unguessable
//!   128-bit id.
//! - `POST /whip/{room}?presenter=NAME` names the presenter (default `main`); a new session for
//!   a name that is live replaces the old one.
//! - PATCH needs `If-Match` (428 without): the session's ETag, or `*` for trickle only
//!   (RFC 9725 §4.3.1: an ICE restart must name the ETag). A wrong ETag is 412.
//! - DELETE answers 200 (RFC 9725 §4.2).

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use townhall_ingest::{PlaySource, sdp};

use super::SharedState;
use super::auth;
use super::problem::{ApiResult, Problem};
use crate::rooms::{Room, is_valid_name};

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Reads a request body up to `server.max_body_bytes`; 413 beyond.
pub async fn read_body(state: &SharedState, body: Body) -> ApiResult<Bytes> {
    let limit = state.config.server.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes (server.max_body_bytes)"),
        )
    })
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> ApiResult<()> {
    if content_type_is(headers, expected) {
        return Ok(());
    }
    let got = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none");
    Err(Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("expected Content-Type: {expected}, got {got}"),
    ))
}

fn room_or_404(state: &SharedState, id: &str) -> ApiResult<std::sync::Arc<Room>> {
    state.rooms.get(id).ok_or_else(|| Problem::not_found("unknown_room", format!("no room {id:?}")))
}

fn utf8(bytes: &Bytes, what: &str) -> ApiResult<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Problem::bad_request("malformed_sdp", format!("the {what} is not UTF-8 text")))
}

/// `Link: <url>; rel="ice-server"` values for the configured STUN/TURN servers (RFC 9725 §4.6).
fn ice_server_links(state: &SharedState) -> Vec<HeaderValue> {
    let mut links = Vec::new();
    for server in &state.config.webrtc.ice_servers {
        for url in &server.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if !server.username.is_empty() {
                link += &format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    server.username.replace('"', ""),
                    server.credential.replace('"', "")
                );
            }
            if let Ok(value) = HeaderValue::from_str(&link) {
                links.push(value);
            }
        }
    }
    links
}

/// The presenter named by `?presenter=`, `main` by default.
fn presenter_param(query: Option<&str>) -> ApiResult<String> {
    let mut presenter = None;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "presenter" => presenter = Some(value.to_owned()),
            _ => {
                return Err(Problem::bad_request(
                    "unknown_parameter",
                    format!("unknown query parameter {key:?}; only \"presenter\" is accepted"),
                ));
            }
        }
    }
    let presenter = presenter.unwrap_or_else(|| "main".to_owned());
    if !is_valid_name(&presenter) {
        return Err(Problem::bad_request(
            "invalid_presenter",
            format!("invalid presenter name {presenter:?}: use 1 to 64 of A-Z, a-z, 0-9, '-' and '_'"),
        ));
    }
    Ok(presenter)
}

fn created(state: &SharedState, location: String, etag: String, answer: String) -> Response {
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert("accept-patch", HeaderValue::from_static(SDPFRAG));
    for link in ice_server_links(state) {
        headers.append(header::LINK, link);
    }
    response
}

/// `POST /whip/{room}`: a presenter publishes.
pub async fn whip_post(
    State(state): State<SharedState>,
    Path(room_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &room_id)?;
    let caller = auth::require_publisher(&state, &room, &headers)?;
    if !room.phase().takes_publishers() {
        return Err(Problem::new(StatusCode::CONFLICT, "room_ended", "the event ended: nobody publishes in it again"));
    }
    let presenter = presenter_param(query.as_deref())?;
    require_content_type(&headers, SDP)?;
    let offer = utf8(&read_body(&state, body).await?, "SDP offer")?;
    let answered = state.ingest.publish(&room.stage, &presenter, &offer).inspect_err(|e| {
        tracing::info!(room = %room_id, %presenter, error = %e, "WHIP offer refused");
    })?;
    tracing::info!(room = %room_id, %presenter, session = %answered.session.id, "WHIP session created");
    own(&state, &answered.session, &caller);
    let location = format!("/whip/{room_id}/sessions/{}", answered.session.id);
    Ok(created(&state, location, answered.session.etag(), answered.answer))
}

async fn whep_post(
    state: SharedState,
    room_id: String,
    source: PlaySource,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &room_id)?;
    // Watching the stage needs no token once the room is live; a token that is sent must be
    // valid in this room. Before live (scheduled, green room) only hosts and presenters watch.
    let caller = auth::caller(&state, &room, &headers, None)?;
    let phase = room.phase();
    if !phase.broadcasts() && !caller.is_some_and(|c| c.role() != townhall_interaction::Role::Attendee) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not_live",
            format!("the room is {phase}: until it goes live only its hosts and presenters watch the stage"),
        ));
    }
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(Problem::bad_request("unknown_parameter", "WHEP takes no query parameters"));
    }
    require_content_type(&headers, SDP)?;
    let offer = utf8(&read_body(&state, body).await?, "SDP offer")?;
    let answered = state.ingest.play(&room.stage, source.clone(), &offer).inspect_err(|e| {
        tracing::info!(room = %room_id, error = %e, "WHEP offer refused");
    })?;
    tracing::info!(room = %room_id, ?source, session = %answered.session.id, "WHEP session created");
    let location = format!("/whep/{room_id}/sessions/{}", answered.session.id);
    Ok(created(&state, location, answered.session.etag(), answered.answer))
}

/// Notes who opened the WHIP `session` with a signed token (not a key), so that revoking it
/// ends the session ([`crate::session_owners`]).
fn own(state: &SharedState, session: &townhall_ingest::SessionHandle, caller: &crate::access::Caller) {
    if let Some(token_id) = caller.token_id.as_deref() {
        let running = |id: &str| state.ingest.session(id).is_some();
        state.session_owners.record(&session.id, &session.room, &caller.actor.participant_id, token_id, running);
    }
}

/// `POST /whep/{room}`: play the room's program.
pub async fn whep_post_program(
    State(state): State<SharedState>,
    Path(room_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    whep_post(state, room_id, PlaySource::Program, query, headers, body).await
}

/// `POST /whep/{room}/{presenter}`: play one presenter.
pub async fn whep_post_presenter(
    State(state): State<SharedState>,
    Path((room_id, presenter)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if !is_valid_name(&presenter) {
        return Err(Problem::bad_request("invalid_presenter", format!("invalid presenter name {presenter:?}")));
    }
    whep_post(state, room_id, PlaySource::Presenter(presenter), query, headers, body).await
}

/// Finds a session of the room, checking the endpoint kind and the token: WHIP sessions are
/// the publishers'; a WHEP session's URL is its capability (its id is unguessable), but a
/// token that is sent must still be valid, as everywhere.
fn session_for(
    state: &SharedState,
    uri: &axum::http::Uri,
    room_id: &str,
    session_id: &str,
    headers: &HeaderMap,
) -> ApiResult<std::sync::Arc<townhall_ingest::SessionHandle>> {
    let room = room_or_404(state, room_id)?;
    let whip = uri.path().starts_with("/whip/");
    if whip {
        auth::require_publisher(state, &room, headers)?;
    } else {
        auth::caller(state, &room, headers, None)?;
    }
    state
        .ingest
        .session(session_id)
        .filter(|s| s.room == room_id && s.presenter.is_some() == whip)
        .ok_or_else(|| Problem::not_found("unknown_session", format!("no session {session_id:?} in room {room_id:?}")))
}

/// `PATCH /wh{i,e}p/{room}/sessions/{id}`: trickle ICE or ICE restart (RFC 9725 §4.3).
pub async fn session_patch(
    State(state): State<SharedState>,
    OriginalUri(uri): OriginalUri,
    Path((room_id, session_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let session = session_for(&state, &uri, &room_id, &session_id, &headers)?;
    require_content_type(&headers, SDPFRAG)?;
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::trim) else {
        return Err(Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "if_match_required",
            "PATCH needs If-Match with the session's ETag (or \"*\" for trickle ICE)",
        ));
    };
    let etag = session.etag();
    if if_match != "*" && if_match != etag {
        return Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "etag_mismatch",
            format!("If-Match {if_match} does not match the session's ETag (an ICE restart may have changed it)"),
        ));
    }
    let text = String::from_utf8(read_body(&state, body).await?.to_vec())
        .map_err(|_| Problem::bad_request("malformed_fragment", "the SDP fragment is not UTF-8 text"))?;
    let fragment = sdp::parse_fragment(&text)?;
    let allow_restart = if_match != "*";
    match session.patch(fragment, allow_restart).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(answer_fragment) => {
            let mut response = (StatusCode::OK, answer_fragment).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            if let Ok(v) = HeaderValue::from_str(&session.etag()) {
                headers.insert(header::ETAG, v);
            }
            Ok(response)
        }
    }
}

/// `DELETE /wh{i,e}p/{room}/sessions/{id}`: end the session.
pub async fn session_delete(
    State(state): State<SharedState>,
    OriginalUri(uri): OriginalUri,
    Path((room_id, session_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let session = session_for(&state, &uri, &room_id, &session_id, &headers)?;
    session.close();
    tracing::info!(room = %room_id, session = %session_id, "session deleted by client");
    Ok(StatusCode::OK)
}

fn preflight(methods: &'static str, accept_post: bool, state: &SharedState) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(methods));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    if accept_post {
        headers.insert("accept-post", HeaderValue::from_static(SDP));
        for link in ice_server_links(state) {
            headers.append(header::LINK, link);
        }
    } else {
        headers.insert("accept-patch", HeaderValue::from_static(SDPFRAG));
    }
    response
}

/// `OPTIONS` on a WHIP/WHEP endpoint: CORS preflight, `Accept-Post`, ICE servers.
pub async fn options_endpoint(State(state): State<SharedState>) -> Response {
    preflight("OPTIONS, POST", true, &state)
}

/// `OPTIONS` on a session resource.
pub async fn options_session(State(state): State<SharedState>) -> Response {
    preflight("OPTIONS, PATCH, DELETE", false, &state)
}
