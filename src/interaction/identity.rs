//! Who is on the other end of a WebSocket: the host (the room's host token), a presenter (its
//! publish token) or an attendee. Attendees need no token to join (the program is public, as its
//! HLS is); the server gives each a participant id and a signed identity token that brings the
//! same id back on reconnect, so "one vote per participant" holds across reconnects and
//! restarts. The token is `a1.<participant id>.<HMAC-SHA256(key, room NUL participant id)>`
//! (base64url, no padding): worthless in another room, unforgeable without the server's key
//! (`<data_dir>/identity_key`, generated at first start).

use std::path::Path;

use anyhow::Context;
use ring::hmac;
use townhall_interaction::{Actor, Role};

use crate::http::auth::constant_time_eq;
use crate::rooms::{RoomRecord, random_token};

/// Longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// The server's key for identity tokens.
pub struct Identities {
    key: hmac::Key,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The token is none of the room's tokens and no valid attendee identity of this room.
    BadToken,
    /// The display name is empty after trimming, too long, or has control characters.
    BadName,
}

impl Identities {
    /// Loads the key from `<data_dir>/identity_key`, creating it on first start.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("identity_key");
        let secret = match std::fs::read_to_string(&path) {
            Ok(secret) if secret.trim().len() >= 32 => secret.trim().to_owned(),
            Ok(_) => anyhow::bail!("{} is too short: delete it to have a new one made", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_token(48);
                let temp = path.with_extension("tmp");
                std::fs::write(&temp, &secret)
                    .and_then(|()| std::fs::rename(&temp, &path))
                    .with_context(|| format!("writing {}", path.display()))?;
                secret
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Self::from_secret(secret.as_bytes()))
    }

    pub fn from_secret(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    fn signature(&self, room: &str, participant_id: &str) -> String {
        let mut message = Vec::with_capacity(room.len() + participant_id.len() + 1);
        message.extend_from_slice(room.as_bytes());
        message.push(0);
        message.extend_from_slice(participant_id.as_bytes());
        base64url(hmac::sign(&self.key, &message).as_ref())
    }

    /// A new attendee of `room`: its participant id and identity token.
    pub fn new_attendee(&self, room: &str) -> (String, String) {
        let participant_id = format!("a-{}", random_token(16));
        let token = format!("a1.{participant_id}.{}", self.signature(room, &participant_id));
        (participant_id, token)
    }

    /// The attendee a token names, if it was issued for `room`.
    pub fn attendee(&self, room: &str, token: &str) -> Option<String> {
        let (participant_id, signature) = token.strip_prefix("a1.")?.rsplit_once('.')?;
        let valid = participant_id.starts_with("a-")
            && participant_id.len() <= 64
            && constant_time_eq(signature, &self.signature(room, participant_id));
        valid.then(|| participant_id.to_owned())
    }

    /// Who connects to `room` with `token` (none: a new attendee) and display name `name`.
    /// Returns the actor and, for attendees, the identity token to reconnect with.
    pub fn identify(
        &self,
        room: &RoomRecord,
        token: Option<&str>,
        name: Option<&str>,
    ) -> Result<(Actor, Option<String>), IdentityError> {
        let name = match name.map(str::trim) {
            None => None,
            Some(n) if n.is_empty() || n.chars().count() > NAME_MAX_CHARS || n.chars().any(char::is_control) => {
                return Err(IdentityError::BadName);
            }
            Some(n) => Some(n.to_owned()),
        };
        match token.filter(|t| !t.is_empty()) {
            Some(t) if constant_time_eq(t, &room.host_token) => {
                Ok((Actor::new("host", name.unwrap_or_else(|| "Host".into()), Role::Host), None))
            }
            Some(t) if constant_time_eq(t, &room.publish_token) => {
                let name = name.unwrap_or_else(|| "Presenter".into());
                let id: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                    .collect();
                Ok((Actor::new(format!("p-{id}"), name, Role::Presenter), None))
            }
            Some(t) => {
                let participant_id = self.attendee(&room.id, t).ok_or(IdentityError::BadToken)?;
                Ok((
                    Actor::new(participant_id, name.unwrap_or_else(|| "Guest".into()), Role::Attendee),
                    Some(t.to_owned()),
                ))
            }
            None => {
                let (participant_id, token) = self.new_attendee(&room.id);
                Ok((Actor::new(participant_id, name.unwrap_or_else(|| "Guest".into()), Role::Attendee), Some(token)))
            }
        }
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str) -> RoomRecord {
        RoomRecord {
            id: id.into(),
            name: id.into(),
            publish_token: "publish-secret".into(),
            host_token: "host-secret".into(),
            created_at: 0,
        }
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors_without_padding() {
        for (input, expected) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")]
        {
            assert_eq!(base64url(input.as_bytes()), expected);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_name_their_role_and_attendee_identities_come_back() {
        let ids = Identities::from_secret(b"0123456789abcdef0123456789abcdef");
        let (host, none) = ids.identify(&room("r1"), Some("host-secret"), None).unwrap();
        assert_eq!((host.role, host.participant_id.as_str(), none), (Role::Host, "host", None));
        let (presenter, _) = ids.identify(&room("r1"), Some("publish-secret"), Some("Ada L")).unwrap();
        assert_eq!((presenter.role, presenter.participant_id.as_str()), (Role::Presenter, "p-Ada_L"));

        let (guest, token) = ids.identify(&room("r1"), None, Some("Grace")).unwrap();
        assert_eq!((guest.role, guest.name.as_str()), (Role::Attendee, "Grace"));
        let token = token.unwrap();
        let (again, _) = ids.identify(&room("r1"), Some(&token), None).unwrap();
        assert_eq!(again.participant_id, guest.participant_id, "the same participant on reconnect");

        // Worthless in another room, forged or under another key.
        assert_eq!(ids.identify(&room("r2"), Some(&token), None), Err(IdentityError::BadToken));
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(ids.identify(&room("r1"), Some(&forged), None), Err(IdentityError::BadToken));
        let other = Identities::from_secret(b"another key, another server.....");
        assert_eq!(other.identify(&room("r1"), Some(&token), None), Err(IdentityError::BadToken));
        assert_eq!(ids.identify(&room("r1"), Some("nonsense"), None), Err(IdentityError::BadToken));
    }

    #[test]
    fn names_are_checked() {
        let ids = Identities::from_secret(b"k");
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(65)] {
            assert_eq!(ids.identify(&room("r"), None, Some(bad)).err(), Some(IdentityError::BadName), "{bad:?}");
        }
        assert!(ids.identify(&room("r"), None, Some(&"é".repeat(64))).is_ok());
    }
}
