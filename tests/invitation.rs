//! A stage invitation through the real binary: an attendee raises a hand on the WebSocket, the
//! host invites them, and only that attendee's WebSocket receives a presenter token of its own
//! (the moderators get its `jti` only); ffmpeg 9's WHIP muxer publishes with it and the attendee
//! is on the stage (and the program); the host takes them off and revokes the token, and it no
//! longer publishes. Invited again and publishing, the attendee is banned: the server ends the
//! WHIP session on its own (no DELETE), announces `presenter_removed` and closes the socket.

mod common;

use std::time::Duration;

use common::ws::{Read, WsClient};
use common::{Room, Server, ffmpeg_publish};

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_attendee_publishes_to_the_stage_and_is_taken_off() {
    let server = Server::start();
    let room = server.create_room();
    let mut host = WsClient::connect(&server, &room.id, &format!("token={}", room.host_token)).await;
    let mut ada = WsClient::connect(&server, &room.id, "name=Ada").await;
    let mut bob = WsClient::connect(&server, &room.id, "name=Bob").await;
    let ada_id = ada.welcome["participant"]["participant_id"].as_str().unwrap().to_owned();

    let raised = ada.command(json!({"type": "hand_raise"})).await;
    assert_eq!(raised["type"], "ack", "{raised}");
    let invited = host.command(json!({"type": "hand_invite", "participant": ada_id})).await;
    assert_eq!(invited["type"], "ack", "{invited}");
    let invitation = ada.next_of("stage_invitation").await;
    assert_eq!(invitation["presenter"], ada_id.as_str());
    let token = invitation["token"].as_str().unwrap().to_owned();
    // The host learns the token's jti (to revoke it), never the token.
    let sent = match host.pending.iter().position(|m| m["type"] == "stage_invitation_sent") {
        Some(i) => host.pending.remove(i).unwrap(),
        None => host.next_of("stage_invitation_sent").await,
    };
    assert_eq!(
        (&sent["presenter"], &sent["jti"], &sent["name"]),
        (&invitation["presenter"], &invitation["jti"], &json!("Ada"))
    );
    assert!(sent.get("token").is_none(), "{sent}");
    // A studio opened later finds it too (no token in it either).
    let invitations_path = format!("/api/rooms/{}/invitations", room.id);
    let host_auth = format!("Bearer {}", room.host_token);
    let listed = server.request("GET", &invitations_path, &[("Authorization", &host_auth)], b"").json();
    assert_eq!(listed["invitations"], json!([sent]), "{listed}");
    // Nobody else gets it: Bob's next message is the chat line below, not an invitation.
    let said = host.command(json!({"type": "chat_send", "text": "Welcome Ada"})).await;
    assert_eq!(said["type"], "ack");
    let next = loop {
        match bob.read(Duration::from_secs(30)).await {
            Read::Json(m) if m["type"] == "chat_message" || m["type"] == "stage_invitation" => break m,
            Read::Json(_) => {}
            Read::Closed(code) => panic!("closed ({code:?})"),
        }
    };
    assert_eq!(next["type"], "chat_message", "{next}");

    // The presenter token publishes as the attendee's own presenter name.
    let as_ada = Room { id: room.id.clone(), publish_token: token.clone(), host_token: String::new() };
    let publisher = ffmpeg_publish(&server, &as_ada, &ada_id, 60);
    let host_bearer = format!("Bearer {}", room.host_token);
    let room_path = format!("/api/rooms/{}", room.id);
    let live = |s: &Server| -> bool {
        let view = s.request("GET", &room_path, &[("Authorization", &host_bearer)], b"").json();
        view["presenters"].as_array().unwrap().iter().any(|p| p["name"] == ada_id.as_str() && p["live"] == true)
    };
    server.wait_for("the invited attendee on the stage", Duration::from_secs(60), live);
    server.wait_for("the attendee on the program", Duration::from_secs(90), |s| {
        s.request("GET", &room_path, &[("Authorization", &host_bearer)], b"").json()["program"] == ada_id.as_str()
    });
    // Their media is the program the audience watches.
    common::hls::wait_program(&server, &room);

    // Taken off and revoked: the session ends and the token publishes no more.
    let presenter = format!("/api/rooms/{}/presenters/{ada_id}", room.id);
    assert_eq!(server.request("DELETE", &presenter, &[("Authorization", &host_bearer)], b"").status, 204);
    let revoke = server.request(
        "POST",
        &format!("/api/rooms/{}/tokens/revoke", room.id),
        &[("Authorization", &host_bearer)],
        json!({"jti": invitation["jti"]}).to_string().as_bytes(),
    );
    assert_eq!(revoke.status, 204, "{}", revoke.text());
    server.wait_for("the attendee off the stage", Duration::from_secs(30), |s| !live(s));
    drop(publisher);
    let again = server.request(
        "POST",
        &format!("/whip/{}?presenter={ada_id}", room.id),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/sdp")],
        b"v=0",
    );
    again.assert_problem(401, "unauthorized");
    let listed = server.request("GET", &invitations_path, &[("Authorization", &host_bearer)], b"").json();
    assert_eq!(listed["invitations"], json!([]), "a revoked invitation is not listed: {listed}");
    // Ada goes on watching: her attendee connection is untouched.
    let chat = ada.command(json!({"type": "chat_send", "text": "Thanks!"})).await;
    assert_eq!(chat["type"], "ack", "{chat}");

    // Invited again and publishing, then banned (by participant, nothing else): the server ends
    // the WHIP session her token opened, tells the room, and closes her socket.
    assert_eq!(ada.command(json!({"type": "hand_raise"})).await["type"], "ack");
    assert_eq!(host.command(json!({"type": "hand_invite", "participant": ada_id})).await["type"], "ack");
    let invitation = ada.next_of("stage_invitation").await;
    let as_ada = Room { publish_token: invitation["token"].as_str().unwrap().to_owned(), ..as_ada };
    let publisher = ffmpeg_publish(&server, &as_ada, &ada_id, 60);
    server.wait_for("the invited attendee on the stage again", Duration::from_secs(60), live);
    // The first removal's notice came before the invitation's ack: only a new one counts.
    host.pending.clear();
    let ban = server.request(
        "POST",
        &format!("/api/rooms/{}/tokens/revoke", room.id),
        &[("Authorization", &host_bearer)],
        json!({"participant_id": ada_id}).to_string().as_bytes(),
    );
    assert_eq!(ban.status, 204, "{}", ban.text());
    server.wait_for("the banned attendee off the stage", Duration::from_secs(30), |s| !live(s));
    assert_eq!(host.next_of("presenter_removed").await["presenter"], ada_id.as_str());
    let closed = loop {
        match ada.read(Duration::from_secs(30)).await {
            Read::Closed(code) => break code,
            Read::Json(_) => {}
        }
    };
    assert_eq!(closed, Some(4003));
    drop(publisher);
}
