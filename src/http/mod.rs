//! The HTTP surface: `router(state)` builds every route; handlers live one file per area.
//! Listed in docs/API.md.

mod api;
pub mod auth;
pub mod breakouts;
mod event;
mod interaction;
pub mod lifecycle;
mod moderation;
mod ops;
mod pages;
pub mod problem;
mod recordings;
mod registrations;
mod reports;
mod signalling;
mod tokens;
pub mod ws;
pub mod ws_waiting;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use townhall_ingest::Ingest;
use townhall_origin::Origin;
use townhall_origin::object_store::S3Sink;
use townhall_origin::push::{PushStatus, Pusher};
use townhall_origin::stream::Resume;

use crate::config::Config;
use crate::program::{self, ProgramSettings};
use crate::rooms::{Room, Rooms};
use crate::webhooks::EventType;

/// A running program task and the signal that ends it.
pub type ProgramTask = (tokio::task::JoinHandle<()>, Arc<tokio::sync::Notify>);

/// What every handler can reach.
pub struct AppState {
    pub config: Config,
    pub admin_token: String,
    pub rooms: Rooms,
    pub ingest: Arc<Ingest>,
    pub http: HttpMetrics,
    pub origin: Arc<Origin>,
    pub program_settings: ProgramSettings,
    /// The program task of each room, and how to stop it.
    pub programs: Mutex<HashMap<String, ProgramTask>>,
    /// The bucket replays are pushed to (`[s3]`), and what the pushers have done.
    pub s3: Option<(Arc<S3Sink>, Arc<PushStatus>)>,
    /// The pusher task of each room (with `[s3]`).
    pub pushers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// The runtime of media tasks (WebRTC sessions, programs), apart from HTTP serving.
    pub media: tokio::runtime::Handle,
    /// Chat, Q&A, polls and hands of every room.
    pub interaction: crate::interaction::Interaction,
    /// Signed tokens and their revocations.
    pub access: Arc<crate::access::Access>,
    /// Signed callbacks for what happens in rooms (`[webhooks]`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Who is connected to each room's WebSocket (for `participant.joined` / `left`).
    pub presence: crate::presence::Presence,
    /// Every room's registrations ([`crate::registration`]).
    pub registrations: crate::registration::store::Registrations,
    /// Every room's attendance ([`crate::reports`]), fed by the WebSocket.
    pub reports: Arc<crate::reports::Reports>,
    /// The breakout rooms of each main room.
    pub breakouts: breakouts::Breakouts,
    /// Who opened each WHIP session with a signed token, so a revocation ends them too.
    pub session_owners: crate::session_owners::SessionOwners,
}

impl AppState {
    /// Starts a room's program (stage → LL-HLS) and makes the origin serve it; `resume` is
    /// where its replay on disk left off ([`program::restore_replay`]).
    pub fn start_program(&self, room: &Arc<Room>, resume: Option<Resume>) {
        if !self.config.hls.enabled {
            return;
        }
        self.start_pusher(room);
        self.origin.insert(room.hls.clone());
        let replay_dir = room.hls.replay_dir.clone().unwrap_or_default();
        let stop = Arc::new(tokio::sync::Notify::new());
        let (webhooks, room_id) = (self.webhooks.clone(), room.record.id.clone());
        let started = move || webhooks.emit(EventType::RoomStarted, serde_json::json!({ "room": room_id }));
        let task = self.media.spawn(program::run(
            room.stage.clone(),
            room.hls.clone(),
            self.program_settings,
            replay_dir,
            resume,
            stop.clone(),
            Box::new(started),
        ));
        self.programs.lock().unwrap_or_else(|e| e.into_inner()).insert(room.record.id.clone(), (task, stop));
    }

    /// Where `participant`'s registration for `room` stands, if it registered.
    pub fn registration_status(
        &self,
        room: &str,
        participant: &str,
    ) -> Option<crate::registration::RegistrationStatus> {
        self.registrations.status(room, participant)
    }

    /// Starts (or restarts) the pusher of a room's replay to the bucket, with `[s3]`.
    pub fn start_pusher(&self, room: &Arc<Room>) {
        if let Some((sink, status)) = &self.s3 {
            let pusher = Pusher { sink: sink.clone(), stream: room.hls.clone(), status: status.clone() };
            let task = tokio::spawn(pusher.run());
            if let Some(old) =
                self.pushers.lock().unwrap_or_else(|e| e.into_inner()).insert(room.record.id.clone(), task)
            {
                old.abort();
            }
        }
    }

    /// Stops the pusher of a room, if any.
    pub fn stop_pusher(&self, room: &Room) {
        if let Some(pusher) = self.pushers.lock().unwrap_or_else(|e| e.into_inner()).remove(&room.record.id) {
            pusher.abort();
        }
    }

    /// Ends a room's program: the last segment closes, the live playlist ends and the replay
    /// becomes VOD; the origin goes on serving both.
    pub async fn end_program(&self, room: &Room) {
        let entry = self.programs.lock().unwrap_or_else(|e| e.into_inner()).remove(&room.record.id);
        if let Some((task, stop)) = entry {
            stop.notify_one();
            if tokio::time::timeout(std::time::Duration::from_secs(10), task).await.is_err() {
                tracing::warn!(room = %room.record.id, "program did not finish in 10 s");
            }
        }
        room.hls.end();
    }

    /// Stops a room's program: its playlists end; the origin stops serving it; its pusher
    /// stops.
    pub fn stop_program(&self, room: &Room) {
        self.stop_pusher(room);
        if let Some((task, _)) = self.programs.lock().unwrap_or_else(|e| e.into_inner()).remove(&room.record.id) {
            task.abort();
        }
        room.hls.end();
        self.origin.remove(&room.record.id);
    }
}

/// Counters of the HTTP side.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    pub requests_total: AtomicU64,
    pub responses_4xx_total: AtomicU64,
    pub responses_5xx_total: AtomicU64,
}

pub type SharedState = Arc<AppState>;

/// Every route of the server.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/", get(pages::landing))
        .route("/publish/{room}", get(pages::publish))
        .route("/stage/{room}", get(pages::stage))
        .route("/watch/{room}", get(pages::watch))
        .route("/studio/{room}", get(pages::studio))
        .route("/register/{room}", get(pages::register))
        .nest_service("/hls", townhall_origin::router(state.origin.clone(), required_cdn_secret(&state.config)))
        .route("/assets/{file}", get(pages::asset))
        .route("/favicon.ico", get(pages::favicon))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/rooms", post(api::create_room).get(api::list_rooms))
        .route("/api/rooms/{room}", get(api::get_room).delete(api::delete_room).patch(api::update_room))
        .route("/api/rooms/{room}/program", post(api::set_program))
        .route("/api/rooms/{room}/end", post(lifecycle::end_event))
        .route("/api/rooms/{room}/phase", post(lifecycle::set_phase))
        .route("/api/rooms/{room}/waiting", get(lifecycle::waiting).put(lifecycle::set_waiting_room))
        .route("/api/rooms/{room}/waiting/admit", post(lifecycle::admit))
        .route("/api/rooms/{room}/recordings", post(recordings::start_or_stop).get(recordings::list))
        .route("/api/rooms/{room}/recordings/{file}", get(recordings::get))
        .route("/api/rooms/{room}/events", get(interaction::events))
        .route("/api/rooms/{room}/chat", get(interaction::chat))
        .route("/api/rooms/{room}/questions/unanswered", get(interaction::unanswered))
        .route("/api/rooms/{room}/commands", post(interaction::command))
        .route("/api/rooms/{room}/tokens", post(tokens::issue))
        .route("/api/rooms/{room}/presenters/{presenter}", axum::routing::delete(moderation::remove))
        .route("/api/rooms/{room}/presenters/{presenter}/audio", post(moderation::set_audio))
        .route("/api/rooms/{room}/invitations", get(moderation::invitations))
        .route("/api/rooms/{room}/presenters/{presenter}/video", post(moderation::set_video))
        .route("/api/rooms/{room}/tokens/revoke", post(tokens::revoke))
        .route("/api/rooms/{room}/event", get(event::event))
        .route("/api/rooms/{room}/registrations", post(registrations::register).get(registrations::list))
        .route("/api/rooms/{room}/registrations/{id}/approve", post(registrations::approve))
        .route("/api/rooms/{room}/registrations/{id}/reject", post(registrations::reject))
        .route("/api/rooms/{room}/registrations/{id}/ics", get(registrations::calendar))
        .route("/api/rooms/{room}/report", get(reports::report))
        .route("/api/rooms/{room}/breakouts", post(breakouts::start).get(breakouts::get).delete(breakouts::end))
        .route("/ws/{room}", get(ws::connect))
        .route("/whip/{room}", post(signalling::whip_post).options(signalling::options_endpoint))
        .route(
            "/whip/{room}/sessions/{session}",
            axum::routing::patch(signalling::session_patch)
                .delete(signalling::session_delete)
                .options(signalling::options_session),
        )
        .route("/whep/{room}", post(signalling::whep_post_program).options(signalling::options_endpoint))
        .route("/whep/{room}/{presenter}", post(signalling::whep_post_presenter).options(signalling::options_endpoint))
        .route(
            "/whep/{room}/sessions/{session}",
            axum::routing::patch(signalling::session_patch)
                .delete(signalling::session_delete)
                .options(signalling::options_session),
        )
        .fallback(ops::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), common_headers))
        .with_state(state)
}

/// The secret `/hls/…` requests must carry, when `hls.require_cdn` is on.
fn required_cdn_secret(config: &Config) -> Option<String> {
    config.hls.require_cdn.then(|| config.hls.cdn_secret.clone())
}

/// CORS on every response (RFC 9725 §4.8: browsers publish from other origins) and counters.
async fn common_headers(State(state): State<SharedState>, request: Request<Body>, next: Next) -> Response {
    state.http.requests_total.fetch_add(1, Ordering::Relaxed);
    let mut response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() {
        state.http.responses_4xx_total.fetch_add(1, Ordering::Relaxed);
    } else if status.is_server_error() {
        state.http.responses_5xx_total.fetch_add(1, Ordering::Relaxed);
    }
    let headers = response.headers_mut();
    if let Ok(origin) = HeaderValue::from_str(&state.config.server.cors_allow_origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Post, Accept-Patch"),
    );
    response
}
