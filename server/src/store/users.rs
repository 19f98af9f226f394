//! Users, login sessions and API tokens, and edge agents.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, ms_to_rfc3339, now_ms};
use crate::auth::{Role, hash_password, hash_token, new_token};

/// How long a login session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A person with a role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Bay, for officers.
    pub bay: Option<String>,
}

/// An edge agent, as its token identifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The one bay it may report for.
    pub bay: String,
}

/// An agent as the admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentInfo {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Bay.
    pub bay: String,
    /// Registration time.
    pub created_at: String,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
    /// Last heartbeat or report.
    pub last_seen_at: Option<String>,
    /// Version from the last heartbeat.
    pub version: Option<String>,
    /// Models from the last heartbeat.
    pub models: serde_json::Value,
    /// Outbox depth from the last heartbeat.
    pub queue_depth: Option<i64>,
}

fn user_from_row(r: &AnyRow) -> Option<User> {
    Some(User {
        id: r.get(0),
        username: r.get(1),
        role: Role::parse(r.get::<&str, _>(2))?,
        bay: r.get(3),
    })
}

impl Store {
    /// Adds a user; returns its id. Audited.
    pub async fn add_user(
        &self,
        actor: &str,
        username: &str,
        password: &str,
        role: Role,
        bay: Option<&str>,
    ) -> Result<i64, sqlx::Error> {
        let hash = hash_password(password);
        let (mut tx, _lock) = self.begin_audited().await?;
        let row = sqlx::query(
            "INSERT INTO users (username, password_hash, role, bay, disabled, created_at)
             VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
        )
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(bay)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.get(0);
        self.audit_in(
            &mut tx,
            actor,
            "user.add",
            &format!("user:{username}"),
            &serde_json::json!({"role": role.as_str(), "bay": bay}),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a user's role (and bay). Audited. Ends the user's sessions, so the new role
    /// applies at once.
    pub async fn set_role(
        &self,
        actor: &str,
        username: &str,
        role: Role,
        bay: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let done = sqlx::query("UPDATE users SET role = $1, bay = $2 WHERE username = $3")
            .bind(role.as_str())
            .bind(bay)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let detail = serde_json::json!({"role": role.as_str(), "bay": bay});
        self.user_changed(tx, done, true, actor, username, "user.role", &detail)
            .await
    }

    /// Disables or enables a user; disabling ends their sessions and API tokens at once.
    /// Audited. Whether the user exists.
    pub async fn set_disabled(
        &self,
        actor: &str,
        username: &str,
        disabled: bool,
    ) -> Result<bool, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(i64::from(disabled))
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let detail = serde_json::json!({});
        self.user_changed(tx, done, disabled, actor, username, action, &detail)
            .await
    }

    /// Sets a user's password (an admin's reset, or the user's own change); ends the user's
    /// sessions and API tokens. Audited as `action`. Whether the user exists.
    pub async fn set_password(
        &self,
        actor: &str,
        username: &str,
        password: &str,
        action: &str,
    ) -> Result<bool, sqlx::Error> {
        let hash = hash_password(password);
        let (mut tx, _lock) = self.begin_audited().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let detail = serde_json::json!({});
        self.user_changed(tx, done, true, actor, username, action, &detail)
            .await
    }

    /// The end of every change to a user: if the user exists (`done`), their sessions end
    /// (when `end_sessions`) and the change is audited as `action`; then it commits.
    #[allow(clippy::too_many_arguments)]
    async fn user_changed(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        done: bool,
        end_sessions: bool,
        actor: &str,
        username: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<bool, sqlx::Error> {
        if done {
            if end_sessions {
                end_sessions_in(&mut tx, username).await?;
            }
            let subject = format!("user:{username}");
            self.audit_in(&mut tx, actor, action, &subject, detail)
                .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, username, role, bay FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().filter_map(user_from_row).collect())
    }

    /// The user with this name and its password hash.
    pub async fn user_by_name(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, username, role, bay, password_hash FROM users WHERE username = $1 AND disabled = 0",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| user_from_row(&r).map(|u| (u, r.get(4)))))
    }

    /// Starts a login session; returns the session token. Audited, and sessions and API
    /// tokens that have expired are purged on the way.
    pub async fn new_session(&self, user: &User) -> Result<String, sqlx::Error> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        let token = self
            .insert_session(user.id, "login", SESSION_HOURS * 3_600_000)
            .await?;
        let actor = format!("user:{}", user.username);
        let detail = serde_json::json!({"session_sha256_prefix": &hash_token(&token)[..12]});
        self.audit(&actor, "session.login", &actor, &detail).await?;
        Ok(token)
    }

    /// Issues a long-lived API token for a user (scripts, Prometheus). Audited.
    pub async fn new_api_token(
        &self,
        actor: &str,
        username: &str,
        days: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let Some((user, _)) = self.user_by_name(username).await? else {
            return Ok(None);
        };
        let token = self
            .insert_session(user.id, "api", days * 86_400_000)
            .await?;
        self.audit(
            actor,
            "token.issue",
            &format!("user:{username}"),
            &serde_json::json!({"days": days, "token_sha256_prefix": &hash_token(&token)[..12]}),
        )
        .await?;
        Ok(Some(token))
    }

    async fn insert_session(
        &self,
        user_id: i64,
        kind: &str,
        lifetime_ms: i64,
    ) -> Result<String, sqlx::Error> {
        let token = new_token("bls_");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_token(&token))
        .bind(user_id)
        .bind(kind)
        .bind(now)
        .bind(now + lifetime_ms)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The user of a live session or API token.
    pub async fn user_by_session(&self, token: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.bay FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(hash_token(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| user_from_row(&r)))
    }

    /// Ends a session or revokes an API token, at once. Audited.
    pub async fn end_session(&self, token: &str) -> Result<(), sqlx::Error> {
        let user = self.user_by_session(token).await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(hash_token(token))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if let Some(user) = user.filter(|_| ended > 0) {
            let actor = format!("user:{}", user.username);
            let detail = serde_json::json!({"session_sha256_prefix": &hash_token(token)[..12]});
            self.audit(&actor, "session.logout", &actor, &detail)
                .await?;
        }
        Ok(())
    }

    /// Registers an agent and returns its id and token; the token is not stored and cannot be
    /// shown again. Audited.
    pub async fn add_agent(
        &self,
        actor: &str,
        name: &str,
        bay: &str,
    ) -> Result<(i64, String), sqlx::Error> {
        let token = new_token("bla_");
        let (mut tx, _lock) = self.begin_audited().await?;
        let row = sqlx::query(
            "INSERT INTO agents (name, bay, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(bay)
        .bind(hash_token(&token))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        self.audit_in(
            &mut tx,
            actor,
            "agent.token.issue",
            &format!("agent:{name}"),
            &serde_json::json!({"bay": bay}),
        )
        .await?;
        tx.commit().await?;
        Ok((row.get(0), token))
    }

    /// Revokes an agent's token; it stops working with the next request. Audited.
    pub async fn revoke_agent(&self, actor: &str, name: &str) -> Result<bool, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let done =
            sqlx::query("UPDATE agents SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if done {
            self.audit_in(
                &mut tx,
                actor,
                "agent.token.revoke",
                &format!("agent:{name}"),
                &serde_json::json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The live (not revoked) agent holding this token.
    pub async fn agent_by_token(&self, token: &str) -> Result<Option<Agent>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, name, bay FROM agents WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Agent {
            id: r.get(0),
            name: r.get(1),
            bay: r.get(2),
        }))
    }

    /// Every bay an agent was ever registered for.
    pub async fn bays(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT DISTINCT bay FROM agents")
            .fetch_all(&self.pool)
            .await
    }

    /// Every agent, by name.
    pub async fn list_agents(&self) -> Result<Vec<AgentInfo>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, name, bay, created_at, revoked_at, last_seen_at, version, models_json, queue_depth
             FROM agents ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AgentInfo {
                id: r.get(0),
                name: r.get(1),
                bay: r.get(2),
                created_at: ms_to_rfc3339(r.get(3)),
                revoked_at: r.get::<Option<i64>, _>(4).map(ms_to_rfc3339),
                last_seen_at: r.get::<Option<i64>, _>(5).map(ms_to_rfc3339),
                version: r.get(6),
                models: r
                    .get::<Option<String>, _>(7)
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(serde_json::Value::Null),
                queue_depth: r.get(8),
            })
            .collect())
    }
}

/// Ends every session and API token of `username`, inside `tx`.
async fn end_sessions_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    username: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)")
        .bind(username)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
