//! The review queue: cases a user may see, filtered and sorted.

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::Row;

use super::cases::{CaseSummary, SUMMARY_COLUMNS, summary_from_row};
use super::{Store, User};
use crate::auth::Role;

/// Sort orders of the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSort {
    /// Highest risk first (default).
    #[default]
    Risk,
    /// Newest scan first.
    Newest,
    /// Oldest scan first.
    Oldest,
}

/// Case list filters; all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFilter {
    /// Only this bay.
    pub bay: Option<String>,
    /// Only this lane.
    pub lane: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Captured at or after (RFC 3339).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Captured before (RFC 3339).
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Container code, or its beginning.
    pub container: Option<String>,
    /// Order.
    #[serde(default)]
    pub sort: CaseSort,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The smallest string of `0-9A-Z` greater than every string that starts with `prefix` (in
/// byte order, and in any collation that orders digits before letters), or `None` when
/// `prefix` is all `Z` (or empty).
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '0'..='8' | 'A'..='Y' => Some(char::from(last as u8 + 1)),
            '9' => Some('A'),
            _ => None,
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Store {
    /// Cases `user` may see, filtered and sorted.
    pub async fn list_cases(
        &self,
        user: &User,
        filter: &CaseFilter,
    ) -> Result<Vec<CaseSummary>, sqlx::Error> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |clause: &str, value: Bind| {
            binds.push(value);
            clauses.push(clause.replace("$?", &format!("${}", binds.len())));
        };
        match user.role {
            Role::Supervisor | Role::Admin => {}
            Role::Officer => push(
                "c.bay = $?",
                Bind::Text(user.bay.clone().unwrap_or_default()),
            ),
            Role::Agency => push(
                "EXISTS (SELECT 1 FROM case_shares s WHERE s.case_id = c.id AND s.user_id = $?)",
                Bind::Int(user.id),
            ),
            // Scrapers see no case (the routes refuse them before this).
            Role::Metrics => push("c.id = $?", Bind::Int(-1)),
        }
        if let Some(bay) = &filter.bay {
            push("c.bay = $?", Bind::Text(bay.clone()));
        }
        if let Some(lane) = &filter.lane {
            push("c.lane = $?", Bind::Text(lane.clone()));
        }
        if let Some(status) = &filter.status {
            push("c.status = $?", Bind::Text(status.clone()));
        }
        if let Some(from) = filter.from {
            push("c.captured_at >= $?", Bind::Int(from.timestamp_millis()));
        }
        if let Some(to) = filter.to {
            push("c.captured_at < $?", Bind::Int(to.timestamp_millis()));
        }
        if let Some(container) = &filter.container {
            let prefix: String = container
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            // A range rather than LIKE, so the container index serves it (SQLite's LIKE is
            // case-insensitive and cannot use a plain index).
            push("c.container_code >= $?", Bind::Text(prefix.clone()));
            if let Some(next) = prefix_successor(&prefix) {
                push("c.container_code < $?", Bind::Text(next));
            }
        }
        let order = match filter.sort {
            CaseSort::Risk => "c.risk DESC, c.captured_at DESC, c.id DESC",
            CaseSort::Newest => "c.captured_at DESC, c.id DESC",
            CaseSort::Oldest => "c.captured_at ASC, c.id ASC",
        };
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let n = binds.len();
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM cases c LEFT JOIN users u ON u.id = c.assigned_to
             {where_sql} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q
            .bind(filter.limit.unwrap_or(100).clamp(1, 500))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(summary_from_row).collect())
    }
}

impl Store {
    /// The model release (sha256) and finding kinds (each once, sorted) of the cases among
    /// `ids` that have findings.
    pub async fn case_findings(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, (String, Vec<String>)>, sqlx::Error> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let list = super::id_list(chunk);
            let rows = sqlx::query(&format!(
                "SELECT id, model_sha256, report_json FROM cases
                 WHERE id IN ({list}) AND findings_count > 0"
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let report: serde_json::Value =
                    serde_json::from_str(r.get::<&str, _>(2)).unwrap_or_default();
                let mut kinds: Vec<String> = report["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["kind"].as_str().map(str::to_owned))
                    .collect();
                kinds.sort();
                kinds.dedup();
                out.insert(r.get(0), (r.get(1), kinds));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn the_successor_bounds_every_code_with_the_prefix() {
        assert_eq!(prefix_successor("MSCU0042").as_deref(), Some("MSCU0043"));
        assert_eq!(prefix_successor("MSCU9").as_deref(), Some("MSCUA"));
        assert_eq!(prefix_successor("MSZZ").as_deref(), Some("MT"));
        assert_eq!(prefix_successor("ZZ"), None);
        let p = "MSCU0042";
        let next = prefix_successor(p).unwrap();
        for code in ["MSCU0042", "MSCU00420000", "MSCU0042ZZZZ", "MSCU00429999"] {
            assert!(code >= p && code < next.as_str(), "{code}");
        }
        assert!("MSCU0043" >= next.as_str() && "MSCU0041Z" < p);
    }
}
