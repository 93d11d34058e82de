//! A lightweight WHEP load generator for benchmarks: N subscribers on the rtc sans-IO core,
//! each with its own UDP socket on loopback, receiving (decrypting, not decoding) the stream.
//!
//! `whep_load <whep URL> <subscribers> <seconds> [<dump file> <packets>]` prints one JSON line
//! with the packets each subscriber received. Used by `scripts/bench/sfu_cost.py`; every
//! subscriber stops by itself after `seconds` and DELETEs its session.
//!
//! With a dump file, the first subscriber writes the first `packets` video RTP packets it
//! receives (from the first keyframe on: the SFU starts there) as `u16 length + packet`
//! records: real publishers' payloads, byte for byte, for the depacketizer's tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// POST or DELETE over HTTP/1.1; returns (status, Location, body).
async fn http(method: &str, url: &str, body: &str) -> Result<(u16, String, String), BoxError> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let status = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .unwrap_or_default()
        .to_owned();
    Ok((status, location, body.to_owned()))
}

async fn subscriber(url: String, seconds: f64, mut dump: Option<(std::fs::File, usize)>) -> Result<u64, BoxError> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let local_addr: SocketAddr = socket.local_addr()?;
    // The server's own codec set: its first H.264 variant (payload type 102) is what it sends.
    let mut engine = townhall_ingest::peer::media_engine()?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(Instant::now())?;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )?;
    }
    let offer = pc.create_offer(None)?;
    pc.set_local_description(Instant::now(), offer)?;
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: local_addr.ip().to_string(),
            port: local_addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    let offer_sdp = pc.local_description().ok_or("no offer")?.sdp;
    let (status, location, answer) = http("POST", &url, &offer_sdp).await?;
    if status != 201 {
        return Err(format!("POST {url}: {status} {answer}").into());
    }
    pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(answer)?)?;

    let mut packets = 0u64;
    let mut buf = vec![0u8; 2048];
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        while let Some(msg) = pc.poll_write() {
            let _ = socket.send_to(&msg.message, msg.transport.peer_addr).await;
        }
        while pc.poll_event().is_some() {}
        while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
            if let RTCMessage::RtpPacket(_, packet) = message {
                packets += 1;
                if let Some((file, left)) = dump.as_mut()
                    && *left > 0
                    && packet.header.payload_type == 102
                {
                    use rtc::shared::marshal::Marshal;
                    use std::io::Write;
                    let raw = packet.marshal()?;
                    file.write_all(&(raw.len() as u16).to_be_bytes())?;
                    file.write_all(&raw)?;
                    *left -= 1;
                }
            }
        }
        let deadline = pc.poll_timeout().unwrap_or(end).min(end);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => { pc.handle_timeout(Instant::now())?; }
            received = socket.recv_from(&mut buf) => {
                let (n, peer_addr) = received?;
                pc.handle_read(TaggedBytesMut {
                    now: Instant::now(),
                    transport: TransportContext { local_addr, peer_addr, ecn: None, transport_protocol: TransportProtocol::UDP },
                    message: BytesMut::from(&buf[..n]),
                })?;
            }
        }
    }
    let base = url.split_once("/whep/").map(|(b, _)| b).unwrap_or_default();
    let _ = http("DELETE", &format!("{base}{location}"), "").await;
    let _ = pc.close();
    Ok(packets)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 6 {
        return Err("usage: whep_load <whep URL> <subscribers> <seconds> [<dump file> <packets>]".into());
    }
    let (url, count, seconds): (String, usize, f64) = (args[1].clone(), args[2].parse()?, args[3].parse()?);
    let mut dump = match args.get(4) {
        Some(path) => Some((std::fs::File::create(path)?, args[5].parse()?)),
        None => None,
    };
    let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(subscriber(url.clone(), seconds, dump.take()))).collect();
    let mut received = Vec::new();
    for task in tasks {
        received.push(task.await?.map_err(|e| e.to_string())?);
    }
    received.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "subscribers": count,
            "packets_min": received.first(),
            "packets_median": received.get(received.len() / 2),
            "packets_max": received.last(),
        })
    );
    Ok(())
}
