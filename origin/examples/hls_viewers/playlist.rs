//! What a viewer reads of an LL-HLS media playlist: parts, the next part, media times.

use super::*;

/// What a viewer saw of a media playlist.
#[derive(Debug, Default)]
pub(crate) struct Playlist {
    /// Parts in playlist order, with their duration (s) and URI.
    pub(crate) parts: Vec<(Key, f64, String)>,
    /// Segments listed as complete.
    pub(crate) complete: HashSet<u64>,
    pub(crate) last_segment: Option<u64>,
    /// EXT-X-PROGRAM-DATE-TIME by segment, in Unix milliseconds.
    pub(crate) program_time: HashMap<u64, f64>,
    pub(crate) map: Option<String>,
    pub(crate) ended: bool,
}

impl Playlist {
    pub(crate) fn parse(text: &str) -> Playlist {
        let mut p = Playlist::default();
        let mut media_sequence = 0;
        let mut msn: Option<u64> = None;
        let mut index = 0;
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                media_sequence = v.parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                let skipped: u64 = attribute(v, "SKIPPED-SEGMENTS").and_then(|s| s.parse().ok()).unwrap_or(0);
                msn = Some(msn.unwrap_or(media_sequence) + skipped);
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                p.map = attribute(v, "URI").map(str::to_owned);
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                if let Some(ms) = parse_program_date_time(v) {
                    p.program_time.insert(msn.unwrap_or(media_sequence), ms);
                }
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let current = *msn.get_or_insert(media_sequence);
                let duration = attribute(v, "DURATION").and_then(|d| d.parse().ok()).unwrap_or(0.0);
                if let Some(uri) = attribute(v, "URI") {
                    p.parts.push(((current, index), duration, uri.to_owned()));
                }
                index += 1;
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if !line.is_empty() && !line.starts_with('#') {
                let current = *msn.get_or_insert(media_sequence);
                p.complete.insert(current);
                p.last_segment = Some(current);
                msn = Some(current + 1);
                index = 0;
            }
        }
        p
    }

    /// The newest part listed.
    pub(crate) fn newest(&self) -> Option<Key> {
        self.parts.last().map(|(key, _, _)| *key)
    }

    /// The part after the newest one listed: what a blocking request asks for.
    pub(crate) fn next_part(&self) -> Option<Key> {
        match (self.newest(), self.last_segment) {
            (Some((msn, _)), _) if self.complete.contains(&msn) => Some((msn + 1, 0)),
            (Some((msn, index)), _) => Some((msn, index + 1)),
            (None, Some(msn)) => Some((msn + 1, 0)),
            (None, None) => None,
        }
    }

    /// When the part's media ends on the origin's clock: its segment's PROGRAM-DATE-TIME plus
    /// the durations of the segment's parts up to and including it.
    pub(crate) fn media_end(&self, key: Key) -> Option<f64> {
        let start = self.program_time.get(&key.0)?;
        let parts: Vec<&(Key, f64, String)> = self.parts.iter().filter(|(k, _, _)| k.0 == key.0).collect();
        // All of the segment's parts must be listed, from its first.
        if parts.first().is_none_or(|(k, _, _)| k.1 != 0) || !parts.iter().any(|(k, _, _)| *k == key) {
            return None;
        }
        Some(start + parts.iter().filter(|(k, _, _)| k.1 <= key.1).map(|(_, d, _)| d * 1000.0).sum::<f64>())
    }
}

/// A quoted or plain attribute of a tag's attribute list.
pub(crate) fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], after[end..].trim_start_matches(','))
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// `2026-11-25T10:00:00.123Z` (RFC 3339, UTC, as the origin writes it) in Unix milliseconds.
pub(crate) fn parse_program_date_time(value: &str) -> Option<f64> {
    let value = value.trim().strip_suffix('Z')?;
    let (date, time) = value.split_once('T')?;
    let mut date = date.split('-').map(|n| n.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let (hour, minute) = (time.next()?.parse::<i64>().ok()?, time.next()?.parse::<i64>().ok()?);
    let second: f64 = time.next()?.parse().ok()?;
    // Days from civil (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + minute * 60) as f64 + second) * 1000.0)
}

/// `base`'s directory joined with a relative URI.
pub(crate) fn join(base: &str, uri: &str) -> String {
    if let Some(absolute) = uri.strip_prefix("http://") {
        return absolute.find('/').map(|i| absolute[i..].to_owned()).unwrap_or_else(|| "/".into());
    }
    if uri.starts_with('/') {
        return uri.to_owned();
    }
    let base = base.split('?').next().unwrap_or(base);
    format!("{}{uri}", &base[..base.rfind('/').map_or(0, |i| i + 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
        #EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z\n\
        #EXT-X-PART:DURATION=0.20000,URI=\"part-4.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.20000,URI=\"part-4.1.m4s\"\n#EXTINF:0.40000,\nseg-4.m4s\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.400Z\n\
        #EXT-X-PART:DURATION=0.20000,URI=\"part-5.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-5.1.m4s\"\n";

    #[test]
    fn a_playlist_gives_parts_the_next_part_and_media_times() {
        let p = Playlist::parse(PLAYLIST);
        assert_eq!(p.parts.iter().map(|(k, _, _)| *k).collect::<Vec<_>>(), [(4, 0), (4, 1), (5, 0)]);
        assert_eq!(p.map.as_deref(), Some("init-1.mp4"));
        assert_eq!(p.next_part(), Some((5, 1)));
        let t0 = parse_program_date_time("2026-11-25T10:00:00.000Z").unwrap();
        assert_eq!(t0, 1_795_600_800_000.0);
        assert_eq!(p.media_end((4, 1)), Some(t0 + 400.0));
        assert_eq!(p.media_end((5, 0)), Some(t0 + 600.0));
        let closed = Playlist::parse(&PLAYLIST.replace("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.400Z\n#EXT-X-PART:DURATION=0.20000,URI=\"part-5.0.m4s\",INDEPENDENT=YES\n", ""));
        assert_eq!(closed.next_part(), Some((5, 0)));
    }

    #[test]
    fn urls_are_loopback_only_and_join_relatively() {
        assert_eq!(parse_url("http://127.0.0.1:8080/hls/r/index.m3u8").unwrap().path, "/hls/r/index.m3u8");
        assert!(parse_url("http://10.0.0.1:8080/").is_err());
        assert!(parse_url("https://127.0.0.1:8080/").is_err());
        assert_eq!(join("/hls/r/index.m3u8", "live.m3u8"), "/hls/r/live.m3u8");
        assert_eq!(join("/hls/r/live.m3u8?_HLS_msn=1", "part-1.0.m4s"), "/hls/r/part-1.0.m4s");
        assert_eq!(Kind::of("/hls/r/live.m3u8?_HLS_msn=1&_HLS_part=2"), Kind::BlockingPlaylist);
        assert_eq!(Kind::of("/hls/r/part-1.2.m4s"), Kind::Part);
    }
}
