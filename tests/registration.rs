//! Registration through the real binary: an open room with a required custom field and a
//! capacity, and an approval room. Registrants get a personal token that the WebSocket
//! accepts as them; the `.ics` is read back by PyPI `icalendar` (an independent RFC 5545
//! parser); duplicates, a full room and bad forms get precise problems; the host lists (JSON
//! and CSV), approves and rejects (others get 401/403); a rejected registrant cannot join;
//! `registration.*` webhooks arrive; everything survives `kill -9`; deleting the room removes
//! its registrations.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ws::WsClient;
use common::{Response, Server, python};
use serde_json::{Value, json};

const ADMIN: &str = "Bearer test-admin-token";
const WEBHOOK_SECRET: &str = "s3cret";

/// One webhook request: its `webhook-id`, body, whether its signature verified, and the status
/// the receiver answered.
#[derive(Debug, Clone)]
struct Hook {
    id: String,
    json: Value,
    signed: bool,
    status: u16,
}

/// A webhook receiver that answers 500 to its first request, then 200, and checks each
/// signature as a Standard Webhooks receiver would (HMAC-SHA256 of "id.timestamp.body").
fn webhook_receiver() -> (String, Arc<Mutex<Vec<Hook>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::<Hook>::new()));
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = std::collections::HashMap::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let length = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, WEBHOOK_SECRET.as_bytes());
            let mut signed = format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).into_bytes();
            signed.extend_from_slice(&body);
            let expected = format!("v1,{}", base64(ring::hmac::sign(&key, &signed).as_ref()));
            let mut hooks = keep.lock().unwrap();
            let status = if hooks.is_empty() { 500 } else { 200 };
            hooks.push(Hook {
                id: header("webhook-id"),
                json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                signed: header("webhook-signature").split(' ').any(|s| s == expected),
                status,
            });
            drop(hooks);
            let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, received)
}

/// Standard base64 with padding (RFC 4648 §4), written here apart from the server's.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn post_json(server: &Server, path: &str, auth: Option<&str>, body: &Value) -> Response {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    server.request("POST", path, &headers, body.to_string().as_bytes())
}

fn create_room(server: &Server, body: Value) -> Value {
    let r = post_json(server, "/api/rooms", Some(ADMIN), &body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn register(server: &Server, room: &str, body: Value) -> Response {
    post_json(server, &format!("/api/rooms/{room}/registrations"), None, &body)
}

/// The calendar file as PyPI `icalendar` reads it.
fn parse_ics(text: &str) -> Value {
    let path = std::env::temp_dir().join(format!("townhall-test-{}.ics", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let script = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
events = list(cal.walk('VEVENT'))
e = events[0]
print(json.dumps({
  'events': len(events), 'version': str(cal['VERSION']), 'prodid': str(cal['PRODID']),
  'uid': str(e['UID']), 'summary': str(e['SUMMARY']), 'description': str(e['DESCRIPTION']),
  'url': str(e['URL']), 'status': str(e['STATUS']),
  'start': e.decoded('DTSTART').isoformat(), 'end': e.decoded('DTEND').isoformat(),
  'stamp': e.decoded('DTSTAMP').isoformat(),
}))
"#;
    let out = Command::new(python()).args(["-c", script]).arg(&path).output().expect("python");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "icalendar refused the file: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrants_get_a_personal_link_and_calendar_and_the_host_decides() {
    let (hook_url, hooks) = webhook_receiver();
    let env = [
        ("TOWNHALL_WEBHOOKS_URLS", hook_url.as_str()),
        ("TOWNHALL_WEBHOOKS_SECRET", WEBHOOK_SECRET),
        ("TOWNHALL_WEBHOOKS_BACKOFF_INITIAL_MS", "100"),
    ];
    let server = Server::start_with(&env);
    let description = "Quarterly numbers; Q&A, then drinks.\nBring questions \\ ideas.";
    let open = create_room(
        &server,
        json!({
            "id": "q4-town-hall", "name": "Q4 town hall, for everyone",
            "starts_at": "2026-12-01T16:00:00+01:00", "duration_min": 90, "description": description,
            "registration": {"capacity": 2, "fields": [
                {"name": "company", "label": "Company", "required": true},
                {"name": "role", "label": "Your role"}]},
        }),
    );
    assert_eq!(open["starts_at"], "2026-12-01T15:00:00Z");
    assert_eq!(open["duration_min"], 90);
    assert_eq!(open["registration"]["approval"], false);
    assert_eq!(open["registration"]["fields"][1]["required"], false);
    let room = "q4-town-hall";

    // An open room: approved at once, with a personal token, join link and calendar.
    let r = register(
        &server,
        room,
        json!({"name": "Ada Lovelace", "email": "Ada@Example.org", "fields": {"company": "ACME, Inc."}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let ada = r.json();
    assert_eq!(ada["status"], "approved");
    let participant = ada["participant"].as_str().unwrap();
    assert!(participant.starts_with("r-"), "{ada}");
    assert_eq!(ada["id"].as_str().unwrap().len(), 32);
    assert_eq!(ada["fields"], json!({"company": "ACME, Inc."}));
    let token = ada["token"].as_str().unwrap();
    assert_eq!(ada["join_url"], format!("http://{}/watch/{room}?token={token}", server.http));
    // The room is scheduled (it has a date): she waits in the waiting room, as herself.
    let (ws, first) = WsClient::join(&server, room, &format!("token={token}")).await;
    assert_eq!((first["type"].as_str(), first["reason"].as_str()), (Some("waiting"), Some("not_live")), "{first}");
    assert_eq!(first["participant"]["participant_id"], participant);
    assert_eq!(first["participant"]["name"], "Ada Lovelace");
    assert_eq!(first["room"]["starts_at"], "2026-12-01T15:00:00Z", "the waiting screen shows when");
    assert_eq!(first["participant"]["role"], "attendee");
    drop(ws);

    let ics_path =
        ada["ics_url"].as_str().unwrap().strip_prefix(&format!("http://{}", server.http)).unwrap().to_owned();
    let ics = server.request("GET", &ics_path, &[], b"");
    assert_eq!(ics.status, 200, "{}", ics.text());
    assert_eq!(ics.header("content-type"), Some("text/calendar; charset=utf-8"));
    let text = ics.text();
    assert!(text.split("\r\n").all(|l| l.len() <= 75), "lines fold at 75 octets:\n{text}");
    let cal = parse_ics(&text);
    assert_eq!(cal["events"], 1);
    assert_eq!(cal["version"], "2.0");
    assert_eq!(cal["uid"], format!("{}@townhall", ada["id"].as_str().unwrap()));
    assert_eq!(cal["summary"], "Q4 town hall, for everyone");
    assert_eq!(cal["start"], "2026-12-01T15:00:00+00:00");
    assert_eq!(cal["end"], "2026-12-01T16:30:00+00:00");
    assert_eq!(cal["url"], ada["join_url"]);
    assert_eq!(cal["status"], "CONFIRMED");
    assert_eq!(cal["description"], format!("{description}\n\nJoin: {}", ada["join_url"].as_str().unwrap()));

    // The same address again (any case) is refused; a second one fits; a third is too many.
    let again = register(&server, room, json!({"name": "Ada", "email": "ada@EXAMPLE.org", "fields": {"company": "x"}}));
    again.assert_problem(409, "already_registered");
    let bo = register(
        &server,
        room,
        json!({"name": "Bo", "email": "bo@example.org", "fields": {"company": "=HYPERLINK(1)", "role": "CTO"}}),
    );
    assert_eq!(bo.status, 201, "{}", bo.text());
    let full = register(&server, room, json!({"name": "Cy", "email": "cy@example.org", "fields": {"company": "x"}}));
    full.assert_problem(409, "registration_full");

    // Bad forms, each with its code.
    for (body, code) in [
        (json!({"name": "X", "email": "x@example.org"}), "missing_field"),
        (json!({"name": "X", "email": "x@example.org", "fields": {"company": " "}}), "missing_field"),
        (json!({"name": "X", "email": "x@example.org", "fields": {"company": "c", "age": "9"}}), "unknown_field"),
        (json!({"name": "X", "email": "x@example.org", "fields": {"company": 9}}), "bad_field"),
        (json!({"name": "X", "email": "not-an-address", "fields": {"company": "c"}}), "invalid_email"),
        (json!({"name": "", "email": "x@example.org", "fields": {"company": "c"}}), "bad_name"),
        (json!({"name": "X", "email": "x@example.org", "fields": {"company": "c"}, "vip": true}), "malformed_json"),
        (json!({"email": "x@example.org"}), "malformed_json"),
    ] {
        register(&server, room, body.clone()).assert_problem(400, code);
    }
    let r = server.request("POST", &format!("/api/rooms/{room}/registrations"), &[], b"{\"name\": ");
    r.assert_problem(400, "malformed_json");
    let huge = json!({"name": "X", "email": "x@example.org", "fields": {"company": "c".repeat(70_000)}});
    register(&server, room, huge).assert_problem(413, "body_too_large");
    register(&server, "no-such-room", json!({"name": "X", "email": "x@example.org"}))
        .assert_problem(404, "unknown_room");
    create_room(&server, json!({"id": "last-year", "starts_at": "2020-01-01T10:00:00Z"}));
    register(&server, "last-year", json!({"name": "X", "email": "x@example.org"}))
        .assert_problem(409, "registration_closed");
    let bad_room = post_json(&server, "/api/rooms", Some(ADMIN), &json!({"starts_at": "next tuesday"}));
    bad_room.assert_problem(400, "invalid_registration");

    // Only hosts list; the CSV has the custom fields as columns, defused.
    let list_path = format!("/api/rooms/{room}/registrations");
    assert_eq!(server.request("GET", &list_path, &[], b"").status, 401);
    let as_ada = format!("Bearer {token}");
    server.request("GET", &list_path, &[("Authorization", &as_ada)], b"").assert_problem(403, "forbidden");
    let host = format!("Bearer {}", open["host_token"].as_str().unwrap());
    let list = server.request("GET", &list_path, &[("Authorization", &host)], b"");
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    let emails: Vec<&str> =
        list["registrations"].as_array().unwrap().iter().map(|r| r["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["Ada@Example.org", "bo@example.org"]);
    let csv = server.request("GET", &format!("{list_path}?format=csv"), &[("Authorization", &host)], b"");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = csv.text();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "id,status,participant,name,email,registered_at,join_url,company,role");
    assert!(lines[1].ends_with(",\"ACME, Inc.\","), "{}", lines[1]);
    assert!(lines[2].ends_with(",'=HYPERLINK(1),CTO"), "{}", lines[2]);
    assert_eq!(lines.len(), 4, "{csv}");
    server
        .request("GET", &format!("{list_path}?format=xml"), &[("Authorization", &host)], b"")
        .assert_problem(400, "bad_query");

    // An approval room without a date: pending first, then the host decides.
    let vetted = create_room(&server, json!({"id": "board", "registration": {"approval": true}}));
    let vhost = format!("Bearer {}", vetted["host_token"].as_str().unwrap());
    let cy = register(&server, "board", json!({"name": "Cy", "email": "cy@example.org"})).json();
    let di = register(&server, "board", json!({"name": "Di", "email": "di@example.org"})).json();
    assert_eq!((cy["status"].as_str(), di["status"].as_str()), (Some("pending"), Some("pending")));
    let cy_ics = cy["ics_url"].as_str().unwrap().strip_prefix(&format!("http://{}", server.http)).unwrap().to_owned();
    server.request("GET", &cy_ics, &[], b"").assert_problem(404, "not_scheduled");
    server
        .request("GET", "/api/rooms/board/registrations/nope/ics", &[], b"")
        .assert_problem(404, "unknown_registration");
    // A pending registrant's token works: the waiting room holds them until the host decides
    // (the room is live: no date).
    let (mut cy_ws, first) =
        WsClient::join(&server, "board", &format!("token={}", cy["token"].as_str().unwrap())).await;
    assert_eq!((first["type"].as_str(), first["reason"].as_str()), (Some("waiting"), Some("approval")), "{first}");
    assert_eq!(first["participant"]["participant_id"], cy["participant"]);
    let decide = |id: &Value, what: &str, auth: Option<&str>| {
        post_json(&server, &format!("/api/rooms/board/registrations/{}/{what}", id.as_str().unwrap()), auth, &json!({}))
    };
    assert_eq!(decide(&cy["id"], "approve", None).status, 401);
    let cy_auth = format!("Bearer {}", cy["token"].as_str().unwrap());
    decide(&cy["id"], "approve", Some(&cy_auth)).assert_problem(403, "forbidden");
    decide(&cy["id"], "approve", Some(&host)).assert_problem(401, "unauthorized");
    let approved = decide(&cy["id"], "approve", Some(&vhost));
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(approved.json()["status"], "approved");
    // Approved: the same connection is let in.
    let welcome = cy_ws.next_of("welcome").await;
    assert_eq!(welcome["participant"]["participant_id"], cy["participant"]);
    assert!(welcome["heartbeat_interval_s"].as_u64().unwrap() >= 1);
    drop(cy_ws);
    // Di is in when the host rejects her: her socket is closed, her token refused.
    let (mut di_ws, first) =
        WsClient::join(&server, "board", &format!("token={}", di["token"].as_str().unwrap())).await;
    assert_eq!(first["reason"], "approval", "{first}");
    let rejected = decide(&di["id"], "reject", Some(ADMIN));
    assert_eq!(rejected.json()["status"], "rejected");
    loop {
        match di_ws.read(Duration::from_secs(30)).await {
            common::ws::Read::Json(_) => continue,
            common::ws::Read::Closed(code) => {
                assert_eq!(code, Some(4003));
                break;
            }
        }
    }
    let di_auth = format!("Bearer {}", di["token"].as_str().unwrap());
    let chat =
        post_json(&server, "/api/rooms/board/commands", Some(&di_auth), &json!({"type": "chat_send", "text": "hi"}));
    chat.assert_problem(403, "registration_rejected");
    decide(&json!("nope"), "approve", Some(&vhost)).assert_problem(404, "unknown_registration");
    // A rejected registrant is refused before the upgrade.
    let url = common::ws::ws_url(&server, "board", &format!("token={}", di["token"].as_str().unwrap()));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a rejected registrant got in: {:?}", other.map(|_| ())),
    }

    // The webhooks: every registration and decision, signed; the first was refused by the
    // receiver (500) and came again with the same webhook-id.
    server.wait_for("registration webhooks", Duration::from_secs(30), |_| {
        let hooks = hooks.lock().unwrap();
        let delivered = |kind: &str| hooks.iter().filter(|h| h.status == 200 && h.json["type"] == kind).count();
        delivered("registration.created") == 4
            && delivered("registration.approved") == 1
            && delivered("registration.rejected") == 1
    });
    let hooks = hooks.lock().unwrap().clone();
    assert!(hooks.iter().all(|h| h.signed), "{hooks:?}");
    let (first, retried) = (&hooks[0], &hooks[1]);
    assert_eq!((first.status, retried.status), (500, 200));
    assert_eq!((&first.id, &first.json), (&retried.id, &retried.json), "a retry is the same event");
    let created = hooks.iter().find(|h| h.json["type"] == "registration.created").unwrap();
    assert_eq!(created.json["data"]["room"], room);
    assert_eq!(created.json["data"]["registration"]["email"], "Ada@Example.org");
    assert_eq!(created.json["data"]["registration"]["participant"], participant);

    // kill -9 and restart: the registrations, their calendar and their tokens are still there.
    // (Links name the server's address, which is new after the restart.)
    let before = server.request("GET", &list_path, &[("Authorization", &host)], b"").text();
    let old_address = server.http.to_string();
    let data_dir = server.kill_keeping_data();
    let server = Server::start_in(data_dir, &env);
    // Unfolded (RFC 5545 §3.1), so that an address split across two lines compares too.
    let moved = |text: String| text.replace("\r\n ", "").replace(&server.http.to_string(), &old_address);
    assert_eq!(moved(server.request("GET", &list_path, &[("Authorization", &host)], b"").text()), before);
    assert_eq!(moved(server.request("GET", &ics_path, &[], b"").text()), text.replace("\r\n ", ""));
    let (ws, first) = WsClient::join(&server, room, &format!("token={token}")).await;
    assert_eq!(first["participant"]["participant_id"], participant, "{first}");
    drop(ws);
    register(&server, room, json!({"name": "Cy", "email": "cy@example.org", "fields": {"company": "x"}}))
        .assert_problem(409, "registration_full");

    // The host moves the event and rewords it: the room and the calendar follow; an attendee
    // may not; bad changes are refused.
    let room_path = format!("/api/rooms/{room}");
    let patch = |auth: &str, body: Value| {
        server.request(
            "PATCH",
            &room_path,
            &[("Authorization", auth), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let moved_room =
        patch(&host, json!({"starts_at": "2026-12-02T09:30:00Z", "description": "", "name": "Q4 town hall (moved)"}));
    assert_eq!(moved_room.status, 200, "{}", moved_room.text());
    let moved_room = moved_room.json();
    assert_eq!(
        (moved_room["starts_at"].as_str(), moved_room["duration_min"].as_u64()),
        (Some("2026-12-02T09:30:00Z"), Some(90))
    );
    assert!(moved_room.get("description").is_none(), "{moved_room}");
    assert_eq!(moved_room["registration"]["capacity"], 2, "what is not given stays");
    let cal = parse_ics(&server.request("GET", &ics_path, &[], b"").text());
    assert_eq!(
        (cal["start"].as_str(), cal["end"].as_str()),
        (Some("2026-12-02T09:30:00+00:00"), Some("2026-12-02T11:00:00+00:00"))
    );
    assert_eq!(cal["summary"], "Q4 town hall (moved)");
    patch(&as_ada, json!({"duration_min": 30})).assert_problem(403, "forbidden");
    patch(&host, json!({"duration_min": 0})).assert_problem(400, "invalid_registration");
    patch(&host, json!({"starts_at": "soon"})).assert_problem(400, "invalid_registration");
    patch(&host, json!({"name": " "})).assert_problem(400, "invalid_name");
    patch(&host, json!({"phase": "live"})).assert_problem(400, "malformed_json");
    // Changes survive a restart like everything else.
    let data_dir = server.kill_keeping_data();
    let server = Server::start_in(data_dir, &env);
    let read = server.request("GET", &room_path, &[("Authorization", &host)], b"").json();
    assert_eq!(read["starts_at"], "2026-12-02T09:30:00Z");
    assert_eq!(read["name"], "Q4 town hall (moved)");

    // Deleting the room deletes its registrations.
    let r = server.request("DELETE", &format!("/api/rooms/{room}"), &[("Authorization", ADMIN)], b"");
    assert_eq!(r.status, 204);
    let again = create_room(&server, json!({"id": room}));
    let host = format!("Bearer {}", again["host_token"].as_str().unwrap());
    assert_eq!(
        server.request("GET", &list_path, &[("Authorization", &host)], b"").json(),
        json!({"registrations": []})
    );
}
