//! What to draw for the faces on a frame: box outlines and name labels, as [`Shape`]s in frame
//! pixels. Known faces are green and unknown faces red, as in the original demo.
//!
//! Nothing here touches frame pixels: the element blends the shapes into the frame (in any pixel
//! format) with GStreamer's overlay composition, in the order [`Painter::layout`] returns them.
//! A label is two shapes: an opaque [`Shape::Fill`] bar in the face's colour, then a
//! [`Shape::Image`] of the name in [`TEXT_COLOUR`] whose alpha is the glyph coverage, so the bar
//! shows through around and between the anti-aliased glyphs. Keeping the colour out of the bitmap
//! lets one cached bitmap per (name, size) serve every face and colour.
//!
//! Text is rendered with `ab_glyph` from a TrueType/OpenType font: the user's font (the element's
//! `font` property) first, then the first system font of [`SYSTEM_FONTS`], then the built-in 8x8
//! bitmap font, chosen per character so that a script the user font lacks still renders.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ab_glyph::{Font, FontVec, GlyphId, OutlinedGlyph, PxScale, ScaleFont, point};
use font8x8::UnicodeFonts;
use image::{Rgba, RgbaImage};

use crate::geometry::BBox;

pub const KNOWN_COLOUR: [u8; 3] = [0, 200, 0];
pub const UNKNOWN_COLOUR: [u8; 3] = [220, 0, 0];
/// Faces that were too small to recognise get a neutral box and no label.
pub const UNRECOGNISED_COLOUR: [u8; 3] = [255, 200, 0];
pub const TEXT_COLOUR: [u8; 3] = [255, 255, 255];

/// The fonts [`Painter::new`] looks for when no font is given, in this order: the first one that
/// exists and parses is used. DejaVu Sans (Debian's `fonts-dejavu-core`, which the setup script
/// and the images install) covers Latin, Greek and Cyrillic; Bold reads best over a coloured bar.
pub const SYSTEM_FONTS: &[&str] = &[
    // Debian and Ubuntu (fonts-dejavu-core), also JetPack's Ubuntu.
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    // Fedora and RHEL (dejavu-sans-fonts).
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    // Arch (ttf-dejavu).
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    // Alpine (font-dejavu).
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    // Debian and Ubuntu (fonts-noto-core), Fedora (google-noto-sans-fonts), Arch (noto-fonts).
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/google-noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/google-noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    // Debian and Ubuntu (fonts-liberation2, fonts-liberation, fonts-freefont-ttf).
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
];

/// The Debian package that provides the default font, named in the fallback warning.
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";

/// Font files larger than this are refused rather than read into memory (Noto Sans CJK's
/// collection, the largest common one, is about 20 MiB).
const MAX_FONT_BYTES: u64 = 128 << 20;
/// Bounds that keep a hostile frame size or name from allocating without limit: text height,
/// line thickness, label width and the number of characters considered.
const MAX_TEXT_PX: u32 = 320;
const MAX_THICKNESS: u32 = 64;
const MAX_LABEL_WIDTH: u32 = 8192;
const MAX_LABEL_CHARS: usize = 512;
/// The label cache: at most this many entries and bytes, evicting the least recently used.
const MAX_CACHED_LABELS: usize = 256;
const MAX_CACHE_BYTES: usize = 64 << 20;
/// Box coordinates are clamped to this magnitude, so that arithmetic on them cannot overflow.
const MAX_COORD: f32 = 1e9;

/// What to draw for one face.
#[derive(Debug, Clone, Copy)]
pub struct FaceMark<'a> {
    pub bbox: BBox,
    /// `None` for faces that were not recognised at all (too small).
    pub label: Option<&'a str>,
    pub known: bool,
}

/// What to draw, in frame pixel coordinates, always clipped to the frame (never negative, never
/// past the edge, never empty).
#[derive(Debug, Clone)]
pub enum Shape {
    /// An opaque solid rectangle (box edges, label background).
    Fill {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        rgb: [u8; 3],
    },
    /// A label bitmap: straight (non-premultiplied) RGBA, placed with its top-left at (x, y).
    /// Already clipped/cropped to the frame. Every pixel is [`TEXT_COLOUR`]; alpha is coverage.
    Image {
        x: u32,
        y: u32,
        image: Arc<RgbaImage>,
    },
}

/// A font file that the user named but that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("cannot read font file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("font file {} is not a TrueType/OpenType font or collection", path.display())]
    Parse { path: PathBuf },
}

struct LoadedFont {
    path: PathBuf,
    font: FontVec,
}

struct CachedLabel {
    image: Arc<RgbaImage>,
    last_used: u64,
}

/// Lays out face boxes and labels, and renders and caches the label bitmaps.
pub struct Painter {
    /// The user's font (if any), then the system font (if found); the bitmap font is implicit.
    fonts: Vec<LoadedFont>,
    warning: Option<String>,
    cache: HashMap<(u32, String), CachedLabel>,
    cache_bytes: usize,
    clock: u64,
    rasterised: u64,
}

impl fmt::Debug for Painter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Painter")
            .field(
                "fonts",
                &self.fonts.iter().map(|l| &l.path).collect::<Vec<_>>(),
            )
            .field("warning", &self.warning)
            .field("cached_labels", &self.cache.len())
            .field("rasterised", &self.rasterised)
            .finish()
    }
}

/// Which font draws a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Index into `Painter::fonts`.
    Outline(usize),
    Bitmap,
}

fn read_font(path: &Path) -> Result<FontVec, FontError> {
    let read_error = |source| FontError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > MAX_FONT_BYTES {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} bytes, more than the {} MiB a font file may have",
                meta.len(),
                MAX_FONT_BYTES >> 20
            ),
        )));
    }
    let data = std::fs::read(path).map_err(read_error)?;
    // Index 0 also opens the first face of a collection (.ttc, such as Noto Sans CJK).
    FontVec::try_from_vec(data).map_err(|_| FontError::Parse {
        path: path.to_owned(),
    })
}

/// Line thickness and text pixel height (ab_glyph's ascent-to-descent height) for a frame
/// height: 2 px and 13 px at 360p, 4 and 40 at 1080p, 9 and 80 at 2160p.
fn sizes(frame_height: u32) -> (u32, u32) {
    let thickness = (frame_height / 240).clamp(2, MAX_THICKNESS);
    let text_px = (frame_height / 27).clamp(12, MAX_TEXT_PX);
    (thickness, text_px)
}

/// The integer magnification of the 8x8 bitmap font at a text size: its capitals (7 rows) then
/// stand about as tall as DejaVu's at the same size.
fn bitmap_cell(px: u32) -> u32 {
    ((px + 5) / 10).max(1)
}

fn bitmap_glyph(c: char) -> Option<[u8; 8]> {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
}

/// The part of the rectangle (x, y, w, h) inside a `fw` x `fh` frame, or `None` when empty.
fn clip(x: i64, y: i64, w: i64, h: i64, fw: u32, fh: u32) -> Option<(u32, u32, u32, u32)> {
    let (x0, y0) = (x.max(0), y.max(0));
    let (x1, y1) = ((x + w).min(fw as i64), (y + h).min(fh as i64));
    (x1 > x0 && y1 > y0).then(|| (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
}

fn push_fill(shapes: &mut Vec<Shape>, rect: (i64, i64, i64, i64), rgb: [u8; 3], fw: u32, fh: u32) {
    if let Some((x, y, width, height)) = clip(rect.0, rect.1, rect.2, rect.3, fw, fh) {
        shapes.push(Shape::Fill {
            x,
            y,
            width,
            height,
            rgb,
        });
    }
}

/// The image placed at (x, y), cropped to the frame; the cached `Arc` itself when it fits whole.
fn push_image(shapes: &mut Vec<Shape>, image: &Arc<RgbaImage>, x: i64, y: i64, fw: u32, fh: u32) {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let Some((cx, cy, cw, ch)) = clip(x, y, w, h, fw, fh) else {
        return;
    };
    let image = if (cw as i64, ch as i64) == (w, h) {
        Arc::clone(image)
    } else {
        let (ox, oy) = ((cx as i64 - x) as u32, (cy as i64 - y) as u32);
        Arc::new(image::imageops::crop_imm(image.as_ref(), ox, oy, cw, ch).to_image())
    };
    shapes.push(Shape::Image {
        x: cx,
        y: cy,
        image,
    });
}

impl Painter {
    /// `font`: a TTF/OTF (or collection) path chosen by the user; `None` searches
    /// [`SYSTEM_FONTS`]. The system font is loaded in either case, as the fallback for
    /// characters the user's font lacks. A user font that cannot be read or parsed is an error
    /// naming the path. No system font is not an error: the built-in bitmap font is used and
    /// [`Painter::warning`] says so.
    pub fn new(font: Option<&Path>) -> Result<Painter, FontError> {
        let search: Vec<&Path> = SYSTEM_FONTS.iter().map(Path::new).collect();
        Self::with_search_paths(font, &search)
    }

    /// [`Painter::new`] with another list of system font candidates (tests; distributions that
    /// keep fonts elsewhere).
    pub fn with_search_paths(font: Option<&Path>, search: &[&Path]) -> Result<Painter, FontError> {
        let mut fonts = Vec::new();
        if let Some(path) = font {
            fonts.push(LoadedFont {
                path: path.to_owned(),
                font: read_font(path)?,
            });
        }
        // The first candidate that exists and parses; unusable ones are passed over silently,
        // as a half-installed font package should not stop the element.
        let system = search
            .iter()
            .filter(|p| Some(**p) != font)
            .find_map(|p| read_font(p).ok().map(|f| (p, f)));
        if let Some((path, font)) = system {
            fonts.push(LoadedFont {
                path: path.to_path_buf(),
                font,
            });
        }
        let warning = fonts.is_empty().then(|| {
            let searched = match search {
                [] => "no font paths were given".to_owned(),
                [only] => format!("looked for {}", only.display()),
                [first, rest @ ..] => format!(
                    "looked for {} and {} other font files",
                    first.display(),
                    rest.len()
                ),
            };
            format!(
                "no label font found ({searched}): labels use the built-in 8x8 bitmap font, which \
                 has no Cyrillic, CJK and many accented letters; install {FONT_PACKAGE} or set \
                 the font property to a TTF/OTF file"
            )
        });
        Ok(Painter {
            fonts,
            warning,
            cache: HashMap::new(),
            cache_bytes: 0,
            clock: 0,
            rasterised: 0,
        })
    }

    /// Why labels look worse than they should (no font found), for the element to log once.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// The font file in use, or None for the built-in bitmap font (for logs and the docs).
    pub fn font_path(&self) -> Option<&Path> {
        self.fonts.first().map(|f| f.path.as_path())
    }

    /// How many label rasterisations happened so far.
    pub fn rasterised(&self) -> u64 {
        self.rasterised
    }

    /// Shapes for all faces on a frame of this size, in drawing order: per face, the four box
    /// edges (outside the box, so its interior stays untouched), then for labelled faces a bar
    /// in the face's colour below the box (above it when it would leave the frame; shifted
    /// sideways to stay in the frame) and the name's bitmap on it. Faces with a non-finite box,
    /// or whose outline lies wholly outside the frame, draw nothing.
    pub fn layout(
        &mut self,
        faces: &[FaceMark<'_>],
        frame_width: u32,
        frame_height: u32,
    ) -> Vec<Shape> {
        let mut shapes = Vec::new();
        if frame_width == 0 || frame_height == 0 {
            return shapes;
        }
        let (thickness, px) = sizes(frame_height);
        for mark in faces {
            self.layout_face(mark, frame_width, frame_height, thickness, px, &mut shapes);
        }
        shapes
    }

    fn layout_face(
        &mut self,
        mark: &FaceMark<'_>,
        fw: u32,
        fh: u32,
        thickness: u32,
        px: u32,
        shapes: &mut Vec<Shape>,
    ) {
        let b = mark.bbox;
        if ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) {
            return;
        }
        let coord = |v: f32| v.round().clamp(-MAX_COORD, MAX_COORD) as i64;
        let (x, y) = (coord(b.x), coord(b.y));
        let (w, h) = (coord(b.w).max(1), coord(b.h).max(1));
        let t = thickness as i64;
        let (fw_i, fh_i) = (fw as i64, fh as i64);
        if x + w + t <= 0 || y + h + t <= 0 || x - t >= fw_i || y - t >= fh_i {
            return;
        }
        let colour = match (mark.label, mark.known) {
            (None, _) => UNRECOGNISED_COLOUR,
            (Some(_), true) => KNOWN_COLOUR,
            (Some(_), false) => UNKNOWN_COLOUR,
        };
        push_fill(shapes, (x - t, y - t, w + 2 * t, t), colour, fw, fh);
        push_fill(shapes, (x - t, y + h, w + 2 * t, t), colour, fw, fh);
        push_fill(shapes, (x - t, y, t, h), colour, fw, fh);
        push_fill(shapes, (x + w, y, t, h), colour, fw, fh);

        let Some(label) = mark.label else { return };
        let text = self.label(label, px);
        let pad_x = (px / 4).max(2) as i64;
        let pad_y = (px / 12).max(1) as i64;
        let bar_w = (text.width() as i64 + 2 * pad_x).max(w + 2 * t);
        let bar_h = text.height() as i64 + 2 * pad_y;
        let below = y + h + t;
        let bar_y = if below + bar_h <= fh_i {
            below
        } else {
            (y - t - bar_h).max(0)
        };
        // A face at the right or left edge keeps its whole name readable.
        let bar_x = (x - t).min(fw_i - bar_w).max(0);
        push_fill(shapes, (bar_x, bar_y, bar_w, bar_h), colour, fw, fh);
        push_image(shapes, &text, bar_x + pad_x, bar_y + pad_y, fw, fh);
    }

    /// The label bitmap for a name at a text size, rendered once and then served from the cache.
    fn label(&mut self, text: &str, px: u32) -> Arc<RgbaImage> {
        let text = match text.char_indices().nth(MAX_LABEL_CHARS) {
            Some((end, _)) => &text[..end],
            None => text,
        };
        self.clock += 1;
        let key = (px, text.to_owned());
        if let Some(hit) = self.cache.get_mut(&key) {
            hit.last_used = self.clock;
            return Arc::clone(&hit.image);
        }
        let image = Arc::new(self.render(text, px));
        self.rasterised += 1;
        let bytes = image.as_raw().len();
        while !self.cache.is_empty()
            && (self.cache.len() >= MAX_CACHED_LABELS || self.cache_bytes + bytes > MAX_CACHE_BYTES)
        {
            let oldest = self
                .cache
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone())
                .expect("the cache is not empty");
            let evicted = self.cache.remove(&oldest).expect("the key was just found");
            self.cache_bytes -= evicted.image.as_raw().len();
        }
        self.cache_bytes += bytes;
        self.cache.insert(
            key,
            CachedLabel {
                image: Arc::clone(&image),
                last_used: self.clock,
            },
        );
        image
    }

    /// The first loaded font that has a glyph for `c`, else the bitmap font, else a '?'
    /// (from the first outline font when there is one, to match the style).
    fn source_for(&self, c: char) -> (Source, char) {
        let has = |font: &FontVec, c: char| font.glyph_id(c) != GlyphId(0);
        if let Some(i) = self.fonts.iter().position(|f| has(&f.font, c)) {
            return (Source::Outline(i), c);
        }
        if bitmap_glyph(c).is_some() {
            return (Source::Bitmap, c);
        }
        match self.fonts.iter().position(|f| has(&f.font, '?')) {
            Some(i) => (Source::Outline(i), '?'),
            None => (Source::Bitmap, '?'),
        }
    }

    /// Renders one line of text: every pixel [`TEXT_COLOUR`], alpha the glyph coverage. The
    /// image spans the line's ascent to descent (plus any glyph overhang), and is empty (zero
    /// wide) for an empty text.
    fn render(&self, text: &str, px: u32) -> RgbaImage {
        let scale = PxScale::from(px as f32);
        let cell = bitmap_cell(px);
        let (mut ascent, mut descent) = (7.0 * cell as f32, -(cell as f32));
        for f in &self.fonts {
            let scaled = f.font.as_scaled(scale);
            ascent = ascent.max(scaled.ascent());
            descent = descent.min(scaled.descent());
        }

        enum Ink {
            Outline(OutlinedGlyph),
            Bitmap { x: i64, y: i64, rows: [u8; 8] },
        }
        let mut inks = Vec::new();
        let (mut min_x, mut max_x) = (0f32, 0f32);
        let (mut min_y, mut max_y) = (0f32, ascent - descent);
        let mut caret = 0f32;
        let mut previous: Option<(usize, GlyphId)> = None;
        for c in text.chars() {
            if caret > MAX_LABEL_WIDTH as f32 {
                break;
            }
            let c = if c.is_control() { ' ' } else { c };
            match self.source_for(c) {
                (Source::Outline(i), c) => {
                    let scaled = self.fonts[i].font.as_scaled(scale);
                    let id = scaled.glyph_id(c);
                    if let Some((j, prev)) = previous
                        && j == i
                    {
                        caret += scaled.kern(prev, id);
                    }
                    let glyph = id.with_scale_and_position(scale, point(caret, ascent));
                    if let Some(outlined) = self.fonts[i].font.outline_glyph(glyph) {
                        let b = outlined.px_bounds();
                        (min_x, max_x) = (min_x.min(b.min.x), max_x.max(b.max.x));
                        (min_y, max_y) = (min_y.min(b.min.y), max_y.max(b.max.y));
                        inks.push(Ink::Outline(outlined));
                    }
                    caret += scaled.h_advance(id);
                    previous = Some((i, id));
                }
                (Source::Bitmap, c) => {
                    let rows = bitmap_glyph(c).unwrap_or([0; 8]);
                    let (x, y) = (caret.round() as i64, (ascent - 7.0 * cell as f32) as i64);
                    (min_y, max_y) = (min_y.min(y as f32), max_y.max((y + 8 * cell as i64) as f32));
                    inks.push(Ink::Bitmap { x, y, rows });
                    caret += 8.0 * cell as f32;
                    previous = None;
                }
            }
        }
        if text.is_empty() {
            max_x = 0.0;
        } else {
            max_x = max_x.max(caret);
        }
        let (min_x, min_y) = (min_x.floor(), min_y.floor());
        let width = ((max_x - min_x).ceil() as u32).min(MAX_LABEL_WIDTH);
        let height = ((max_y - min_y).ceil() as u32).min(4 * MAX_TEXT_PX);
        let [r, g, b] = TEXT_COLOUR;
        let mut image = RgbaImage::from_pixel(width, height, Rgba([r, g, b, 0]));
        let mut cover = |x: i64, y: i64, alpha: u8| {
            if (0..width as i64).contains(&x) && (0..height as i64).contains(&y) {
                let p = &mut image.get_pixel_mut(x as u32, y as u32).0[3];
                *p = (*p).max(alpha);
            }
        };
        let (ox, oy) = (min_x as i64, min_y as i64);
        for ink in &inks {
            match ink {
                Ink::Outline(outlined) => {
                    let b = outlined.px_bounds();
                    let (gx, gy) = (b.min.x as i64 - ox, b.min.y as i64 - oy);
                    outlined.draw(|x, y, coverage| {
                        let alpha = (coverage.clamp(0.0, 1.0) * 255.0).round() as u8;
                        cover(gx + x as i64, gy + y as i64, alpha);
                    });
                }
                Ink::Bitmap { x, y, rows } => {
                    let k = cell as i64;
                    for (row, bits) in rows.iter().enumerate() {
                        for col in 0..8 {
                            if bits & (1 << col) == 0 {
                                continue;
                            }
                            for dy in 0..k {
                                for dx in 0..k {
                                    let px_x = x - ox + col * k + dx;
                                    let px_y = y - oy + row as i64 * k + dy;
                                    cover(px_x, px_y, 255);
                                }
                            }
                        }
                    }
                }
            }
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsupport::on_ci;

    /// The font the default search picks on Debian (fonts-dejavu-core).
    const DEJAVU_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
    const DEJAVU_MONO: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";

    /// DejaVu Sans, or `None` after a loud message when it is absent outside CI (under CI the
    /// setup script installs it, so its absence fails).
    fn dejavu(path: &str) -> Option<PathBuf> {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
        if on_ci() {
            panic!(
                "{} is missing under CI: deploy/setup.sh installs {FONT_PACKAGE}",
                path.display()
            );
        }
        eprintln!(
            "\n!!!! SKIPPED: {} is missing: apt-get install {FONT_PACKAGE} !!!!\n",
            path.display()
        );
        None
    }

    fn dejavu_painter() -> Option<Painter> {
        let path = dejavu(DEJAVU_BOLD)?;
        Some(Painter::with_search_paths(None, &[&path]).expect("DejaVu Sans Bold loads"))
    }

    fn bitmap_painter() -> Painter {
        Painter::with_search_paths(None, &[Path::new("/nonexistent/font.ttf")])
            .expect("a missing system font is not an error")
    }

    fn face(x: f32, y: f32, w: f32, h: f32, label: Option<&str>) -> FaceMark<'_> {
        FaceMark {
            bbox: BBox { x, y, w, h },
            label,
            known: true,
        }
    }

    fn alpha(image: &RgbaImage, x: u32, y: u32) -> u8 {
        if x < image.width() && y < image.height() {
            image.get_pixel(x, y).0[3]
        } else {
            0
        }
    }

    /// Pixels at least half covered.
    fn ink(image: &RgbaImage) -> usize {
        image.pixels().filter(|p| p.0[3] >= 128).count()
    }

    /// (glyph pixels, differing pixels) of two labels laid over each other: pixels at least half
    /// covered in either, and those where the coverage differs by half or more.
    fn differing(a: &RgbaImage, b: &RgbaImage) -> (usize, usize) {
        let (w, h) = (a.width().max(b.width()), a.height().max(b.height()));
        let (mut glyph, mut differ) = (0, 0);
        for y in 0..h {
            for x in 0..w {
                let (pa, pb) = (alpha(a, x, y), alpha(b, x, y));
                if pa >= 128 || pb >= 128 {
                    glyph += 1;
                    if pa.abs_diff(pb) >= 128 {
                        differ += 1;
                    }
                }
            }
        }
        (glyph, differ)
    }

    /// Rows that hold any coverage: the height of the drawn glyphs.
    fn ink_height(image: &RgbaImage) -> u32 {
        let rows: Vec<u32> = (0..image.height())
            .filter(|&y| (0..image.width()).any(|x| alpha(image, x, y) > 0))
            .collect();
        rows.last().map_or(0, |last| last - rows[0] + 1)
    }

    fn fills(shapes: &[Shape]) -> Vec<(u32, u32, u32, u32, [u8; 3])> {
        shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Fill {
                    x,
                    y,
                    width,
                    height,
                    rgb,
                } => Some((*x, *y, *width, *height, *rgb)),
                Shape::Image { .. } => None,
            })
            .collect()
    }

    fn images(shapes: &[Shape]) -> Vec<(u32, u32, Arc<RgbaImage>)> {
        shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Image { x, y, image } => Some((*x, *y, Arc::clone(image))),
                Shape::Fill { .. } => None,
            })
            .collect()
    }

    /// (x, y, width, height) of any shape.
    fn rect(shape: &Shape) -> (u32, u32, u32, u32) {
        match shape {
            Shape::Fill {
                x,
                y,
                width,
                height,
                ..
            } => (*x, *y, *width, *height),
            Shape::Image { x, y, image } => (*x, *y, image.width(), image.height()),
        }
    }

    /// Shapes as (kind, x, y, width, height), for failure messages (an image's Debug prints
    /// every pixel).
    fn describe(shapes: &[Shape]) -> Vec<(&'static str, u32, u32, u32, u32)> {
        shapes
            .iter()
            .map(|s| {
                let (x, y, w, h) = rect(s);
                let kind = match s {
                    Shape::Fill { .. } => "fill",
                    Shape::Image { .. } => "image",
                };
                (kind, x, y, w, h)
            })
            .collect()
    }

    /// The element keeps its Painter behind a mutex shared by the streaming thread and the
    /// live worker, and sends label images to GStreamer.
    #[test]
    fn painter_and_shapes_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Painter>();
        shareable::<Shape>();
        shareable::<FontError>();
    }

    #[test]
    fn default_search_finds_dejavu_sans_bold() {
        let Some(path) = dejavu(DEJAVU_BOLD) else {
            return;
        };
        let painter = Painter::new(None).unwrap();
        assert_eq!(painter.font_path(), Some(path.as_path()));
        assert_eq!(painter.warning(), None);
    }

    #[test]
    fn accented_and_cyrillic_names_render_with_dejavu() {
        let Some(mut painter) = dejavu_painter() else {
            return;
        };
        // Every letter of these names comes from DejaVu, none is replaced by '?'.
        for c in "José Núñez Zoë Łukasz Юлия".chars() {
            assert_eq!(painter.source_for(c), (Source::Outline(0), c), "{c:?}");
        }
        // The rendered names differ from the same count of '?' in most glyph pixels, for the
        // whole label and for each word that has letters beyond ASCII.
        for (name, marks) in [
            ("Zoë Łukasz Юлия", "??? ?????? ????"),
            ("Юлия", "????"),
            ("Łódź", "????"),
        ] {
            let (names, marks) = (painter.label(name, 40), painter.label(marks, 40));
            let (glyph, differ) = differing(&names, &marks);
            eprintln!("{name}: {differ} of {glyph} glyph pixels differ");
            assert!(
                differ as f64 > 0.6 * glyph as f64,
                "{name}: {differ} of {glyph} glyph pixels differ from '?'"
            );
        }
        // "Юлия" draws letters, and 'ë' its diaeresis: more ink than 'e'.
        let yulia = painter.label("Юлия", 40);
        eprintln!("Юлия: {} ink pixels", ink(&yulia));
        assert!(ink(&yulia) > 1000, "{} ink pixels", ink(&yulia));
        let (e, e_diaeresis) = (painter.label("e", 40), painter.label("ë", 40));
        eprintln!("e {} ë {}", ink(&e), ink(&e_diaeresis));
        assert!(ink(&e_diaeresis) > ink(&e) + 20);
    }

    #[test]
    fn labels_are_anti_aliased() {
        let Some(mut painter) = dejavu_painter() else {
            return;
        };
        let image = painter.label("José Núñez", 40);
        let covered = image.pixels().filter(|p| p.0[3] > 0).count();
        let partial = image
            .pixels()
            .filter(|p| (1..255).contains(&p.0[3]))
            .count();
        let levels: std::collections::BTreeSet<u8> = image.pixels().map(|p| p.0[3]).collect();
        eprintln!(
            "{partial} of {covered} covered pixels partial, {} levels",
            levels.len()
        );
        assert!(
            partial * 4 > covered,
            "{partial} of {covered} covered pixels have partial coverage"
        );
        assert!(levels.len() > 64, "{} alpha levels", levels.len());
        // Straight alpha: the colour is the text colour everywhere, coverage only in alpha.
        assert!(image.pixels().all(|p| p.0[..3] == TEXT_COLOUR));
    }

    #[test]
    fn text_and_lines_scale_with_the_frame() {
        let Some(mut painter) = dejavu_painter() else {
            return;
        };
        let mut measure = |fw: u32, fh: u32| {
            let (s, h) = (fh as f32 / 360.0, fh as f32);
            let mark = face(200.0 * s, 0.2 * h, 100.0 * s, 120.0 * s, Some("Greg Ådahl"));
            let shapes = painter.layout(&[mark], fw, fh);
            let top_edge = fills(&shapes)[0];
            let (_, _, text) = images(&shapes).pop().expect("a label image");
            (ink_height(&text), top_edge.3)
        };
        let (text_360, line_360) = measure(640, 360);
        let (text_1080, line_1080) = measure(1920, 1080);
        let (text_2160, line_2160) = measure(3840, 2160);
        eprintln!(
            "text {text_360}/{text_1080}/{text_2160} px, lines {line_360}/{line_1080}/{line_2160} px"
        );
        assert!(text_360 >= 12, "{text_360} px of text at 360p");
        assert!(
            text_1080 as f32 >= 2.5 * text_360 as f32,
            "{text_1080} vs {text_360}"
        );
        assert!(
            text_2160 as f32 >= 1.9 * text_1080 as f32,
            "{text_2160} vs {text_1080}"
        );
        assert_eq!((line_360, line_1080, line_2160), (2, 4, 9));
    }

    #[test]
    fn each_label_is_rasterised_once() {
        let mut painter = Painter::new(None).unwrap();
        let faces = [
            face(100.0, 50.0, 60.0, 80.0, Some("Zoë")),
            face(300.0, 50.0, 60.0, 80.0, Some("Юлия")),
            face(500.0, 50.0, 60.0, 80.0, Some("Zoë")),
            face(400.0, 200.0, 30.0, 30.0, None),
        ];
        for _ in 0..100 {
            let shapes = painter.layout(&faces, 640, 360);
            assert_eq!(images(&shapes).len(), 3);
        }
        assert_eq!(
            painter.rasterised(),
            2,
            "one rasterisation per distinct name"
        );
        // Another text size is another bitmap, once.
        for _ in 0..100 {
            painter.layout(&faces, 1920, 1080);
        }
        assert_eq!(painter.rasterised(), 4);
        // The cache is bounded: 300 more names evict the least recently used, which then are
        // rasterised again, while a name kept in use stays cached.
        for i in 0..300 {
            let name = format!("visitor {i}");
            painter.layout(&[face(10.0, 10.0, 50.0, 50.0, Some(&name))], 640, 360);
            painter.layout(&faces[..1], 640, 360);
        }
        assert_eq!(painter.rasterised(), 304);
        assert_eq!(painter.cache.len(), MAX_CACHED_LABELS);
        painter.layout(&faces[..1], 640, 360);
        assert_eq!(painter.rasterised(), 304, "the name in use was kept");
        painter.layout(&[face(10.0, 10.0, 50.0, 50.0, Some("visitor 0"))], 640, 360);
        assert_eq!(painter.rasterised(), 305, "the oldest name was evicted");
        let bytes: usize = painter.cache.values().map(|c| c.image.as_raw().len()).sum();
        assert_eq!(painter.cache_bytes, bytes);
    }

    #[test]
    fn box_outline_is_outside_the_box_and_the_label_below_it() {
        let mut painter = Painter::new(None).unwrap();
        let shapes = painter.layout(&[face(100.0, 50.0, 60.0, 80.0, Some("Greg"))], 320, 240);
        // 240 lines: 2 px edges, 12 px text.
        let edges = fills(&shapes);
        assert_eq!(
            edges[..4],
            [
                (98, 48, 64, 2, KNOWN_COLOUR),
                (98, 130, 64, 2, KNOWN_COLOUR),
                (98, 50, 2, 80, KNOWN_COLOUR),
                (160, 50, 2, 80, KNOWN_COLOUR),
            ]
        );
        // The bar starts under the bottom edge, as wide as the outline at least.
        let (bx, by, bw, bh, rgb) = edges[4];
        assert_eq!((bx, by, rgb), (98, 132, KNOWN_COLOUR));
        let [(tx, ty, ref text)] = images(&shapes)[..] else {
            panic!("one label image: {:?}", describe(&shapes))
        };
        // 12 px text: 3 px padding beside the text, 1 px above and below it.
        assert_eq!((tx, ty), (bx + 3, by + 1));
        assert_eq!((bw, bh), ((text.width() + 6).max(64), text.height() + 2));
        assert_eq!(shapes.len(), 6);
        // Nothing covers the box's interior.
        for shape in &shapes {
            let (x, y, w, h) = rect(shape);
            let overlaps = x < 160 && x + w > 100 && y < 130 && y + h > 50;
            assert!(
                !overlaps,
                "{:?} covers the box",
                describe(std::slice::from_ref(shape))
            );
        }

        // Unknown and unrecognised faces: red with a label, yellow without.
        let mut unknown = face(100.0, 50.0, 60.0, 80.0, Some("unknown"));
        unknown.known = false;
        let unrecognised = face(200.0, 50.0, 30.0, 30.0, None);
        let shapes = painter.layout(&[unknown, unrecognised], 320, 240);
        let colours: Vec<[u8; 3]> = fills(&shapes).iter().map(|f| f.4).collect();
        assert_eq!(colours[..5], [UNKNOWN_COLOUR; 5]);
        assert_eq!(colours[5..], [UNRECOGNISED_COLOUR; 4]);
        assert_eq!(images(&shapes).len(), 1);

        // At the bottom of the frame the bar goes above the box, ending at its top edge.
        let shapes = painter.layout(&[face(100.0, 200.0, 60.0, 30.0, Some("Greg"))], 320, 240);
        let (_, by, _, bh, _) = fills(&shapes)[4];
        assert_eq!(by + bh, 198);
        // At the right edge the bar shifts left to keep the name in the frame.
        let long = "Maria Fernanda Núñez";
        let shapes = painter.layout(&[face(280.0, 50.0, 30.0, 30.0, Some(long))], 320, 240);
        let (bx, _, bw, _, _) = fills(&shapes)[4];
        let (tx, _, text) = images(&shapes).pop().unwrap();
        assert_eq!(bx + bw, 320);
        assert_eq!(text.width(), painter.label(long, 12).width(), "not cropped");
        assert!(tx + text.width() < 320);
    }

    #[test]
    fn shapes_stay_inside_the_frame() {
        let mut painter = Painter::new(None).unwrap();
        let long = "Wolfeschlegelsteinhausenbergerdorff ".repeat(50);
        let (fw, fh) = (640u32, 360u32);
        let faces = [
            face(-30.0, -30.0, 60.0, 60.0, Some("top left")),
            face(610.0, 330.0, 60.0, 60.0, Some("bottom right")),
            face(-1e30, 5.0, 1e31, 1e31, Some("huge")),
            face(0.0, 0.0, 640.0, 360.0, Some(&long)),
            face(600.0, -50.0, 100.0, 500.0, Some("")),
            face(660.0, 100.0, 50.0, 50.0, Some("right of the frame")),
            face(0.0, 0.0, 0.0, -5.0, Some("degenerate")),
        ];
        let shapes = painter.layout(&faces, fw, fh);
        // Per face, the edges and label parts that reach into the frame: 2 edges + bar + text,
        // 2 + bar + text, 2 + bar + text, bar + text, 1 edge + bar (empty name: no text), none,
        // 2 + bar + text.
        assert_eq!(shapes.len(), 20, "{:?}", describe(&shapes));
        for shape in &shapes {
            let (x, y, w, h) = rect(shape);
            assert!(w > 0 && h > 0, "empty {:?}", rect(shape));
            assert!(
                x + w <= fw && y + h <= fh,
                "{:?} leaves the frame",
                rect(shape)
            );
        }
        // The long name is cropped to the frame, not dropped.
        assert!(images(&shapes).iter().any(|(x, _, i)| x + i.width() == fw));

        // Boxes wholly outside the frame draw nothing; neither do non-finite boxes.
        assert!(painter.layout(&faces[5..6], fw, fh).is_empty());
        let far = face(1e9, 1e9, 10.0, 10.0, Some("far away"));
        assert!(painter.layout(&[far], fw, fh).is_empty());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for i in 0..4 {
                let mut v = [10.0, 10.0, 50.0, 50.0];
                v[i] = bad;
                let mark = face(v[0], v[1], v[2], v[3], Some("nan"));
                assert!(painter.layout(&[mark], fw, fh).is_empty(), "{v:?}");
            }
        }

        // Tiny, empty and huge frames.
        for (w, h) in [(1, 1), (1, 0), (0, 1), (0, 0), (2, 3000), (3000, 2)] {
            for shape in painter.layout(&faces, w, h) {
                let (x, y, sw, sh) = rect(&shape);
                assert!(
                    sw > 0 && sh > 0 && x + sw <= w && y + sh <= h,
                    "{:?} in {w}x{h}",
                    rect(&shape)
                );
            }
        }
        assert!(painter.layout(&faces, 0, 0).is_empty());
        let shapes = painter.layout(&faces[..1], u32::MAX, u32::MAX);
        let (_, _, text) = images(&shapes).pop().unwrap();
        assert!(text.height() <= 4 * MAX_TEXT_PX, "{}", text.height());
        let shapes = painter.layout(&faces[..1], 3840, 2160);
        assert_eq!(images(&shapes).len(), 1);
    }

    #[test]
    fn an_unusable_font_file_is_an_error_naming_it() {
        let missing = Path::new("/nonexistent/fonts/Missing.ttf");
        let err = Painter::new(Some(missing)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read font file /nonexistent/fonts/Missing.ttf: No such file or directory (os error 2)"
        );

        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let text = dir.join("not-a-font.ttf");
        std::fs::write(&text, "this is not a font\n".repeat(100)).unwrap();
        let err = Painter::new(Some(&text)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "font file {} is not a TrueType/OpenType font or collection",
                text.display()
            )
        );
        let err = Painter::new(Some(dir)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read font file {}: not a regular file",
                dir.display()
            )
        );
    }

    #[test]
    fn without_a_system_font_labels_use_the_bitmap_font_and_warn() {
        let mut painter = bitmap_painter();
        assert_eq!(painter.font_path(), None);
        assert_eq!(
            painter.warning(),
            Some(
                "no label font found (looked for /nonexistent/font.ttf): labels use the built-in \
                 8x8 bitmap font, which has no Cyrillic, CJK and many accented letters; install \
                 fonts-dejavu-core or set the font property to a TTF/OTF file"
            )
        );
        let shapes = painter.layout(&[face(100.0, 50.0, 60.0, 80.0, Some("Zoë"))], 640, 360);
        let (_, _, text) = images(&shapes).pop().expect("a label image");
        // 13 px text: 1x1 cells, 8 px per letter, 'Z' 'o' 'ë' all drawn.
        assert_eq!(text.width(), 24);
        assert!(ink(&text) > 40, "{} ink pixels", ink(&text));
        assert_eq!(painter.source_for('ë'), (Source::Bitmap, 'ë'));
        assert_eq!(painter.source_for('Ю'), (Source::Bitmap, '?'));
        // Twice the size at 1080p: the cell grows with the text.
        let shapes = painter.layout(&[face(100.0, 50.0, 60.0, 80.0, Some("Zoë"))], 1920, 1080);
        let (_, _, text) = images(&shapes).pop().expect("a label image");
        assert_eq!(text.width(), 24 * 4);
    }

    #[test]
    fn characters_missing_from_the_user_font_come_from_the_system_font() {
        let (Some(mono), Some(bold)) = (dejavu(DEJAVU_MONO), dejavu(DEJAVU_BOLD)) else {
            return;
        };
        let painter = Painter::with_search_paths(Some(&mono), &[&bold]).unwrap();
        assert_eq!(painter.font_path(), Some(mono.as_path()));
        assert_eq!(painter.warning(), None);
        assert_eq!(painter.source_for('A'), (Source::Outline(0), 'A'));
        assert_eq!(painter.source_for('Ю'), (Source::Outline(0), 'Ю'));
        // Hebrew is in DejaVu Sans but not in DejaVu Sans Mono.
        assert_eq!(painter.source_for('א'), (Source::Outline(1), 'א'));
        // No loaded font has Han characters: the user font's '?'.
        assert_eq!(painter.source_for('王'), (Source::Outline(0), '?'));
    }

    #[test]
    fn a_cjk_user_font_renders_chinese_names() {
        // Debian's fonts-noto-cjk, fonts-wqy-zenhei, fonts-arphic-ukai; not installed by setup
        // (tens of MB), so this test runs only where one is present.
        let candidates = [
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
            "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
            "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
            "/usr/share/fonts/truetype/arphic/ukai.ttc",
            "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        ];
        let Some(cjk) = candidates.iter().map(Path::new).find(|p| p.is_file()) else {
            eprintln!(
                "\n!!!! SKIPPED: no CJK font on this machine (apt-get install fonts-noto-cjk) !!!!\n"
            );
            return;
        };
        let mut painter = Painter::new(Some(cjk)).unwrap();
        assert_eq!(painter.source_for('王'), (Source::Outline(0), '王'));
        let name = painter.label("王伟", 40);
        let marks = painter.label("??", 40);
        assert!(
            ink(&name) > 2 * ink(&marks),
            "{} vs {}",
            ink(&name),
            ink(&marks)
        );
    }
}
