//! `GET /ws/{room}`: a room's interaction over WebSocket (RFC 6455). Every event comes at once,
//! carrying `at` (program time); a client holds each until its player's `playingDate ≥ at`.
//!
//! Query: `token` (the admin token, the room's host or publish key, or a signed token of the
//! room, such as the attendee token of an earlier `welcome`; none: a new attendee, who gets a
//! signed token in `welcome`), `name` (display name), `since` (the last
//! `seq` the client has: what it missed is sent before anything new). Refused before the
//! upgrade, as JSON problems: unknown room 404, bad token 401, bad name or query 400, not a
//! WebSocket handshake 426.
//!
//! Server → client, text frames of JSON:
//! - an attendee the room holds (not live yet, admission by hand, registration pending) first
//!   gets `{"type":"waiting",…}` and nothing else until it is let in ([`super::ws_waiting`]);
//! - `{"type":"welcome","participant":{…},"token":"eyJ…","seq":N,"snapshot":{…},
//!   "heartbeat_interval_s":15,"stage":[…]}` first (`stage`, for hosts and presenters only:
//!   each presenter's `name`, `live`, `muted`, `video_off`; the
//!   snapshot is left out when `since` is given: the missed events follow instead);
//! - every event of the log the participant may see (`seq`, `at`, `type`, …);
//! - `{"type":"poll_results",…}` while votes come in;
//! - `{"type":"ack","nonce":…,"seqs":[…],"replayed":false,"own":[…]}` (`own`: the command's
//!   events that only moderators and their author see, such as an attendee's vote: attendees
//!   get those here, not as separate messages) or
//!   `{"type":"error","code":…,"status":…,"detail":…,"nonce":…,"retry_after_ms":…}` for each
//!   command, in order;
//! - `{"type":"resync","reason":"too_slow","seq":N}` then close (4000): the client fell more than
//!   `websocket.queue_events` behind; it reconnects with `since=N`;
//! - `{"type":"stage_invitation","presenter","token","jti","expires_at"}` to the one attendee
//!   the host invited (`hand_invite`): a presenter token to publish on the stage with; the
//!   moderators get `{"type":"stage_invitation_sent","presenter","name","jti","expires_at"}`
//!   (no token): the `jti` to revoke when they take that presenter off;
//! - `{"type":"removed","reason":"revoked"}` then close (4003): the host revoked this
//!   connection's token or banned its participant (`POST /api/rooms/{room}/tokens/revoke`);
//! - breakout rooms (`super::breakouts`): `breakout_assigned` to one member (again right after
//!   `welcome` when it reconnects while they run), `breakout_closing`, `breakout_ended` (in a
//!   breakout room: then close, 4003). A breakout room's connections are not presence (no
//!   `participant.joined`): they are the main room's participants.
//!
//! Client → server: commands (`{"type":"chat_send","text":"hi","nonce":"c1"}`), see
//! `townhall_interaction::command`; and the player's heartbeat,
//! `{"type":"heartbeat","playing":true|false}`, every `heartbeat_interval_s` of the `welcome`
//! (`reports.heartbeat_interval_s`): handled before the command parser, not answered (a
//! malformed one gets an `error`), credited as watch time by [`crate::reports::attendance`].
//!
//! A registrant whose registration the host rejected is refused before the upgrade: 403
//! `registration_rejected`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use townhall_interaction::{Actor, InteractionError, Request, Role};

use super::SharedState;
use super::auth::bearer;
use super::problem::Problem;
use super::ws_waiting::Waiting;
use crate::access::unix_now_s;
use crate::interaction::{DeliverySettings, InteractionMetrics, RoomHub, own_hidden_events};
use crate::reports::{Reports, unix_now_ms};
use crate::webhooks::EventType;

/// Close code sent with `resync` (RFC 6455 §7.4.2: 4000-4999 are the application's).
pub const CLOSE_RESYNC: u16 = 4000;
/// Close code after `removed`: the connection's token (or participant) was revoked.
pub const CLOSE_REMOVED: u16 = 4003;
/// Most queued messages sent to a client with one flush.
pub const BATCH_MAX: usize = 64;
/// Bytes read from a client's socket at a time.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Most missed events sent after `since`; further back, the client gets a snapshot.
pub const BACKLOG_MAX: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WsQuery {
    token: Option<String>,
    name: Option<String>,
    since: Option<u64>,
}

pub async fn connect(
    State(state): State<SharedState>,
    Path(room): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let query = Query::<WsQuery>::try_from_uri(&uri)
        .map_err(|e| Problem::bad_request("bad_query", format!("{}: use token, name and since", e.body_text())))?
        .0;
    let room = state.rooms.get(&room).ok_or_else(|| Problem::not_found("unknown_room", format!("no room {room:?}")))?;
    let token = query.token.as_deref().or_else(|| bearer(&headers));
    let now = unix_now_s();
    let (caller, identity) =
        match state.access.identify(&state.admin_token, &room.record, token, query.name.as_deref(), now)? {
            // An attendee's signed token is its identity: handed back as it came.
            Some(caller) if caller.role() == Role::Attendee => (caller, token.map(str::to_owned)),
            Some(caller) => (caller, None),
            None => {
                let (caller, token) = state.access.new_attendee(&room.record.id, query.name.as_deref(), now)?;
                (caller, Some(token))
            }
        };
    // A registrant the host rejected is refused (a pending one gets in: the waiting room holds it).
    super::auth::refuse_rejected(&state, &room, &caller.actor.participant_id)?;
    let (actor, token_id) = (caller.actor, caller.token_id);
    let interaction = &state.interaction;
    let upgrade = upgrade.map_err(|e| {
        Problem::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            format!("{}: /ws/{{room}} speaks WebSocket (RFC 6455) only", e.body_text()),
        )
    })?;
    let hub = interaction.hub(&room.record.id, &room.hls)?;
    let delivery = interaction.delivery;
    let metrics = interaction.metrics.clone();
    // A small read buffer: tungstenite zero-fills the whole buffer before each read, and a
    // client task reads on every wake-up; at 128 KiB (the default) that was 63 % of the
    // server's CPU in the 5,000-viewer vote (docs/BENCHMARKS.md) and most of its memory.
    Ok(upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(delivery.max_message_bytes)
        .max_frame_size(delivery.max_message_bytes)
        .on_upgrade(move |socket| async move {
            metrics.clients.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(room = %hub.room, participant = %actor.participant_id, "websocket open");
            let (room_arc, room, who) = (room, hub.room.clone(), participant_data(&hub.room, &actor));
            let main_room = crate::breakouts::parent_of(&room).is_none();
            let participant = actor.participant_id.clone();
            let (mut sink, mut incoming) = socket.split();
            let waiting = Waiting {
                state: &state,
                room: &room_arc,
                hub: &hub,
                actor: &actor,
                token_id: token_id.as_deref(),
                identity: identity.as_deref(),
                timeout: delivery.send_timeout,
            };
            if waiting.hold(&mut sink, &mut incoming).await {
                // In the room (the waiting room is not attending): presence, `participant.joined`
                // and the report count from here.
                if main_room && state.presence.join_as(&room, &actor) {
                    state.webhooks.emit(EventType::ParticipantJoined, who.clone());
                    state.reports.joined(&room, &actor, unix_now_ms());
                }
                let reports = state.reports.clone();
                let assignment = {
                    let (state, room, participant) = (state.clone(), room.clone(), participant.clone());
                    Box::new(move || state.breakouts.assignment(&room, &participant))
                };
                let stage = (actor.role != Role::Attendee).then(|| stage_moderation(&room_arc));
                let client = Client { hub, actor, token_id, delivery, metrics: metrics.clone(), reports, stage };
                client.run(sink, incoming, identity, query.since, assignment).await;
                if main_room && state.presence.leave(&room, &participant) {
                    state.webhooks.emit(EventType::ParticipantLeft, who);
                    state.reports.left(&room, &participant, unix_now_ms());
                }
            }
            metrics.clients.fetch_sub(1, Ordering::Relaxed);
        }))
}

/// A heartbeat of the watch page: `Some(Ok(playing))`; `Some(Err(reply))` for a malformed one
/// (the error to send back); `None` if the message is something else (a command).
fn heartbeat(text: &str) -> Option<Result<bool, Utf8Bytes>> {
    if !text.contains("heartbeat") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.get("type")?.as_str()? != "heartbeat" {
        return None;
    }
    match value.get("playing").and_then(serde_json::Value::as_bool) {
        Some(playing) => Some(Ok(playing)),
        None => Some(Err(Utf8Bytes::from(
            json!({
                "type": "error",
                "code": "malformed",
                "status": 400,
                "detail": "a heartbeat is {\"type\":\"heartbeat\",\"playing\":true|false}",
                "nonce": value.get("nonce"),
                "retry_after_ms": null,
            })
            .to_string(),
        ))),
    }
}

/// Each presenter's moderation: `[{"name","live","muted","video_off"}]`.
fn stage_moderation(room: &crate::rooms::Room) -> serde_json::Value {
    let presenters: Vec<serde_json::Value> = room
        .stage
        .presenters()
        .iter()
        .map(|f| json!({"name": f.presenter, "live": f.is_live(), "muted": f.is_audio_muted(), "video_off": f.is_video_off()}))
        .collect();
    serde_json::Value::Array(presenters)
}

/// `data` of `participant.joined` / `participant.left`.
fn participant_data(room: &str, actor: &Actor) -> serde_json::Value {
    json!({
        "room": room,
        "participant": { "id": actor.participant_id, "name": actor.name, "role": actor.role },
    })
}

/// An interaction error as an HTTP problem (its status and stable code).
impl From<InteractionError> for Problem {
    fn from(err: InteractionError) -> Self {
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Problem::new(status, err.code(), err.to_string())
    }
}

struct Client {
    hub: Arc<RoomHub>,
    actor: Actor,
    /// The signed token it connected with (`jti`), if any: a revocation of it closes this.
    token_id: Option<String>,
    delivery: DeliverySettings,
    metrics: Arc<InteractionMetrics>,
    /// Where its heartbeats go.
    reports: Arc<Reports>,
    /// For hosts and presenters: each presenter's moderation as the connection opens
    /// (`welcome`'s `stage`), so a publish page opened while muted or with its video off says so.
    stage: Option<serde_json::Value>,
}

pub(super) type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Sends one text message; `false` if the client is gone or took longer than `timeout`.
pub(super) async fn send(sink: &mut Sink, text: Utf8Bytes, timeout: std::time::Duration) -> bool {
    send_batch(sink, vec![text], timeout).await
}

/// Sends queued messages with one flush; `false` if the client is gone or took longer than
/// `timeout` for all of them.
async fn send_batch(sink: &mut Sink, texts: Vec<Utf8Bytes>, timeout: std::time::Duration) -> bool {
    if texts.is_empty() {
        return true;
    }
    let write = async {
        for text in texts {
            sink.feed(Message::Text(text)).await?;
        }
        sink.flush().await
    };
    matches!(tokio::time::timeout(timeout, write).await, Ok(Ok(())))
}

/// Why a client's loop ended.
enum End {
    Gone,
    /// Its token was revoked (it was told `removed`).
    Removed,
    TooSlow,
    /// The client broke the protocol or sent a message over `websocket.max_message_bytes`.
    Broken(axum::Error),
}

impl Client {
    /// `assignment`: the participant's breakout assignment, if breakouts run (asked after
    /// subscribing, so that one made meanwhile comes at least once).
    async fn run(
        self,
        mut sink: Sink,
        mut incoming: SplitStream<WebSocket>,
        identity: Option<String>,
        since: Option<u64>,
        assignment: Box<dyn FnOnce() -> Option<String> + Send>,
    ) {
        let mut live = self.hub.subscribe(self.actor.role);
        let assignment = assignment();
        let timeout = self.delivery.send_timeout;

        // What the client has: the missed events after `since` (when it is a seq of this log
        // and not too far back), else a snapshot.
        let last = self.hub.last_seq();
        let backlog = since.filter(|since| *since <= last).and_then(|since| {
            match self.hub.events_since(&self.actor, since, BACKLOG_MAX) {
                Ok((events, false)) => Some((since, events)),
                _ => None,
            }
        });
        let (welcome_seq, snapshot, backlog) = match backlog {
            Some((since, events)) => (since, None, events),
            None => {
                let snapshot = self.hub.snapshot(&self.actor);
                (snapshot.seq, Some(snapshot), Vec::new())
            }
        };
        let mut sent = backlog.last().map_or(welcome_seq, |e| e.seq);
        let welcome = json!({
            "type": "welcome",
            "participant": self.actor,
            "token": identity,
            "seq": welcome_seq,
            "snapshot": snapshot,
            "at": self.hub.now_at(),
            "heartbeat_interval_s": self.reports.heartbeat_interval_s,
            "stage": self.stage,
        });
        if !send(&mut sink, Utf8Bytes::from(welcome.to_string()), timeout).await {
            return;
        }
        for event in backlog {
            if !send(&mut sink, Utf8Bytes::from(event.to_json()), timeout).await {
                return;
            }
        }
        if let Some(assignment) = assignment
            && !send(&mut sink, Utf8Bytes::from(assignment), timeout).await
        {
            return;
        }

        let end = loop {
            tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        match heartbeat(text.as_str()) {
                            None => {}
                            Some(Ok(playing)) => {
                                self.reports.heartbeat(&self.hub.room, &self.actor.participant_id, playing, unix_now_ms());
                                continue;
                            }
                            Some(Err(reply)) => {
                                if !send(&mut sink, reply, timeout).await {
                                    break End::Gone;
                                }
                                continue;
                            }
                        }
                        let reply = self.command(Request::from_json(text.as_str()));
                        if !send(&mut sink, reply, timeout).await {
                            break End::Gone;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        let reply = self.command(Request::from_slice(&bytes));
                        if !send(&mut sink, reply, timeout).await {
                            break End::Gone;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break End::Gone,
                    Some(Err(err)) => break End::Broken(err),
                },
                outgoing = live.recv() => match outgoing {
                    Ok(first) => {
                        // What else is already queued goes out with it, in one flush (a
                        // viewer that fell behind catches up in few writes).
                        let token_id = self.token_id.as_deref();
                        let mut batch = Vec::new();
                        let mut stop = None;
                        let mut next = Some(first);
                        while let Some(outgoing) = next.take() {
                            if outgoing.seq().is_none_or(|seq| seq > sent) && outgoing.visible_to(&self.actor, token_id) {
                                batch.push(outgoing.json.clone());
                                if let Some(seq) = outgoing.seq() {
                                    sent = seq;
                                }
                                if outgoing.removes_client(&self.actor, token_id) {
                                    stop = Some(End::Removed);
                                    break;
                                }
                            }
                            if batch.len() >= BATCH_MAX {
                                break;
                            }
                            next = match live.try_recv() {
                                Ok(outgoing) => Some(outgoing),
                                Err(TryRecvError::Lagged(_)) => {
                                    stop = Some(End::TooSlow);
                                    None
                                }
                                // Empty; or closed, which the next recv reports.
                                Err(_) => None,
                            };
                        }
                        if !send_batch(&mut sink, batch, timeout).await {
                            break End::Gone;
                        }
                        if let Some(stop) = stop {
                            break stop;
                        }
                    }
                    Err(RecvError::Lagged(_)) => break End::TooSlow,
                    Err(RecvError::Closed) => break End::Gone,
                },
            }
        };
        // How the connection closes (RFC 6455 §7.4), after what the client must be told.
        let close: Option<(u16, &'static str)> = match end {
            End::Gone => None,
            End::Broken(err) => {
                // §7.4.1: 1009 for a message too big to process, 1002 for the rest.
                let too_big = std::error::Error::source(&err)
                    .and_then(|e| e.downcast_ref::<tungstenite::Error>())
                    .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
                let (code, reason) = if too_big { (1009, "message too big") } else { (1002, "protocol error") };
                tracing::debug!(room = %self.hub.room, participant = %self.actor.participant_id, %err, code, "websocket closed");
                Some((code, reason))
            }
            End::Removed => {
                tracing::info!(room = %self.hub.room, participant = %self.actor.participant_id, "websocket closed: token revoked");
                Some((CLOSE_REMOVED, "removed"))
            }
            End::TooSlow => {
                self.metrics.resyncs.fetch_add(1, Ordering::Relaxed);
                tracing::info!(room = %self.hub.room, participant = %self.actor.participant_id, seq = sent, "websocket client too slow: resync");
                let notice = json!({"type": "resync", "reason": "too_slow", "seq": sent}).to_string();
                if send(&mut sink, Utf8Bytes::from(notice), timeout).await {
                    Some((CLOSE_RESYNC, "resync"))
                } else {
                    self.metrics.cut_off.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        };
        if let Some((code, reason)) = close {
            let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
            let _ = tokio::time::timeout(timeout, sink.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Handles one command; the reply (ack or error) as JSON.
    fn command(&self, request: Result<Request, InteractionError>) -> Utf8Bytes {
        let nonce = request.as_ref().ok().and_then(|r| r.nonce.clone());
        let reply = match request.and_then(|r| self.hub.handle(&self.actor, r)) {
            Ok(handled) => json!({
                "type": "ack",
                "nonce": nonce,
                "seqs": handled.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
                "replayed": handled.replayed,
                // What the room's channel does not bring back to an attendee: its own vote,
                // hand, private message (only moderators see those).
                "own": own_hidden_events(&self.actor, &handled.events),
            }),
            Err(err) => json!({
                "type": "error",
                "code": err.code(),
                "status": err.status(),
                "detail": err.to_string(),
                "nonce": nonce,
                "retry_after_ms": err.retry_after_ms(),
            }),
        };
        Utf8Bytes::from(reply.to_string())
    }
}
