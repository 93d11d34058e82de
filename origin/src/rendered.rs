//! A playlist rendered once per change and shared by every viewer who asks for that version:
//! its text, the same text gzipped once, and an entity tag for each (RFC 9110 §8.8.3 ETag,
//! §12.5.3 Accept-Encoding, §15.4.5 304 Not Modified).
//!
//! Thousands of viewers parked on the same part are answered at the same wake-up with the same
//! playlist; rendering and compressing it once per version instead of once per viewer is what
//! lets one origin serve them (a deflate compressor per response cost more than everything else
//! the origin does, see docs/BENCHMARKS.md).
//!
//! Decided here: texts under [`GZIP_MIN_LEN`] bytes are sent as they are (gzip would save a few
//! bytes and cost a compressor); the gzipped representation has its own strong tag (`"<hash>-gz"`): the two
//! representations differ in bytes, so a cache must not answer one's validator with the other.
//! Responses carry `Vary: Accept-Encoding` either way.

use std::io::Write;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

/// The media type of every playlist (RFC 8216bis §4).
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// Shorter texts are not compressed.
pub const GZIP_MIN_LEN: usize = 512;

/// One version of a playlist, ready to send.
#[derive(Debug, Clone)]
pub struct RenderedPlaylist {
    pub text: Bytes,
    /// Empty for texts under [`GZIP_MIN_LEN`].
    pub gzip: Bytes,
    etag: HeaderValue,
    gzip_etag: HeaderValue,
}

impl RenderedPlaylist {
    pub fn new(text: String) -> Self {
        let hash = fnv1a(text.as_bytes());
        let gzip = if text.len() < GZIP_MIN_LEN {
            Vec::new()
        } else {
            let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 3 + 64), Compression::default());
            // Writing to a Vec cannot fail.
            encoder.write_all(text.as_bytes()).and_then(|()| encoder.finish()).unwrap_or_default()
        };
        let tag =
            |suffix: &str| HeaderValue::try_from(format!("\"{hash:016x}{suffix}\"")).expect("hex is a valid header");
        Self { text: Bytes::from(text), gzip: Bytes::from(gzip), etag: tag(""), gzip_etag: tag("-gz") }
    }

    /// The response for a request with these headers: gzipped when the client accepts gzip,
    /// 304 when its `If-None-Match` names the representation it would get.
    pub fn response(&self, cache_control: HeaderValue, request: &HeaderMap) -> Response {
        let gzip = !self.gzip.is_empty() && accepts_gzip(request);
        let (etag, body) = if gzip { (&self.gzip_etag, &self.gzip) } else { (&self.etag, &self.text) };
        let not_modified = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|candidate| candidate.trim() == "*" || candidate.trim().as_bytes() == etag.as_bytes());
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST_CONTENT_TYPE));
        headers.insert(header::CACHE_CONTROL, cache_control);
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if not_modified {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (StatusCode::OK, headers, body.clone()).into_response()
    }
}

/// Whether `Accept-Encoding` allows gzip (RFC 9110 §12.5.3): named with a non-zero weight, or
/// covered by `*` and not refused by name.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut named = None;
    let mut wildcard = None;
    for coding in
        request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','))
    {
        let mut params = coding.split(';');
        let name = params.next().unwrap_or_default().trim();
        let weight = params
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            named = Some(weight > 0.0);
        } else if name == "*" {
            wildcard = Some(weight > 0.0);
        }
    }
    named.or(wildcard).unwrap_or(false)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn gzip_is_chosen_by_accept_encoding_weights() {
        let ae = header::ACCEPT_ENCODING;
        assert!(accepts_gzip(&headers(&[(ae.clone(), "gzip, deflate, br")])));
        assert!(accepts_gzip(&headers(&[(ae.clone(), "br;q=1.0, gzip;q=0.8")])));
        assert!(accepts_gzip(&headers(&[(ae.clone(), "*")])));
        assert!(!accepts_gzip(&headers(&[(ae.clone(), "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(ae.clone(), "*, gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(ae.clone(), "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn short_texts_are_sent_plain() {
        let rendered = RenderedPlaylist::new("#EXTM3U\n".into());
        let response =
            rendered.response(HeaderValue::from_static("no-cache"), &headers(&[(header::ACCEPT_ENCODING, "gzip")]));
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn both_representations_carry_the_same_text_and_their_own_tag() {
        let text = "#EXTM3U\n".repeat(100);
        let rendered = RenderedPlaylist::new(text.clone());
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&rendered.gzip[..]).read_to_string(&mut unzipped).unwrap();
        assert_eq!(unzipped, text);
        assert!(rendered.gzip.len() < rendered.text.len());

        let cache = HeaderValue::from_static("public, max-age=1");
        let plain = rendered.response(cache.clone(), &HeaderMap::new());
        let zipped = rendered.response(cache.clone(), &headers(&[(header::ACCEPT_ENCODING, "gzip")]));
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let (plain_tag, zipped_tag) = (plain.headers()[header::ETAG].clone(), zipped.headers()[header::ETAG].clone());
        assert_ne!(plain_tag, zipped_tag);

        // A validator answers only for its own representation.
        let revalidate = |tag: &HeaderValue, gzip: bool| {
            let mut h = headers(&[(header::IF_NONE_MATCH, tag.to_str().unwrap())]);
            if gzip {
                h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            }
            rendered.response(cache.clone(), &h).status()
        };
        assert_eq!(revalidate(&zipped_tag, true), StatusCode::NOT_MODIFIED);
        assert_eq!(revalidate(&plain_tag, false), StatusCode::NOT_MODIFIED);
        assert_eq!(revalidate(&plain_tag, true), StatusCode::OK);
        assert_eq!(revalidate(&zipped_tag, false), StatusCode::OK);
    }
}
