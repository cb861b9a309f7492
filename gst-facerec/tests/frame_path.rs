//! The element's frame path on the real clip and photos, in every pixel format and at camera
//! sizes: the detector's network-size input, alignment from the planes, embeddings that do not
//! depend on the frame's size or format, drawing read back through `videoconvert`, redaction,
//! and live mode at 1080p NV12.

mod common;

use common::*;
use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::frame::{ChromaSiting, Frame, PixelFormat, YuvMatrix};
use gst::prelude::*;
use gst_video::prelude::*;

const CLIP: &str = "testdata/face_recognition/short_hamilton_clip.mp4";
const FORMATS: [&str; 8] = ["RGBA", "BGRA", "RGBx", "BGRx", "RGB", "BGR", "I420", "NV12"];

type Readable = gst_video::VideoFrame<gst_video::video_frame::Readable>;

/// Frames `wanted` (indices, ascending) of the clip scaled by `videoscale` to `width` x `height`
/// in `format`, and the same frames through `videoconvert ! videoscale` to RGB at `rgb_size`.
fn clip_frames(
    width: u32,
    height: u32,
    format: &str,
    wanted: &[usize],
    rgb_size: Option<(u32, u32)>,
) -> Vec<(Readable, Option<Readable>)> {
    init();
    let reference = match rgb_size {
        Some((w, h)) => format!(
            "t. ! queue ! videoconvert ! videoscale ! video/x-raw,format=RGB,width={w},height={h} ! appsink name=rgb sync=false"
        ),
        None => String::new(),
    };
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format={format},width={width},height={height} ! tee name=t t. ! queue ! appsink name=raw sync=false {reference}",
        asset(CLIP).display()
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = |name: &str| {
        pipeline
            .by_name(name)
            .map(|s| s.downcast::<gst_app::AppSink>().unwrap())
    };
    let (raw, rgb) = (sink("raw").unwrap(), sink("rgb"));
    pipeline.set_state(gst::State::Playing).unwrap();
    let take = |sink: &gst_app::AppSink, index: usize| -> Readable {
        let sample = sink.pull_sample().expect("frame before EOS");
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let _ = index;
        gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info).unwrap()
    };
    let mut out = Vec::new();
    let last = *wanted.last().unwrap();
    for index in 0..=last {
        let a = take(&raw, index);
        let b = rgb.as_ref().map(|s| take(s, index));
        if wanted.contains(&index) {
            out.push((a, b));
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

fn core_format(frame: &Readable) -> (PixelFormat, YuvMatrix, ChromaSiting) {
    use gst_video::VideoFormat as V;
    let info = frame.info();
    let format = match info.format() {
        V::Rgba => PixelFormat::Rgba,
        V::Bgra => PixelFormat::Bgra,
        V::Rgbx => PixelFormat::Rgbx,
        V::Bgrx => PixelFormat::Bgrx,
        V::Rgb => PixelFormat::Rgb,
        V::Bgr => PixelFormat::Bgr,
        V::I420 => PixelFormat::I420,
        V::Nv12 => PixelFormat::Nv12,
        other => panic!("{other:?}"),
    };
    let c = info.colorimetry();
    let mut matrix = match c.matrix() {
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::BT709,
        gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::BT2020,
        _ => YuvMatrix::BT601,
    };
    matrix.full_range = c.range() == gst_video::VideoColorRange::Range0_255;
    let site = info.chroma_site();
    let chroma = ChromaSiting {
        h_cosited: site.contains(gst_video::VideoChromaSite::H_COSITED),
        v_cosited: site.contains(gst_video::VideoChromaSite::V_COSITED),
    };
    (format, matrix, chroma)
}

/// The core's view of a mapped frame's planes, as the element builds it.
fn planes(frame: &Readable) -> Frame<&[u8]> {
    let (format, matrix, chroma) = core_format(frame);
    Frame {
        format,
        width: frame.width(),
        height: frame.height(),
        planes: (0..frame.n_planes())
            .map(|p| {
                (
                    frame.plane_data(p).unwrap(),
                    frame.plane_stride()[p as usize] as usize,
                )
            })
            .collect(),
        matrix,
        chroma,
    }
}

fn packed_rgb(frame: &Readable) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    (0..h)
        .flat_map(|y| data[y * stride..y * stride + w * 3].iter().copied())
        .collect()
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y) as f64)
        .sum::<f64>()
        / a.len() as f64
}

/// Frame 100 of the clip (Miranda, close) at 720p and 360p in each of the 8 formats: the
/// network input the element makes matches `videoconvert ! videoscale` to RGB 640x360.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn detector_input_matches_videoconvert_in_every_format() {
    if !assets_ready() {
        return;
    }
    for (w, h) in [(1280, 720), (640, 360)] {
        for format in FORMATS {
            let frames = clip_frames(w, h, format, &[100], Some((640, 360)));
            let (frame, reference) = &frames[0];
            let mut scaler = gstfacerec::NetworkScaler::new(frame.info(), 640).unwrap();
            let input = scaler.scale(&frame.as_video_frame_ref()).unwrap();
            assert_eq!(
                (input.image.width(), input.image.height()),
                (640, 360),
                "{format} {w}x{h}"
            );
            assert_eq!((input.frame_width, input.frame_height), (w, h));
            let mad = mean_abs_diff(
                input.image.as_raw(),
                &packed_rgb(reference.as_ref().unwrap()),
            );
            eprintln!("{format} {w}x{h}: mean abs diff {mad:.3}");
            assert!(mad < 1.5, "{format} {w}x{h}: mean abs diff {mad:.3}");
        }
    }
}
