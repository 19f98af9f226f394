//! Identifiers used as file names, database keys and URL segments.
//!
//! They are restricted to `[A-Za-z0-9._-]`, 1 to 64 characters, and may not start with a dot, so
//! that an id from the outside world can never name a path outside its folder (`../`, `/etc`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ProtocolError;

const MAX_ID_LEN: usize = 64;

fn check_id(kind: &'static str, s: &str) -> Result<(), ProtocolError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(ProtocolError::invalid(
            kind,
            format!("must be 1 to {MAX_ID_LEN} characters, got {}", s.len()),
        ));
    }
    if s.starts_with('.') {
        return Err(ProtocolError::invalid(kind, "must not start with '.'"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(ProtocolError::invalid(
            kind,
            format!("character {bad:?} is not allowed; use letters, digits, '.', '_' or '-'"),
        ));
    }
    Ok(())
}

macro_rules! safe_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id.
            pub fn parse(s: &str) -> Result<Self, ProtocolError> {
                check_id($kind, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as a string; safe to use as a file name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ProtocolError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

safe_id!(
    /// One scan, unique across the whole system: it starts with its bay and a `-`
    /// ([`ScanId::is_of_bay`]).
    ScanId,
    "scan_id"
);
impl ScanId {
    /// Whether the id is one of `bay`'s: it starts with the bay and a `-` (`BAY01-000777` is
    /// BAY01's). The server binds each scan to its bay this way, so that no other bay can file
    /// a report under it first.
    pub fn is_of_bay(&self, bay: &str) -> bool {
        self.0.len() > bay.len() + 1
            && self.0.starts_with(bay)
            && self.0.as_bytes()[bay.len()] == b'-'
    }

    /// The bay among `bays` whose scan this is: the longest that [`ScanId::is_of_bay`] accepts
    /// (`BAY01-A-7` is BAY01-A's, not BAY01's, when both exist).
    pub fn owner<'a>(&self, bays: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        bays.into_iter()
            .filter(|b| self.is_of_bay(b))
            .max_by_key(|b| b.len())
    }
}

safe_id!(
    /// An inspection bay, e.g. `MOMBASA-B3`.
    BayId,
    "bay"
);
safe_id!(
    /// One report from a bay about one scan. Chosen once by the agent and kept across retries,
    /// so that the server can accept the same report any number of times and store it once.
    ReportId,
    "report_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_path_traversal_and_separators() {
        for bad in ["", "..", "../etc", "a/b", "a\\b", ".hidden", "x y", "é"] {
            assert!(ScanId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(ScanId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn ids_accept_scanner_style_names() {
        for good in ["BAY01-20261125-000001", "scan_1.2", "A"] {
            assert_eq!(
                ScanId::parse(good).map(|s| s.to_string()),
                Ok(good.to_owned())
            );
        }
    }

    #[test]
    fn ids_are_validated_when_deserialised() {
        let err = serde_json::from_str::<BayId>("\"a/x\"").unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn a_scan_id_belongs_to_the_bay_it_starts_with() {
        let id = ScanId::parse("BAY01-A-7").unwrap();
        assert!(id.is_of_bay("BAY01") && id.is_of_bay("BAY01-A"));
        assert!(!id.is_of_bay("BAY0") && !id.is_of_bay("BAY01-A-7") && !id.is_of_bay("bay01"));
        assert_eq!(id.owner(["BAY01", "BAY01-A", "BAY02"]), Some("BAY01-A"));
        assert_eq!(id.owner(["BAY01", "BAY02"]), Some("BAY01"));
        assert_eq!(id.owner(["BAY02"]), None);
    }
}
