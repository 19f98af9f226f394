//! Authentication: agent tokens and user sessions (both random 256-bit tokens stored as sha256),
//! argon2id password hashes, and the [`Principal`] extractor that every protected handler takes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::store::{Agent, User};

/// Name of the session cookie of the review UI.
pub const SESSION_COOKIE: &str = "baylens_session";
/// The session cookie's name over HTTPS: the `__Host-` prefix makes browsers refuse it unless
/// it is `Secure`, for the whole host and set by the host itself (no cookie planted by a sibling
/// subdomain).
pub const SECURE_SESSION_COOKIE: &str = "__Host-baylens_session";

/// The session cookie's name: [`SECURE_SESSION_COOKIE`] when cookies are `Secure`.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// A user's role; enforced on the server for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees its own bay's cases.
    Officer,
    /// Sees all bays, decides.
    Supervisor,
    /// Manages users and agents.
    Admin,
    /// Partner agency: read-only on shared cases.
    Agency,
    /// Prometheus scrapers: reads `/metrics`, nothing else.
    Metrics,
}

impl Role {
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "officer" => Some(Self::Officer),
            "supervisor" => Some(Self::Supervisor),
            "admin" => Some(Self::Admin),
            "agency" => Some(Self::Agency),
            "metrics" => Some(Self::Metrics),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Officer => "officer",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
            Self::Agency => "agency",
            Self::Metrics => "metrics",
        }
    }
}

/// A random token with a readable prefix (`bla_` agents, `bls_` sessions).
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Tokens are 256-bit random, so a plain sha256 is enough to make the stored value useless.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// argon2id hash of a password, PHC string.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a 16-byte salt")
        .to_string()
}

/// A hash to verify against when the user does not exist, so that a failed login takes as
/// long for an unknown user name as for a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("no such user"));
    &HASH
}

/// Checks a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Header that carries the CSRF token of cookie-authenticated requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token bound to a session: derived from the session token, so it needs no storage
/// and dies with the session.
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(&Sha256::digest(format!("baylens-csrf:{session_token}").as_bytes())[..16])
}

/// Compares secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// An edge agent (bearer `bla_...`).
    Agent(Agent),
    /// A user (bearer `bls_...` or the session cookie).
    User(User),
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The token a request authenticates with: the bearer token, else the session cookie.
pub fn request_token(headers: &axum::http::HeaderMap, secure: bool) -> Option<String> {
    bearer(headers)
        .map(str::to_owned)
        .or_else(|| session_cookie(headers, secure))
}

/// The session token from the `Cookie` header, if any (only under the name `secure` selects).
pub fn session_cookie(headers: &axum::http::HeaderMap, secure: bool) -> Option<String> {
    let wanted = session_cookie_name(secure);
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == wanted).then(|| value.to_owned())
        })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(&parts.headers) {
            if token.starts_with("bla_") {
                return state
                    .store
                    .agent_by_token(token)
                    .await?
                    .map(Principal::Agent)
                    .ok_or(ApiError::Unauthorized);
            }
            return state
                .store
                .user_by_session(token)
                .await?
                .map(Principal::User)
                .ok_or(ApiError::Unauthorized);
        }
        if let Some(token) = session_cookie(&parts.headers, state.settings.secure_cookies) {
            // A browser sends the cookie on its own, so state-changing requests authenticated
            // by it must also carry the page's CSRF token (which a foreign site cannot read).
            if !parts.method.is_safe() {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !constant_time_eq(sent.as_bytes(), csrf_token(&token).as_bytes()) {
                    return Err(ApiError::Forbidden(
                        "missing or wrong X-CSRF-Token for a cookie-authenticated request".into(),
                    ));
                }
            }
            return state
                .store
                .user_by_session(&token)
                .await?
                .map(Principal::User)
                .ok_or(ApiError::Unauthorized);
        }
        Err(ApiError::Unauthorized)
    }
}

impl Principal {
    /// The agent, or 403 for anyone else.
    pub fn agent(self) -> Result<Agent, ApiError> {
        match self {
            Principal::Agent(a) => Ok(a),
            Principal::User(_) => Err(ApiError::Forbidden("only edge agents may do this".into())),
        }
    }

    /// The user of any role (their own session and password), or 403 for an agent.
    pub fn any_user(self) -> Result<User, ApiError> {
        match self {
            Principal::User(u) => Ok(u),
            Principal::Agent(_) => Err(ApiError::Forbidden(
                "this needs a user, not an agent".into(),
            )),
        }
    }

    /// A user who works with cases: 403 for an agent and for the `metrics` role.
    pub fn user(self) -> Result<User, ApiError> {
        let user = self.any_user()?;
        if user.role == Role::Metrics {
            return Err(ApiError::Forbidden(
                "the metrics role reads /metrics only".into(),
            ));
        }
        Ok(user)
    }

    /// The user if their role is one of `roles`, else 403.
    pub fn user_with(self, roles: &[Role]) -> Result<User, ApiError> {
        let user = self.any_user()?;
        if roles.contains(&user.role) {
            Ok(user)
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not do this (needs {})",
                user.role.as_str(),
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

/// Writes a secret (token, key) to `path`, readable by its owner only (0600), also when the file
/// existed before with a looser mode. Before the write, so the secret is never readable by others.
pub fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path)?;
    // open() keeps an existing file's mode: force it.
    #[cfg(unix)]
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashes_hide_them() {
        let a = new_token("bla_");
        assert_ne!(a, new_token("bla_"));
        assert_eq!(a.len(), 4 + 64);
        assert!(!hash_token(&a).contains(&a[4..]));
    }
}
