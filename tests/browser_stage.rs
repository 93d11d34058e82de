//! A stage invitation in the browser, end to end (issue 6): headless Chromium with a fake
//! camera plays both people on the real pages. The room is scheduled with ffmpeg 9 already
//! publishing "main" at 320x180 on its stage; the attendee waits in the waiting room until the
//! host clicks *Go live* in the studio, and the program starts; the attendee (watch page, phone size) raises a
//! hand, the host (studio page) clicks *Invite*, the attendee clicks *Join the stage* and
//! publishes camera and microphone over WHIP; they are on the stage (room view), a separate
//! Chromium WHEP player decodes their frames, the host clicks *Put on air* and the LL-HLS
//! program goes on with their 640x360-class picture (new init section, whole segments after
//! it, probed by ffprobe); the host clicks *Remove*: the WHIP session ends, the invitation's
//! token is refused (401), and the attendee's page is back to watching. Invited again, they
//! decline, and the host reads so in the moderators' chat and withdraws the invitation (its
//! token is refused); invited a third time, they join and
//! leave on their own.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pages::{DESKTOP, PHONE, Pages, screenshot_dir};
use common::{Client, Room, Server, chromium_play};
use serde_json::Value;

/// ffmpeg 9's WHIP muxer publishing a 320x180 test picture as `presenter` (a size Chromium's
/// fake camera does not send, to tell the two apart in the program).
fn ffmpeg_publish_small(server: &Server, room: &Room, presenter: &str, seconds: u32) -> Client {
    common::ffmpeg_publish_sized(server, room, presenter, seconds, "320x180")
}

fn room_view(server: &Server, room: &Room) -> Value {
    let r = server.request(
        "GET",
        &format!("/api/rooms/{}", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token))],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn is_live(server: &Server, room: &Room, presenter: &str) -> bool {
    room_view(server, room)["presenters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == presenter && p["live"] == true)
}

/// The live playlist's segments as (init section URI, segment URI), oldest first.
fn segments(server: &Server, room: &Room) -> Vec<(String, String)> {
    let text = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    let mut map = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            map = rest.split('"').next().unwrap_or_default().to_owned();
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            out.push((map.clone(), line.trim().to_owned()));
        }
    }
    out
}

/// Width and height of the video of `init` + `segment`, by ffprobe.
fn probe(server: &Server, room: &Room, init: &str, segment: &str) -> (u64, u64) {
    let mut bytes = server.request("GET", &format!("/hls/{}/{init}", room.id), &[], b"").body;
    bytes.extend(server.request("GET", &format!("/hls/{}/{segment}", room.id), &[], b"").body);
    let file = server.data_dir.join("probe.mp4");
    std::fs::write(&file, bytes).unwrap();
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "json"])
        .arg(&file)
        .output()
        .expect("ffprobe (Debian's ffmpeg package)");
    assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &json["streams"][0];
    (stream["width"].as_u64().unwrap(), stream["height"].as_u64().unwrap())
}

#[test]
fn an_attendee_invited_in_the_browser_goes_on_stage_and_on_air_and_is_removed() {
    let server = Server::start();
    let room = server.create_room_with(serde_json::json!({"phase": "scheduled"}));
    let _main = ffmpeg_publish_small(&server, &room, "main", 300);
    let long = Duration::from_secs(90);

    // Before live the attendee waits; the host goes live from the studio.
    let mut pages = Pages::launch();
    pages.open("studio", &server.url(&format!("/studio/{}#token={}", room.id, room.host_token)), DESKTOP);
    pages.open("ada", &server.url(&format!("/watch/{}?name=Ada", room.id)), PHONE);
    pages.wait("studio", "window.townhallStudio.connected", long);
    pages.wait(
        "ada",
        "window.townhallInteraction.waiting === 'not_live' && !document.getElementById('waiting').hidden",
        long,
    );
    pages.wait("studio", "document.querySelector('.waiting-list [data-participant]') !== null", long);
    pages.wait("studio", "document.querySelector('#stage-list [data-presenter=\"main\"]') !== null", long);
    pages.screenshot("ada", &screenshot_dir().join("watch-waiting-phone.png"));
    pages.screenshot("studio", &screenshot_dir().join("studio-scheduled-desktop.png"));
    pages.wait("studio", "!document.getElementById('go-live').hidden", long);
    pages.click("studio", "#go-live");
    common::hls::wait_program(&server, &room);
    assert_eq!(room_view(&server, &room)["phase"], "live");
    let ada = pages.wait("ada", "window.townhallInteraction.state.me?.participant_id", long);
    let ada = ada.as_str().unwrap().to_owned();

    // The attendee raises a hand; the host sees it in the queue and invites them.
    pages.click("ada", "#hand");
    let in_queue = format!("#hand-queue li[data-id=\"{ada}\"]");
    pages.wait("studio", &format!("document.querySelector('{in_queue}')"), long);
    pages.click("studio", &format!("{in_queue} button:has-text(\"Invite\")"));
    let pending = format!("#stage-invited li[data-presenter=\"{ada}\"]");
    pages.wait("studio", &format!("document.querySelector('{pending}')?.textContent.includes('Ada')"), long);
    let shot = screenshot_dir().join("studio-invited-desktop.png");
    pages.screenshot("studio", &shot);
    println!("screenshot: {}", shot.display());

    // The attendee is asked, accepts: the fake camera grants itself, WHIP connects.
    let asked = pages.wait(
        "ada",
        "window.townhallStage.state === 'invited' && document.getElementById('stage-text').textContent",
        long,
    );
    assert!(asked.as_str().unwrap().contains("invites you"), "{asked}");
    pages.click("ada", "#stage-accept");
    pages.wait(
        "ada",
        "window.townhallStage.state === 'on_stage' && window.townhallStage.connection === 'connected'",
        long,
    );
    pages.wait("ada", "window.townhallStage.frames > 10", long);
    server.wait_for("the attendee on the stage", long, |s| is_live(s, &room, &ada));
    let token = pages.eval("ada", "window.townhallInvitation.token");
    let token = token.as_str().unwrap().to_owned();
    let shot = screenshot_dir().join("watch-on-stage-phone.png");
    pages.screenshot("ada", &shot);
    println!("screenshot: {}", shot.display());

    // A WHEP viewer of that presenter decodes their frames.
    let played = chromium_play(&server, &room, Some(&ada), 60, 30).finish(Duration::from_secs(120));
    assert!(played["decoded_frames"].as_u64().unwrap() >= 30, "{played}");
    assert!(played["width"].as_u64().unwrap() > 0, "{played}");

    // The studio lists them under their name (the registry knows the invitation) and puts them on air.
    let row = format!("#stage-list li[data-presenter=\"{ada}\"]");
    pages.wait("studio", &format!("document.querySelector('{row} .text')?.textContent.includes('Ada')"), long);
    let before = segments(&server, &room).last().expect("a segment").0.clone();
    pages.click("studio", &format!("{row} button:has-text(\"Put on air\")"));
    server.wait_for("the attendee on the program", long, |s| room_view(s, &room)["program"] == ada.as_str());
    pages.wait("studio", &format!("document.querySelector('{row}')?.textContent.includes('on air')"), long);
    let shot = screenshot_dir().join("studio-attendee-on-air-desktop.png");
    pages.screenshot("studio", &shot);
    println!("screenshot: {}", shot.display());

    // The LL-HLS program goes on with them: a new init section and two whole segments after it.
    let mut after = Vec::new();
    server.wait_for("two program segments of the attendee", long, |s| {
        after = segments(s, &room).into_iter().filter(|(map, _)| *map != before).collect();
        after.len() >= 2
    });
    let (init, segment) = after.last().unwrap();
    let (width, height) = probe(&server, &room, init, segment);
    println!("program after the switch: {width}x{height} ({init}, {segment})");
    assert_ne!((width, height), (320, 180), "the program still shows ffmpeg's picture");
    assert!(width >= 160 && height >= 90, "{width}x{height}");
    // The studio's own stage player (WHEP, the program) follows the switch too.
    let studio_size = pages.wait(
        "studio",
        "document.getElementById('video').videoWidth !== 320 && `${document.getElementById('video').videoWidth}x${document.getElementById('video').videoHeight}`",
        long,
    );
    println!("studio program player after the switch: {studio_size}");

    // The host removes them: revoked, the session ends, the program falls back to "main".
    pages.click("studio", &format!("{row} button:has-text(\"Remove\")"));
    server.wait_for("the attendee off the stage", long, |s| !is_live(s, &room, &ada));
    server.wait_for("the program back on main", long, |s| room_view(s, &room)["program"] == "main");
    let again = server.request(
        "POST",
        &format!("/whip/{}?presenter={ada}", room.id),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/sdp")],
        b"v=0",
    );
    again.assert_problem(401, "unauthorized");

    // The attendee's page is back to watching: camera off, no leave button, still connected.
    let reason = pages.wait("ada", "window.townhallStage.state === 'watching' && window.townhallStage.reason", long);
    assert!(reason == "removed" || reason == "connection", "{reason}");
    let dom = pages.eval(
        "ada",
        "({ state: document.getElementById('stage-invite').dataset.state, \
           leave: document.getElementById('stage-leave').hidden, \
           preview: document.getElementById('stage-preview').srcObject, \
           hand: document.getElementById('hand').textContent, \
           socket: window.townhallInteraction.socket.ws?.readyState, \
           fatal: window.townhallPlayer.fatal })",
    );
    assert_eq!(dom["state"], "watching", "{dom}");
    assert_eq!(dom["leave"], true, "{dom}");
    assert_eq!(dom["preview"], Value::Null, "{dom}");
    assert_eq!(dom["hand"], "Raise hand", "{dom}");
    assert_eq!(dom["socket"], 1, "{dom}");
    assert_eq!(dom["fatal"], Value::Null, "{dom}");

    // Invited again, the attendee declines: the host reads it in the moderators' chat.
    pages.click("ada", "#hand");
    pages.wait("studio", &format!("document.querySelector('{in_queue}')"), long);
    pages.click("studio", &format!("{in_queue} button:has-text(\"Invite\")"));
    pages.wait("ada", "window.townhallStage.state === 'invited'", long);
    pages.click("ada", "#stage-decline");
    pages.wait("ada", "window.townhallStage.state === 'idle' && document.getElementById('stage-invite').hidden", long);
    pages.wait("studio", "[...document.querySelectorAll('#chat .chat-list li.private')].some((li) => li.textContent.includes('declined the invitation'))", long);
    assert!(!is_live(&server, &room, &ada));
    // The host withdraws the declined invitation: its token is revoked.
    let declined = pages.eval("ada", "window.townhallInvitation.token");
    assert_ne!(declined.as_str().unwrap(), token);
    // ... from a studio opened after the invitation (it loads the invitations still valid).
    pages.open("studio-later", &server.url(&format!("/studio/{}#token={}&nostage", room.id, room.host_token)), DESKTOP);
    pages.wait("studio-later", &format!("document.querySelector('{pending}')?.textContent.includes('Ada')"), long);
    pages.click("studio-later", &format!("{pending} button:has-text(\"Withdraw\")"));
    pages.wait("studio-later", &format!("!document.querySelector('{pending}')"), long);
    let refused = server.request(
        "POST",
        &format!("/whip/{}?presenter={ada}", room.id),
        &[("Authorization", &format!("Bearer {}", declined.as_str().unwrap())), ("Content-Type", "application/sdp")],
        b"v=0",
    );
    refused.assert_problem(401, "unauthorized");

    // Invited a third time, they accept, then leave on their own: the WHIP session ends (DELETE).
    pages.click("ada", "#hand");
    pages.wait("studio", &format!("document.querySelector('{in_queue}')"), long);
    pages.click("studio", &format!("{in_queue} button:has-text(\"Invite\")"));
    pages.wait("ada", "window.townhallStage.state === 'invited'", long);
    pages.click("ada", "#stage-accept");
    pages.wait(
        "ada",
        "window.townhallStage.state === 'on_stage' && window.townhallStage.connection === 'connected'",
        long,
    );
    server.wait_for("the attendee on the stage again", long, |s| is_live(s, &room, &ada));
    pages.click("ada", "#stage-leave");
    pages.wait("ada", "window.townhallStage.state === 'watching' && window.townhallStage.reason === 'left'", long);
    server.wait_for("the attendee gone after leaving", long, |s| !is_live(s, &room, &ada));
}
