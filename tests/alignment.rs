//! Interaction on the media clock, measured in a browser: a presenter publishes a canvas
//! timecode over WHIP (Chromium), the host opens a poll through the REST API, and watch pages
//! (hls.js in low-latency mode, headless Chromium) show it when their playingDate reaches the
//! poll's `at`, through each delivery path alone (`?source=ws`, `daterange`, `emsg`); the
//! replay shows it at the same media time; the final results arrive by every path. The browser
//! side is `scripts/clients/alignment.mjs`; it also saves screenshots of the watch page
//! (desktop, phone), the replay and the studio, whose directory this test prints.
//!
//! What is asserted, per path:
//! - at the moment the page shows the poll, the timecode on screen (decoded from the video
//!   frame) is within one part duration (200 ms) of `at`, plus [`MEASUREMENT_SLACK_MS`] for the
//!   measurement's own error;
//! - the page's playingDate at that moment is at or after `at`, by less than a part.

mod common;

use std::time::Duration;

use common::hls::wait_program;
use common::{Client, Server, root};
use serde_json::Value;

/// One LL-HLS part (the server's default part target).
const PART_MS: f64 = 200.0;
/// The measurement's own error: the canvas is captured at 30 fps, so the frame on screen may
/// show a time drawn up to one frame interval (33 ms) before the frame's capture, and the probe
/// reads the frame the <video> holds when the page releases the event (one more frame at most
/// before or after the one being composited). Two frame intervals, rounded up.
const MEASUREMENT_SLACK_MS: f64 = 70.0;

fn ms(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn assert_aligned(what: &str, m: &Value) {
    let late = ms(m, "playing_date_minus_at_ms");
    assert!((0.0..PART_MS).contains(&late), "{what}: shown at playingDate − at = {late} ms: {m}");
    let on_screen = ms(m, "on_screen_minus_at_ms");
    assert!(
        on_screen.abs() <= PART_MS + MEASUREMENT_SLACK_MS,
        "{what}: the frame on screen was captured {on_screen} ms from the event's at: {m}"
    );
}

#[test]
fn a_poll_shows_when_the_video_reaches_it_by_every_path_and_in_the_replay() {
    let server = Server::start();
    let room = server.create_room();
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots/alignment");
    println!("screenshots: {}", out.display());
    let script = root().join("scripts/clients/alignment.mjs");
    let client = Client::spawn(
        "alignment in Chromium",
        std::path::Path::new("node"),
        &[
            script.to_str().unwrap(),
            &server.url(""),
            &room.id,
            &room.publish_token,
            &room.host_token,
            out.to_str().unwrap(),
        ],
    );
    let result = client.finish(Duration::from_secs(420));
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    wait_program(&server, &room);

    // Each poll's `at` is program time: what the event log says.
    let events = server.request("GET", &format!("/api/rooms/{}/events", room.id), &[], b"").json();
    let opened: Vec<&Value> =
        events["events"].as_array().unwrap().iter().filter(|e| e["type"] == "poll_opened").collect();

    for path in ["ws", "daterange", "emsg"] {
        let poll = &result["polls"][path];
        let logged = opened.iter().find(|e| e["id"] == poll["id"]).expect("poll_opened in the log");
        assert_eq!(logged["at"], poll["at"]);
        let m = &result["paths"][path];
        assert_eq!(m["path"], path, "the page with ?source={path} showed it by another path: {m}");
        assert_aligned(&format!("poll shown by {path}"), m);
        // The final results, by the same path alone, equal the poll_closed event's.
        let fin = &result["final"][path];
        assert_eq!(fin["path"], path);
        assert_eq!(fin["state"], "closed", "{fin}");
        assert_eq!(fin["counts"], fin["event_counts"], "{path}: {fin}");
        assert_eq!(fin["voters"], fin["event_voters"], "{path}: {fin}");
        assert_eq!(fin["voters"], 1, "{path}: the page's own vote counted: {fin}");
        assert_aligned(&format!("poll closed by {path}"), fin);
    }
    // Votes through the forms: option n of the nth page, 0 too on the multiple-choice one.
    assert_eq!(result["final"]["ws"]["counts"], serde_json::json!([1, 0, 0]));
    assert_eq!(result["final"]["daterange"]["counts"], serde_json::json!([0, 1, 0]));
    assert_eq!(result["final"]["emsg"]["counts"], serde_json::json!([1, 0, 1]));
    let live = &result["live_results"];
    assert_eq!((live["voters"].as_u64(), &live["my_vote"]), (Some(1), &serde_json::json!([0])), "{live}");

    // The replay: the same media time, and the state recomputed when seeking back.
    let replay = &result["replay"];
    assert_eq!(replay["path"], "replay");
    assert_aligned("poll shown in the replay", replay);
    assert_aligned("poll closed in the replay", &result["replay_closed"]);
    assert_eq!(result["replay_closed"]["counts"], result["replay_closed"]["event_counts"]);
    assert_eq!(result["replay_seek_back_forgets_poll"], true);

    // Q&A: sorted by votes then time, the answered question highlighted, also from DATERANGE.
    assert_eq!(result["qa_order"], serde_json::json!(["q2", "q1"]), "q2 has a vote");
    assert_eq!(result["answering_from_daterange"], true);
    assert_eq!(result["reconnect"], serde_json::json!({"copies": 1, "released": 1}), "a missed event after a drop");

    // The studio: the hand queue, the poll builder, the export.
    let studio = &result["studio"];
    assert_eq!(studio["role"], "host");
    assert_eq!(studio["hands"].as_array().map(Vec::len), Some(0), "the invited hand left the queue: {studio}");
    let built =
        studio["polls"].as_array().unwrap().iter().find(|p| p["state"] == "open").expect("the built poll is open");
    assert_eq!(built["counts"], serde_json::json!([0, 0, 0]));
    let csv = studio["export"].as_str().unwrap();
    assert!(csv.contains("Will the slides be shared?") && csv.contains("Is there a recording?"), "{csv}");

    for file in ["watch-desktop.png", "watch-phone.png", "replay-desktop.png", "studio-desktop.png"] {
        assert!(out.join(file).exists(), "{} missing", out.join(file).display());
    }
}
