//! Who is asking, in a room: roles and tokens (host, presenter, attendee).
//!
//! A request names itself with a bearer token (or `?token=` where a browser cannot set headers:
//! the WebSocket). Accepted, per room:
//! - the **admin token** (every room; acts as a host);
//! - the room's **keys**, made with the room: the host token (role host, participant `host`)
//!   and the publish token (role presenter, participant `p-<name>`);
//! - **signed tokens** ([`crate::tokens`], JWT HS256 under `<data_dir>/token_key`) that name the
//!   room, role, participant and display name: issued by `POST /api/rooms/{room}/tokens` (host or
//!   admin), and to every attendee who joins without one (`welcome` hands it out, so that the
//!   same participant comes back on reconnect and after a restart). A signed token is refused in
//!   another room, after it expires, and once revoked (`POST /api/rooms/{room}/tokens/revoke`:
//!   one token by its `jti`, or every token of a participant; kept in `<data_dir>/revoked.json`
//!   until the tokens it names expire). A registrant's token
//!   (`POST /api/rooms/{room}/registrations`) lasts until its event is over, which may be longer
//!   than `server.token_max_ttl_s` ([`Access::issue_until`]).
//!
//! Breakout rooms ([`crate::breakouts`]) take no anonymous caller; besides their own signed
//! tokens (each member's presenter token) they accept the admin, their main room's host key and
//! its signed host tokens (a host visits). A breakout room's token is refused everywhere else,
//! the main room included, with 403 ([`AccessError::BreakoutOnly`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use townhall_interaction::{Actor, Role};

use crate::http::auth::constant_time_eq;
use crate::rooms::{RoomRecord, random_token};
use crate::tokens::{Claims, ISSUER, TokenError, TokenKey};

/// Longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 64;
/// Longest participant id, in bytes.
pub const PARTICIPANT_MAX_LEN: usize = 64;
/// Longest life of a registrant's token ([`Access::issue_until`]): about 13 months, so that one
/// can register a year ahead. Revocations are kept this long too.
pub const EVENT_TOKEN_MAX_S: u64 = 400 * 86_400;

/// Why a token or name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("the token is not the admin token, a key of this room, nor a token signed by this server")]
    BadToken,
    #[error("the token was issued for another room")]
    OtherRoom,
    #[error("the token expired")]
    Expired,
    #[error("the token was revoked")]
    Revoked,
    #[error("name: 1 to 64 characters, no control characters")]
    BadName,
    #[error("participant_id: 1 to 64 of A-Z a-z 0-9 - _")]
    BadParticipant,
    #[error("a breakout room needs a token: one of its own, or a host's of its main room")]
    TokenRequired,
    #[error("the token was issued for a breakout room, and is valid there only")]
    BreakoutOnly,
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    /// The admin token: a host in every room.
    pub admin: bool,
    /// The signed token it came with (its `jti`), if any.
    pub token_id: Option<String>,
}

impl Caller {
    pub fn role(&self) -> Role {
        self.actor.role
    }
}

/// A revocation: one token, or every token of a participant, until `until` (Unix s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    pub until: u64,
}

/// The signing key, the revocations and the token lifetime.
pub struct Access {
    key: TokenKey,
    revoked: Mutex<Vec<Revocation>>,
    revoked_path: PathBuf,
    /// Longest lifetime of a signed token, and that of the ones attendees get on joining.
    pub max_ttl_s: u64,
}

pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A display name as given: trimmed, checked.
pub fn display_name(name: Option<&str>) -> Result<Option<String>, AccessError> {
    match name.map(str::trim) {
        None => Ok(None),
        Some(n) if n.is_empty() || n.chars().count() > NAME_MAX_CHARS || n.chars().any(char::is_control) => {
            Err(AccessError::BadName)
        }
        Some(n) => Ok(Some(n.to_owned())),
    }
}

fn valid_participant(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= PARTICIPANT_MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Access {
    /// Loads (or makes, on first start) `<data_dir>/token_key` and the revocations.
    pub fn open(data_dir: &Path, max_ttl_s: u64) -> anyhow::Result<Self> {
        let path = data_dir.join("token_key");
        let secret = match std::fs::read_to_string(&path) {
            Ok(secret) if secret.trim().len() >= 32 => secret.trim().to_owned(),
            Ok(_) => anyhow::bail!("{} is too short: delete it to have a new one made", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_token(48);
                write_atomically(&path, secret.as_bytes())?;
                secret
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let revoked_path = data_dir.join("revoked.json");
        let revoked: Vec<Revocation> = match std::fs::read(&revoked_path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", revoked_path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", revoked_path.display())),
        };
        Ok(Self { key: TokenKey::new(secret.as_bytes()), revoked: Mutex::new(revoked), revoked_path, max_ttl_s })
    }

    #[cfg(test)]
    fn in_memory(secret: &[u8]) -> Self {
        Self {
            key: TokenKey::new(secret),
            revoked: Mutex::default(),
            revoked_path: std::env::temp_dir().join(format!("townhall-revoked-{}.json", random_token(8))),
            max_ttl_s: 3_600,
        }
    }

    /// Signs a token for `participant` in `room`, valid for `ttl_s` (at most `max_ttl_s`).
    pub fn issue(
        &self,
        room: &str,
        role: Role,
        participant: &str,
        name: &str,
        ttl_s: u64,
        now_s: u64,
    ) -> (String, Claims) {
        self.sign(room, role, participant, name, now_s + ttl_s.clamp(1, self.max_ttl_s), now_s)
    }

    /// Signs a token that expires at `exp_s` (Unix s): a registrant's join link, which must last
    /// until its event is over however far ahead it was made. At most
    /// [`EVENT_TOKEN_MAX_S`] ahead (or `max_ttl_s`, if that is longer).
    pub fn issue_until(
        &self,
        room: &str,
        role: Role,
        participant: &str,
        name: &str,
        exp_s: u64,
        now_s: u64,
    ) -> (String, Claims) {
        let exp = exp_s.clamp(now_s + 1, now_s + self.longest_ttl_s());
        self.sign(room, role, participant, name, exp, now_s)
    }

    /// The longest any token signed here lives: how long a revocation must be kept.
    fn longest_ttl_s(&self) -> u64 {
        self.max_ttl_s.max(EVENT_TOKEN_MAX_S)
    }

    fn sign(&self, room: &str, role: Role, participant: &str, name: &str, exp: u64, now_s: u64) -> (String, Claims) {
        let claims = Claims {
            iss: ISSUER.into(),
            room: room.into(),
            role,
            sub: participant.into(),
            name: name.into(),
            iat: now_s,
            exp,
            jti: random_token(16),
        };
        (self.key.sign(&claims), claims)
    }

    /// Revokes one token (`jti`) or every token of a participant in `room`.
    pub fn revoke(&self, room: &str, jti: Option<&str>, participant: Option<&str>, now_s: u64) -> anyhow::Result<()> {
        self.revoke_all(room, &[(jti, participant)], now_s)
    }

    /// Revokes several tokens (`jti`) or participants of `room` at once, with one write (the
    /// tokens of a breakout room when it closes).
    pub fn revoke_all(&self, room: &str, which: &[(Option<&str>, Option<&str>)], now_s: u64) -> anyhow::Result<()> {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        // What has expired anyway needs no list.
        revoked.retain(|r| r.until > now_s);
        revoked.extend(which.iter().map(|(jti, participant)| Revocation {
            room: room.into(),
            jti: jti.map(str::to_owned),
            participant: participant.map(str::to_owned),
            until: now_s + self.longest_ttl_s(),
        }));
        let json = serde_json::to_vec_pretty(&*revoked)?;
        write_atomically(&self.revoked_path, &json)
    }

    fn is_revoked(&self, claims: &Claims) -> bool {
        self.is_revoked_token(&claims.room, &claims.jti, &claims.sub)
    }

    /// Whether the token `jti` of `participant` in `room` was revoked (by its id, or a ban).
    pub fn is_revoked_token(&self, room: &str, jti: &str, participant: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| r.room == room && (r.jti.as_deref() == Some(jti) || r.participant.as_deref() == Some(participant)))
    }

    /// Who `token` is in `room` (`None`: no token). `name` is the display name a room key or a
    /// new attendee asks for (a signed token carries its own).
    pub fn identify(
        &self,
        admin_token: &str,
        room: &RoomRecord,
        token: Option<&str>,
        name: Option<&str>,
        now_s: u64,
    ) -> Result<Option<Caller>, AccessError> {
        let name = display_name(name)?;
        let main_room = crate::breakouts::parent_of(&room.id);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return if main_room.is_some() { Err(AccessError::TokenRequired) } else { Ok(None) };
        };
        let caller = |actor, admin| Caller { actor, admin, token_id: None };
        if !admin_token.is_empty() && constant_time_eq(token, admin_token) {
            return Ok(Some(caller(Actor::new("admin", name.unwrap_or_else(|| "Admin".into()), Role::Host), true)));
        }
        if constant_time_eq(token, &room.host_token) {
            return Ok(Some(caller(Actor::new("host", name.unwrap_or_else(|| "Host".into()), Role::Host), false)));
        }
        if constant_time_eq(token, &room.publish_token) {
            let name = name.unwrap_or_else(|| "Presenter".into());
            let id: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
            return Ok(Some(caller(Actor::new(format!("p-{id}"), name, Role::Presenter), false)));
        }
        let claims = self.key.verify(token, now_s).map_err(|e| match e {
            TokenError::Expired => AccessError::Expired,
            _ => AccessError::BadToken,
        })?;
        let visiting_host = claims.role == Role::Host && main_room == Some(claims.room.as_str());
        if claims.room != room.id && !visiting_host {
            return Err(if crate::breakouts::parent_of(&claims.room).is_some() {
                AccessError::BreakoutOnly
            } else {
                AccessError::OtherRoom
            });
        }
        if self.is_revoked(&claims) {
            return Err(AccessError::Revoked);
        }
        Ok(Some(Caller {
            actor: Actor::new(claims.sub, claims.name, claims.role),
            admin: false,
            token_id: Some(claims.jti),
        }))
    }

    /// A new attendee of `room` who joined without a token: its identity and signed token.
    pub fn new_attendee(&self, room: &str, name: Option<&str>, now_s: u64) -> Result<(Caller, String), AccessError> {
        let name = display_name(name)?.unwrap_or_else(|| "Guest".into());
        let participant = format!("a-{}", random_token(16));
        let (token, claims) = self.issue(room, Role::Attendee, &participant, &name, self.max_ttl_s, now_s);
        Ok((
            Caller { actor: Actor::new(participant, name, Role::Attendee), admin: false, token_id: Some(claims.jti) },
            token,
        ))
    }

    /// Checks a participant id asked for in an issue request.
    pub fn participant_id(id: Option<&str>, role: Role) -> Result<String, AccessError> {
        match id {
            Some(id) if valid_participant(id) => Ok(id.to_owned()),
            Some(_) => Err(AccessError::BadParticipant),
            None => Ok(format!(
                "{}-{}",
                match role {
                    Role::Host => "h",
                    Role::Presenter => "p",
                    Role::Attendee => "a",
                },
                random_token(16)
            )),
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path))
        .with_context(|| format!("writing {}", path.display()))
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
            details: Default::default(),
        }
    }

    fn who(access: &Access, room_id: &str, token: &str) -> Result<Actor, AccessError> {
        access.identify("admin-secret", &room(room_id), Some(token), None, 1_000).map(|c| c.unwrap().actor)
    }

    #[test]
    fn keys_and_signed_tokens_name_their_role() {
        let access = Access::in_memory(b"0123456789abcdef0123456789abcdef");
        assert_eq!(who(&access, "r1", "admin-secret").unwrap().role, Role::Host);
        assert_eq!(who(&access, "r1", "host-secret").unwrap().participant_id, "host");
        let presenter =
            access.identify("a", &room("r1"), Some("publish-secret"), Some("Ada L"), 1_000).unwrap().unwrap();
        assert_eq!((presenter.role(), presenter.actor.participant_id.as_str()), (Role::Presenter, "p-Ada_L"));
        assert_eq!(access.identify("a", &room("r1"), None, None, 1_000), Ok(None));

        let (token, _) = access.issue("r1", Role::Presenter, "p-grace", "Grace", 600, 1_000);
        let grace = who(&access, "r1", &token).unwrap();
        assert_eq!(
            (grace.role, grace.participant_id.as_str(), grace.name.as_str()),
            (Role::Presenter, "p-grace", "Grace")
        );
        // Worthless in another room, after it expires, forged, or garbage.
        assert_eq!(who(&access, "r2", &token), Err(AccessError::OtherRoom));
        assert_eq!(access.identify("a", &room("r1"), Some(&token), None, 1_600), Err(AccessError::Expired));
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(who(&access, "r1", &forged), Err(AccessError::BadToken));
        assert_eq!(who(&access, "r1", "nonsense"), Err(AccessError::BadToken));
        let other_server = Access::in_memory(b"another key, another server.....");
        assert_eq!(who(&other_server, "r1", &token), Err(AccessError::BadToken));
    }

    #[test]
    fn revoked_tokens_and_participants_are_refused() {
        let access = Access::in_memory(b"k");
        let (first, claims) = access.issue("r1", Role::Attendee, "a-1", "One", 600, 1_000);
        let (second, _) = access.issue("r1", Role::Attendee, "a-1", "One", 600, 1_000);
        let (other, _) = access.issue("r1", Role::Attendee, "a-2", "Two", 600, 1_000);
        access.revoke("r1", Some(&claims.jti), None, 1_000).unwrap();
        assert_eq!(who(&access, "r1", &first), Err(AccessError::Revoked));
        assert!(who(&access, "r1", &second).is_ok(), "only that token");
        access.revoke("r1", None, Some("a-1"), 1_000).unwrap();
        assert_eq!(who(&access, "r1", &second), Err(AccessError::Revoked));
        assert!(who(&access, "r1", &other).is_ok());
        // A revocation in another room does not touch this one.
        let (third, _) = access.issue("r2", Role::Attendee, "a-3", "Three", 600, 1_000);
        access.revoke("r1", None, Some("a-3"), 1_000).unwrap();
        assert!(who(&access, "r2", &third).is_ok());
        let _ = std::fs::remove_file(&access.revoked_path);
    }

    #[test]
    fn breakout_rooms_take_their_own_tokens_and_the_main_rooms_hosts_only() {
        let access = Access::in_memory(b"k");
        let breakout = RoomRecord { id: "r1.run-1".into(), ..room("r1") };
        let in_breakout = |token: Option<&str>| {
            access.identify("admin-secret", &breakout, token, None, 1_000).map(|c| c.map(|c| c.actor.participant_id))
        };
        assert_eq!(in_breakout(None), Err(AccessError::TokenRequired));
        let (member, _) = access.issue("r1.run-1", Role::Presenter, "a-1", "One", 600, 1_000);
        assert_eq!(in_breakout(Some(&member)).unwrap().as_deref(), Some("a-1"));
        let (host, _) = access.issue("r1", Role::Host, "h-1", "Hanna", 600, 1_000);
        assert_eq!(in_breakout(Some(&host)).unwrap().as_deref(), Some("h-1"), "a host of the main room visits");
        assert_eq!(in_breakout(Some("admin-secret")).unwrap().as_deref(), Some("admin"));
        let (attendee, _) = access.issue("r1", Role::Attendee, "a-1", "One", 600, 1_000);
        assert_eq!(in_breakout(Some(&attendee)), Err(AccessError::OtherRoom), "the main room's attendee token");
        // The member's token is worth nothing in the main room or another breakout room.
        assert_eq!(who(&access, "r1", &member), Err(AccessError::BreakoutOnly));
        assert_eq!(who(&access, "r1.run-2", &member), Err(AccessError::BreakoutOnly));
        let (other_host, _) = access.issue("r2", Role::Host, "h-2", "Otto", 600, 1_000);
        assert_eq!(in_breakout(Some(&other_host)), Err(AccessError::OtherRoom));
        // The room closes: its members' tokens are revoked at once.
        let (second, claims) = access.issue("r1.run-1", Role::Presenter, "a-2", "Two", 600, 1_000);
        let first = access.key.verify(&member, 1_000).unwrap().jti;
        access.revoke_all("r1.run-1", &[(Some(&first), None), (Some(&claims.jti), None)], 1_000).unwrap();
        assert_eq!(in_breakout(Some(&member)), Err(AccessError::Revoked));
        assert_eq!(in_breakout(Some(&second)), Err(AccessError::Revoked));
        assert!(in_breakout(Some(&host)).is_ok(), "only the members' tokens");
        let _ = std::fs::remove_file(&access.revoked_path);
    }

    #[test]
    fn new_attendees_come_back_with_their_token_and_names_are_checked() {
        let access = Access::in_memory(b"k");
        let (guest, token) = access.new_attendee("r1", Some("Grace"), 1_000).unwrap();
        assert_eq!((guest.role(), guest.actor.name.as_str()), (Role::Attendee, "Grace"));
        assert_eq!(who(&access, "r1", &token).unwrap(), guest.actor);
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(65)] {
            assert_eq!(access.new_attendee("r1", Some(bad), 1_000).err(), Some(AccessError::BadName), "{bad:?}");
        }
        assert!(access.new_attendee("r1", Some(&"é".repeat(64)), 1_000).is_ok());
        assert_eq!(Access::participant_id(Some("a b"), Role::Attendee), Err(AccessError::BadParticipant));
        assert!(Access::participant_id(None, Role::Host).unwrap().starts_with("h-"));
    }
}
