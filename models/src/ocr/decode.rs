//! From recogniser output to text (CTC decoding) and from text lines to a container code.

use baylens_protocol::code_read::{self, CharCandidates, CheckStatus, CodeReading};

use super::{TextBox, TextLine};

/// Reads the container code from the lines of a frame: lines on the same row are joined (the
/// check digit is often boxed apart from the serial), each row and each vertical stack is read
/// with [`code_read::read_code`], and a code is accepted only when exactly one distinct code
/// passes across all of them. Otherwise the result is "unreadable" with the best guess.
pub fn read_container_code(lines: &[TextLine]) -> CodeReading {
    // Horizontal lines that continue one another along their slant (a serial and its boxed check
    // digit, seen in perspective) form one group, read left to right.
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
            // Also a stray box stroke at the end of a longer line ("MSCU 733989 9]").
            if l.chars.len() > 3 && l.chars.last().is_some_and(|c| "[]|".contains(c[0].0)) {
                forms.push(l.chars[..l.chars.len() - 1].to_vec());
            }
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

/// Greedy CTC decoding of `t` steps of class probabilities: repeats collapsed, blanks (class 0)
/// dropped. Each character keeps up to three candidates from its most confident step.
///
/// Only the characters a container marking can hold count (letters, digits, space and the
/// strokes of the check-digit box); the recogniser knows thousands more (it reads Chinese), and
/// without the mask a smudged digit can come out as a CJK character.
pub fn ctc_decode(probs: &[f32], t: usize, classes: &[char]) -> (String, Vec<CharCandidates>) {
    let c = classes.len();
    let allowed: Vec<bool> = classes
        .iter()
        .enumerate()
        .map(|(i, ch)| i == 0 || ch.is_ascii_alphanumeric() || " []|".contains(*ch))
        .collect();
    let mut text = String::new();
    let mut chars: Vec<Vec<(char, f32)>> = Vec::new();
    let mut prev = 0usize;
    let mut best_p = 0.0f32;
    for step in 0..t {
        let row = &probs[step * c..(step + 1) * c];
        let (arg, &p) = row
            .iter()
            .enumerate()
            .filter(|(k, _)| allowed[*k])
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one class");
        if arg != 0 && arg != prev {
            let mut order: Vec<usize> = (1..c).filter(|&k| allowed[k]).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            chars.push(
                order
                    .iter()
                    .take(3)
                    .map(|&k| (classes[k], row[k]))
                    .collect(),
            );
            text.push(classes[arg]);
            best_p = p;
        } else if arg != 0 && arg == prev && p > best_p {
            // The same character over several steps: keep its most confident step.
            let mut order: Vec<usize> = (1..c).filter(|&k| allowed[k]).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            if let Some(last) = chars.last_mut() {
                *last = order
                    .iter()
                    .take(3)
                    .map(|&k| (classes[k], row[k]))
                    .collect();
            }
            best_p = p;
        }
        prev = arg;
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
}
