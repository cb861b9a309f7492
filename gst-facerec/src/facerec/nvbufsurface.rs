// SPDX-License-Identifier: MPL-2.0

//! FFI to NVIDIA's `libnvbufsurface.so`, loaded at run time (`libloading`), so that a plugin
//! built with the `nvmm` feature still loads and runs where the library is absent: only
//! negotiating `video/x-raw(memory:NVMM)` needs it.
//!
//! The structs are those of `nvbufsurface.h` in Jetson Linux r36 (JetPack 6; the header's
//! copyright line reads "2019-2023", the release that added `NvBufSurfaceMapParams` and
//! `NvBufSurfaceImport`), as published with the Jetson Multimedia API and DeepStream 6.4/7.0.
//! Only the fields the element reads are named; the rest are kept as padding of the same size,
//! and the sizes and offsets are checked at compile time for 64-bit targets (aarch64 on the
//! Jetson, x86_64 here), where the header's layout is:
//!
//! | struct | size | fields at |
//! |---|---|---|
//! | `NvBufSurfacePlaneParams` | 232 | `num_planes` 0, `width` 4, `height` 20, `pitch` 36, `offset` 52, `psize` 68, `bytesPerPix` 84 |
//! | `NvBufSurfaceMappedAddr` | 72 | `addr` 0, `eglImage` 32 |
//! | `NvBufSurfaceParams` | 384 | `width` 0, `height` 4, `pitch` 8, `colorFormat` 12, `layout` 16, `bufferDesc` 24, `dataSize` 32, `dataPtr` 40, `planeParams` 48, `mappedAddr` 280, `paramex` 352 |
//! | `NvBufSurface` | 64 | `gpuId` 0, `batchSize` 4, `numFilled` 8, `isContiguous` 12, `memType` 16, `surfaceList` 24 |
//! | `NvBufSurfaceCreateParams` | 32 | `gpuId` 0, `width` 4, `height` 8, `size` 12, `isContiguous` 16, `colorFormat` 20, `layout` 24, `memType` 28 |

use std::ffi::{c_int, c_void};
use std::path::PathBuf;

/// `NVBUF_MAX_PLANES`.
pub const MAX_PLANES: usize = 4;
/// `STRUCTURE_PADDING`.
const PADDING: usize = 4;

/// `NvBufSurfaceMemMapFlags`.
pub const NVBUF_MAP_READ: c_int = 0;
pub const NVBUF_MAP_WRITE: c_int = 1;
pub const NVBUF_MAP_READ_WRITE: c_int = 2;

/// `NvBufSurfaceLayout`.
pub const NVBUF_LAYOUT_PITCH: u32 = 0;
pub const NVBUF_LAYOUT_BLOCK_LINEAR: u32 = 1;

/// `NvBufSurfaceMemType`: the Jetson's hardware surfaces and plain `malloc` memory.
pub const NVBUF_MEM_DEFAULT: u32 = 0;
pub const NVBUF_MEM_SURFACE_ARRAY: u32 = 4;
pub const NVBUF_MEM_SYSTEM: u32 = 6;

/// `NvBufSurfaceColorFormat` values the element accepts (the enum's positions in the header).
pub const NVBUF_COLOR_FORMAT_NV12: u32 = 6;
pub const NVBUF_COLOR_FORMAT_NV12_ER: u32 = 7;
pub const NVBUF_COLOR_FORMAT_RGBA: u32 = 19;
pub const NVBUF_COLOR_FORMAT_NV12_709: u32 = 33;
pub const NVBUF_COLOR_FORMAT_NV12_709_ER: u32 = 34;
pub const NVBUF_COLOR_FORMAT_NV12_2020: u32 = 36;

/// `NvBufSurfacePlaneParams`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NvBufSurfacePlaneParams {
    pub num_planes: u32,
    pub width: [u32; MAX_PLANES],
    pub height: [u32; MAX_PLANES],
    pub pitch: [u32; MAX_PLANES],
    pub offset: [u32; MAX_PLANES],
    pub psize: [u32; MAX_PLANES],
    pub bytes_per_pix: [u32; MAX_PLANES],
    pub _reserved: [*mut c_void; PADDING * MAX_PLANES],
}

/// `NvBufSurfaceMappedAddr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NvBufSurfaceMappedAddr {
    pub addr: [*mut c_void; MAX_PLANES],
    pub egl_image: *mut c_void,
    pub _reserved: [*mut c_void; PADDING],
}

/// `NvBufSurfaceParams`: one buffer of a batch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NvBufSurfaceParams {
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub color_format: u32,
    pub layout: u32,
    pub buffer_desc: u64,
    pub data_size: u32,
    pub data_ptr: *mut c_void,
    pub plane_params: NvBufSurfacePlaneParams,
    pub mapped_addr: NvBufSurfaceMappedAddr,
    /// `NvBufSurfaceParamsEx *`, not read here.
    pub paramex: *mut c_void,
    pub _reserved: [*mut c_void; PADDING - 1],
}

/// `NvBufSurface`: a batch of buffers.
#[repr(C)]
#[derive(Debug)]
pub struct NvBufSurface {
    pub gpu_id: u32,
    pub batch_size: u32,
    pub num_filled: u32,
    pub is_contiguous: bool,
    pub mem_type: u32,
    pub surface_list: *mut NvBufSurfaceParams,
    pub _reserved: [*mut c_void; PADDING],
}

/// `NvBufSurfaceCreateParams` (for tests and tools that allocate surfaces).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NvBufSurfaceCreateParams {
    pub gpu_id: u32,
    pub width: u32,
    pub height: u32,
    pub size: u32,
    pub is_contiguous: bool,
    pub color_format: u32,
    pub layout: u32,
    pub mem_type: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<NvBufSurfacePlaneParams>() == 232);
    assert!(offset_of!(NvBufSurfacePlaneParams, pitch) == 36);
    assert!(offset_of!(NvBufSurfacePlaneParams, psize) == 68);
    assert!(offset_of!(NvBufSurfacePlaneParams, _reserved) == 104);
    assert!(size_of::<NvBufSurfaceMappedAddr>() == 72);
    assert!(size_of::<NvBufSurfaceParams>() == 384);
    assert!(offset_of!(NvBufSurfaceParams, buffer_desc) == 24);
    assert!(offset_of!(NvBufSurfaceParams, data_ptr) == 40);
    assert!(offset_of!(NvBufSurfaceParams, plane_params) == 48);
    assert!(offset_of!(NvBufSurfaceParams, mapped_addr) == 280);
    assert!(offset_of!(NvBufSurfaceParams, paramex) == 352);
    assert!(size_of::<NvBufSurface>() == 64);
    assert!(offset_of!(NvBufSurface, mem_type) == 16);
    assert!(offset_of!(NvBufSurface, surface_list) == 24);
    assert!(size_of::<NvBufSurfaceCreateParams>() == 32);
    assert!(offset_of!(NvBufSurfaceCreateParams, color_format) == 20);
};

/// The environment variable that names the library to load instead of `libnvbufsurface.so`
/// (a path, or a bare name searched like `dlopen` does: `LD_LIBRARY_PATH`, then the loader's
/// cache, where JetPack registers `/usr/lib/aarch64-linux-gnu/tegra`).
pub const LIBRARY_ENV: &str = "FACEREC_NVBUFSURFACE_LIB";
/// The library's name on a Jetson.
pub const LIBRARY_NAME: &str = "libnvbufsurface.so";

type MapFn = unsafe extern "C" fn(*mut NvBufSurface, c_int, c_int, c_int) -> c_int;
type PlaneFn = unsafe extern "C" fn(*mut NvBufSurface, c_int, c_int) -> c_int;
type CreateFn =
    unsafe extern "C" fn(*mut *mut NvBufSurface, u32, *mut NvBufSurfaceCreateParams) -> c_int;
type DestroyFn = unsafe extern "C" fn(*mut NvBufSurface) -> c_int;

/// Why the library could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub library: String,
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cannot load {} (needed for video/x-raw(memory:NVMM) frames; set {} to its path, or convert to system memory with nvvidconv): {}",
            self.library, LIBRARY_ENV, self.reason
        )
    }
}

impl std::error::Error for LoadError {}

/// What `dlerror` said: libloading's own message ("dlopen failed") carries it as its source.
fn reason(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}

/// The loaded library and the functions the element calls. The function pointers stay valid
/// as long as `_library` is loaded, which is as long as this value lives.
pub struct NvBufSurfaceLib {
    map: MapFn,
    unmap: PlaneFn,
    sync_for_cpu: PlaneFn,
    sync_for_device: PlaneFn,
    create: Option<CreateFn>,
    destroy: Option<DestroyFn>,
    path: String,
    _library: libloading::Library,
}

impl std::fmt::Debug for NvBufSurfaceLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvBufSurfaceLib")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NvBufSurfaceLib {
    /// The library `FACEREC_NVBUFSURFACE_LIB` names, else `libnvbufsurface.so`.
    pub fn load_default() -> Result<NvBufSurfaceLib, LoadError> {
        let name = std::env::var_os(LIBRARY_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(LIBRARY_NAME));
        Self::load(&name)
    }

    /// Loads `path` and resolves the four functions the element needs (`NvBufSurfaceCreate`
    /// and `NvBufSurfaceDestroy` are optional: only tests allocate).
    pub fn load(path: &std::path::Path) -> Result<NvBufSurfaceLib, LoadError> {
        let shown = path.display().to_string();
        let error = |reason: String| LoadError {
            library: shown.clone(),
            reason,
        };
        // SAFETY: loading runs the library's initialisers; libnvbufsurface's (and the
        // stand-in's) have no preconditions.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| error(reason(&e)))?;
        // SAFETY: the types are the header's prototypes.
        unsafe {
            let map = *library
                .get::<MapFn>(b"NvBufSurfaceMap\0")
                .map_err(|e| error(reason(&e)))?;
            let unmap = *library
                .get::<PlaneFn>(b"NvBufSurfaceUnMap\0")
                .map_err(|e| error(reason(&e)))?;
            let sync_for_cpu = *library
                .get::<PlaneFn>(b"NvBufSurfaceSyncForCpu\0")
                .map_err(|e| error(reason(&e)))?;
            let sync_for_device = *library
                .get::<PlaneFn>(b"NvBufSurfaceSyncForDevice\0")
                .map_err(|e| error(reason(&e)))?;
            let create = library
                .get::<CreateFn>(b"NvBufSurfaceCreate\0")
                .ok()
                .map(|f| *f);
            let destroy = library
                .get::<DestroyFn>(b"NvBufSurfaceDestroy\0")
                .ok()
                .map(|f| *f);
            Ok(NvBufSurfaceLib {
                map,
                unmap,
                sync_for_cpu,
                sync_for_device,
                create,
                destroy,
                path: shown,
                _library: library,
            })
        }
    }

    /// Where the library was loaded from (as asked for).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `NvBufSurfaceMap(surf, index, -1, flags)`: every plane of buffer `index`.
    ///
    /// # Safety
    /// `surf` must point to a valid `NvBufSurface` with at least `index + 1` buffers.
    pub unsafe fn map(&self, surf: *mut NvBufSurface, index: i32, flags: c_int) -> c_int {
        unsafe { (self.map)(surf, index, -1, flags) }
    }

    /// `NvBufSurfaceUnMap(surf, index, -1)`.
    ///
    /// # Safety
    /// As for [`map`](Self::map), on a buffer it mapped.
    pub unsafe fn unmap(&self, surf: *mut NvBufSurface, index: i32) -> c_int {
        unsafe { (self.unmap)(surf, index, -1) }
    }

    /// `NvBufSurfaceSyncForCpu(surf, index, -1)`: before the CPU reads.
    ///
    /// # Safety
    /// As for [`map`](Self::map), on a mapped buffer.
    pub unsafe fn sync_for_cpu(&self, surf: *mut NvBufSurface, index: i32) -> c_int {
        unsafe { (self.sync_for_cpu)(surf, index, -1) }
    }

    /// `NvBufSurfaceSyncForDevice(surf, index, -1)`: after the CPU wrote.
    ///
    /// # Safety
    /// As for [`map`](Self::map), on a mapped buffer.
    pub unsafe fn sync_for_device(&self, surf: *mut NvBufSurface, index: i32) -> c_int {
        unsafe { (self.sync_for_device)(surf, index, -1) }
    }

    /// `NvBufSurfaceCreate`, when the library has it; `None` otherwise.
    ///
    /// # Safety
    /// The returned surface must be freed with [`destroy`](Self::destroy) of this library.
    pub unsafe fn create(
        &self,
        batch: u32,
        params: &NvBufSurfaceCreateParams,
    ) -> Option<Result<*mut NvBufSurface, c_int>> {
        let create = self.create?;
        let mut params = *params;
        let mut surf = std::ptr::null_mut();
        let rc = unsafe { create(&mut surf, batch, &mut params) };
        Some(if rc == 0 && !surf.is_null() {
            Ok(surf)
        } else {
            Err(rc)
        })
    }

    /// `NvBufSurfaceDestroy`, when the library has it.
    ///
    /// # Safety
    /// `surf` must come from [`create`](Self::create) and not be used afterwards.
    pub unsafe fn destroy(&self, surf: *mut NvBufSurface) -> Option<c_int> {
        self.destroy.map(|destroy| unsafe { destroy(surf) })
    }
}
