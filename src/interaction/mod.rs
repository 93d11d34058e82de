//! The interaction service: one [`RoomHub`] per room around the sans-IO state machine
//! ([`townhall_interaction::RoomInteraction`]). A command is stamped with program time at the
//! live edge ([`townhall_interaction::stamp`]), checked and applied, its events appended to the
//! event store (SQLite under the data dir), then delivered three ways from that one log: fanned
//! out to the room's WebSockets ([`crate::http::ws`]), listed as EXT-X-DATERANGE in the room's
//! playlists and queued as ID3 `emsg` for its next parts ([`inband`]).
//!
//! Decided here:
//! - Fan-out is a `tokio::sync::broadcast` of events serialized once; each client filters by its
//!   role. The channel's capacity is each client's queue: a client that falls that far behind is
//!   told to resync and cut off, and nobody else waits for it.
//! - Attendees never receive individual votes: while votes come in, each open poll's results
//!   are sent to everyone at most every `websocket.results_interval_ms` (`poll_results`).
//! - If the store cannot append, the room is rebuilt from the store (the store is the truth)
//!   and the command fails with 500 `storage`.

pub mod inband;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::broadcast;
use townhall_interaction::{
    Actor, ChatPage, Command, Event, EventKind, EventStore, Handled, InteractionConfig, InteractionError, LiveEdge,
    PollResults, ProgramTime, Request, Role, RoomInteraction, Snapshot, SqliteStore, stamp,
};
use townhall_origin::HlsStream;

use crate::access::{Access, unix_now_s};

use self::inband::InBand;

/// Settings of the WebSocket delivery (`[websocket]`).
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Events a client may have waiting before it is told to resync.
    pub queue_events: usize,
    /// Longest a single send to a client may take before it is cut off.
    pub send_timeout: Duration,
    /// Largest message a client may send.
    pub max_message_bytes: usize,
    /// Least time between two `poll_results` of a poll.
    pub results_interval: Duration,
}

/// What a room's clients receive: an event of the log, or a message that is not in it
/// (`poll_results`, a moderation notice, a stage invitation, `removed`), serialized once for
/// every client.
#[derive(Debug)]
pub struct Outgoing {
    pub json: Utf8Bytes,
    pub target: Target,
}

/// Who an [`Outgoing`] is for.
#[derive(Debug)]
pub enum Target {
    /// An event of the log: whoever may see it ([`Event::visible_to_participant`]).
    Event(Event),
    /// Every client of the room.
    Everyone,
    /// One participant (a stage invitation).
    Participant(String),
    /// The connections a revocation closes: they get this, then the close.
    Close(Removal),
}

/// Whose connections a revocation closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Every connection of a participant (all its tokens were revoked: a ban).
    Participant(String),
    /// The connections made with one signed token (by its `jti`).
    Token(String),
    /// Every connection of the room (a breakout room closes).
    Everyone,
}

impl Outgoing {
    fn new(target: Target, json: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { json: Utf8Bytes::from(json.into()), target })
    }

    /// The seq of the event it carries, if it is one.
    pub fn seq(&self) -> Option<u64> {
        match &self.target {
            Target::Event(event) => Some(event.seq),
            _ => None,
        }
    }

    /// Whether the connection of `actor` made with `token_id` receives it.
    pub fn visible_to(&self, actor: &Actor, token_id: Option<&str>) -> bool {
        match &self.target {
            Target::Event(event) => event.visible_to_participant(actor.role, &actor.participant_id),
            Target::Everyone => true,
            Target::Participant(participant) => *participant == actor.participant_id,
            Target::Close(_) => self.removes_client(actor, token_id),
        }
    }

    /// Whether this message closes the connection of `actor` made with `token_id`.
    pub fn removes_client(&self, actor: &Actor, token_id: Option<&str>) -> bool {
        match &self.target {
            Target::Close(removal) => removal.applies_to(&actor.participant_id, token_id),
            _ => false,
        }
    }
}

impl Removal {
    /// Whether it takes away what `participant` opened with the signed token `token_id` (a
    /// WebSocket, a WebRTC session).
    pub fn applies_to(&self, participant: &str, token_id: Option<&str>) -> bool {
        match self {
            Removal::Participant(p) => p == participant,
            Removal::Token(jti) => token_id == Some(jti.as_str()),
            Removal::Everyone => true,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct InteractionMetrics {
    pub clients: AtomicU64,
    pub events: AtomicU64,
    pub resyncs: AtomicU64,
    pub cut_off: AtomicU64,
}

/// Every room's hub and the store.
pub struct Interaction {
    config: InteractionConfig,
    pub delivery: DeliverySettings,
    store: Arc<Mutex<SqliteStore>>,
    hubs: Mutex<HashMap<String, Arc<RoomHub>>>,
    pub metrics: Arc<InteractionMetrics>,
    /// Signs the presenter token of an attendee invited to the stage.
    access: Arc<Access>,
}

impl Interaction {
    /// Opens the event store (`<data_dir>/interaction.sqlite3`, migrated).
    pub fn open(
        data_dir: &std::path::Path,
        config: InteractionConfig,
        delivery: DeliverySettings,
        access: Arc<Access>,
    ) -> anyhow::Result<Self> {
        let store = SqliteStore::open_in(data_dir)
            .map_err(|e| anyhow::anyhow!("opening the interaction store in {}: {e}", data_dir.display()))?;
        Ok(Self {
            config,
            delivery,
            store: Arc::new(Mutex::new(store)),
            hubs: Mutex::default(),
            metrics: Arc::default(),
            access,
        })
    }

    /// The hub of a room, rebuilt from its stored events on first use.
    pub fn hub(&self, room: &str, hls: &Arc<HlsStream>) -> Result<Arc<RoomHub>, InteractionError> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hub) = hubs.get(room) {
            return Ok(hub.clone());
        }
        let hub = RoomHub::restore(room, hls.clone(), self, self.config.clone())?;
        let ticker = Arc::downgrade(&hub);
        tokio::spawn(send_poll_results(ticker, self.delivery.results_interval));
        hubs.insert(room.to_owned(), hub.clone());
        Ok(hub)
    }

    /// Tells every WebSocket of `room` something that is not an event of the log (a moderation
    /// notice), at once.
    pub fn announce(
        &self,
        room: &str,
        hls: &Arc<HlsStream>,
        message: &serde_json::Value,
    ) -> Result<(), InteractionError> {
        self.hub(room, hls)?.send_all(Outgoing::new(Target::Everyone, message.to_string()));
        Ok(())
    }

    /// Tells the moderators' WebSockets of `room` something (the waiting list).
    pub fn tell_moderators(
        &self,
        room: &str,
        hls: &Arc<HlsStream>,
        message: &serde_json::Value,
    ) -> Result<(), InteractionError> {
        let _ = self.hub(room, hls)?.moderators.send(Outgoing::new(Target::Everyone, message.to_string()));
        Ok(())
    }

    /// Tells the WebSockets of one participant of `room` something that is not an event of the
    /// log (a breakout assignment), at once.
    pub fn tell(
        &self,
        room: &str,
        hls: &Arc<HlsStream>,
        participant: &str,
        message: &serde_json::Value,
    ) -> Result<(), InteractionError> {
        let hub = self.hub(room, hls)?;
        hub.send_all(Outgoing::new(Target::Participant(participant.to_owned()), message.to_string()));
        Ok(())
    }

    /// Closes every WebSocket of `room` after `message` (a breakout room ends).
    pub fn close_all(&self, room: &str, message: &serde_json::Value) {
        if let Some(hub) = self.hubs.lock().unwrap_or_else(|e| e.into_inner()).get(room) {
            hub.send_all(Outgoing::new(Target::Close(Removal::Everyone), message.to_string()));
        }
    }

    /// Closes the WebSockets a revocation in `room` names, telling them why.
    pub fn remove(&self, room: &str, removal: Removal) {
        if let Some(hub) = self.hubs.lock().unwrap_or_else(|e| e.into_inner()).get(room) {
            let json = serde_json::json!({"type": "removed", "reason": "revoked"}).to_string();
            hub.send_all(Outgoing::new(Target::Close(removal), json));
        }
    }

    /// Forgets a deleted room: its hub and its stored events.
    pub fn remove_room(&self, room: &str) -> Result<(), InteractionError> {
        self.hubs.lock().unwrap_or_else(|e| e.into_inner()).remove(room);
        self.store.lock().unwrap_or_else(|e| e.into_inner()).delete_room(room)
    }
}

struct HubState {
    core: RoomInteraction,
    inband: InBand,
    /// Open polls with votes not yet reported in `poll_results`.
    polls_voted: BTreeSet<String>,
}

/// One room's interaction, live.
pub struct RoomHub {
    pub room: String,
    hls: Arc<HlsStream>,
    config: InteractionConfig,
    state: Mutex<HubState>,
    store: Arc<Mutex<SqliteStore>>,
    /// What attendees receive: public events, and events a moderator made about someone.
    sender: broadcast::Sender<Arc<Outgoing>>,
    access: Arc<Access>,
    /// What moderators receive: every event of the log. Attendees' votes, hands and private
    /// messages go only here (their authors get them in their ack), so that a vote does not
    /// wake every attendee's connection.
    moderators: broadcast::Sender<Arc<Outgoing>>,
    metrics: Arc<InteractionMetrics>,
    /// The stage invitations sent (by participant: the last one), as the moderators were told
    /// (`stage_invitation_sent`: no token), so a studio opened later can revoke them. In memory.
    invitations: Mutex<BTreeMap<String, serde_json::Value>>,
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl RoomHub {
    fn restore(
        room: &str,
        hls: Arc<HlsStream>,
        service: &Interaction,
        config: InteractionConfig,
    ) -> Result<Arc<Self>, InteractionError> {
        let store = service.store.clone();
        let events = store.lock().unwrap_or_else(|e| e.into_inner()).load(room)?;
        let mut inband = InBand::default();
        for event in &events {
            for range in inband.date_ranges(event) {
                hls.upsert_date_range(range);
            }
        }
        let core = RoomInteraction::restore(config.clone(), events)?;
        tracing::debug!(room, seq = core.last_seq(), "interaction restored");
        Ok(Arc::new(Self {
            room: room.to_owned(),
            hls,
            config,
            state: Mutex::new(HubState { core, inband, polls_voted: BTreeSet::new() }),
            store,
            sender: broadcast::channel(service.delivery.queue_events.max(1)).0,
            moderators: broadcast::channel(service.delivery.queue_events.max(1)).0,
            access: service.access.clone(),
            metrics: service.metrics.clone(),
            invitations: Mutex::default(),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Program time now at the live edge (wall clock when no program runs).
    pub fn now_at(&self) -> ProgramTime {
        let edge = self.hls.live_edge_program_time().map(|(program_ms, observed_wall_ms)| LiveEdge {
            program_time: ProgramTime(program_ms.max(0) as u64),
            observed_wall_ms,
        });
        stamp(edge, wall_clock_ms())
    }

    /// Handles one command of `actor`: stamps, checks, applies, stores and delivers its events.
    pub fn handle(&self, actor: &Actor, request: Request) -> Result<Handled, InteractionError> {
        let now = wall_clock_ms();
        let at = self.now_at();
        let mut state = self.state();
        // The name of a participant invited to the stage, from the hand queue, before the
        // invitation takes them out of it.
        let invited_name = match &request.command {
            Command::HandInvite { participant } => {
                state.core.hands().iter().find(|h| h.participant_id == *participant).map(|h| h.name.clone())
            }
            _ => None,
        };
        let handled = state.core.handle(actor, request, now, at)?;
        if handled.replayed || handled.events.is_empty() {
            return Ok(handled);
        }
        let appended = self.store.lock().unwrap_or_else(|e| e.into_inner()).append(&self.room, &handled.events);
        if let Err(err) = appended {
            tracing::error!(room = %self.room, %err, "interaction events not stored: the room is rebuilt from the store");
            let events = self.store.lock().unwrap_or_else(|e| e.into_inner()).load(&self.room)?;
            state.core = RoomInteraction::restore(self.config.clone(), events)?;
            return Err(err);
        }
        self.metrics.events.fetch_add(handled.events.len() as u64, Ordering::Relaxed);
        for event in &handled.events {
            let json = event.to_json();
            for range in state.inband.date_ranges(event) {
                self.hls.upsert_date_range(range);
            }
            if let Some(metadata) = inband::timed_metadata(event, &json) {
                self.hls.push_metadata(metadata);
            }
            match &event.kind {
                EventKind::PollVoted { poll, .. } => {
                    state.polls_voted.insert(poll.clone());
                }
                EventKind::PollClosed { poll, .. } => {
                    state.polls_voted.remove(poll);
                }
                _ => {}
            }
            tracing::debug!(room = %self.room, seq = event.seq, kind = event.kind.type_name(), "interaction event");
            if let EventKind::HandInvited { participant } = &event.kind {
                self.send_invitation(participant, invited_name.as_deref().unwrap_or(participant));
            }
            // Sent under the state's lock: every client sees events in seq order.
            let outgoing = Outgoing::new(Target::Event(event.clone()), json);
            if reaches_attendees_by_channel(event) {
                let _ = self.sender.send(outgoing.clone());
            }
            let _ = self.moderators.send(outgoing);
        }
        Ok(handled)
    }

    /// Receives everything delivered from now on to a participant of `role`. Subscribe before
    /// taking a snapshot or reading the backlog, then skip what has a seq at or below what was
    /// sent.
    pub fn subscribe(&self, role: Role) -> broadcast::Receiver<Arc<Outgoing>> {
        if role.is_moderator() { self.moderators.subscribe() } else { self.sender.subscribe() }
    }

    /// Hands an invited attendee a presenter token of its own participant id, over its
    /// WebSocket only: with it, it publishes to the stage as presenter `<participant id>`. The
    /// host takes it off with `DELETE /api/rooms/{room}/presenters/{id}` and revokes the token
    /// by its `jti`, which the moderators get in `stage_invitation_sent` (revoking by
    /// participant would also ban the attendee's own token).
    fn send_invitation(&self, participant: &str, name: &str) {
        let (token, claims) =
            self.access.issue(&self.room, Role::Presenter, participant, name, self.access.max_ttl_s, unix_now_s());
        tracing::info!(room = %self.room, %participant, jti = %claims.jti, "invited to the stage");
        let json = serde_json::json!({
            "type": "stage_invitation",
            "presenter": participant,
            "token": token,
            "jti": claims.jti,
            "expires_at": claims.exp,
        });
        let _ = self.sender.send(Outgoing::new(Target::Participant(participant.to_owned()), json.to_string()));
        // The moderators learn the token's `jti` (not the token), so that the studio's
        // "remove" can revoke this one token and leave the attendee's own identity alone.
        let sent = serde_json::json!({
            "type": "stage_invitation_sent",
            "presenter": participant,
            "name": name,
            "jti": claims.jti,
            "expires_at": claims.exp,
        });
        let _ = self.moderators.send(Outgoing::new(Target::Everyone, sent.to_string()));
        self.invitations.lock().unwrap_or_else(|e| e.into_inner()).insert(participant.to_owned(), sent);
    }

    /// The stage invitations whose token still publishes (not expired, not revoked), as
    /// `stage_invitation_sent` said them.
    pub fn invitations(&self, now_s: u64) -> Vec<serde_json::Value> {
        let mut invitations = self.invitations.lock().unwrap_or_else(|e| e.into_inner());
        invitations.retain(|participant, sent| {
            let jti = sent["jti"].as_str().unwrap_or_default();
            sent["expires_at"].as_u64().is_some_and(|exp| exp > now_s)
                && !self.access.is_revoked_token(&self.room, jti, participant)
        });
        invitations.values().cloned().collect()
    }

    /// Sends to every client (moderators and attendees).
    fn send_all(&self, outgoing: Arc<Outgoing>) {
        let _ = self.moderators.send(outgoing.clone());
        let _ = self.sender.send(outgoing);
    }

    pub fn snapshot(&self, viewer: &Actor) -> Snapshot {
        self.state().core.snapshot(viewer)
    }

    pub fn last_seq(&self) -> u64 {
        self.state().core.last_seq()
    }

    pub fn history(&self, viewer: &Actor, before: Option<u64>, limit: usize) -> ChatPage {
        self.state().core.history(viewer, before, limit)
    }

    pub fn unanswered_csv(&self) -> String {
        self.state().core.unanswered_csv()
    }

    pub fn unanswered(&self) -> Vec<townhall_interaction::QuestionView> {
        self.state().core.unanswered()
    }

    /// Stored events after `seq` (at most `limit`) that `viewer` may see, and whether more
    /// follow.
    pub fn events_since(&self, viewer: &Actor, seq: u64, limit: usize) -> Result<(Vec<Event>, bool), InteractionError> {
        let mut from = seq;
        let mut visible = Vec::new();
        loop {
            let batch = self.store.lock().unwrap_or_else(|e| e.into_inner()).since(&self.room, from, limit)?;
            let full = batch.len() == limit;
            for event in batch {
                from = event.seq;
                if event.visible_to_participant(viewer.role, &viewer.participant_id) {
                    if visible.len() == limit {
                        return Ok((visible, true));
                    }
                    visible.push(event);
                }
            }
            if !full {
                return Ok((visible, false));
            }
        }
    }

    /// Sends the results of the polls voted in since the last call.
    fn send_poll_results(&self) {
        let mut state = self.state();
        if state.polls_voted.is_empty() {
            return;
        }
        let at = self.now_at();
        for poll in std::mem::take(&mut state.polls_voted) {
            let Some(results) = state.core.poll_results(&poll) else {
                continue;
            };
            let message = PollResultsMessage { kind: "poll_results", at, results };
            let json = serde_json::to_string(&message).unwrap_or_default();
            self.send_all(Outgoing::new(Target::Everyone, json));
        }
    }
}

/// Whether attendees' connections must receive `event`: it is public, or it concerns a
/// participant other than the one who made it (a moderator lowered their hand, invited them,
/// deleted their message). What only moderators and its author see reaches the author in the
/// ack of its command ([`own_hidden_events`]).
fn reaches_attendees_by_channel(event: &Event) -> bool {
    let named = match &event.kind {
        EventKind::HandLowered { participant }
        | EventKind::HandInvited { participant }
        | EventKind::ChatDeleted { author: participant, .. } => Some(participant),
        _ => None,
    };
    event.visible_to(Role::Attendee) || named.is_some_and(|p| !p.is_empty() && *p != event.actor.participant_id)
}

/// The events of a command that its (attendee) author would not get on its channel.
pub fn own_hidden_events<'a>(actor: &Actor, events: &'a [Event]) -> Vec<&'a Event> {
    if actor.role.is_moderator() {
        return Vec::new();
    }
    events.iter().filter(|e| !reaches_attendees_by_channel(e)).collect()
}

/// `{"type":"poll_results","at":…,"poll":"p1","counts":[3,4],"voters":7,"state":"open"}`.
#[derive(Serialize)]
struct PollResultsMessage {
    #[serde(rename = "type")]
    kind: &'static str,
    at: ProgramTime,
    #[serde(flatten)]
    results: PollResults,
}

async fn send_poll_results(hub: Weak<RoomHub>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(50)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.send_poll_results();
    }
}
