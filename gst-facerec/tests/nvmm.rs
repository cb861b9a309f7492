//! NVMM input (`--features nvmm`): the FFI to `libnvbufsurface.so` run for real against a
//! stand-in library (`nvbufsurface-standin/`, built here with `cc`) that implements the
//! JetPack 6 API over system memory, and the element fed NVMM buffers made from the sample
//! clip. Without the feature, only the check that nothing NVMM is offered runs.
//!
//! The element finds the library through `FACEREC_NVBUFSURFACE_LIB`; the tests that run the
//! element set it for a child process of this test binary (`run_child_test`), so that tests in
//! one process never change its environment.

mod common;

use common::*;

/// The sink and src templates as the element offers them.
fn template_caps() -> Vec<String> {
    init();
    let factory = gst::ElementFactory::find("facerec").expect("facerec registered");
    factory
        .static_pad_templates()
        .iter()
        .map(|t| t.caps().to_string())
        .collect()
}

const SYSTEM_CAPS: &str = "video/x-raw, format=(string){ RGBA, BGRA, RGBx, BGRx, RGB, BGR, I420, NV12 }, width=(int)[ 1, 2147483647 ], height=(int)[ 1, 2147483647 ], framerate=(fraction)[ 0/1, 2147483647/1 ]";

#[cfg(not(feature = "nvmm"))]
#[test]
fn without_the_feature_nothing_nvmm_is_offered() {
    assert_eq!(template_caps(), vec![SYSTEM_CAPS, SYSTEM_CAPS]);
}

/// `pipelines/jetson-csi-to-window.sh` with stand-ins for `gst-inspect-1.0` (offering NVMM
/// or not) and `gst-launch-1.0` (printing its arguments): the pipeline it would run.
fn jetson_script_pipeline(plugin_offers_nvmm: bool) -> (String, String) {
    let dir = temp_dir("jetson-script");
    let inspect = if plugin_offers_nvmm {
        "echo '      video/x-raw(memory:NVMM)'"
    } else {
        "echo '      video/x-raw'"
    };
    for (name, body) in [
        ("gst-inspect-1.0", inspect),
        ("gst-launch-1.0", "echo \"$*\""),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/jetson-csi-to-window.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env_remove("GALLERY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn jetson_script_keeps_frames_in_nvmm_when_the_plugin_takes_them() {
    let camera = "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1";
    let tail = "! facerec provider=tensorrt live=true ! nvvidconv ! video/x-raw(memory:NVMM) ! nv3dsink sync=false";
    assert_eq!(
        jetson_script_pipeline(true),
        (
            format!("{camera} ! nvvidconv ! video/x-raw(memory:NVMM),format=RGBA {tail}"),
            String::new()
        )
    );
    assert_eq!(
        jetson_script_pipeline(false),
        (
            format!("{camera} ! nvvidconv ! video/x-raw,format=RGBA {tail}"),
            "facerec was built without --features nvmm: copying frames to system memory\n"
                .to_string()
        )
    );
}

#[cfg(feature = "nvmm")]
mod nvmm {
    use super::*;

    use std::path::{Path, PathBuf};
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use gst::prelude::*;
    use gst_video::prelude::*;
    use gstfacerec::facerec::nvbufsurface::*;
    use gstfacerec::facerec::nvbufsurftransform as xf;
    use gstfacerec::facerec::vic_network_input;

    #[test]
    fn nvmm_caps_are_offered_after_system_memory() {
        let nvmm = "video/x-raw(memory:NVMM), format=(string){ RGBA, NV12 }, width=(int)[ 1, 2147483647 ], height=(int)[ 1, 2147483647 ], framerate=(fraction)[ 0/1, 2147483647/1 ]";
        let both = format!("{SYSTEM_CAPS}; {nvmm}");
        assert_eq!(template_caps(), vec![both.clone(), both]);
    }

    /// Compiles `nvbufsurface-standin/{source}` into `{library}` with `$CC` (default `cc`).
    fn build_standin(source: &str, library: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("gst-facerec/tests/nvbufsurface-standin")
            .join(source);
        let out = fixture_dir("nvbufsurface-standin").join(library);
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let result = std::process::Command::new(&cc)
            .args([
                "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
            ])
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .arg("-lm")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
        assert!(
            result.status.success(),
            "{cc} failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&result.stderr)
        );
        out
    }

    /// The stand-in `libnvbufsurface.so`, compiled once per process.
    fn standin() -> PathBuf {
        static LIB: OnceLock<PathBuf> = OnceLock::new();
        LIB.get_or_init(|| build_standin("nvbufsurface_standin.c", LIBRARY_NAME))
            .clone()
    }

    /// The stand-in `libnvbufsurftransform.so` (the VIC over system memory), compiled once.
    fn transform_standin() -> PathBuf {
        static LIB: OnceLock<PathBuf> = OnceLock::new();
        LIB.get_or_init(|| build_standin("nvbufsurftransform_standin.c", xf::LIBRARY_NAME))
            .clone()
    }

    /// A transform library path no machine has: the CPU-scaling case.
    const NO_TRANSFORM_LIB: &str = "/nonexistent/libnvbufsurftransform.so";

    /// The stand-in's own symbols, beside the API: its layout and its call counters.
    struct StandinProbe {
        lib: libloading::Library,
    }

    impl StandinProbe {
        fn open(path: &Path) -> StandinProbe {
            StandinProbe {
                lib: unsafe { libloading::Library::new(path) }.unwrap(),
            }
        }

        /// Fills an array through one of the stand-in's `void f(T *out)` probe functions.
        fn read<T: Copy + Default, const N: usize>(&self, symbol: &[u8]) -> [T; N] {
            let mut out = [T::default(); N];
            unsafe {
                let f = self
                    .lib
                    .get::<unsafe extern "C" fn(*mut T)>(symbol)
                    .unwrap();
                f(out.as_mut_ptr());
            }
            out
        }

        fn layout(&self) -> [usize; 8] {
            self.read(b"standin_layout\0")
        }

        /// The transform stand-in's counters: transforms done, failed calls, session sets,
        /// the last compute mode set (-1: never).
        fn transform_counts(&self) -> [i32; 4] {
            self.read(b"standin_transform_counts\0")
        }

        fn transform_layout(&self) -> [usize; 5] {
            self.read(b"standin_transform_layout\0")
        }

        /// Calls so far: map, unmap, sync for CPU, sync for device, failed calls.
        fn counts(&self) -> [i32; 5] {
            self.read(b"standin_counts\0")
        }
    }

    #[test]
    fn standin_layout_is_the_plugins() {
        use std::mem::{offset_of, size_of};
        let probe = StandinProbe::open(&standin());
        assert_eq!(
            probe.layout(),
            [
                size_of::<NvBufSurfacePlaneParams>(),
                size_of::<NvBufSurfaceMappedAddr>(),
                size_of::<NvBufSurfaceParams>(),
                size_of::<NvBufSurface>(),
                size_of::<NvBufSurfaceCreateParams>(),
                offset_of!(NvBufSurfaceParams, plane_params),
                offset_of!(NvBufSurfaceParams, mapped_addr),
                offset_of!(NvBufSurface, surface_list),
            ]
        );
        // The JetPack 6 header's sizes on 64-bit targets.
        assert_eq!(probe.layout(), [232, 72, 384, 64, 32, 48, 280, 24]);
    }

    #[test]
    fn transform_standin_layout_is_the_plugins() {
        use std::mem::{offset_of, size_of};
        let probe = StandinProbe::open(&transform_standin());
        assert_eq!(
            probe.transform_layout(),
            [
                size_of::<xf::NvBufSurfTransformRect>(),
                size_of::<xf::NvBufSurfTransformConfigParams>(),
                size_of::<xf::NvBufSurfTransformParams>(),
                offset_of!(xf::NvBufSurfTransformParams, src_rect),
                offset_of!(xf::NvBufSurfTransformParams, dst_rect),
            ]
        );
        // The JetPack 6 header's sizes on 64-bit targets.
        assert_eq!(probe.transform_layout(), [16, 16, 32, 16, 24]);
    }

    fn create_params(width: u32, height: u32, color_format: u32) -> NvBufSurfaceCreateParams {
        NvBufSurfaceCreateParams {
            gpu_id: 0,
            width,
            height,
            size: 0,
            is_contiguous: false,
            color_format,
            layout: NVBUF_LAYOUT_PITCH,
            mem_type: NVBUF_MEM_SURFACE_ARRAY,
        }
    }

    /// A surface of the stand-in, destroyed on drop; its "device" memory is `dataPtr`.
    struct Surface {
        lib: Arc<NvBufSurfaceLib>,
        surf: *mut NvBufSurface,
    }

    unsafe impl Send for Surface {}

    impl Surface {
        fn new(lib: &Arc<NvBufSurfaceLib>, width: u32, height: u32, color_format: u32) -> Surface {
            let surf = unsafe { lib.create(1, &create_params(width, height, color_format)) }
                .expect("the stand-in has NvBufSurfaceCreate")
                .expect("NvBufSurfaceCreate succeeds");
            unsafe { (*surf).num_filled = 1 };
            Surface {
                lib: lib.clone(),
                surf,
            }
        }

        fn params(&self) -> &NvBufSurfaceParams {
            unsafe { &*(*self.surf).surface_list }
        }

        fn device_plane(&self, p: usize) -> (usize, &mut [u8]) {
            device_plane(self.surf, p)
        }
    }

    /// Plane `p` of a stand-in surface's device memory (`dataPtr`): pitch and bytes. The
    /// surface must outlive the slice.
    fn device_plane<'a>(surf: *mut NvBufSurface, p: usize) -> (usize, &'a mut [u8]) {
        unsafe {
            let params = &*(*surf).surface_list;
            let pp = &params.plane_params;
            let (pitch, height) = (pp.pitch[p] as usize, pp.height[p] as usize);
            let data = std::slice::from_raw_parts_mut(
                (params.data_ptr as *mut u8).add(pp.offset[p] as usize),
                pitch * height,
            );
            (pitch, data)
        }
    }

    impl AsRef<[u8]> for Surface {
        /// The bytes of the `NvBufSurface` struct: what an NVMM buffer's memory maps to.
        fn as_ref(&self) -> &[u8] {
            unsafe { std::slice::from_raw_parts(self.surf as *const u8, size_of::<NvBufSurface>()) }
        }
    }

    impl Drop for Surface {
        fn drop(&mut self) {
            unsafe { self.lib.destroy(self.surf) };
        }
    }

    /// The FFI on its own: map, sync both ways and unmap a stand-in surface, through the
    /// plugin's struct definitions.
    #[test]
    fn a_standin_surface_maps_syncs_and_unmaps_through_the_ffi() {
        let lib = Arc::new(NvBufSurfaceLib::load(&standin()).unwrap());
        let surface = Surface::new(&lib, 100, 50, NVBUF_COLOR_FORMAT_NV12);
        let params = *surface.params();
        assert_eq!((params.width, params.height), (100, 50));
        assert_eq!(params.plane_params.num_planes, 2);
        assert_eq!(params.plane_params.pitch[..2], [256, 256]);
        assert_eq!(params.plane_params.height[..2], [50, 25]);
        assert_eq!(params.plane_params.offset[..2], [0, 256 * 50]);
        for p in 0..2 {
            for (i, b) in surface.device_plane(p).1.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
        }
        let surf = surface.surf;
        unsafe {
            assert_eq!(lib.map(surf, 0, NVBUF_MAP_READ_WRITE), 0);
            // Mapping twice is a misuse the stand-in refuses, as the device would.
            assert_eq!(lib.map(surf, 0, NVBUF_MAP_READ_WRITE), -1);
        }
        let mapped = |p: usize| unsafe {
            let params = &*(*surf).surface_list;
            std::slice::from_raw_parts_mut(
                params.mapped_addr.addr[p] as *mut u8,
                params.plane_params.psize[p] as usize,
            )
        };
        assert!(
            mapped(0).iter().all(|&b| b == 0xCD),
            "unsynced mapping is garbage"
        );
        assert_eq!(unsafe { lib.sync_for_cpu(surf, 0) }, 0);
        for p in 0..2 {
            assert_eq!(mapped(p), &*surface.device_plane(p).1, "plane {p} synced");
        }
        mapped(1)[7] = 0xAB;
        assert_ne!(surface.device_plane(1).1[7], 0xAB, "not written back yet");
        assert_eq!(unsafe { lib.sync_for_device(surf, 0) }, 0);
        assert_eq!(surface.device_plane(1).1[7], 0xAB, "written back");
        assert_eq!(unsafe { lib.unmap(surf, 0) }, 0);
        assert!(params.mapped_addr.addr.iter().all(|a| a.is_null()));
        assert_eq!(unsafe { lib.unmap(surf, 0) }, -1, "unmapping twice fails");
        assert_eq!(unsafe { lib.sync_for_cpu(surf, 0) }, -1, "sync needs a map");
    }

    /// One pipeline `appsrc ! facerec ! appsink`, fed and drained one frame at a time.
    struct Lane {
        pipeline: gst::Pipeline,
        src: gst_app::AppSrc,
        sink: gst_app::AppSink,
    }

    impl Lane {
        fn new(caps: &gst::Caps, props: &str) -> Lane {
            init();
            let pipeline = gst::parse::launch(&format!(
                "appsrc name=src format=time ! facerec name=f {props} ! appsink name=sink sync=false"
            ))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
            let src = pipeline
                .by_name("src")
                .unwrap()
                .downcast::<gst_app::AppSrc>()
                .unwrap();
            src.set_caps(Some(caps));
            let sink = pipeline
                .by_name("sink")
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            pipeline.set_state(gst::State::Playing).unwrap();
            Lane {
                pipeline,
                src,
                sink,
            }
        }

        /// The first error on the bus.
        fn error(&self) -> Option<LaneError> {
            let bus = self.pipeline.bus().unwrap();
            while let Some(msg) = bus.pop() {
                if let gst::MessageView::Error(e) = msg.view() {
                    return Some(LaneError {
                        message: e.error().to_string(),
                        debug: e.debug().map(|d| d.to_string()).unwrap_or_default(),
                    });
                }
            }
            None
        }

        /// Pushes `buffer` and returns what comes out, or the pipeline's error.
        fn process(&self, buffer: gst::Buffer) -> Result<gst::Sample, LaneError> {
            let no_error = |message: &str| LaneError {
                message: message.into(),
                debug: String::new(),
            };
            if self.src.push_buffer(buffer).is_err() {
                return Err(self.error().unwrap_or_else(|| no_error("push refused")));
            }
            // An error (negotiation) leaves the sink waiting: look at the bus in between.
            for _ in 0..120 {
                if let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::from_seconds(1)) {
                    return Ok(sample);
                }
                if let Some(error) = self.error() {
                    return Err(error);
                }
            }
            Err(no_error("no output within 120 s"))
        }
    }

    /// An error message from a lane's bus: the element's text, and GStreamer's debug part
    /// (source location and element path, not asserted).
    #[derive(Debug)]
    struct LaneError {
        message: String,
        debug: String,
    }

    impl std::fmt::Display for LaneError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} ({})", self.message, self.debug)
        }
    }

    impl Drop for Lane {
        fn drop(&mut self) {
            let _ = self.pipeline.set_state(gst::State::Null);
        }
    }

    /// Tight rows of each plane of a system-memory frame.
    fn planes_of(frame: &gst_video::VideoFrameRef<&gst::BufferRef>) -> Vec<Vec<u8>> {
        (0..frame.n_planes())
            .map(|p| {
                let row = frame.comp_width(p) as usize * frame.comp_pstride(p) as usize;
                let stride = frame.plane_stride()[p as usize] as usize;
                let data = frame.plane_data(p).unwrap();
                (0..frame.comp_height(p) as usize)
                    .flat_map(|y| data[y * stride..y * stride + row].iter().copied())
                    .collect()
            })
            .collect()
    }

    /// Tight rows of each plane of a surface's device memory.
    fn planes_of_surface(surf: *mut NvBufSurface, info: &gst_video::VideoInfo) -> Vec<Vec<u8>> {
        (0..info.n_planes() as usize)
            .map(|p| {
                let row = info.comp_width(p as u8) as usize * info.comp_pstride(p as u8) as usize;
                let (pitch, data) = device_plane(surf, p);
                (0..info.comp_height(p as u8) as usize)
                    .flat_map(|y| data[y * pitch..y * pitch + row].iter().copied())
                    .collect()
            })
            .collect()
    }

    /// A face one path found and the other did not: frame, name, box.
    type LoneFace = (usize, String, (u32, u32, u32, u32));

    /// What the clip gave through both paths.
    #[derive(Debug, Default)]
    struct Comparison {
        frames: usize,
        frames_with_faces: usize,
        faces: usize,
        named: usize,
        /// Frames whose faces (name, box, track) differ between the paths.
        face_mismatches: Vec<usize>,
        /// Largest difference of a box coordinate between the paths, in pixels (faces paired
        /// by overlap).
        max_box_px: u32,
        /// Faces of both paths paired by overlap (IoU >= 0.5), per frame.
        paired: usize,
        /// Paired faces whose boxes differ by more than 2 px: (frame, largest difference).
        boxes_over_2px: Vec<(usize, u32)>,
        /// Paired faces named differently: (frame, system name, NVMM name).
        name_mismatches: Vec<(usize, String, String)>,
        /// Faces only one path found: (frame, name, box).
        only_system: Vec<LoneFace>,
        only_nvmm: Vec<LoneFace>,
        /// Frames whose output pixels differ between the paths.
        pixel_mismatches: Vec<usize>,
        /// Frames with faces whose NVMM output kept the input's pixels.
        undrawn: Vec<usize>,
        /// RGBA only: faces whose top edge pixel on the surface is not the box's colour.
        wrong_colour: Vec<(usize, String, [u8; 4])>,
        /// RGBA only: faces whose edge colour was checked (those not at the frame's top).
        edges_checked: usize,
    }

    /// The surface colour format of frames of `info`: for NV12, what the caps' colorimetry
    /// says (the VIC converts with it).
    fn surface_color_format(info: &gst_video::VideoInfo) -> u32 {
        match info.format() {
            gst_video::VideoFormat::Rgba => NVBUF_COLOR_FORMAT_RGBA,
            gst_video::VideoFormat::Nv12 => {
                let c = info.colorimetry();
                let full = c.range() == gst_video::VideoColorRange::Range0_255;
                match (c.matrix(), full) {
                    (gst_video::VideoColorMatrix::Bt709, false) => NVBUF_COLOR_FORMAT_NV12_709,
                    (gst_video::VideoColorMatrix::Bt709, true) => NVBUF_COLOR_FORMAT_NV12_709_ER,
                    (gst_video::VideoColorMatrix::Bt2020, _) => NVBUF_COLOR_FORMAT_NV12_2020,
                    (_, false) => NVBUF_COLOR_FORMAT_NV12,
                    (_, true) => NVBUF_COLOR_FORMAT_NV12_ER,
                }
            }
            other => panic!("{other:?}"),
        }
    }

    /// Runs the clip in `format` through the element twice, frame by frame in lockstep: from
    /// system memory, and from stand-in NVMM surfaces holding the same pixels. The surfaces'
    /// pitches are padded (256 bytes), the system frames' are not.
    /// `size`: caps fields the decoded clip is scaled to first (`""`: its own 640x360).
    fn compare_on_clip(format: &str, size: &str) -> Comparison {
        let lib = Arc::new(
            NvBufSurfaceLib::load(Path::new(
                &std::env::var(LIBRARY_ENV).expect("FACEREC_NVBUFSURFACE_LIB set by the parent"),
            ))
            .unwrap(),
        );
        let decode = gst::parse::launch(&format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format={format}{size} ! appsink name=raw sync=false",
            asset(CLIP).display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let raw = decode
            .by_name("raw")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        decode.set_state(gst::State::Playing).unwrap();
        let props = gallery_prop(&hamilton_gallery());
        let mut lanes: Option<(Lane, Lane)> = None;
        let mut out = Comparison::default();
        while let Ok(sample) = raw.pull_sample() {
            let caps = sample.caps().unwrap().to_owned();
            let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
            let (system, nvmm) = lanes.get_or_insert_with(|| {
                let mut nvmm_caps = caps.clone();
                nvmm_caps
                    .make_mut()
                    .set_features(0, Some(gst::CapsFeatures::new(["memory:NVMM"])));
                (Lane::new(&caps, &props), Lane::new(&nvmm_caps, &props))
            });
            let input = sample.buffer_owned().unwrap();
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(&input, &info).unwrap();
            let before = planes_of(&frame);
            if out.frames == 0 {
                eprintln!(
                    "{format}: {:?}, surface colour format {}",
                    info.colorimetry(),
                    surface_color_format(&info)
                );
            }
            let surface = Surface::new(
                &lib,
                info.width(),
                info.height(),
                surface_color_format(&info),
            );
            for (p, rows) in before.iter().enumerate() {
                let row = rows.len() / info.comp_height(p as u8) as usize;
                let (pitch, data) = surface.device_plane(p);
                for (y, line) in rows.chunks_exact(row).enumerate() {
                    data[y * pitch..y * pitch + row].copy_from_slice(line);
                }
            }
            drop(frame);
            let surf = surface.surf;
            let mut nvmm_buffer = gst::Buffer::from_slice(surface);
            {
                let b = nvmm_buffer.get_mut().unwrap();
                b.set_pts(input.pts());
                b.set_duration(input.duration());
            }
            // A copy, so that the system lane draws on its own pixels.
            let system_out = system.process(input.copy_deep().unwrap()).unwrap();
            let nvmm_out = nvmm
                .process(nvmm_buffer)
                .unwrap_or_else(|e| panic!("frame {}: {e}", out.frames));
            let index = out.frames;
            out.frames += 1;

            let sys_faces = faces_of(system_out.buffer().unwrap());
            let nv_faces = faces_of(nvmm_out.buffer().unwrap());
            if sys_faces.len() != nv_faces.len()
                || sys_faces
                    .iter()
                    .zip(&nv_faces)
                    .any(|(a, b)| a.name != b.name || a.track_id != b.track_id)
            {
                out.face_mismatches.push(index);
            }
            // Pair faces by overlap: a face found by one path only (a score near the
            // threshold) must not shift the comparison of the others.
            let iou = |a: (u32, u32, u32, u32), b: (u32, u32, u32, u32)| {
                let ix = (a.0 + a.2).min(b.0 + b.2).saturating_sub(a.0.max(b.0)) as f64;
                let iy = (a.1 + a.3).min(b.1 + b.3).saturating_sub(a.1.max(b.1)) as f64;
                let inter = ix * iy;
                inter / ((a.2 * a.3 + b.2 * b.3) as f64 - inter)
            };
            let mut taken = vec![false; nv_faces.len()];
            for a in &sys_faces {
                let best = (0..nv_faces.len())
                    .filter(|&k| !taken[k])
                    .map(|k| (k, iou(a.rect, nv_faces[k].rect)))
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                    .filter(|&(_, v)| v >= 0.5);
                let Some((k, _)) = best else {
                    out.only_system.push((index, a.name.clone(), a.rect));
                    continue;
                };
                taken[k] = true;
                let b = &nv_faces[k];
                out.paired += 1;
                if a.name != b.name {
                    out.name_mismatches
                        .push((index, a.name.clone(), b.name.clone()));
                }
                let (a, b) = (a.rect, b.rect);
                let d = [
                    a.0.abs_diff(b.0),
                    a.1.abs_diff(b.1),
                    a.2.abs_diff(b.2),
                    a.3.abs_diff(b.3),
                ]
                .into_iter()
                .max()
                .unwrap_or(0);
                out.max_box_px = out.max_box_px.max(d);
                if d > 2 {
                    out.boxes_over_2px.push((index, d));
                }
            }
            for (k, b) in nv_faces.iter().enumerate() {
                if !taken[k] {
                    out.only_nvmm.push((index, b.name.clone(), b.rect));
                }
            }
            if !nv_faces.is_empty() {
                out.frames_with_faces += 1;
            }
            out.faces += nv_faces.len();
            out.named += nv_faces.iter().filter(|f| f.name != "unknown").count();

            // The NVMM output is the same surface, its pixels in device memory.
            let out_buffer = nvmm_out.buffer().unwrap();
            let memory = out_buffer.peek_memory(0).map_readable().unwrap();
            assert_eq!(
                memory.as_slice().as_ptr() as *mut NvBufSurface,
                surf,
                "the surface comes out"
            );
            drop(memory);
            // The output buffer holds the surface alive.
            let after = planes_of_surface(surf, &info);
            let sys_frame = gst_video::VideoFrameRef::from_buffer_ref_readable(
                system_out.buffer().unwrap(),
                &info,
            )
            .unwrap();
            if planes_of(&sys_frame) != after {
                out.pixel_mismatches.push(index);
            }
            if !nv_faces.is_empty() && after == before {
                out.undrawn.push(index);
            }
            if format == "RGBA" {
                let w = info.width() as usize;
                for face in &nv_faces {
                    let (x, y, _, _) = face.rect;
                    if y == 0 {
                        continue;
                    }
                    let at = ((y as usize - 1) * w + x as usize + 1) * 4;
                    let px: [u8; 4] = after[0][at..at + 4].try_into().unwrap();
                    use facerec_core::overlay::{
                        KNOWN_COLOUR, UNKNOWN_COLOUR, UNRECOGNISED_COLOUR,
                    };
                    // "unknown" is also a face not tried yet (its own colour).
                    let want: &[[u8; 3]] = if face.name == "unknown" {
                        &[UNKNOWN_COLOUR, UNRECOGNISED_COLOUR]
                    } else {
                        &[KNOWN_COLOUR]
                    };
                    out.edges_checked += 1;
                    if !want.iter().any(|w| px[..3] == *w) {
                        out.wrong_colour.push((index, face.name.clone(), px));
                    }
                }
            }
        }
        decode.set_state(gst::State::Null).unwrap();
        out
    }

    /// The clip through both paths; `vic`: with the transform stand-in (the parent sets
    /// `FACEREC_NVBUFSURFTRANSFORM_LIB` to it), else with no transform library (CPU scaling).
    fn clip_child(format: &str, vic: bool) {
        if !assets_ready() {
            return;
        }
        let probe = StandinProbe::open(Path::new(&std::env::var(LIBRARY_ENV).unwrap()));
        let transform_probe =
            vic.then(|| StandinProbe::open(Path::new(&std::env::var(xf::LIBRARY_ENV).unwrap())));
        // The VIC is only worth testing where it scales: the clip (640x360, the default
        // network width) as a 1280x720 camera's frames, the Jetson pipeline's size.
        let c = compare_on_clip(format, if vic { ",width=1280,height=720" } else { "" });
        let [maps, unmaps, cpu, device, failed] = probe.counts();
        eprintln!("{format}: {c:?}");
        eprintln!(
            "{format}: stand-in calls: map {maps}, unmap {unmaps}, sync for CPU {cpu}, sync for device {device}, failed {failed}"
        );
        assert_eq!(c.frames, 275, "every frame comes out");
        assert_eq!(c.undrawn, Vec::<usize>::new(), "boxes drawn on the surface");
        assert_eq!(c.wrong_colour, Vec::new(), "box edges in the box colour");
        assert!(c.named > 0, "the clip names people: {c:?}");
        if format == "RGBA" {
            assert!(c.edges_checked > 0, "some box edges were checked");
        }
        assert_eq!(
            device as usize, c.frames_with_faces,
            "written back when drawn on"
        );
        match transform_probe {
            None => {
                // The CPU scaler reads the same pixels: identical results.
                assert_eq!(
                    c.face_mismatches,
                    Vec::<usize>::new(),
                    "same faces, names and tracks"
                );
                assert_eq!(c.max_box_px, 0, "same boxes");
                assert_eq!(c.name_mismatches, Vec::new(), "same names");
                assert_eq!(
                    c.pixel_mismatches,
                    Vec::<usize>::new(),
                    "same output pixels"
                );
                // Every frame mapped, synced for the CPU and unmapped once.
                assert_eq!([maps, unmaps, cpu, failed], [275, 275, 275, 0]);
            }
            Some(transform_probe) => {
                let [transforms, transform_failed, sessions, mode] =
                    transform_probe.transform_counts();
                eprintln!(
                    "{format}: transform stand-in: transforms {transforms}, failed {transform_failed}, sessions set {sessions}, compute mode {mode}"
                );
                // The VIC's scaler is not the CPU's, so faces near the score or naming
                // threshold (and the tracks they start) differ between the paths by amounts
                // that depend on both scalers: printed, not pinned. What the detector is fed
                // on the VIC path is checked against an independent resample by
                // `vic_network_input_matches_videoconvert`.
                eprintln!(
                    "{format}: VIC against system memory: {} paired, {} boxes over 2 px, largest {} px, {} named differently, {} only in system memory, {} only on NVMM",
                    c.paired,
                    c.boxes_over_2px.len(),
                    c.max_box_px,
                    c.name_mismatches.len(),
                    c.only_system.len(),
                    c.only_nvmm.len(),
                );
                // Where names differ, it is a face near the threshold named in one path only.
                assert!(
                    c.name_mismatches
                        .iter()
                        .all(|(_, a, b)| (a == "unknown") != (b == "unknown")),
                    "{:?}",
                    c.name_mismatches
                );
                assert!(
                    c.only_system
                        .iter()
                        .chain(&c.only_nvmm)
                        .all(|f| f.1 == "unknown"),
                    "a named face found by one path only"
                );
                // One transform per detected frame (every frame at detect-interval 1), one
                // session set to the VIC on the streaming thread, nothing failed.
                assert_eq!(
                    [transforms, transform_failed, sessions, mode],
                    [275, 0, 1, xf::COMPUTE_VIC as i32]
                );
                // Each frame as before, plus the network-size surface: mapped once for its
                // life (unmapped at stop) and synced for the CPU after each transform.
                assert_eq!([maps, unmaps, cpu, failed], [276, 276, 550, 0]);
            }
        }
    }

    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_clip_rgba() {
        clip_child("RGBA", false);
    }

    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_clip_nv12() {
        clip_child("NV12", false);
    }

    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_clip_rgba_vic() {
        clip_child("RGBA", true);
    }

    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_clip_nv12_vic() {
        clip_child("NV12", true);
    }

    const CPU_SCALING: &str = "NVMM frames scaled for detection on the CPU: cannot load /nonexistent/libnvbufsurftransform.so: /nonexistent/libnvbufsurftransform.so: cannot open shared object file: No such file or directory (set FACEREC_NVBUFSURFTRANSFORM_LIB to its path)";
    const VIC_SCALING: &str = "NVMM frames scaled for detection on the VIC through ";

    /// Runs a clip child with the stand-in `libnvbufsurface.so` and `transform` as the
    /// transform library, the element's log at INFO; returns the child's output.
    fn run_clip_child(name: &str, transform: &str) -> String {
        let lib = standin();
        let outcome = run_child_test(
            name,
            &[
                (LIBRARY_ENV, lib.to_str().unwrap()),
                (xf::LIBRARY_ENV, transform),
                ("GST_DEBUG", "facerec:4"),
                ("GST_DEBUG_NO_COLOR", "1"),
            ],
            Duration::from_secs(1800),
        );
        eprintln!("{}", outcome.output);
        assert!(outcome.succeeded(), "{name} {}", outcome.describe());
        assert!(
            outcome.output.contains("1 passed"),
            "{name} ran: {}",
            outcome.output
        );
        outcome.output
    }

    /// Without a transform library: the clip as NVMM RGBA surfaces gives the faces, names,
    /// boxes and drawn pixels of the system-memory path, frame by frame, and the element says
    /// once that it scales on the CPU.
    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn nvmm_rgba_clip_matches_system_memory() {
        if !assets_ready() {
            return;
        }
        let output = run_clip_child("nvmm::child_clip_rgba", NO_TRANSFORM_LIB);
        assert_eq!(output.matches(CPU_SCALING).count(), 1, "{output}");
        assert!(!output.contains(VIC_SCALING), "{output}");
    }

    /// The same in NV12 (two planes, each with its own mapping and pitch).
    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn nvmm_nv12_clip_matches_system_memory() {
        if !assets_ready() {
            return;
        }
        let output = run_clip_child("nvmm::child_clip_nv12", NO_TRANSFORM_LIB);
        assert_eq!(output.matches(CPU_SCALING).count(), 1, "{output}");
    }

    /// With the transform stand-in, the VIC makes the detector's input: the child test checks
    /// one transform per detected frame, drawing on the surface, and that faces seen by one
    /// path only or named differently are near the threshold; here, the one log line saying
    /// the VIC is used, and none saying the CPU is.
    fn clip_scaled_on_the_vic(child: &str) {
        let transform = transform_standin();
        let output = run_clip_child(child, transform.to_str().unwrap());
        let line = format!("{VIC_SCALING}{}", transform.display());
        assert_eq!(output.matches(&line).count(), 1, "{output}");
        assert!(
            !output.contains("scaled for detection on the CPU"),
            "{output}"
        );
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn nvmm_rgba_clip_scaled_on_the_vic_matches_system_memory() {
        if assets_ready() {
            clip_scaled_on_the_vic("nvmm::child_clip_rgba_vic");
        }
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn nvmm_nv12_clip_scaled_on_the_vic_matches_system_memory() {
        if assets_ready() {
            clip_scaled_on_the_vic("nvmm::child_clip_nv12_vic");
        }
    }

    /// A failing `NvBufSurfTransform` is an element error naming the function and its code.
    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_transform_failure() {
        if !assets_ready() {
            return;
        }
        let lib = Arc::new(
            NvBufSurfaceLib::load(Path::new(&std::env::var(LIBRARY_ENV).unwrap())).unwrap(),
        );
        let caps = gst::Caps::builder("video/x-raw")
            .features(["memory:NVMM"])
            .field("format", "NV12")
            .field("width", 64)
            .field("height", 48)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let lane = Lane::new(&caps, "");
        let surface = Surface::new(&lib, 64, 48, NVBUF_COLOR_FORMAT_NV12);
        let error = lane
            .process(gst::Buffer::from_slice(surface))
            .expect_err("the transform fails");
        assert_eq!(
            error.message, "Cannot scale the NVMM frame on the VIC: NvBufSurfTransform failed: -2",
            "{error}"
        );
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_failing_transform_is_an_element_error_naming_it() {
        if !assets_ready() {
            return;
        }
        let (lib, transform) = (standin(), transform_standin());
        let outcome = run_child_test(
            "nvmm::child_transform_failure",
            &[
                (LIBRARY_ENV, lib.to_str().unwrap()),
                (xf::LIBRARY_ENV, transform.to_str().unwrap()),
                ("FACEREC_STANDIN_TRANSFORM_FAIL", "1"),
            ],
            Duration::from_secs(300),
        );
        eprintln!("{}", outcome.output);
        assert!(outcome.succeeded(), "{}", outcome.describe());
        assert!(outcome.output.contains("1 passed"), "{}", outcome.output);
    }

    /// An `NvBufSurface` built here field by field, not by the stand-in's
    /// `NvBufSurfaceCreate` that the other tests use: one pitch-linear buffer whose "device"
    /// memory (`dataPtr`) is `data`, rows padded by 64 bytes (the stand-in pads to 256). A
    /// test sets one field to what the element must refuse before sharing it.
    struct HandMade {
        surf: *mut NvBufSurface,
        params: *mut NvBufSurfaceParams,
        data: Vec<u8>,
    }

    // SAFETY: the structs are owned here; the element reads them on one thread at a time.
    unsafe impl Send for HandMade {}
    unsafe impl Sync for HandMade {}

    impl HandMade {
        /// A blank surface holding frames of `info` (RGBA or NV12), as the caps say.
        fn new(info: &gst_video::VideoInfo) -> HandMade {
            // SAFETY: plain integers and pointers, for which zero is valid.
            let mut params: Box<NvBufSurfaceParams> = Box::new(unsafe { std::mem::zeroed() });
            let pp = &mut params.plane_params;
            pp.num_planes = info.n_planes();
            let mut size = 0;
            for p in 0..info.n_planes() as usize {
                // Plane p of RGBA and NV12 starts with component p.
                let (c, pstride) = (p as u8, info.comp_pstride(p as u8) as u32);
                pp.width[p] = info.comp_width(c);
                pp.height[p] = info.comp_height(c);
                pp.bytes_per_pix[p] = pstride;
                pp.pitch[p] = pp.width[p] * pstride + 64;
                pp.offset[p] = size;
                pp.psize[p] = pp.pitch[p] * pp.height[p];
                size += pp.psize[p];
            }
            let mut data = vec![0u8; size as usize];
            params.width = info.width();
            params.height = info.height();
            params.pitch = pp.pitch[0];
            params.color_format = surface_color_format(info);
            params.layout = NVBUF_LAYOUT_PITCH;
            params.data_size = size;
            params.data_ptr = data.as_mut_ptr().cast();
            let params = Box::into_raw(params);
            // SAFETY: as above.
            let mut surf: Box<NvBufSurface> = Box::new(unsafe { std::mem::zeroed() });
            surf.batch_size = 1;
            surf.num_filled = 1;
            surf.mem_type = NVBUF_MEM_SURFACE_ARRAY;
            surf.surface_list = params;
            HandMade {
                surf: Box::into_raw(surf),
                params,
                data,
            }
        }

        /// A surface holding `frame`'s pixels.
        fn from_frame(frame: &gst_video::VideoFrame<gst_video::video_frame::Readable>) -> Self {
            let mut surface = HandMade::new(frame.info());
            let pp = surface.params().plane_params;
            for p in 0..frame.n_planes() {
                let row = frame.comp_width(p) as usize * frame.comp_pstride(p) as usize;
                let (stride, pitch) = (
                    frame.plane_stride()[p as usize] as usize,
                    pp.pitch[p as usize] as usize,
                );
                let src = frame.plane_data(p).unwrap();
                let dst = &mut surface.data[pp.offset[p as usize] as usize..];
                for y in 0..frame.comp_height(p) as usize {
                    dst[y * pitch..y * pitch + row]
                        .copy_from_slice(&src[y * stride..y * stride + row]);
                }
            }
            surface
        }

        fn header(&mut self) -> &mut NvBufSurface {
            // SAFETY: owned, not shared yet (`&mut self`).
            unsafe { &mut *self.surf }
        }

        fn params(&mut self) -> &mut NvBufSurfaceParams {
            // SAFETY: as above.
            unsafe { &mut *self.params }
        }

        /// Whether any plane has a CPU mapping (read after the element is done with it).
        fn is_mapped(&self) -> bool {
            // SAFETY: owned; the element no longer runs on it.
            let addr = unsafe { std::ptr::read(&raw const (*self.params).mapped_addr.addr) };
            addr.iter().any(|a| !a.is_null())
        }

        /// An NVMM buffer of this surface: its memory is the struct, as DeepStream's is.
        fn buffer(self: &Arc<Self>) -> gst::Buffer {
            struct Shared(Arc<HandMade>);
            impl AsRef<[u8]> for Shared {
                fn as_ref(&self) -> &[u8] {
                    // SAFETY: the struct lives as long as the Arc.
                    unsafe {
                        std::slice::from_raw_parts(
                            self.0.surf as *const u8,
                            size_of::<NvBufSurface>(),
                        )
                    }
                }
            }
            gst::Buffer::from_slice(Shared(self.clone()))
        }
    }

    impl Drop for HandMade {
        fn drop(&mut self) {
            // SAFETY: made by Box::into_raw in `new`, freed once.
            unsafe {
                drop(Box::from_raw(self.surf));
                drop(Box::from_raw(self.params));
            }
        }
    }

    /// Frame `index` of the clip scaled by `videoscale` to `width` x `height` in `format`, and
    /// the same frame through `videoconvert ! videoscale` to RGB 640x360 (as `frame_path.rs`).
    fn clip_frame_and_reference(
        width: u32,
        height: u32,
        format: &str,
        index: usize,
    ) -> [gst_video::VideoFrame<gst_video::video_frame::Readable>; 2] {
        let pipeline = gst::parse::launch(&format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format={format},width={width},height={height} ! tee name=t t. ! queue ! appsink name=raw sync=false t. ! queue ! videoconvert ! videoscale ! video/x-raw,format=RGB,width=640,height=360 ! appsink name=rgb sync=false",
            asset(CLIP).display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let frames = ["raw", "rgb"].map(|name| {
            let sink = pipeline
                .by_name(name)
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            let mut sample = None;
            for _ in 0..=index {
                sample = Some(sink.pull_sample().expect("frame before EOS"));
            }
            let sample = sample.unwrap();
            let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
            gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info)
                .unwrap()
        });
        pipeline.set_state(gst::State::Null).unwrap();
        frames
    }

    /// Frame 10 of the clip at 1080p and 720p in RGBA and NV12, in a surface
    /// built here: the network input the element's VIC scaler makes from it (what the detector
    /// is fed on the VIC path) matches `videoconvert ! videoscale` to RGB 640x360 of the same
    /// frame. Bounds: RGBA, only the filters differ (the stand-in's Catmull-Rom, widened when
    /// shrinking, against videoscale's default), a fraction of a level on average, as
    /// `frame_path.rs` allows 1.5 for the CPU scaler. NV12 adds GStreamer's own 8-bit YUV to RGB
    /// (`videoconvert`, and the element's CPU path alike), which reads BT.709 limited range
    /// about 2.4 levels darker than the standard equations the stand-in uses (mid-grey Y=128
    /// gives 128, not 130.4): nearly all of NV12's difference is that offset (R +2.9,
    /// G +3.4, B +0.8 on frame 100). R and B swapped is 8.6 levels off (RGBA, 1080p).
    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn vic_network_input_matches_videoconvert() {
        if !assets_ready() {
            return;
        }
        let surfaces = Arc::new(NvBufSurfaceLib::load(&standin()).unwrap());
        let transform = Arc::new(xf::NvBufSurfTransformLib::load(&transform_standin()).unwrap());
        for (w, h) in [(1920, 1080), (1280, 720)] {
            for format in ["RGBA", "NV12"] {
                let [frame, reference] = clip_frame_and_reference(w, h, format, 10);
                let surface = HandMade::from_frame(&frame);
                // SAFETY: a valid surface holding the frame, alive until the end of the loop.
                let input = unsafe {
                    vic_network_input(
                        surfaces.clone(),
                        transform.clone(),
                        frame.info(),
                        640,
                        surface.surf,
                    )
                }
                .unwrap();
                assert_eq!(
                    (input.image.width(), input.image.height()),
                    (640, 360),
                    "{format} {w}x{h}"
                );
                assert_eq!((input.frame_width, input.frame_height), (w, h));
                // Tight rows of RGB.
                let reference: Vec<u8> = (0..360)
                    .flat_map(|y| {
                        let stride = reference.plane_stride()[0] as usize;
                        reference.plane_data(0).unwrap()[y * stride..y * stride + 640 * 3].to_vec()
                    })
                    .collect();
                let input = input.image.as_raw();
                assert_eq!(input.len(), reference.len());
                let mad = input
                    .iter()
                    .zip(&reference)
                    .map(|(a, b)| a.abs_diff(*b) as f64)
                    .sum::<f64>()
                    / input.len() as f64;
                eprintln!("{format} {w}x{h}: mean abs diff {mad:.3}");
                // Mean abs diff measured here: RGBA 0.19 (1080p), 0.18 (720p); NV12 2.20 and 2.06.
                let bound = match format {
                    "RGBA" => 1.0,
                    _ => 4.0,
                };
                assert!(mad < bound, "{format} {w}x{h}: mean abs diff {mad:.3}");
            }
        }
    }

    /// The VIC's output is what the detector reads: `obama.jpg` (one face in system memory) as
    /// an NVMM surface, with a transform stand-in that makes every network input black, gives
    /// no face, after one transform.
    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_blank_vic() {
        if !assets_ready() {
            return;
        }
        let transform = StandinProbe::open(Path::new(&std::env::var(xf::LIBRARY_ENV).unwrap()));
        let decode = gst::parse::launch(&format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=raw sync=false",
            asset(&format!("{TD}/obama.jpg")).display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        decode.set_state(gst::State::Playing).unwrap();
        let sample = decode
            .by_name("raw")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
            .pull_sample()
            .unwrap();
        decode.set_state(gst::State::Null).unwrap();
        let caps = sample.caps().unwrap().to_owned();
        let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
        let input = sample.buffer_owned().unwrap();
        let system = Lane::new(&caps, "")
            .process(input.copy_deep().unwrap())
            .unwrap();
        assert_eq!(
            faces_of(system.buffer().unwrap()).len(),
            1,
            "in system memory"
        );
        let surface = Arc::new(HandMade::from_frame(
            &gst_video::VideoFrame::from_buffer_readable(input, &info).unwrap(),
        ));
        let mut nvmm_caps = caps;
        nvmm_caps
            .make_mut()
            .set_features(0, Some(gst::CapsFeatures::new(["memory:NVMM"])));
        let nvmm = Lane::new(&nvmm_caps, "").process(surface.buffer()).unwrap();
        assert_eq!(
            faces_of(nvmm.buffer().unwrap()).len(),
            0,
            "from a black VIC output"
        );
        assert_eq!(
            transform.transform_counts()[..2],
            [1, 0],
            "one transform, none failed"
        );
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn the_detector_reads_the_vic_output() {
        if !assets_ready() {
            return;
        }
        let (lib, transform) = (standin(), transform_standin());
        let outcome = run_child_test(
            "nvmm::child_blank_vic",
            &[
                (LIBRARY_ENV, lib.to_str().unwrap()),
                (xf::LIBRARY_ENV, transform.to_str().unwrap()),
                ("FACEREC_STANDIN_TRANSFORM_BLANK", "1"),
            ],
            Duration::from_secs(300),
        );
        eprintln!("{}", outcome.output);
        assert!(outcome.succeeded(), "{}", outcome.describe());
        assert!(outcome.output.contains("1 passed"), "{}", outcome.output);
    }

    /// Set for `child_refusal`: which refusal it runs.
    const REFUSAL_ENV: &str = "FACEREC_TEST_REFUSAL";

    /// NV12 64x48 NVMM frames, a well-formed hand-made surface first (it must go through: the
    /// one field changed afterwards is what is refused), then the buffers of the refusal named
    /// by `FACEREC_TEST_REFUSAL`, each in a new pipeline: the exact element error, and no
    /// mapping left behind.
    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_refusal() {
        if !assets_ready() {
            return;
        }
        let case = std::env::var(REFUSAL_ENV).expect("set by the parent");
        let lib = NvBufSurfaceLib::load(Path::new(&std::env::var(LIBRARY_ENV).unwrap())).unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, 64, 48)
            .fps(gst::Fraction::new(30, 1))
            .build()
            .unwrap();
        let mut caps = info.to_caps().unwrap();
        caps.make_mut()
            .set_features(0, Some(gst::CapsFeatures::new(["memory:NVMM"])));
        let surface = |change: fn(&mut HandMade)| {
            let mut surface = HandMade::new(&info);
            change(&mut surface);
            Arc::new(surface)
        };
        // (the buffer, its surface when it has one, the reason the element must give)
        type Refused = (gst::Buffer, Option<Arc<HandMade>>, String);
        let with = |change: fn(&mut HandMade), reason: &str| -> Refused {
            let surface = surface(change);
            (surface.buffer(), Some(surface), reason.to_string())
        };
        let refused: Vec<Refused> = match case.as_str() {
            "no-memory" => vec![(
                gst::Buffer::new(),
                None,
                "the NVMM buffer has no memory".into(),
            )],
            "too-small" => vec![(
                gst::Buffer::from_slice([0u8; 16]),
                None,
                "the NVMM buffer holds 16 bytes, not an NvBufSurface (64 bytes)".into(),
            )],
            "no-buffers" => vec![
                with(
                    |s| s.header().batch_size = 0,
                    "the NvBufSurface has no buffers",
                ),
                with(
                    |s| s.header().surface_list = std::ptr::null_mut(),
                    "the NvBufSurface has no buffers",
                ),
            ],
            "size" => vec![
                with(
                    |s| s.params().width = 80,
                    "the surface is 80x48, the caps say 64x48",
                ),
                with(
                    |s| s.params().height = 40,
                    "the surface is 64x40, the caps say 64x48",
                ),
            ],
            "colour" => vec![with(
                |s| s.params().color_format = NVBUF_COLOR_FORMAT_RGBA,
                "the surface's colour format is NVBUF_COLOR_FORMAT_RGBA (19), the caps say NV12",
            )],
            "block-linear" => vec![with(
                |s| s.params().layout = NVBUF_LAYOUT_BLOCK_LINEAR,
                "the surface is block-linear, which the CPU cannot read: put nvvidconv (pitch-linear output) before facerec",
            )],
            "planes" => vec![
                with(
                    |s| s.params().plane_params.num_planes = 1,
                    "the surface has 1 planes, Nv12 has 2",
                ),
                with(
                    |s| s.params().plane_params.num_planes = 3,
                    "the surface has 3 planes, Nv12 has 2",
                ),
            ],
            // The UV plane's rows are 64 bytes, 24 of them.
            "plane-mapping" => vec![
                with(
                    |s| s.params().plane_params.pitch[1] = 32,
                    "plane 1 of the surface is not mapped as expected (pitch 32, height 24)",
                ),
                with(
                    |s| s.params().plane_params.height[1] = 23,
                    "plane 1 of the surface is not mapped as expected (pitch 128, height 23)",
                ),
            ],
            "map-fails" => {
                let surface = surface(|_| ());
                // Mapped already: the library refuses a second map, as the device does.
                assert_eq!(unsafe { lib.map(surface.surf, 0, NVBUF_MAP_READ) }, 0);
                vec![(
                    surface.buffer(),
                    Some(surface),
                    "NvBufSurfaceMap failed".into(),
                )]
            }
            other => panic!("no refusal {other:?}"),
        };
        let control = Lane::new(&caps, "");
        let accepted = Arc::new(HandMade::new(&info));
        control
            .process(accepted.buffer())
            .expect("a well-formed hand-made surface goes through");
        assert!(!accepted.is_mapped(), "unmapped after the frame");
        drop(control);
        for (buffer, surface, reason) in refused {
            let lane = Lane::new(&caps, "");
            let error = lane.process(buffer).expect_err("refused");
            assert_eq!(
                error.message,
                format!("Cannot map the NVMM frame: {reason}"),
                "{error}"
            );
            drop(lane);
            let Some(surface) = surface else { continue };
            if case == "map-fails" {
                assert_eq!(
                    unsafe { lib.unmap(surface.surf, 0) },
                    0,
                    "still the test's map"
                );
            } else {
                assert!(!surface.is_mapped(), "{reason}: the element left a mapping");
            }
        }
    }

    /// Runs `child_refusal` for `case` with the stand-in library and no transform library.
    fn refusal(case: &str) {
        if !assets_ready() {
            return;
        }
        let lib = standin();
        let outcome = run_child_test(
            "nvmm::child_refusal",
            &[
                (LIBRARY_ENV, lib.to_str().unwrap()),
                (xf::LIBRARY_ENV, NO_TRANSFORM_LIB),
                (REFUSAL_ENV, case),
            ],
            Duration::from_secs(300),
        );
        eprintln!("{}", outcome.output);
        assert!(outcome.succeeded(), "{case}: {}", outcome.describe());
        assert!(outcome.output.contains("1 passed"), "{}", outcome.output);
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_buffer_without_memory_is_refused() {
        refusal("no-memory");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_buffer_smaller_than_a_surface_is_refused() {
        refusal("too-small");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_surface_without_buffers_is_refused() {
        refusal("no-buffers");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_surface_of_another_size_than_the_caps_is_refused() {
        refusal("size");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_surface_of_another_colour_format_than_the_caps_is_refused() {
        refusal("colour");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_block_linear_surface_is_refused_naming_nvvidconv() {
        refusal("block-linear");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_surface_with_another_plane_count_is_refused() {
        refusal("planes");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_plane_mapped_short_of_the_frame_is_refused_and_unmapped() {
        refusal("plane-mapping");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn a_surface_that_fails_to_map_is_refused() {
        refusal("map-fails");
    }

    /// With the library missing: NVMM caps fail at negotiation with an element error naming
    /// the library and why `dlopen` failed; system memory still works in the same process.
    #[test]
    #[ignore = "run by its parent test in a child process with FACEREC_NVBUFSURFACE_LIB set"]
    fn child_missing_library() {
        if !assets_ready() {
            return;
        }
        let name = std::env::var(LIBRARY_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| LIBRARY_NAME.to_string());
        let caps = gst::Caps::builder("video/x-raw")
            .features(["memory:NVMM"])
            .field("format", "NV12")
            .field("width", 64)
            .field("height", 48)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let lane = Lane::new(&caps, "");
        let error = lane
            .process(gst::Buffer::with_size(64).unwrap())
            .expect_err("no library, no frame");
        let expected = format!(
            "Cannot load {name} (needed for video/x-raw(memory:NVMM) frames; set FACEREC_NVBUFSURFACE_LIB to its path, or convert to system memory with nvvidconv): {name}: cannot open shared object file: No such file or directory"
        );
        assert_eq!(error.message, expected, "{error}");
        drop(lane);
        let run = run_pipeline(
            &decode_pipeline(&format!("{TD}/obama.jpg"), "NV12", ""),
            false,
        );
        assert_eq!(run.error, None);
        assert_eq!(run.frames.len(), 1);
        assert_eq!(run.frames[0].len(), 1, "one face in system memory");
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn missing_library_is_a_clear_error_at_negotiation() {
        if !assets_ready() {
            return;
        }
        let mut cases = vec!["/nonexistent/libnvbufsurface.so"];
        // The default name, unless this machine has the real library (a Jetson).
        if unsafe { libloading::Library::new(LIBRARY_NAME) }.is_err() {
            cases.push("");
        } else {
            eprintln!("{LIBRARY_NAME} is installed here: the default-name case is skipped");
        }
        for lib in cases {
            let outcome = run_child_test(
                "nvmm::child_missing_library",
                &[(LIBRARY_ENV, lib)],
                Duration::from_secs(300),
            );
            eprintln!("{}", outcome.output);
            assert!(outcome.succeeded(), "{lib:?}: {}", outcome.describe());
            assert!(outcome.output.contains("1 passed"), "{}", outcome.output);
        }
    }
}
