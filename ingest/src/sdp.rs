//! What townhall checks in an SDP offer (RFC 8866, RFC 8829 JSEP) before the WebRTC core sees
//! it, and the trickle-ICE SDP fragments of WHIP/WHEP PATCH requests (RFC 8840 §9, RFC 9725 §4.3).
//!
//! The core parses the offer fully; this file decides the product's rules, so that an offer
//! the stage cannot use is refused with a message that says why:
//! - a WHIP offer must send audio or video, a WHEP offer must receive;
//! - video must offer H.264 (packetization-mode 0 or 1) and audio must offer Opus, since the
//!   program is H.264 + AAC (from Opus); an offer with neither is refused with the list of
//!   codecs it did offer and the ones we accept.

use crate::error::{Error, Result};

/// Codecs accepted on the stage, as a sentence for error messages.
pub const ACCEPTED_CODECS: &str = "H264 (packetization-mode 0 or 1) for video, opus for audio";

/// One `m=` section of an offer, as far as we care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub kind: String,
    pub mid: Option<String>,
    /// `a=sendrecv|sendonly|recvonly|inactive`, `sendrecv` when absent (RFC 8866 §6.7).
    pub direction: String,
    /// Encoding names from `a=rtpmap`, upper-cased (`H264`, `OPUS`, `VP8`, ...).
    pub codecs: Vec<String>,
    /// Port 0: a rejected/disabled section.
    pub disabled: bool,
}

/// The parts of an offer townhall checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    pub media: Vec<MediaSection>,
    pub has_fingerprint: bool,
    pub has_ice_credentials: bool,
}

/// Which way media flows for the endpoint that received the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// WHIP: the client sends.
    Publish,
    /// WHEP: the client receives.
    Play,
}

/// Parses the parts of an offer we check; errors on anything that is not SDP.
pub fn summarize_offer(sdp: &str) -> Result<OfferSummary> {
    let mut lines = sdp.lines().map(|l| l.trim_end_matches('\r'));
    if lines.next() != Some("v=0") {
        return Err(Error::MalformedSdp("an SDP offer must start with \"v=0\"".into()));
    }
    let mut summary = OfferSummary { media: Vec::new(), has_fingerprint: false, has_ice_credentials: false };
    let mut session_direction: Option<String> = None;
    let mut has_ufrag = false;
    let mut has_pwd = false;
    for (number, line) in sdp.lines().map(|l| l.trim_end_matches('\r')).enumerate() {
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(Error::MalformedSdp(format!("line {} is not \"<type>=<value>\": {line:?}", number + 1)));
        }
        if let Some(m) = line.strip_prefix("m=") {
            let fields: Vec<&str> = m.split_whitespace().collect();
            if fields.len() < 4 {
                return Err(Error::MalformedSdp(format!(
                    "line {}: an m= line needs media, port, proto and formats",
                    number + 1
                )));
            }
            let disabled = fields[1] == "0";
            summary.media.push(MediaSection {
                kind: fields[0].to_owned(),
                mid: None,
                direction: String::new(),
                codecs: Vec::new(),
                disabled,
            });
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        match name {
            "fingerprint" => summary.has_fingerprint = true,
            "ice-ufrag" => has_ufrag = true,
            "ice-pwd" => has_pwd = true,
            "sendrecv" | "sendonly" | "recvonly" | "inactive" => match summary.media.last_mut() {
                Some(section) => section.direction = name.to_owned(),
                None => session_direction = Some(name.to_owned()),
            },
            "mid" => {
                if let Some(section) = summary.media.last_mut() {
                    section.mid = Some(value.to_owned());
                }
            }
            "rtpmap" => {
                let encoding = value.split_whitespace().nth(1).and_then(|e| e.split('/').next());
                match (summary.media.last_mut(), encoding) {
                    (Some(section), Some(encoding)) => section.codecs.push(encoding.to_ascii_uppercase()),
                    _ => {
                        return Err(Error::MalformedSdp(format!("line {}: malformed a=rtpmap", number + 1)));
                    }
                }
            }
            _ => {}
        }
    }
    for section in &mut summary.media {
        if section.direction.is_empty() {
            section.direction = session_direction.clone().unwrap_or_else(|| "sendrecv".to_owned());
        }
    }
    summary.has_ice_credentials = has_ufrag && has_pwd;
    Ok(summary)
}

impl OfferSummary {
    /// Checks an offer against what the stage accepts for `purpose`.
    pub fn check(&self, purpose: Purpose) -> Result<()> {
        if self.media.is_empty() {
            return Err(Error::BadOffer("the offer has no m= section".into()));
        }
        if !self.has_fingerprint {
            return Err(Error::MalformedSdp("the offer has no a=fingerprint (DTLS is required)".into()));
        }
        if !self.has_ice_credentials {
            return Err(Error::MalformedSdp("the offer has no a=ice-ufrag/a=ice-pwd".into()));
        }
        let wanted: &[&str] = match purpose {
            Purpose::Publish => &["sendonly", "sendrecv"],
            Purpose::Play => &["recvonly", "sendrecv"],
        };
        let flowing: Vec<&MediaSection> = self
            .media
            .iter()
            .filter(|m| !m.disabled && (m.kind == "audio" || m.kind == "video"))
            .filter(|m| wanted.contains(&m.direction.as_str()))
            .collect();
        if flowing.is_empty() {
            return Err(Error::BadOffer(match purpose {
                Purpose::Publish => "a WHIP offer must send audio or video (sendonly or sendrecv)".into(),
                Purpose::Play => "a WHEP offer must receive audio or video (recvonly or sendrecv)".into(),
            }));
        }
        let usable = flowing.iter().any(|m| match m.kind.as_str() {
            "video" => m.codecs.iter().any(|c| c == "H264"),
            _ => m.codecs.iter().any(|c| c == "OPUS"),
        });
        if !usable {
            let offered: Vec<String> = flowing
                .iter()
                .map(|m| {
                    format!("{}: {}", m.kind, if m.codecs.is_empty() { "none".into() } else { m.codecs.join(", ") })
                })
                .collect();
            return Err(Error::NoUsableCodec(format!(
                "offered {}; accepted are {ACCEPTED_CODECS}",
                offered.join("; ")
            )));
        }
        Ok(())
    }
}

/// A trickle-ICE / ICE-restart SDP fragment (RFC 8840 §9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFragment {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    /// `(mid, candidate attribute value)` pairs, in order.
    pub candidates: Vec<(Option<String>, String)>,
    pub end_of_candidates: bool,
}

/// Parses a `application/trickle-ice-sdpfrag` body.
pub fn parse_fragment(body: &str) -> Result<SdpFragment> {
    let mut fragment = SdpFragment::default();
    let mut mid: Option<String> = None;
    let mut seen_any = false;
    for (number, line) in body.lines().map(|l| l.trim_end_matches('\r')).enumerate() {
        if line.is_empty() {
            continue;
        }
        seen_any = true;
        if line.starts_with("m=") {
            mid = None;
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            return Err(Error::MalformedFragment(format!(
                "line {}: only a= and m= lines belong in a trickle-ice-sdpfrag: {line:?}",
                number + 1
            )));
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        match name {
            "ice-ufrag" => fragment.ice_ufrag = Some(value.trim().to_owned()),
            "ice-pwd" => fragment.ice_pwd = Some(value.trim().to_owned()),
            "mid" => mid = Some(value.trim().to_owned()),
            "candidate" => {
                if value.split_whitespace().count() < 8 {
                    return Err(Error::MalformedFragment(format!(
                        "line {}: a candidate needs foundation, component, transport, priority, address, port, \"typ\" and type",
                        number + 1
                    )));
                }
                fragment.candidates.push((mid.clone(), format!("candidate:{value}")));
            }
            "end-of-candidates" => fragment.end_of_candidates = true,
            _ => {}
        }
    }
    if !seen_any {
        return Err(Error::MalformedFragment("the fragment is empty".into()));
    }
    if fragment.ice_ufrag.is_some() != fragment.ice_pwd.is_some() {
        return Err(Error::MalformedFragment("a=ice-ufrag and a=ice-pwd go together".into()));
    }
    Ok(fragment)
}

/// Whether a candidate (`candidate:...` or `a=candidate:...`) names a loopback address.
pub fn candidate_is_loopback(candidate: &str) -> bool {
    candidate
        .split_whitespace()
        .nth(4)
        .and_then(|addr| addr.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// Drops the candidates a loopback-only server cannot reach (every non-loopback address):
/// checks towards them could only fail, and would leave the machine.
pub fn retain_loopback_candidates(sdp: &str) -> String {
    sdp.split_inclusive('\n').filter(|line| !line.starts_with("a=candidate:") || candidate_is_loopback(line)).collect()
}

/// The `a=ice-ufrag` of a description.
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines().find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-ufrag:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(direction: &str, video: &[(&str, &str)], audio: &[(&str, &str)]) -> String {
        let mut s = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n");
        s += "a=fingerprint:sha-256 AA:BB\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n";
        for (kind, codecs) in [("audio", audio), ("video", video)] {
            if codecs.is_empty() {
                continue;
            }
            let pts: Vec<&str> = codecs.iter().map(|(pt, _)| *pt).collect();
            s += &format!(
                "m={kind} 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\na=mid:{kind}\r\na={direction}\r\n",
                pts.join(" ")
            );
            for (pt, name) in codecs {
                s += &format!("a=rtpmap:{pt} {name}\r\n");
            }
        }
        s
    }

    #[test]
    fn accepts_h264_and_opus_publish() {
        let sdp = offer("sendonly", &[("96", "VP8/90000"), ("102", "H264/90000")], &[("111", "opus/48000/2")]);
        let summary = summarize_offer(&sdp).unwrap();
        assert_eq!(summary.media.len(), 2);
        assert_eq!(summary.media[1].codecs, vec!["VP8", "H264"]);
        summary.check(Purpose::Publish).unwrap();
        assert!(matches!(summary.check(Purpose::Play), Err(Error::BadOffer(_))));
    }

    #[test]
    fn refuses_vp8_only_with_the_list_of_codecs() {
        let sdp = offer("sendonly", &[("96", "VP8/90000"), ("98", "VP9/90000")], &[]);
        let err = summarize_offer(&sdp).unwrap().check(Purpose::Publish).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("video: VP8, VP9"), "{text}");
        assert!(text.contains("H264"), "{text}");
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(summarize_offer("hello"), Err(Error::MalformedSdp(_))));
        assert!(matches!(summarize_offer("v=0\r\nthis is not sdp\r\n"), Err(Error::MalformedSdp(_))));
        assert!(matches!(summarize_offer("v=0\r\nm=video 9\r\n"), Err(Error::MalformedSdp(_))));
        let no_fp = offer("sendonly", &[("102", "H264/90000")], &[]).replace("a=fingerprint:sha-256 AA:BB\r\n", "");
        assert!(matches!(summarize_offer(&no_fp).unwrap().check(Purpose::Publish), Err(Error::MalformedSdp(_))));
    }

    #[test]
    fn loopback_candidates_are_kept_and_others_dropped() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2122194687 127.0.0.1 34204 typ host\r\n\
                   a=candidate:2 1 udp 2122063615 192.0.2.2 55913 typ host\r\n\
                   a=candidate:3 1 udp 2122063615 ::1 55913 typ host\r\n\
                   a=candidate:4 1 udp 2122063615 abc.local 55913 typ host\r\na=mid:0\r\n";
        let kept = retain_loopback_candidates(sdp);
        assert_eq!(kept.matches("a=candidate").count(), 2, "{kept}");
        assert!(kept.contains("127.0.0.1") && kept.contains("::1") && kept.ends_with("a=mid:0\r\n"));
    }

    #[test]
    fn parses_trickle_fragments() {
        let body = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
                    a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
                    a=end-of-candidates\r\n";
        let f = parse_fragment(body).unwrap();
        assert_eq!(f.ice_ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].0.as_deref(), Some("0"));
        assert!(f.candidates[0].1.starts_with("candidate:1387637174 1 udp"));
        assert!(f.end_of_candidates);
        assert!(parse_fragment("").is_err());
        assert!(parse_fragment("hello\r\n").is_err());
        assert!(parse_fragment("a=candidate:1 1 udp\r\n").is_err());
        assert!(parse_fragment("a=ice-ufrag:x\r\n").is_err());
    }
}
