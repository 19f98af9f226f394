//! ISO 6346 container codes: owner code (3 letters), equipment category (U, J or Z),
//! serial number (6 digits) and check digit.
//!
//! The check digit is what makes a misread detectable, so a code whose check digit fails is never
//! accepted: there is no constructor that skips it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ProtocolError;

/// A container code whose check digit is correct, e.g. `CSQU3054383`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerCode(String);

/// ISO 6346 letter values: A=10 upwards, skipping multiples of 11 (11, 22, 33).
fn letter_value(c: u8) -> u32 {
    let mut value = 10;
    for letter in b'A'..c {
        let _ = letter;
        value += 1;
        if value % 11 == 0 {
            value += 1;
        }
    }
    value
}

/// The check digit for the first ten characters of a code (already shape-checked).
pub fn check_digit(first_ten: &[u8; 10]) -> u32 {
    let sum: u32 = first_ten
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let v = if c.is_ascii_digit() {
                u32::from(c - b'0')
            } else {
                letter_value(c)
            };
            v << i
        })
        .sum();
    sum % 11 % 10
}

impl ContainerCode {
    /// Parses a code, ignoring spaces and case (`csqu 305438 3` is accepted), and checks the
    /// check digit.
    pub fn parse(raw: &str) -> Result<Self, ProtocolError> {
        let code: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = code.as_bytes();
        let invalid = |reason: String| ProtocolError::invalid("container_code", reason);
        if bytes.len() != 11 {
            return Err(invalid(format!(
                "{raw:?} must be 11 characters (4 letters, 7 digits), got {}",
                bytes.len()
            )));
        }
        if !bytes[..4].iter().all(u8::is_ascii_uppercase) {
            return Err(invalid(format!("{raw:?} must start with 4 letters")));
        }
        if !matches!(bytes[3], b'U' | b'J' | b'Z') {
            return Err(invalid(format!(
                "{raw:?}: equipment category {:?} must be U, J or Z",
                bytes[3] as char
            )));
        }
        if !bytes[4..].iter().all(u8::is_ascii_digit) {
            return Err(invalid(format!("{raw:?} must end with 7 digits")));
        }
        let mut first_ten = [0u8; 10];
        first_ten.copy_from_slice(&bytes[..10]);
        let expected = check_digit(&first_ten);
        let found = u32::from(bytes[10] - b'0');
        if expected != found {
            return Err(invalid(format!(
                "{raw:?}: check digit is {found}, ISO 6346 gives {expected}"
            )));
        }
        Ok(Self(code))
    }

    /// Builds a valid code from an owner code, category and serial by computing the check digit.
    pub fn from_parts(owner: &str, category: char, serial: u32) -> Result<Self, ProtocolError> {
        let mut head = format!("{owner}{category}{serial:06}");
        let bytes = head.as_bytes();
        if bytes.len() != 10 {
            return Err(ProtocolError::invalid(
                "container_code",
                format!("{head:?} must be 3 letters, a category and 6 digits"),
            ));
        }
        let mut first_ten = [0u8; 10];
        first_ten.copy_from_slice(bytes);
        head.push(char::from(b'0' + check_digit(&first_ten) as u8));
        Self::parse(&head)
    }

    /// The code as 11 characters without spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-letter owner code, e.g. `CSQ`.
    pub fn owner(&self) -> &str {
        &self.0[..3]
    }
}

impl fmt::Display for ContainerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContainerCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_values_skip_multiples_of_eleven() {
        assert_eq!(letter_value(b'A'), 10);
        assert_eq!(letter_value(b'B'), 12);
        assert_eq!(letter_value(b'K'), 21);
        assert_eq!(letter_value(b'L'), 23);
        assert_eq!(letter_value(b'U'), 32);
        assert_eq!(letter_value(b'V'), 34);
        assert_eq!(letter_value(b'Z'), 38);
    }

    #[test]
    fn known_codes_pass_their_check_digit() {
        for code in ["CSQU3054383", "MSKU9070323", "TGHU 876543 6"] {
            let parsed = ContainerCode::parse(code);
            assert!(parsed.is_ok(), "{code}: {parsed:?}");
        }
        assert_eq!(
            ContainerCode::parse("csqu 305438 3").map(|c| c.to_string()),
            Ok("CSQU3054383".to_owned())
        );
    }

    #[test]
    fn a_wrong_check_digit_is_refused_with_the_expected_digit() {
        let err = ContainerCode::parse("CSQU3054384").unwrap_err();
        assert!(err.to_string().contains("ISO 6346 gives 3"), "{err}");
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "CSQU305438",
            "CSQX3054383",
            "C5QU3054383",
            "CSQU30S4383",
        ] {
            assert!(ContainerCode::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn from_parts_computes_the_check_digit() {
        let code = ContainerCode::from_parts("CSQ", 'U', 305_438).unwrap();
        assert_eq!(code.as_str(), "CSQU3054383");
        assert_eq!(code.owner(), "CSQ");
    }
}
