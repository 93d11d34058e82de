//! The studio's breakout controls in Chromium (issue 6): the host splits two attendees into one
//! room from the page, sees the room and its members, visits it (the room's view with the host
//! token) and reads its chat, then ends the breakouts from the page, and the attendees are back.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Server;
use common::steps::Steps;
use common::ws::WsClient;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_splits_visits_and_ends_breakouts_from_the_studio() {
    let server = Server::start();
    let room = server.create_room();
    let mut ada = WsClient::connect(&server, &room.id, "name=Ada").await;
    let mut bob = WsClient::connect(&server, &room.id, "name=Bob").await;
    let url = server.url(&format!("/studio/{}#token={}&nostage", room.id, room.host_token));
    let studio = Steps::spawn(
        "scripts/clients/breakout_studio.mjs",
        &[&url, "--rooms", "1", "--chat", "hello host", "--seconds", "90"],
    );

    let split = studio.step("split", Duration::from_secs(90));
    let members: BTreeSet<&str> =
        split["rooms"][0]["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert_eq!(members, BTreeSet::from(["Ada", "Bob"]), "{split}");
    let assigned = ada.next_of("breakout_assigned").await;
    assert_eq!(assigned["breakout"]["id"], split["rooms"][0]["id"]);
    bob.next_of("breakout_assigned").await;

    let breakout = assigned["breakout"]["id"].as_str().unwrap();
    let mut ada_chat =
        WsClient::connect(&server, breakout, &format!("token={}", assigned["token"].as_str().unwrap())).await;
    let said = ada_chat.command(json!({"type": "chat_send", "text": "hello host"})).await;
    assert_eq!(said["type"], "ack", "{said}");
    let visited = studio.step("visited", Duration::from_secs(60));
    assert_eq!(visited["breakout"], breakout);

    let ended = studio.step("ended", Duration::from_secs(60));
    assert_eq!((ended["rooms"].as_u64(), ended["visiting"].as_bool()), (Some(0), Some(false)), "{ended}");
    for client in [&mut ada, &mut bob] {
        assert_eq!(client.next_of("breakout_ended").await["reason"], "host");
    }
}
