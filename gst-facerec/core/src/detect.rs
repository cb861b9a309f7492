//! YuNet face detection: pre-processing, decoding and NMS exactly as in
//! `shared/models/README.md` §1 (which reproduces OpenCV's `FaceDetectorYN::postProcess`).

use std::borrow::Cow;
use std::path::Path;

use image::RgbImage;
use std::sync::Arc;

use ort::value::TensorRef;

use crate::geometry::{BBox, Landmarks};
use crate::runtime::{ProviderReport, SessionConfig, SharedSession, shared_session};
use crate::tunables::Tunables;
use crate::{Error, Result};

/// The strides of YuNet's three detection heads.
const STRIDES: [usize; 3] = [8, 16, 32];

/// The detector's input for one frame: the frame scaled to the network's size, and the size
/// of the frame it was made from (detections are mapped back to that).
#[derive(Debug, Clone)]
pub struct NetworkInput<'a> {
    pub image: Cow<'a, RgbImage>,
    pub frame_width: u32,
    pub frame_height: u32,
}

impl<'a> NetworkInput<'a> {
    /// Scales an RGB image to the network's size (see [`network_geometry`]) with a triangle
    /// filter; an image that needs no scaling is borrowed as it is.
    pub fn from_image(image: &'a RgbImage, network_width: u32) -> NetworkInput<'a> {
        let (scale, sw, sh, _, _) = network_geometry(image.width(), image.height(), network_width);
        let (frame_width, frame_height) = (image.width(), image.height());
        let image = if scale < 1.0 {
            Cow::Owned(resize_rgb(image, sw, sh))
        } else {
            Cow::Borrowed(image)
        };
        NetworkInput {
            image,
            frame_width,
            frame_height,
        }
    }
}

/// One detected face, in the coordinates of the image given to [`Detector::detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub landmarks: Landmarks,
    pub score: f32,
}

#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Width the image is scaled down to before detection; 0 keeps the native resolution.
    /// Images narrower than this are never scaled up.
    pub network_width: u32,
    pub score_threshold: f32,
    pub nms_threshold: f32,
    pub top_k: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            network_width: Tunables::DEFAULT.network_width,
            score_threshold: Tunables::DEFAULT.detect_threshold,
            nms_threshold: 0.3,
            top_k: 5000,
        }
    }
}

pub struct Detector {
    session: Arc<SharedSession>,
    pub config: DetectorConfig,
    input: Vec<f32>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The size the network sees for an image: the scale applied, the scaled size, and that size
/// padded bottom/right to a multiple of 32 (the dynamic model fails on other sizes).
pub fn network_geometry(
    width: u32,
    height: u32,
    network_width: u32,
) -> (f32, u32, u32, usize, usize) {
    let scale = if network_width > 0 && width > network_width {
        network_width as f32 / width as f32
    } else {
        1.0
    };
    let sw = ((width as f32 * scale).round() as u32).max(1);
    let sh = ((height as f32 * scale).round() as u32).max(1);
    let pad = |v: u32| (v as usize).div_ceil(32) * 32;
    (scale, sw, sh, pad(sw), pad(sh))
}

impl Detector {
    pub fn load(
        path: &Path,
        config: DetectorConfig,
        session: &SessionConfig,
    ) -> Result<(Self, ProviderReport)> {
        let (shared, report) = shared_session("detector", path, session)?;
        let session = shared.lock();
        // Frames of any size are fed at their own (padded) size, so a model with a fixed input,
        // such as face_detection_yunet_2023mar.onnx (1x3x640x640), would fail on the first
        // frame: refuse it here, where the error can name the file.
        if let Some(input) = session.inputs().first()
            && let Some(shape) = input.dtype().tensor_shape()
            && shape.len() == 4
            && (shape[2] > 0 || shape[3] > 0)
        {
            let dims: Vec<String> = shape
                .iter()
                .map(|d| if *d < 0 { "?".into() } else { d.to_string() })
                .collect();
            return Err(Error::ModelLoad {
                what: "detector",
                path: path.to_path_buf(),
                reason: format!(
                    "input '{}' has the fixed shape {}; facerec needs a YuNet model with dynamic height and width, such as {}",
                    input.name(),
                    dims.join("x"),
                    crate::models::DETECTOR_FILE
                ),
            });
        }
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for stride in STRIDES {
            for head in ["cls", "obj", "bbox", "kps"] {
                let name = format!("{head}_{stride}");
                if !names.contains(&name.as_str()) {
                    return Err(Error::ModelLoad {
                        what: "detector",
                        path: path.to_path_buf(),
                        reason: format!("output '{name}' is missing: this is not a YuNet model"),
                    });
                }
            }
        }
        drop(session);
        let detector = Detector {
            session: shared,
            config,
            input: Vec::new(),
        };
        Ok((detector, report))
    }

    /// Detects faces in an RGB image. Boxes and landmarks are in `image`'s pixel coordinates.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        self.detect_network(&NetworkInput::from_image(image, self.config.network_width))
    }

    /// Detects faces in a frame already scaled to the network's size (see [`NetworkInput`]).
    /// Boxes and landmarks are in the coordinates of the full frame.
    pub fn detect_network(&mut self, input: &NetworkInput<'_>) -> Result<Vec<Detection>> {
        let (sw, sh) = (input.image.width(), input.image.height());
        let (pw, ph) = (
            (sw as usize).div_ceil(32) * 32,
            (sh as usize).div_ceil(32) * 32,
        );
        fill_bgr_planar(&input.image, pw, ph, &mut self.input);
        let mut detections = self.run(pw, ph)?;
        let (rx, ry) = (
            input.frame_width as f32 / sw as f32,
            input.frame_height as f32 / sh as f32,
        );
        if (rx, ry) != (1.0, 1.0) {
            // Pixel centres sit at integer coordinates in both images: x = (x' + 0.5) r - 0.5.
            let map = |v: f32, r: f32| (v + 0.5) * r - 0.5;
            for d in &mut detections {
                d.bbox.x = map(d.bbox.x, rx);
                d.bbox.y = map(d.bbox.y, ry);
                d.bbox.w *= rx;
                d.bbox.h *= ry;
                for p in &mut d.landmarks {
                    *p = [map(p[0], rx), map(p[1], ry)];
                }
            }
        }
        Ok(detections)
    }

    fn run(&mut self, pw: usize, ph: usize) -> Result<Vec<Detection>> {
        let infer_err = |e: ort::Error| Error::Inference {
            what: "detector",
            reason: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([1usize, 3, ph, pw], self.input.as_slice()))
            .map_err(infer_err)?;
        let mut session = self.session.lock();
        let outputs = session.run(ort::inputs![tensor]).map_err(infer_err)?;
        let mut candidates = Vec::new();
        for stride in STRIDES {
            let head = |name: &str| -> Result<&[f32]> {
                let key = format!("{name}_{stride}");
                let value = outputs.get(&key).ok_or_else(|| Error::Inference {
                    what: "detector",
                    reason: format!("output {key} missing"),
                })?;
                Ok(value.try_extract_tensor::<f32>().map_err(infer_err)?.1)
            };
            let heads = Heads {
                cls: head("cls")?,
                obj: head("obj")?,
                bbox: head("bbox")?,
                kps: head("kps")?,
            };
            decode_stride(
                &heads,
                stride,
                pw / stride,
                ph / stride,
                self.config.score_threshold,
                &mut candidates,
            );
        }
        Ok(nms(
            candidates,
            self.config.nms_threshold,
            self.config.top_k,
        ))
    }
}

/// Raw output heads of one stride.
pub struct Heads<'a> {
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

/// Decodes one stride's grid (one prior per cell, row-major) into candidate detections.
pub fn decode_stride(
    heads: &Heads<'_>,
    stride: usize,
    cols: usize,
    rows: usize,
    threshold: f32,
    out: &mut Vec<Detection>,
) {
    let st = stride as f32;
    for r in 0..rows {
        for c in 0..cols {
            let idx = r * cols + c;
            let score = (heads.cls[idx].clamp(0.0, 1.0) * heads.obj[idx].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let b = &heads.bbox[idx * 4..idx * 4 + 4];
            let cx = (c as f32 + b[0]) * st;
            let cy = (r as f32 + b[1]) * st;
            let w = b[2].exp() * st;
            let h = b[3].exp() * st;
            let k = &heads.kps[idx * 10..idx * 10 + 10];
            let mut landmarks = [[0.0f32; 2]; 5];
            for (i, p) in landmarks.iter_mut().enumerate() {
                *p = [(k[2 * i] + c as f32) * st, (k[2 * i + 1] + r as f32) * st];
            }
            out.push(Detection {
                bbox: BBox {
                    x: cx - w / 2.0,
                    y: cy - h / 2.0,
                    w,
                    h,
                },
                landmarks,
                score,
            });
        }
    }
}

/// Greedy NMS over all strides together: highest score first, suppress IoU > `threshold`.
pub fn nms(mut candidates: Vec<Detection>, threshold: f32, top_k: usize) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(top_k);
    let mut kept: Vec<Detection> = Vec::new();
    for cand in candidates {
        if kept.iter().all(|k| k.bbox.iou(&cand.bbox) <= threshold) {
            kept.push(cand);
        }
    }
    kept
}

/// Writes `image` as a planar B, G, R float tensor of `pw` x `ph`, zero-padded bottom/right.
pub fn fill_bgr_planar(image: &RgbImage, pw: usize, ph: usize, out: &mut Vec<f32>) {
    let plane = pw * ph;
    out.clear();
    out.resize(3 * plane, 0.0);
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw();
    let (b_plane, rest) = out.split_at_mut(plane);
    let (g_plane, r_plane) = rest.split_at_mut(plane);
    for y in 0..h.min(ph) {
        let src = &raw[y * w * 3..(y + 1) * w * 3];
        let row = y * pw;
        for (x, px) in src.chunks_exact(3).take(pw).enumerate() {
            r_plane[row + x] = px[0] as f32;
            g_plane[row + x] = px[1] as f32;
            b_plane[row + x] = px[2] as f32;
        }
    }
}

/// Downscales with a triangle (bilinear, area-aware) filter, which does not alias on large
/// reductions such as 1080p to 640.
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    image::imageops::resize(image, width, height, image::imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox {
                x,
                y: 0.0,
                w: 10.0,
                h: 10.0,
            },
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(
            vec![det(0.0, 0.9), det(1.0, 0.95), det(30.0, 0.7)],
            0.3,
            5000,
        );
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.95, 0.7]);
    }

    #[test]
    fn geometry_pads_to_multiples_of_32() {
        assert_eq!(network_geometry(640, 360, 640), (1.0, 640, 360, 640, 384));
        let (scale, sw, sh, pw, ph) = network_geometry(1920, 1080, 640);
        assert!((scale - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!((sw, sh, pw, ph), (640, 360, 640, 384));
        assert_eq!(network_geometry(320, 240, 640), (1.0, 320, 240, 320, 256));
        assert_eq!(network_geometry(1986, 1545, 0).3, 1984 + 32);
    }

    #[test]
    fn decode_follows_the_opencv_formula() {
        // One 2x1 grid at stride 8; only cell (r=0, c=1) passes the threshold.
        let cls = [0.1, 0.81];
        let obj = [0.1, 1.0];
        let bbox = [0.0, 0.0, 0.0, 0.0, 0.5, 0.25, 1.0f32.ln(), 2.0f32.ln()];
        let mut kps = [0.0f32; 20];
        kps[10] = 0.5;
        kps[11] = 1.0;
        let heads = Heads {
            cls: &cls,
            obj: &obj,
            bbox: &bbox,
            kps: &kps,
        };
        let mut out = Vec::new();
        decode_stride(&heads, 8, 2, 1, 0.5, &mut out);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert!((d.score - 0.9).abs() < 1e-6);
        // cx = (1 + 0.5) * 8 = 12, cy = 0.25 * 8 = 2, w = 8, h = 16
        assert_eq!(
            d.bbox,
            BBox {
                x: 8.0,
                y: -6.0,
                w: 8.0,
                h: 16.0
            }
        );
        assert_eq!(d.landmarks[0], [12.0, 8.0]);
    }
}
