//! Login throttling counts, kept in the database so that every replica sees them: attempts per
//! key (a hashed user name, or a source address) within a window. An attempt is counted before
//! the password is checked, in one atomic statement, so parallel guesses cannot slip past the
//! limit between a check and a count.

use sqlx::Row;

use super::{Store, now_ms};

impl Store {
    /// Counts one attempt under `key`; returns the seconds to wait if that makes more than
    /// `limit` within `window_ms` (the attempt is refused, not checked).
    pub async fn take_login_attempt(
        &self,
        key: &str,
        limit: u32,
        window_ms: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO login_attempts (key, count, window_start) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN login_attempts.window_start <= $3 THEN 1
                            ELSE login_attempts.count + 1 END,
               window_start = CASE WHEN login_attempts.window_start <= $3 THEN $2
                                   ELSE login_attempts.window_start END
             RETURNING count, window_start",
        )
        .bind(key)
        .bind(now)
        .bind(now - window_ms)
        .fetch_one(&self.pool)
        .await?;
        let (count, start): (i64, i64) = (row.get(0), row.get(1));
        if rand::random::<u8>() == 0 {
            // Now and then, forget windows long past.
            sqlx::query("DELETE FROM login_attempts WHERE window_start <= $1")
                .bind(now - window_ms)
                .execute(&self.pool)
                .await?;
        }
        Ok((count > i64::from(limit)).then(|| {
            let left = (start + window_ms - now).max(1_000);
            (left as u64).div_ceil(1_000)
        }))
    }

    /// Forgets the attempts under `key` (a user who signed in).
    pub async fn clear_login_attempts(&self, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_attempts WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes back one attempt under `key` (a sign-in that succeeded does not count against its
    /// address).
    pub async fn return_login_attempt(&self, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE login_attempts SET count = count - 1 WHERE key = $1 AND count > 0")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
