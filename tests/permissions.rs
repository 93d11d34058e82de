//! The permission matrix through the real binary: every endpoint and every interaction command
//! against every kind of caller: no token, the admin token, the room's host and publish keys,
//! signed host, presenter and attendee tokens, and signed tokens that must be refused (another
//! room's, expired, revoked by id, revoked by participant, forged). A valid token whose role may
//! not do a thing gets 403; a missing or invalid one 401; what is allowed gets past the
//! permission check (its status then says what the request itself lacked).

mod common;

use std::time::Duration;

use common::{ADMIN_TOKEN, Room, Server};
use serde_json::{Value, json};

/// Signs a token of `role` in `room` through the API (with the room's host key).
fn issue(server: &Server, room: &Room, role: &str, name: &str, ttl_s: u64) -> Value {
    let response = server.request(
        "POST",
        &format!("/api/rooms/{}/tokens", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token)), ("Content-Type", "application/json")],
        json!({"role": role, "name": name, "ttl_s": ttl_s}).to_string().as_bytes(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

fn revoke(server: &Server, room: &Room, body: Value) {
    let response = server.request(
        "POST",
        &format!("/api/rooms/{}/tokens/revoke", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token))],
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 204, "{}", response.text());
}

/// An endpoint of the matrix: method, path, content type, body, who may, the status when
/// allowed, the status without a token (where none is needed).
type Endpoint<'a> = (&'a str, String, &'a str, String, &'a [Kind], u16, u16);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Anonymous,
    Admin,
    HostKey,
    PublishKey,
    Host,
    Presenter,
    Attendee,
    Refused,
}

/// What a caller of `kind` gets: `allowed` if its role may, else 403, or 401 for no token (or
/// `anonymous` where no token is needed) and for refused tokens.
fn expect(kind: Kind, may: &[Kind], allowed: u16, anonymous: u16) -> u16 {
    match kind {
        Kind::Refused => 401,
        Kind::Anonymous if may.contains(&Kind::Anonymous) => anonymous,
        Kind::Anonymous => 401,
        k if may.contains(&k) => allowed,
        _ => 403,
    }
}

#[test]
fn every_endpoint_and_command_checks_the_callers_role_and_room() {
    let server = Server::start_with(&[("TOWNHALL_SERVER_TOKEN_MAX_TTL_S", "3600")]);
    let room = server.create_room();
    let other = server.create_room();

    let host = issue(&server, &room, "host", "Hanna", 600);
    let presenter = issue(&server, &room, "presenter", "Pia", 600);
    let attendee = issue(&server, &room, "attendee", "Ari", 600);
    let other_host = issue(&server, &other, "host", "Otto", 600);
    let expired = issue(&server, &room, "attendee", "Eve", 1);
    let revoked = issue(&server, &room, "presenter", "Rex", 600);
    let banned = issue(&server, &room, "attendee", "Ban", 600);
    revoke(&server, &room, json!({"jti": revoked["jti"]}));
    revoke(&server, &room, json!({"participant_id": banned["participant_id"]}));
    let token = |t: &Value| t["token"].as_str().unwrap().to_owned();
    // One character of the signature changed (not the last: its low bits are padding).
    let forged = {
        let mut t = token(&host).into_bytes();
        let i = t.len() - 10;
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    // The one-second token must have expired before the matrix runs.
    std::thread::sleep(Duration::from_millis(2_100));

    let callers: Vec<(&str, Kind, Option<String>)> = vec![
        ("no token", Kind::Anonymous, None),
        ("admin", Kind::Admin, Some(ADMIN_TOKEN.to_owned())),
        ("host key", Kind::HostKey, Some(room.host_token.clone())),
        ("publish key", Kind::PublishKey, Some(room.publish_token.clone())),
        ("signed host", Kind::Host, Some(token(&host))),
        ("signed presenter", Kind::Presenter, Some(token(&presenter))),
        ("signed attendee", Kind::Attendee, Some(token(&attendee))),
        ("another room's host", Kind::Refused, Some(token(&other_host))),
        ("expired", Kind::Refused, Some(token(&expired))),
        ("revoked", Kind::Refused, Some(token(&revoked))),
        ("banned participant", Kind::Refused, Some(token(&banned))),
        ("forged", Kind::Refused, Some(forged)),
        ("garbage", Kind::Refused, Some("not-a-token".into())),
    ];
    use Kind::*;
    let hosts = [Admin, HostKey, Host];
    let moderators = [Admin, HostKey, PublishKey, Host, Presenter];
    let everyone = [Admin, HostKey, PublishKey, Host, Presenter, Attendee];
    let public = [Anonymous, Admin, HostKey, PublishKey, Host, Presenter, Attendee];
    let r = &room.id;
    let sdp = "application/sdp";
    let frag = "application/trickle-ice-sdpfrag";
    let endpoints: Vec<Endpoint> = vec![
        ("GET", format!("/api/rooms/{r}"), "", String::new(), &hosts, 200, 0),
        (
            "PATCH",
            format!("/api/rooms/{r}"),
            "application/json",
            json!({"duration_min": 45}).to_string(),
            &hosts,
            200,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/program"),
            "application/json",
            json!({"publisher": "nobody"}).to_string(),
            &hosts,
            404,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/recordings"),
            "application/json",
            json!({"action": "stop"}).to_string(),
            &hosts,
            409,
            0,
        ),
        ("GET", format!("/api/rooms/{r}/recordings"), "", String::new(), &hosts, 200, 0),
        ("GET", format!("/api/rooms/{r}/questions/unanswered"), "", String::new(), &hosts, 200, 0),
        (
            "POST",
            format!("/api/rooms/{r}/tokens"),
            "application/json",
            json!({"role": "attendee", "name": "New"}).to_string(),
            &hosts,
            201,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/tokens/revoke"),
            "application/json",
            json!({"jti": "unknown"}).to_string(),
            &hosts,
            204,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/presenters/nobody/audio"),
            "application/json",
            json!({"muted": true}).to_string(),
            &hosts,
            404,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/presenters/nobody/video"),
            "application/json",
            json!({"off": true}).to_string(),
            &hosts,
            404,
            0,
        ),
        ("DELETE", format!("/api/rooms/{r}/presenters/nobody"), "", String::new(), &hosts, 404, 0),
        ("GET", format!("/api/rooms/{r}/invitations"), "", String::new(), &hosts, 200, 0),
        (
            "POST",
            format!("/api/rooms/{r}/phase"),
            "application/json",
            json!({"phase": "live"}).to_string(),
            &hosts,
            200,
            0,
        ),
        ("GET", format!("/api/rooms/{r}/waiting"), "", String::new(), &hosts, 200, 0),
        (
            "PUT",
            format!("/api/rooms/{r}/waiting"),
            "application/json",
            json!({"waiting_room": false}).to_string(),
            &hosts,
            200,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/waiting/admit"),
            "application/json",
            json!({"participants": ["nobody"]}).to_string(),
            &hosts,
            400,
            0,
        ),
        // Breakout rooms: nobody is connected to split (400), none run (GET: not running; DELETE: 404).
        (
            "POST",
            format!("/api/rooms/{r}/breakouts"),
            "application/json",
            json!({"rooms": 1, "duration_s": 60}).to_string(),
            &hosts,
            400,
            0,
        ),
        (
            "POST",
            format!("/api/rooms/{r}/registrations"),
            "application/json",
            json!({"name": "Reg", "email": "not-an-address"}).to_string(),
            &public,
            400,
            400,
        ),
        ("GET", format!("/api/rooms/{r}/event"), "", String::new(), &public, 200, 200),
        ("GET", format!("/api/rooms/{r}/registrations"), "", String::new(), &hosts, 200, 0),
        ("POST", format!("/api/rooms/{r}/registrations/unknown/approve"), "", String::new(), &hosts, 404, 0),
        ("POST", format!("/api/rooms/{r}/registrations/unknown/reject"), "", String::new(), &hosts, 404, 0),
        ("GET", format!("/api/rooms/{r}/registrations/unknown/ics"), "", String::new(), &public, 404, 404),
        ("GET", format!("/api/rooms/{r}/report"), "", String::new(), &hosts, 200, 0),
        ("GET", format!("/api/rooms/{r}/breakouts"), "", String::new(), &hosts, 200, 0),
        ("DELETE", format!("/api/rooms/{r}/breakouts"), "", String::new(), &hosts, 404, 0),
        ("GET", format!("/api/rooms/{r}/recordings/unknown"), "", String::new(), &hosts, 404, 0),
        ("GET", format!("/api/rooms/{r}/recordings/unknown.mp4"), "", String::new(), &public, 404, 404),
        ("GET", format!("/api/rooms/{r}/recordings/unknown.m3u8"), "", String::new(), &public, 404, 404),
        ("POST", format!("/whip/{r}"), sdp, "v=0".into(), &moderators, 400, 0),
        ("PATCH", format!("/whip/{r}/sessions/unknown"), frag, String::new(), &moderators, 404, 0),
        ("DELETE", format!("/whip/{r}/sessions/unknown"), "", String::new(), &moderators, 404, 0),
        ("POST", format!("/whep/{r}"), sdp, "v=0".into(), &public, 400, 400),
        // Nobody publishes as "main": allowed callers get as far as 404.
        ("POST", format!("/whep/{r}/main"), sdp, "v=0".into(), &public, 404, 404),
        ("PATCH", format!("/whep/{r}/sessions/unknown"), frag, String::new(), &public, 404, 404),
        ("DELETE", format!("/whep/{r}/sessions/unknown"), "", String::new(), &public, 404, 404),
        ("GET", format!("/api/rooms/{r}/events"), "", String::new(), &public, 200, 200),
        ("GET", format!("/api/rooms/{r}/chat"), "", String::new(), &public, 200, 200),
        // Not a WebSocket handshake: allowed callers get as far as 426.
        ("GET", format!("/ws/{r}"), "", String::new(), &public, 426, 426),
        (
            "POST",
            format!("/api/rooms/{r}/commands"),
            "application/json",
            json!({"type": "hand_raise"}).to_string(),
            &everyone,
            200,
            0,
        ),
    ];

    let mut wrong = Vec::new();
    let mut check = |what: &str, caller: &str, got: u16, expected: u16, body: &str| {
        if got != expected {
            wrong.push(format!("{what} as {caller}: {got}, expected {expected}: {body}"));
        }
    };
    for (method, path, content_type, body, may, allowed, anonymous) in &endpoints {
        for (caller, kind, token) in &callers {
            let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(bearer) = &bearer {
                headers.push(("Authorization", bearer));
            }
            if !content_type.is_empty() {
                headers.push(("Content-Type", content_type));
            }
            let response = server.request(method, path, &headers, body.as_bytes());
            let expected = expect(*kind, may, *allowed, *anonymous);
            check(&format!("{method} {path}"), caller, response.status, expected, &response.text());
            if response.status >= 400 {
                assert_eq!(response.header("content-type"), Some("application/problem+json"), "{method} {path}");
            }
        }
    }

    // Every interaction command, by role (the WebSocket runs the same check): what a role may
    // not do is 403 not_allowed; what it may do gets past the check.
    let commands: Vec<(Value, &[Kind])> = vec![
        (json!({"type": "chat_send", "text": "hi"}), &everyone),
        (json!({"type": "chat_unpin"}), &moderators),
        (json!({"type": "question_ask", "text": "why?"}), &everyone),
        (json!({"type": "question_mark", "question": "q1", "status": "dismissed"}), &moderators),
        (json!({"type": "poll_create", "question": "?", "options": ["a", "b"]}), &moderators),
        (json!({"type": "poll_open", "poll": "p1"}), &moderators),
        (json!({"type": "poll_close", "poll": "p1"}), &moderators),
        (json!({"type": "hand_raise"}), &everyone),
        (json!({"type": "hand_lower"}), &everyone),
        (json!({"type": "hand_clear"}), &moderators),
        (json!({"type": "hand_invite", "participant": attendee["participant_id"]}), &hosts),
        (json!({"type": "chapter_start", "title": "Part two"}), &moderators),
    ];
    let path = format!("/api/rooms/{r}/commands");
    for (command, may) in &commands {
        for (caller, kind, token) in &callers {
            let Some(token) = token else { continue };
            let bearer = format!("Bearer {token}");
            let response = server.request("POST", &path, &[("Authorization", &bearer)], command.to_string().as_bytes());
            let status = response.status;
            let what = format!("command {}", command["type"]);
            match (kind, may.contains(kind)) {
                (Refused, _) => check(&what, caller, status, 401, &response.text()),
                (_, false) => {
                    check(&what, caller, status, 403, &response.text());
                    if status == 403 {
                        assert_eq!(response.json()["code"], "not_allowed", "{what} as {caller}");
                    }
                }
                // Allowed: past the permission check (a later state check may still refuse).
                (_, true) if status == 401 || status == 403 => check(&what, caller, status, 200, &response.text()),
                (_, true) => {}
            }
        }
    }
    // Ending the event, last (it stops publishing in the room): the hosts' (again: 200, it is
    // already over).
    for (caller, kind, token) in &callers {
        let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("Authorization", b.as_str())).collect();
        let response = server.request("POST", &format!("/api/rooms/{r}/end"), &headers, b"");
        check(
            &format!("POST /api/rooms/{r}/end"),
            caller,
            response.status,
            expect(*kind, &hosts, 200, 0),
            &response.text(),
        );
    }
    // Creating and listing rooms is the admin's alone: a room's own keys and tokens are 401.
    for method in ["GET", "POST"] {
        for (caller, kind, token) in &callers {
            let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("Authorization", b.as_str())).collect();
            let response = server.request(method, "/api/rooms", &headers, b"");
            let expected = match (kind, method) {
                (Admin, "GET") => 200,
                (Admin, _) => 201,
                _ => 401,
            };
            check(&format!("{method} /api/rooms"), caller, response.status, expected, &response.text());
        }
    }
    assert!(wrong.is_empty(), "{} unexpected answers:\n{}", wrong.len(), wrong.join("\n"));

    // Deleting a room is the admin's; the signed host of the room and its keys cannot.
    for token in [room.host_token.clone(), token(&host)] {
        let response =
            server.request("DELETE", &format!("/api/rooms/{r}"), &[("Authorization", &format!("Bearer {token}"))], b"");
        assert_eq!(response.status, 401, "{}", response.text());
    }
    // Issuing: a bad role, name, participant id or lifetime is a 400.
    for bad in [
        json!({"role": "king", "name": "x"}),
        json!({"role": "attendee", "name": ""}),
        json!({"role": "attendee", "name": "x", "participant_id": "a b"}),
        json!({"role": "attendee", "name": "x", "ttl_s": 0}),
        json!({"role": "attendee", "name": "x", "ttl_s": 999_999}),
        json!({"role": "attendee"}),
    ] {
        let response = server.request(
            "POST",
            &format!("/api/rooms/{r}/tokens"),
            &[("Authorization", &format!("Bearer {}", room.host_token))],
            bad.to_string().as_bytes(),
        );
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
    }
    // Revocations outlive a restart.
    let data_dir = server.kill_keeping_data();
    let server = Server::start_in(data_dir, &[("TOWNHALL_SERVER_TOKEN_MAX_TTL_S", "3600")]);
    for (t, status) in [(token(&revoked), 401), (token(&banned), 401), (token(&attendee), 200)] {
        let response =
            server.request("POST", &path, &[("Authorization", &format!("Bearer {t}"))], br#"{"type":"hand_raise"}"#);
        assert_eq!(response.status, status, "{}", response.text());
    }
}
