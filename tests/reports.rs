//! Reports through the real binary: a scripted session (four registrants, three of whom join
//! over the WebSocket with their personal tokens, one in two tabs, plus the host and a guest;
//! heartbeats on a 4 s interval, bursts included; chat, a question, an upvote, poll votes, a
//! hand; one participant leaves and comes back) gives a report whose every number is the
//! script's; the CSV says what the JSON says; `kill -9` and a restart give the same report.

mod common;

use std::time::Duration;

use common::ws::WsClient;
use common::{Response, Server};
use serde_json::{Value, json};
use tokio::time::Instant;

const ADMIN: &str = "Bearer test-admin-token";
const INTERVAL_S: u64 = 4;

fn report(server: &Server, room: &str, auth: &str) -> Value {
    let r = server.request("GET", &format!("/api/rooms/{room}/report"), &[("Authorization", auth)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn post_json(server: &Server, path: &str, auth: Option<&str>, body: &Value) -> Response {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    server.request("POST", path, &headers, body.to_string().as_bytes())
}

async fn heartbeat(ws: &mut WsClient, playing: bool) {
    ws.send(json!({"type": "heartbeat", "playing": playing})).await;
}

/// A command whose reply says that what the socket sent before it was handled.
async fn sync(ws: &mut WsClient) {
    ws.command(json!({"type": "chat_unpin"})).await;
}

async fn ack(ws: &mut WsClient, command: Value) -> Value {
    let reply = ws.command(command.clone()).await;
    assert_eq!(reply["type"], "ack", "{command}: {reply}");
    reply
}

fn wait_connected(server: &Server, room: &str, host: &str, n: u64) {
    server.wait_for(&format!("{n} connected"), Duration::from_secs(30), |s| report(s, room, host)["connected"] == n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_gives_exact_numbers_that_survive_a_restart() {
    let env = [("TOWNHALL_REPORTS_HEARTBEAT_INTERVAL_S", "4")];
    let server = Server::start_with(&env);
    let created = post_json(
        &server,
        "/api/rooms",
        Some(ADMIN),
        &json!({"id": "all-hands", "starts_at": "2026-12-01T15:00:00Z", "phase": "live"}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let host_auth = format!("Bearer {}", created.json()["host_token"].as_str().unwrap());
    let room = "all-hands";
    let mut registrants = Vec::new();
    for (name, email) in
        [("Ada", "ada@example.org"), ("Bo", "bo@example.org"), ("Cy", "cy@example.org"), ("Di", "di@example.org")]
    {
        let r = post_json(
            &server,
            &format!("/api/rooms/{room}/registrations"),
            None,
            &json!({"name": name, "email": email}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        registrants.push(r.json());
    }
    let token = |i: usize| format!("token={}", registrants[i]["token"].as_str().unwrap());
    let participant = |i: usize| registrants[i]["participant"].as_str().unwrap().to_owned();

    // The host; then Ada, whose first playing heartbeat counts and whose burst does not.
    let mut host =
        WsClient::connect(&server, room, &format!("token={}", created.json()["host_token"].as_str().unwrap())).await;
    assert_eq!(host.welcome["heartbeat_interval_s"], INTERVAL_S);
    let mut ada = WsClient::connect(&server, room, &token(0)).await;
    let ada_joined = Instant::now();
    for _ in 0..6 {
        heartbeat(&mut ada, true).await;
    }
    ack(&mut ada, json!({"type": "chat_send", "text": "hello"})).await;
    ack(&mut ada, json!({"type": "chat_send", "text": "hello again"})).await;

    // Bo in two tabs: one cap for both.
    let mut bo_a = WsClient::connect(&server, room, &token(1)).await;
    let bo_joined = Instant::now();
    let mut bo_b = WsClient::connect(&server, room, &token(1)).await;
    heartbeat(&mut bo_a, true).await;
    heartbeat(&mut bo_b, true).await;
    sync(&mut bo_a).await;
    let asked = ack(&mut bo_b, json!({"type": "question_ask", "text": "What about Q1?"})).await;
    assert_eq!(asked["seqs"].as_array().unwrap().len(), 1);

    // A guest upvotes; its malformed heartbeat gets an error.
    let mut guest = WsClient::connect(&server, room, "name=Guest").await;
    let guest_id = guest.welcome["participant"]["participant_id"].as_str().unwrap().to_owned();
    ack(&mut guest, json!({"type": "question_upvote", "question": "q1"})).await;
    guest.send(json!({"type": "heartbeat"})).await;
    let reply = guest.reply().await;
    assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some("malformed")), "{reply}");

    // Cy raises a hand, leaves, comes back: five at once, twice.
    let mut cy = WsClient::connect(&server, room, &token(2)).await;
    ack(&mut cy, json!({"type": "hand_raise"})).await;
    let mid = report(&server, room, &host_auth);
    assert_eq!((mid["connected"].as_u64(), mid["peak_concurrent"].as_u64()), (Some(5), Some(5)), "{mid}");
    cy.socket.close(None).await.unwrap();
    wait_connected(&server, room, &host_auth, 4);
    let mut cy = WsClient::connect(&server, room, &token(2)).await;
    wait_connected(&server, room, &host_auth, 5);

    // A poll: Ada votes and changes her vote, Bo votes.
    let created_poll =
        ack(&mut host, json!({"type": "poll_create", "question": "Lunch?", "options": ["Pizza", "Salad"]})).await;
    assert_eq!(created_poll["seqs"].as_array().unwrap().len(), 1);
    ack(&mut host, json!({"type": "poll_open", "poll": "p1"})).await;
    ack(&mut ada, json!({"type": "poll_vote", "poll": "p1", "options": [0]})).await;
    ack(&mut ada, json!({"type": "poll_vote", "poll": "p1", "options": [1]})).await;
    ack(&mut bo_a, json!({"type": "poll_vote", "poll": "p1", "options": [1]})).await;

    // One interval later: one more playing heartbeat each, and a paused one from Ada.
    tokio::time::sleep_until(ada_joined + Duration::from_millis(INTERVAL_S * 1_000 + 200)).await;
    heartbeat(&mut ada, true).await;
    heartbeat(&mut ada, false).await;
    sync(&mut ada).await;
    tokio::time::sleep_until(bo_joined + Duration::from_millis(INTERVAL_S * 1_000 + 200)).await;
    heartbeat(&mut bo_b, true).await;
    sync(&mut bo_b).await;

    for ws in [&mut host, &mut ada, &mut bo_a, &mut bo_b, &mut guest, &mut cy] {
        ws.socket.close(None).await.unwrap();
    }
    wait_connected(&server, room, &host_auth, 0);

    // The report is the script.
    let r = report(&server, room, &host_auth);
    let totals =
        ["registered", "approved", "pending", "rejected", "joined", "peak_concurrent", "connected", "watch_s_total"]
            .map(|k| r[k].as_u64().unwrap_or(u64::MAX));
    assert_eq!(totals, [4, 4, 0, 0, 5, 5, 0, 16], "{r:#}");
    assert_eq!(r["room"], room);
    let people = r["people"].as_array().unwrap();
    let ids: Vec<String> = people.iter().map(|p| p["participant"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        ids,
        ["host".to_owned(), participant(0), participant(1), guest_id.clone(), participant(2), participant(3)]
    );
    let row = |p: &Value| {
        ["watch_s", "chat_messages", "questions", "upvotes", "votes", "hands"]
            .map(|k| p[k].as_u64().unwrap_or(u64::MAX))
    };
    assert_eq!(row(&people[0]), [0, 0, 0, 0, 0, 0], "host");
    assert_eq!(row(&people[1]), [8, 2, 0, 0, 1, 0], "Ada");
    assert_eq!(row(&people[2]), [8, 0, 1, 0, 1, 0], "Bo");
    assert_eq!(row(&people[3]), [0, 0, 0, 1, 0, 0], "the guest");
    assert_eq!(row(&people[4]), [0, 0, 0, 0, 0, 1], "Cy");
    assert_eq!(row(&people[5]), [0, 0, 0, 0, 0, 0], "Di");
    assert_eq!((people[0]["role"].as_str(), people[0]["email"].as_str()), (Some("host"), None));
    assert_eq!((people[1]["name"].as_str(), people[1]["email"].as_str()), (Some("Ada"), Some("ada@example.org")));
    assert_eq!(people[1]["registration"], "approved");
    assert_eq!((people[3]["name"].as_str(), people[3]["registration"].as_str()), (Some("Guest"), None));
    for p in &people[..5] {
        assert!(p["first_joined"].as_str().is_some_and(|t| t.ends_with('Z')) && p["last_left"].is_string(), "{p}");
    }
    assert!(people[5]["first_joined"].is_null() && people[5]["last_left"].is_null());

    // The CSV says the same, row by row.
    let csv =
        server.request("GET", &format!("/api/rooms/{room}/report?format=csv"), &[("Authorization", &host_auth)], b"");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = csv.text();
    let lines: Vec<&str> = csv.strip_suffix("\r\n").unwrap().split("\r\n").collect();
    let columns: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(lines.len(), people.len() + 1, "{csv}");
    for (line, person) in lines[1..].iter().zip(people) {
        for (column, cell) in columns.iter().zip(line.split(',')) {
            let expected = match &person[*column] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(_) | Value::Array(_) | Value::Object(_) => panic!("{column}"),
            };
            let expected = if *column == "room" { room.to_owned() } else { expected };
            assert_eq!(*cell, expected, "{column} of {line}");
        }
    }

    // Hosts only.
    let attendee = format!("Bearer {}", registrants[0]["token"].as_str().unwrap());
    let path = format!("/api/rooms/{room}/report");
    server.request("GET", &path, &[("Authorization", &attendee)], b"").assert_problem(403, "forbidden");
    server.request("GET", &path, &[], b"").assert_problem(401, "unauthorized");
    server
        .request("GET", &format!("{path}?format=pdf"), &[("Authorization", &host_auth)], b"")
        .assert_problem(400, "bad_query");

    // kill -9 and restart: the same report.
    let data_dir = server.kill_keeping_data();
    let server = Server::start_in(data_dir, &env);
    assert_eq!(report(&server, room, &host_auth), r);
}
