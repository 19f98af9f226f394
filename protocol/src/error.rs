//! Errors raised while parsing wire data. Messages are meant for the operator who has to fix
//! the scanner or the declaration, so they name the field and the rule that was broken.

use thiserror::Error;

/// Why a piece of wire data was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ProtocolError {
    /// The JSON could not be read as the expected document (syntax, types, unknown or missing fields).
    #[error("malformed {document}: {reason}")]
    Malformed {
        /// Which document: "sidecar", "report", ...
        document: &'static str,
        /// serde's description, which names the field and position.
        reason: String,
    },
    /// The document declares a contract version this build does not understand.
    #[error("unsupported contract {found:?}; this build reads {expected:?}")]
    UnsupportedContract {
        /// The version string found in the document.
        found: String,
        /// The version string this build reads.
        expected: &'static str,
    },
    /// A field parsed but its value breaks a rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `images[1].energy`.
        field: String,
        /// The rule that was broken.
        reason: String,
    },
}

impl ProtocolError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
