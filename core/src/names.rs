//! Validation of queue and kind names: `^[a-z0-9][a-z0-9_.-]{0,62}$`.

/// The pattern queue and kind names must match, for messages and the OpenAPI document.
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_.-]{0,62}$";

/// Whether `name` is a valid queue or kind name.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= 63
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && rest.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::is_valid_name;

    #[test]
    fn accepts_names_matching_the_pattern() {
        for name in ["a", "0", "emails", "billing.v2", "a_b-c.d", &"x".repeat(63)] {
            assert!(is_valid_name(name), "{name:?} should be valid");
        }
    }

    #[test]
    fn rejects_names_outside_the_pattern() {
        for name in [
            "",
            "Emails",
            "_x",
            "-x",
            ".x",
            "a b",
            "a/b",
            "é",
            &"x".repeat(64),
        ] {
            assert!(!is_valid_name(name), "{name:?} should be invalid");
        }
    }
}
