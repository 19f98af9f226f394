//! Chains of blobs stacked one under the other, and the cells of a code they can hold (see
//! [`super`]).

use super::ink::Blob;

/// Chains of 7 to 13 blobs stacked one under the other on one axis at a steady pitch (once three
/// give it, a chain short of 11 may step over one lost character); a blob is used by one chain
/// at most.
pub(super) fn chains(cells: &[Blob]) -> Vec<Vec<Blob>> {
    let mut order: Vec<usize> = (0..cells.len())
        .filter(|&i| (0.2..2.6).contains(&(cells[i].w() / cells[i].h())))
        .collect();
    order.sort_by(|&a, &b| cells[a].y0.cmp(&cells[b].y0));
    let mut used = vec![false; cells.len()];
    let mut out = Vec::new();
    for (k, &start) in order.iter().enumerate() {
        if used[start] || !cells[start].narrow() {
            continue;
        }
        let mut chain = vec![start];
        loop {
            let last = cells[*chain.last().expect("a chain has a start")];
            let axis = Axis::through(chain.iter().map(|&i| &cells[i]));
            // The running character height (a median, so the check digit's taller box does
            // not count) and, once three cells give it, the pitch.
            let blobs: Vec<Blob> = chain.iter().map(|&i| cells[i]).collect();
            let st = Stats::of(&blobs);
            let (size, pitch) = (st.size, (chain.len() >= 3).then_some(st.pitch));
            let next = order[k + 1..]
                .iter()
                .copied()
                .filter(|&j| !used[j] && !chain.contains(&j))
                .filter(|&j| {
                    let c = cells[j];
                    let gap = c.y0 as f32 - last.y1 as f32;
                    let want = axis.x_at(c.cy());
                    // A blob wider than a character (the check digit's box run into a bar's
                    // bracket) must at least straddle the column.
                    let on_axis = if c.narrow() {
                        (c.cx() - want).abs() < 0.45 * size
                    } else {
                        want > c.x0 as f32 + 0.3 * size && want < c.x1 as f32 - 0.3 * size
                    };
                    // Once three cells give the pitch, a chain short of a code may step over
                    // one character lost (run into the edge of the door, or under dirt).
                    let step = c.cy() - last.cy();
                    let spaced = match pitch {
                        Some(p) => {
                            (0.6 * p..1.4 * p).contains(&step)
                                || (chain.len() < 11 && (1.6 * p..2.4 * p).contains(&step))
                        }
                        None => gap > -0.3 * size && gap < 1.2 * size,
                    };
                    spaced && on_axis && c.h() > 0.6 * size && c.h() < 2.4 * size
                })
                .min_by_key(|&j| cells[j].y0);
            match next {
                Some(j) => chain.push(j),
                None => break,
            }
        }
        if (7..=13).contains(&chain.len()) {
            for &i in &chain {
                used[i] = true;
            }
            out.push(chain.iter().map(|&i| cells[i]).collect());
        }
    }
    out
}

/// The line a column's characters are centred on, `x = x0 + lean·(y − y0)`, through its first and
/// last blobs no wider than a character (a wide one is the box run into something beside it).
pub(super) struct Axis {
    x0: f32,
    y0: f32,
    lean: f32,
}

impl Axis {
    pub(super) fn through<'a>(blobs: impl Iterator<Item = &'a Blob> + Clone) -> Axis {
        let mut narrow: Vec<&Blob> = blobs.clone().filter(|b| b.narrow()).collect();
        if narrow.is_empty() {
            narrow = blobs.collect();
        }
        let (Some(a), Some(b)) = (narrow.first(), narrow.last()) else {
            return Axis {
                x0: 0.0,
                y0: 0.0,
                lean: 0.0,
            };
        };
        let dy = b.cy() - a.cy();
        Axis {
            x0: a.cx(),
            y0: a.cy(),
            lean: if dy > 1.0 {
                (b.cx() - a.cx()) / dy
            } else {
                0.0
            },
        }
    }

    pub(super) fn x_at(&self, y: f32) -> f32 {
        self.x0 + self.lean * (y - self.y0)
    }
}

/// Drops cells off the ends of a chain longer than a code while they stand off its pitch: a
/// bolt head or a smudge just above or below the code, which would otherwise read as one more
/// character and hide the code inside a longer run.
fn trim(mut chain: Vec<Blob>) -> Vec<Blob> {
    let centre = Blob::cy;
    while chain.len() > 11 {
        let mut steps: Vec<f32> = chain
            .windows(2)
            .map(|p| centre(&p[1]) - centre(&p[0]))
            .collect();
        let (first, last) = (steps[0], steps[steps.len() - 1]);
        steps.sort_by(f32::total_cmp);
        let pitch = steps[steps.len() / 2];
        let off = |s: f32| (s - pitch).abs() / pitch;
        if off(first).max(off(last)) < 0.25 {
            break;
        }
        if off(first) > off(last) {
            chain.remove(0);
        } else {
            chain.pop();
        }
    }
    chain
}

/// A chain's pitch (the median step between centres) and its characters' median size.
pub(super) struct Stats {
    pub pitch: f32,
    pub size: f32,
    pub width: f32,
}

impl Stats {
    pub(super) fn of(chain: &[Blob]) -> Stats {
        let median = |mut v: Vec<f32>| {
            v.sort_by(f32::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        Stats {
            pitch: median(chain.windows(2).map(|p| p[1].cy() - p[0].cy()).collect()),
            size: median(chain.iter().map(Blob::h).collect()),
            width: median(chain.iter().filter(|b| b.narrow()).map(Blob::w).collect()),
        }
    }
}

/// The cell a character of the chain would fill with its centre at height `y`, on the chain's
/// axis; `None` outside the frame.
fn cell_at(chain: &[Blob], st: &Stats, y: f32, w: usize, h: usize) -> Option<Blob> {
    let x = Axis::through(chain.iter()).x_at(y);
    let (x0, y0) = (x - st.width / 2.0, y - st.size / 2.0);
    let (x1, y1) = (x + st.width / 2.0, y + st.size / 2.0);
    if x0 < 0.0 || y0 < 0.0 || x1 > (w - 1) as f32 || y1 > (h - 1) as f32 {
        return None;
    }
    Some(Blob {
        x0: x0 as usize,
        y0: y0 as usize,
        x1: x1 as usize,
        y1: y1 as usize,
    })
}

/// The ways a chain can hold a code of 11: a character the chain stepped over gets its cell;
/// a chain longer than 11 is trimmed; a chain of 8 to 10 is grown by the cells it lacks, as many
/// above as below in every split (each is read; only a reading that passes the check digit
/// counts, and two that pass with different codes are no reading).
pub(super) fn complete(chain: Vec<Blob>, w: usize, h: usize) -> Vec<Vec<Blob>> {
    let st = Stats::of(&chain);
    if st.pitch < 1.0 {
        return Vec::new();
    }
    let mut full: Vec<Blob> = Vec::with_capacity(13);
    for (k, b) in chain.iter().enumerate() {
        if let Some(prev) = k.checked_sub(1).map(|p| chain[p]) {
            let lost = ((b.cy() - prev.cy()) / st.pitch).round() as usize;
            for k in 1..lost {
                let y = prev.cy() + (b.cy() - prev.cy()) * k as f32 / lost as f32;
                match cell_at(&chain, &st, y, w, h) {
                    Some(c) => full.push(c),
                    None => return Vec::new(),
                }
            }
        }
        full.push(*b);
    }
    if full.len() >= 11 {
        return vec![trim(full)];
    }
    if full.len() < 8 {
        return Vec::new();
    }
    let missing = 11 - full.len();
    (0..=missing)
        .filter_map(|above| {
            let mut grown = full.clone();
            for k in 1..=above {
                let y = full[0].cy() - k as f32 * st.pitch;
                grown.insert(0, cell_at(&full, &st, y, w, h)?);
            }
            let last = full[full.len() - 1].cy();
            for k in 1..=missing - above {
                grown.push(cell_at(&full, &st, last + k as f32 * st.pitch, w, h)?);
            }
            Some(grown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(y0: usize) -> Blob {
        Blob {
            x0: 100,
            y0,
            x1: 120,
            y1: y0 + 29,
        }
    }

    #[test]
    fn an_end_cell_off_the_pitch_is_trimmed() {
        let mut chain: Vec<Blob> = (0..11).map(|k| blob(100 + 44 * k)).collect();
        chain.insert(0, blob(76));
        let trimmed = complete(chain.clone(), 400, 700);
        assert_eq!(trimmed.len(), 1);
        assert_eq!(trimmed[0].len(), 11);
        assert_eq!(trimmed[0][0], blob(100));
        // Twelve on the pitch stay twelve: nothing tells which end is not the code's.
        chain[0] = blob(56);
        assert_eq!(trim(chain).len(), 12);
    }

    #[test]
    fn a_chain_short_of_a_code_gets_the_cells_it_lacks() {
        let near = |b: &Blob, y0: usize| b.y0.abs_diff(y0) <= 1;
        // A character stepped over in the middle: its cell, and nothing else.
        let mut holed: Vec<Blob> = (0..11).map(|k| blob(100 + 44 * k)).collect();
        holed.remove(5);
        let filled = complete(holed, 400, 700);
        assert_eq!(filled.len(), 1);
        assert_eq!(filled[0].len(), 11);
        assert!(near(&filled[0][5], 100 + 44 * 5), "{:?}", filled[0][5]);
        // Ten: one more above, or one more below.
        let ten: Vec<Blob> = (0..10).map(|k| blob(100 + 44 * k)).collect();
        let grown = complete(ten.clone(), 400, 700);
        assert_eq!(grown.len(), 2);
        assert!(grown.iter().all(|g| g.len() == 11));
        assert!(near(&grown[0][10], 100 + 44 * 10), "{:?}", grown[0][10]);
        assert!(near(&grown[1][0], 56), "{:?}", grown[1][0]);
        // Not where the frame ends, and not from a chain of seven.
        assert_eq!(complete(ten, 400, 540).len(), 1);
        let seven: Vec<Blob> = (0..7).map(|k| blob(100 + 44 * k)).collect();
        assert!(complete(seven, 400, 700).is_empty());
    }
}
