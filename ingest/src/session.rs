//! The driver of one WebRTC session: feeds the sans-IO peer connection with datagrams, timers
//! and commands, sends what it writes on the shared UDP socket, and moves media between it and
//! the stage. This is the only file where a session touches tokio.
//!
//! A publisher (WHIP) session forwards every RTP packet to its presenter's feed, depacketizes it
//! into `Frame`s for the room's frame bus, maps RTCP Sender Reports onto program time, and
//! answers subscribers' keyframe requests with a throttled PLI (RFC 4585 §6.3.1).
//! A subscriber (WHEP) session re-bases the feed's packets onto its own SSRC/sequence/timeline
//! and forwards them; video starts at a keyframe; PLI/FIR it receives go upstream (RFC 5104
//! §4.3.1 for FIR).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrackId;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use townhall_packager::{Codec, Frame, TrackInfo, TrackKind};

use crate::error::{Error, Result};
use crate::h264::{self, H264Depacketizer, RtpRef};
use crate::metrics::Metrics;
use crate::mux::{Datagram, Router};
use crate::peer::Negotiated;
use crate::rewrite::RtpRewriter;
use crate::sdp::{self, SdpFragment};
use crate::stage::{Feed, ForwardedPacket, OPUS_SILENCE, Stage, StageFrame};
use crate::timeline::RtpTimeline;
use crate::video_off::{Verdict, VideoOff};

mod ice_restart;
mod play;

/// What a subscriber plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaySource {
    /// The room's program: follows the host's switches.
    Program,
    /// One presenter.
    Presenter(String),
}

/// Commands from the HTTP side to a running session.
pub enum Command {
    /// Apply a trickle-ICE / ICE-restart fragment. Replies with our new ICE credentials as an
    /// SDP fragment when it was an ICE restart.
    Patch { fragment: SdpFragment, allow_restart: bool, reply: oneshot::Sender<Result<Option<String>>> },
    /// End the session (DELETE, replaced, room deleted).
    Close,
}

/// Everything a driver needs besides its peer connection.
pub struct DriverContext {
    pub id: String,
    pub stage: Arc<Stage>,
    pub socket: Arc<UdpSocket>,
    pub local_addr: SocketAddr,
    pub router: Arc<Router>,
    pub metrics: Arc<Metrics>,
    pub keyframe_min_interval: Duration,
    /// Our candidates are all loopback: ignore the peer's other candidates.
    pub loopback_only: bool,
    /// A session that is not connected this long after it was created ends.
    pub connect_timeout: Duration,
    /// This session's own input queue, to route a new ufrag to it after an ICE restart.
    pub datagram_tx: mpsc::Sender<Datagram>,
    /// Called once when the session has ended and its resources are released.
    pub on_end: Box<dyn FnOnce() + Send>,
}

/// The role-specific half of a driver.
pub enum RoleSetup {
    Publish { presenter: String, feed: Arc<Feed> },
    Play { source: PlaySource },
}

struct InboundTrack {
    kind: TrackKind,
    receiver: RTCRtpReceiverId,
    ssrc: u32,
    timeline: RtpTimeline,
    h264: H264Depacketizer,
    info: Option<Arc<TrackInfo>>,
    first_frame: bool,
    video_off: VideoOff,
}

struct OutboundTrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    payload_type: Option<u8>,
    rewriter: RtpRewriter,
}

struct Driver {
    ctx: DriverContext,
    pc: RTCPeerConnection,
    datagrams: mpsc::Receiver<Datagram>,
    commands: mpsc::Receiver<Command>,
    // Publisher side.
    presenter: Option<String>,
    feed: Option<Arc<Feed>>,
    inbound: HashMap<MediaStreamTrackId, InboundTrack>,
    last_keyframe_request: Option<Instant>,
    keyframe_request_due: Option<Instant>,
    // Subscriber side.
    source: Option<PlaySource>,
    program: Option<watch::Receiver<Option<Arc<Feed>>>>,
    source_feed: Option<Arc<Feed>>,
    packets: Option<broadcast::Receiver<Arc<ForwardedPacket>>>,
    outbound: HashMap<TrackKind, OutboundTrack>,
    sender_kinds: HashMap<MediaStreamTrackId, TrackKind>,
    video_waits_for_keyframe: bool,
    connected: bool,
    ended: bool,
}

/// Runs a session until it ends. Spawn this.
pub async fn run(
    ctx: DriverContext,
    negotiated: Negotiated,
    role: RoleSetup,
    datagrams: mpsc::Receiver<Datagram>,
    commands: mpsc::Receiver<Command>,
) {
    let Negotiated { pc, senders, .. } = negotiated;
    let mut driver = Driver {
        ctx,
        pc,
        datagrams,
        commands,
        presenter: None,
        feed: None,
        inbound: HashMap::new(),
        last_keyframe_request: None,
        keyframe_request_due: None,
        source: None,
        program: None,
        source_feed: None,
        packets: None,
        outbound: HashMap::new(),
        sender_kinds: HashMap::new(),
        video_waits_for_keyframe: true,
        connected: false,
        ended: false,
    };
    match role {
        RoleSetup::Publish { presenter, feed } => {
            driver.presenter = Some(presenter);
            driver.feed = Some(feed);
        }
        RoleSetup::Play { source } => {
            for (kind, sender, ssrc) in senders {
                let clock_rate = if kind == TrackKind::Video { 90_000 } else { 48_000 };
                if let Some(s) = driver.pc.rtp_sender(sender) {
                    driver.sender_kinds.insert(s.track().track_id().clone(), kind);
                }
                driver.outbound.insert(
                    kind,
                    OutboundTrack { sender, ssrc, payload_type: None, rewriter: RtpRewriter::new(clock_rate) },
                );
            }
            if source == PlaySource::Program {
                driver.program = Some(driver.ctx.stage.watch_program());
            }
            driver.source = Some(source);
        }
    }
    driver.run().await;
    let Driver { ctx, presenter, .. } = driver;
    ctx.router.remove_session(&ctx.id);
    if let Some(presenter) = presenter {
        ctx.stage.leave(&presenter, &ctx.id);
    }
    (ctx.on_end)();
}

async fn next_packet(
    rx: &mut Option<broadcast::Receiver<Arc<ForwardedPacket>>>,
) -> std::result::Result<Arc<ForwardedPacket>, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn program_changed(rx: &mut Option<watch::Receiver<Option<Arc<Feed>>>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

async fn keyframe_wanted(feed: &Option<Arc<Feed>>) {
    match feed {
        Some(feed) => feed.keyframe_wanted().await,
        None => std::future::pending().await,
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Driver {
    async fn run(&mut self) {
        let far = Duration::from_secs(3600);
        let connect_deadline = Instant::now() + self.ctx.connect_timeout;
        while !self.ended {
            self.pump().await;
            if self.ended {
                break;
            }
            let now = Instant::now();
            let mut deadline = self.pc.poll_timeout().unwrap_or(now + far);
            if let Some(due) = self.keyframe_request_due {
                deadline = deadline.min(due);
            }
            if !self.connected {
                if now >= connect_deadline {
                    tracing::info!(session = %self.ctx.id, room = %self.ctx.stage.room, "never connected: session ends");
                    Metrics::inc(&self.ctx.metrics.sessions_failed_total);
                    self.close().await;
                    break;
                }
                deadline = deadline.min(connect_deadline);
            }
            let sleep = tokio::time::sleep_until(deadline.into());
            tokio::select! {
                datagram = self.datagrams.recv() => match datagram {
                    Some(d) => self.on_datagram(d),
                    None => self.ended = true,
                },
                command = self.commands.recv() => match command {
                    Some(Command::Patch { fragment, allow_restart, reply }) => {
                        let _ = reply.send(self.on_patch(fragment, allow_restart));
                    }
                    Some(Command::Close) | None => self.close().await,
                },
                _ = sleep => {
                    let now = Instant::now();
                    if let Err(err) = self.pc.handle_timeout(now) {
                        tracing::debug!(session = %self.ctx.id, %err, "timeout handling failed");
                    }
                    if self.keyframe_request_due.is_some_and(|due| due <= now) {
                        self.keyframe_request_due = None;
                        self.send_keyframe_request(now);
                    }
                }
                _ = keyframe_wanted(&self.feed) => self.on_keyframe_wanted(Instant::now()),
                packet = next_packet(&mut self.packets) => self.on_forwarded(packet),
                alive = program_changed(&mut self.program) => {
                    if alive { self.follow_program(); } else { self.program = None; }
                }
            }
        }
    }

    fn on_datagram(&mut self, d: Datagram) {
        let msg = TaggedBytesMut {
            now: d.at,
            transport: TransportContext {
                local_addr: self.ctx.local_addr,
                peer_addr: d.from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: d.data,
        };
        if let Err(err) = self.pc.handle_read(msg) {
            tracing::debug!(session = %self.ctx.id, %err, "datagram refused");
        }
    }

    /// Drains the peer connection: datagrams to send, events, received media.
    async fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(msg) = self.pc.poll_write() {
                progressed = true;
                let len = msg.message.len() as u64;
                match self.ctx.socket.send_to(&msg.message, msg.transport.peer_addr).await {
                    Ok(_) => {
                        Metrics::inc(&self.ctx.metrics.udp_sent_packets_total);
                        Metrics::add(&self.ctx.metrics.udp_sent_bytes_total, len);
                    }
                    Err(err) => tracing::debug!(session = %self.ctx.id, %err, "udp send failed"),
                }
            }
            while let Some(event) = self.pc.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            while let Some(TaggedRTCMessage { now, message }) = self.pc.poll_read() {
                progressed = true;
                match message {
                    RTCMessage::RtpPacket(track, packet) => self.on_rtp(&track, packet, now),
                    RTCMessage::RtcpPacket(track, packets) => self.on_rtcp(&track, packets, now),
                    _ => {}
                }
            }
            if !progressed || self.ended {
                break;
            }
        }
    }

    fn on_event(&mut self, event: RTCPeerConnectionEvent) {
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                tracing::debug!(session = %self.ctx.id, room = %self.ctx.stage.room, %state, "connection state");
                match state {
                    RTCPeerConnectionState::Connected if !self.connected => {
                        self.connected = true;
                        Metrics::inc(&self.ctx.metrics.sessions_connected_total);
                        tracing::info!(session = %self.ctx.id, room = %self.ctx.stage.room, "session connected");
                        if self.source.is_some() {
                            self.start_playing();
                        }
                    }
                    RTCPeerConnectionState::Failed => {
                        Metrics::inc(&self.ctx.metrics.sessions_failed_total);
                        tracing::info!(session = %self.ctx.id, room = %self.ctx.stage.room, "session failed");
                        self.ended = true;
                    }
                    RTCPeerConnectionState::Closed => self.ended = true,
                    _ => {}
                }
            }
            RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(RTCIceConnectionState::Failed) => {
                Metrics::inc(&self.ctx.metrics.sessions_failed_total);
                tracing::info!(session = %self.ctx.id, room = %self.ctx.stage.room, "ICE failed");
                self.ended = true;
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.on_track_open(init.track_id, init.receiver_id, init.ssrc)
            }
            _ => {}
        }
    }

    fn on_track_open(&mut self, track_id: MediaStreamTrackId, receiver: RTCRtpReceiverId, ssrc: u32) {
        let Some(presenter) = self.presenter.clone() else {
            return;
        };
        let Some(rx) = self.pc.rtp_receiver(receiver) else {
            return;
        };
        let kind = match rx.track().kind() {
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video => TrackKind::Video,
            _ => TrackKind::Audio,
        };
        let clock_rate = if kind == TrackKind::Video { 90_000 } else { 48_000 };
        let info = (kind == TrackKind::Audio).then(|| {
            Arc::new(TrackInfo {
                id: format!("{presenter}/audio"),
                kind,
                codec: Codec::Opus { channels: 2 },
                timebase: clock_rate,
            })
        });
        tracing::info!(session = %self.ctx.id, room = %self.ctx.stage.room, %presenter, track = %track_id, ?kind, ssrc, "track open");
        self.inbound.insert(
            track_id,
            InboundTrack {
                kind,
                receiver,
                ssrc,
                timeline: RtpTimeline::new(clock_rate),
                h264: H264Depacketizer::new(),
                info,
                first_frame: true,
                video_off: VideoOff::new(),
            },
        );
        if kind == TrackKind::Video {
            // A new publisher's stream is only useful from a keyframe on.
            self.send_keyframe_request(Instant::now());
        }
    }

    fn on_rtp(&mut self, track_id: &MediaStreamTrackId, mut packet: rtc::rtp::Packet, now: Instant) {
        let Some(track) = self.inbound.get_mut(track_id) else {
            return;
        };
        let metrics = &self.ctx.metrics;
        Metrics::inc(&metrics.rtp_received_packets_total);
        if packet.payload.is_empty() {
            return; // padding-only probe: carries no media
        }
        let kind = track.kind;
        let arrival = unix_ms_now();
        let presenter = self.presenter.as_deref().unwrap_or_default();
        match kind {
            TrackKind::Video => {
                // A presenter whose video is off: their access units are held back and black
                // pictures go on in their place (to the frame bus and to subscribers).
                let off = self.feed.as_ref().is_some_and(|f| f.is_video_off());
                let keyframe_start = h264::starts_keyframe(&packet.payload);
                let (seq, timestamp) = (packet.header.sequence_number, packet.header.timestamp);
                let verdict = track.video_off.on_packet(seq, timestamp, keyframe_start, off);
                let rtp = RtpRef {
                    sequence_number: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    payload: &packet.payload,
                };
                let dropped_before = track.h264.dropped_access_units;
                if let Err(err) = track.h264.push(rtp) {
                    Metrics::inc(&metrics.rtp_malformed_packets_total);
                    tracing::debug!(session = %self.ctx.id, %err, "malformed H.264 RTP");
                }
                Metrics::add(&metrics.video_frames_dropped_total, track.h264.dropped_access_units - dropped_before);
                while let Some(au) = track.h264.pull() {
                    if let Some((sps, pps)) = au.new_parameters.clone() {
                        track.info = Some(Arc::new(TrackInfo {
                            id: format!("{presenter}/video"),
                            kind,
                            codec: Codec::H264 { sps, pps },
                            timebase: 90_000,
                        }));
                    }
                    let Some(info) = track.info.clone() else {
                        continue;
                    };
                    let mut payload = au.data;
                    if let Codec::H264 { sps, pps } = &info.codec
                        && let Some(black) = track.video_off.on_access_unit(au.rtp_timestamp, au.keyframe, sps, pps)
                    {
                        if let Some(feed) = &self.feed {
                            for (seq, marker, payload) in black.packets {
                                let mut header = packet.header.clone();
                                (header.sequence_number, header.timestamp, header.marker) =
                                    (seq, au.rtp_timestamp, marker);
                                let keyframe_start = h264::starts_keyframe(&payload);
                                let packet = rtc::rtp::Packet { header, payload };
                                feed.send(ForwardedPacket { kind, keyframe_start, packet });
                            }
                        }
                        match black.avcc {
                            Some(avcc) => payload = avcc,
                            None => {
                                if let Some(err) = track.video_off.error() {
                                    tracing::debug!(session = %self.ctx.id, %err, "video off: frame dropped");
                                }
                                continue;
                            }
                        }
                    }
                    let pts = track.timeline.extend(au.rtp_timestamp);
                    Metrics::inc(&metrics.video_frames_total);
                    let frame = Frame {
                        track_id: info.id.clone(),
                        pts,
                        dts: pts,
                        keyframe: au.keyframe,
                        discontinuity: au.discontinuity || std::mem::take(&mut track.first_frame),
                        capture_time_ms: track.timeline.capture_time_ms(pts, arrival),
                        wall_clock_synced: track.timeline.has_sender_report(),
                        payload,
                    };
                    self.ctx.stage.publish_frame(StageFrame { presenter: presenter.to_owned(), track: info, frame });
                }
                if verdict == Verdict::Hold {
                    return;
                }
                packet.header.sequence_number = track.video_off.out_seq(seq);
            }
            TrackKind::Audio => {
                // A muted presenter is heard as silence by the stage and the program alike; the
                // packet keeps its sequence number and timestamp, so nobody sees a gap.
                if self.feed.as_ref().is_some_and(|f| f.is_audio_muted()) {
                    packet.payload = Bytes::from_static(&OPUS_SILENCE);
                }
                let pts = track.timeline.extend(packet.header.timestamp);
                Metrics::inc(&metrics.audio_frames_total);
                if let Some(info) = track.info.clone() {
                    let frame = Frame {
                        track_id: info.id.clone(),
                        pts,
                        dts: pts,
                        keyframe: true,
                        discontinuity: std::mem::take(&mut track.first_frame),
                        capture_time_ms: track.timeline.capture_time_ms(pts, arrival),
                        wall_clock_synced: track.timeline.has_sender_report(),
                        payload: Bytes::clone(&packet.payload),
                    };
                    self.ctx.stage.publish_frame(StageFrame { presenter: presenter.to_owned(), track: info, frame });
                }
            }
        }
        let keyframe_start = kind == TrackKind::Video && h264::starts_keyframe(&packet.payload);
        if let Some(feed) = &self.feed {
            feed.send(ForwardedPacket { kind, keyframe_start, packet });
        }
        let _ = now;
    }

    fn on_rtcp(&mut self, track_id: &MediaStreamTrackId, packets: Vec<Box<dyn rtcp::Packet>>, _now: Instant) {
        if let Some(track) = self.inbound.get_mut(track_id) {
            for packet in &packets {
                if let Some(sr) = packet.as_any().downcast_ref::<SenderReport>()
                    && sr.ssrc == track.ssrc
                {
                    track.timeline.on_sender_report(sr.ntp_time, sr.rtp_time);
                }
            }
            return;
        }
        if self.sender_kinds.get(track_id) == Some(&TrackKind::Video) {
            let wants_keyframe = packets.iter().any(|p| {
                p.as_any().downcast_ref::<PictureLossIndication>().is_some()
                    || p.as_any().downcast_ref::<FullIntraRequest>().is_some()
            });
            if wants_keyframe {
                Metrics::inc(&self.ctx.metrics.keyframe_requests_received_total);
                if let Some(feed) = &self.source_feed {
                    feed.request_keyframe();
                }
            }
        }
    }

    fn on_keyframe_wanted(&mut self, now: Instant) {
        let earliest = self.last_keyframe_request.map(|t| t + self.ctx.keyframe_min_interval);
        match earliest {
            Some(at) if at > now => {
                self.keyframe_request_due.get_or_insert(at);
            }
            _ => self.send_keyframe_request(now),
        }
    }

    fn send_keyframe_request(&mut self, now: Instant) {
        let Some(video) = self.inbound.values().find(|t| t.kind == TrackKind::Video) else {
            return;
        };
        let (receiver, media_ssrc) = (video.receiver, video.ssrc);
        let Some(mut rx) = self.pc.rtp_receiver(receiver) else {
            return;
        };
        let pli: Vec<Box<dyn rtcp::Packet>> = vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })];
        match rx.write_rtcp(now, pli) {
            Ok(()) => {
                Metrics::inc(&self.ctx.metrics.keyframe_requests_sent_total);
                self.last_keyframe_request = Some(now);
            }
            Err(err) => tracing::debug!(session = %self.ctx.id, %err, "PLI not sent"),
        }
    }

    async fn close(&mut self) {
        if let Err(err) = self.pc.close() {
            tracing::debug!(session = %self.ctx.id, %err, "close failed");
        }
        // Let the core's close_notify and RTCP BYE leave before the session goes.
        while let Some(msg) = self.pc.poll_write() {
            let _ = self.ctx.socket.send_to(&msg.message, msg.transport.peer_addr).await;
        }
        self.ended = true;
    }
}

/// Gauges that follow a session's life.
pub fn count_session(metrics: &Metrics, publisher: bool, delta: i64) {
    metrics.sessions_active.fetch_add(delta, Ordering::Relaxed);
    let gauge = if publisher { &metrics.publishers_active } else { &metrics.subscribers_active };
    gauge.fetch_add(delta, Ordering::Relaxed);
}
