//! The host removes attendees from the studio (issue 6, "remove anyone, ban by participant"), in
//! headless Chromium: an attendee on the watch page (phone size) writes in the chat; the host
//! clicks *Remove* beside the message (the confirm dialog accepted); the watch page stops the
//! player and says the host removed them, and stays so after a reload (the same stored identity,
//! refused: the page asks the API why and gets `reason: "revoked"` instead of joining anew).
//! A WebSocket attendee with a raised hand is removed from the hand queue (its hand goes, its
//! socket gets `removed` and closes 4003), and one held in the waiting room from the waiting
//! list. Every removed token is refused (401, `reason` revoked) on the API. Screenshot:
//! `target/screenshots/watch-removed-phone.png`.

mod common;

use std::time::Duration;

use common::Server;
use common::pages::{DESKTOP, PHONE, Pages, screenshot_dir};
use common::ws::{Read, WsClient};
use serde_json::{Value, json};

/// A hand or chat command with `token`: the server's answer.
fn command(server: &Server, room: &str, token: &str, body: Value) -> common::Response {
    server.request(
        "POST",
        &format!("/api/rooms/{room}/commands"),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// Reads until `removed` and the close that follows it; the close code.
async fn removed(client: &mut WsClient) -> (Value, Option<u16>) {
    let mut notice = Value::Null;
    loop {
        match client.read(Duration::from_secs(60)).await {
            Read::Json(m) if m["type"] == "removed" => notice = m,
            Read::Json(_) => {}
            Read::Closed(code) => return (notice, code),
        }
    }
}

fn assert_revoked(server: &Server, room: &str, token: &str) {
    let refused = command(server, room, token, json!({"type": "hand_raise"})).assert_problem(401, "unauthorized");
    assert_eq!(refused["reason"], "revoked", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_removes_attendees_from_the_chat_the_hand_queue_and_the_waiting_room() {
    let server = Server::start();
    let room = server.create_room();
    let long = Duration::from_secs(60);

    let mut pages = Pages::launch();
    pages.open("ann", &server.url(&format!("/watch/{}?name=Ann", room.id)), PHONE);
    let ann = pages.wait("ann", "window.townhallInteraction.state.me?.participant_id", long);
    let ann = ann.as_str().unwrap().to_owned();
    let ann_token = pages.eval("ann", "window.townhallInteraction.socket.token").as_str().unwrap().to_owned();
    pages.fill("ann", "#chat input", "hello from Ann");
    pages.click("ann", "#chat button[type=submit]");

    // Bob raises a hand over his own WebSocket.
    let mut bob = WsClient::connect(&server, &room.id, "name=Bob").await;
    let bob_id = bob.welcome["participant"]["participant_id"].as_str().unwrap().to_owned();
    assert_eq!(bob.command(json!({"type": "hand_raise"})).await["type"], "ack");

    pages.open("studio", &server.url(&format!("/studio/{}#token={}&nostage", room.id, room.host_token)), DESKTOP);
    pages.wait("studio", "window.townhallStudio.connected", long);

    // From the chat: Ann's page stops and says why.
    let in_chat = format!("#chat [data-remove=\"{ann}\"]");
    pages.wait("studio", &format!("document.querySelector('{in_chat}')"), long);
    pages.click("studio", &in_chat);
    let reason = pages.wait("ann", "window.townhallInteraction.removed", long);
    assert_eq!(reason, "revoked");
    let screen = pages.eval("ann", "({ text: document.getElementById('waiting').innerText, layout: document.getElementById('watch-layout').hidden, playing: !document.getElementById('video').paused })");
    assert!(screen["text"].as_str().unwrap().contains("The host removed you"), "{screen}");
    assert_eq!((screen["layout"].as_bool(), screen["playing"].as_bool()), (Some(true), Some(false)), "{screen}");
    let shot = screenshot_dir().join("watch-removed-phone.png");
    pages.screenshot("ann", &shot);
    println!("screenshot: {}", shot.display());
    assert_revoked(&server, &room.id, &ann_token);

    // A reload keeps the stored identity, which is refused: removed again, not a new attendee.
    pages.reload("ann");
    let reason = pages.wait("ann", "window.townhallInteraction.removed", long);
    assert_eq!(reason, "revoked");
    let after = pages
        .eval("ann", "({ token: window.townhallInteraction.socket.token, me: window.townhallInteraction.state.me })");
    assert_eq!((after["token"].as_str(), &after["me"]), (Some(ann_token.as_str()), &Value::Null), "{after}");

    // From the hand queue: Bob is told, closed with 4003, and his hand is gone.
    let in_queue = format!("#hand-queue [data-remove=\"{bob_id}\"]");
    pages.wait("studio", &format!("document.querySelector('{in_queue}')"), long);
    pages.click("studio", &in_queue);
    let (notice, code) = removed(&mut bob).await;
    assert_eq!((notice["reason"].as_str(), code), (Some("revoked"), Some(4003)), "{notice}");
    pages.wait("studio", &format!("!document.querySelector('#hand-queue li[data-id=\"{bob_id}\"]')"), long);
    assert_revoked(&server, &room.id, &bob.token());

    // From the waiting room (admission by hand): Cy is told and closed.
    let host = format!("Bearer {}", room.host_token);
    let set = server.request(
        "PUT",
        &format!("/api/rooms/{}/waiting", room.id),
        &[("Authorization", &host), ("Content-Type", "application/json")],
        br#"{"waiting_room": true}"#,
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let (mut cy, first) = WsClient::join(&server, &room.id, "name=Cy").await;
    assert_eq!((first["type"].as_str(), first["reason"].as_str()), (Some("waiting"), Some("admission")), "{first}");
    let cy_id = first["participant"]["participant_id"].as_str().unwrap().to_owned();
    let cy_token = first["token"].as_str().unwrap().to_owned();
    let in_waiting = format!(".waiting-list [data-remove=\"{cy_id}\"]");
    pages.wait("studio", &format!("document.querySelector('{in_waiting}')"), long);
    pages.click("studio", &in_waiting);
    let (notice, code) = removed(&mut cy).await;
    assert_eq!((notice["reason"].as_str(), code), (Some("revoked"), Some(4003)), "{notice}");
    assert_revoked(&server, &room.id, &cy_token);

    // Nobody removed is left in the room: the host's view counts the studio alone.
    server.wait_for("the removed attendees gone", long, |s| {
        let view = s.request("GET", &format!("/api/rooms/{}", room.id), &[("Authorization", &host)], b"").json();
        (view["waiting"].as_u64(), view["participants"].as_u64()) == (Some(0), Some(1))
    });
}
