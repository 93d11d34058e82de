//! Watch time from a real player: ffmpeg publishes, a registrant opens its personal join link
//! (`/watch/{room}?token=…`) in headless Chromium, where hls.js plays the program and the watch
//! page sends its heartbeats on the WebSocket; the room's report then names that registrant
//! as a participant who joined and watched, for a whole number of heartbeat intervals no longer
//! than it was connected (plus the 1.5 intervals the rule allows), and no more than it played.

mod common;

use std::time::Duration;

use common::hls::{wait_program, watch};
use common::{Server, ffmpeg_publish};
use serde_json::json;

const INTERVAL_S: u64 = 2;

#[test]
fn the_watch_page_of_a_join_link_reports_heartbeats_as_that_registrant() {
    let server = Server::start_with(&[("TOWNHALL_REPORTS_HEARTBEAT_INTERVAL_S", "2")]);
    let room = server.create_room();
    let _publisher = ffmpeg_publish(&server, &room, "main", 60);
    wait_program(&server, &room);

    let registered = server.request(
        "POST",
        &format!("/api/rooms/{}/registrations", room.id),
        &[("Content-Type", "application/json")],
        json!({"name": "Grace Hopper", "email": "grace@example.org"}).to_string().as_bytes(),
    );
    assert_eq!(registered.status, 201, "{}", registered.text());
    let registration = registered.json();
    let join_url = registration["join_url"].as_str().unwrap();
    let query = &join_url[join_url.find('?').unwrap()..];

    let played = watch(&server, &room, query, 8, 40);
    let played_s = played["current_time"].as_f64().unwrap();
    assert!(played_s >= 8.0, "the page did not play: {played}");

    let host = format!("Bearer {}", room.host_token);
    let path = format!("/api/rooms/{}/report", room.id);
    // The page is closed: the registrant has left.
    server.wait_for("the watcher to leave", Duration::from_secs(30), |s| {
        s.request("GET", &path, &[("Authorization", &host)], b"").json()["connected"] == 0
    });
    let report = server.request("GET", &path, &[("Authorization", &host)], b"").json();
    assert_eq!(report["joined"], 1, "{report:#}");
    let person = &report["people"][0];
    assert_eq!(person["participant"], registration["participant"], "{report:#}");
    assert_eq!((person["name"].as_str(), person["email"].as_str()), (Some("Grace Hopper"), Some("grace@example.org")));
    let watch_s = person["watch_s"].as_u64().unwrap();
    println!(
        "played {played_s:.1} s of media, credited {watch_s} s, joined {} left {}",
        person["first_joined"], person["last_left"]
    );
    assert!(watch_s >= INTERVAL_S && watch_s.is_multiple_of(INTERVAL_S), "watch_s {watch_s}: {report:#}");
    // Credited no more than it played, plus the heartbeat on starting to play and one interval
    // of timer slack; and no more than it was connected plus 1.5 intervals (the cap; times in
    // whole seconds, so one more).
    assert!(watch_s as f64 <= played_s + 2.0 * INTERVAL_S as f64, "watch_s {watch_s} for {played_s} s played");
    let connected = (second_of_day(&person["last_left"]) - second_of_day(&person["first_joined"])).rem_euclid(86_400);
    assert!(
        (watch_s as f64) <= connected as f64 + 1.5 * INTERVAL_S as f64 + 1.0,
        "watch_s {watch_s}, connected {connected} s"
    );
}

/// Seconds since midnight of an RFC 3339 `…THH:MM:SSZ`.
fn second_of_day(time: &serde_json::Value) -> i64 {
    let text = time.as_str().unwrap_or_else(|| panic!("not a time: {time}"));
    let clock = &text[text.find('T').unwrap() + 1..text.len() - 1];
    clock.split(':').fold(0, |acc, part| acc * 60 + part.parse::<i64>().unwrap())
}
