//! API tokens: who may use the API, and for what. A token is shown once, when it is
//! made; only its SHA-256 hash is kept, and a presented token is checked against the
//! kept hashes in constant time.

use super::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token allows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reading only.
    Read,
    /// Everything, changes included.
    Admin,
}

impl Role {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`, if any.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Read, Role::Admin]
            .into_iter()
            .find(|role| role.as_str() == name)
    }
}

/// What every token starts with, so that one is recognised in a log or a leak scan.
pub const PREFIX: &str = "orch_";

/// A token's SHA-256 hash.
pub type TokenHash = [u8; 32];

/// A new token: its secret, shown once, and the hash that is kept.
#[derive(Clone)]
pub struct Secret {
    /// The token as clients send it.
    pub text: String,
    /// Its hash.
    pub hash: TokenHash,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random token (256 bits from the operating system's generator).
    ///
    /// # Errors
    /// The operating system gave no randomness.
    pub fn generate() -> Result<Secret, getrandom::Error> {
        let text = format!("{PREFIX}{}", random_hex()?);
        let hash = hash(&text);
        Ok(Secret { text, hash })
    }
}

/// 256 random bits in lowercase hex: a secret no one can guess.
///
/// # Errors
/// The operating system gave no randomness.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Longest token name.
pub const MAX_NAME_CHARS: usize = 64;

/// Checks a token name: 1 to [`MAX_NAME_CHARS`] characters of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// A message naming the name.
pub fn validate_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(format!(
            "token name `{}` is invalid: use 1 to {MAX_NAME_CHARS} characters of A-Z, a-z, 0-9, `.`, `_` and `-`",
            super::names::shown(name)
        ));
    }
    Ok(())
}

/// The name of a token made without one: its role and the start of its hash.
pub fn default_name(role: Role, secret: &Secret) -> String {
    format!("{}-{}", role.as_str(), hex(&secret.hash[..4]))
}

/// The hash of a presented token.
pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `presented` (a hash) is `kept`, compared in constant time.
pub fn matches(presented: &TokenHash, kept: &TokenHash) -> bool {
    presented.ct_eq(kept).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_kept_only_as_their_hash() {
        let one = Secret::generate().unwrap();
        let two = Secret::generate().unwrap();
        assert_ne!(one.text, two.text);
        assert!(one.text.starts_with(PREFIX) && one.text.len() == PREFIX.len() + 64);
        assert_eq!(one.hash, hash(&one.text));
        assert!(matches(&hash(&one.text), &one.hash));
        assert!(!matches(&hash(&two.text), &one.hash));
        assert!(!format!("{one:?}").contains(&one.text), "never logged");
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(validate_name("ci-bot_2.x").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let secret = Secret::generate().unwrap();
        let name = default_name(Role::Read, &secret);
        assert!(
            name.starts_with("read-") && validate_name(&name).is_ok(),
            "{name}"
        );
    }

    #[test]
    fn roles_round_trip_by_name() {
        for role in [Role::Read, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
