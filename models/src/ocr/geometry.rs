//! Geometry of text in a frame: DB boxes from the detector's map, straightened lines, and the
//! cells of a code stacked on a door post.

use super::{OcrOptions, Rgb, TextBox};

/// DB post-processing on a `w x h` probability map: oriented boxes in map pixels.
pub(super) fn db_boxes(prob: &[f32], w: usize, h: usize, o: OcrOptions) -> Vec<TextBox> {
    let mut label = vec![0u32; w * h];
    let mut boxes = Vec::new();
    let mut next = 0u32;
    let mut stack = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    for start in 0..w * h {
        if prob[start] <= o.det_thresh || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        members.clear();
        while let Some(i) = stack.pop() {
            members.push(i);
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if label[j] == 0 && prob[j] > o.det_thresh {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if members.len() < 6 {
            continue;
        }
        let score = members.iter().map(|&i| prob[i]).sum::<f32>() / members.len() as f32;
        if score < o.box_thresh {
            continue;
        }
        // Principal axis of the region's pixels.
        let n = members.len() as f32;
        let (mx, my) = members.iter().fold((0.0f32, 0.0f32), |(a, b), &i| {
            (a + (i % w) as f32, b + (i / w) as f32)
        });
        let (mx, my) = (mx / n, my / n);
        let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
        for &i in &members {
            let (dx, dy) = ((i % w) as f32 - mx, (i / w) as f32 - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let (ax, ay) = (angle.cos(), angle.sin());
        let (mut lo, mut hi, mut nlo, mut nhi) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for &i in &members {
            let (dx, dy) = ((i % w) as f32 - mx, (i / w) as f32 - my);
            let s = dx * ax + dy * ay;
            let t = -dx * ay + dy * ax;
            lo = lo.min(s);
            hi = hi.max(s);
            nlo = nlo.min(t);
            nhi = nhi.max(t);
        }
        let (len, thick) = (hi - lo + 1.0, nhi - nlo + 1.0);
        if thick < 2.0 {
            continue;
        }
        let grow = len * thick * o.unclip_ratio / (2.0 * (len + thick));
        let (cs, ct) = ((lo + hi) / 2.0, (nlo + nhi) / 2.0);
        boxes.push(TextBox {
            centre: [mx + ax * cs - ay * ct, my + ay * cs + ax * ct],
            axis: [ax, ay],
            half: [len / 2.0 + grow, thick / 2.0 + grow],
            score,
        });
    }
    // Lines read left to right, top to bottom.
    boxes.sort_by(|a, b| {
        (a.centre[1] / 8.0)
            .floor()
            .total_cmp(&(b.centre[1] / 8.0).floor())
            .then(a.centre[0].total_cmp(&b.centre[0]))
    });
    // Keep every line pointing left to right (or top to bottom for vertical ones).
    for b in &mut boxes {
        if (b.is_vertical() && b.axis[1] < 0.0) || (!b.is_vertical() && b.axis[0] < 0.0) {
            b.axis = [-b.axis[0], -b.axis[1]];
        }
    }
    boxes
}

/// Resamples the box into a straight line `out_h` pixels high; returns RGB floats and width.
pub(super) fn straighten(img: Rgb<'_>, b: &TextBox, out_h: usize) -> (Vec<f32>, usize) {
    let (len, thick) = (2.0 * b.half[0], 2.0 * b.half[1]);
    let w = ((len / thick * out_h as f32).round() as usize).clamp(8, 48 * 40);
    let [cx, cy] = b.centre;
    let [ax, ay] = b.axis;
    let (nx, ny) = (-ay, ax);
    let mut out = Vec::with_capacity(w * out_h * 3);
    for y in 0..out_h {
        let t = ((y as f32 + 0.5) / out_h as f32 - 0.5) * thick;
        for x in 0..w {
            let s = ((x as f32 + 0.5) / w as f32 - 0.5) * len;
            out.extend(img.sample(cx + ax * s + nx * t, cy + ay * s + ny * t));
        }
    }
    (out, w)
}

/// A character box sampled upright into a 48 x 48 cell (keeping its aspect, centred).
pub(super) fn upright_cell(img: Rgb<'_>, b: &TextBox) -> Vec<f32> {
    let [x0, y0, x1, y1] = b.bounds();
    cell_from(img, [x0, y0, x1, y1])
}

/// The side of a character cell, and the gap between cells laid side by side.
pub(super) const CELL: usize = 48;
pub(super) const CELL_GAP: usize = 10;

pub(super) fn cell_from(img: Rgb<'_>, [x0, y0, x1, y1]: [f32; 4]) -> Vec<f32> {
    const S: usize = CELL;
    let (bw, bh) = ((x1 - x0).max(1.0), (y1 - y0).max(1.0));
    let scale = (S as f32 / bh).min(S as f32 / bw);
    let (ow, oh) = (bw * scale, bh * scale);
    let (ox, oy) = ((S as f32 - ow) / 2.0, (S as f32 - oh) / 2.0);
    // The background of the cell: the box's own border colour.
    let fill = img.sample(x0, y0);
    let mut out = Vec::with_capacity(S * S * 3);
    for y in 0..S {
        for x in 0..S {
            let (fx, fy) = (x as f32 + 0.5 - ox, y as f32 + 0.5 - oy);
            if fx < 0.0 || fy < 0.0 || fx >= ow || fy >= oh {
                out.extend(fill);
            } else {
                out.extend(img.sample(x0 + fx / scale, y0 + fy / scale));
            }
        }
    }
    out
}

/// Lays 48 x 48 cells side by side with a narrow gap: one 48-pixel-high line.
pub(super) fn side_by_side(cells: &[Vec<f32>]) -> Vec<f32> {
    const S: usize = CELL;
    const GAP: usize = CELL_GAP;
    let w = cells.len() * (S + GAP) + GAP;
    let fill: [f32; 3] = cells.first().map_or([128.0; 3], |c| [c[0], c[1], c[2]]);
    let mut out = Vec::with_capacity(w * S * 3);
    for y in 0..S {
        for x in 0..w {
            let k = x / (S + GAP);
            let cx = x % (S + GAP);
            if x < GAP * (k + 1) + S * k || k >= cells.len() || cx < GAP {
                out.extend(fill);
            } else {
                let xx = cx - GAP;
                let i = (y * S + xx) * 3;
                out.extend(&cells[k][i..i + 3]);
            }
        }
    }
    out
}

/// Groups character-sized boxes that stack into a column (at least six of them) and returns
/// the columns, top to bottom, and the boxes that are not part of one.
pub(super) fn vertical_columns(boxes: &[TextBox]) -> (Vec<Vec<TextBox>>, Vec<TextBox>) {
    let squareish = |b: &TextBox| {
        let [x0, y0, x1, y1] = b.bounds();
        let (w, h) = (x1 - x0, y1 - y0);
        w < 2.2 * h && h < 2.2 * w
    };
    let mut used = vec![false; boxes.len()];
    let mut columns = Vec::new();
    let mut order: Vec<usize> = (0..boxes.len()).filter(|&i| squareish(&boxes[i])).collect();
    order.sort_by(|&a, &b| boxes[a].centre[1].total_cmp(&boxes[b].centre[1]));
    for &i in &order {
        if used[i] {
            continue;
        }
        let mut column = vec![i];
        let mut last = i;
        for &j in &order {
            if used[j] || column.contains(&j) {
                continue;
            }
            let (a, b) = (boxes[last].bounds(), boxes[j].bounds());
            let size = (a[3] - a[1]).max(a[2] - a[0]);
            let cx_a = (a[0] + a[2]) / 2.0;
            let cx_b = (b[0] + b[2]) / 2.0;
            if b[1] > a[1] && (cx_a - cx_b).abs() < 0.5 * size && b[1] - a[3] < 1.5 * size {
                column.push(j);
                last = j;
            }
        }
        if column.len() >= 6 {
            for &k in &column {
                used[k] = true;
            }
            columns.push(column.iter().map(|&k| boxes[k]).collect());
        }
    }
    let rest = (0..boxes.len())
        .filter(|&i| !used[i])
        .map(|i| boxes[i])
        .collect();
    (columns, rest)
}

pub(super) fn enclosing(boxes: &[TextBox]) -> TextBox {
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for t in boxes {
        let r = t.bounds();
        b = [
            b[0].min(r[0]),
            b[1].min(r[1]),
            b[2].max(r[2]),
            b[3].max(r[3]),
        ];
    }
    TextBox {
        centre: [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0],
        axis: [0.0, 1.0],
        half: [(b[3] - b[1]) / 2.0, (b[2] - b[0]) / 2.0],
        score: boxes.iter().map(|t| t.score).sum::<f32>() / boxes.len().max(1) as f32,
    }
}

/// The box along the longest of `boxes`' axis that holds all of them (a row of lines seen as
/// one line); `None` for no boxes.
pub(super) fn along(boxes: &[TextBox]) -> Option<TextBox> {
    let longest = boxes
        .iter()
        .max_by(|a, b| a.half[0].total_cmp(&b.half[0]))?;
    let [ax, ay] = longest.axis;
    let (nx, ny) = (-ay, ax);
    let [cx, cy] = longest.centre;
    let (mut s0, mut s1, mut t0, mut t1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for c in boxes.iter().flat_map(TextBox::corners) {
        let (dx, dy) = (c[0] - cx, c[1] - cy);
        let (s, t) = (dx * ax + dy * ay, dx * nx + dy * ny);
        (s0, s1, t0, t1) = (s0.min(s), s1.max(s), t0.min(t), t1.max(t));
    }
    let (sm, tm) = ((s0 + s1) / 2.0, (t0 + t1) / 2.0);
    Some(TextBox {
        centre: [cx + ax * sm + nx * tm, cy + ay * sm + ny * tm],
        axis: [ax, ay],
        half: [(s1 - s0) / 2.0, (t1 - t0) / 2.0],
        score: boxes.iter().map(|t| t.score).sum::<f32>() / boxes.len() as f32,
    })
}

/// Cuts a tall box over a stacked code into character cells at the rows where the ink
/// (whichever of dark or light is the minority) stops.
pub(super) fn split_stack(img: Rgb<'_>, b: &TextBox) -> Vec<Vec<f32>> {
    let [x0, y0, x1, y1] = b.bounds();
    let (x0, x1) = (x0.max(0.0) as usize, (x1 as usize).min(img.width - 1));
    let (y0, y1) = (y0.max(0.0) as usize, (y1 as usize).min(img.height - 1));
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return Vec::new();
    }
    let lum = |x: usize, y: usize| {
        let i = (y * img.width + x) * 3;
        (u32::from(img.data[i]) + u32::from(img.data[i + 1]) + u32::from(img.data[i + 2])) / 3
    };
    let mut values: Vec<u32> = (y0..=y1)
        .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
        .map(|(x, y)| lum(x, y))
        .collect();
    values.sort_unstable();
    let mid = values[values.len() / 2];
    let (lo, hi) = (values[values.len() / 20], values[values.len() * 19 / 20]);
    let thresh = (lo + hi) / 2;
    // Ink is the minority side of the threshold.
    let ink_dark = mid > thresh;
    let rows: Vec<usize> = (y0..=y1)
        .map(|y| {
            (x0..=x1)
                .filter(|&x| (lum(x, y) < thresh) == ink_dark)
                .count()
        })
        .collect();
    let min_ink = ((x1 - x0) / 12).max(1);
    let mut cells = Vec::new();
    let mut start = None;
    for (i, &r) in rows.iter().enumerate() {
        match (start, r >= min_ink) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                if i - s >= 3 {
                    cells.push(cell_from(
                        img,
                        [
                            x0 as f32,
                            (y0 + s) as f32 - 2.0,
                            x1 as f32,
                            (y0 + i) as f32 + 2.0,
                        ],
                    ));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        cells.push(cell_from(
            img,
            [x0 as f32, (y0 + s) as f32 - 2.0, x1 as f32, y1 as f32],
        ));
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_finds_a_slanted_line_with_its_orientation() {
        let (w, h) = (200, 100);
        let mut prob = vec![0.0f32; w * h];
        for x in 20..180 {
            let yc = 50.0 + (x as f32 - 100.0) * 0.1;
            for y in (yc - 5.0) as usize..(yc + 5.0) as usize {
                prob[y * w + x] = 0.9;
            }
        }
        let boxes = db_boxes(&prob, w, h, OcrOptions::default());
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        assert!((b.axis[1] / b.axis[0] - 0.1).abs() < 0.02, "{b:?}");
        assert!(b.half[0] > 80.0 && b.half[1] > 5.0, "{b:?}");
    }

    #[test]
    fn a_row_of_slanted_boxes_becomes_one_box_along_the_longest() {
        let (c, s) = (0.1f32.cos(), 0.1f32.sin());
        let piece = |x: f32, half: f32| TextBox {
            centre: [x, 100.0 + (x - 100.0) * s / c],
            axis: [c, s],
            half: [half, 10.0],
            score: 0.8,
        };
        let row = along(&[piece(60.0, 15.0), piece(120.0, 40.0)]).unwrap();
        assert_eq!(along(&[]), None);
        assert_eq!(row.axis, [c, s]);
        // From the first piece's start to the second's end, as high as one piece.
        let (start, end) = (60.0 / c - 15.0, 120.0 / c + 40.0);
        assert!((2.0 * row.half[0] - (end - start)).abs() < 8.0, "{row:?}");
        assert!((row.half[1] - 10.0).abs() < 0.5, "{row:?}");
    }
}
