// SPDX-License-Identifier: MPL-2.0

//! FFI to NVIDIA's `libnvbufsurftransform.so` (the VIC's scaler and colour converter on a
//! Jetson), loaded at run time (`libloading`) and optional: where it is absent, NVMM frames are
//! scaled for the detector on the CPU, as in system memory.
//!
//! The structs are those of `nvbufsurftransform.h` in Jetson Linux r36 (JetPack 6; the
//! header's copyright line reads "2019-2023", as published with the Jetson Multimedia API and
//! DeepStream 6.4/7.0). On 64-bit targets (checked at compile time):
//!
//! | struct | size | fields at |
//! |---|---|---|
//! | `NvBufSurfTransformRect` | 16 | `top` 0, `left` 4, `width` 8, `height` 12 |
//! | `NvBufSurfTransformConfigParams` | 16 | `compute_mode` 0, `gpu_id` 4, `cuda_stream` 8 |
//! | `NvBufSurfTransformParams` | 32 | `transform_flag` 0, `transform_flip` 4, `transform_filter` 8, `src_rect` 16, `dst_rect` 24 |

use std::ffi::{c_int, c_void};
use std::path::PathBuf;

use super::nvbufsurface::NvBufSurface;

/// `NvBufSurfTransform_Compute`.
pub const COMPUTE_DEFAULT: u32 = 0;
pub const COMPUTE_GPU: u32 = 1;
pub const COMPUTE_VIC: u32 = 2;

/// `NvBufSurfTransform_Flip`: `NvBufSurfTransform_None`.
pub const FLIP_NONE: u32 = 0;

/// `NvBufSurfTransform_Inter`.
pub const INTER_NEAREST: u32 = 0;
pub const INTER_BILINEAR: u32 = 1;
/// `NvBufSurfTransformInter_Algo1`: the VIC's 5-tap filter (the GPU's cubic).
pub const INTER_ALGO1: u32 = 2;

/// `NvBufSurfTransform_Transform_Flag`.
pub const TRANSFORM_CROP_SRC: u32 = 1;
pub const TRANSFORM_CROP_DST: u32 = 1 << 1;
pub const TRANSFORM_FILTER: u32 = 1 << 2;
pub const TRANSFORM_FLIP: u32 = 1 << 3;

/// `NvBufSurfTransformRect`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NvBufSurfTransformRect {
    pub top: u32,
    pub left: u32,
    pub width: u32,
    pub height: u32,
}

/// `NvBufSurfTransformConfigParams`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NvBufSurfTransformConfigParams {
    pub compute_mode: u32,
    pub gpu_id: i32,
    /// `cudaStream_t`; ignored by the VIC.
    pub cuda_stream: *mut c_void,
}

/// `NvBufSurfTransformParams` (the header's `_NvBufSurfaceTransformParams`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NvBufSurfTransformParams {
    pub transform_flag: u32,
    pub transform_flip: u32,
    pub transform_filter: u32,
    pub src_rect: *mut NvBufSurfTransformRect,
    pub dst_rect: *mut NvBufSurfTransformRect,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<NvBufSurfTransformRect>() == 16);
    assert!(size_of::<NvBufSurfTransformConfigParams>() == 16);
    assert!(offset_of!(NvBufSurfTransformConfigParams, cuda_stream) == 8);
    assert!(size_of::<NvBufSurfTransformParams>() == 32);
    assert!(offset_of!(NvBufSurfTransformParams, transform_filter) == 8);
    assert!(offset_of!(NvBufSurfTransformParams, src_rect) == 16);
    assert!(offset_of!(NvBufSurfTransformParams, dst_rect) == 24);
};

/// The environment variable that names the library to load instead of
/// `libnvbufsurftransform.so` (a path, or a bare name searched like `dlopen` does).
pub const LIBRARY_ENV: &str = "FACEREC_NVBUFSURFTRANSFORM_LIB";
/// The library's name on a Jetson.
pub const LIBRARY_NAME: &str = "libnvbufsurftransform.so";

type TransformFn = unsafe extern "C" fn(
    *mut NvBufSurface,
    *mut NvBufSurface,
    *mut NvBufSurfTransformParams,
) -> c_int;
type SetSessionFn = unsafe extern "C" fn(*mut NvBufSurfTransformConfigParams) -> c_int;

/// The loaded library; its function pointers are valid as long as this value lives.
pub struct NvBufSurfTransformLib {
    transform: TransformFn,
    set_session: SetSessionFn,
    path: String,
    _library: libloading::Library,
}

impl std::fmt::Debug for NvBufSurfTransformLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvBufSurfTransformLib")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What `dlerror` said (libloading's message carries it as its source).
fn reason(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}

impl NvBufSurfTransformLib {
    /// The library `FACEREC_NVBUFSURFTRANSFORM_LIB` names, else `libnvbufsurftransform.so`.
    /// The error says which library and why `dlopen` or `dlsym` failed.
    pub fn load_default() -> Result<NvBufSurfTransformLib, String> {
        let name = std::env::var_os(LIBRARY_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(LIBRARY_NAME));
        Self::load(&name)
    }

    /// Loads `path` and resolves `NvBufSurfTransform` and `NvBufSurfTransformSetSessionParams`.
    pub fn load(path: &std::path::Path) -> Result<NvBufSurfTransformLib, String> {
        let shown = path.display().to_string();
        let error = |e: libloading::Error| format!("cannot load {shown}: {}", reason(&e));
        // SAFETY: loading runs the library's initialisers, which have no preconditions.
        let library = unsafe { libloading::Library::new(path) }.map_err(error)?;
        // SAFETY: the types are the header's prototypes (enums returned as int).
        unsafe {
            let transform = *library
                .get::<TransformFn>(b"NvBufSurfTransform\0")
                .map_err(error)?;
            let set_session = *library
                .get::<SetSessionFn>(b"NvBufSurfTransformSetSessionParams\0")
                .map_err(error)?;
            Ok(NvBufSurfTransformLib {
                transform,
                set_session,
                path: shown,
                _library: library,
            })
        }
    }

    /// Where the library was loaded from (as asked for).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `NvBufSurfTransformSetSessionParams`: the calling thread's session.
    pub fn set_session(&self, params: &NvBufSurfTransformConfigParams) -> c_int {
        let mut params = *params;
        // SAFETY: a valid struct of the header's layout, read during the call only.
        unsafe { (self.set_session)(&mut params) }
    }

    /// `NvBufSurfTransform(src, dst, params)`.
    ///
    /// # Safety
    /// `src` and `dst` must be valid surfaces, and `params`' rectangles (if any) valid.
    pub unsafe fn transform(
        &self,
        src: *mut NvBufSurface,
        dst: *mut NvBufSurface,
        params: &mut NvBufSurfTransformParams,
    ) -> c_int {
        unsafe { (self.transform)(src, dst, params) }
    }
}
