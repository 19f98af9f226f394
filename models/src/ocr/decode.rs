//! From recogniser output to text (CTC decoding) and from text lines to a container code.

use baylens_protocol::code_read::{self, CharCandidates, CheckStatus, CodeReading};

use super::{TextBox, TextLine};

/// Reads the container code from the lines of a frame: lines on the same row are joined (the
/// check digit is often boxed apart from the serial), each row and each vertical stack is read
/// with [`code_read::read_code`], and a code is accepted only when exactly one distinct code
/// passes across all of them. Otherwise the result is "unreadable" with the best guess.
pub fn read_container_code(lines: &[TextLine]) -> CodeReading {
    let mut groups = rows(lines);
    groups.extend(lines.iter().filter(|l| l.vertical).map(|l| vec![l]));
    let mut readings: Vec<CodeReading> = Vec::new();
    for g in &groups {
        // The check digit is painted in a box, whose strokes the recogniser may read as `1`, `I`,
        // `[`, `]` or `|` around the digit: a short line may be read with them dropped. The
        // check digit still decides, and two different passing codes are still refused.
        let mut variants: Vec<Vec<Vec<(char, f32)>>> = vec![Vec::new()];
        for l in g {
            let mut forms = vec![l.chars.clone()];
            forms.extend(l.alternatives.iter().cloned());
            let boxy = |c: &Vec<(char, f32)>| "1I[]|".contains(c[0].0);
            if (2..=3).contains(&l.chars.len()) {
                let n = l.chars.len();
                if boxy(&l.chars[0]) {
                    forms.push(l.chars[1..].to_vec());
                }
                if boxy(&l.chars[n - 1]) {
                    forms.push(l.chars[..n - 1].to_vec());
                }
                if n == 3 && boxy(&l.chars[0]) && boxy(&l.chars[2]) {
                    forms.push(l.chars[1..2].to_vec());
                }
            }
            // Also a stray box stroke at the end of a longer line ("MSCU 733989 9]"), or a
            // last character read too weakly to count (a check digit crowded by its box, which
            // a second look reads inside the box as a line of its own).
            if l.chars.len() > 3
                && l.chars
                    .last()
                    .is_some_and(|c| "[]|".contains(c[0].0) || c[0].1 < code_read::CHAR_MIN)
            {
                forms.push(l.chars[..l.chars.len() - 1].to_vec());
            }
            // And the box's right stroke read as a digit after the check digit: twelve letters
            // and digits, the last a `1` or a `7` ("MSKU 35635077" for `MSKU 356350 7`).
            let alnum = l
                .chars
                .iter()
                .filter(|c| c[0].0.is_ascii_alphanumeric())
                .count();
            if alnum == 12 && l.chars.last().is_some_and(|c| "17".contains(c[0].0)) {
                forms.push(l.chars[..l.chars.len() - 1].to_vec());
            }
            let without_category: Vec<_> = forms.iter().filter_map(|f| with_category(f)).collect();
            forms.extend(without_category);
            variants = variants
                .iter()
                .flat_map(|v| {
                    forms.iter().map(move |f| {
                        let mut v = v.clone();
                        if !v.is_empty() {
                            // Lines stay apart: a code must not start inside another line.
                            v.push(vec![(' ', 1.0)]);
                        }
                        v.extend(f.iter().cloned());
                        v
                    })
                })
                .collect();
        }
        readings.extend(variants.iter().map(|v| code_read::read_code(v)));
    }
    let size_type = readings.iter().find_map(|r| r.size_type.clone());
    let mut accepted: Vec<&CodeReading> = Vec::new();
    for r in readings.iter().filter(|r| r.check.accepted()) {
        if !accepted.iter().any(|a| a.code == r.code) {
            accepted.push(r);
        }
    }
    let mut out = match accepted.len() {
        1 => accepted[0].clone(),
        0 => readings
            .iter()
            .filter(|r| r.check != CheckStatus::NotFound)
            .max_by(|a, b| {
                (a.check == CheckStatus::Ambiguous)
                    .cmp(&(b.check == CheckStatus::Ambiguous))
                    .then(a.confidence.total_cmp(&b.confidence))
            })
            .cloned()
            .unwrap_or_else(|| code_read::read_code(&[])),
        _ => CodeReading {
            code: None,
            best_guess: accepted[0].best_guess.clone(),
            check: CheckStatus::Ambiguous,
            confidence: accepted[0].confidence,
            passing: accepted.len(),
            size_type: None,
        },
    };
    out.size_type = size_type;
    out
}

/// The weight of a category letter the recogniser dropped: that of a confusion.
const CATEGORY_WEIGHT: f32 = 0.5;

/// A line read as an owner code and a full serial with the category letter between them
/// dropped (`HLX4384082` for `HLXU 438408 2`; the recogniser loses the `U` at the gap, or reads
/// it as a stroke), with the `U` put back: ten letters and digits, the first three letters (or
/// digits a letter is confused with, the third not a `U` or `J`) and the last seven digits, with
/// no gap after the fourth. ISO 6346's categories are `U`, `J` and `Z`, and freight containers
/// carry `U`; the check digit, which weighs the category, still decides. `None` for any other
/// line.
fn with_category(chars: &[CharCandidates]) -> Option<Vec<CharCandidates>> {
    let at: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            chars[i]
                .first()
                .is_some_and(|c| c.0.is_ascii_alphanumeric())
        })
        .collect();
    if at.len() != 10 {
        return None;
    }
    let top = |k: usize| chars[at[k]][0].0;
    let owner = (0..3).all(|k| top(k).is_ascii_uppercase() || "01825".contains(top(k)));
    // A third letter that is itself a category (`2MU 844127|3` for `ZIMU 844127 5`) says an
    // owner letter was lost, not the category.
    // A gap after the fourth says the fourth is the category, misread as a digit, and the
    // check digit was lost (`ZIM0 457608` for `ZIMU 457608 2`).
    let gap_after_fourth = chars.get(at[3] + 1).is_some_and(|c| c[0].0 == ' ');
    if !owner
        || "UJ".contains(top(2))
        || gap_after_fourth
        || !(3..10).all(|k| top(k).is_ascii_digit())
    {
        return None;
    }
    let mut out = chars.to_vec();
    out.insert(at[3], vec![('U', CATEGORY_WEIGHT)]);
    Some(out)
}

/// The horizontal lines of a frame in rows: lines that continue one another along their slant
/// (an owner code, its serial and its boxed check digit, seen in perspective and found as
/// separate boxes) form one row, read left to right.
pub(super) fn rows(lines: &[TextLine]) -> Vec<Vec<&TextLine>> {
    let rows: Vec<&TextLine> = lines.iter().filter(|l| !l.vertical).collect();
    let continues = |a: &TextLine, b: &TextLine| {
        let (ta, tb) = (&a.text_box, &b.text_box);
        let height = 2.0 * ta.half[1].max(tb.half[1]);
        let dx = tb.centre[0] - ta.centre[0];
        let predicted = ta.centre[1] + dx * ta.axis[1] / ta.axis[0].abs().max(0.2);
        let gap = dx.abs() - ta.half[0] - tb.half[0];
        (predicted - tb.centre[1]).abs() < 0.45 * height
            && gap < 2.5 * height
            && (tb.half[1] / ta.half[1]).clamp(0.5, 2.0) == tb.half[1] / ta.half[1]
    };
    let mut group_of: Vec<usize> = (0..rows.len()).collect();
    for i in 0..rows.len() {
        for j in 0..rows.len() {
            let (gi, gj) = (group_of[i], group_of[j]);
            if i != j && gi != gj && continues(rows[i], rows[j]) {
                for g in &mut group_of {
                    if *g == gj {
                        *g = gi;
                    }
                }
            }
        }
    }
    let mut groups: Vec<Vec<&TextLine>> = Vec::new();
    let mut seen: Vec<usize> = Vec::new();
    for &g in &group_of {
        if !seen.contains(&g) {
            seen.push(g);
            let mut members: Vec<&TextLine> = (0..rows.len())
                .filter(|&k| group_of[k] == g)
                .map(|k| rows[k])
                .collect();
            members.sort_by(|a, b| a.text_box.centre[0].total_cmp(&b.text_box.centre[0]));
            groups.push(members);
        }
    }
    groups
}

/// A vertical stack is only worth reading as a code if it holds 11 characters (12 with a box
/// stroke): cutting cells is fragile, and a column of other marks is not a code.
pub(super) fn is_code_length(text: &str) -> bool {
    (11..=12).contains(&text.chars().filter(char::is_ascii_alphanumeric).count())
}

pub(super) fn line(
    text_box: TextBox,
    vertical: bool,
    text: String,
    chars: Vec<Vec<(char, f32)>>,
) -> TextLine {
    let confidence = if chars.is_empty() {
        0.0
    } else {
        chars.iter().map(|c| c[0].1).sum::<f32>() / chars.len() as f32
    };
    TextLine {
        text_box,
        vertical,
        text,
        chars,
        confidence,
        alternatives: Vec::new(),
    }
}

/// One character of a greedy CTC decoding: its class and the steps it spans.
pub(super) struct Emission {
    /// Class index (never the blank).
    pub class: usize,
    /// Its most confident step (the first, on a tie).
    pub best: usize,
    /// Its last step.
    pub last: usize,
}

/// Greedy CTC decoding of `t` steps of class probabilities into characters: each step's best
/// class, repeats collapsed, blanks (class 0) dropped.
///
/// Only the characters a container marking can hold count (letters, digits, space and the
/// strokes of the check-digit box); the recogniser knows thousands more (it reads Chinese), and
/// without the mask a smudged digit can come out as a CJK character.
pub(super) fn emissions(probs: &[f32], t: usize, classes: &[char]) -> Vec<Emission> {
    let c = classes.len();
    let allowed: Vec<bool> = classes
        .iter()
        .enumerate()
        .map(|(i, ch)| i == 0 || ch.is_ascii_alphanumeric() || " []|".contains(*ch))
        .collect();
    let mut out: Vec<Emission> = Vec::new();
    let mut prev = 0usize;
    for step in 0..t {
        let row = &probs[step * c..(step + 1) * c];
        let (arg, &p) = row
            .iter()
            .enumerate()
            .filter(|(k, _)| allowed[*k])
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one class");
        if arg != 0 && arg != prev {
            out.push(Emission {
                class: arg,
                best: step,
                last: step,
            });
        } else if arg != 0
            && let Some(e) = out.last_mut()
        {
            // The same character over several steps.
            e.last = step;
            if p > probs[e.best * c + arg] {
                e.best = step;
            }
        }
        prev = arg;
    }
    out
}

/// Greedy CTC decoding (see [`emissions`]) into text, each character keeping up to three
/// candidates from its most confident step.
pub fn ctc_decode(probs: &[f32], t: usize, classes: &[char]) -> (String, Vec<CharCandidates>) {
    let c = classes.len();
    let allowed = |k: &usize| classes[*k].is_ascii_alphanumeric() || " []|".contains(classes[*k]);
    let mut text = String::new();
    let mut chars: Vec<Vec<(char, f32)>> = Vec::new();
    for e in emissions(probs, t, classes) {
        let row = &probs[e.best * c..(e.best + 1) * c];
        let mut order: Vec<usize> = (1..c).filter(allowed).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        chars.push(
            order
                .iter()
                .take(3)
                .map(|&k| (classes[k], row[k]))
                .collect(),
        );
        text.push(classes[e.class]);
    }
    (text, chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let classes = ['\0', 'A', 'B', ' '];
        // steps: A A blank A B B
        let steps = [1, 1, 0, 1, 2, 2];
        let mut probs = Vec::new();
        for &s in &steps {
            let mut row = [0.05f32; 4];
            row[s] = 0.85;
            probs.extend(row);
        }
        let (text, chars) = ctc_decode(&probs, steps.len(), &classes);
        assert_eq!(text, "AAB");
        assert_eq!(chars.len(), 3);
        assert_eq!(chars[0][0].0, 'A');
    }

    /// A horizontal line at `x` (left edge), 20 pixels high, with its characters at `p`.
    fn at(x: f32, text: &str, p: f32) -> TextLine {
        let len = 12.0 * text.len() as f32;
        let b = TextBox {
            centre: [x + len / 2.0, 100.0],
            axis: [1.0, 0.0],
            half: [len / 2.0, 10.0],
            score: 0.9,
        };
        let chars = text.chars().map(|c| vec![(c, p)]).collect();
        line(b, false, text.to_owned(), chars)
    }

    fn read(lines: &[TextLine]) -> Option<String> {
        read_container_code(lines).code.map(|c| c.to_string())
    }

    #[test]
    fn a_dropped_category_letter_is_put_back_only_where_the_check_digit_agrees() {
        assert_eq!(
            read(&[at(0.0, "HLX4384082", 0.95)]).as_deref(),
            Some("HLXU4384082")
        );
        assert_eq!(
            read(&[at(0.0, "C5Q| 8426797", 0.95)]).as_deref(),
            Some("CSQU8426797")
        );
        assert_eq!(
            read(&[at(0.0, "HLX4384083", 0.95)]),
            None,
            "the check fails"
        );
        // The category misread as a digit and the check digit lost: the gap says so.
        assert_eq!(read(&[at(0.0, "ZIM0 457608", 0.95)]), None);
        // An owner letter lost, the category read: not a category to put back.
        assert_eq!(read(&[at(0.0, "2MU 844127|3", 0.95)]), None);
    }

    #[test]
    fn a_box_stroke_read_as_a_digit_after_the_check_digit_is_dropped() {
        assert_eq!(
            read(&[at(0.0, "MSKU 35635077", 0.95)]).as_deref(),
            Some("MSKU3563507")
        );
        assert_eq!(
            read(&[at(0.0, "CMAU 96037351", 0.95)]).as_deref(),
            Some("CMAU9603735")
        );
        assert_eq!(
            read(&[at(0.0, "MSKU 35635078", 0.95)]),
            None,
            "8 is no stroke"
        );
    }

    #[test]
    fn a_weak_check_digit_counts_only_when_a_second_look_reads_it() {
        let mut weak = at(0.0, "TGHU 0790010", 0.99);
        weak.chars[11][0].1 = 0.13;
        assert_eq!(read(std::slice::from_ref(&weak)), None);
        // The digit read again inside its box, just after the serial.
        let probe = at(12.0 * 11.0, "0", 0.9);
        assert_eq!(read(&[weak.clone(), probe]).as_deref(), Some("TGHU0790010"));
        let other = at(12.0 * 11.0, "3", 0.9);
        assert_eq!(
            read(&[weak, other]),
            None,
            "a different digit fails the check"
        );
    }

    #[test]
    fn pieces_of_one_row_are_grouped_left_to_right() {
        let lines = [
            at(100.0, "2000557", 0.9),
            at(40.0, "MSC", 0.9),
            at(0.0, "45G1", 0.9),
        ];
        let mut lines = lines.to_vec();
        lines[2].text_box.centre[1] = 140.0; // the next row down
        let rows = rows(&lines);
        let texts: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(|l| l.text.as_str()).collect())
            .collect();
        assert_eq!(texts, vec![vec!["MSC", "2000557"], vec!["45G1"]]);
    }
}
