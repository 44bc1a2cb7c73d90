//! API tokens: `tt_` followed by 256 random bits; only their SHA-256 is stored.

use crate::secret::random_hex;

pub const PREFIX: &str = "tt_";

/// A new token, to be shown once.
pub fn generate() -> String {
    format!("{PREFIX}{}", random_hex(32))
}

/// What the database keeps: the token's SHA-256, hex. Tokens carry 256 random
/// bits, so a fast hash is enough (no password stretching needed).
pub fn hash(token: &str) -> String {
    crate::secret::sha256_hex(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with("tt_") && a.len() == 3 + 64);
        assert_ne!(a, b);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a[3..]));
    }
}
