//! The attendees' registration page (`/register/{room}`) in headless Chromium at phone size,
//! in a scheduled room (a `starts_at` two days ahead, approval off, a required custom field,
//! capacity 2): the page shows the event and the form; a registrant fills it in and gets the
//! join link, which opens the watch page's waiting screen (`not_live`); an address the server
//! refuses shows the 400's detail; the same e-mail again shows the 409 `already_registered` detail without losing what was typed; a second person
//! registers; a third is told the room is full; the host's list holds exactly the two, with
//! the custom field's value. `GET /api/rooms/{room}/event` is public, 404 for unknown and
//! breakout rooms, and never carries a token or a key. Screenshots under `target/screenshots/`:
//! `register-phone.png` (the form), `register-phone-registered.png`, `register-phone-error.png`,
//! `register-phone-waiting.png` (where the join link leads), `register-phone-pending.png` (a
//! room with approval and no date), `register-phone-full.png`, `register-desktop.png` (the registered state).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::pages::{DESKTOP, PHONE, Pages, screenshot_dir};
use common::{Response, Room, Server};
use serde_json::{Value, json};

/// RFC 3339 UTC of Unix seconds (whole minutes), written here apart from the server's.
fn rfc3339(unix_s: i64) -> String {
    let (y, m, d) = townhall_packager::playlist::civil_from_days(unix_s.div_euclid(86_400));
    let s = unix_s.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:00Z", s / 3600, s % 3600 / 60)
}

fn event(server: &Server, room: &str) -> Response {
    server.request("GET", &format!("/api/rooms/{room}/event"), &[], b"")
}

/// The public event never carries a token, the room's keys, nor a registrant's token.
fn assert_no_secrets(body: &str, room: &Room, others: &[&str]) {
    assert!(!body.contains("token"), "{body}");
    for secret in [room.host_token.as_str(), room.publish_token.as_str()].iter().chain(others) {
        assert!(!body.contains(secret), "the event shows a secret: {body}");
    }
}

/// Saves a screenshot of `page` at `viewport` and checks what a machine can: a real picture,
/// no junk text, nothing wider than the viewport.
fn screenshot(pages: &mut Pages, page: &str, viewport: (u32, u32), name: &str) {
    pages.viewport(page, viewport);
    pages.eval(page, "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
    let path = screenshot_dir().join(name);
    pages.screenshot(page, &path);
    println!("screenshot: {}", path.display());
    let widths = pages.eval(page, "({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })");
    assert!(widths["scroll"].as_u64() <= widths["inner"].as_u64(), "{name}: wider than the viewport: {widths}");
    let text = pages.eval(page, "document.body.innerText").as_str().unwrap().to_owned();
    for junk in ["undefined", "NaN", "[object Object]", "null"] {
        assert!(!text.contains(junk), "{name} shows {junk:?}: {text}");
    }
    assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{name} is not a real picture");
}

/// Fills the form on `page` (name, e-mail, company; role left empty) and submits it.
fn fill_and_submit(pages: &mut Pages, page: &str, name: &str, email: &str, company: &str) {
    pages.fill(page, "#field-name", name);
    pages.fill(page, "#field-email", email);
    pages.fill(page, "#field-company", company);
    pages.click(page, "#register-submit");
}

#[test]
fn attendees_register_on_the_page_and_follow_their_join_link() {
    let server = Server::start();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let starts_at = rfc3339((now / 3600 + 48) * 3600);
    let room = server.create_room_with(json!({
        "id": "q4-town-hall",
        "name": "Q4 town hall",
        "starts_at": starts_at,
        "duration_min": 90,
        "description": "Results of the quarter, the roadmap, and your questions.\nBring them!",
        "registration": {"approval": false, "capacity": 2, "fields": [
            {"name": "company", "label": "Company", "required": true},
            {"name": "role", "label": "Your role"},
        ]},
    }));
    let r = &room.id;
    let long = Duration::from_secs(30);

    // The public event: no token needed; 404 for unknown rooms and breakout rooms.
    let e = event(&server, r);
    assert_eq!(e.status, 200, "{}", e.text());
    assert_no_secrets(&e.text(), &room, &[]);
    let e = e.json();
    assert_eq!((e["id"].as_str(), e["name"].as_str()), (Some(r.as_str()), Some("Q4 town hall")));
    assert_eq!((e["starts_at"].as_str(), e["duration_min"].as_u64()), (Some(starts_at.as_str()), Some(90)));
    assert_eq!(e["phase"], "scheduled");
    assert_eq!(e["registration"]["capacity"], 2);
    assert_eq!(e["registration"]["fields"][0], json!({"name": "company", "label": "Company", "required": true}));
    assert_eq!((e["registration_open"].as_bool(), e.get("closed_reason")), (Some(true), None));
    assert_eq!(e["register_page"], server.url(&format!("/register/{r}")));
    assert_eq!(e["watch_page"], server.url(&format!("/watch/{r}")));
    assert_eq!(e["registration_url"], server.url(&format!("/api/rooms/{r}/registrations")));
    event(&server, "no-such-room").assert_problem(404, "unknown_room");
    event(&server, &format!("{r}.1-1")).assert_problem(404, "unknown_room");
    let host = format!("Bearer {}", room.host_token);
    let view = server.request("GET", &format!("/api/rooms/{r}"), &[("Authorization", &host)], b"").json();
    assert_eq!(view["register_page"], server.url(&format!("/register/{r}")));

    // The page at phone size: the event and the form, the required field marked.
    let mut pages = Pages::launch();
    let page_url = server.url(&format!("/register/{r}"));
    pages.open("ada", &page_url, PHONE);
    pages.wait("ada", "document.getElementById('register-form')", long);
    let shown = pages.eval(
        "ada",
        "({ name: document.getElementById('event-name').textContent, \
            when: document.getElementById('event-when').textContent, \
            description: document.getElementById('event-description').textContent, \
            company: document.getElementById('field-company').required, \
            role: document.getElementById('field-role').required, \
            email: document.getElementById('field-email').type, \
            companyLabel: document.querySelector('label[for=field-company]').textContent })",
    );
    assert_eq!(shown["name"], "Q4 town hall");
    assert!(shown["when"].as_str().unwrap().contains("1 h 30 min"), "{shown}");
    assert!(shown["description"].as_str().unwrap().contains("Bring them!"), "{shown}");
    assert_eq!((shown["company"].as_bool(), shown["role"].as_bool()), (Some(true), Some(false)));
    assert_eq!(shown["email"], "email");
    assert_eq!(shown["companyLabel"], "Company *");
    pages.fill("ada", "#field-name", "Ada Lovelace");
    pages.fill("ada", "#field-email", "ada@example.org");
    pages.fill("ada", "#field-company", "Analytical Engines");
    screenshot(&mut pages, "ada", PHONE, "register-phone.png");
    pages.click("ada", "#register-submit");
    let join = pages.wait("ada", "document.getElementById('join-link')?.href", long);
    let join = join.as_str().unwrap().to_owned();
    assert!(join.starts_with(&server.url(&format!("/watch/{r}?token="))), "{join}");
    let done = pages.eval(
        "ada",
        "({ status: document.getElementById('registered').dataset.status, \
            title: document.getElementById('registered-status').textContent, \
            join: document.getElementById('join-link').textContent, \
            ics: document.getElementById('ics-link').href, calendar: document.getElementById('ics-link').textContent, \
            note: document.querySelector('#registered .note').textContent, formHidden: document.getElementById('register').hidden })",
    );
    assert_eq!((done["status"].as_str(), done["join"].as_str()), (Some("approved"), Some("Join the event")));
    assert_eq!(done["title"], "You are registered");
    assert_eq!(done["calendar"], "Add to calendar");
    assert!(done["note"].as_str().unwrap().contains("Keep this link"), "{done}");
    assert_eq!(done["formHidden"], true);
    let ics = done["ics"].as_str().unwrap();
    let calendar = server.request("GET", ics.strip_prefix(&server.url("")).unwrap(), &[], b"");
    assert_eq!(calendar.status, 200, "{}", calendar.text());
    assert!(calendar.text().contains("BEGIN:VEVENT"), "{}", calendar.text());
    screenshot(&mut pages, "ada", PHONE, "register-phone-registered.png");
    screenshot(&mut pages, "ada", DESKTOP, "register-desktop.png");
    pages.viewport("ada", PHONE);

    // The join link opens the watch page, which waits: the event is scheduled.
    pages.click("ada", "#join-link");
    pages.wait("ada", "window.townhallInteraction?.waiting === 'not_live'", long);
    assert_eq!(pages.eval("ada", "location.href"), join);
    pages.wait("ada", "document.getElementById('starts-at')", long);
    screenshot(&mut pages, "ada", PHONE, "register-phone-waiting.png");

    // An address the browser lets through but the server refuses (no dotted domain): the 400's
    // detail beside the form, the field marked.
    pages.open("grace", &page_url, PHONE);
    pages.wait("grace", "document.getElementById('register-form')", long);
    fill_and_submit(&mut pages, "grace", "Grace Hopper", "grace@localhost", "Navy");
    let error = pages.wait("grace", "document.getElementById('register-error').dataset.code", long);
    assert_eq!(error, "invalid_email");
    let marked = pages.eval("grace", "document.getElementById('field-email').getAttribute('aria-invalid')");
    assert_eq!(marked, "true");
    // The same address as Ada's (in other letters): the 409's detail, what was typed kept.
    pages.eval("grace", "delete document.getElementById('register-error').dataset.code");
    fill_and_submit(&mut pages, "grace", "Grace Hopper", "ADA@example.org", "Navy");
    let error = pages.wait("grace", "document.getElementById('register-error').dataset.code", long);
    assert_eq!(error, "already_registered");
    let kept = pages.eval(
        "grace",
        "({ error: document.getElementById('register-error').textContent, \
            name: document.getElementById('field-name').value, email: document.getElementById('field-email').value, \
            company: document.getElementById('field-company').value, \
            marked: document.getElementById('field-email').getAttribute('aria-invalid'), registered: !document.getElementById('registered').hidden })",
    );
    assert_eq!(kept["error"], "This e-mail address is already registered for the room");
    assert_eq!(
        (kept["name"].as_str(), kept["email"].as_str(), kept["company"].as_str()),
        (Some("Grace Hopper"), Some("ADA@example.org"), Some("Navy"))
    );
    assert_eq!((kept["registered"].as_bool(), kept["marked"].as_str()), (Some(false), Some("true")));
    screenshot(&mut pages, "grace", PHONE, "register-phone-error.png");
    // A third person opens the page while a place is left.
    pages.open("linus", &page_url, PHONE);
    pages.wait("linus", "document.getElementById('register-form')", long);
    // Grace, with her own address: registered (the second place).
    pages.fill("grace", "#field-email", "grace@example.org");
    pages.click("grace", "#register-submit");
    pages.wait("grace", "document.getElementById('registered').dataset.status === 'approved'", long);

    // The third registration: the room is full.
    fill_and_submit(&mut pages, "linus", "Linus", "linus@example.org", "Kernel");
    let error = pages.wait("linus", "document.getElementById('register-error').dataset.code", long);
    assert_eq!(error, "registration_full");
    let text = pages.eval("linus", "document.getElementById('register-error').textContent");
    assert_eq!(text, "The room is full: 2 registrations");
    // Now the event says so, and the page shows it instead of a form.
    let full = event(&server, r).json();
    assert_eq!(
        (full["registration_open"].as_bool(), full["closed_reason"].as_str()),
        (Some(false), Some("registration_full"))
    );
    pages.open("late", &page_url, PHONE);
    let closed = pages.wait("late", "document.getElementById('closed')?.dataset.reason", long);
    assert_eq!(closed, "registration_full");
    assert_eq!(pages.eval("late", "document.getElementById('register-form')"), Value::Null);
    screenshot(&mut pages, "late", PHONE, "register-phone-full.png");

    // The host's list: exactly the two, with the custom field's value.
    let list = server.request("GET", &format!("/api/rooms/{r}/registrations"), &[("Authorization", &host)], b"");
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json()["registrations"].as_array().unwrap().clone();
    let people: Vec<_> =
        list.iter().map(|p| (p["name"].as_str().unwrap(), p["email"].as_str().unwrap(), p["fields"].clone())).collect();
    assert_eq!(
        people,
        [
            ("Ada Lovelace", "ada@example.org", json!({"company": "Analytical Engines"})),
            ("Grace Hopper", "grace@example.org", json!({"company": "Navy"})),
        ]
    );
    assert!(join.ends_with(list[0]["token"].as_str().unwrap()));
    // Still no secret in the public event, the registrants' tokens included.
    let tokens: Vec<&str> = list.iter().map(|p| p["token"].as_str().unwrap()).collect();
    assert_no_secrets(&event(&server, r).text(), &room, &tokens);

    // A room with approval and no date: pending, and no calendar to add to.
    server.create_room_with(
        json!({"id": "by-approval", "name": "Board Q&A", "phase": "scheduled", "registration": {"approval": true}}),
    );
    pages.open("pending", &server.url("/register/by-approval"), PHONE);
    pages.wait("pending", "document.getElementById('register-form')", long);
    pages.fill("pending", "#field-name", "Barbara");
    pages.fill("pending", "#field-email", "barbara@example.org");
    pages.click("pending", "#register-submit");
    let status = pages.wait("pending", "document.getElementById('registered').dataset.status", long);
    assert_eq!(status, "pending");
    let shown = pages.eval(
        "pending",
        "({ title: document.getElementById('registered-status').textContent, \
            when: document.getElementById('event-when').textContent, ics: document.getElementById('ics-link') })",
    );
    assert_eq!(shown["title"], "Registration received: pending approval");
    assert_eq!(shown["when"], "The date will be announced.");
    assert_eq!(shown["ics"], Value::Null);
    screenshot(&mut pages, "pending", PHONE, "register-phone-pending.png");

    // A room whose event ended long ago: closed; the page says so.
    server.create_room_with(json!({"id": "last-year", "starts_at": "2020-01-01T10:00:00Z"}));
    let old = event(&server, "last-year").json();
    assert_eq!(
        (old["registration_open"].as_bool(), old["closed_reason"].as_str()),
        (Some(false), Some("registration_closed"))
    );
    pages.open("old", &server.url("/register/last-year"), PHONE);
    let closed = pages.wait("old", "document.getElementById('closed')?.dataset.reason", long);
    assert_eq!(closed, "registration_closed");
}
