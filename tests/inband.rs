//! Interaction events carried by the program itself, through the real binary with an ffmpeg 9
//! WHIP publisher: a poll, a chapter and a question being answered appear as EXT-X-DATERANGE
//! in the live playlist (full and v2 delta, valid for npm hls-parser in strict mode) and in the
//! replay, START-DATE equal to the event's `at`; every public event rides in an ID3 `emsg` of
//! the part being built at its program time; ffprobe still reads the program; a kill -9 keeps
//! the replay's date ranges.

mod common;

use std::time::Duration;

use common::hls::{check_playlists, ffprobe_streams, wait_program};
use common::{Room, Server, ffmpeg_publish};
use serde_json::{Value, json};

fn command(server: &Server, room: &Room, body: Value) -> Value {
    let response = server.request(
        "POST",
        &format!("/api/rooms/{}/commands", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token)), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["events"][0].clone()
}

/// The EXT-X-DATERANGE line with this ID.
fn date_range<'a>(playlist: &'a str, id: &str) -> Option<&'a str> {
    playlist.lines().find(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains(&format!("ID=\"{id}\"")))
}

fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(",{name}=\""))? + name.len() + 3;
    Some(&line[start..start + line[start..].find('"')?])
}

/// A percent-encoded attribute value, decoded.
fn text(line: &str, name: &str) -> Option<String> {
    let raw = attribute(line, name)?.as_bytes();
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            bytes.push(u8::from_str_radix(std::str::from_utf8(&raw[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    Some(String::from_utf8(bytes).unwrap())
}

/// RFC 3339 UTC with milliseconds, as the playlist writes it, back to Unix ms.
fn unix_ms(date: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| date[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d - 719_469;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// Top-level boxes of an fMP4 byte string: (type, body).
fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        assert!(size >= 8 && size <= data.len(), "box size {size}");
        out.push((data[4..8].try_into().unwrap(), &data[8..size]));
        data = &data[size..];
    }
    out
}

/// An `emsg` v1 body: (timescale, presentation_time, id, scheme, ID3 tag).
fn emsg(body: &[u8]) -> (u32, u64, u32, String, &[u8]) {
    assert_eq!(body[0], 1, "emsg version 1");
    let timescale = u32::from_be_bytes(body[4..8].try_into().unwrap());
    let time = u64::from_be_bytes(body[8..16].try_into().unwrap());
    let id = u32::from_be_bytes(body[20..24].try_into().unwrap());
    let rest = &body[24..];
    let scheme_end = rest.iter().position(|b| *b == 0).unwrap();
    let value_end = scheme_end + 1 + rest[scheme_end + 1..].iter().position(|b| *b == 0).unwrap();
    (timescale, time, id, String::from_utf8(rest[..scheme_end].to_vec()).unwrap(), &rest[value_end + 1..])
}

/// The video track's base decode time in a segment's first `moof`.
fn first_video_tfdt(segment: &[u8]) -> u64 {
    let (_, moof) = boxes(segment).into_iter().find(|(t, _)| t == b"moof").unwrap();
    for (kind, traf) in boxes(moof) {
        if &kind != b"traf" {
            continue;
        }
        let inner = boxes(traf);
        let track =
            inner.iter().find(|(t, _)| t == b"tfhd").map(|(_, b)| u32::from_be_bytes(b[4..8].try_into().unwrap()));
        if track == Some(1)
            && let Some((_, tfdt)) = inner.iter().find(|(t, _)| t == b"tfdt")
        {
            return if tfdt[0] == 1 {
                u64::from_be_bytes(tfdt[4..12].try_into().unwrap())
            } else {
                u64::from(u32::from_be_bytes(tfdt[4..8].try_into().unwrap()))
            };
        }
    }
    panic!("no video tfdt");
}

/// The JSON in an ID3 tag's TXXX frame described "townhall".
fn id3_json(tag: &[u8]) -> Value {
    assert_eq!(&tag[..3], b"ID3");
    let frame = &tag[10..];
    assert_eq!(&frame[..4], b"TXXX");
    let body = &frame[10..];
    assert_eq!(body[0], 3, "UTF-8");
    let description_end = 1 + body[1..].iter().position(|b| *b == 0).unwrap();
    assert_eq!(&body[1..description_end], b"townhall");
    serde_json::from_slice(body[description_end + 1..].strip_suffix(&[0]).unwrap_or(&body[description_end + 1..]))
        .unwrap()
}

#[test]
fn polls_chapters_and_questions_ride_in_the_playlists_and_the_media() {
    let server = Server::start();
    let room = server.create_room();
    let publisher = ffmpeg_publish(&server, &room, "main", 60);
    wait_program(&server, &room);
    let live_path = format!("/hls/{}/live.m3u8", room.id);

    let chapter = command(&server, &room, json!({"type": "chapter_start", "title": "Intro"}));
    command(&server, &room, json!({"type": "poll_create", "question": "Tea or coffee?", "options": ["Tea", "Coffee"]}));
    let opened = command(&server, &room, json!({"type": "poll_open", "poll": "p1"}));
    let at = opened["at"].as_i64().unwrap();
    let live = server.request("GET", &live_path, &[], b"").text();
    let poll = date_range(&live, "poll-p1").unwrap_or_else(|| panic!("no poll date range in {live}"));
    assert_eq!(attribute(poll, "CLASS"), Some("townhall.poll"));
    assert_eq!(unix_ms(attribute(poll, "START-DATE").unwrap()), at, "START-DATE is the event's at");
    assert_eq!(text(poll, "X-OPTIONS").as_deref(), Some(r#"["Tea","Coffee"]"#));
    assert_eq!(text(poll, "X-QUESTION").as_deref(), Some("Tea or coffee?"));
    assert!(!poll.contains("END-DATE"));
    let intro = date_range(&live, "chapter-c1").unwrap();
    assert_eq!(unix_ms(attribute(intro, "START-DATE").unwrap()), chapter["at"].as_i64().unwrap());
    // `at` is the live edge: within a few parts of the newest media the playlist lists.
    let newest = live.lines().filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")).next_back().unwrap();
    assert!((at - unix_ms(newest)).abs() < 5_000, "at {at} vs newest segment {newest}");

    // The poll's event is in the media: an emsg before the moof of the part covering `at`.
    let msn_of = |playlist: &str| -> Vec<(u64, i64)> {
        let mut msn: u64 =
            playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
        let mut out = Vec::new();
        let mut pdt = None;
        for line in playlist.lines() {
            if let Some(date) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                pdt = Some(unix_ms(date));
            } else if line.starts_with("seg-") {
                out.push((msn, pdt.take().unwrap()));
                msn += 1;
            }
        }
        out
    };
    let seq = opened["seq"].as_u64().unwrap();
    let mut found = None;
    server.wait_for("the poll's emsg in a segment", Duration::from_secs(60), |s| {
        let live = s.request("GET", &live_path, &[], b"").text();
        for (msn, pdt) in msn_of(&live) {
            let segment = s.request("GET", &format!("/hls/{}/seg-{msn}.m4s", room.id), &[], b"").body;
            for (kind, body) in boxes(&segment) {
                if &kind == b"emsg" {
                    let (timescale, time, id, scheme, tag) = emsg(body);
                    let event = id3_json(tag);
                    if event["seq"] == seq {
                        assert_eq!(
                            (timescale, id, scheme.as_str()),
                            (90_000, seq as u32, "https://aomedia.org/emsg/ID3")
                        );
                        assert_eq!(event["type"], "poll_opened");
                        found = Some((msn, pdt, time, first_video_tfdt(&segment)));
                    }
                }
            }
        }
        found.is_some()
    });
    let (msn, pdt, time, tfdt) = found.unwrap();
    // Media time ↔ program time through the segment's PROGRAM-DATE-TIME: within a frame or two
    // (or clamped to the start of the part being built when it came late).
    let media_ms = pdt + ((time as i64 - tfdt as i64) * 1000 / 90_000);
    assert!((media_ms - at).abs() <= 250, "segment {msn}: the emsg says {media_ms}, the event's at is {at}");
    let ids: Vec<u64> = {
        let segment = server.request("GET", &format!("/hls/{}/seg-{msn}.m4s", room.id), &[], b"").body;
        let kinds: Vec<[u8; 4]> = boxes(&segment).iter().map(|(k, _)| *k).collect();
        let first_emsg = kinds.iter().position(|k| k == b"emsg").unwrap();
        assert_eq!(&kinds[first_emsg + 1..].iter().find(|k| *k != b"emsg").unwrap(), &b"moof", "emsg before a moof");
        boxes(&segment).iter().filter(|(k, _)| k == b"emsg").map(|(_, b)| u64::from(emsg(b).2)).collect()
    };
    assert!(ids.contains(&seq));

    // A question being answered spans until its next status; the poll closes with its results.
    let asked = command(&server, &room, json!({"type": "question_ask", "text": "Slides?"}));
    let question = asked["id"].as_str().unwrap();
    let answering =
        command(&server, &room, json!({"type": "question_mark", "question": question, "status": "answering"}));
    command(&server, &room, json!({"type": "question_mark", "question": question, "status": "answered"}));
    let closed = command(&server, &room, json!({"type": "poll_close", "poll": "p1"}));
    let live = server.request("GET", &live_path, &[], b"").text();
    let poll = date_range(&live, "poll-p1").unwrap();
    assert_eq!(unix_ms(attribute(poll, "END-DATE").unwrap()), closed["at"].as_i64().unwrap());
    assert_eq!(text(poll, "X-RESULTS").as_deref(), Some("[0,0]"));
    let answered = date_range(&live, &format!("question-{question}-{}", answering["seq"])).unwrap();
    assert_eq!(
        (text(answered, "X-TEXT").as_deref(), attribute(answered, "X-STATUS")),
        (Some("Slides?"), Some("answered"))
    );

    // Valid for a strict client, full and as a v2 delta; ffprobe still reads the program.
    server.wait_for("a delta that skips", Duration::from_secs(60), |s| {
        s.request("GET", &format!("{live_path}?_HLS_skip=YES"), &[], b"").text().contains("#EXT-X-SKIP")
    });
    let delta = server.request("GET", &format!("{live_path}?_HLS_skip=v2"), &[], b"").text();
    check_playlists(
        "live",
        &[("live".to_owned(), server.request("GET", &live_path, &[], b"").text()), ("delta-v2".to_owned(), delta)],
    );
    let codecs: Vec<Value> = ffprobe_streams(&server.url(&format!("/hls/{}/index.m3u8", room.id)))
        .iter()
        .map(|s| s["codec_name"].clone())
        .collect();
    assert_eq!(codecs, [json!("h264"), json!("aac")]);

    // The replay lists them too, and keeps them after a kill -9.
    let end = server.request(
        "POST",
        &format!("/api/rooms/{}/end", room.id),
        &[("Authorization", &format!("Bearer {}", room.host_token))],
        b"",
    );
    assert!(end.status < 300, "{}", end.text());
    drop(publisher);
    let replay_path = format!("/hls/{}/replay.m3u8", room.id);
    let replay = server.request("GET", &replay_path, &[], b"").text();
    assert!(replay.contains("#EXT-X-ENDLIST"));
    for id in ["poll-p1", "chapter-c1"] {
        assert!(date_range(&replay, id).is_some(), "{id} in the replay: {replay}");
    }
    check_playlists("replay", &[("replay".to_owned(), replay.clone())]);
    let data_dir = server.kill_keeping_data();
    let server = Server::start_in(data_dir, &[]);
    let restored = server.request("GET", &replay_path, &[], b"").text();
    assert_eq!(date_range(&restored, "poll-p1"), date_range(&replay, "poll-p1"), "the same range after a restart");
    assert!(date_range(&restored, "chapter-c1").is_some());
}
