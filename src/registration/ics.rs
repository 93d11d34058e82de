//! The calendar file of a registration: one `VEVENT` in a `VCALENDAR`, after RFC 5545
//! (iCalendar): §3.1 content lines (CRLF, folded at 75 octets, never inside a UTF-8 character),
//! §3.3.11 TEXT escaping (`\\`, `\;`, `\,`, `\n`), §3.3.5 UTC date-times, §3.6.1 the event's
//! properties (UID, DTSTAMP, DTSTART, DTEND, SUMMARY, DESCRIPTION, URL, STATUS).
//!
//! Decided here: UID is `<registration id>@townhall` (stable: a re-download updates the same
//! calendar entry); DTSTAMP is when the registration was made; a pending registration's event
//! is `TENTATIVE`, an approved one `CONFIRMED`; the personal join link is the `URL` and is
//! repeated at the end of the DESCRIPTION (many calendar apps show only that).

/// What goes into the file.
#[derive(Debug, Clone)]
pub struct CalendarEvent<'a> {
    pub uid: &'a str,
    /// Unix seconds.
    pub stamp: i64,
    pub starts: i64,
    pub ends: i64,
    pub summary: &'a str,
    pub description: Option<&'a str>,
    pub url: &'a str,
    pub confirmed: bool,
}

/// The `.ics` text.
pub fn render(event: &CalendarEvent) -> String {
    use crate::datetime::format_ical_utc as utc;
    let mut description = event.description.map(str::to_owned).unwrap_or_default();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str("Join: ");
    description.push_str(event.url);
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        format!("PRODID:-//townhall//townhall {}//EN", env!("CARGO_PKG_VERSION")),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}", escape_text(event.uid)),
        format!("DTSTAMP:{}", utc(event.stamp)),
        format!("DTSTART:{}", utc(event.starts)),
        format!("DTEND:{}", utc(event.ends)),
        format!("SUMMARY:{}", escape_text(event.summary)),
        format!("DESCRIPTION:{}", escape_text(&description)),
        // A URI value (§3.3.13) is not TEXT: no escaping, but it must stay on its line.
        format!("URL:{}", event.url.replace(['\r', '\n'], "")),
        format!("STATUS:{}", if event.confirmed { "CONFIRMED" } else { "TENTATIVE" }),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

/// §3.3.11: backslash, semicolon, comma and newline escaped; other control characters dropped.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// §3.1: a line longer than 75 octets is split, each continuation starting with one space;
/// every line ends with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut budget = 75;
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > budget {
            out.push_str("\r\n ");
            // The leading space counts toward the next line's 75 octets.
            budget = 74;
            used = 0;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(summary: &'a str, description: Option<&'a str>, url: &'a str) -> String {
        render(&CalendarEvent {
            uid: "abc@townhall",
            stamp: 1_796_000_000,
            starts: 1_796_137_200,
            ends: 1_796_140_800,
            summary,
            description,
            url,
            confirmed: true,
        })
    }

    #[test]
    fn lines_end_in_crlf_and_fold_at_75_octets_on_character_boundaries() {
        let summary = "Ünïcödé ".repeat(30);
        let ics = sample(&summary, Some("line one\nline two; a, b \\ c"), "https://x.example/watch/r?token=t");
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        for line in ics.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'));
        }
        // Unfolding gives the escaped text back.
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("SUMMARY:{summary}\r\n")), "{unfolded}");
        assert!(unfolded.contains("DESCRIPTION:line one\\nline two\\; a\\, b \\\\ c\\n\\nJoin: https://x.example/"));
        assert!(unfolded.contains("DTSTART:20261201T150000Z\r\nDTEND:20261201T160000Z\r\n"));
        assert!(unfolded.contains("URL:https://x.example/watch/r?token=t\r\n"));
        assert!(unfolded.contains("STATUS:CONFIRMED\r\n"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape_text("a,b;c\\d\r\ne\nf\u{7}"), "a\\,b\\;c\\\\d\\ne\\nf");
    }
}
