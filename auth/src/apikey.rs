//! API keys: `umgp_` + 32 random bytes (base64url). High-entropy secrets, so a plain SHA-256
//! is a sufficient stored form (a slow hash would only slow ingest down).

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "umgp_";

/// A fresh key: (the secret shown once, its hex SHA-256, its display prefix).
pub fn generate() -> (String, String, String) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = hash(&key);
    let prefix = key.chars().take(12).collect();
    (key, hash, prefix)
}

/// Hex SHA-256 of a presented key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_unique_and_hash_stably() {
        let (a, ha, pa) = super::generate();
        let (b, hb, _) = super::generate();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(super::hash(&a), ha);
        assert!(a.starts_with(&pa) && pa.len() == 12);
        assert_eq!(a.len(), 5 + 43);
    }
}
