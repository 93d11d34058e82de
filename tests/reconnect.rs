//! A presenter who reconnects (a new WHIP session under the same name) replaces the old
//! session cleanly: the old one ends, subscribers stay and go on with the new media.

mod common;

use std::time::Duration;

use common::{Server, aiortc_play, aiortc_publish};

#[test]
fn a_new_session_for_the_same_presenter_replaces_the_old_one() {
    let server = Server::start();
    let room = server.create_room();
    let first = aiortc_publish(&server, &room, "speaker", 60);
    server.wait_for("the first session's frames", Duration::from_secs(60), |s| s.metric("video_frames_total") >= 30);
    // A viewer of this presenter that stays across the reconnection.
    let viewer = aiortc_play(&server, &format!("/whep/{}/speaker", room.id), 45, 1 << 30);
    server.wait_for("the viewer to connect", Duration::from_secs(60), |s| {
        s.metric("subscribers_active") == 1 && s.metric("rtp_forwarded_packets_total") > 100
    });

    let second = aiortc_publish(&server, &room, "speaker", 20);
    server.wait_for("the replaced session to end", Duration::from_secs(60), |s| {
        s.log_text().contains("presenter reconnected: replacing session") && s.metric("publishers_active") == 1
    });
    let forwarded = server.metric("rtp_forwarded_packets_total");
    server.wait_for("the viewer to get the new session's media", Duration::from_secs(30), |s| {
        s.metric("rtp_forwarded_packets_total") > forwarded + 300
    });
    let result = second.finish(Duration::from_secs(60));
    assert_eq!(result["state"], "connected", "{result}");
    let seen = viewer.finish(Duration::from_secs(60));
    // 45 s of playing at 30 fps, across the switch; far more than the first session alone gave.
    assert!(seen["decoded_frames"].as_u64().unwrap() >= 300, "{seen}");
    drop(first);
    server.wait_for("every session to end", Duration::from_secs(60), |s| s.metric("sessions_active") == 0);
}
