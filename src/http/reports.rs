//! `GET /api/rooms/{room}/report[?format=csv]` (host or admin): the room's attendance and
//! engagement ([`crate::reports::report`] defines every number) as JSON, or one CSV row per
//! person.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use townhall_interaction::{Actor, Role};

use super::SharedState;
use super::api::room_or_404;
use super::auth;
use super::interaction::{ExportFormat, ExportQuery, csv_download, query};
use super::problem::ApiResult;
use crate::reports::report;

pub async fn report(
    State(state): State<SharedState>,
    Path(room_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q: ExportQuery = query(&uri, "format")?;
    let room = room_or_404(&state, &room_id)?;
    auth::require_host(&state, &room, &headers)?;
    // The whole log, as a moderator sees it (votes and hands included).
    let hub = state.interaction.hub(&room_id, &room.hls)?;
    let reader = Actor::new("report", "Report", Role::Host);
    let (events, _) = hub.events_since(&reader, 0, usize::MAX)?;
    let registrations = state.registrations.list(&room_id)?;
    let report = report::build(&room_id, &state.reports.attendance(&room_id), &registrations, &events);
    match q.export_format()? {
        ExportFormat::Json => Ok(Json(report).into_response()),
        ExportFormat::Csv => Ok(csv_download(&format!("{room_id}-report.csv"), report::to_csv(&report))),
    }
}
