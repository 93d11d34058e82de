//! Bearer tokens (RFC 6750 §2.1): the admin token, each room's keys (host and publish
//! tokens) and signed tokens ([`crate::access`]). Compared in constant time. A missing or
//! invalid token is 401; a valid one whose role may not do the thing is 403 `forbidden`; the
//! token of a registrant the host rejected is 403 `registration_rejected`.

use axum::http::{HeaderMap, StatusCode, header};
use townhall_interaction::Role;

use super::SharedState;
use super::problem::Problem;
use crate::access::{AccessError, Caller, unix_now_s};
use crate::registration::RegistrationStatus;
use crate::rooms::Room;

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Requires a bearer token equal to one of `accepted`; `what` names it in the error.
pub fn require(headers: &HeaderMap, accepted: &[&str], what: &str) -> Result<(), Problem> {
    let Some(token) = bearer(headers) else {
        return Err(Problem::unauthorized(format!("missing bearer token: send \"Authorization: Bearer <{what}>\"")));
    };
    if accepted.iter().any(|a| !a.is_empty() && constant_time_eq(token, a)) {
        Ok(())
    } else {
        Err(Problem::unauthorized(format!("the bearer token is not a valid {what}")))
    }
}

impl From<AccessError> for Problem {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::BadName | AccessError::BadParticipant => {
                let code = if err == AccessError::BadName { "bad_name" } else { "bad_participant" };
                Problem::bad_request(code, err.to_string())
            }
            AccessError::BreakoutOnly => Problem::new(StatusCode::FORBIDDEN, "breakout_only", err.to_string()),
            AccessError::BadToken
            | AccessError::OtherRoom
            | AccessError::Expired
            | AccessError::Revoked
            | AccessError::TokenRequired => {
                // Why the token was refused, for clients (a ban is not a stale identity).
                let reason = match err {
                    AccessError::OtherRoom => "other_room",
                    AccessError::Expired => "expired",
                    AccessError::Revoked => "revoked",
                    AccessError::TokenRequired => "token_required",
                    _ => "bad_token",
                };
                Problem::unauthorized(err.to_string()).with_reason(reason)
            }
        }
    }
}

/// Who a request is, in `room`, from its bearer token (or `token`, for clients that cannot
/// set headers); `None` without a token.
pub fn caller(
    state: &SharedState,
    room: &Room,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Option<Caller>, Problem> {
    let token = token.or_else(|| bearer(headers));
    let caller = state.access.identify(&state.admin_token, &room.record, token, None, unix_now_s())?;
    if let Some(caller) = &caller {
        refuse_rejected(state, room, &caller.actor.participant_id)?;
    }
    Ok(caller)
}

/// A registrant the host rejected may do nothing in the room: 403 `registration_rejected`.
pub fn refuse_rejected(state: &SharedState, room: &Room, participant: &str) -> Result<(), Problem> {
    if state.registrations.status(&room.record.id, participant) == Some(RegistrationStatus::Rejected) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "registration_rejected",
            "the host rejected this registration",
        ));
    }
    Ok(())
}

/// Requires a caller whose role is one of `roles`.
fn require_role(
    state: &SharedState,
    room: &Room,
    headers: &HeaderMap,
    roles: &[Role],
    what: &str,
) -> Result<Caller, Problem> {
    let Some(caller) = caller(state, room, headers, None)? else {
        return Err(Problem::unauthorized(format!("missing bearer token: send \"Authorization: Bearer <{what}>\"")));
    };
    if !roles.contains(&caller.role()) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a {:?} token may not do this: it needs a {what}", caller.role()).to_lowercase(),
        ));
    }
    Ok(caller)
}

/// The admin, the room's host key, or a host's signed token.
pub fn require_host(state: &SharedState, room: &Room, headers: &HeaderMap) -> Result<Caller, Problem> {
    require_role(state, room, headers, &[Role::Host], "host token")
}

/// Who may publish on the stage: hosts and presenters.
pub fn require_publisher(state: &SharedState, room: &Room, headers: &HeaderMap) -> Result<Caller, Problem> {
    require_role(state, room, headers, &[Role::Host, Role::Presenter], "publish token of this room")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_bearer_tokens() {
        let mut h = HeaderMap::new();
        assert!(require(&h, &["abc"], "admin token").is_err());
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert!(require(&h, &["abc"], "admin token").is_ok());
        assert!(require(&h, &["abd"], "admin token").is_err());
        assert!(require(&h, &[""], "admin token").is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(require(&h, &["abc"], "admin token").is_err());
    }
}
