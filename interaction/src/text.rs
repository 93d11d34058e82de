//! Checks on the texts people type: trimmed, not empty, not too long (in characters).

use crate::error::{InteractionError, Result};

/// `text` trimmed, if it is not empty and has at most `max` characters (Unicode scalar values).
pub(crate) fn clean(field: &'static str, text: &str, max: usize) -> Result<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(InteractionError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(InteractionError::TooLong { field, len, max });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_counts_characters_not_bytes() {
        assert_eq!(clean("text", "  héllo \n", 5), Ok("héllo".to_owned()));
        assert_eq!(clean("text", "ééééé", 5).map(|s| s.len()), Ok(10));
        assert_eq!(clean("text", "éééééé", 5), Err(InteractionError::TooLong { field: "text", len: 6, max: 5 }));
        assert_eq!(clean("text", " \t\n ", 5), Err(InteractionError::Empty { field: "text" }));
    }
}
