//! The attendee's watch page through a breakout move (issue 6), in Chromium at phone size: the
//! host puts the page and a WebSocket attendee (Bob, publishing with ffmpeg 9's WHIP muxer) in
//! one breakout room; the page leaves the program for the breakout view, publishes its fake
//! camera over WHIP, plays Bob over WHEP (frames decoded), shows and sends the room's chat with
//! nothing wider than the screen; when the host ends the breakouts it is back on the program.

mod common;

use std::time::Duration;

use common::Server;
use common::steps::Steps;
use common::ws::{Read, WsClient};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_moves_to_its_breakout_room_and_back() {
    let server = Server::start();
    let room = server.create_room();
    let host_key = format!("Bearer {}", room.host_token);
    let mut bob = WsClient::connect(&server, &room.id, "name=Bob").await;
    let bob_id = bob.welcome["participant"]["participant_id"].as_str().unwrap().to_owned();
    let shot = server.data_dir.join("breakout-phone.png");
    let url = server.url(&format!("/watch/{}?name=Pia", room.id));
    let args = [url.as_str(), "--chat", "hi from Bob", "--min-frames", "10", "--seconds", "120", "--shot"];
    let page = Steps::spawn("scripts/clients/breakout_page.mjs", &[&args[..], &[shot.to_str().unwrap()]].concat());
    let welcomed = page.step("welcomed", Duration::from_secs(60));
    let pia = welcomed["participant"].as_str().unwrap();

    let split = json!({"rooms": [{"name": "Pair", "participants": [bob_id, pia]}], "duration_s": 300});
    let started = server.request(
        "POST",
        &format!("/api/rooms/{}/breakouts", room.id),
        &[("Authorization", &host_key), ("Content-Type", "application/json")],
        split.to_string().as_bytes(),
    );
    assert_eq!(started.status, 201, "{}", started.text());
    let assigned = bob.next_of("breakout_assigned").await;
    let token = assigned["token"].as_str().unwrap().to_owned();
    let breakout = assigned["breakout"]["id"].as_str().unwrap().to_owned();
    let as_bob = common::Room { id: breakout.clone(), publish_token: token.clone(), host_token: String::new() };
    let _publisher = common::ffmpeg_publish(&server, &as_bob, &bob_id, 120);
    let mut bob_chat = WsClient::connect(&server, &breakout, &format!("token={token}")).await;
    let said = bob_chat.command(json!({"type": "chat_send", "text": "hi from Bob"})).await;
    assert_eq!(said["type"], "ack", "{said}");

    // The page publishes its camera on the breakout stage, plays Bob, shows his line.
    let inside = page.step("in_breakout", Duration::from_secs(120));
    assert_eq!(inside["breakout"], breakout.as_str());
    assert_eq!(inside["layout_hidden"], true, "the program view is put away: {inside}");
    assert!(inside["frames"][&bob_id].as_u64().unwrap() >= 10, "{inside}");
    assert!(inside["overflow"].as_i64().unwrap() <= 0, "wider than a phone: {inside}");
    let view = server.request("GET", &format!("/api/rooms/{breakout}"), &[("Authorization", &host_key)], b"").json();
    assert!(view["presenters"].as_array().unwrap().iter().any(|p| p["name"] == pia), "{view}");
    // And its chat line reaches Bob in the room.
    loop {
        match bob_chat.read(Duration::from_secs(30)).await {
            Read::Json(m) if m["type"] == "chat_message" && m["text"] == "hi from the page" => break,
            Read::Json(_) => {}
            Read::Closed(code) => panic!("closed ({code:?})"),
        }
    }

    // The host ends the breakouts: the page is back on the program.
    let ended =
        server.request("DELETE", &format!("/api/rooms/{}/breakouts", room.id), &[("Authorization", &host_key)], b"");
    assert_eq!(ended.status, 204, "{}", ended.text());
    let back = page.step("back", Duration::from_secs(60));
    assert_eq!(back["layout_hidden"], false);
}
