//! The webhook event envelope and its signature, after the Standard Webhooks specification
//! (standardwebhooks.com, "Webhook Headers" and "Signature Scheme"):
//!
//! - body: `{"type": "room.started", "timestamp": "<RFC 3339>", "data": {...}}`;
//! - `webhook-id`: unique per event, the same on every retry (receivers deduplicate by it);
//! - `webhook-timestamp`: Unix seconds of the attempt (receivers refuse stale ones);
//! - `webhook-signature`: `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//!
//! Decided here: a secret written `whsec_<base64>` is used as the spec says (the key is the
//! decoded bytes), so the Standard Webhooks libraries verify our requests as they are; any
//! other secret is used as its UTF-8 bytes. Pure code: no clock, no I/O.

use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened. The wire name is `type` in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "room.created")]
    RoomCreated,
    #[serde(rename = "room.deleted")]
    RoomDeleted,
    /// The program's first segment of a run is out: viewers can watch.
    #[serde(rename = "room.started")]
    RoomStarted,
    /// `POST /api/rooms/{room}/end`.
    #[serde(rename = "room.ended")]
    RoomEnded,
    #[serde(rename = "recording.ready")]
    RecordingReady,
    /// A participant's first WebSocket connection to the room.
    #[serde(rename = "participant.joined")]
    ParticipantJoined,
    /// A participant's last WebSocket connection to the room closed.
    #[serde(rename = "participant.left")]
    ParticipantLeft,
    /// `POST /api/rooms/{room}/registrations` (pending or approved).
    #[serde(rename = "registration.created")]
    RegistrationCreated,
    /// The host approved a registration.
    #[serde(rename = "registration.approved")]
    RegistrationApproved,
    /// The host rejected a registration.
    #[serde(rename = "registration.rejected")]
    RegistrationRejected,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoomCreated => "room.created",
            Self::RoomDeleted => "room.deleted",
            Self::RoomStarted => "room.started",
            Self::RoomEnded => "room.ended",
            Self::RecordingReady => "recording.ready",
            Self::ParticipantJoined => "participant.joined",
            Self::ParticipantLeft => "participant.left",
            Self::RegistrationCreated => "registration.created",
            Self::RegistrationApproved => "registration.approved",
            Self::RegistrationRejected => "registration.rejected",
        }
    }
}

/// One event, as kept on disk until every endpoint has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `webhook-id`: `msg_` and 24 random characters.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: i64,
    pub data: Value,
}

impl Event {
    /// The request body, the same bytes on every attempt.
    pub fn body(&self) -> Vec<u8> {
        /// The wire form, fields in this order.
        #[derive(Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            kind: EventType,
            timestamp: String,
            data: &'a Value,
        }
        let timestamp = townhall_packager::playlist::format_program_date_time(self.at_ms);
        serde_json::to_vec(&Envelope { kind: self.kind, timestamp, data: &self.data }).unwrap_or_default()
    }
}

/// The HMAC key of a configured secret (see the module doc for `whsec_`).
pub fn signing_key(secret: &str) -> Result<hmac::Key, String> {
    let bytes = match secret.strip_prefix("whsec_") {
        Some(encoded) => base64_decode(encoded).ok_or("a whsec_ secret must be base64 after the prefix")?,
        None => secret.as_bytes().to_vec(),
    };
    if bytes.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// `webhook-signature` for one attempt.
pub fn signature(key: &hmac::Key, id: &str, timestamp_s: i64, body: &[u8]) -> String {
    let mut signed = format!("{id}.{timestamp_s}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1,{}", base64(hmac::sign(key, &signed).as_ref()))
}

/// Standard base64 with padding (RFC 4648 §4), as the spec's signatures use.
pub fn base64(bytes: &[u8]) -> String {
    let mut text = crate::tokens::base64url(bytes).replace('-', "+").replace('_', "/");
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    text
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let url = text.trim_end_matches('=').replace('+', "-").replace('/', "_");
    crate::tokens::base64url_decode(&url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_reference_example() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_plain_secret_is_its_bytes_and_bad_ones_are_refused() {
        let plain = signing_key("s3cret").unwrap();
        let same = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        assert_eq!(signature(&plain, "a", 1, b"{}"), signature(&same, "a", 1, b"{}"));
        assert!(signing_key("").is_err());
        assert!(signing_key("whsec_!!!").is_err());
    }

    #[test]
    fn the_body_is_the_envelope() {
        let event = Event {
            id: "msg_1".into(),
            kind: EventType::RoomEnded,
            at_ms: 1_700_000_000_123,
            data: serde_json::json!({"room": "r1"}),
        };
        let body = String::from_utf8(event.body()).unwrap();
        assert_eq!(body, r#"{"type":"room.ended","timestamp":"2023-11-14T22:13:20.123Z","data":{"room":"r1"}}"#);
        // Kept on disk and read back unchanged.
        let stored = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&stored).unwrap(), event);
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
    }
}
