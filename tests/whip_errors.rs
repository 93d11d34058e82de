//! Bad input on the WHIP/WHEP surface gets a precise problem+json error, and none of it
//! disturbs a stream running in another room.

mod common;

use std::time::Duration;

use common::{Server, aiortc_play, aiortc_publish};

const WHIP_OFFER: &str = include_str!("data/chromium156_whip_offer.sdp");
const WHEP_OFFER: &str = include_str!("data/chromium156_whep_offer.sdp");
const VP8_ONLY_OFFER: &str = include_str!("data/chromium156_whip_offer_vp8_vp9_av1_only.sdp");

#[test]
fn bad_requests_get_precise_errors_and_spare_the_stream_of_another_room() {
    let server = Server::start_with(&[("TOWNHALL_SERVER_MAX_BODY_BYTES", "16384")]);
    let live = server.create_room();
    let other = server.create_room();
    let publisher = aiortc_publish(&server, &live, "main", 45);
    server.wait_for("the live room's first frames", Duration::from_secs(60), |s| s.metric("video_frames_total") >= 30);

    let token = format!("Bearer {}", other.publish_token);
    let auth = |ct: &str| vec![("Authorization".to_owned(), token.clone()), ("Content-Type".to_owned(), ct.to_owned())];
    let post = |path: &str, headers: &[(String, String)], body: &[u8]| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        server.request("POST", path, &headers, body)
    };
    let whip = format!("/whip/{}", other.id);

    // The offer itself.
    post(&whip, &auth("application/sdp"), b"hello").assert_problem(400, "malformed_sdp");
    post(&whip, &auth("application/sdp"), b"v=0\r\nthis is not sdp\r\n").assert_problem(400, "malformed_sdp");
    post(&whip, &auth("application/sdp"), &[0xff, 0xfe, 0x00]).assert_problem(400, "malformed_sdp");
    let vp8 = post(&whip, &auth("application/sdp"), VP8_ONLY_OFFER.as_bytes()).assert_problem(406, "no_usable_codec");
    let detail = vp8["detail"].as_str().unwrap();
    assert!(detail.contains("VP8") && detail.contains("H264") && detail.contains("opus"), "{detail}");
    post(&whip, &auth("application/sdp"), WHEP_OFFER.as_bytes()).assert_problem(400, "bad_offer");
    post(&whip, &auth("text/plain"), WHIP_OFFER.as_bytes()).assert_problem(415, "unsupported_media_type");
    post(&whip, &auth("application/sdp"), &vec![b'a'; 20_000]).assert_problem(413, "body_too_large");

    // Who and where.
    post(&whip, &[("Content-Type".into(), "application/sdp".into())], WHIP_OFFER.as_bytes())
        .assert_problem(401, "unauthorized");
    let wrong = vec![
        ("Authorization".to_owned(), format!("Bearer {}", live.publish_token)),
        ("Content-Type".to_owned(), "application/sdp".to_owned()),
    ];
    post(&whip, &wrong, WHIP_OFFER.as_bytes()).assert_problem(401, "unauthorized");
    post("/whip/no-such-room", &auth("application/sdp"), WHIP_OFFER.as_bytes()).assert_problem(404, "unknown_room");
    post(&format!("{whip}?presenter=a%20b"), &auth("application/sdp"), WHIP_OFFER.as_bytes())
        .assert_problem(400, "invalid_presenter");
    post(&format!("{whip}?presenter="), &auth("application/sdp"), WHIP_OFFER.as_bytes())
        .assert_problem(400, "invalid_presenter");
    post(&format!("{whip}?colour=red"), &auth("application/sdp"), WHIP_OFFER.as_bytes())
        .assert_problem(400, "unknown_parameter");
    let whep_headers = [("Content-Type".to_owned(), "application/sdp".to_owned())];
    post(&format!("/whep/{}/nobody", other.id), &whep_headers, WHEP_OFFER.as_bytes())
        .assert_problem(404, "unknown_presenter");
    post(&format!("/whep/{}", other.id), &whep_headers, WHIP_OFFER.as_bytes()).assert_problem(400, "bad_offer");

    // A real session to PATCH and DELETE: a WHEP session that never connects.
    let created = post(&format!("/whep/{}", other.id), &whep_headers, WHEP_OFFER.as_bytes());
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("content-type"), Some("application/sdp"));
    assert_eq!(created.header("accept-patch"), Some("application/trickle-ice-sdpfrag"));
    let location = created.header("location").unwrap().to_owned();
    let etag = created.header("etag").unwrap().to_owned();
    assert!(location.starts_with(&format!("/whep/{}/sessions/", other.id)), "{location}");
    let answer = created.text();
    assert!(answer.contains("a=sendonly") && answer.contains("H264") && answer.contains("opus"), "{answer}");
    assert!(!answer.contains("VP8"), "the answer restricts video to H.264");

    let fragment = b"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2122194687 127.0.0.1 9 typ host\r\n";
    let sdpfrag = ("Content-Type", "application/trickle-ice-sdpfrag");
    server.request("PATCH", &location, &[sdpfrag], fragment).assert_problem(428, "if_match_required");
    server
        .request("PATCH", &location, &[sdpfrag, ("If-Match", "\"nope\"")], fragment)
        .assert_problem(412, "etag_mismatch");
    server
        .request("PATCH", &location, &[("Content-Type", "application/sdp"), ("If-Match", &etag)], fragment)
        .assert_problem(415, "unsupported_media_type");
    server
        .request("PATCH", &location, &[sdpfrag, ("If-Match", &etag)], b"hello\r\n")
        .assert_problem(400, "malformed_fragment");
    server
        .request("PATCH", &location, &[sdpfrag, ("If-Match", &etag)], b"a=candidate:1 1 udp\r\n")
        .assert_problem(400, "malformed_fragment");
    // New credentials with a wildcard If-Match would be an ICE restart without the ETag.
    server
        .request("PATCH", &location, &[sdpfrag, ("If-Match", "*")], fragment)
        .assert_problem(428, "if_match_required");
    let unknown = format!("/whep/{}/sessions/0123", other.id);
    server.request("PATCH", &unknown, &[sdpfrag, ("If-Match", "*")], fragment).assert_problem(404, "unknown_session");
    server
        .request("DELETE", &format!("/whep/{}/sessions/0123", live.id), &[], b"")
        .assert_problem(404, "unknown_session");
    let as_whip = location.replacen("/whep/", "/whip/", 1);
    server.request("DELETE", &as_whip, &[("Authorization", &token)], b"").assert_problem(404, "unknown_session");
    assert_eq!(server.request("DELETE", &location, &[], b"").status, 200);
    server.wait_for("the deleted session to go", Duration::from_secs(10), |s| {
        s.request("DELETE", &location, &[], b"").status == 404
    });

    // The stream in the other room went on untouched: frames still arrive, none was dropped,
    // and a new viewer decodes it.
    let before = server.metric("video_frames_total");
    server.wait_for("frames to keep arriving", Duration::from_secs(20), |s| {
        s.metric("video_frames_total") >= before + 30
    });
    let viewer = aiortc_play(&server, &format!("/whep/{}", live.id), 40, 30).finish(Duration::from_secs(60));
    assert!(viewer["decoded_frames"].as_u64().unwrap() >= 30, "{viewer}");
    assert_eq!(server.metric("video_frames_dropped_total"), 0);
    assert_eq!(server.metric("rtp_malformed_packets_total"), 0);
    drop(publisher);
}
