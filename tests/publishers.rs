//! Independent WebRTC stacks publish over WHIP and others play over WHEP, decoding frames:
//! Chromium (libwebrtc), ffmpeg 9's WHIP muxer, and aiortc. Sessions are freed on DELETE.

mod common;

use std::time::Duration;

use common::{Server, aiortc_play, aiortc_publish, chromium_play, chromium_publish, ffmpeg_publish};

const MIN_FRAMES: u32 = 30;

fn decoded(result: &serde_json::Value) -> u64 {
    result["decoded_frames"].as_u64().unwrap_or(0)
}

fn wait_live(server: &Server, room: &common::Room, presenter: &str) {
    let path = format!("/api/rooms/{}", room.id);
    let auth = format!("Bearer {}", room.host_token);
    server.wait_for(&format!("presenter {presenter} live"), Duration::from_secs(60), |s| {
        let room = s.request("GET", &path, &[("Authorization", &auth)], b"").json();
        room["presenters"].as_array().unwrap().iter().any(|p| p["name"] == presenter)
    });
}

fn wait_all_sessions_freed(server: &Server) {
    server.wait_for("every session to be freed", Duration::from_secs(60), |s| {
        s.metric("sessions_active") == 0 && s.metric("udp_routed_sessions") == 0
    });
}

#[test]
fn chromium_publishes_and_aiortc_and_chromium_play() {
    let server = Server::start();
    let room = server.create_room();
    let publisher = chromium_publish(&server, &room, "browser", 40);
    wait_live(&server, &room, "browser");
    let by_aiortc =
        aiortc_play(&server, &format!("/whep/{}/browser", room.id), 40, MIN_FRAMES).finish(Duration::from_secs(60));
    assert!(decoded(&by_aiortc) >= MIN_FRAMES as u64, "{by_aiortc}");
    let by_chromium = chromium_play(&server, &room, None, 40, MIN_FRAMES).finish(Duration::from_secs(60));
    assert!(decoded(&by_chromium) >= MIN_FRAMES as u64, "{by_chromium}");
    assert_eq!(by_chromium["width"], 640);
    let published = publisher.finish(Duration::from_secs(90));
    assert_eq!(published["connection"], "connected", "{published}");
    wait_all_sessions_freed(&server);
    assert!(server.metric("keyframe_requests_sent_total") >= 1);
}

#[test]
fn ffmpeg_whip_muxer_publishes_and_chromium_plays() {
    let server = Server::start();
    let room = server.create_room();
    // ffmpeg's offer has no candidates and a=setup:passive: its address is learned from its checks.
    let publisher = ffmpeg_publish(&server, &room, "encoder", 30);
    wait_live(&server, &room, "encoder");
    let viewer = chromium_play(&server, &room, Some("encoder"), 40, MIN_FRAMES).finish(Duration::from_secs(60));
    assert!(decoded(&viewer) >= MIN_FRAMES as u64, "{viewer}");
    assert_eq!(viewer["width"], 640);
    assert_eq!(viewer["height"], 360);
    drop(publisher);
    // ffmpeg killed without DELETE: the session ends when ICE gives up (disconnected + failed).
    wait_all_sessions_freed(&server);
}

#[test]
fn three_stacks_publish_at_once_and_each_is_decoded() {
    let server = Server::start_with(&[
        ("TOWNHALL_WEBRTC_ICE_DISCONNECTED_TIMEOUT_MS", "2000"),
        ("TOWNHALL_WEBRTC_ICE_FAILED_TIMEOUT_MS", "5000"),
    ]);
    let room = server.create_room();
    let chromium = chromium_publish(&server, &room, "chromium", 60);
    let ffmpeg = ffmpeg_publish(&server, &room, "ffmpeg", 60);
    let aiortc = aiortc_publish(&server, &room, "aiortc", 60);
    for presenter in ["chromium", "ffmpeg", "aiortc"] {
        wait_live(&server, &room, presenter);
    }
    for presenter in ["chromium", "ffmpeg", "aiortc"] {
        let viewer = aiortc_play(&server, &format!("/whep/{}/{presenter}", room.id), 40, MIN_FRAMES)
            .finish(Duration::from_secs(60));
        assert!(decoded(&viewer) >= MIN_FRAMES as u64, "{presenter}: {viewer}");
    }
    assert_eq!(server.metric("publishers_active"), 3);
    assert_eq!(server.metric("video_frames_dropped_total"), 0);
    // DELETE (aiortc, Chromium) and kill without DELETE (ffmpeg) both free everything.
    drop(ffmpeg);
    let stopped = aiortc.finish(Duration::from_secs(90));
    assert_eq!(stopped["delete_status"], 200, "{stopped}");
    chromium.finish(Duration::from_secs(90));
    wait_all_sessions_freed(&server);
}
