//! Interaction over `/ws/{room}` through the real binary, with tokio-tungstenite clients:
//! fan-out to 200 clients in order with no loss while a stalled client is told to resync and
//! catches up with `since`; a kill -9 keeps chat, questions, votes and results; bad input gets
//! clear errors and stores nothing twice.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use common::ws::{Read, WsClient, ws_url};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(60);

/// The seqs of the events an attendee may see, from the REST API (no token).
fn public_seqs(server: &Server, room: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let since = seqs.last().copied().unwrap_or(0);
        let page = server.request("GET", &format!("/api/rooms/{room}/events?since={since}"), &[], b"").json();
        seqs.extend(page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()));
        if page["more"] != true {
            return seqs;
        }
    }
}

fn is_event(message: &Value) -> bool {
    message["seq"].is_u64() && !matches!(message["type"].as_str(), Some("welcome" | "ack" | "error" | "resync"))
}

fn acked(reply: &Value) -> u64 {
    assert_eq!(reply["type"], "ack", "{reply}");
    reply["seqs"].as_array().unwrap().last().and_then(Value::as_u64).unwrap_or(0)
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_get_every_event_in_order_and_a_stalled_one_resyncs() {
    const CLIENTS: usize = 200;
    const CHAT: usize = 300;
    // A small queue so that a stalled client overflows it; a long send timeout so that it is
    // told to resync (when it reads again) rather than cut off; long messages allowed, so that
    // the burst that fills the stalled client's socket buffers (4 MiB here) stays short.
    let server = Server::start_with(&[
        ("TOWNHALL_WEBSOCKET_QUEUE_EVENTS", "64"),
        ("TOWNHALL_WEBSOCKET_SEND_TIMEOUT_MS", "300000"),
        ("TOWNHALL_WEBSOCKET_MAX_MESSAGE_BYTES", "65536"),
        ("TOWNHALL_INTERACTION_CHAT_MAX_CHARS", "16000"),
    ]);
    let room = server.create_room();

    // A client that stops reading after its welcome, with a small receive window.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.http).await.unwrap();
    let url = ws_url(&server, &room.id, "name=stalled");
    let (stalled, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.unwrap();
    let mut stalled = WsClient::welcomed(stalled).await;

    // 200 attendees, each reading on its own task, recording the seqs of the events it gets.
    let received: Vec<Arc<Mutex<Vec<u64>>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let mut readers = Vec::new();
    for (i, seqs) in received.iter().enumerate() {
        let mut client = WsClient::connect(&server, &room.id, &format!("name=viewer{i}")).await;
        assert_eq!(client.welcome["participant"]["role"], "attendee");
        let seqs = seqs.clone();
        readers.push(tokio::spawn(async move {
            loop {
                match client.read(Duration::from_secs(600)).await {
                    Read::Json(message) if is_event(&message) => {
                        seqs.lock().unwrap().push(message["seq"].as_u64().unwrap())
                    }
                    Read::Json(message) => assert_ne!(message["type"], "resync", "viewer {i} had to resync"),
                    Read::Closed(code) => panic!("viewer {i} was closed ({code:?})"),
                }
            }
        }));
    }
    let caught_up = |readers: &[Arc<Mutex<Vec<u64>>>], target: u64| {
        let readers = readers.to_vec();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while readers.iter().any(|r| r.lock().unwrap().last().copied().unwrap_or(0) < target) {
                assert!(Instant::now() < deadline, "the readers did not reach seq {target}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let mut host = WsClient::connect(&server, &room.id, &format!("token={}&name=Host", room.host_token)).await;
    assert_eq!(host.welcome["participant"]["role"], "host");
    let mut asker = WsClient::connect(&server, &room.id, "name=asker").await;

    // The scripted session: a chapter, a question, a poll, chat. Every 32 messages the host
    // waits for the readers (their queue is 64 events), so that none falls behind.
    acked(&host.command(json!({"type": "chapter_start", "title": "Welcome"})).await);
    acked(&asker.command(json!({"type": "question_ask", "text": "Will the slides be shared?"})).await);
    acked(
        &host.command(json!({"type": "poll_create", "question": "Tea or coffee?", "options": ["Tea", "Coffee"]})).await,
    );
    acked(&host.command(json!({"type": "poll_open", "poll": "p1"})).await);
    acked(&asker.command(json!({"type": "poll_vote", "poll": "p1", "options": [1]})).await);
    acked(&host.command(json!({"type": "question_mark", "question": "q1", "status": "answering"})).await);
    for n in 0..CHAT {
        let seq = acked(&host.command(json!({"type": "chat_send", "text": format!("message {n}")})).await);
        if n % 32 == 31 {
            caught_up(&received, seq).await;
        }
    }
    acked(&host.command(json!({"type": "poll_close", "poll": "p1"})).await);
    let last = acked(&host.command(json!({"type": "question_mark", "question": "q1", "status": "answered"})).await);
    caught_up(&received, last).await;

    // Every reader got exactly the public log, in order, nothing twice.
    let expected = public_seqs(&server, &room.id);
    assert!(expected.len() > CHAT && *expected.last().unwrap() == last, "{} public events", expected.len());
    for (i, seqs) in received.iter().enumerate() {
        assert_eq!(*seqs.lock().unwrap(), expected, "viewer {i}");
    }
    for reader in readers {
        assert!(!reader.is_finished(), "a reader ended early");
        reader.abort();
    }

    // A burst larger than the stalled client's socket buffers and queue (~8 MB); one reader
    // keeps up meanwhile.
    let witness = vec![Arc::<Mutex<Vec<u64>>>::default()];
    let mut client = WsClient::connect(&server, &room.id, "name=witness").await;
    let seqs = witness[0].clone();
    let reader = tokio::spawn(async move {
        loop {
            match client.read(Duration::from_secs(600)).await {
                Read::Json(message) if is_event(&message) => {
                    seqs.lock().unwrap().push(message["seq"].as_u64().unwrap())
                }
                Read::Json(message) => assert_ne!(message["type"], "resync"),
                Read::Closed(code) => panic!("the witness was closed ({code:?})"),
            }
        }
    });
    let long_text = "lorem ipsum dolor sit amet ".repeat(520);
    let mut last = last;
    for n in 0..600 {
        last = acked(&host.command(json!({"type": "chat_send", "text": format!("{n} {long_text}")})).await);
        if n % 32 == 31 {
            caught_up(&witness, last).await;
        }
    }
    caught_up(&witness, last).await;
    let expected = public_seqs(&server, &room.id);
    assert_eq!(*expected.last().unwrap(), last);
    reader.abort();

    // The stalled client reads again: what it has is a gap-free prefix, then `resync`, then the
    // close; with `since` it gets the rest and the whole log.
    let mut got = Vec::new();
    let resync_seq = loop {
        match stalled.read(LONG).await {
            Read::Json(message) if is_event(&message) => got.push(message["seq"].as_u64().unwrap()),
            Read::Json(message) if message["type"] == "resync" => {
                assert_eq!(message["reason"], "too_slow");
                break message["seq"].as_u64().unwrap();
            }
            Read::Json(_) => {}
            Read::Closed(code) => panic!("closed ({code:?}) without a resync notice"),
        }
    };
    assert!(resync_seq < last, "the stalled client was told to resync at {resync_seq}");
    assert_eq!(got, expected.iter().copied().take_while(|s| *s <= resync_seq).collect::<Vec<_>>());
    assert!(matches!(stalled.read(LONG).await, Read::Closed(Some(4000))));
    assert!(server.metric("ws_resyncs_total") >= 1);

    let token = stalled.token();
    let mut again = WsClient::connect(&server, &room.id, &format!("token={token}&since={resync_seq}")).await;
    assert_eq!(again.welcome["participant"]["participant_id"], stalled.welcome["participant"]["participant_id"]);
    assert!(again.welcome["snapshot"].is_null(), "missed events, not a snapshot");
    while got.last() != Some(&last) {
        match again.read(LONG).await {
            Read::Json(message) if is_event(&message) => got.push(message["seq"].as_u64().unwrap()),
            Read::Json(_) => {}
            Read::Closed(code) => panic!("closed ({code:?})"),
        }
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_keeps_chat_questions_votes_and_results() {
    let server = Server::start();
    let room = server.create_room();
    let host_query = format!("token={}", room.host_token);
    let mut host = WsClient::connect(&server, &room.id, &host_query).await;
    let mut ada = WsClient::connect(&server, &room.id, "name=Ada").await;
    let mut bob = WsClient::connect(&server, &room.id, "name=Bob").await;

    acked(&ada.command(json!({"type": "chat_send", "text": "hello from Ada"})).await);
    acked(&bob.command(json!({"type": "chat_send", "text": "secret for the hosts", "visibility": "moderators"})).await);
    acked(&ada.command(json!({"type": "question_ask", "text": "What is on the agenda?"})).await);
    acked(&bob.command(json!({"type": "question_upvote", "question": "q1"})).await);
    acked(&host.command(json!({"type": "poll_create", "question": "Rate the talk", "options": ["Good", "Great", "Superb"], "allow_change": false})).await);
    acked(&host.command(json!({"type": "poll_open", "poll": "p1"})).await);
    acked(&ada.command(json!({"type": "poll_vote", "poll": "p1", "options": [2], "nonce": "vote-1"})).await);
    acked(&bob.command(json!({"type": "poll_vote", "poll": "p1", "options": [1]})).await);
    acked(&host.command(json!({"type": "poll_close", "poll": "p1"})).await);
    acked(&host.command(json!({"type": "poll_create", "question": "Open still?", "options": ["Yes", "No"], "allow_change": false})).await);
    acked(&host.command(json!({"type": "poll_open", "poll": "p2"})).await);
    let last = acked(&ada.command(json!({"type": "poll_vote", "poll": "p2", "options": [0]})).await);
    let (ada_token, bob_token) = (ada.token(), bob.token());
    drop((host, ada, bob));

    let data_dir = server.kill_keeping_data();
    let server = Server::start_in(data_dir, &[]);
    let mut ada = WsClient::connect(&server, &room.id, &format!("token={ada_token}")).await;
    let snapshot = &ada.welcome["snapshot"];
    assert_eq!(snapshot["seq"], last);
    let chat: Vec<&str> =
        snapshot["chat"]["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(chat, ["hello from Ada"], "an attendee does not see the moderators-only message");
    assert_eq!(snapshot["questions"][0]["votes"], 1);
    let p1 = &snapshot["polls"][0];
    assert_eq!((p1["state"].as_str(), p1["voters"].as_u64()), (Some("closed"), Some(2)));
    let votes: Vec<u64> = p1["options"].as_array().unwrap().iter().map(|o| o["votes"].as_u64().unwrap()).collect();
    assert_eq!(votes, [0, 1, 1]);
    assert_eq!(p1["my_vote"], json!([2]), "the same participant after the restart");
    assert_eq!(snapshot["polls"][1]["my_vote"], json!([0]));

    // The same nonce again stores nothing; a second vote is refused; results stay final.
    let resent = ada.command(json!({"type": "poll_vote", "poll": "p1", "options": [2], "nonce": "vote-1"})).await;
    assert_eq!((resent["type"].as_str(), resent["replayed"].as_bool()), (Some("ack"), Some(true)));
    assert_eq!(
        error_code(&ada.command(json!({"type": "poll_vote", "poll": "p2", "options": [1], "nonce": "x"})).await),
        "already_voted"
    );
    assert_eq!(
        error_code(&ada.command(json!({"type": "poll_vote", "poll": "p1", "options": [0]})).await),
        "poll_closed"
    );
    let host_view = server.request(
        "GET",
        &format!("/api/rooms/{}/events", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token))],
        b"",
    );
    let events = host_view.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.last().unwrap()["seq"], last, "nothing stored after the restart");
    assert!(events.iter().any(|e| e["text"] == "secret for the hosts"), "the host sees the private message");
    let mut bob = WsClient::connect(&server, &room.id, &format!("token={bob_token}")).await;
    assert_eq!(bob.welcome["snapshot"]["questions"][0]["voted"], true);
    // Bob's upvote is a toggle, still his after the restart.
    acked(&bob.command(json!({"type": "question_upvote", "question": "q1"})).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_interaction_input_gets_clear_errors_and_is_stored_once() {
    let server = Server::start();
    let room = server.create_room();

    // Refused before the upgrade, as JSON problems.
    let upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    server.request("GET", "/ws/no-such-room", &upgrade, b"").assert_problem(404, "unknown_room");
    server.request("GET", &format!("/ws/{}?token=wrong", room.id), &upgrade, b"").assert_problem(401, "unauthorized");
    server.request("GET", &format!("/ws/{}?name=%07", room.id), &upgrade, b"").assert_problem(400, "bad_name");
    server.request("GET", &format!("/ws/{}?since=soon", room.id), &upgrade, b"").assert_problem(400, "bad_query");
    let other = server.create_room();
    let guest = WsClient::connect(&server, &other.id, "").await;
    let foreign = format!("/ws/{}?token={}", room.id, guest.token());
    server.request("GET", &foreign, &upgrade, b"").assert_problem(401, "unauthorized");
    server.request("GET", &format!("/ws/{}", room.id), &[], b"").assert_problem(426, "websocket_required");

    let mut host = WsClient::connect(&server, &room.id, &format!("token={}", room.host_token)).await;
    let mut eve = WsClient::connect(&server, &room.id, "name=Eve").await;
    assert_eq!(error_code(&eve.command(json!({"type": "chat_send"})).await), "malformed");
    assert_eq!(error_code(&eve.command(json!("not an object")).await), "malformed");
    assert_eq!(error_code(&eve.command(json!({"type": "dance"})).await), "malformed");
    let not_utf8 = tokio_tungstenite::tungstenite::Message::Binary(vec![0xff, 0xfe, b'{'].into());
    futures_util::SinkExt::send(&mut eve.socket, not_utf8).await.unwrap();
    assert_eq!(error_code(&eve.reply().await), "malformed");
    assert_eq!(
        error_code(&eve.command(json!({"type": "poll_vote", "poll": "p9", "options": [0]})).await),
        "unknown_poll"
    );
    assert_eq!(
        error_code(&eve.command(json!({"type": "question_upvote", "question": "q9"})).await),
        "unknown_question"
    );
    assert_eq!(error_code(&eve.command(json!({"type": "poll_open", "poll": "p1"})).await), "not_allowed");
    assert_eq!(error_code(&eve.command(json!({"type": "chat_send", "text": "x".repeat(501)})).await), "too_long");
    assert_eq!(error_code(&eve.command(json!({"type": "chat_send", "text": "   "})).await), "empty");
    acked(
        &host
            .command(json!({"type": "poll_create", "question": "Q?", "options": ["A", "B"], "allow_change": false}))
            .await,
    );
    assert_eq!(
        error_code(&eve.command(json!({"type": "poll_vote", "poll": "p1", "options": [0]})).await),
        "poll_not_open"
    );
    acked(&host.command(json!({"type": "poll_open", "poll": "p1"})).await);
    // An attendee's vote is for the moderators: its author gets it in the ack, the moderators on
    // their channel.
    let vote = eve.command(json!({"type": "poll_vote", "poll": "p1", "options": [0]})).await;
    acked(&vote);
    assert_eq!((vote["own"][0]["type"].as_str(), vote["own"][0]["options"].clone()), (Some("poll_voted"), json!([0])));
    loop {
        match host.read(LONG).await {
            Read::Json(message) if message["type"] == "poll_voted" => break,
            Read::Json(_) => {}
            Read::Closed(code) => panic!("closed ({code:?})"),
        }
    }
    assert_eq!(
        error_code(&eve.command(json!({"type": "poll_vote", "poll": "p1", "options": [0]})).await),
        "already_voted"
    );
    assert_eq!(
        error_code(&eve.command(json!({"type": "poll_vote", "poll": "p1", "options": [5]})).await),
        "invalid_choice"
    );

    // A flood: the burst passes, the rest is refused with a retry hint, and only what passed
    // is stored (nonces make resends harmless).
    let stored = || {
        let bearer = format!("Bearer {}", room.host_token);
        let page = server.request("GET", &format!("/api/rooms/{}/events", room.id), &[("Authorization", &bearer)], b"");
        page.json()["events"].as_array().unwrap().len()
    };
    let before = stored();
    let mut accepted = 0;
    let mut limited = 0;
    for n in 0..20 {
        let reply =
            eve.command(json!({"type": "chat_send", "text": format!("spam {n}"), "nonce": format!("n{n}")})).await;
        match reply["type"].as_str() {
            Some("ack") => accepted += 1,
            _ => {
                assert_eq!(error_code(&reply), "rate_limited");
                assert!(reply["retry_after_ms"].as_u64().unwrap() > 0);
                limited += 1;
            }
        }
    }
    assert!(accepted >= 5 && limited >= 10, "accepted {accepted}, limited {limited}");
    let resent = eve.command(json!({"type": "chat_send", "text": "spam 0", "nonce": "n0"})).await;
    assert_eq!(resent["replayed"], true);
    let after = stored();
    assert_eq!(after - before, accepted, "each accepted message stored once, nothing else");

    // An oversized message closes that socket (1009); the room and the others go on.
    eve.send(json!({"type": "chat_send", "text": "y".repeat(20_000)})).await;
    loop {
        match eve.read(LONG).await {
            Read::Closed(code) => {
                assert_eq!(code, Some(1009));
                break;
            }
            Read::Json(_) => {}
        }
    }
    acked(&host.command(json!({"type": "chat_send", "text": "still here"})).await);

    // The HTTP side: commands need a token; the export needs the host.
    let commands = format!("/api/rooms/{}/commands", room.id);
    server.request("POST", &commands, &[], br#"{"type":"hand_raise"}"#).assert_problem(401, "unauthorized");
    let bearer = format!("Bearer {}", room.host_token);
    server.request("POST", &commands, &[("Authorization", &bearer)], b"{").assert_problem(400, "malformed");
    let asked = server.request(
        "POST",
        &commands,
        &[("Authorization", &bearer)],
        br#"{"type":"question_ask","text":"=1+1, \"quoted\""}"#,
    );
    assert_eq!(asked.status, 200, "{}", asked.text());
    let export = format!("/api/rooms/{}/questions/unanswered?format=csv", room.id);
    server.request("GET", &export, &[], b"").assert_problem(401, "unauthorized");
    let csv = server.request("GET", &export, &[("Authorization", &bearer)], b"");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.text().contains("\"'=1+1, \"\"quoted\"\"\""), "{}", csv.text());
    server
        .request("GET", &format!("/api/rooms/{}/events?since=-1", room.id), &[], b"")
        .assert_problem(400, "bad_query");
    server.request("GET", "/api/rooms/nope/events", &[], b"").assert_problem(404, "unknown_room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_or_participant_is_disconnected_and_cannot_come_back() {
    let server = Server::start();
    let room = server.create_room();
    let host = format!("Bearer {}", room.host_token);
    let issue = |name: &str| {
        let response = server.request(
            "POST",
            &format!("/api/rooms/{}/tokens", room.id),
            &[("Authorization", &host)],
            json!({"role": "attendee", "name": name}).to_string().as_bytes(),
        );
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    };
    let revoke = |body: Value| {
        let path = format!("/api/rooms/{}/tokens/revoke", room.id);
        let response = server.request("POST", &path, &[("Authorization", &host)], body.to_string().as_bytes());
        assert_eq!(response.status, 204, "{}", response.text());
    };
    let mallory = issue("Mallory");
    let token = mallory["token"].as_str().unwrap();
    // Two tabs of one participant (a ban closes both), and another attendee whose one token is
    // revoked (only its connection closes).
    let mut first = WsClient::connect(&server, &room.id, &format!("token={token}")).await;
    let mut second = WsClient::connect(&server, &room.id, &format!("token={token}")).await;
    assert_eq!(first.welcome["participant"]["name"], "Mallory");
    let trudy = issue("Trudy");
    let mut other = WsClient::connect(&server, &room.id, &format!("token={}", trudy["token"].as_str().unwrap())).await;
    let mut bystander = WsClient::connect(&server, &room.id, "name=Bystander").await;

    revoke(json!({"jti": trudy["jti"]}));
    let removed = |message: &Read| matches!(message, Read::Json(m) if m["type"] == "removed");
    assert!(removed(&other.read(LONG).await));
    assert!(matches!(other.read(LONG).await, Read::Closed(Some(4003))));

    revoke(json!({"participant_id": mallory["participant_id"]}));
    for client in [&mut first, &mut second] {
        assert!(removed(&client.read(LONG).await));
        assert!(matches!(client.read(LONG).await, Read::Closed(Some(4003))));
    }
    let again = tokio_tungstenite::connect_async(ws_url(&server, &room.id, &format!("token={token}"))).await;
    match again {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a banned participant connected again: {other:?}"),
    }
    // The others go on.
    acked(&bystander.command(json!({"type": "chat_send", "text": "still here"})).await);
}
