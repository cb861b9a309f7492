// SPDX-License-Identifier: MPL-2.0

//! NVMM frames (`video/x-raw(memory:NVMM)`): the buffer's memory holds an `NvBufSurface`
//! (its mapped bytes are the struct, as DeepStream reads them). A frame is mapped for the CPU
//! (`NvBufSurfaceMap` + `NvBufSurfaceSyncForCpu`), its planes are wrapped without a copy in a
//! `gst::Buffer` with a `VideoMeta` carrying the surface's pitches, so the element's frame path
//! (network scaling, alignment, redaction, drawing) runs on it unchanged, and it is written
//! back (`NvBufSurfaceSyncForDevice`) when something was drawn, then unmapped.
//!
//! Not done yet: scaling to the network size on the VIC (`NvBufSurfTransform`); the CPU still
//! reads the whole frame for the detector's input, as in system memory.

use std::sync::Arc;

use gst::glib;

use super::nvbufsurface::{
    MAX_PLANES, NVBUF_COLOR_FORMAT_NV12, NVBUF_COLOR_FORMAT_NV12_709,
    NVBUF_COLOR_FORMAT_NV12_709_ER, NVBUF_COLOR_FORMAT_NV12_2020, NVBUF_COLOR_FORMAT_NV12_ER,
    NVBUF_COLOR_FORMAT_RGBA, NVBUF_LAYOUT_PITCH, NVBUF_MAP_READ_WRITE, NvBufSurface,
    NvBufSurfaceLib,
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
                "the surface's colour format {} is not {:?}",
                params.color_format,
                info.format()
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
