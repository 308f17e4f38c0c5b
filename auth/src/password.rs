//! argon2id password hashing (m = 19 MiB, t = 2, p = 1: the OWASP minimum). Each hash takes
//! tens of milliseconds of one core and 19 MiB of memory; callers bound how many run at once.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::AuthError;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn argon2() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| AuthError::Password(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with a fresh 16-byte salt into a PHC string.
pub fn hash(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Password(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed hash).
pub fn verify(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Password rules for new passwords.
pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 10 {
        return Err("the password must have at least 10 characters".into());
    }
    if n > 256 {
        return Err("the password must have at most 256 characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_argon2id_with_the_required_parameters_and_unique_salts() {
        let a = super::hash("correct horse battery").expect("hash");
        let b = super::hash("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(super::verify(&a, "correct horse battery"));
        assert!(!super::verify(&a, "correct horse batterY"));
        assert!(!super::verify("not a hash", "x"));
    }
}
