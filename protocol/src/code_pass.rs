//! A container code read over a whole truck pass, not one frame.
//!
//! A single frame is read as in [`crate::code_read`]. A pass adds every frame of the same
//! container (side, door and roof views alike) to a [`PassVote`]:
//!
//! - each frame with a code-shaped reading (11 characters) votes at each position for the
//!   character it read, with the frame's weight: 1 when the frame's own check digit passed,
//!   otherwise half the geometric mean of its characters' probabilities;
//! - the pass's code is the winner at each position. It is **accepted** only when it passes the
//!   ISO 6346 check digit, every position's winner holds a clear majority (more than
//!   [`MAJORITY`] of the weight there), at least [`PassVote::min_frames`] frames read something
//!   code-shaped, and no *other* code passed its check digit in as many frames as this one
//!   (two containers on one chassis, or a misread that passes by chance, make it ambiguous).
//!
//! The pass's confidence is the product of the winners' shares times the confidence of the
//! best frame that read the voted code on its own.
//!
//! Otherwise the pass is unreadable, with the voted reading as the best guess. The check digit
//! still guards every accepted code: a vote cannot make a code that fails it.

use std::collections::HashMap;

use serde::Serialize;

use crate::ContainerCode;
use crate::code_read::{CheckStatus, CodeReading, SizeType};

/// The share of a position's weight its winner needs.
pub const MAJORITY: f32 = 0.5;

/// Frames a pass needs, by default, before its code is accepted.
pub const MIN_FRAMES: usize = 2;

/// The result of a pass: the reading and how it came about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassReading {
    /// The voted reading, in the form of a single frame's.
    pub reading: CodeReading,
    /// Frames added to the pass.
    pub frames: usize,
    /// Frames with a code-shaped reading (those that voted).
    pub voting: usize,
    /// Voting frames whose own reading is the voted code.
    pub agreeing: usize,
}

/// The votes of one pass so far.
#[derive(Debug, Clone)]
pub struct PassVote {
    /// Voting frames needed for an accepted code (1 reads a single photo).
    pub min_frames: usize,
    frames: usize,
    /// Per position: character -> weight.
    positions: Vec<HashMap<char, f32>>,
    /// Each voting frame's own reading, whether its check digit passed, and its confidence.
    reads: Vec<(String, bool, f32)>,
    size_types: Vec<SizeType>,
}

impl Default for PassVote {
    fn default() -> Self {
        Self::new(MIN_FRAMES)
    }
}

impl PassVote {
    /// An empty pass that accepts a code once `min_frames` frames have voted.
    pub fn new(min_frames: usize) -> Self {
        Self {
            min_frames: min_frames.max(1),
            frames: 0,
            positions: vec![HashMap::new(); 11],
            reads: Vec::new(),
            size_types: Vec::new(),
        }
    }

    /// Frames added so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Adds one frame's reading.
    pub fn add(&mut self, reading: &CodeReading) {
        self.frames += 1;
        if let Some(st) = &reading.size_type {
            self.size_types.push(st.clone());
        }
        let guess: Vec<char> = reading.best_guess.chars().collect();
        if guess.len() != 11 {
            return;
        }
        let accepted = reading.check.accepted();
        let weight = if accepted {
            1.0
        } else {
            0.5 * reading.confidence.max(0.0).powf(1.0 / 11.0)
        };
        if weight <= 0.0 {
            return;
        }
        for (votes, c) in self.positions.iter_mut().zip(&guess) {
            *votes.entry(*c).or_insert(0.0) += weight;
        }
        self.reads
            .push((reading.best_guess.clone(), accepted, reading.confidence));
    }

    /// The pass's reading now.
    pub fn result(&self) -> PassReading {
        let voting = self.reads.len();
        let size_type = self.most_common_size_type();
        if voting == 0 {
            return PassReading {
                reading: CodeReading {
                    code: None,
                    best_guess: String::new(),
                    check: CheckStatus::NotFound,
                    confidence: 0.0,
                    passing: 0,
                    size_type,
                },
                frames: self.frames,
                voting,
                agreeing: 0,
            };
        }
        let mut voted = String::new();
        let mut confidence = 1.0f32;
        let mut clear = true;
        for votes in &self.positions {
            let total: f32 = votes.values().sum();
            // Ties go to the smaller character, so the result does not depend on hash order.
            let (c, w) = votes
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(c, w)| (*c, *w))
                .unwrap_or(('?', 0.0));
            voted.push(c);
            let share = if total > 0.0 { w / total } else { 0.0 };
            confidence *= share;
            clear &= share > MAJORITY;
        }
        let agreeing = self.reads.iter().filter(|(r, ..)| *r == voted).count();
        // How sure the best frame that read the voted code was (none did: the vote's own
        // shares are all there is).
        let best_frame = self
            .reads
            .iter()
            .filter(|(r, ..)| *r == voted)
            .map(|(.., c)| *c)
            .fold(None, |m: Option<f32>, c| Some(m.map_or(c, |m| m.max(c))));
        confidence *= best_frame.unwrap_or(1.0);
        let code = ContainerCode::parse(&voted).ok();
        // Other codes that passed their own check digit, and in how many frames.
        let mut others: HashMap<&str, usize> = HashMap::new();
        for (r, accepted, _) in &self.reads {
            if *accepted && *r != voted {
                *others.entry(r.as_str()).or_insert(0) += 1;
            }
        }
        let accepted_here = self
            .reads
            .iter()
            .filter(|(r, a, _)| *a && *r == voted)
            .count();
        let rival = others.values().copied().max().unwrap_or(0);
        let passing = usize::from(code.is_some()) + others.len();
        let check = match &code {
            Some(_) if rival > 0 && rival >= accepted_here.max(1) => CheckStatus::Ambiguous,
            Some(_) if clear && voting >= self.min_frames => {
                if accepted_here > 0 {
                    CheckStatus::Valid
                } else {
                    CheckStatus::Corrected
                }
            }
            // Passes, but not yet on enough frames or without a clear majority.
            Some(_) => CheckStatus::Failed,
            None if rival > 0 => CheckStatus::Ambiguous,
            None => CheckStatus::Failed,
        };
        let reading = CodeReading {
            code: if check.accepted() { code } else { None },
            best_guess: voted,
            check,
            confidence,
            passing,
            size_type,
        };
        PassReading {
            reading,
            frames: self.frames,
            voting,
            agreeing,
        }
    }

    fn most_common_size_type(&self) -> Option<SizeType> {
        let mut counts: Vec<(&SizeType, usize)> = Vec::new();
        for st in &self.size_types {
            match counts.iter_mut().find(|(s, _)| s.code == st.code) {
                Some(entry) => entry.1 += 1,
                None => counts.push((st, 1)),
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(s, _)| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code_read::read_code_text;

    fn frame(text: &str) -> CodeReading {
        read_code_text(text)
    }

    /// A frame whose best guess is `guess` but whose own check failed, read with `p` per
    /// character.
    fn failed(guess: &str, p: f32) -> CodeReading {
        CodeReading {
            code: None,
            best_guess: guess.into(),
            check: CheckStatus::Failed,
            confidence: p.powi(11),
            passing: 0,
            size_type: None,
        }
    }

    #[test]
    fn frames_that_each_misread_one_character_vote_the_right_code() {
        let mut pass = PassVote::default();
        // CSQU3054383 is valid; each frame has one different error, so none passes alone.
        for g in ["CSQU3054388", "CSQU3054583", "C5QU3054383", "CSQU3O54383"] {
            pass.add(&failed(g, 0.9));
        }
        let r = pass.result();
        assert_eq!(
            r.reading.code.as_ref().map(ContainerCode::as_str),
            Some("CSQU3054383")
        );
        assert_eq!(r.reading.check, CheckStatus::Corrected);
        assert_eq!((r.frames, r.voting, r.agreeing), (4, 4, 0));
    }

    #[test]
    fn one_frame_is_not_enough_by_default_but_is_for_a_photo() {
        let mut pass = PassVote::default();
        pass.add(&frame("CSQU 305438 3"));
        assert_eq!(pass.result().reading.check, CheckStatus::Failed);
        assert_eq!(pass.result().reading.best_guess, "CSQU3054383");
        pass.add(&frame("CSQU 305438 3"));
        assert_eq!(pass.result().reading.check, CheckStatus::Valid);

        let mut photo = PassVote::new(1);
        photo.add(&frame("CSQU 305438 3 45G1"));
        let r = photo.result();
        assert_eq!(r.reading.check, CheckStatus::Valid);
        assert_eq!(r.reading.size_type.unwrap().code, "45G1");
    }

    #[test]
    fn two_codes_that_each_pass_make_the_pass_ambiguous() {
        let mut pass = PassVote::default();
        for _ in 0..2 {
            pass.add(&frame("CSQU 305438 3"));
            pass.add(&frame("MSKU 907032 3"));
        }
        let r = pass.result();
        assert_eq!(r.reading.check, CheckStatus::Ambiguous);
        assert!(r.reading.code.is_none());
    }

    #[test]
    fn a_vote_that_fails_the_check_digit_is_never_accepted() {
        let mut pass = PassVote::default();
        for _ in 0..5 {
            pass.add(&failed("CSQU3054384", 0.99));
        }
        let r = pass.result();
        assert!(r.reading.code.is_none());
        assert_eq!(r.reading.check, CheckStatus::Failed);
        assert_eq!(r.reading.best_guess, "CSQU3054384");
    }

    #[test]
    fn no_code_shaped_text_is_not_found() {
        let mut pass = PassVote::default();
        pass.add(&frame("HELLO"));
        let r = pass.result();
        assert_eq!(r.reading.check, CheckStatus::NotFound);
        assert_eq!((r.frames, r.voting), (1, 0));
    }

    #[test]
    fn an_even_split_at_a_position_is_not_a_majority() {
        let mut pass = PassVote::default();
        pass.add(&failed("CSQU3054383", 0.9));
        pass.add(&failed("CSQU3054388", 0.9));
        let r = pass.result();
        assert!(r.reading.code.is_none(), "{r:?}");
    }
}
