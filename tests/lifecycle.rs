//! A webinar's lifecycle and waiting room through the real binary: a scheduled room holds its
//! attendees (WebSocket `waiting`, commands refused) and broadcasts nothing (no LL-HLS, WHEP
//! for presenters only) while a presenter (ffmpeg's WHIP muxer) is already on the stage in the
//! green room; going live starts the program and lets the waiting attendee in (`welcome`);
//! with admission by hand a late attendee waits until the host admits them, and stays admitted
//! after a kill -9; ending disconnects the publisher, ends the playlist and refuses publishing;
//! phases never go back.

mod common;

use std::time::Duration;

use common::hls::wait_program;
use common::ws::WsClient;
use common::{Room, Server, ffmpeg_publish};
use serde_json::{Value, json};

/// The next message of `kind` (others are kept in `pending`).
fn create_scheduled(server: &Server) -> Room {
    let room = server.create_room_with(json!({"id": "webinar", "name": "Quarterly all-hands", "phase": "scheduled"}));
    let view = server
        .request("GET", "/api/rooms/webinar", &[("Authorization", &format!("Bearer {}", room.host_token))], b"")
        .json();
    assert_eq!(view["phase"], "scheduled");
    room
}

fn post_json(server: &Server, path: &str, token: &str, body: Value) -> common::Response {
    let bearer = format!("Bearer {token}");
    server.request(
        "POST",
        path,
        &[("Authorization", &bearer), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_webinar_goes_through_green_room_live_and_end() {
    let server = Server::start();
    let room = create_scheduled(&server);
    let phase_path = format!("/api/rooms/{}/phase", room.id);
    let room_path = format!("/api/rooms/{}", room.id);
    let host = format!("Bearer {}", room.host_token);

    // Scheduled: the attendee waits; what it sends is refused; nothing is broadcast.
    let (mut ada, first) = WsClient::join(&server, &room.id, "name=Ada").await;
    assert_eq!(first["type"], "waiting", "{first}");
    assert_eq!(first["reason"], "not_live");
    assert_eq!(first["room"]["name"], "Quarterly all-hands");
    let ada_id = first["participant"]["participant_id"].as_str().unwrap().to_owned();
    let ada_token = first["token"].as_str().expect("an identity while waiting").to_owned();
    let refused = ada.command(json!({"type": "chat_send", "text": "hello?", "nonce": "n1"})).await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("waiting")), "{refused}");
    assert_eq!(server.request("GET", &format!("/hls/{}/index.m3u8", room.id), &[], b"").status, 404);
    let r = server.request("POST", &format!("/whep/{}", room.id), &[("Content-Type", "application/sdp")], b"v=0");
    r.assert_problem(409, "not_live");

    // The host sees who waits (over REST and on its WebSocket).
    let mut studio = WsClient::connect(&server, &room.id, &format!("token={}", room.host_token)).await;
    let waiting = server.request("GET", &format!("{room_path}/waiting"), &[("Authorization", &host)], b"").json();
    assert_eq!(waiting["waiting"][0]["participant"], ada_id.as_str(), "{waiting}");
    assert_eq!(waiting["waiting"][0]["name"], "Ada");
    assert_eq!(waiting["waiting"][0]["reason"], "not_live");
    assert_eq!(waiting["count"], 1);
    // Waiting is not attending: only the host is in the room.
    let view = server.request("GET", &room_path, &[("Authorization", &host)], b"").json();
    assert_eq!((view["participants"].as_u64(), view["waiting"].as_u64()), (Some(1), Some(1)), "{view}");

    // Green room: a presenter publishes; presenters may watch the stage, attendees may not.
    assert_eq!(post_json(&server, &phase_path, &room.host_token, json!({"phase": "green_room"})).status, 200);
    let presenter = ffmpeg_publish(&server, &room, "alice", 120);
    server.wait_for("alice on the stage", Duration::from_secs(60), |s| {
        let view = s.request("GET", &room_path, &[("Authorization", &host)], b"").json();
        view["presenters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "alice"))
    });
    let as_presenter = format!("Bearer {}", room.publish_token);
    let r = server.request(
        "POST",
        &format!("/whep/{}/alice", room.id),
        &[("Authorization", &as_presenter), ("Content-Type", "application/sdp")],
        b"not sdp",
    );
    assert_eq!(r.status, 400, "a presenter passes the phase check (then the SDP is refused): {}", r.text());
    let as_ada = format!("Bearer {ada_token}");
    let r = server.request(
        "POST",
        &format!("/whep/{}/alice", room.id),
        &[("Authorization", &as_ada), ("Content-Type", "application/sdp")],
        b"v=0",
    );
    r.assert_problem(409, "not_live");
    assert_eq!(server.request("GET", &format!("/hls/{}/index.m3u8", room.id), &[], b"").status, 404);

    // Only hosts move the phase; never backwards.
    post_json(&server, &phase_path, &ada_token, json!({"phase": "live"})).assert_problem(403, "forbidden");
    let r = server.request("POST", &phase_path, &[("Content-Type", "application/json")], br#"{"phase":"live"}"#);
    assert_eq!(r.status, 401);
    post_json(&server, &phase_path, &room.host_token, json!({"phase": "later"})).assert_problem(400, "malformed_json");

    // Live: the program starts and the waiting attendee is let in.
    let live = post_json(&server, &phase_path, &room.host_token, json!({"phase": "live"}));
    assert_eq!(live.json()["phase"], "live");
    let welcome = ada.next_of("welcome").await;
    assert_eq!(welcome["participant"]["participant_id"], ada_id.as_str());
    assert!(welcome["snapshot"].is_object());
    let said = ada.command(json!({"type": "chat_send", "text": "I'm in", "nonce": "n2"})).await;
    assert_eq!(said["type"], "ack", "{said}");
    let view = server.request("GET", &room_path, &[("Authorization", &host)], b"").json();
    assert_eq!((view["participants"].as_u64(), view["waiting"].as_u64()), (Some(2), Some(0)), "{view}");
    wait_program(&server, &room);
    post_json(&server, &phase_path, &room.host_token, json!({"phase": "green_room"}))
        .assert_problem(409, "bad_transition");
    assert_eq!(post_json(&server, &phase_path, &room.host_token, json!({"phase": "live"})).status, 200, "idempotent");

    // Admission by hand: a late attendee waits until the host admits them.
    let set = server.request(
        "PUT",
        &format!("{room_path}/waiting"),
        &[("Authorization", &host), ("Content-Type", "application/json")],
        br#"{"waiting_room": true}"#,
    );
    assert_eq!(set.json()["waiting_room"], true, "{}", set.text());
    let (mut bob, first) = WsClient::join(&server, &room.id, "name=Bob").await;
    assert_eq!((first["type"].as_str(), first["reason"].as_str()), (Some("waiting"), Some("admission")), "{first}");
    let bob_id = first["participant"]["participant_id"].as_str().unwrap().to_owned();
    let bob_token = first["token"].as_str().unwrap().to_owned();
    // (Earlier lists may still be on their way.)
    loop {
        let list = studio.next_of("waiting_list").await;
        if list["waiting"].as_array().unwrap().iter().any(|w| w["participant"] == bob_id.as_str()) {
            assert_eq!(list["waiting_room"], true);
            assert_eq!(list["count"].as_u64(), Some(list["waiting"].as_array().unwrap().len() as u64));
            break;
        }
    }
    let admit = format!("{room_path}/waiting/admit");
    post_json(&server, &admit, &room.host_token, json!({"participants": ["a-nobody"]}))
        .assert_problem(400, "not_waiting");
    post_json(&server, &admit, &room.host_token, json!({})).assert_problem(400, "bad_admission");
    post_json(&server, &admit, &ada_token, json!({"all": true})).assert_problem(403, "forbidden");
    let admitted = post_json(&server, &admit, &room.host_token, json!({"participants": [bob_id]})).json();
    assert_eq!(admitted["admitted"], json!([bob_id]));
    bob.next_of("welcome").await;
    drop(bob);
    // Ada was let in by going live, not by the host: with admission by hand she now waits on
    // reconnecting; Bob, admitted, comes straight in, also after a kill -9.
    drop(ada);
    let (_ada, first) = WsClient::join(&server, &room.id, &format!("token={ada_token}")).await;
    assert_eq!(first["reason"], "admission", "{first}");

    drop(presenter);
    let data = server.kill_keeping_data();
    let server = Server::start_in(data, &[]);
    let view = server.request("GET", &room_path, &[("Authorization", &host)], b"").json();
    assert_eq!((view["phase"].as_str(), view["waiting_room"].as_bool()), (Some("live"), Some(true)), "{view}");
    let (_bob, first) = WsClient::join(&server, &room.id, &format!("token={bob_token}")).await;
    assert_eq!(first["type"], "welcome", "{first}");

    // Ended: publishing is refused, the playlist ends, attendees are no longer held.
    let presenter = ffmpeg_publish(&server, &room, "alice", 120);
    server.wait_for("alice back on the stage", Duration::from_secs(60), |s| {
        let view = s.request("GET", &room_path, &[("Authorization", &host)], b"").json();
        view["presenters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "alice"))
    });
    wait_program(&server, &room);
    let ended = post_json(&server, &format!("{room_path}/end"), &room.host_token, json!({}));
    assert_eq!(ended.json()["phase"], "ended", "{}", ended.text());
    server.wait_for("the publisher closed", Duration::from_secs(30), |s| {
        let view = s.request("GET", &room_path, &[("Authorization", &host)], b"").json();
        view["presenters"].as_array().is_some_and(|p| p.is_empty())
    });
    drop(presenter);
    let playlist = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let r = server.request(
        "POST",
        &format!("/whip/{}?presenter=alice", room.id),
        &[("Authorization", &as_presenter), ("Content-Type", "application/sdp")],
        b"v=0",
    );
    r.assert_problem(409, "room_ended");
    post_json(&server, &phase_path, &room.host_token, json!({"phase": "live"})).assert_problem(409, "bad_transition");
    let (_ada, first) = WsClient::join(&server, &room.id, &format!("token={ada_token}")).await;
    assert_eq!(first["type"], "welcome", "the replay is public: {first}");
}
