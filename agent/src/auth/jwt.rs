//! RS256 JWTs checked against the operator's public key: signature, `exp` (with a minute of
//! leeway for clock skew), and `iss`/`aud` when configured. Scopes come from the `scope`
//! claim (OAuth 2 style, space-separated) or, as some identity providers issue them, an
//! array in `scope` or `scp`.

use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::{AuthConfigError, AuthError};

/// Seconds of clock skew tolerated on `exp`; the jsonwebtoken default, stated here so the
/// docs and the code agree.
pub const EXP_LEEWAY_SECS: u64 = 60;

/// Verifies tokens signed by the configured key.
pub(crate) struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// The claims the agent reads; everything else in the token is ignored.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<ScopeClaim>,
    #[serde(default)]
    scp: Option<ScopeClaim>,
    /// The Lucidworks customers the token acts for (a list, or space-separated).
    #[serde(default)]
    customers: Option<ScopeClaim>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    SpaceSeparated(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn into_scopes(self) -> Vec<String> {
        match self {
            ScopeClaim::SpaceSeparated(text) => {
                text.split_whitespace().map(str::to_owned).collect()
            }
            ScopeClaim::List(list) => list,
        }
    }
}

/// A token that passed verification.
pub(crate) struct VerifiedToken {
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    /// `customers` claim; absent, every customer.
    pub customers: Option<Vec<String>>,
}

impl JwtVerifier {
    /// Loads the PEM public key at `path`; `issuer` and `audience`, when given, become
    /// required claims.
    pub fn load(
        path: &Path,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, AuthConfigError> {
        let pem = std::fs::read(path).map_err(|source| AuthConfigError::ReadPublicKey {
            path: path.to_owned(),
            source,
        })?;
        let key =
            DecodingKey::from_rsa_pem(&pem).map_err(|err| AuthConfigError::InvalidPublicKey {
                path: path.to_owned(),
                reason: err.to_string(),
            })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = EXP_LEEWAY_SECS;
        let mut required = vec!["exp"];
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier { key, validation })
    }

    /// Checks signature and claims. Only an expired but otherwise valid token is
    /// `Expired`; every other failure is `Invalid` (the caller learns nothing about why a
    /// forged token failed).
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|err| {
                match err.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                }
            })?;
        let claims = data.claims;
        let scopes = claims
            .scope
            .or(claims.scp)
            .map(ScopeClaim::into_scopes)
            .unwrap_or_default();
        Ok(VerifiedToken {
            subject: claims.sub,
            scopes,
            customers: claims.customers.map(ScopeClaim::into_scopes),
        })
    }
}

/// A JWT has three dot-separated parts; static tokens are matched first, so this only
/// decides whether an unknown token is worth verifying as a JWT.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}
