//! Typefaces for the markings the simulated cameras paint on containers.
//!
//! Every view used to be painted in one typeface (DejaVu Sans Condensed Bold, bundled). Real
//! containers carry their owners' typefaces, so a reader checked on one says little about a
//! gate. A [`Typeface`] is the bundled face or any TrueType/OpenType file (Debian's font
//! packages), and [`FontSplit`] keeps the typefaces a recogniser may be trained on apart from
//! the ones it is measured on (`models/train/ocr-fonts.txt`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ab_glyph::{Font, FontArc, FontVec, PxScale, ScaleFont, point};
use image::RgbImage;

/// A typeface for markings, with its cap height.
#[derive(Clone)]
pub struct Typeface {
    name: Arc<str>,
    font: FontArc,
    /// `size / divisor` is the [`PxScale`] that paints this face at nominal size `size`.
    divisor: f64,
}

/// The bundled face's divisor (the simulator's views have always been painted with it).
const BUNDLED_DIVISOR: f64 = 0.73;

impl std::fmt::Debug for Typeface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typeface")
            .field("name", &self.name)
            .finish()
    }
}

impl Typeface {
    /// DejaVu Sans Condensed Bold, bundled with the simulator.
    pub fn bundled() -> Self {
        let font = ab_glyph::FontRef::try_from_slice(dejavu::sans_condensed::bold())
            .expect("the bundled font parses");
        Self::new("DejaVuSansCondensed-Bold", FontArc::new(font), None)
            .expect("DejaVu has capitals")
    }

    /// A TrueType or OpenType file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let font = FontVec::try_from_vec(bytes)
            .map_err(|e| format!("{}: not a TrueType/OpenType font: {e}", path.display()))?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        let bundled = Self::bundled();
        Self::new(&name, FontArc::new(font), Some(&bundled))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A face painted with the cap height `like` has at the same size (`None`: the bundled
    /// face itself).
    fn new(name: &str, font: FontArc, like: Option<&Typeface>) -> Result<Self, String> {
        // Every character of a container marking must have a glyph.
        for c in ('A'..='Z').chain('0'..='9') {
            if font.glyph_id(c).0 == 0 {
                return Err(format!("no glyph for {c:?}"));
            }
        }
        let share = cap_share(&font)?;
        let divisor = match like {
            None => BUNDLED_DIVISOR,
            Some(b) => b.divisor * share / cap_share(&b.font)?,
        };
        Ok(Self {
            name: name.into(),
            font,
            divisor,
        })
    }

    /// The font file's stem (`NimbusSans-Bold`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn scale(&self, size: f64) -> PxScale {
        PxScale::from((size / self.divisor) as f32)
    }

    /// Draws `text` at nominal size `size` px with its top-left at (x, y); returns its width.
    /// Every face is painted with the cap height the bundled face has at that size (0.86 ×
    /// `size`), so a marking keeps its size whatever the owner's typeface.
    pub fn draw(
        &self,
        img: &mut RgbImage,
        text: &str,
        x: f64,
        y: f64,
        size: f64,
        colour: [u8; 3],
    ) -> f64 {
        let scale = self.scale(size);
        let scaled = self.font.as_scaled(scale);
        let mut caret = x as f32;
        let baseline = y as f32 + size as f32;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, baseline));
            if let Some(outlined) = self.font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                outlined.draw(|gx, gy, cov| {
                    let px = b.min.x as i64 + i64::from(gx);
                    let py = b.min.y as i64 + i64::from(gy);
                    if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height()
                    {
                        let p = img.get_pixel_mut(px as u32, py as u32);
                        for k in 0..3 {
                            p[k] =
                                (f32::from(p[k]) * (1.0 - cov) + f32::from(colour[k]) * cov) as u8;
                        }
                    }
                });
            }
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        f64::from(caret) - x
    }

    /// Where [`Typeface::draw`] puts each letter and digit of `text` (drawn at (x, y), size
    /// `size`): the centre of its advance and of the cap height. The truth a recogniser's
    /// training crops are labelled from.
    pub fn centres(&self, text: &str, x: f64, y: f64, size: f64) -> Vec<(char, [f64; 2])> {
        let scaled = self.font.as_scaled(self.scale(size));
        let mid = y + size - 0.43 * size;
        let mut caret = x as f32;
        let mut prev = None;
        let mut out = Vec::new();
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let advance = scaled.h_advance(id);
            if c.is_ascii_alphanumeric() {
                out.push((c, [f64::from(caret + advance / 2.0), mid]));
            }
            caret += advance;
            prev = Some(id);
        }
        out
    }

    /// The width of `text` at nominal size `size` px.
    pub fn width(&self, text: &str, size: f64) -> f64 {
        let scaled = self.font.as_scaled(self.scale(size));
        text.chars()
            .map(|c| f64::from(scaled.h_advance(scaled.glyph_id(c))))
            .sum()
    }
}

/// The height of `H` (which stands on the baseline) as a share of the height [`PxScale`]
/// measures (ascent − descent).
fn cap_share(font: &FontArc) -> Result<f64, String> {
    let cap = font
        .outline(font.glyph_id('H'))
        .map(|o| (o.bounds.max.y - o.bounds.min.y).abs())
        .filter(|h| *h > 0.0)
        .ok_or("no outline for 'H'")?;
    Ok(f64::from(cap) / f64::from(font.height_unscaled()))
}

/// Which typefaces a recogniser may learn from and which it is measured on, as
/// `models/train/ocr-fonts.txt` lists them: one `train PATH` or `heldout PATH` per line, `#`
/// comments. The split is by family, so a held-out face is never a weight or width of a
/// training one.
#[derive(Debug, Clone, Default)]
pub struct FontSplit {
    /// Faces for training.
    pub train: Vec<PathBuf>,
    /// Faces for measurement only.
    pub heldout: Vec<PathBuf>,
}

impl FontSplit {
    /// Parses a split file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut split = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let (set, path) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("line {}: expected `train|heldout PATH`", n + 1))?;
            let path = PathBuf::from(path.trim());
            match set {
                "train" => split.train.push(path),
                "heldout" => split.heldout.push(path),
                other => {
                    return Err(format!(
                        "line {}: unknown set {other:?} (train or heldout)",
                        n + 1
                    ));
                }
            }
        }
        if let Some(both) = split.train.iter().find(|p| split.heldout.contains(p)) {
            return Err(format!("{} is in both sets", both.display()));
        }
        Ok(split)
    }

    /// Loads every face of `set` (`train` or `heldout`), naming the Debian package to install
    /// for a missing file.
    pub fn load(&self, set: &str) -> Result<Vec<Typeface>, String> {
        let paths = match set {
            "train" => &self.train,
            "heldout" => &self.heldout,
            other => return Err(format!("unknown font set {other:?} (train or heldout)")),
        };
        if paths.is_empty() {
            return Err(format!("the split lists no {set} fonts"));
        }
        paths
            .iter()
            .map(|p| {
                if !p.exists() {
                    return Err(format!(
                        "{} is missing: install the fonts with `apt-get install {}`",
                        p.display(),
                        FONT_PACKAGES.join(" ")
                    ));
                }
                Typeface::load(p)
            })
            .collect()
    }
}

/// The Debian packages `models/train/ocr-fonts.txt` draws on.
pub const FONT_PACKAGES: [&str; 8] = [
    "fonts-dejavu-core",
    "fonts-liberation2",
    "fonts-freefont-ttf",
    "fonts-urw-base35",
    "fonts-roboto-unhinted",
    "fonts-open-sans",
    "fonts-noto-core",
    "fonts-cantarell",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cap_height(face: &Typeface) -> u32 {
        let mut img = RgbImage::new(200, 80);
        let w = face.draw(&mut img, "H", 10.0, 10.0, 40.0, [255, 255, 255]);
        assert!((w - face.width("H", 40.0)).abs() < 1e-3);
        let rows: Vec<u32> = (0..80)
            .filter(|&y| (0..200).any(|x| img.get_pixel(x, y)[0] > 128))
            .collect();
        rows.last().unwrap() - rows.first().unwrap() + 1
    }

    #[test]
    fn every_face_paints_the_bundled_cap_height() {
        let bundled = cap_height(&Typeface::bundled());
        assert!((33..=36).contains(&bundled), "{bundled}");
        // Any other face on this machine (Debian's fonts, when installed) matches it.
        let dir = Path::new("/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf");
        if let Ok(face) = Typeface::load(dir) {
            let other = cap_height(&face);
            assert!(other.abs_diff(bundled) <= 1, "{other} vs {bundled}");
        }
    }

    #[test]
    fn a_split_is_parsed_and_checked() {
        let s = FontSplit::parse("# faces\ntrain /a.ttf\nheldout /b.otf  # note\n\n").unwrap();
        assert_eq!(s.train, [PathBuf::from("/a.ttf")]);
        assert_eq!(s.heldout, [PathBuf::from("/b.otf")]);
        assert!(FontSplit::parse("train /a.ttf\nheldout /a.ttf").is_err());
        assert!(FontSplit::parse("test /a.ttf").is_err());
        let missing = FontSplit::parse("heldout /nowhere/x.ttf").unwrap();
        let err = missing.load("heldout").unwrap_err();
        assert!(err.contains("apt-get install"), "{err}");
        assert!(Typeface::load(Path::new("Cargo.toml")).is_err());
    }
}
