//! Access tokens: HS256 JWTs naming the user and the session family. Expiry is checked
//! against the injected clock, not the wall clock, so tests can age a token.

use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kernel::{SessionId, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "platform";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    sid: Uuid,
    iat: i64,
    exp: i64,
    iss: String,
}

/// What a valid access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub user: UserId,
    pub session: SessionId,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub(crate) struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { .. }")
    }
}

impl TokenSigner {
    pub(crate) fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }

    pub(crate) fn sign(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>)> {
        let expires_at = now + ttl;
        let claims = Claims {
            sub: user.as_uuid(),
            sid: session.as_uuid(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Hashing(format!("signing an access token: {e}")))?;
        Ok((token, expires_at))
    }

    pub(crate) fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the injected clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| Error::InvalidToken)?;
        if data.claims.exp <= now.timestamp() {
            return Err(Error::InvalidToken);
        }
        Ok(AccessClaims {
            user: UserId::from_uuid(data.claims.sub),
            session: SessionId::from_uuid(data.claims.sid),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> TokenSigner {
        TokenSigner::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_never_under_another_key() {
        let now = Utc::now();
        let (user, session) = (UserId::generate(), SessionId::generate());
        let (token, expires_at) = signer("k1")
            .sign(user, session, now, Duration::minutes(15))
            .unwrap();
        assert_eq!(expires_at, now + Duration::minutes(15));
        let claims = signer("k1").verify(&token, now).unwrap();
        assert_eq!(claims, AccessClaims { user, session });
        assert!(matches!(
            signer("k1").verify(&token, expires_at),
            Err(Error::InvalidToken)
        ));
        assert!(matches!(
            signer("k2").verify(&token, now),
            Err(Error::InvalidToken)
        ));
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 3, 'x');
        assert!(matches!(
            signer("k1").verify(&tampered, now),
            Err(Error::InvalidToken)
        ));
    }
}
