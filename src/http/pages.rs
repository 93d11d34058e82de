//! The web pages (plain HTML and ES modules from `web/`, embedded in the binary, no build
//! step): `/` landing, `/publish/{room}` WHIP publisher, `/stage/{room}` WHEP player,
//! `/watch/{room}` LL-HLS player with the interaction panels (`?replay`: the replay),
//! `/studio/{room}` the host's stage and moderation (host token in `#token=`),
//! `/register/{room}` the attendees' registration form.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use super::problem::Problem;
use crate::rooms::is_valid_name;

const LANDING: &str = include_str!("../../web/index.html");
const PUBLISH: &str = include_str!("../../web/publish.html");
const STAGE: &str = include_str!("../../web/stage.html");
const WATCH: &str = include_str!("../../web/watch.html");
const STUDIO: &str = include_str!("../../web/studio.html");
const REGISTER: &str = include_str!("../../web/register.html");

const JS: &str = "text/javascript; charset=utf-8";

/// Embedded assets: (name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    ("whip.js", JS, include_str!("../../web/whip.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../web/style.css")),
    ("watch.js", JS, include_str!("../../web/watch.js")),
    ("lifecycle.js", JS, include_str!("../../web/lifecycle.js")),
    ("replay.js", JS, include_str!("../../web/replay.js")),
    ("room-state.js", JS, include_str!("../../web/room-state.js")),
    ("room-socket.js", JS, include_str!("../../web/room-socket.js")),
    ("timeline.js", JS, include_str!("../../web/timeline.js")),
    ("inband.js", JS, include_str!("../../web/inband.js")),
    ("panels.js", JS, include_str!("../../web/panels.js")),
    ("studio.js", JS, include_str!("../../web/studio.js")),
    ("stage-invite.js", JS, include_str!("../../web/stage-invite.js")),
    ("studio-stage.js", JS, include_str!("../../web/studio-stage.js")),
    ("breakout.js", JS, include_str!("../../web/breakout.js")),
    ("breakout-controls.js", JS, include_str!("../../web/breakout-controls.js")),
    ("register.js", JS, include_str!("../../web/register.js")),
    // hls.js 1.7, installed by `scripts/setup.sh` (npm) and embedded at build time.
    ("hls.min.js", JS, include_str!("../../node_modules/hls.js/dist/hls.min.js")),
];

pub async fn landing() -> Html<&'static str> {
    Html(LANDING)
}

fn room_page(room: &str, template: &'static str) -> Result<Html<String>, Problem> {
    if !is_valid_name(room) {
        return Err(Problem::bad_request("invalid_room_id", format!("invalid room id {room:?}")));
    }
    Ok(Html(template.replace("{{ROOM}}", room)))
}

pub async fn publish(Path(room): Path<String>) -> Result<Html<String>, Problem> {
    room_page(&room, PUBLISH)
}

pub async fn stage(Path(room): Path<String>) -> Result<Html<String>, Problem> {
    room_page(&room, STAGE)
}

pub async fn watch(Path(room): Path<String>) -> Result<Html<String>, Problem> {
    room_page(&room, WATCH)
}

pub async fn studio(Path(room): Path<String>) -> Result<Html<String>, Problem> {
    room_page(&room, STUDIO)
}

pub async fn register(Path(room): Path<String>) -> Result<Html<String>, Problem> {
    room_page(&room, REGISTER)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => Problem::not_found("not_found", format!("no asset {file:?}")).into_response(),
    }
}

/// No icon: an empty answer instead of a 404 in every browser console.
pub async fn favicon() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}
