//! The public read of a room's event, for attendees (`GET /api/rooms/{room}/event`, no token):
//! what the registration page (`/register/{room}`, web/register.js) shows and asks. It carries
//! none of the room's keys nor any token: only the event's details, its phase, the
//! registration form's settings, whether registration is open (and why not), and the links.
//! Breakout rooms (ids with a `.`) have no event: 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::SharedState;
use super::api::{base_url, room_or_404};
use super::auth;
use super::problem::{ApiResult, Problem};
use super::registrations::is_closed;
use crate::access::unix_now_s;
use crate::lifecycle::Phase;
use crate::registration::RegistrationSettings;
use crate::rooms::RoomRecord;

/// Why registration is not open: the codes `POST …/registrations` would answer with.
pub const CLOSED: &str = "registration_closed";
pub const FULL: &str = "registration_full";

/// The event as attendees see it.
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// `null` when the room has none.
    pub description: Option<&'a str>,
    /// RFC 3339 UTC; `null` when the room has no date.
    pub starts_at: Option<&'a str>,
    pub duration_min: u32,
    pub phase: Phase,
    /// `approval`, `capacity`, `fields` (name, label, required).
    pub registration: &'a RegistrationSettings,
    /// Whether `POST …/registrations` would take a valid form now.
    pub registration_open: bool,
    /// `registration_closed` (the event ended more than a week ago) or `registration_full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<&'static str>,
    pub watch_page: String,
    pub register_page: String,
    /// Where the form is posted.
    pub registration_url: String,
}

/// The view of `record` in `phase`, with `active` places taken, at `now_s`. Pure.
pub fn event_view<'a>(record: &'a RoomRecord, phase: Phase, active: u64, now_s: u64, base: &str) -> EventView<'a> {
    let details = &record.details;
    let settings = &details.registration;
    let closed_reason = if is_closed(details, now_s) {
        Some(CLOSED)
    } else if settings.capacity.is_some_and(|capacity| active >= u64::from(capacity)) {
        Some(FULL)
    } else {
        None
    };
    let id = record.id.as_str();
    EventView {
        id,
        name: &record.name,
        description: details.description.as_deref(),
        starts_at: details.starts_at.as_deref(),
        duration_min: details.duration_min,
        phase,
        registration: settings,
        registration_open: closed_reason.is_none(),
        closed_reason,
        watch_page: format!("{base}/watch/{id}"),
        register_page: format!("{base}/register/{id}"),
        registration_url: format!("{base}/api/rooms/{id}/registrations"),
    }
}

/// `GET /api/rooms/{room}/event`.
pub async fn event(
    State(state): State<SharedState>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if room_id.contains('.') {
        return Err(Problem::not_found("unknown_room", format!("no event {room_id:?}: a breakout room has none")));
    }
    let room = room_or_404(&state, &room_id)?;
    // No token is needed, but one that is sent must be valid (as everywhere).
    auth::caller(&state, &room, &headers, None)?;
    let active = state.registrations.active(&room_id)?;
    let base = base_url(&state, &headers);
    let view = event_view(&room.record, room.phase(), active, unix_now_s(), &base);
    let mut response = Json(view).into_response();
    // Places fill up: never from a cache.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::{CustomField, EventDetails};

    fn record(starts_at: Option<&str>, capacity: Option<u32>) -> RoomRecord {
        RoomRecord {
            id: "all-hands".into(),
            name: "All hands".into(),
            publish_token: "PUBLISHKEYpublishkey0123456789ab".into(),
            host_token: "HOSTKEYhostkey0123456789abcdefgh".into(),
            created_at: 1,
            details: EventDetails {
                starts_at: starts_at.map(str::to_owned),
                description: Some("Quarterly update".into()),
                registration: RegistrationSettings {
                    approval: true,
                    capacity,
                    fields: vec![CustomField { name: "company".into(), label: "Company".into(), required: true }],
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn shows_the_event_and_whether_registration_is_open_but_never_a_key() {
        // 2026-12-01T15:00:00Z, 60 minutes.
        let start = 1_796_137_200;
        let r = record(Some("2026-12-01T15:00:00Z"), Some(2));
        let json = serde_json::to_value(event_view(&r, Phase::Scheduled, 1, start - 86_400, "http://h")).unwrap();
        assert_eq!(json["registration_open"], true);
        assert!(json.get("closed_reason").is_none());
        assert_eq!(json["registration"]["fields"][0]["name"], "company");
        assert_eq!(json["registration"]["approval"], true);
        assert_eq!(json["register_page"], "http://h/register/all-hands");
        assert_eq!(json["registration_url"], "http://h/api/rooms/all-hands/registrations");
        let text = json.to_string();
        for secret in [&r.publish_token, &r.host_token] {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
        assert!(!text.contains("token"), "{text}");

        let full = event_view(&r, Phase::Scheduled, 2, start, "");
        assert_eq!((full.registration_open, full.closed_reason), (false, Some(FULL)));
        // Open until a week after the end (the replay), then closed, full or not.
        let end = start + 3_600;
        let week = super::super::registrations::TOKEN_GRACE_AFTER_EVENT_S;
        assert!(event_view(&r, Phase::Ended, 0, end + week - 1, "").registration_open);
        let late = event_view(&r, Phase::Ended, 2, end + week, "");
        assert_eq!((late.registration_open, late.closed_reason), (false, Some(CLOSED)));
        // No date and no capacity: always open.
        let open = record(None, None);
        let json = serde_json::to_value(event_view(&open, Phase::Live, 1_000, u64::MAX / 2, "")).unwrap();
        assert_eq!(
            (json["registration_open"].clone(), json["starts_at"].clone()),
            (true.into(), serde_json::Value::Null)
        );
    }
}
