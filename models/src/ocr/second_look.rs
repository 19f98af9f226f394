//! Second looks at a frame whose lines gave no accepted code: a row the detector cut into
//! pieces, the boxed check digit after a serial read without it, and codes stacked vertically
//! on a door post.

use baylens_protocol::code_read;

use super::decode::{emissions, is_code_length, line, rows};
use super::geometry::{along, side_by_side, split_stack, straighten};
use super::{OcrModel, Rgb, TextBox, TextLine};
use crate::ModelError;

impl OcrModel {
    /// Reads each row of the frame that the detector cut into pieces (see [`rows`]) again as
    /// one line. The detector often splits a code at the gap between owner code and serial, or
    /// before the boxed check digit, and the recogniser then drops the characters at the cut
    /// (most often the category `U`: `MSC` and `2000557` for `MSCU 200055 7`). Read whole, the
    /// line keeps them. Only rows that could hold a code are read: 6 to 16 letters and digits,
    /// at least 4 of them digits; one recogniser run each.
    pub(super) fn read_joined_rows(
        &mut self,
        img: Rgb<'_>,
        lines: &[TextLine],
    ) -> Result<Vec<TextLine>, ModelError> {
        let mut out = Vec::new();
        for row in rows(lines).into_iter().filter(|r| r.len() > 1) {
            let text: String = row.iter().map(|l| l.text.as_str()).collect();
            let alnum = text.chars().filter(char::is_ascii_alphanumeric).count();
            let digits = text.chars().filter(char::is_ascii_digit).count();
            if !(6..=16).contains(&alnum) || digits < 4 {
                continue;
            }
            let boxes: Vec<TextBox> = row.iter().map(|l| l.text_box).collect();
            let Some(whole) = along(&boxes) else {
                continue;
            };
            let (pixels, _) = straighten(img, &whole, 48);
            let (text, chars) = self.recognise(&pixels, &whole, false)?;
            if !chars.is_empty() {
                out.push(line(whole, false, text, chars));
            }
        }
        Ok(out)
    }

    /// For each line that reads as an owner code and serial without the check digit (see
    /// [`lacks_check_digit`]), or with a check digit read too weakly to count (see
    /// [`weak_check_digit`]), reads again where ISO 6346 puts the boxed check digit: just after
    /// the serial's last character, on the same line. The recogniser often drops a digit inside
    /// thin box strokes at the end of a line, or reads it at a tenth of its usual confidence, and
    /// the detector often misses the box when it stands apart. The digit read there still has
    /// to pass the check, so a miss costs three recogniser runs (the line again, to find the
    /// serial's last character, and the box twice) and nothing else.
    pub(super) fn read_check_digits(
        &mut self,
        img: Rgb<'_>,
        lines: &[TextLine],
    ) -> Result<Vec<TextLine>, ModelError> {
        let mut out = Vec::new();
        for l in lines.iter().filter(|l| !l.vertical) {
            // How many letters and digits stand after the serial's last one: none when the
            // check digit is missing, one when it was read too weakly.
            let after = if lacks_check_digit(&l.text) {
                0
            } else if weak_check_digit(l) {
                1
            } else {
                continue;
            };
            let b = l.text_box;
            let (len, h) = (2.0 * b.half[0], 2.0 * b.half[1]);
            // Where along the line the recogniser put the serial's last character: the last
            // step at which it was the best class (a letter or digit; a box read as a CJK sign
            // does not count), as a share of the (padded) input's width.
            let (pixels, w) = straighten(img, &b, 48);
            let (t, probs) = self.line_probabilities(&pixels)?;
            let ends = character_ends(&probs, t, &self.classes);
            if after == 1 && ends.len() != 11 {
                continue;
            }
            let Some(&last) = ends.len().checked_sub(1 + after).and_then(|k| ends.get(k)) else {
                continue;
            };
            let step_px = w.max(320) as f32 / t as f32;
            let s_last = ((last as f32 + 0.5) * step_px / w as f32 - 0.5) * len;
            // CTC fires late in a character, so that step is near its right edge, and the box's
            // centre is about 0.45 line-heights further on (the gap and half the box; the line's
            // height includes the detector's margin around the ink). Read it whole, strokes and
            // all, and again inside its strokes. (Fitted on development views in the training
            // typefaces, seed 9600.)
            let at = s_last + 0.45 * h;
            let centre = [b.centre[0] + b.axis[0] * at, b.centre[1] + b.axis[1] * at];
            let region = |half: [f32; 2]| TextBox {
                centre,
                axis: b.axis,
                half,
                score: b.score,
            };
            let whole = region([0.4 * h, 0.5 * h]);
            let (pixels, _) = straighten(img, &whole, 48);
            let (text, chars) = self.recognise(&pixels, &whole, false)?;
            let mut probe = line(whole, false, text, chars);
            self.read_inside(img, &mut probe, region([0.2 * h, 0.28 * h]).bounds())?;
            if !probe.chars.is_empty() || !probe.alternatives.is_empty() {
                out.push(probe);
            }
        }
        Ok(out)
    }

    /// Finds and reads vertical stacks of upright characters. The detector was trained on lines,
    /// and a column of single characters with gaps between them barely registers, so the frame
    /// is turned a quarter turn anticlockwise (the stack becomes a line of characters lying on
    /// their side, which it does find), and each tall box found is cut into characters in the
    /// upright frame and read as one line.
    pub fn read_vertical(&mut self, img: Rgb<'_>) -> Result<Vec<TextLine>, ModelError> {
        let (w, h) = (img.width, img.height);
        let mut turned = vec![0u8; w * h * 3];
        // turned(x', y') = img(w - 1 - y', x'): the top of a column ends up on the left.
        for yy in 0..w {
            for xx in 0..h {
                let src = (xx * w + (w - 1 - yy)) * 3;
                let dst = (yy * h + xx) * 3;
                turned[dst..dst + 3].copy_from_slice(&img.data[src..src + 3]);
            }
        }
        let boxes = self.detect(Rgb {
            data: &turned,
            width: h,
            height: w,
        })?;
        let mut lines = Vec::new();
        for b in boxes {
            if b.axis[0].abs() < b.axis[1].abs() || b.half[0] < 3.0 * b.half[1] {
                continue;
            }
            let [rx0, ry0, rx1, ry1] = b.bounds();
            let (x0, x1) = (w as f32 - 1.0 - ry1, w as f32 - 1.0 - ry0);
            let (y0, y1) = (rx0, rx1);
            let upright = TextBox {
                centre: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
                axis: [0.0, 1.0],
                half: [(y1 - y0) / 2.0, (x1 - x0) / 2.0],
                score: b.score,
            };
            let cells = split_stack(img, &upright);
            // A code is 11 characters; allow a stray cell or two (a bolt head, the box).
            if !(10..=13).contains(&cells.len()) {
                continue;
            }
            let strip = side_by_side(&cells);
            let (text, chars) = self.recognise(&strip, &upright, true)?;
            if is_code_length(&text) {
                lines.push(line(upright, true, text, chars));
            }
        }
        Ok(lines)
    }
}

/// Per letter or digit the recogniser emitted, in order: the last step at which it was the best
/// class (see [`emissions`]; blanks and other signs are skipped).
fn character_ends(probs: &[f32], t: usize, classes: &[char]) -> Vec<usize> {
    emissions(probs, t, classes)
        .iter()
        .filter(|e| classes[e.class].is_ascii_alphanumeric())
        .map(|e| e.last)
        .collect()
}

/// Whether a line reads as a whole code whose last character, the boxed check digit, the
/// recogniser was unsure of (under [`code_read::CHAR_MIN`]; the box's strokes crowd it): eleven
/// letters and digits, the fourth a letter and the last seven digits.
fn weak_check_digit(l: &TextLine) -> bool {
    let t: Vec<&(char, f32)> = l
        .chars
        .iter()
        .filter_map(|c| c.first())
        .filter(|c| c.0.is_ascii_alphanumeric())
        .collect();
    t.len() == 11
        && t[3].0.is_ascii_alphabetic()
        && t[4..].iter().all(|c| c.0.is_ascii_digit())
        && t[10].1 < code_read::CHAR_MIN
}

/// Whether a line reads as an owner code and serial with no check digit after them: ten
/// letters and digits, the fourth a letter (the category, U, J or Z, however misread) and the
/// last six digits, and no stroke of the check digit's box. A line that dropped a letter of the
/// owner code and kept its check digit (`MSK 241871[5]`) has a digit fourth or a box stroke,
/// and is not one: looking after it would add a character the code does not have.
fn lacks_check_digit(text: &str) -> bool {
    if text.contains(['[', ']', '|']) {
        return false;
    }
    let t: Vec<char> = text.chars().filter(char::is_ascii_alphanumeric).collect();
    t.len() == 10 && t[3].is_ascii_alphabetic() && t[4..].iter().all(char::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::{character_ends, lacks_check_digit, weak_check_digit};
    use crate::ocr::TextBox;
    use crate::ocr::decode::line;

    #[test]
    fn each_character_ends_at_its_last_step() {
        let classes = ['\0', 'A', '7', '\u{4e00}', ' '];
        // A A blank 7 (CJK) 7 7 blank
        let steps = [1, 1, 0, 2, 3, 2, 2, 0];
        let mut probs = Vec::new();
        for &k in &steps {
            let mut row = [0.02f32; 5];
            row[0] = 0.06; // under a CJK sign, the blank leads what a marking can hold
            row[k] = 0.9;
            probs.extend(row);
        }
        assert_eq!(character_ends(&probs, steps.len(), &classes), vec![1, 3, 6]);
    }

    #[test]
    fn only_a_whole_code_with_an_unsure_last_digit_has_a_weak_check_digit() {
        let b = TextBox {
            centre: [0.0; 2],
            axis: [1.0, 0.0],
            half: [60.0, 10.0],
            score: 0.9,
        };
        let with = |text: &str, last: f32| {
            let mut chars: Vec<Vec<(char, f32)>> = text.chars().map(|c| vec![(c, 1.0)]).collect();
            chars.last_mut().unwrap()[0].1 = last;
            line(b, false, text.to_owned(), chars)
        };
        assert!(weak_check_digit(&with("TGHU 0790010", 0.13)));
        assert!(!weak_check_digit(&with("TGHU 0790010", 0.9)), "sure");
        assert!(
            !weak_check_digit(&with("TGHU 079001", 0.13)),
            "no check digit"
        );
        assert!(!weak_check_digit(&with("PAYLOAD 2673", 0.13)), "no code");
    }

    #[test]
    fn only_an_owner_code_and_serial_lack_the_check_digit() {
        assert!(lacks_check_digit("CMAU 368627"));
        assert!(lacks_check_digit("0OLU 673038"));
        assert!(!lacks_check_digit("CMAU 3686270"), "has it");
        assert!(
            !lacks_check_digit("MSK 241871[5]"),
            "a box stroke: the digit is there"
        );
        assert!(
            !lacks_check_digit("MSK 2418715"),
            "a digit fourth: a letter was dropped"
        );
        assert!(!lacks_check_digit("PAYLOAD 26730"));
    }
}
