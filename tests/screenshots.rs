//! Screenshots of the studio and the watch page at desktop (1280×800) and phone (390×844)
//! sizes, in a room with content: ffmpeg 9 publishing "main" (on the stage and the program),
//! chat from three people (one long line), a question with a vote, an open poll with votes and
//! two raised hands (one from the watch page's own button). Saved as PNG under
//! `target/screenshots/` (paths printed) for people to look at; the test checks what a machine
//! can: each file is a real picture, no page shows `undefined`/`null`/`NaN`, and nothing is
//! wider than a phone's viewport.

mod common;

use std::time::Duration;

use common::pages::{DESKTOP, PHONE, Pages, screenshot_dir};
use common::{Room, Server, ffmpeg_publish};
use serde_json::{Value, json};

/// A signed attendee token of the room.
fn attendee(server: &Server, room: &Room, name: &str) -> String {
    let r = server.request(
        "POST",
        &format!("/api/rooms/{}/tokens", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token)), ("Content-Type", "application/json")],
        json!({"role": "attendee", "name": name}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

/// Runs one interaction command as `token`; its events.
fn command(server: &Server, room: &Room, token: &str, command: Value) -> Vec<Value> {
    let r = server.request(
        "POST",
        &format!("/api/rooms/{}/commands", room.id),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
        command.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{command}: {}", r.text());
    r.json()["events"].as_array().unwrap().clone()
}

#[test]
fn the_studio_and_the_watch_page_at_desktop_and_phone_sizes() {
    let server = Server::start();
    let room = server.create_room();
    let _main = ffmpeg_publish(&server, &room, "main", 300);
    common::hls::wait_program(&server, &room);
    let long = Duration::from_secs(90);

    let host = room.host_token.clone();
    let grace = attendee(&server, &room, "Grace");
    let linus = attendee(&server, &room, "Linus");
    command(
        &server,
        &room,
        &host,
        json!({"type": "chat_send", "text": "Welcome to the town hall! We start in a minute."}),
    );
    command(&server, &room, &grace, json!({"type": "chat_send", "text": "Hello from Lisbon"}));
    command(
        &server,
        &room,
        &linus,
        json!({"type": "chat_send", "text": "Will the slides be shared after the session? Asking for the whole team, who could not join live today because of the release"}),
    );
    let asked = command(
        &server,
        &room,
        &grace,
        json!({"type": "question_ask", "text": "How do breakout rooms work for people on phones?"}),
    );
    command(&server, &room, &linus, json!({"type": "question_upvote", "question": asked[0]["id"]}));
    let poll = command(
        &server,
        &room,
        &host,
        json!({"type": "poll_create", "question": "Which topic next?", "options": ["Roadmap", "Hiring", "Q&A"]}),
    );
    let poll = poll[0]["id"].clone();
    command(&server, &room, &host, json!({"type": "poll_open", "poll": poll}));
    command(&server, &room, &grace, json!({"type": "poll_vote", "poll": poll, "options": [0]}));
    command(&server, &room, &linus, json!({"type": "poll_vote", "poll": poll, "options": [2]}));
    command(&server, &room, &grace, json!({"type": "hand_raise"}));

    let mut pages = Pages::launch();
    pages.open("studio", &server.url(&format!("/studio/{}#token={host}", room.id)), DESKTOP);
    pages.open("watch", &server.url(&format!("/watch/{}?name=Ada", room.id)), DESKTOP);
    pages.wait("watch", "window.townhallInteraction.state.me", long);
    pages.click("watch", "#hand");
    // Everything drawn: the program playing, chat, the question, the open poll, the hands.
    pages.wait(
        "watch",
        "window.townhallPlayer.currentTime > 1 && document.querySelectorAll('#chat .chat-list li').length >= 3 \
         && document.querySelector('#qa .qa-list li') && !document.getElementById('poll').hidden \
         && document.getElementById('hand').textContent === 'Lower hand'",
        long,
    );
    pages.wait(
        "studio",
        "window.townhallFrames > 10 && document.querySelectorAll('#chat .chat-list li').length >= 3 \
         && document.querySelector('#stage-list li[data-presenter=\"main\"]') \
         && document.querySelectorAll('#hand-queue li[data-id]').length >= 2 \
         && document.querySelector('#polls li[data-state=\"open\"]')",
        long,
    );

    let dir = screenshot_dir();
    let mut overflow = Vec::new();
    for page in ["studio", "watch"] {
        for (size, viewport) in [("desktop", DESKTOP), ("phone", PHONE)] {
            pages.viewport(page, viewport);
            // Laid out and painted at the new size.
            pages.eval(page, "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
            let path = dir.join(format!("{page}-{size}.png"));
            pages.screenshot(page, &path);
            println!("screenshot: {}", path.display());
            let widths = pages.eval(
                page,
                "({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth, \
                   wide: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1) \
                     .slice(0, 5).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className) })",
            );
            if widths["scroll"].as_u64() > widths["inner"].as_u64() {
                overflow.push(format!("{page} at {size}: {widths}"));
            }
            let text = pages.eval(page, "document.body.innerText").as_str().unwrap().to_owned();
            for junk in ["undefined", "NaN", "[object Object]", "null"] {
                assert!(!text.contains(junk), "{page} shows {junk:?}: {text}");
            }
            let bytes = std::fs::metadata(&path).unwrap().len();
            assert!(bytes > 20_000, "{} is only {bytes} bytes", path.display());
        }
    }
    assert!(overflow.is_empty(), "wider than the viewport: {overflow:?}");
}
