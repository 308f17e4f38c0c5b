//! JWTs per RFC 8725: HS256 only (the algorithm is fixed, never read from the token), a 256-bit
//! secret from the replicated state, `iss`, `aud`, `exp`, `nbf` and `iat` checked, and access and
//! refresh tokens told apart by both the header `typ` and a `typ` claim.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AuthError;

pub const ISSUER: &str = "unmogrowp";
pub const AUDIENCE: &str = "unmogrowp-api";
/// Clock leeway for `exp`/`nbf`/`iat`, in seconds (the jsonwebtoken default).
pub const LEEWAY_SECS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    fn header_typ(self) -> &'static str {
        match self {
            TokenType::Access => "at+jwt",
            TokenType::Refresh => "rt+jwt",
        }
    }
}

/// The claims of both token types (the seed's `sub`, `email`, `roles`, `permissions`,
/// `app_access`, plus the registered claims).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub typ: TokenType,
    /// The session (refresh-token family).
    pub sid: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub app_access: Vec<String>,
}

/// Signing and verification keys derived from the cluster secret, plus the retired secrets
/// that still verify during their overlap window (the key is never chosen from the header:
/// the current key is tried first, then the retired ones).
#[derive(Clone)]
pub struct TokenKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    /// (key, accepted until, seconds since the epoch)
    retired: Vec<(DecodingKey, u64)>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// `secret` must be at least 32 bytes (RFC 8725 §3.5; TESTPLAN AUTH-07).
    pub fn new(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < 32 {
            return Err(AuthError::Token(
                "the signing secret must have at least 256 bits".into(),
            ));
        }
        Ok(Self {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            retired: Vec::new(),
        })
    }

    /// Also accept tokens signed with `secret` until `until_s` (seconds since the epoch).
    pub fn with_retired(mut self, secret: &[u8], until_s: u64) -> Self {
        self.retired
            .push((DecodingKey::from_secret(secret), until_s));
        self
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(claims.typ.header_typ().into());
        jsonwebtoken::encode(&header, claims, &self.enc)
            .map_err(|e| AuthError::Token(e.to_string()))
    }

    /// Verifies signature, algorithm, issuer, audience, times and type; `now` in seconds.
    pub fn verify(&self, token: &str, expected: TokenType, now: u64) -> Result<Claims, AuthError> {
        let bad = |m: &str| AuthError::Token(m.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(&e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(bad("unexpected algorithm"));
        }
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.kid.is_some()
        {
            return Err(bad("unexpected key reference in the header"));
        }
        if header.typ.as_deref() != Some(expected.header_typ()) {
            return Err(bad("wrong token type"));
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let mut result = jsonwebtoken::decode::<Claims>(token, &self.dec, &v);
        for (key, until) in &self.retired {
            let wrong_key = matches!(&result, Err(e)
                if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature);
            if !wrong_key {
                break;
            }
            if now < *until {
                result = jsonwebtoken::decode::<Claims>(token, key, &v);
            }
        }
        let data = result.map_err(|e| bad(&e.to_string()))?;
        let c = data.claims;
        if c.typ != expected {
            return Err(bad("wrong token type"));
        }
        if c.iat > now + LEEWAY_SECS {
            return Err(bad("token issued in the future"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(typ: TokenType, now: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "u1".into(),
            exp: now + 600,
            nbf: now,
            iat: now,
            jti: "j".into(),
            typ,
            sid: "s".into(),
            email: "a@b".into(),
            roles: vec!["user".into()],
            permissions: vec![],
            app_access: vec![],
        }
    }

    #[test]
    fn access_and_refresh_tokens_are_not_interchangeable() {
        let k = TokenKeys::new(&[7u8; 32]).expect("keys");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let a = k.sign(&claims(TokenType::Access, now)).expect("sign");
        let r = k.sign(&claims(TokenType::Refresh, now)).expect("sign");
        assert!(k.verify(&a, TokenType::Access, now).is_ok());
        assert!(k.verify(&r, TokenType::Access, now).is_err());
        assert!(k.verify(&a, TokenType::Refresh, now).is_err());
        let other = TokenKeys::new(&[8u8; 32]).expect("keys");
        assert!(other.verify(&a, TokenType::Access, now).is_err());
        // After a rotation the old key verifies only inside its overlap window.
        let overlap = TokenKeys::new(&[8u8; 32])
            .expect("keys")
            .with_retired(&[7u8; 32], now + 10);
        assert!(overlap.verify(&a, TokenType::Access, now).is_ok());
        assert!(overlap.verify(&a, TokenType::Access, now + 10).is_err());
        assert!(TokenKeys::new(&[1u8; 16]).is_err());
        let mut late = claims(TokenType::Access, now);
        late.exp = now - 120;
        assert!(k
            .verify(&k.sign(&late).expect("sign"), TokenType::Access, now)
            .is_err());
        let mut future = claims(TokenType::Access, now);
        future.iat = now + 3600;
        assert!(k
            .verify(&k.sign(&future).expect("sign"), TokenType::Access, now)
            .is_err());
    }
}
