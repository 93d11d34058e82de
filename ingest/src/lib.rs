//! townhall's ingest: WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) sessions on one UDP port,
//! the SFU stage that forwards presenters' RTP to subscribers, and the depacketizers that turn
//! it into `Frame`s for the packager.
//!
//! Layout: sans-IO cores ([`h264`], [`timeline`], [`rewrite`], [`stun`], [`sdp`], the routing
//! table in [`mux`]) and thin tokio shells ([`mux::receive_loop`], [`session`]). [`Ingest`] is
//! the façade the HTTP layer calls: it answers offers and keeps the session registry.

pub mod error;
pub mod h264;
pub mod metrics;
pub mod mux;
pub mod peer;
pub mod rewrite;
pub mod sdp;
pub mod session;
pub mod stage;
pub mod stun;
pub mod timeline;
pub mod video_off;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub use error::{Error, Result};
pub use metrics::Metrics;
pub use peer::IceTimeouts;
pub use sdp::Purpose;
pub use session::PlaySource;
pub use stage::{Stage, StageFrame, StageLimits};

use mux::Router;
use session::{Command, DriverContext, RoleSetup};

/// Settings of the ingest side (documented in the server's config).
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Where the shared media socket binds.
    pub udp_listen: SocketAddr,
    /// Addresses to advertise in ICE candidates; empty: the bound address, or every local
    /// interface when bound to the unspecified address.
    pub public_ips: Vec<IpAddr>,
    pub ice: IceTimeouts,
    /// Least time between two PLIs sent to one publisher.
    pub keyframe_min_interval: Duration,
    /// Datagrams a session may have queued before new ones are dropped.
    pub session_queue_datagrams: usize,
}

/// A running session, as the HTTP layer sees it.
#[derive(Debug)]
pub struct SessionHandle {
    pub id: String,
    pub room: String,
    /// `Some(presenter)` for WHIP sessions.
    pub presenter: Option<String>,
    etag: Mutex<String>,
    commands: mpsc::Sender<Command>,
}

/// The result of answering an offer.
#[derive(Debug)]
pub struct Answered {
    pub session: Arc<SessionHandle>,
    pub answer: String,
}

fn new_etag() -> String {
    format!("\"{:016x}\"", rand::random::<u64>())
}

impl SessionHandle {
    /// The entity tag of the session's ICE state (RFC 9725 §4.3.1), quoted.
    pub fn etag(&self) -> String {
        self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a trickle/restart fragment; `Some(fragment)` with our new credentials after an
    /// ICE restart (the ETag changes then).
    /// `allow_restart` is false when the client matched with `*` (RFC 9725 §4.3.1).
    pub async fn patch(&self, fragment: sdp::SdpFragment, allow_restart: bool) -> Result<Option<String>> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Patch { fragment, allow_restart, reply }).await.map_err(|_| Error::SessionGone)?;
        let result = answer.await.map_err(|_| Error::SessionGone)??;
        if result.is_some() {
            *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = new_etag();
        }
        Ok(result)
    }

    /// Asks the session to end; returns at once.
    pub fn close(&self) {
        let _ = self.commands.try_send(Command::Close);
    }
}

/// The ingest side: one UDP socket, its router, and the registry of sessions.
pub struct Ingest {
    config: IngestConfig,
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    candidates: Vec<SocketAddr>,
    router: Arc<Router>,
    sessions: Arc<Mutex<HashMap<String, Arc<SessionHandle>>>>,
    pub metrics: Arc<Metrics>,
    /// The runtime media tasks run on: the one `start` was called on, whoever calls later.
    runtime: tokio::runtime::Handle,
}

fn advertised_addresses(config: &IngestConfig, bound: SocketAddr) -> Vec<SocketAddr> {
    if !config.public_ips.is_empty() {
        return config.public_ips.iter().map(|ip| SocketAddr::new(*ip, bound.port())).collect();
    }
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let mut ips: Vec<IpAddr> =
        if_addrs::get_if_addrs().map(|ifs| ifs.into_iter().map(|i| i.ip()).collect()).unwrap_or_default();
    ips.retain(|ip| {
        ip.is_ipv4() == bound.is_ipv4() && !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
    });
    if ips.is_empty() {
        ips.push(if bound.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        });
    }
    // Non-loopback first: that is what remote peers can reach.
    ips.sort_by_key(|ip| ip.is_loopback());
    ips.into_iter().map(|ip| SocketAddr::new(ip, bound.port())).collect()
}

impl Ingest {
    /// Binds the media socket and starts routing datagrams. Every media task (the socket's
    /// receive loop, each session) runs on the runtime this is called on, so that a binary can
    /// keep media apart from its HTTP serving.
    pub async fn start(config: IngestConfig) -> Result<Arc<Self>> {
        let socket = Arc::new(UdpSocket::bind(config.udp_listen).await?);
        let local_addr = socket.local_addr()?;
        let candidates = advertised_addresses(&config, local_addr);
        tracing::info!(udp = %local_addr, candidates = ?candidates, "media port open");
        let router = Arc::new(Router::default());
        let metrics = Arc::new(Metrics::default());
        let runtime = tokio::runtime::Handle::current();
        runtime.spawn(mux::receive_loop(socket.clone(), router.clone(), metrics.clone()));
        Ok(Arc::new(Self {
            config,
            socket,
            local_addr,
            candidates,
            router,
            sessions: Arc::default(),
            metrics,
            runtime,
        }))
    }

    /// The bound media address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Addresses put in our ICE candidates.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    pub fn session(&self, id: &str) -> Option<Arc<SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Sessions of one room.
    pub fn room_sessions(&self, room: &str) -> Vec<Arc<SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|s| s.room == room).cloned().collect()
    }

    /// Answers a WHIP offer: `presenter` publishes on `stage`, replacing an earlier session of
    /// the same presenter.
    pub fn publish(&self, stage: &Arc<Stage>, presenter: &str, offer: &str) -> Result<Answered> {
        let negotiated =
            peer::answer_offer(offer, Purpose::Publish, &self.candidates, self.config.ice, Instant::now())?;
        let id = new_session_id();
        let (feed, replaced) = stage.go_live(presenter, &id)?;
        if let Some(old) = replaced.and_then(|old| self.session(&old)) {
            tracing::info!(room = %stage.room, %presenter, old = %old.id, new = %id, "presenter reconnected: replacing session");
            old.close();
        }
        let role = RoleSetup::Publish { presenter: presenter.to_owned(), feed };
        Ok(self.spawn(stage, id, Some(presenter.to_owned()), negotiated, role))
    }

    /// Answers a WHEP offer for `source` on `stage`.
    pub fn play(&self, stage: &Arc<Stage>, source: PlaySource, offer: &str) -> Result<Answered> {
        if let PlaySource::Presenter(p) = &source
            && stage.feed(p).is_none()
        {
            return Err(Error::UnknownPresenter(p.clone()));
        }
        let negotiated = peer::answer_offer(offer, Purpose::Play, &self.candidates, self.config.ice, Instant::now())?;
        let id = new_session_id();
        Ok(self.spawn(stage, id, None, negotiated, RoleSetup::Play { source }))
    }

    fn spawn(
        &self,
        stage: &Arc<Stage>,
        id: String,
        presenter: Option<String>,
        negotiated: peer::Negotiated,
        role: RoleSetup,
    ) -> Answered {
        let (datagram_tx, datagram_rx) = mpsc::channel(self.config.session_queue_datagrams.max(16));
        let (command_tx, command_rx) = mpsc::channel(16);
        self.router.add_ufrag(&negotiated.local_ufrag, &id, datagram_tx.clone());
        let handle = Arc::new(SessionHandle {
            id: id.clone(),
            room: stage.room.clone(),
            presenter: presenter.clone(),
            etag: Mutex::new(new_etag()),
            commands: command_tx,
        });
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), handle.clone());
        let publisher = presenter.is_some();
        Metrics::inc(&self.metrics.sessions_total);
        session::count_session(&self.metrics, publisher, 1);
        let sessions = self.sessions.clone();
        let metrics = self.metrics.clone();
        let end_id = id.clone();
        let ctx = DriverContext {
            id,
            stage: stage.clone(),
            socket: self.socket.clone(),
            local_addr: self.local_addr,
            router: self.router.clone(),
            metrics: self.metrics.clone(),
            keyframe_min_interval: self.config.keyframe_min_interval,
            loopback_only: self.candidates.iter().all(|c| c.ip().is_loopback()),
            connect_timeout: self.config.ice.disconnected + self.config.ice.failed,
            datagram_tx,
            on_end: Box::new(move || {
                sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&end_id);
                session::count_session(&metrics, publisher, -1);
                tracing::info!(session = %end_id, "session ended");
            }),
        };
        let answer = negotiated.answer.clone();
        self.runtime.spawn(session::run(ctx, negotiated, role, datagram_rx, command_rx));
        Answered { session: handle, answer }
    }

    /// Ends every session of a room (the room was deleted).
    pub fn close_room(&self, room: &str) {
        for session in self.room_sessions(room) {
            session.close();
        }
    }

    /// Number of sessions the UDP router still routes to (zero after every session ended).
    pub fn routed_sessions(&self) -> usize {
        self.router.sessions()
    }
}

fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
