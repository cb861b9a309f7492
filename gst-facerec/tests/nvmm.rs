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

        /// The first error on the bus, as `error (debug)`.
        fn error(&self) -> Option<String> {
            let bus = self.pipeline.bus().unwrap();
            while let Some(msg) = bus.pop() {
                if let gst::MessageView::Error(e) = msg.view() {
                    return Some(format!(
                        "{} ({})",
                        e.error(),
                        e.debug().map(|d| d.to_string()).unwrap_or_default()
                    ));
                }
            }
            None
        }

        /// Pushes `buffer` and returns what comes out, or the pipeline's error.
        fn process(&self, buffer: gst::Buffer) -> Result<gst::Sample, String> {
            if self.src.push_buffer(buffer).is_err() {
                return Err(self.error().unwrap_or_else(|| "push refused".into()));
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
            Err("no output within 120 s".into())
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
        // The surface's colour format says what the caps' colorimetry says (the VIC reads it).
        let color_format = |info: &gst_video::VideoInfo| match format {
            "RGBA" => NVBUF_COLOR_FORMAT_RGBA,
            "NV12" => {
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
            other => panic!("{other}"),
        };
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
                    color_format(&info)
                );
            }
            let surface = Surface::new(&lib, info.width(), info.height(), color_format(&info));
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
                    "{format}: transform stand-in: transforms {transforms}, failed {transform_failed}, sessions set {sessions}, compute mode {mode}; max box difference {} px",
                    c.max_box_px
                );
                // The VIC's scaler is not the CPU's: inputs differ by rounding (RGBA) and by
                // the colour conversion (NV12: the stand-in converts after scaling, with chroma
                // at half resolution; the CPU path through VideoConverter), and faces near the
                // score or naming threshold, and the tracks they start, then differ. These are
                // the figures measured on this machine (deterministic run to run): (faces
                // paired by overlap, of which boxes more than 2 px apart, largest difference,
                // paired faces named differently, faces only the system path found, only the
                // NVMM path).
                let figures = (
                    c.paired,
                    c.boxes_over_2px.len(),
                    c.max_box_px,
                    c.name_mismatches.len(),
                    c.only_system.len(),
                    c.only_nvmm.len(),
                );
                let measured = match format {
                    "RGBA" => (441, 12, 12, 2, 1, 0),
                    _ => (440, 63, 17, 3, 2, 9),
                };
                assert_eq!(figures, measured, "VIC against system memory");
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

    /// With the transform stand-in, the VIC makes the detector's input: the child test pins
    /// the measured difference from system memory (another scaler, so not within 2 px), one
    /// transform per detected frame and drawing on the surface; here, the one log line saying
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
        let expected = "Cannot scale the NVMM frame on the VIC: NvBufSurfTransform failed: -2 (";
        assert!(
            error.starts_with(expected),
            "error:\n{error}\nexpected:\n{expected}"
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
        assert!(
            error.starts_with(&format!("{expected} (")),
            "error:\n{error}\nexpected:\n{expected}"
        );
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
