//! Trickle ICE and ICE restart over PATCH (RFC 9725 §4.3), with Chromium as the client: the
//! offer goes out before any candidate was gathered, candidates follow in PATCH requests, and
//! an ICE restart mid-stream swaps both sides' credentials while media keeps flowing.

mod common;

use std::time::Duration;

use common::{Client, Server, root};

#[test]
fn chromium_trickles_candidates_and_restarts_ice_while_publishing() {
    let server = Server::start();
    let room = server.create_room();
    let url = server.url(&format!("/publish/{}#token={}&presenter=trickler&trickle=1", room.id, room.publish_token));
    let publisher = Client::spawn(
        "Chromium trickle publisher",
        std::path::Path::new("node"),
        &[
            root().join("scripts/clients/browser.mjs").to_str().unwrap(),
            "publish",
            &url,
            "--seconds",
            "30",
            "--restart-after",
            "8",
        ],
    );
    server.wait_for("trickled candidates to connect", Duration::from_secs(60), |s| {
        s.metric("sessions_connected_total") >= 1 && s.metric("video_frames_total") >= 30
    });
    let result = publisher.finish(Duration::from_secs(90));
    let restart = &result["restart"];
    assert_ne!(restart["remote_ufrag_before"], restart["remote_ufrag_after"], "{result}");
    assert_eq!(restart["connection"], "connected", "{result}");
    assert_eq!(result["connection"], "connected", "{result}");
    // Media went on across the restart: the server depacketized (nearly) every frame sent.
    let sent = result["frames_sent"].as_i64().unwrap();
    let received = server.metric("video_frames_total");
    assert!(sent >= 300, "{result}");
    assert!(received * 10 >= sent * 9, "sent {sent}, the server got {received}");
    server.wait_for("the session to be freed", Duration::from_secs(30), |s| s.metric("sessions_active") == 0);
}
