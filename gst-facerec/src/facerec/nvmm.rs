// SPDX-License-Identifier: MPL-2.0

//! NVMM frames (`video/x-raw(memory:NVMM)`): the buffer's memory holds an `NvBufSurface`
//! (its mapped bytes are the struct, as DeepStream reads them). A frame is mapped for the CPU
//! (`NvBufSurfaceMap` + `NvBufSurfaceSyncForCpu`), its planes are wrapped without a copy in a
//! `gst::Buffer` with a `VideoMeta` carrying the surface's pitches, so the element's frame path
//! (network scaling, alignment, redaction, drawing) runs on it unchanged, and it is written
//! back (`NvBufSurfaceSyncForDevice`) when something was drawn, then unmapped.
//!
//! Scaling: where `libnvbufsurftransform.so` loads (see `nvbufsurftransform`), [`VicScaler`]
//! has the VIC (`NvBufSurfTransform`, session on `NvBufSurfTransformCompute_VIC`, its 5-tap
//! filter `NvBufSurfTransformInter_Algo1`)
//! scale and colour-convert each frame that is detected on into a network-size pitch-linear
//! RGBA surface, made once per frame size and network width and kept CPU-mapped, and the CPU
//! reads only that for the detector's input. The full-resolution mapping is then read only
//! where the element cuts (alignment crops, `face-crops`) and written where it draws or
//! redacts. The VIC converts NV12 with the matrix and range of the surface's colour format
//! (what the pixels are), not the caps' colorimetry. Where the library is absent, the CPU
//! scales from the mapped frame as in system memory (one warning at negotiation).

use std::sync::Arc;

use gst::glib;

use facerec_core::detect::{NetworkInput, network_geometry};
use facerec_core::image::RgbImage;

use super::nvbufsurface::{
    MAX_PLANES, NVBUF_COLOR_FORMAT_NV12, NVBUF_COLOR_FORMAT_NV12_709,
    NVBUF_COLOR_FORMAT_NV12_709_ER, NVBUF_COLOR_FORMAT_NV12_2020, NVBUF_COLOR_FORMAT_NV12_ER,
    NVBUF_COLOR_FORMAT_RGBA, NVBUF_LAYOUT_PITCH, NVBUF_MAP_READ, NVBUF_MAP_READ_WRITE,
    NVBUF_MEM_DEFAULT, NvBufSurface, NvBufSurfaceCreateParams, NvBufSurfaceLib,
};
use super::nvbufsurftransform::{
    COMPUTE_VIC, FLIP_NONE, INTER_ALGO1, NvBufSurfTransformConfigParams, NvBufSurfTransformLib,
    NvBufSurfTransformParams, TRANSFORM_FILTER,
};

/// The caps feature of NVIDIA's hardware buffers.
pub const CAPS_FEATURE_NVMM: &str = "memory:NVMM";

/// Whether negotiated caps carry NVMM memory.
pub fn is_nvmm(caps: &gst::CapsRef) -> bool {
    caps.features(0)
        .is_some_and(|f| f.contains(CAPS_FEATURE_NVMM))
}

/// One CPU-mapped plane of a surface, lent to a `gst::Memory`. Valid while the surface is
/// mapped: `MappedSurface` unmaps only after its wrapper buffer (the only owner) is gone.
struct PlaneMemory {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory, used by one thread at a time through the buffer.
unsafe impl Send for PlaneMemory {}

impl AsRef<[u8]> for PlaneMemory {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` mapped bytes while the surface is mapped.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl AsMut<[u8]> for PlaneMemory {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; the surface was mapped read-write.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// Whether a surface's colour format holds frames of the negotiated `format`.
fn format_matches(format: gst_video::VideoFormat, color: u32) -> bool {
    match format {
        gst_video::VideoFormat::Rgba => color == NVBUF_COLOR_FORMAT_RGBA,
        gst_video::VideoFormat::Nv12 => [
            NVBUF_COLOR_FORMAT_NV12,
            NVBUF_COLOR_FORMAT_NV12_ER,
            NVBUF_COLOR_FORMAT_NV12_709,
            NVBUF_COLOR_FORMAT_NV12_709_ER,
            NVBUF_COLOR_FORMAT_NV12_2020,
        ]
        .contains(&color),
        _ => false,
    }
}

/// A surface colour format as `nvbufsurface.h` names it, for errors a user reads.
fn color_format_name(color: u32) -> String {
    let name = match color {
        NVBUF_COLOR_FORMAT_RGBA => "NVBUF_COLOR_FORMAT_RGBA",
        NVBUF_COLOR_FORMAT_NV12 => "NVBUF_COLOR_FORMAT_NV12",
        NVBUF_COLOR_FORMAT_NV12_ER => "NVBUF_COLOR_FORMAT_NV12_ER",
        NVBUF_COLOR_FORMAT_NV12_709 => "NVBUF_COLOR_FORMAT_NV12_709",
        NVBUF_COLOR_FORMAT_NV12_709_ER => "NVBUF_COLOR_FORMAT_NV12_709_ER",
        NVBUF_COLOR_FORMAT_NV12_2020 => "NVBUF_COLOR_FORMAT_NV12_2020",
        _ => return format!("NvBufSurfaceColorFormat {color}"),
    };
    format!("{name} ({color})")
}

/// A surface mapped for the CPU, with its planes wrapped as a video buffer.
pub struct MappedSurface {
    lib: Arc<NvBufSurfaceLib>,
    /// Keeps the buffer's memory, which holds the `NvBufSurface`, mapped and alive.
    _memory: gst::MappedMemory<gst::memory::Readable>,
    surf: *mut NvBufSurface,
    /// Whether buffer 0 is mapped (and must be unmapped).
    mapped: bool,
    wrapper: Option<gst::Buffer>,
}

impl MappedSurface {
    /// Maps buffer 0 of the surface `buffer` holds, checking it against the negotiated `info`.
    pub fn map(
        lib: Arc<NvBufSurfaceLib>,
        buffer: &gst::BufferRef,
        info: &gst_video::VideoInfo,
    ) -> Result<MappedSurface, String> {
        let memory = buffer
            .memory(0)
            .ok_or("the NVMM buffer has no memory")?
            .into_mapped_memory_readable()
            .map_err(|_| "cannot map the NVMM buffer's memory".to_string())?;
        if memory.size() < std::mem::size_of::<NvBufSurface>() {
            return Err(format!(
                "the NVMM buffer holds {} bytes, not an NvBufSurface ({} bytes)",
                memory.size(),
                std::mem::size_of::<NvBufSurface>()
            ));
        }
        let surf = memory.as_slice().as_ptr() as *mut NvBufSurface;
        // SAFETY: the memory of an NVMM buffer is an NvBufSurface (checked for size above);
        // read unaligned-safe by copying the header out.
        let header = unsafe { std::ptr::read_unaligned(surf) };
        if header.batch_size == 0 || header.surface_list.is_null() {
            return Err("the NvBufSurface has no buffers".into());
        }
        // SAFETY: surface_list points to batch_size (>= 1) entries.
        let params = unsafe { std::ptr::read_unaligned(header.surface_list) };
        if (params.width, params.height) != (info.width(), info.height()) {
            return Err(format!(
                "the surface is {}x{}, the caps say {}x{}",
                params.width,
                params.height,
                info.width(),
                info.height()
            ));
        }
        if !format_matches(info.format(), params.color_format) {
            return Err(format!(
                "the surface's colour format is {}, the caps say {}",
                color_format_name(params.color_format),
                info.format().to_str()
            ));
        }
        if params.layout != NVBUF_LAYOUT_PITCH {
            return Err(
                "the surface is block-linear, which the CPU cannot read: put nvvidconv (pitch-linear output) before facerec"
                    .into(),
            );
        }
        let planes = params.plane_params.num_planes as usize;
        if planes != info.n_planes() as usize || planes > MAX_PLANES {
            return Err(format!(
                "the surface has {planes} planes, {:?} has {}",
                info.format(),
                info.n_planes()
            ));
        }
        // SAFETY: a valid surface; index 0 exists.
        if unsafe { lib.map(surf, 0, NVBUF_MAP_READ_WRITE) } != 0 {
            return Err("NvBufSurfaceMap failed".into());
        }
        let mut mapped = MappedSurface {
            lib,
            _memory: memory,
            surf,
            mapped: true,
            wrapper: None,
        };
        // SAFETY: mapped above.
        if unsafe { mapped.lib.sync_for_cpu(surf, 0) } != 0 {
            return Err("NvBufSurfaceSyncForCpu failed".into());
        }
        // The addresses the map wrote into the surface.
        // SAFETY: as above.
        let params = unsafe { std::ptr::read_unaligned(header.surface_list) };
        let pp = &params.plane_params;
        let mut wrapper = gst::Buffer::new();
        let (mut offsets, mut strides) = (Vec::new(), Vec::new());
        {
            let wrapper = wrapper.get_mut().expect("new buffer");
            let mut offset = 0;
            for plane in 0..planes {
                let ptr = params.mapped_addr.addr[plane] as *mut u8;
                let (pitch, height) = (pp.pitch[plane] as usize, pp.height[plane] as usize);
                // For RGBA and NV12, plane p starts with component p (NV12's UV: pixel stride 2).
                let row =
                    info.comp_width(plane as u8) as usize * info.comp_pstride(plane as u8) as usize;
                if ptr.is_null() || pitch < row || height < info.comp_height(plane as u8) as usize {
                    return Err(format!(
                        "plane {plane} of the surface is not mapped as expected (pitch {pitch}, height {height})"
                    ));
                }
                let len = pitch * height;
                wrapper.append_memory(gst::Memory::from_mut_slice(PlaneMemory { ptr, len }));
                offsets.push(offset);
                strides.push(pitch as i32);
                offset += len;
            }
            gst_video::VideoMeta::add_full(
                wrapper,
                gst_video::VideoFrameFlags::empty(),
                info.format(),
                info.width(),
                info.height(),
                &offsets,
                &strides,
            )
            .map_err(|e| e.to_string())?;
        }
        mapped.wrapper = Some(wrapper);
        Ok(mapped)
    }

    /// The surface, for the VIC to read (it reads device memory, not the CPU mapping).
    pub fn raw(&self) -> *mut NvBufSurface {
        self.surf
    }

    /// The mapped planes as a video frame to read.
    pub fn readable_frame(
        &self,
        info: &gst_video::VideoInfo,
    ) -> Result<gst_video::VideoFrameRef<&gst::BufferRef>, glib::BoolError> {
        let wrapper = self
            .wrapper
            .as_ref()
            .ok_or_else(|| glib::bool_error!("the surface is not mapped"))?;
        gst_video::VideoFrameRef::from_buffer_ref_readable(wrapper.as_ref(), info)
    }

    /// The mapped planes as a writable video frame.
    pub fn frame(
        &mut self,
        info: &gst_video::VideoInfo,
    ) -> Result<gst_video::VideoFrameRef<&mut gst::BufferRef>, glib::BoolError> {
        let wrapper = self
            .wrapper
            .as_mut()
            .and_then(|b| b.get_mut())
            .ok_or_else(|| glib::bool_error!("the mapped surface is shared"))?;
        gst_video::VideoFrameRef::from_buffer_ref_writable(wrapper, info)
    }

    /// Writes the CPU's changes back to the device when `written`, and unmaps.
    pub fn finish(mut self, written: bool) -> Result<(), String> {
        self.release(written)
    }

    fn release(&mut self, written: bool) -> Result<(), String> {
        if let Some(wrapper) = self.wrapper.take() {
            if !wrapper.is_writable() {
                // Something kept the planes: unmapping would leave it dangling. Leak instead.
                std::mem::forget(wrapper);
                self.mapped = false;
                return Err("the mapped surface is still referenced; left mapped".into());
            }
            drop(wrapper);
        }
        if !std::mem::take(&mut self.mapped) {
            return Ok(());
        }
        let mut result = Ok(());
        // SAFETY: the surface was mapped by `map` and nothing references its planes now.
        if written && unsafe { self.lib.sync_for_device(self.surf, 0) } != 0 {
            result = Err("NvBufSurfaceSyncForDevice failed: the boxes drawn are lost".into());
        }
        if unsafe { self.lib.unmap(self.surf, 0) } != 0 && result.is_ok() {
            result = Err("NvBufSurfaceUnMap failed".into());
        }
        result
    }
}

impl Drop for MappedSurface {
    fn drop(&mut self) {
        // An early return (an error elsewhere in the frame): unmap, nothing to write back.
        let _ = self.release(false);
    }
}

/// The detector's input made by the VIC: each frame scaled and converted to a network-size
/// pitch-linear RGBA surface (made once, CPU-mapped for its life), of which the CPU reads only
/// the RGB bytes. The size and aspect are `network_geometry`'s, as for the CPU scaler.
pub struct VicScaler {
    surfaces: Arc<NvBufSurfaceLib>,
    transform: Arc<NvBufSurfTransformLib>,
    /// The destination surface: created, mapped for reading.
    dst: *mut NvBufSurface,
    in_size: (u32, u32),
    network_width: u32,
    out_size: (u32, u32),
    /// The thread whose session is set to the VIC (sessions are per thread).
    session: Option<std::thread::ThreadId>,
}

// SAFETY: the destination surface is owned by this value and used by one thread at a time.
unsafe impl Send for VicScaler {}

impl std::fmt::Debug for VicScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VicScaler")
            .field("in", &self.in_size)
            .field("out", &self.out_size)
            .field("library", &self.transform.path())
            .finish_non_exhaustive()
    }
}

impl VicScaler {
    /// Creates and maps the network-size RGBA surface for frames of `info`.
    pub fn new(
        surfaces: Arc<NvBufSurfaceLib>,
        transform: Arc<NvBufSurfTransformLib>,
        info: &gst_video::VideoInfo,
        network_width: u32,
    ) -> Result<VicScaler, String> {
        let (_, sw, sh, _, _) = network_geometry(info.width(), info.height(), network_width);
        let params = NvBufSurfaceCreateParams {
            gpu_id: 0,
            width: sw,
            height: sh,
            size: 0,
            is_contiguous: false,
            color_format: NVBUF_COLOR_FORMAT_RGBA,
            layout: NVBUF_LAYOUT_PITCH,
            mem_type: NVBUF_MEM_DEFAULT,
        };
        // SAFETY: freed in Drop with the same library.
        let dst = match unsafe { surfaces.create(1, &params) } {
            None => return Err(format!("{} has no NvBufSurfaceCreate", surfaces.path())),
            Some(Err(rc)) => {
                return Err(format!("NvBufSurfaceCreate ({sw}x{sh} RGBA) failed: {rc}"));
            }
            Some(Ok(dst)) => dst,
        };
        // SAFETY: a surface just created, batch 1.
        unsafe { (*dst).num_filled = 1 };
        let mut scaler = VicScaler {
            surfaces,
            transform,
            dst: std::ptr::null_mut(),
            in_size: (info.width(), info.height()),
            network_width,
            out_size: (sw, sh),
            session: None,
        };
        // SAFETY: as above; buffer 0 exists.
        if unsafe { scaler.surfaces.map(dst, 0, NVBUF_MAP_READ) } != 0 {
            // SAFETY: created above, not mapped.
            unsafe { scaler.surfaces.destroy(dst) };
            return Err("NvBufSurfaceMap of the network-size surface failed".into());
        }
        scaler.dst = dst;
        Ok(scaler)
    }

    /// Whether this scaler was made for frames of `info` and this network width.
    pub fn is_for(&self, info: &gst_video::VideoInfo, network_width: u32) -> bool {
        self.in_size == (info.width(), info.height()) && self.network_width == network_width
    }

    /// The VIC's network-size RGB image of the surface `src` (buffer 0).
    pub fn scale(&mut self, src: *mut NvBufSurface) -> Result<NetworkInput<'static>, String> {
        let thread = std::thread::current().id();
        if self.session != Some(thread) {
            let config = NvBufSurfTransformConfigParams {
                compute_mode: COMPUTE_VIC,
                gpu_id: 0,
                cuda_stream: std::ptr::null_mut(),
            };
            let rc = self.transform.set_session(&config);
            if rc != 0 {
                return Err(format!("NvBufSurfTransformSetSessionParams failed: {rc}"));
            }
            self.session = Some(thread);
        }
        // Whole frame to whole surface: no crop rectangles.
        let mut params = NvBufSurfTransformParams {
            transform_flag: TRANSFORM_FILTER,
            transform_flip: FLIP_NONE,
            // A multi-tap filter, as the CPU scaler's Catmull-Rom (chosen over bilinear for
            // its embeddings, see `NetworkScaler`). Against system memory on the clip at
            // 1280x720 the stand-in gave about the same with either: bilinear, max box
            // difference 12/17 px (RGBA/NV12), 0/0 names differ, 6/15 lone faces; its
            // Catmull-Rom model, 12/17 px, 2/3 names, 1/11 lone faces.
            transform_filter: INTER_ALGO1,
            src_rect: std::ptr::null_mut(),
            dst_rect: std::ptr::null_mut(),
        };
        // SAFETY: `src` is the frame's surface (held by the buffer being processed), `dst` ours.
        let rc = unsafe { self.transform.transform(src, self.dst, &mut params) };
        if rc != 0 {
            return Err(format!("NvBufSurfTransform failed: {rc}"));
        }
        // SAFETY: `dst` is mapped (new) and valid.
        if unsafe { self.surfaces.sync_for_cpu(self.dst, 0) } != 0 {
            return Err("NvBufSurfaceSyncForCpu of the network-size surface failed".into());
        }
        let (w, h) = (self.out_size.0 as usize, self.out_size.1 as usize);
        // SAFETY: batch 1, mapped: the list and the plane address are valid.
        let params = unsafe { std::ptr::read_unaligned((*self.dst).surface_list) };
        let pitch = params.plane_params.pitch[0] as usize;
        let base = params.mapped_addr.addr[0] as *const u8;
        if base.is_null()
            || pitch < w * 4
            || (params.plane_params.height[0] as usize) < h
            || (params.width, params.height) != self.out_size
        {
            return Err(format!(
                "the network-size surface is not mapped as created (pitch {pitch}, {}x{})",
                params.width, params.height
            ));
        }
        let mut rgb = Vec::with_capacity(w * h * 3);
        for row in 0..h {
            // SAFETY: rows of `pitch` bytes, `h` of them, mapped (checked above).
            let line = unsafe { std::slice::from_raw_parts(base.add(row * pitch), w * 4) };
            for px in line.chunks_exact(4) {
                rgb.extend_from_slice(&px[..3]);
            }
        }
        let image =
            RgbImage::from_raw(w as u32, h as u32, rgb).ok_or("network image size mismatch")?;
        Ok(NetworkInput {
            image: std::borrow::Cow::Owned(image),
            frame_width: self.in_size.0,
            frame_height: self.in_size.1,
        })
    }
}

impl Drop for VicScaler {
    fn drop(&mut self) {
        if self.dst.is_null() {
            return;
        }
        // SAFETY: created and mapped by `new`; nothing borrows its mapping past `scale`.
        unsafe {
            self.surfaces.unmap(self.dst, 0);
            self.surfaces.destroy(self.dst);
        }
    }
}
