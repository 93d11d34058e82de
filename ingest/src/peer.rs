//! Building one WebRTC peer connection for WHIP (RFC 9725) or WHEP (draft-ietf-wish-whep) on
//! the rtc 0.21 sans-IO core, and answering its offer (RFC 8829 JSEP §5.3).
//!
//! Decided here:
//! - Codecs: H.264 (constrained baseline, baseline, main; packetization-mode 1 and 0) and Opus
//!   only, so browsers that also offer VP8/VP9/AV1 end up sending H.264, which the program needs.
//!   No RTX: retransmissions then come on the media SSRC (RFC 4585 NACK), which the SFU forwards
//!   as they are.
//! - Non-trickle answers: our candidates (one host candidate per advertised address, all on the
//!   shared UDP port) are in the answer. The peer's may come in the offer, in PATCH, or not at
//!   all (then its address is learned from its checks).
//! - Our ICE ufrag is read from the answer, so the UDP mux can route checks before the core
//!   sees them.
//! - The answering DTLS role stays the core's default (RFC 8842: answer `active` to `actpass`,
//!   the opposite of what the offer fixes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use townhall_packager::TrackKind;

use crate::error::{Error, Result};
use crate::sdp::{self, OfferSummary, Purpose};

/// ICE timers of every session.
#[derive(Debug, Clone, Copy)]
pub struct IceTimeouts {
    /// No traffic for this long: disconnected.
    pub disconnected: Duration,
    /// Disconnected for this long: failed, and the session ends.
    pub failed: Duration,
    /// Interval of consent/keepalive checks.
    pub keepalive: Duration,
}

/// H.264 payload types we register: profile-level-id × packetization-mode.
const H264_VARIANTS: &[(u8, &str, u8)] = &[
    (102, "42e01f", 1),
    (104, "42001f", 1),
    (106, "4d001f", 1),
    (103, "42e01f", 0),
    (105, "42001f", 0),
    (107, "4d001f", 0),
];
const OPUS_PAYLOAD_TYPE: u8 = 111;
const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

fn h264_fmtp(profile_level_id: &str, packetization_mode: u8) -> String {
    format!("level-asymmetry-allowed=1;packetization-mode={packetization_mode};profile-level-id={profile_level_id}")
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() })
        .collect()
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn h264_codec(profile_level_id: &str, packetization_mode: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: h264_fmtp(profile_level_id, packetization_mode),
        rtcp_feedback: video_feedback(),
    }
}

/// The codecs every session negotiates: Opus (111) and the H.264 variants above (102 first).
pub fn media_engine() -> Result<MediaEngine> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: OPUS_PAYLOAD_TYPE },
        RtpCodecKind::Audio,
    )?;
    for &(payload_type, profile, mode) in H264_VARIANTS {
        engine.register_codec(
            RTCRtpCodecParameters { rtp_codec: h264_codec(profile, mode), payload_type },
            RtpCodecKind::Video,
        )?;
    }
    Ok(engine)
}

fn random_token(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A negotiated peer connection, ready to be driven.
pub struct Negotiated {
    pub pc: RTCPeerConnection,
    pub answer: String,
    pub local_ufrag: String,
    /// Our outgoing tracks (WHEP): kind, sender id, SSRC.
    pub senders: Vec<(TrackKind, rtc::rtp_transceiver::RTCRtpSenderId, u32)>,
}

/// Checks an offer and answers it.
pub fn answer_offer(
    offer: &str,
    purpose: Purpose,
    candidates: &[SocketAddr],
    timeouts: IceTimeouts,
    now: Instant,
) -> Result<Negotiated> {
    let summary: OfferSummary = sdp::summarize_offer(offer)?;
    summary.check(purpose)?;

    // The core draws our ICE credentials (and new ones on an ICE restart); the mux learns the
    // ufrag from the answer before the answer leaves.
    let setting_engine = SettingEngineBuilder::new()
        .with_ice_timeouts(Some(timeouts.disconnected), Some(timeouts.failed), Some(timeouts.keepalive))
        .build();
    let mut engine = media_engine()?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting_engine)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)?;

    let mut senders = Vec::new();
    let offered = |kind: &str| summary.media.iter().any(|m| !m.disabled && m.kind == kind);
    match purpose {
        Purpose::Publish => {
            for section in summary.media.iter().filter(|m| !m.disabled) {
                let kind = match section.kind.as_str() {
                    "audio" => RtpCodecKind::Audio,
                    "video" => RtpCodecKind::Video,
                    _ => continue,
                };
                pc.add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )?;
            }
        }
        Purpose::Play => {
            let stream_id = format!("townhall-{}", random_token(8));
            for (kind, codec_kind, codec) in [
                (TrackKind::Audio, RtpCodecKind::Audio, opus_codec()),
                (TrackKind::Video, RtpCodecKind::Video, h264_codec("42e01f", 1)),
            ] {
                if !offered(if kind == TrackKind::Audio { "audio" } else { "video" }) {
                    continue;
                }
                let ssrc: u32 = rand::random();
                let track = MediaStreamTrack::new(
                    stream_id.clone(),
                    format!("{stream_id}-{codec_kind}"),
                    format!("{codec_kind}"),
                    codec_kind,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                        codec,
                        ..Default::default()
                    }],
                );
                let sender = pc.add_track(track)?;
                senders.push((kind, sender, ssrc));
            }
        }
    }

    let loopback_only = candidates.iter().all(|c| c.ip().is_loopback());
    let offer = if loopback_only { sdp::retain_loopback_candidates(offer) } else { offer.to_owned() };
    let description = RTCSessionDescription::offer(offer).map_err(|e| Error::MalformedSdp(e.to_string()))?;
    pc.set_remote_description(now, description).map_err(|e| Error::MalformedSdp(e.to_string()))?;

    for addr in candidates {
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    }

    let answer = pc.create_answer(None)?;
    pc.set_local_description(now, answer)?;
    let answer =
        pc.local_description().ok_or_else(|| Error::WebRtc("no local description after answering".into()))?.sdp;
    let accepting = match purpose {
        Purpose::Publish => "a=recvonly",
        Purpose::Play => "a=sendonly",
    };
    if !answer.lines().any(|l| l.starts_with(accepting)) {
        return Err(Error::NoUsableCodec(format!(
            "no media section could be accepted; accepted are {}",
            sdp::ACCEPTED_CODECS
        )));
    }
    let local_ufrag = sdp::ice_ufrag(&answer)
        .map(str::to_owned)
        .ok_or_else(|| Error::WebRtc("the answer has no a=ice-ufrag".into()))?;
    Ok(Negotiated { pc, answer, local_ufrag, senders })
}
