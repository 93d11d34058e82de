//! The waiting room on a WebSocket: an attendee the room holds ([`crate::waiting_room`]) is
//! told `{"type":"waiting","reason":"not_live"|"admission"|"approval","participant":{…},
//! "token":…,"phase":…,"room":{"name":…,"starts_at":…}}` instead of `welcome`, and nothing of the room's
//! interaction; its commands are answered with the error `waiting` (403). When it is let in (the
//! room goes live, the host admits it, its registration is approved) the connection goes on
//! with `welcome` as if it had just connected. A revocation, or the rejection of its
//! registration, closes it as usual (`removed`, 4003).
//!
//! Moderators get the list, `{"type":"waiting_list","waiting_room":…,"count":…,"waiting":[…]}`
//! (the [`LIST_MAX`] longest waiting), at most every
//! [`LIST_INTERVAL`] while it changes (a room going live with thousands waiting sends a few
//! lists, not one per attendee).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use townhall_interaction::{Actor, Role};

use super::SharedState;
use super::lifecycle::waiting_view;
use super::ws::{CLOSE_REMOVED, Sink, send};
use crate::interaction::RoomHub;
use crate::registration::RegistrationStatus;
use crate::rooms::Room;
use crate::waiting_room::hold_reason;

/// Most people a waiting list sent to moderators names (`count` says how many wait in all;
/// `GET /api/rooms/{room}/waiting` lists everyone).
pub const LIST_MAX: usize = 200;

/// Least time between two waiting lists sent to a room's moderators.
pub const LIST_INTERVAL: Duration = Duration::from_millis(250);

/// A connection that waits.
pub(super) struct Waiting<'a> {
    pub state: &'a SharedState,
    pub room: &'a Arc<Room>,
    pub hub: &'a Arc<RoomHub>,
    pub actor: &'a Actor,
    pub token_id: Option<&'a str>,
    /// The attendee's token, handed back as in `welcome`.
    pub identity: Option<&'a str>,
    pub timeout: Duration,
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Waiting<'_> {
    /// Holds the connection while the room holds the attendee; `true` once let in, `false` if
    /// the connection ended meanwhile.
    pub async fn hold(&self, sink: &mut Sink, incoming: &mut SplitStream<WebSocket>) -> bool {
        if self.actor.role != Role::Attendee {
            return true;
        }
        let participant = &self.actor.participant_id;
        let mut changed = self.room.lobby.changed.subscribe();
        let mut revocations = self.hub.subscribe(Role::Attendee);
        let mut told = None;
        let mut waits = false;
        let let_in = loop {
            changed.borrow_and_update();
            let room_state = self.room.state();
            let registration = self.state.registration_status(&self.room.record.id, participant);
            if registration == Some(RegistrationStatus::Rejected) {
                self.close_removed(sink, "rejected").await;
                break false;
            }
            let pending = registration == Some(RegistrationStatus::Pending);
            let admitted = room_state.admitted.contains(participant);
            let Some(reason) = hold_reason(room_state.phase, room_state.waiting_room, pending, admitted) else {
                break true;
            };
            if told != Some(reason) {
                let list_changed = self.room.lobby.waiting.lock().unwrap_or_else(|e| e.into_inner()).wait(
                    participant,
                    &self.actor.name,
                    reason,
                    wall_clock_ms(),
                    !waits,
                );
                waits = true;
                if list_changed {
                    list_changed_in(self.state, self.room);
                }
                tracing::debug!(room = %self.room.record.id, %participant, ?reason, "waiting");
                let notice = json!({
                    "type": "waiting",
                    "reason": reason,
                    "participant": self.actor,
                    "token": self.identity,
                    "phase": room_state.phase,
                    "room": { "name": self.room.record.name, "starts_at": self.room.record.details.starts_at },
                });
                if !send(sink, Utf8Bytes::from(notice.to_string()), self.timeout).await {
                    break false;
                }
                told = Some(reason);
            }
            tokio::select! {
                result = changed.changed() => if result.is_err() { break false },
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        let error = json!({
                            "type": "error",
                            "code": "waiting",
                            "status": 403,
                            "detail": "you are in the waiting room: the host lets you in",
                        });
                        if !send(sink, Utf8Bytes::from(error.to_string()), self.timeout).await {
                            break false;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => break false,
                },
                outgoing = revocations.recv() => match outgoing {
                    Ok(outgoing) if outgoing.removes_client(self.actor, self.token_id) => {
                        self.close_removed(sink, "revoked").await;
                        break false;
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break false,
                },
            }
        };
        if waits && self.room.lobby.waiting.lock().unwrap_or_else(|e| e.into_inner()).stop_waiting(participant) {
            list_changed_in(self.state, self.room);
        }
        let_in
    }
}

impl Waiting<'_> {
    /// Tells the client it was removed (`reason`: `revoked`, `rejected`) and closes (4003).
    async fn close_removed(&self, sink: &mut Sink, reason: &str) {
        tracing::info!(room = %self.room.record.id, participant = %self.actor.participant_id, reason, "waiting connection removed");
        let notice = json!({"type": "removed", "reason": reason}).to_string();
        let _ = send(sink, Utf8Bytes::from(notice), self.timeout).await;
        let frame = CloseFrame { code: CLOSE_REMOVED, reason: Utf8Bytes::from_static("removed") };
        let _ = tokio::time::timeout(self.timeout, sink.send(Message::Close(Some(frame)))).await;
    }
}

/// The waiting list of `room` changed: its moderators get it within [`LIST_INTERVAL`].
pub fn list_changed_in(state: &SharedState, room: &Arc<Room>) {
    if room.lobby.waiting_list_due.swap(true, Ordering::AcqRel) {
        return;
    }
    let (state, room) = (state.clone(), room.clone());
    tokio::spawn(async move {
        tokio::time::sleep(LIST_INTERVAL).await;
        room.lobby.waiting_list_due.store(false, Ordering::Release);
        let mut list = waiting_view(&room, LIST_MAX);
        list["type"] = json!("waiting_list");
        if let Err(err) = state.interaction.tell_moderators(&room.record.id, &room.hls, &list) {
            tracing::warn!(room = %room.record.id, %err, "waiting list not sent");
        }
    });
}
