//! Boxes and points in image pixel coordinates (pixel centres at integer coordinates).

use serde::{Deserialize, Serialize};

/// An axis-aligned box: top-left corner plus size, in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.w).min(other.x + other.w);
        let y2 = (self.y + self.h).min(other.y + other.h);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    pub fn scaled(&self, factor: f32) -> BBox {
        BBox {
            x: self.x * factor,
            y: self.y * factor,
            w: self.w * factor,
            h: self.h * factor,
        }
    }

    /// Integer rectangle clipped to a `width` x `height` frame, or `None` if nothing is left.
    pub fn clip_to(&self, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        let x0 = self.x.round().clamp(0.0, width as f32) as u32;
        let y0 = self.y.round().clamp(0.0, height as f32) as u32;
        let x1 = (self.x + self.w).round().clamp(0.0, width as f32) as u32;
        let y1 = (self.y + self.h).round().clamp(0.0, height as f32) as u32;
        (x1 > x0 && y1 > y0).then(|| (x0, y0, x1 - x0, y1 - y0))
    }
}

/// Five facial landmarks in YuNet order: right eye (image-left), left eye, nose tip,
/// right mouth corner (image-left), left mouth corner.
pub type Landmarks = [[f32; 2]; 5];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_half_overlapping_boxes() {
        let a = BBox {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        let b = BBox {
            x: 5.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox { x: 20.0, ..a }), 0.0);
    }

    #[test]
    fn clip_drops_boxes_outside_the_frame() {
        let b = BBox {
            x: -5.0,
            y: 2.0,
            w: 10.0,
            h: 4.0,
        };
        assert_eq!(b.clip_to(100, 100), Some((0, 2, 5, 4)));
        assert_eq!(BBox { x: 200.0, ..b }.clip_to(100, 100), None);
    }
}
