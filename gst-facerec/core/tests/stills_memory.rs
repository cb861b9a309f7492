//! A 12000x12000 photo in memory (432 MB) is analysed without a full-size network input: the
//! pyramid works one tile at a time. Its own test binary, so that the allocation count and the
//! peak RSS belong to this one test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::image::{Rgb, RgbImage, imageops};
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{require, require_runtime};

/// Live bytes allocated through Rust's allocator, and their peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// This process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024
}

const MB: usize = 1024 * 1024;

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_12000_px_photo_is_analysed_in_bounded_memory() {
    if !require_runtime() || require("models/yunet_s_dynamic.onnx").is_none() {
        return;
    }
    let Some(obama) = require("testdata/face_recognition/obama.jpg") else {
        return;
    };
    let mut engine = Engine::new(EngineConfig::default()).expect("models load");
    // A grey 12000x12000 photo with the obama.jpg portrait pasted three times: at a quarter
    // (58 px face), native (232 px) and 4x (928 px, too large for the native pixels).
    let portrait = load_rgb(&obama).unwrap();
    let mut photo = RgbImage::from_pixel(12000, 12000, Rgb([128, 128, 128]));
    let quarter = imageops::resize(&portrait, 228, 284, imageops::FilterType::Triangle);
    let big = imageops::resize(&portrait, 3640, 4548, imageops::FilterType::CatmullRom);
    imageops::replace(&mut photo, &quarter, 1000, 9000);
    imageops::replace(&mut photo, &portrait, 6000, 1000);
    imageops::replace(&mut photo, &big, 7000, 6500);
    drop((quarter, big));

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let faces = engine.analyze(&photo).unwrap();
    let extra = PEAK.load(Ordering::Relaxed) - before;
    let rss = peak_rss_mb();
    let mut boxes: Vec<[i32; 4]> = faces
        .iter()
        .map(|f| {
            let b = f.detection.bbox;
            [b.x as i32, b.y as i32, b.w as i32, b.h as i32]
        })
        .collect();
    boxes.sort();
    eprintln!(
        "12000x12000: {} faces {boxes:?}; peak Rust allocation beyond the photo {} MB, peak RSS {rss} MB",
        faces.len(),
        extra / MB
    );
    assert_eq!(faces.len(), 3, "{boxes:?}");
    assert!(faces.iter().all(|f| f.embedding.is_some()));
    // The largest buffers: the network input of a whole level of up to 2048x2048 (50 MB of
    // floats) and that level's RGB (12 MB); a 1536 px tile needs less (28 + 7 MB). Measured:
    // 34 MB. A single native pass would need 1728 MB of network input alone, and making each
    // coarser level whole (6000x6000 RGB for the first) 108 MB.
    assert!(
        extra < 64 * MB,
        "analyze allocated {} MB beyond the photo",
        extra / MB
    );
    // Everything, ONNX Runtime's own arenas included: measured 740 MB, the photo being 412 MB of
    // it (and the 4x portrait pasted in, 47 MB, freed before).
    assert!(rss < 1024, "peak RSS {rss} MB");
}
