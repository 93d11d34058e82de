//! A subscriber that stops reading (its process frozen with SIGSTOP) delays nobody: the
//! publisher and another subscriber go on at full rate, and the frozen session is freed once
//! ICE gives up on it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, aiortc_play, aiortc_publish};

#[test]
fn a_frozen_subscriber_does_not_hold_up_the_others() {
    let server = Server::start_with(&[
        ("TOWNHALL_WEBRTC_ICE_DISCONNECTED_TIMEOUT_MS", "2000"),
        ("TOWNHALL_WEBRTC_ICE_FAILED_TIMEOUT_MS", "4000"),
    ]);
    let room = server.create_room();
    let _publisher = aiortc_publish(&server, &room, "main", 60);
    server.wait_for("the publisher's frames", Duration::from_secs(60), |s| s.metric("video_frames_total") >= 30);
    let frozen = aiortc_play(&server, &format!("/whep/{}", room.id), 60, 1 << 30);
    server.wait_for("the first subscriber", Duration::from_secs(60), |s| {
        s.metric("subscribers_active") == 1 && s.metric("rtp_forwarded_packets_total") > 100
    });
    let pid = frozen.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());

    let frames_before = server.metric("video_frames_total");
    let healthy = aiortc_play(&server, &format!("/whep/{}", room.id), 30, 150).finish(Duration::from_secs(60));
    assert!(healthy["decoded_frames"].as_u64().unwrap() >= 150, "{healthy}");
    // The publisher was not slowed: ~30 fps went on while one subscriber was frozen.
    let frames = server.metric("video_frames_total") - frames_before;
    assert!(frames >= 150, "only {frames} frames from the publisher meanwhile");
    // The frozen subscriber's session ends by ICE timeout (it answers no consent checks).
    server.wait_for("the frozen session to be freed", Duration::from_secs(60), |s| s.metric("subscribers_active") == 0);
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    drop(frozen);
}
