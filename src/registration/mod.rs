//! Registration for a webinar (issue 6, "Registration"): what a room says about its event
//! ([`EventDetails`]: when, how long, what, and who may register), the checks of a registrant's
//! form, and the rules of admission and approval. Pure: no clock, no I/O; the store
//! ([`store`]) and the HTTP handlers (`crate::http::registrations`) are the shells, the
//! calendar file is [`ics`].
//!
//! Decided here:
//! - A registration is `pending` (rooms with `approval`) or `approved` (open rooms) when made;
//!   the host moves it to `approved` or `rejected`. Capacity counts pending and approved
//!   registrations; rejected ones free their place.
//! - One registration per e-mail address and room, compared case-insensitively (the whole
//!   address: `Ada@Example.org` and `ada@example.org` are the same registrant).
//! - E-mail addresses are checked for shape only (RFC 5321 lengths, one `@`, a dotted domain,
//!   no spaces or control characters); nothing is sent to them.
//! - Custom fields: every value is a string of at most 500 characters; a required field must be
//!   present and not blank; a field the room does not ask for is refused.

pub mod ics;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::display_name;
use crate::datetime::{format_rfc3339, parse_rfc3339};

/// `duration_min` when a room does not say.
pub const DEFAULT_DURATION_MIN: u32 = 60;
/// Longest event: a week.
pub const MAX_DURATION_MIN: u32 = 7 * 24 * 60;
/// Most custom fields a room may ask for.
pub const MAX_FIELDS: usize = 20;
/// Longest value of a custom field, in characters.
pub const FIELD_VALUE_MAX_CHARS: usize = 500;
/// Longest label of a custom field, in characters.
pub const FIELD_LABEL_MAX_CHARS: usize = 100;
/// Longest room description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 5_000;
/// Longest e-mail address (RFC 5321 §4.5.3.1.3 path, less the brackets).
pub const EMAIL_MAX_LEN: usize = 254;

/// What a room says about its event; stored in the room's record (flattened, so `rooms.json`
/// of earlier builds still loads: every field has a default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetails {
    /// When the event starts: RFC 3339, stored in UTC (`2026-12-01T15:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// How long it lasts, in minutes.
    #[serde(default = "default_duration")]
    pub duration_min: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub registration: RegistrationSettings,
}

fn default_duration() -> u32 {
    DEFAULT_DURATION_MIN
}

impl Default for EventDetails {
    fn default() -> Self {
        Self {
            starts_at: None,
            duration_min: DEFAULT_DURATION_MIN,
            description: None,
            registration: Default::default(),
        }
    }
}

/// Who may register, and what they are asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSettings {
    /// `false`: open (registrations are approved at once); `true`: the host approves each.
    #[serde(default)]
    pub approval: bool,
    /// Most pending and approved registrations; `null`: no limit.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Custom fields of the form, in order (also the CSV's extra columns).
    #[serde(default)]
    pub fields: Vec<CustomField>,
}

/// One custom field of the registration form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomField {
    /// Its key in a registration's `fields`: 1 to 32 of `a-z 0-9 _`, starting with a letter.
    pub name: String,
    /// What the form shows; the name when absent.
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub required: bool,
}

impl EventDetails {
    /// Unix seconds of `starts_at`.
    pub fn starts_at_s(&self) -> Option<i64> {
        self.starts_at.as_deref().and_then(parse_rfc3339)
    }

    /// Unix seconds of the end: `starts_at` + `duration_min`.
    pub fn ends_at_s(&self) -> Option<i64> {
        self.starts_at_s().map(|s| s + i64::from(self.duration_min) * 60)
    }

    /// Checks what a client asked for and puts it in stored form (`starts_at` in UTC, labels
    /// filled in).
    pub fn validated(mut self) -> Result<Self, RegistrationError> {
        let invalid = |detail: String| Err(RegistrationError::InvalidSettings(detail));
        if let Some(text) = &self.starts_at {
            let Some(at) = parse_rfc3339(text) else {
                return invalid(format!(
                    "starts_at {text:?} is not an RFC 3339 date-time such as \"2026-12-01T15:00:00Z\""
                ));
            };
            self.starts_at = Some(format_rfc3339(at));
        }
        if !(1..=MAX_DURATION_MIN).contains(&self.duration_min) {
            return invalid(format!("duration_min must be between 1 and {MAX_DURATION_MIN}"));
        }
        if let Some(d) = &self.description
            && (d.chars().count() > DESCRIPTION_MAX_CHARS || d.chars().any(|c| c.is_control() && c != '\n'))
        {
            return invalid(format!(
                "description: at most {DESCRIPTION_MAX_CHARS} characters, no control characters but newlines"
            ));
        }
        let settings = &mut self.registration;
        if settings.capacity == Some(0) {
            return invalid("registration.capacity must be at least 1 (or null: no limit)".into());
        }
        if settings.fields.len() > MAX_FIELDS {
            return invalid(format!("registration.fields: at most {MAX_FIELDS}"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for field in &mut settings.fields {
            let name_ok = (1..=32).contains(&field.name.len())
                && field.name.starts_with(|c: char| c.is_ascii_lowercase())
                && field.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok || matches!(field.name.as_str(), "name" | "email") {
                return invalid(format!(
                    "registration.fields: name {:?} must be 1 to 32 of a-z 0-9 _, start with a letter, and not be name or email",
                    field.name
                ));
            }
            if !seen.insert(field.name.clone()) {
                return invalid(format!("registration.fields: {:?} is listed twice", field.name));
            }
            let label = field.label.trim();
            if label.chars().count() > FIELD_LABEL_MAX_CHARS || label.chars().any(char::is_control) {
                return invalid(format!(
                    "registration.fields: label of {:?}: at most {FIELD_LABEL_MAX_CHARS} characters",
                    field.name
                ));
            }
            field.label = if label.is_empty() { field.name.clone() } else { label.to_owned() };
        }
        Ok(self)
    }
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Pending,
    Approved,
    Rejected,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }

    /// Whether it takes a place (capacity).
    pub fn is_active(self) -> bool {
        self != Self::Rejected
    }
}

/// One registrant of one room, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// 32 random characters: the capability of its calendar file.
    pub id: String,
    pub room: String,
    /// The participant id its token names (`r-` and 16 random characters).
    pub participant: String,
    pub name: String,
    pub email: String,
    pub fields: BTreeMap<String, String>,
    pub status: RegistrationStatus,
    /// Unix seconds.
    pub registered_at: i64,
    /// The signed attendee token of its join link.
    pub token: String,
}

/// The body of `POST /api/rooms/{room}/registrations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationForm {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub fields: serde_json::Map<String, Value>,
}

/// A form that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrant {
    pub name: String,
    pub email: String,
    pub fields: BTreeMap<String, String>,
}

/// Why a registration (or a room's settings) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("name: 1 to 64 characters, no control characters")]
    BadName,
    #[error("email {0:?} is not an e-mail address (one @, a dotted domain, no spaces, at most 254 characters)")]
    InvalidEmail(String),
    #[error("the field {0:?} is required")]
    MissingField(String),
    #[error("this room's registration has no field {0:?}")]
    UnknownField(String),
    #[error("the field {0:?} must be a string of at most 500 characters without control characters")]
    BadField(String),
    #[error("the room is full: {0} registrations")]
    Full(u32),
    #[error("this e-mail address is already registered for the room")]
    AlreadyRegistered,
    #[error("{0}")]
    InvalidSettings(String),
    #[error("no registration {0:?} in this room")]
    Unknown(String),
    #[error("registrations: {0}")]
    Storage(String),
}

impl RegistrationError {
    /// The problem's stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadName => "bad_name",
            Self::InvalidEmail(_) => "invalid_email",
            Self::MissingField(_) => "missing_field",
            Self::UnknownField(_) => "unknown_field",
            Self::BadField(_) => "bad_field",
            Self::Full(_) => "registration_full",
            Self::AlreadyRegistered => "already_registered",
            Self::InvalidSettings(_) => "invalid_registration",
            Self::Unknown(_) => "unknown_registration",
            Self::Storage(_) => "storage",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Full(_) | Self::AlreadyRegistered => 409,
            Self::Unknown(_) => 404,
            Self::Storage(_) => 500,
            _ => 400,
        }
    }
}

impl From<rusqlite::Error> for RegistrationError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Storage(err.to_string())
    }
}

/// Whether `email` has the shape of an address (see the module doc).
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= EMAIL_MAX_LEN
        && (1..=64).contains(&local.len())
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';'))
}

/// Checks a form against the room's settings.
pub fn check_form(form: RegistrationForm, settings: &RegistrationSettings) -> Result<Registrant, RegistrationError> {
    let name = display_name(Some(&form.name)).map_err(|_| RegistrationError::BadName)?.unwrap_or_default();
    let email = form.email.trim().to_owned();
    if !is_email(&email) {
        return Err(RegistrationError::InvalidEmail(form.email));
    }
    if let Some(unknown) = form.fields.keys().find(|k| !settings.fields.iter().any(|f| f.name == **k)) {
        return Err(RegistrationError::UnknownField(unknown.clone()));
    }
    let mut fields = BTreeMap::new();
    for field in &settings.fields {
        let value = match form.fields.get(&field.name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text))
                if text.chars().count() <= FIELD_VALUE_MAX_CHARS
                    && !text.chars().any(|c| c.is_control() && c != '\n') =>
            {
                text.trim().to_owned()
            }
            Some(_) => return Err(RegistrationError::BadField(field.name.clone())),
        };
        if value.is_empty() {
            if field.required {
                return Err(RegistrationError::MissingField(field.name.clone()));
            }
            continue;
        }
        fields.insert(field.name.clone(), value);
    }
    Ok(Registrant { name, email, fields })
}

/// The key two addresses are the same registrant by.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The status of a new registration, given how many places are taken (`active`: pending and
/// approved).
pub fn admit(settings: &RegistrationSettings, active: u64) -> Result<RegistrationStatus, RegistrationError> {
    if let Some(capacity) = settings.capacity
        && active >= u64::from(capacity)
    {
        return Err(RegistrationError::Full(capacity));
    }
    Ok(if settings.approval { RegistrationStatus::Pending } else { RegistrationStatus::Approved })
}

/// Whether the host may move a registration from `from` to `to` (`active`: places taken, this
/// one included when it is active). Approving a rejected registration needs a free place.
pub fn may_move(
    from: RegistrationStatus,
    to: RegistrationStatus,
    settings: &RegistrationSettings,
    active: u64,
) -> Result<(), RegistrationError> {
    if from == RegistrationStatus::Rejected
        && to.is_active()
        && let Some(capacity) = settings.capacity
        && active >= u64::from(capacity)
    {
        return Err(RegistrationError::Full(capacity));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> RegistrationSettings {
        RegistrationSettings {
            approval: false,
            capacity: Some(2),
            fields: vec![
                CustomField { name: "company".into(), label: "Company".into(), required: true },
                CustomField { name: "role".into(), label: String::new(), required: false },
            ],
        }
    }

    fn form(value: Value) -> RegistrationForm {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn forms_are_checked_against_the_rooms_fields() {
        let s = settings();
        let ok =
            check_form(form(json!({"name": " Ada ", "email": "Ada@Example.org", "fields": {"company": "ACME"}})), &s)
                .unwrap();
        assert_eq!(ok.name, "Ada");
        assert_eq!(ok.fields, BTreeMap::from([("company".to_owned(), "ACME".to_owned())]));
        let err = |v: Value| check_form(form(v), &s).unwrap_err().code();
        assert_eq!(err(json!({"name": "", "email": "a@b.c", "fields": {"company": "x"}})), "bad_name");
        for bad in ["", "ada", "a@b", "a b@c.d", "a@b..c", "a@.b.c", "@b.c", "a@b@c.d", "<a@b.c>"] {
            assert_eq!(err(json!({"name": "A", "email": bad, "fields": {"company": "x"}})), "invalid_email", "{bad}");
        }
        assert_eq!(err(json!({"name": "A", "email": "a@b.c"})), "missing_field");
        assert_eq!(err(json!({"name": "A", "email": "a@b.c", "fields": {"company": "  "}})), "missing_field");
        assert_eq!(
            err(json!({"name": "A", "email": "a@b.c", "fields": {"company": "x", "age": "3"}})),
            "unknown_field"
        );
        assert_eq!(err(json!({"name": "A", "email": "a@b.c", "fields": {"company": 7}})), "bad_field");
        let long = "x".repeat(501);
        assert_eq!(err(json!({"name": "A", "email": "a@b.c", "fields": {"company": long}})), "bad_field");
        assert!(serde_json::from_value::<RegistrationForm>(json!({"name": "A", "email": "a@b.c", "x": 1})).is_err());
        assert_eq!(email_key(" Ada@Example.ORG "), "ada@example.org");
    }

    #[test]
    fn capacity_counts_pending_and_approved_and_approval_makes_pending() {
        let mut s = settings();
        assert_eq!(admit(&s, 0), Ok(RegistrationStatus::Approved));
        assert_eq!(admit(&s, 2), Err(RegistrationError::Full(2)));
        s.approval = true;
        assert_eq!(admit(&s, 1), Ok(RegistrationStatus::Pending));
        s.capacity = None;
        assert_eq!(admit(&s, 1_000_000), Ok(RegistrationStatus::Pending));
        s.capacity = Some(2);
        use RegistrationStatus::*;
        assert_eq!(may_move(Rejected, Approved, &s, 2), Err(RegistrationError::Full(2)));
        assert_eq!(may_move(Rejected, Approved, &s, 1), Ok(()));
        assert_eq!(may_move(Pending, Approved, &s, 2), Ok(()), "it already holds its place");
        assert_eq!(may_move(Approved, Rejected, &s, 2), Ok(()));
    }

    #[test]
    fn settings_are_checked_and_normalized() {
        let details = EventDetails {
            starts_at: Some("2026-12-01T16:00:00+01:00".into()),
            registration: settings(),
            ..Default::default()
        };
        let ok = details.clone().validated().unwrap();
        assert_eq!(ok.starts_at.as_deref(), Some("2026-12-01T15:00:00Z"));
        assert_eq!(ok.registration.fields[1].label, "role");
        assert_eq!(ok.ends_at_s(), Some(1_796_137_200 + 3_600));
        let bad = |f: fn(&mut EventDetails)| {
            let mut d = details.clone();
            f(&mut d);
            d.validated().unwrap_err().code()
        };
        assert_eq!(bad(|d| d.starts_at = Some("tomorrow".into())), "invalid_registration");
        assert_eq!(bad(|d| d.duration_min = 0), "invalid_registration");
        assert_eq!(bad(|d| d.registration.capacity = Some(0)), "invalid_registration");
        assert_eq!(bad(|d| d.registration.fields[0].name = "Company".into()), "invalid_registration");
        assert_eq!(bad(|d| d.registration.fields[1].name = "company".into()), "invalid_registration");
        assert_eq!(bad(|d| d.registration.fields[0].name = "email".into()), "invalid_registration");
        // Rooms stored before these fields existed read as the defaults.
        let old: EventDetails = serde_json::from_str("{}").unwrap();
        assert_eq!(old, EventDetails::default());
    }
}
