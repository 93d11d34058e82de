//! Breakout rooms through the real binary (issue 6): six attendees on the main room's WebSocket
//! are split at random into two rooms. Each gets exactly one assignment, on its own socket; the
//! rooms partition the six. Members publish on their room's stage with ffmpeg 9's WHIP muxer and
//! a member of each room plays a room-mate over WHEP with aiortc (frames decoded); their token is
//! refused (403) in the other room and in the main room; chat stays in its room; the host visits
//! both rooms. When the timer fires everyone is told `breakout_ended`, the rooms' sockets and
//! sessions close, their URLs answer 404, and the main room's chat goes on.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::ws::{Read, WsClient};
use common::{ADMIN_TOKEN, Client, Server, python};
use serde_json::{Value, json};

const UPGRADE: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// The next message of `kind`; others are kept in `pending` (a second assignment is a failure).
async fn next_of(client: &mut WsClient, kind: &str, timeout: Duration) -> Value {
    loop {
        match client.read(timeout).await {
            Read::Json(m) if m["type"] == kind => return m,
            Read::Json(m) if m["type"] == "breakout_assigned" => panic!("a second assignment: {m}"),
            Read::Json(m) => client.pending.push_back(m),
            Read::Closed(code) => panic!("closed ({code:?}) before {kind}"),
        }
    }
}

/// The text of the next chat message (pending ones first); other messages are skipped.
async fn next_chat(client: &mut WsClient) -> String {
    loop {
        match client.next(Duration::from_secs(30)).await {
            Read::Json(m) if m["type"] == "chat_message" => return m["text"].as_str().unwrap().to_owned(),
            Read::Json(_) => {}
            Read::Closed(code) => panic!("closed ({code:?}) before a chat message"),
        }
    }
}

/// ffmpeg 9's WHIP muxer at a small size (CPU is scarce), publishing with `token` to `url`.
fn ffmpeg_publish(url: &str, token: &str, seconds: u32) -> Client {
    let seconds = seconds.to_string();
    #[rustfmt::skip]
    let args = [
        "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15",
        "-f", "lavfi", "-i", "sine=sample_rate=48000",
        "-t", &seconds,
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-tune", "zerolatency",
        "-g", "15", "-bf", "0", "-pix_fmt", "yuv420p",
        "-c:a", "libopus", "-ar", "48000", "-ac", "2",
        "-f", "whip", "-authorization", token, url,
    ];
    Client::spawn("ffmpeg WHIP muxer", &common::ffmpeg(), &args)
}

/// aiortc plays `url` with `token` until it decoded `min_frames`.
fn aiortc_play(url: &str, token: &str, min_frames: u32) -> Client {
    Client::spawn(
        "aiortc player",
        &python(),
        &[
            "scripts/clients/aiortc_client.py",
            "play",
            url,
            "--token",
            token,
            "--seconds",
            "40",
            "--min-frames",
            &min_frames.to_string(),
        ],
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_attendees_split_into_two_rooms_see_only_their_room_and_the_timer_brings_them_back() {
    let server = Server::start();
    let room = server.create_room();
    let host_key = bearer(&room.host_token);
    let breakouts = format!("/api/rooms/{}/breakouts", room.id);
    let json_type = ("Content-Type", "application/json");
    let post = |body: Value, auth: &str| {
        server.request("POST", &breakouts, &[("Authorization", auth), json_type], body.to_string().as_bytes())
    };

    let mut host = WsClient::connect(&server, &room.id, &format!("token={}", room.host_token)).await;
    let mut attendees = Vec::new();
    for i in 0..6 {
        attendees.push(WsClient::connect(&server, &room.id, &format!("name=Guest{i}")).await);
    }
    let id_of = |c: &WsClient| c.welcome["participant"]["participant_id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = attendees.iter().map(id_of).collect();

    // Who may split, and what is refused.
    assert_eq!(post(json!({"rooms": 2, "duration_s": 60}), &bearer(&attendees[0].token())).status, 403);
    server.request("POST", &breakouts, &[json_type], b"{}").assert_problem(401, "unauthorized");
    post(json!({"rooms": 0, "duration_s": 60}), &host_key).assert_problem(400, "bad_room_count");
    post(json!({"rooms": 7, "duration_s": 60}), &host_key).assert_problem(400, "not_enough_attendees");
    post(json!({"rooms": 2, "duration_s": 5}), &host_key).assert_problem(400, "bad_duration");
    post(json!({"rooms": 2}), &host_key).assert_problem(400, "malformed_json");
    let by_hand = |a: &[&str], b: &[&str]| json!({"rooms": [{"name": "A", "participants": a}, {"name": "B", "participants": b}], "duration_s": 60});
    post(by_hand(&[&ids[0]], &["a-nobody"]), &host_key).assert_problem(400, "unknown_participant");
    post(by_hand(&[&ids[0], &ids[1]], &[&ids[1]]), &host_key).assert_problem(400, "duplicate_participant");
    let none = server.request("GET", &breakouts, &[("Authorization", &host_key)], b"").json();
    assert_eq!(none["running"], false);

    // The split: two rooms of three, at random, for 40 s (the checks below take ~5 s on an idle machine).
    let started = post(json!({"rooms": 2, "duration_s": 40}), &host_key);
    assert_eq!(started.status, 201, "{}", started.text());
    let run = started.json();
    post(json!({"rooms": 2, "duration_s": 60}), &host_key).assert_problem(409, "breakouts_running");
    let rooms = run["rooms"].as_array().unwrap().clone();
    assert_eq!(rooms.len(), 2);
    let members = |r: &Value| -> BTreeSet<String> {
        r["participants"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
    };
    let (first, second) = (members(&rooms[0]), members(&rooms[1]));
    assert_eq!((first.len(), second.len()), (3, 3), "balanced: {run}");
    assert!(first.is_disjoint(&second));
    assert_eq!(first.union(&second).cloned().collect::<BTreeSet<_>>(), ids.iter().cloned().collect());
    let room_ids: Vec<String> = rooms.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert!(room_ids.iter().all(|id| id.starts_with(&format!("{}.", room.id))), "{room_ids:?}");

    // Each attendee gets its assignment on its own socket, naming its room.
    let mut assignments = Vec::new();
    for (i, client) in attendees.iter_mut().enumerate() {
        let assigned = next_of(client, "breakout_assigned", Duration::from_secs(30)).await;
        let index = usize::from(!first.contains(&ids[i]));
        assert_eq!(assigned["breakout"]["id"], room_ids[index].as_str(), "{assigned}");
        assert_eq!(assigned["breakout"]["ends_at"], run["ends_at"]);
        assert!(assigned["whip_url"].as_str().unwrap().ends_with(&format!("?presenter={}", ids[i])));
        assignments.push((index, assigned));
    }
    // A member who reconnects is told again, right after its welcome.
    let mut again = WsClient::connect(&server, &room.id, &format!("token={}", attendees[0].token())).await;
    let reassigned = next_of(&mut again, "breakout_assigned", Duration::from_secs(10)).await;
    assert_eq!(reassigned["breakout"]["id"], assignments[0].1["breakout"]["id"]);
    drop(again);
    let in_room =
        |index: usize| -> Vec<&Value> { assignments.iter().filter(|(i, _)| *i == index).map(|(_, a)| a).collect() };
    let token = |a: &Value| a["token"].as_str().unwrap().to_owned();

    // Two members of each room publish on its stage.
    let mut publishers = Vec::new();
    for index in 0..2 {
        for member in in_room(index).into_iter().take(2) {
            publishers.push(ffmpeg_publish(member["whip_url"].as_str().unwrap(), &token(member), 90));
        }
    }
    for (index, id) in room_ids.iter().enumerate() {
        let publishing: Vec<String> = in_room(index)
            .into_iter()
            .take(2)
            .map(|a| a["whip_url"].as_str().unwrap().rsplit('=').next().unwrap().to_owned())
            .collect();
        server.wait_for("two presenters live in each breakout room", Duration::from_secs(60), |s| {
            let view = s.request("GET", &format!("/api/rooms/{id}"), &[("Authorization", &host_key)], b"").json();
            let live: BTreeSet<&str> =
                view["presenters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
            publishing.iter().all(|p| live.contains(p.as_str()))
        });
    }
    // The third member of each room plays its first publisher over WHEP.
    let players: Vec<Client> = (0..2)
        .map(|index| {
            let members = in_room(index);
            let presenter = members[0]["whip_url"].as_str().unwrap().rsplit('=').next().unwrap();
            let url = format!("{}/{presenter}", members[2]["whep_url"].as_str().unwrap());
            aiortc_play(&url, &token(members[2]), 20)
        })
        .collect();

    // A member's token is refused in the other room and in the main room.
    let one = token(in_room(0)[0]);
    let sdp = ("Content-Type", "application/sdp");
    let offer = std::fs::read(common::root().join("tests/data/chromium156_whep_offer.sdp")).unwrap();
    let (room1, room2) = (&room_ids[0], &room_ids[1]);
    let as_one = [("Authorization", bearer(&one)), ("Content-Type", "application/sdp".to_owned())];
    let as_one: Vec<(&str, &str)> = as_one.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server.request("POST", &format!("/whip/{room2}?presenter=x"), &as_one, b"v=0").assert_problem(403, "breakout_only");
    server.request("POST", &format!("/whep/{room2}"), &as_one, &offer).assert_problem(403, "breakout_only");
    server.request("GET", &format!("/ws/{room2}?token={one}"), &UPGRADE, b"").assert_problem(403, "breakout_only");
    server
        .request("POST", &format!("/whip/{}?presenter=x", room.id), &as_one, b"v=0")
        .assert_problem(403, "breakout_only");
    server.request("GET", &format!("/ws/{}?token={one}", room.id), &UPGRADE, b"").assert_problem(403, "breakout_only");
    // Nobody watches or chats in a breakout room without a token.
    server.request("POST", &format!("/whep/{room1}"), &[sdp], &offer).assert_problem(401, "unauthorized");
    server.request("GET", &format!("/ws/{room1}"), &UPGRADE, b"").assert_problem(401, "unauthorized");

    // Each member joins its room's chat; the host visits both (host key, and a signed host token).
    let mut chats: Vec<Vec<WsClient>> = vec![Vec::new(), Vec::new()];
    for (index, assigned) in &assignments {
        chats[*index].push(WsClient::connect(&server, &room_ids[*index], &format!("token={}", token(assigned))).await);
    }
    let signed_host = post_json(
        &server,
        &format!("/api/rooms/{}/tokens", room.id),
        &host_key,
        json!({"role": "host", "name": "Hanna"}),
    );
    let mut visit1 = WsClient::connect(&server, room1, &format!("token={}", room.host_token)).await;
    let mut visit2 =
        WsClient::connect(&server, room2, &format!("token={}", signed_host["token"].as_str().unwrap())).await;
    assert_eq!(visit2.welcome["participant"]["role"], "host");
    let said = chats[0][0].command(json!({"type": "chat_send", "text": "hello room 1"})).await;
    assert_eq!(said["type"], "ack", "{said}");
    let said = chats[1][0].command(json!({"type": "chat_send", "text": "hello room 2"})).await;
    assert_eq!(said["type"], "ack", "{said}");
    for (index, room_chats) in chats.iter_mut().enumerate() {
        for chat in room_chats.iter_mut().skip(1) {
            assert_eq!(next_chat(chat).await, format!("hello room {}", index + 1), "only its room's chat");
        }
    }
    assert_eq!(next_chat(&mut visit1).await, "hello room 1");
    assert_eq!(next_chat(&mut visit2).await, "hello room 2");
    // The host's key plays a room's stage too (an offer nobody completes: the answer is enough).
    let visit = server.request(
        "POST",
        &format!("/whep/{room2}/{}", in_room(1)[0]["whip_url"].as_str().unwrap().rsplit('=').next().unwrap()),
        &[("Authorization", &host_key), sdp],
        &offer,
    );
    assert_eq!(visit.status, 201, "{}", visit.text());

    // Frames of a room-mate reached a member of each room.
    for player in players {
        let played = player.finish(Duration::from_secs(90));
        assert!(played["decoded_frames"].as_u64().unwrap() >= 20, "{played}");
    }
    let view = server.request("GET", &breakouts, &[("Authorization", &host_key)], b"").json();
    assert_eq!(view["running"], true, "the checks took longer than the run: {view}");

    // The timer: a warning, then everyone is back.
    let ends_at = run["ends_at"].as_u64().unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    eprintln!("breakout checks done {} ms before the end of the run", ends_at.saturating_sub(now_ms));
    let until_end = Duration::from_millis(ends_at.saturating_sub(now_ms)) + Duration::from_secs(30);
    for client in attendees.iter_mut() {
        let closing = next_of(client, "breakout_closing", until_end).await;
        assert_eq!(closing["ends_at"], ends_at);
        let ended = next_of(client, "breakout_ended", until_end).await;
        assert_eq!(ended["reason"], "timer");
    }
    let ended = next_of(&mut host, "breakout_ended", Duration::from_secs(30)).await;
    assert_eq!(ended["reason"], "timer");
    // The rooms' sockets are told, then closed.
    for chat in chats.iter_mut().flatten().chain([&mut visit1, &mut visit2]) {
        next_of(chat, "breakout_ended", Duration::from_secs(30)).await;
        match chat.read(Duration::from_secs(30)).await {
            Read::Closed(code) => assert_eq!(code, Some(4003)),
            other => panic!("expected the close, got {other:?}"),
        }
    }
    // Their sessions end and their URLs are gone.
    server.wait_for("every breakout session closed", Duration::from_secs(30), |s| {
        s.metric("sessions_active") == 0 && s.metric("udp_routed_sessions") == 0
    });
    drop(publishers);
    for id in &room_ids {
        server.request("POST", &format!("/whip/{id}?presenter=x"), &as_one, b"v=0").assert_problem(404, "unknown_room");
        server.request("POST", &format!("/whep/{id}"), &[sdp], &offer).assert_problem(404, "unknown_room");
        server.request("GET", &format!("/ws/{id}?token={one}"), &UPGRADE, b"").assert_problem(404, "unknown_room");
    }
    let view = server.request("GET", &breakouts, &[("Authorization", &host_key)], b"").json();
    assert_eq!(view["running"], false);
    let delete = server.request("DELETE", &breakouts, &[("Authorization", &bearer(ADMIN_TOKEN))], b"");
    delete.assert_problem(404, "no_breakouts");

    // The main room's chat goes on, and no breakout chat ever reached it.
    let said = attendees[0].command(json!({"type": "chat_send", "text": "back in the main room"})).await;
    assert_eq!(said["type"], "ack", "{said}");
    for client in attendees.iter_mut().skip(1).chain([&mut host]) {
        assert_eq!(next_chat(client).await, "back in the main room");
    }
}

/// `POST` of JSON with a bearer; the 2xx body.
fn post_json(server: &Server, path: &str, auth: &str, body: Value) -> Value {
    let response = server.request(
        "POST",
        path,
        &[("Authorization", auth), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert!(response.status / 100 == 2, "{path}: {}", response.text());
    response.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_splits_by_hand_and_ends_the_breakouts_early() {
    let server = Server::start();
    let room = server.create_room();
    let host_key = bearer(&room.host_token);
    let breakouts = format!("/api/rooms/{}/breakouts", room.id);
    let mut ada = WsClient::connect(&server, &room.id, "name=Ada").await;
    let mut bob = WsClient::connect(&server, &room.id, "name=Bob").await;
    let mut cy = WsClient::connect(&server, &room.id, "name=Cy").await;
    let id = |c: &WsClient| c.welcome["participant"]["participant_id"].as_str().unwrap().to_owned();
    let body = json!({
        "rooms": [{"name": "Team A", "participants": [id(&ada), id(&bob)]}],
        "duration_s": 600,
    });
    let run = post_json(&server, &breakouts, &host_key, body);
    assert_eq!(run["rooms"][0]["name"], "Team A");
    assert_eq!(run["rooms"][0]["participants"][1]["name"], "Bob");
    let assigned = next_of(&mut ada, "breakout_assigned", Duration::from_secs(30)).await;
    assert_eq!(assigned["breakout"]["name"], "Team A");
    next_of(&mut bob, "breakout_assigned", Duration::from_secs(30)).await;
    let breakout = assigned["breakout"]["id"].as_str().unwrap().to_owned();
    let mut team =
        WsClient::connect(&server, &breakout, &format!("token={}", assigned["token"].as_str().unwrap())).await;
    assert_eq!(team.welcome["participant"]["name"], "Ada");

    let ended = server.request("DELETE", &breakouts, &[("Authorization", &host_key)], b"");
    assert_eq!(ended.status, 204, "{}", ended.text());
    for client in [&mut ada, &mut bob, &mut cy] {
        // Cy was left out of the split: no assignment, but told the breakouts ended.
        let ended = next_of(client, "breakout_ended", Duration::from_secs(30)).await;
        assert_eq!(ended["reason"], "host");
    }
    next_of(&mut team, "breakout_ended", Duration::from_secs(30)).await;
    let upgrade = format!("/ws/{breakout}?token={}", assigned["token"].as_str().unwrap());
    server.request("GET", &upgrade, &UPGRADE, b"").assert_problem(404, "unknown_room");
    // A new run may start at once.
    let again = json!({"rooms": 1, "duration_s": 60});
    let run = post_json(&server, &breakouts, &host_key, again);
    assert_eq!(run["rooms"][0]["participants"].as_array().unwrap().len(), 3);
    // Deleting the main room takes its breakout rooms with it.
    let assigned = next_of(&mut cy, "breakout_assigned", Duration::from_secs(30)).await;
    let breakout = assigned["breakout"]["id"].as_str().unwrap().to_owned();
    let admin = bearer(ADMIN_TOKEN);
    let deleted = server.request("DELETE", &format!("/api/rooms/{}", room.id), &[("Authorization", &admin)], b"");
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let upgrade = format!("/ws/{breakout}?token={}", assigned["token"].as_str().unwrap());
    server.request("GET", &upgrade, &UPGRADE, b"").assert_problem(404, "unknown_room");
}
