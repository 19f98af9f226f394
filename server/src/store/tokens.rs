//! Live login sessions and API tokens, listed and revoked one by one by an admin. A token is
//! named by the first 12 hex digits of its sha256, as the audit log records it; the token
//! itself is never stored, so it cannot be shown.

use serde::Serialize;
use sqlx::Row;

use super::{Store, ms_to_rfc3339, now_ms};

/// Hex digits of a token's sha256 that name it.
pub const TOKEN_ID_LEN: usize = 12;

/// A live session or API token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    /// The first 12 hex digits of the token's sha256.
    pub id: String,
    /// Whose it is.
    pub username: String,
    /// `login` (a signed-in browser) or `api` (a long-lived token for scripts and scrapers).
    pub kind: String,
    /// Issued (RFC 3339).
    pub created_at: String,
    /// Stops working (RFC 3339).
    pub expires_at: String,
}

/// The outcome of revoking a token by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked: whose it was and its kind.
    Done {
        /// Its user.
        username: String,
        /// `login` or `api`.
        kind: String,
    },
    /// No live token has that id.
    NotFound,
    /// Several do (a 48-bit prefix practically never collides): nothing was revoked.
    Ambiguous,
}

/// Whether `id` has the form of a token id.
pub fn valid_token_id(id: &str) -> bool {
    id.len() == TOKEN_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    /// Live sessions and API tokens, newest first; only `username`'s when given.
    pub async fn list_tokens(&self, username: Option<&str>) -> Result<Vec<TokenInfo>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT s.token_hash, u.username, s.kind, s.created_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.expires_at > $1 AND ($2 = '' OR u.username = $2)
             ORDER BY s.created_at DESC, s.token_hash",
        )
        .bind(now_ms())
        .bind(username.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get::<String, _>(0)[..TOKEN_ID_LEN].to_owned(),
                username: r.get(1),
                kind: r.get(2),
                created_at: ms_to_rfc3339(r.get(3)),
                expires_at: ms_to_rfc3339(r.get(4)),
            })
            .collect())
    }

    /// Revokes the session or API token named `id`, at once. Audited as `token.revoke`.
    pub async fn revoke_token(&self, actor: &str, id: &str) -> Result<Revoked, sqlx::Error> {
        if !valid_token_id(id) {
            return Ok(Revoked::NotFound);
        }
        let (mut tx, _lock) = self.begin_audited().await?;
        let rows = sqlx::query(
            "SELECT s.token_hash, u.username, s.kind FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE substr(s.token_hash, 1, 12) = $1 AND s.expires_at > $2",
        )
        .bind(id)
        .bind(now_ms())
        .fetch_all(&mut *tx)
        .await?;
        let (hash, username, kind): (String, String, String) = match rows.as_slice() {
            [] => return Ok(Revoked::NotFound),
            [r] => (r.get(0), r.get(1), r.get(2)),
            _ => return Ok(Revoked::Ambiguous),
        };
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"token_sha256_prefix": id, "kind": kind});
        self.audit_in(
            &mut tx,
            actor,
            "token.revoke",
            &format!("user:{username}"),
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Revoked::Done { username, kind })
    }
}
