//! Registration over HTTP (issue 6, "Registration"); the rules are in [`crate::registration`].
//!
//! - `POST /api/rooms/{room}/registrations` (public): `{"name","email","fields":{…}}` → 201
//!   the registration with its personal `token` (a signed attendee token of participant
//!   `r-…`, valid until a week after the event ends), `join_url` (the watch page with it) and
//!   `ics_url`; emits `registration.created`. Closed (409 `registration_closed`) once that
//!   token could no longer be used: a week after the event ended.
//! - `GET /api/rooms/{room}/registrations[?format=csv]` (host): every registration.
//! - `POST /api/rooms/{room}/registrations/{id}/approve` and `/reject` (host): 200 the
//!   registration; emits `registration.approved` / `registration.rejected` when it changed. A
//!   rejected registrant's WebSockets are closed (`removed`) and its token is refused (403
//!   `registration_rejected`) until the host approves it again.
//! - `GET /api/rooms/{room}/registrations/{id}/ics` (no token: the 32-character id is the
//!   capability): the event as an RFC 5545 calendar file.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use townhall_interaction::Role;
use townhall_interaction::qa::csv_field;

use super::SharedState;
use super::api::{base_url, room_or_404};
use super::auth;
use super::interaction::{ExportFormat, ExportQuery, csv_download, query};
use super::problem::{ApiResult, Problem, parse_json};
use super::signalling::read_body;
use crate::access::unix_now_s;
use crate::datetime::format_rfc3339;
use crate::interaction::Removal;
use crate::registration::ics::{self, CalendarEvent};
use crate::registration::{
    Registration, RegistrationError, RegistrationForm, RegistrationSettings, RegistrationStatus, check_form,
};
use crate::rooms::Room;
use crate::webhooks::EventType;

/// How long after its event a registrant's token still works (the replay).
pub const TOKEN_GRACE_AFTER_EVENT_S: u64 = 7 * 86_400;

impl From<RegistrationError> for Problem {
    fn from(err: RegistrationError) -> Self {
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
        if status.is_server_error() {
            tracing::error!(%err, "registration storage");
        }
        Problem::new(status, err.code(), err.to_string())
    }
}

/// A registration as the API shows it.
#[derive(Debug, Serialize)]
pub struct RegistrationView<'a> {
    pub id: &'a str,
    pub status: RegistrationStatus,
    pub participant: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub fields: &'a std::collections::BTreeMap<String, String>,
    pub token: &'a str,
    pub join_url: String,
    pub ics_url: String,
    pub registered_at: String,
}

fn view<'a>(r: &'a Registration, base: &str) -> RegistrationView<'a> {
    RegistrationView {
        id: &r.id,
        status: r.status,
        participant: &r.participant,
        name: &r.name,
        email: &r.email,
        fields: &r.fields,
        token: &r.token,
        join_url: format!("{base}/watch/{}?token={}", r.room, r.token),
        ics_url: format!("{base}/api/rooms/{}/registrations/{}/ics", r.room, r.id),
        registered_at: format_rfc3339(r.registered_at),
    }
}

/// Whether registration has closed: the event ended more than [`TOKEN_GRACE_AFTER_EVENT_S`]
/// ago, so a join link made now could no longer be used. Rooms without a date never close.
pub fn is_closed(details: &crate::registration::EventDetails, now_s: u64) -> bool {
    details
        .ends_at_s()
        .is_some_and(|end| u64::try_from(end).unwrap_or(0).saturating_add(TOKEN_GRACE_AFTER_EVENT_S) <= now_s)
}

/// `data` of the `registration.*` webhooks.
fn webhook_data(r: &Registration) -> serde_json::Value {
    json!({
        "room": r.room,
        "registration": {
            "id": r.id,
            "participant": r.participant,
            "name": r.name,
            "email": r.email,
            "fields": r.fields,
            "status": r.status,
            "registered_at": format_rfc3339(r.registered_at),
        },
    })
}

/// `POST /api/rooms/{room}/registrations`.
pub async fn register(
    State(state): State<SharedState>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &room_id)?;
    // No token is needed, but one that is sent must be valid (as everywhere).
    auth::caller(&state, &room, &headers, None)?;
    let bytes = read_body(&state, body).await?;
    let form: RegistrationForm = parse_json(&bytes, r#"{"name": "…", "email": "…", "fields": {…}}"#)?;
    let details = &room.record.details;
    let registrant = check_form(form, &details.registration)?;
    let now = unix_now_s();
    // The join link works until a week after the event (or as long as any token, unscheduled).
    let expires = match details.ends_at_s() {
        Some(end) => u64::try_from(end).unwrap_or(0) + TOKEN_GRACE_AFTER_EVENT_S,
        None => now + state.access.max_ttl_s,
    };
    if is_closed(details, now) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "registration_closed",
            "the event ended more than a week ago: registration is closed",
        ));
    }
    let name = registrant.name.clone();
    let registration =
        state.registrations.register(&room_id, &details.registration, registrant, now as i64, |participant| {
            state.access.issue_until(&room_id, Role::Attendee, participant, &name, expires, now).0
        })?;
    tracing::info!(room = %room_id, registration = %registration.id, participant = %registration.participant,
        status = registration.status.as_str(), "registered");
    state.webhooks.emit(EventType::RegistrationCreated, webhook_data(&registration));
    let base = base_url(&state, &headers);
    let location = format!("/api/rooms/{room_id}/registrations/{}", registration.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&registration, &base))).into_response())
}

/// `GET /api/rooms/{room}/registrations[?format=csv]`.
pub async fn list(
    State(state): State<SharedState>,
    Path(room_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q: ExportQuery = query(&uri, "format")?;
    let room = room_or_404(&state, &room_id)?;
    auth::require_host(&state, &room, &headers)?;
    let registrations = state.registrations.list(&room_id)?;
    let base = base_url(&state, &headers);
    match q.export_format()? {
        ExportFormat::Json => {
            let views: Vec<_> = registrations.iter().map(|r| view(r, &base)).collect();
            Ok(Json(json!({ "registrations": views })).into_response())
        }
        ExportFormat::Csv => {
            let csv = to_csv(&registrations, &room.record.details.registration, &base);
            Ok(csv_download(&format!("{room_id}-registrations.csv"), csv))
        }
    }
}

/// Registrations as CSV (RFC 4180, CRLF; cells defused against spreadsheet formulas): the fixed
/// columns, then one per custom field of the room, in the room's order.
pub fn to_csv(registrations: &[Registration], settings: &RegistrationSettings, base: &str) -> String {
    let mut header =
        ["id", "status", "participant", "name", "email", "registered_at", "join_url"].map(str::to_owned).to_vec();
    header.extend(settings.fields.iter().map(|f| csv_field(&f.name)));
    let mut out = header.join(",");
    out.push_str("\r\n");
    for r in registrations {
        let v = view(r, base);
        let mut row = vec![
            csv_field(v.id),
            v.status.as_str().to_owned(),
            csv_field(v.participant),
            csv_field(v.name),
            csv_field(v.email),
            v.registered_at,
            csv_field(&v.join_url),
        ];
        row.extend(settings.fields.iter().map(|f| csv_field(r.fields.get(&f.name).map_or("", String::as_str))));
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `POST /api/rooms/{room}/registrations/{id}/approve`.
pub async fn approve(
    State(state): State<SharedState>,
    Path((room_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    decide(&state, &room_id, &id, &headers, RegistrationStatus::Approved)
}

/// `POST /api/rooms/{room}/registrations/{id}/reject`.
pub async fn reject(
    State(state): State<SharedState>,
    Path((room_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    decide(&state, &room_id, &id, &headers, RegistrationStatus::Rejected)
}

fn decide(
    state: &SharedState,
    room_id: &str,
    id: &str,
    headers: &HeaderMap,
    to: RegistrationStatus,
) -> ApiResult<Response> {
    let room = room_or_404(state, room_id)?;
    auth::require_host(state, &room, headers)?;
    let (registration, changed) = state.registrations.set_status(room_id, id, to, &room.record.details.registration)?;
    if changed {
        tracing::info!(room = %room_id, registration = %id, status = to.as_str(), "registration decided");
        let kind = match to {
            RegistrationStatus::Approved => EventType::RegistrationApproved,
            _ => EventType::RegistrationRejected,
        };
        state.webhooks.emit(kind, webhook_data(&registration));
        // An approved registrant waiting for it is let in (unless the room holds them anyway).
        room.notify_changed();
        // A rejected registrant's open WebSockets close now (`removed`, 4003).
        if to == RegistrationStatus::Rejected {
            state.interaction.remove(room_id, Removal::Participant(registration.participant.clone()));
        }
    }
    Ok(Json(view(&registration, &base_url(state, headers))).into_response())
}

/// `GET /api/rooms/{room}/registrations/{id}/ics`.
pub async fn calendar(
    State(state): State<SharedState>,
    Path((room_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let room = room_or_404(&state, &room_id)?;
    auth::caller(&state, &room, &headers, None)?;
    let registration = state
        .registrations
        .get(&room_id, &id)?
        .ok_or_else(|| Problem::not_found("unknown_registration", format!("no registration {id:?} in this room")))?;
    let text = calendar_text(&room, &registration, &base_url(&state, &headers))?;
    let disposition = format!("attachment; filename=\"{room_id}.ics\"");
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        text,
    )
        .into_response())
}

fn calendar_text(room: &Room, registration: &Registration, base: &str) -> ApiResult<String> {
    let details = &room.record.details;
    let (Some(starts), Some(ends)) = (details.starts_at_s(), details.ends_at_s()) else {
        return Err(Problem::not_found(
            "not_scheduled",
            "the room has no starts_at: there is no date to put in a calendar yet",
        ));
    };
    let url = view(registration, base).join_url;
    let uid = format!("{}@townhall", registration.id);
    Ok(ics::render(&CalendarEvent {
        uid: &uid,
        stamp: registration.registered_at,
        starts,
        ends,
        summary: &room.record.name,
        description: details.description.as_deref(),
        url: &url,
        confirmed: registration.status == RegistrationStatus::Approved,
    }))
}
