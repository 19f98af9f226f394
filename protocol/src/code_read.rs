//! Turning what an OCR engine read off a container into an ISO 6346 code, or into "unreadable".
//!
//! OCR confuses a few letters and digits (O/0, I/1, B/8, S/5, Z/2), and only those are corrected. ISO 6346 says which
//! positions hold letters (owner code and category) and which hold digits (serial and check
//! digit), and the check digit catches almost every single misread. So:
//!
//! - every character the OCR read becomes the set of characters it may stand for at its
//!   position: itself if it fits, its confusion partner if that fits, and the OCR's own
//!   runner-up where it was unsure;
//! - every combination is checked against the check digit;
//! - a code is accepted only when **exactly one** combination passes. Two or more passing
//!   candidates, or none, is "unreadable", with the most likely reading as the best guess, so an
//!   officer sees what was read but nothing downstream treats it as the container's code.
//!
//! The size/type code printed under the container code (`45G1`: 40 ft, 9 ft 6 in high, general
//! purpose) is parsed too, but it has no check digit, so it is only reported as read.

use serde::Serialize;

use crate::ContainerCode;
use crate::container_code::check_digit;

/// One character position as the OCR read it: candidate characters with their probabilities,
/// most likely first.
pub type CharCandidates = Vec<(char, f32)>;

/// A runner-up character is considered only when the OCR was torn: it gave the runner-up at
/// least this probability. Every extra candidate is another 1-in-10 chance that a misread line
/// passes the check digit, so this is kept high.
pub const RUNNER_UP_MIN: f32 = 0.35;

/// A reading passes only if every character in it has at least this weight (its probability,
/// halved where a confusion was corrected): a garbled line that happens to satisfy the check
/// digit (1 in 10 do) is not a reading.
pub const CHAR_MIN: f32 = 0.2;

/// And the product of its characters' weights must reach this (a geometric mean of 0.57 over
/// 11 characters).
pub const CODE_MIN: f32 = 0.002;

/// The outcome of reading a container code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeReading {
    /// The code, when exactly one reading passes the check digit.
    pub code: Option<ContainerCode>,
    /// The most likely 11-character reading (what an officer should compare by eye), even when
    /// it fails the check digit; empty when nothing code-shaped was read.
    pub best_guess: String,
    /// `valid` (accepted as read), `corrected` (accepted after a confusion correction),
    /// `ambiguous` (several readings pass), `failed` (none passes) or `not_found`.
    pub check: CheckStatus,
    /// The product of the character probabilities of the accepted code (or of the best guess).
    pub confidence: f32,
    /// How many distinct readings passed the check digit.
    pub passing: usize,
    /// The size/type code, when one was read (e.g. `45G1`).
    pub size_type: Option<SizeType>,
}

/// The check-digit outcome of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Read as printed and the check digit passes.
    Valid,
    /// One confusion correction made it pass, and no other reading does.
    Corrected,
    /// More than one reading passes: refused.
    Ambiguous,
    /// No reading passes: refused.
    Failed,
    /// Nothing with the shape of a container code was read.
    NotFound,
}

impl CheckStatus {
    /// Whether the code was accepted.
    pub fn accepted(self) -> bool {
        matches!(self, Self::Valid | Self::Corrected)
    }
}

/// The ISO 6346 size/type code, e.g. `45G1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizeType {
    /// The four characters.
    pub code: String,
    /// Length, e.g. "40 ft".
    pub length: &'static str,
    /// Height, e.g. "9 ft 6 in (high cube)".
    pub height: &'static str,
    /// Type group, e.g. "general purpose".
    pub kind: &'static str,
}

/// The characters OCR confuses, both ways.
fn partner(c: char) -> Option<char> {
    Some(match c {
        'O' => '0',
        '0' => 'O',
        'I' => '1',
        '1' => 'I',
        'B' => '8',
        '8' => 'B',
        'S' => '5',
        '5' => 'S',
        'Z' => '2',
        '2' => 'Z',
        _ => return None,
    })
}

/// Whether `c` may stand at position `i` of a code.
fn fits(i: usize, c: char) -> bool {
    match i {
        0..=2 => c.is_ascii_uppercase(),
        3 => matches!(c, 'U' | 'J' | 'Z'),
        _ => c.is_ascii_digit(),
    }
}

/// The characters position `i` may hold, given what the OCR read there, with a weight for each.
/// The first is the reading as printed when it fits.
/// The flag is true for the OCR's own first choice.
fn options(i: usize, read: &[(char, f32)]) -> Vec<(char, f32, bool)> {
    let mut out: Vec<(char, f32, bool)> = Vec::new();
    let add = |c: char, p: f32, top: bool, out: &mut Vec<(char, f32, bool)>| {
        if fits(i, c) && !out.iter().any(|(o, _, _)| *o == c) {
            out.push((c, p, top));
        }
    };
    for (k, &(c, p)) in read.iter().enumerate() {
        if k > 0 && p < RUNNER_UP_MIN {
            break;
        }
        let c = c.to_ascii_uppercase();
        add(c, p, k == 0, &mut out);
        if let Some(q) = partner(c) {
            // A confusion is less likely than the reading itself.
            add(q, p * 0.5, false, &mut out);
        }
    }
    out
}

/// Reads a container code from OCR output: one [`CharCandidates`] per character, in reading
/// order, spaces and punctuation included or not. The size/type code may follow.
///
/// A code must stand on its own: its owner code starts the text or follows a space or a line
/// break, and its check digit ends the text or is followed by one, or by a letter. A window that
/// starts inside a longer run (`MSAKU5019410` read for `MSKU 501941 0`) could pass the check
/// digit by chance, 1 time in 10; it is never read as a code.
pub fn read_code(chars: &[CharCandidates]) -> CodeReading {
    let alnum = |c: &CharCandidates| c.first().is_some_and(|(ch, _)| ch.is_ascii_alphanumeric());
    // For each alphanumeric character: whether a boundary comes before it and after it.
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if alnum(c) {
            starts.push(i == 0 || !alnum(&chars[i - 1]));
            ends.push(i + 1 == chars.len() || !alnum(&chars[i + 1]));
        }
    }
    let chars: Vec<&CharCandidates> = chars.iter().filter(|c| alnum(c)).collect();
    let mut passing: Vec<(String, f32, bool)> = Vec::new();
    let mut best: Option<(String, f32)> = None;
    let mut size_type = None;
    for start in 0..chars.len().saturating_sub(10) {
        let after = chars.get(start + 11).map(|c| c[0].0);
        let stands_alone =
            starts[start] && (ends[start + 10] || after.is_none_or(|c| c.is_ascii_alphabetic()));
        if !stands_alone {
            continue;
        }
        let window = &chars[start..start + 11];
        let opts: Vec<Vec<(char, f32, bool)>> = window
            .iter()
            .enumerate()
            .map(|(i, c)| options(i, c))
            .collect();
        if opts.iter().any(Vec::is_empty) {
            // Still a guess for the officer: the characters as read.
            let guess: String = window.iter().map(|c| c[0].0.to_ascii_uppercase()).collect();
            let p: f32 = window.iter().map(|c| c[0].1).product();
            if best.as_ref().is_none_or(|(_, bp)| p * 0.01 > *bp) {
                best = Some((guess, p * 0.01));
            }
            continue;
        }
        // Every combination (a handful: most positions have one option).
        let mut combos: Vec<(Vec<char>, f32, bool, f32)> = vec![(Vec::new(), 1.0, true, 1.0)];
        for o in &opts {
            let mut next = Vec::with_capacity(combos.len() * o.len());
            for (prefix, p, as_read, least) in &combos {
                for &(c, q, top) in o {
                    let mut s = prefix.clone();
                    s.push(c);
                    next.push((s, p * q, *as_read && top, least.min(q)));
                }
            }
            combos = next;
            if combos.len() > 4096 {
                break;
            }
        }
        for (s, p, as_read, least) in combos {
            let text: String = s.iter().collect();
            if best.as_ref().is_none_or(|(_, bp)| p > *bp) {
                best = Some((text.clone(), p));
            }
            let mut first_ten = [0u8; 10];
            first_ten.copy_from_slice(&text.as_bytes()[..10]);
            let passes = check_digit(&first_ten) == u32::from(text.as_bytes()[10] - b'0')
                && least >= CHAR_MIN
                && p >= CODE_MIN;
            if passes {
                match passing.iter_mut().find(|(t, _, _)| *t == text) {
                    Some(existing) => existing.1 = existing.1.max(p),
                    None => passing.push((text, p, as_read)),
                }
                if size_type.is_none() {
                    size_type = size_type_after(&chars[start + 11..]);
                }
            }
        }
    }
    if size_type.is_none() && chars.len() == 4 {
        // Read on its own line (under the code, or on a door post apart from it).
        size_type = size_type_after(&chars);
    }
    let (best_guess, best_p) = best.unwrap_or_default();
    match passing.len() {
        1 => {
            let (text, p, as_read) = passing.remove(0);
            CodeReading {
                code: ContainerCode::parse(&text).ok(),
                best_guess: text,
                check: if as_read {
                    CheckStatus::Valid
                } else {
                    CheckStatus::Corrected
                },
                confidence: p,
                passing: 1,
                size_type,
            }
        }
        n => CodeReading {
            code: None,
            check: if n > 1 {
                CheckStatus::Ambiguous
            } else if best_guess.is_empty() {
                CheckStatus::NotFound
            } else {
                CheckStatus::Failed
            },
            best_guess,
            confidence: best_p,
            passing: n,
            size_type,
        },
    }
}

/// Reads a code from plain text (each character certain): `"MSKU 907032 3 45G1"`.
pub fn read_code_text(text: &str) -> CodeReading {
    let chars: Vec<CharCandidates> = text.chars().map(|c| vec![(c, 1.0)]).collect();
    read_code(&chars)
}

/// A size/type code at the start of `chars`, if the next four characters make one.
fn size_type_after(chars: &[&CharCandidates]) -> Option<SizeType> {
    if chars.len() < 4 {
        return None;
    }
    let pick = |i: usize, ok: &dyn Fn(char) -> bool| -> Option<char> {
        let c = chars[i][0].0.to_ascii_uppercase();
        if ok(c) {
            return Some(c);
        }
        partner(c).filter(|&q| ok(q))
    };
    let l = pick(0, &|c| matches!(c, '1' | '2' | '3' | '4' | 'B' | 'L' | 'M'))?;
    let h = pick(1, &|c| {
        matches!(c, '0' | '2' | '3' | '4' | '5' | '6' | '8' | '9')
    })?;
    let g = pick(2, &|c| "GVBSRHUPTKA".contains(c))?;
    let d = pick(3, &|c| c.is_ascii_digit())?;
    parse_size_type(&format!("{l}{h}{g}{d}"))
}

/// Parses a size/type code such as `45G1` or `22G1`.
pub fn parse_size_type(raw: &str) -> Option<SizeType> {
    let b: Vec<char> = raw.trim().to_ascii_uppercase().chars().collect();
    if b.len() != 4 || !b[3].is_ascii_digit() {
        return None;
    }
    let length = match b[0] {
        '1' => "10 ft",
        '2' => "20 ft",
        '3' => "30 ft",
        '4' => "40 ft",
        'B' => "24 ft",
        'L' => "45 ft",
        'M' => "48 ft",
        _ => return None,
    };
    let height = match b[1] {
        '0' => "8 ft",
        '2' | '3' => "8 ft 6 in",
        '4' | '5' => "9 ft 6 in (high cube)",
        '6' => "over 9 ft 6 in",
        '8' => "4 ft 3 in (half height)",
        '9' => "under 4 ft",
        _ => return None,
    };
    let kind = match b[2] {
        'G' => "general purpose",
        'V' => "ventilated",
        'B' => "dry bulk",
        'S' => "named cargo",
        'R' => "refrigerated",
        'H' => "insulated",
        'U' => "open top",
        'P' => "platform or flat rack",
        'T' => "tank",
        'K' => "tank (gas)",
        'A' => "air/surface",
        _ => return None,
    };
    Some(SizeType {
        code: b.iter().collect(),
        length,
        height,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_reading_is_valid() {
        let r = read_code_text("MSKU 907032 3");
        assert_eq!(r.check, CheckStatus::Valid);
        assert_eq!(r.code.unwrap().as_str(), "MSKU9070323");
    }

    #[test]
    fn a_single_confusion_is_corrected_when_only_one_candidate_passes() {
        // O for 0 in the serial, 5 for S in the owner code.
        let r = read_code_text("M5KU9O70323");
        assert_eq!(r.check, CheckStatus::Corrected, "{r:?}");
        assert_eq!(r.code.unwrap().as_str(), "MSKU9070323");
    }

    #[test]
    fn a_failing_check_digit_is_never_accepted() {
        let r = read_code_text("MSKU9070324");
        assert_eq!(r.check, CheckStatus::Failed);
        assert!(r.code.is_none());
        assert_eq!(r.best_guess, "MSKU9070324");
        // A substituted digit that is not a classic confusion: caught by the check digit.
        let r = read_code_text("CSQU3054393");
        assert!(r.code.is_none(), "{r:?}");
    }

    #[test]
    fn two_passing_candidates_are_ambiguous_and_refused() {
        // Find a code where an unsure OCR runner-up also passes: enumerate serials until the
        // alternative at the last serial digit (8 vs 3 read with similar probability) passes.
        let mut found = false;
        for serial in 0..20_000u32 {
            let a = ContainerCode::from_parts("TGH", 'U', serial).unwrap();
            let mut chars: Vec<CharCandidates> =
                a.as_str().chars().map(|c| vec![(c, 0.99)]).collect();
            let orig = chars[9][0].0;
            for alt in '0'..='9' {
                if alt == orig {
                    continue;
                }
                let mut s = a.as_str().to_owned().into_bytes();
                s[9] = alt as u8;
                let mut first_ten = [0u8; 10];
                first_ten.copy_from_slice(&s[..10]);
                if check_digit(&first_ten) == u32::from(s[10] - b'0') {
                    chars[9] = vec![(orig, 0.55), (alt, 0.4)];
                    let r = read_code(&chars);
                    assert_eq!(r.check, CheckStatus::Ambiguous, "{r:?}");
                    assert!(r.code.is_none());
                    assert_eq!(r.passing, 2);
                    found = true;
                    break;
                }
            }
            if found {
                break;
            }
        }
        assert!(found);
    }

    #[test]
    fn extra_text_and_the_size_type_code_around_the_code() {
        let r = read_code_text("CSQU 305438 3  45G1");
        assert_eq!(r.code.unwrap().as_str(), "CSQU3054383");
        let st = r.size_type.unwrap();
        assert_eq!(st.code, "45G1");
        assert_eq!(st.length, "40 ft");
        assert!(st.height.contains("high cube"));
        assert_eq!(st.kind, "general purpose");
        assert_eq!(parse_size_type("22G1").unwrap().length, "20 ft");
        assert!(parse_size_type("99X1").is_none());
    }

    #[test]
    fn a_code_inside_a_longer_run_is_not_read() {
        // SAKU5019410 passes the check digit, but here it is the tail of a misread run.
        assert!(ContainerCode::parse("SAKU5019410").is_ok());
        let r = read_code_text("MSAKU5019410");
        assert!(r.code.is_none(), "{r:?}");
        // An extra digit after the check digit: not a code either.
        let r = read_code_text("CSQU30543831");
        assert!(r.code.is_none(), "{r:?}");
        // Separated, both read.
        assert!(read_code_text("M SAKU5019410").code.is_some());
        assert!(read_code_text("CSQU3054383 1").code.is_some());
    }

    #[test]
    fn nothing_code_shaped_is_not_found() {
        let r = read_code_text("HELLO");
        assert_eq!(r.check, CheckStatus::NotFound);
        assert!(r.code.is_none());
    }

    #[test]
    fn every_single_classic_confusion_in_random_codes_is_corrected_or_refused_never_wrong() {
        let mut wrong = 0;
        let mut corrected = 0;
        for serial in (0..1_000_000u32).step_by(997) {
            let code = ContainerCode::from_parts("BSZ", 'U', serial).unwrap();
            for i in 0..11 {
                let mut s: Vec<char> = code.as_str().chars().collect();
                let Some(q) = partner(s[i]) else { continue };
                s[i] = q;
                let text: String = s.iter().collect();
                let r = read_code_text(&text);
                match r.code {
                    Some(c) if c == code => corrected += 1,
                    Some(_) => wrong += 1,
                    None => {}
                }
            }
        }
        assert_eq!(wrong, 0);
        assert!(corrected > 1000, "{corrected}");
    }
}
