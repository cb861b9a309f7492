//! Drawing face boxes and name labels onto frames, in every supported pixel format.
//! Known faces are green and unknown faces red, as in the original demo.

use font8x8::UnicodeFonts;

use crate::frame::Frame;
use crate::geometry::BBox;

pub const KNOWN_COLOUR: [u8; 3] = [0, 200, 0];
pub const UNKNOWN_COLOUR: [u8; 3] = [220, 0, 0];
/// Faces that were too small to recognise get a neutral box and no label.
pub const UNRECOGNISED_COLOUR: [u8; 3] = [255, 200, 0];
pub const TEXT_COLOUR: [u8; 3] = [255, 255, 255];

/// What to draw for one face.
#[derive(Debug, Clone, Copy)]
pub struct FaceMark<'a> {
    pub bbox: BBox,
    /// `None` for faces that were not recognised at all (too small).
    pub label: Option<&'a str>,
    pub known: bool,
}

/// Line width and glyph scale for a frame height: legible from 240p to 4K.
fn sizes(height: u32) -> (i64, i64) {
    let thickness = (height as i64 / 240).max(2);
    let scale = 1 + height as i64 / 360;
    (thickness, scale)
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .unwrap_or_else(|| {
            font8x8::BASIC_FONTS
                .get('?')
                .expect("'?' is in the basic font")
        })
}

/// Draws text with its top-left corner at (x, y).
pub fn draw_text<P: AsRef<[u8]> + AsMut<[u8]>>(
    frame: &mut Frame<P>,
    x: i64,
    y: i64,
    text: &str,
    scale: i64,
    rgb: [u8; 3],
) {
    for (i, c) in text.chars().enumerate() {
        let gx = x + i as i64 * 8 * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    frame.fill_rect(gx + col * scale, y + row as i64 * scale, scale, scale, rgb);
                }
            }
        }
    }
}

/// Draws a box outline, and a filled label with the name under it (above it at the bottom
/// edge of the frame).
pub fn draw_face<P: AsRef<[u8]> + AsMut<[u8]>>(frame: &mut Frame<P>, mark: &FaceMark<'_>) {
    let (t, scale) = sizes(frame.height);
    let colour = match (mark.label, mark.known) {
        (None, _) => UNRECOGNISED_COLOUR,
        (Some(_), true) => KNOWN_COLOUR,
        (Some(_), false) => UNKNOWN_COLOUR,
    };
    let b = mark.bbox;
    let (x, y) = (b.x.round() as i64, b.y.round() as i64);
    let (w, h) = ((b.w.round() as i64).max(1), (b.h.round() as i64).max(1));
    frame.fill_rect(x - t, y - t, w + 2 * t, t, colour);
    frame.fill_rect(x - t, y + h, w + 2 * t, t, colour);
    frame.fill_rect(x - t, y, t, h, colour);
    frame.fill_rect(x + w, y, t, h, colour);

    let Some(label) = mark.label else { return };
    let pad = scale * 2;
    let text_w = label.chars().count() as i64 * 8 * scale;
    let bar_h = 8 * scale + 2 * pad;
    let bar_w = (text_w + 2 * pad).max(w + 2 * t);
    let below = y + h + t;
    let bar_y = if below + bar_h <= frame.height as i64 {
        below
    } else {
        (y - t - bar_h).max(0)
    };
    frame.fill_rect(x - t, bar_y, bar_w, bar_h, colour);
    draw_text(frame, x - t + pad, bar_y + pad, label, scale, TEXT_COLOUR);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{PixelFormat, YuvMatrix};

    #[test]
    fn box_and_label_land_in_the_pixels() {
        let (w, h) = (320usize, 240usize);
        let mut frame = Frame {
            format: PixelFormat::Rgbx,
            width: w as u32,
            height: h as u32,
            planes: vec![(vec![0u8; w * h * 4], w * 4)],
            matrix: YuvMatrix::BT601,
        };
        let mark = FaceMark {
            bbox: BBox {
                x: 100.0,
                y: 50.0,
                w: 60.0,
                h: 80.0,
            },
            label: Some("Greg"),
            known: true,
        };
        draw_face(&mut frame, &mark);
        let rgb = frame.to_rgb().unwrap();
        assert_eq!(rgb.get_pixel(130, 49).0, KNOWN_COLOUR, "top edge");
        assert_eq!(rgb.get_pixel(99, 90).0, KNOWN_COLOUR, "left edge");
        assert_eq!(
            rgb.get_pixel(130, 90).0,
            [0, 0, 0],
            "inside stays untouched"
        );
        // The label bar below the box holds white text pixels.
        let white = (98..200)
            .flat_map(|x| (132..152).map(move |y| (x, y)))
            .filter(|&(x, y)| rgb.get_pixel(x, y).0 == TEXT_COLOUR)
            .count();
        assert!(white > 20, "{white} text pixels");
    }
}
