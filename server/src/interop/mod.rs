//! Declarations in the formats customs systems send (TFA Art. 10): BayLens JSON
//! (`baylens.declaration/1`, an array), WCO DEC-DMS XML ([`decdms`]) and UN/EDIFACT CUSCAR
//! ([`cuscar`]). One import path serves
//! `POST /api/v1/declarations/import` (by content type) and `server declarations import FILE`
//! (by content): every document is mapped and checked before any is lodged.

pub mod cuscar;
pub mod decdms;
pub mod xml;

use baylens_protocol::Declaration;
use chrono::{DateTime, Utc};

/// A declaration format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of `baylens.declaration/1`.
    Json,
    /// WCO DEC-DMS XML.
    DecDms,
    /// UN/EDIFACT CUSCAR.
    Cuscar,
}

impl Format {
    /// The format of a media type, if BayLens reads it.
    pub fn of_media_type(media: &str) -> Option<Self> {
        let media = media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json" => Some(Self::Json),
            "application/xml" | "text/xml" => Some(Self::DecDms),
            "application/edifact" => Some(Self::Cuscar),
            _ => None,
        }
    }

    /// The format of a file's content, by its first significant character.
    pub fn sniff(body: &[u8]) -> Option<Self> {
        let first = body
            .iter()
            .copied()
            .find(|b| !(b.is_ascii_whitespace() || *b == 0xEF || *b == 0xBB || *b == 0xBF))?;
        match first {
            b'[' => Some(Self::Json),
            b'<' => Some(Self::DecDms),
            b'U' => Some(Self::Cuscar),
            _ => None,
        }
    }

    /// The media types read, for messages.
    pub const ACCEPTED: &'static str =
        "application/json (BayLens), application/xml (WCO DEC-DMS), application/EDIFACT (CUSCAR)";
}

/// Maps every document of `body` and checks each as at `now`: the declarations, or every
/// problem, each naming the document (`[i]`) or the element.
pub fn read(
    format: Format,
    body: &[u8],
    now: DateTime<Utc>,
    max: usize,
) -> Result<Vec<Declaration>, Vec<String>> {
    let docs: Vec<Result<Declaration, Vec<String>>> = match format {
        Format::Json => {
            let values: Vec<serde_json::Value> = serde_json::from_slice(body)
                .map_err(|e| vec![format!("body must be a JSON array of declarations: {e}")])?;
            values
                .into_iter()
                .map(|v| {
                    serde_json::from_value::<Declaration>(v).map_err(|e| {
                        vec![
                            baylens_protocol::ProtocolError::Malformed {
                                document: "declaration",
                                reason: e.to_string(),
                            }
                            .to_string(),
                        ]
                    })
                })
                .collect()
        }
        Format::DecDms => {
            let text = std::str::from_utf8(body)
                .map_err(|e| vec![format!("the XML is not UTF-8: {e}")])?;
            decdms::declarations(text)?.into_iter().map(Ok).collect()
        }
        Format::Cuscar => cuscar::declarations(body)?.into_iter().map(Ok).collect(),
    };
    if docs.len() > max {
        return Err(vec![format!(
            "at most {max} declarations per import, got {}",
            docs.len()
        )]);
    }
    let mut valid = Vec::with_capacity(docs.len());
    let mut problems = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        match doc.and_then(|d| {
            d.validated(now)
                .map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
        }) {
            Ok(d) => valid.push(d),
            Err(p) => problems.extend(p.into_iter().map(|p| format!("[{i}] {p}"))),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut seen = std::collections::HashSet::new();
    for d in &valid {
        if !seen.insert(&d.reference) {
            return Err(vec![format!(
                "reference {} appears twice in the import",
                d.reference
            )]);
        }
    }
    Ok(valid)
}
