//! Codes stacked on a door post, found without the text detector.
//!
//! PaddleOCR's detector was trained on lines of text: a column of single characters, with a
//! gap as tall as a character between each, barely registers. This pass looks for the column
//! directly:
//! 1. It marks the pixels that stand out from their neighbourhood's mean, darker or lighter (one
//!    pass per ink polarity), and clears the long near-vertical runs among them: locking bars,
//!    corrugation ribs and frame edges, never a character.
//! 2. It groups what is left into blobs, joins blobs that share a row (a character split by a
//!    bar, a digit and its box), and chains blobs that sit one below the other on one axis, at
//!    one size and a steady pitch.
//! 3. A chain of 7 or more gets a cell for a character it stepped over. One longer than a code
//!    is trimmed of end cells off its pitch. One of 8 to 10 is grown by the cells it lacks, in
//!    every split between above and below, and each is read.
//! 4. Each cell is cut at a character's size about its blob, and the cells are read as one line,
//!    one character per cell; the last (the check digit, in its box) is read again closer in.
//!
//! Whatever it reads must still pass the check digit and the reader's confidence floors.

use crate::ModelError;
use crate::ocr::decode::{is_code_length, line};
use crate::ocr::geometry::{CELL, CELL_GAP, cell_from, side_by_side};
use crate::ocr::{OcrModel, Rgb, TextBox, TextLine};
use baylens_protocol::code_read::CharCandidates;
use chain::{Axis, Stats, chains, complete};
use ink::{Blob, INK, blobs, box_mean, drop_long_runs, merge_rows};

mod chain;
mod ink;

impl OcrModel {
    /// Reads every stacked column [`find_columns`] finds in a frame, as one line each, and
    /// keeps those that read as long as a container code.
    pub fn read_stacks(&mut self, img: Rgb<'_>) -> Result<Vec<TextLine>, ModelError> {
        let mut lines = Vec::new();
        for c in find_columns(img) {
            let cells: Vec<Vec<f32>> = c.cells.iter().map(|&r| cell_from(img, r)).collect();
            let chars = self.read_cells(&cells, &c.hull)?;
            let text: String = chars.iter().map(|k| k[0].0).collect();
            if !is_code_length(&text) {
                continue;
            }
            let mut l = line(c.hull, true, text, chars);
            // The last cell holds the check digit, whose box strokes may reach into the cell:
            // read it again, closer in, as another reading of the line.
            let last = c.cells[c.cells.len() - 1];
            if l.chars.len() == c.cells.len() {
                let (cx, cy) = ((last[0] + last[2]) / 2.0, (last[1] + last[3]) / 2.0);
                let (hw, hh) = (0.35 * (last[2] - last[0]), 0.4 * (last[3] - last[1]));
                let tight = cell_from(img, [cx - hw, cy - hh, cx + hw, cy + hh]);
                if let [digit] = self.read_cells(&[tight], &c.hull)?.as_slice() {
                    let mut other = l.chars.clone();
                    other.pop();
                    other.push(digit.clone());
                    l.alternatives.push(other);
                }
            }
            lines.push(l);
        }
        Ok(lines)
    }

    /// Reads cells laid side by side as one line, one character per cell: each cell is read at
    /// the recogniser's most confident step over it, so a box stroke or a smudge in a cell
    /// cannot add a character or split one in two. A cell where no character reaches
    /// [`CELL_MIN`] is left out (dirt, a bolt head).
    fn read_cells(
        &mut self,
        cells: &[Vec<f32>],
        region: &TextBox,
    ) -> Result<Vec<CharCandidates>, ModelError> {
        let strip = side_by_side(cells);
        let width = (strip.len() / (CELL * 3)).max(320);
        let (t, probs) = self.recognise_steps(&strip, region, true)?;
        let classes = self.classes();
        let n = classes.len();
        let step = width as f32 / t.max(1) as f32;
        let mut out = Vec::new();
        for k in 0..cells.len() {
            let x0 = (CELL_GAP + k * (CELL + CELL_GAP)) as f32;
            let (s0, s1) = (
                (x0 / step).floor() as usize,
                (((x0 + CELL as f32) / step).ceil() as usize).min(t),
            );
            let alnum = |i: &usize| classes[*i].is_ascii_alphanumeric();
            // The cell's most confident step, and the candidates at that step alone (as CTC
            // decoding keeps them): the best of each class over several steps would inflate the
            // runners-up, and with them the corrections the ISO 6346 reader may make.
            let top = |s: usize| {
                (0..n)
                    .filter(alnum)
                    .map(|i| probs[s * n + i])
                    .fold(0.0, f32::max)
            };
            let peak = (s0..s1)
                .map(|s| (s, top(s)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((peak, _)) = peak else { continue };
            let row = &probs[peak * n..(peak + 1) * n];
            let mut best: Vec<(char, f32)> =
                (0..n).filter(alnum).map(|i| (classes[i], row[i])).collect();
            best.sort_by(|a, b| b.1.total_cmp(&a.1));
            best.truncate(3);
            if best.first().is_some_and(|b| b.1 >= CELL_MIN) {
                out.push(best);
            }
        }
        Ok(out)
    }
}

/// The least probability a cell's best character needs to be read as one.
const CELL_MIN: f32 = 0.1;

/// Cells of one stacked column, top to bottom, in frame pixels (`[x0, y0, x1, y1]`), and the
/// box around them all.
struct Column {
    cells: Vec<[f32; 4]>,
    hull: TextBox,
    /// Its characters' height (the median cell's, in pixels).
    size: f32,
    /// Whether its ink is darker than the paint.
    dark: bool,
}

impl Column {
    fn overlaps(&self, o: &Column) -> bool {
        let (a, b) = (self.hull.bounds(), o.hull.bounds());
        a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
    }
}

/// The stacked columns in a frame. Where a column of dark ink and one of light ink overlap, the
/// one with the smaller characters is the gaps between the other's (paint between dark
/// characters stands out as light next to them) and is dropped.
fn find_columns(img: Rgb<'_>) -> Vec<Column> {
    let (w, h) = (img.width, img.height);
    if w < 32 || h < 32 {
        return Vec::new();
    }
    let lum: Vec<f32> = img
        .data
        .chunks_exact(3)
        .map(|p| (f32::from(p[0]) + f32::from(p[1]) + f32::from(p[2])) / 3.0)
        .collect();
    // The neighbourhood: a window 2r + 1 high (a 18th of the frame), wider than any stroke, so
    // its mean is the paint's; blobs up to 3r are looked at, taller runs are cleared.
    let r = (h / 36).max(8);
    let mean = box_mean(&lum, w, h, r);
    let mut columns = Vec::new();
    for dark in [true, false] {
        let mut ink: Vec<bool> = lum
            .iter()
            .zip(&mean)
            .map(|(&l, &m)| if dark { m - l > INK } else { l - m > INK })
            .collect();
        drop_long_runs(&mut ink, w, h, 3 * r);
        let blobs = blobs(&ink, w, h, 3 * r);
        let cells = merge_rows(blobs);
        for chain in chains(&cells) {
            for cells in complete(chain, w, h) {
                columns.push(column(&cells, dark, w, h));
            }
        }
    }
    let keep: Vec<bool> = columns
        .iter()
        .map(|c| {
            !columns
                .iter()
                .any(|o| o.dark != c.dark && o.size > c.size && o.overlaps(c))
        })
        .collect();
    columns
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

/// The character cells of a chain: every cell as wide as the column's wider characters plus a
/// margin, and as tall as its own character.
fn column(chain: &[Blob], dark: bool, w: usize, h: usize) -> Column {
    let size = Stats::of(chain).size;
    let mut ws: Vec<f32> = chain.iter().filter(|b| b.narrow()).map(Blob::w).collect();
    ws.sort_by(f32::total_cmp);
    let wide = ws.get(ws.len() * 3 / 4).copied().unwrap_or(size);
    let half_w = wide.max(0.5 * size) / 2.0 + 0.2 * size;
    let (fw, fh) = ((w - 1) as f32, (h - 1) as f32);
    let pad = 0.15 * size;
    let axis = Axis::through(chain.iter());
    let cells: Vec<[f32; 4]> = chain
        .iter()
        .map(|b| {
            let cx = if b.narrow() {
                b.cx()
            } else {
                axis.x_at(b.cy())
            };
            // A blob taller than a character (the check digit with its box, or two characters
            // run together by blur) gets a character's height about its middle, which cuts the
            // box's strokes away.
            let (y0, y1) = if b.h() > 1.25 * size {
                let cy = (b.y0 + b.y1) as f32 / 2.0;
                (cy - size / 2.0, cy + size / 2.0)
            } else {
                (b.y0 as f32, b.y1 as f32)
            };
            [
                (cx - half_w).max(0.0),
                (y0 - pad).max(0.0),
                (cx + half_w).min(fw),
                (y1 + pad).min(fh),
            ]
        })
        .collect();
    let (x0, y0, x1, y1) = cells.iter().fold(
        (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
        |(a, b, c, d), r| (a.min(r[0]), b.min(r[1]), c.max(r[2]), d.max(r[3])),
    );
    Column {
        cells,
        hull: TextBox {
            centre: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            axis: [0.0, 1.0],
            half: [(y1 - y0) / 2.0, (x1 - x0) / 2.0],
            score: 1.0,
        },
        size,
        dark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 400 x 700 grey door with eleven dark "characters" (22 x 30 blocks with a notch open to
    /// the right, like a C) stacked at a 44-pixel pitch, and a dark bar running down through
    /// the column when `bar` is set.
    fn door(bar: bool) -> Vec<u8> {
        let (w, h) = (400usize, 700usize);
        let mut img = vec![150u8; w * h * 3];
        let mut put = |x: usize, y: usize, v: u8| {
            let i = (y * w + x) * 3;
            img[i..i + 3].copy_from_slice(&[v; 3]);
        };
        for k in 0..11 {
            let top = 100 + 44 * k;
            for y in top..top + 30 {
                for x in 189..211 {
                    let notch = x >= 204 && (top + 8..top + 22).contains(&y);
                    put(x, y, if notch { 150 } else { 30 });
                }
            }
        }
        if bar {
            for y in 0..h {
                for x in 197..203 {
                    put(x, y, 60);
                }
            }
        }
        img
    }

    fn columns(data: &[u8]) -> Vec<Column> {
        find_columns(Rgb {
            data,
            width: 400,
            height: 700,
        })
    }

    #[test]
    fn a_stack_of_eleven_is_one_column_of_eleven_cells() {
        let found = columns(&door(false));
        assert_eq!(found.len(), 1);
        let cells = &found[0].cells;
        assert_eq!(cells.len(), 11);
        for (k, c) in cells.iter().enumerate() {
            let cy = (c[1] + c[3]) / 2.0;
            assert!((cy - (115.0 + 44.0 * k as f32)).abs() < 2.0, "{k}: {c:?}");
            assert!(c[0] < 189.0 && c[2] > 211.0, "{k}: {c:?}");
        }
    }

    #[test]
    fn a_bar_through_the_stack_neither_hides_nor_joins_its_characters() {
        let found = columns(&door(true));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].cells.len(), 11);
    }

    #[test]
    fn a_plain_door_and_a_bar_alone_hold_no_column() {
        let mut plain = door(false);
        plain.fill(150);
        assert!(columns(&plain).is_empty());
        for y in 0..700 {
            for x in 197..203 {
                let i = (y * 400 + x) * 3;
                plain[i..i + 3].copy_from_slice(&[60; 3]);
            }
        }
        assert!(columns(&plain).is_empty());
    }
}
