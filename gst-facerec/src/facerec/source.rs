// SPDX-License-Identifier: MPL-2.0

//! The frame source: a buffer's pixels mapped for the CPU (system memory or, with the `nvmm`
//! feature, an NVMM surface's planes) and the detector's network-size input made from them (on
//! the VIC for NVMM where `libnvbufsurftransform.so` loaded, else on the CPU). The element sees
//! one frame type and one function for the input, whichever memory the caps negotiated.

#[cfg(feature = "nvmm")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use facerec_core::detect::NetworkInput;

use super::frame::NetworkScaler;
#[cfg(feature = "nvmm")]
use super::nvbufsurface::{NvBufSurface, NvBufSurfaceLib};
#[cfg(feature = "nvmm")]
use super::nvbufsurftransform::{LIBRARY_ENV, NvBufSurfTransformLib};
#[cfg(feature = "nvmm")]
use super::nvmm::{MappedSurface, VicScaler, is_nvmm};

/// The libraries NVMM caps need, loaded at negotiation; empty without the `nvmm` feature.
#[derive(Default)]
pub(super) struct NvmmLibraries {
    /// `libnvbufsurface.so` while the negotiated caps are NVMM.
    #[cfg(feature = "nvmm")]
    surfaces: Option<Arc<NvBufSurfaceLib>>,
    /// `libnvbufsurftransform.so`: `None` until NVMM caps first ask for it, then whether it
    /// loaded (asked once per element, so the fallback is announced once).
    #[cfg(feature = "nvmm")]
    vic: Option<Option<Arc<NvBufSurfTransformLib>>>,
}

impl NvmmLibraries {
    /// Loads `libnvbufsurface.so` when `caps` are NVMM (once), forgets it otherwise. A missing
    /// library is an element error naming it and why `dlopen` failed.
    #[cfg(feature = "nvmm")]
    pub(super) fn negotiate(
        &mut self,
        element: &super::FaceRec,
        caps: &gst::Caps,
    ) -> Result<(), gst::LoggableError> {
        use super::CAT;

        if !is_nvmm(caps) {
            self.surfaces = None;
            return Ok(());
        }
        if self.surfaces.is_none() {
            match NvBufSurfaceLib::load_default() {
                Ok(lib) => {
                    gst::info!(CAT, obj = element, "NVMM frames through {}", lib.path());
                    self.surfaces = Some(Arc::new(lib));
                }
                Err(e) => {
                    gst::element_error!(element, gst::LibraryError::Init, ("{}", e));
                    return Err(gst::loggable_error!(CAT, "{}", e));
                }
            }
        }
        if self.vic.is_none() {
            self.vic = Some(match NvBufSurfTransformLib::load_default() {
                Ok(lib) => {
                    gst::info!(
                        CAT,
                        obj = element,
                        "NVMM frames scaled for detection on the VIC through {}",
                        lib.path()
                    );
                    Some(Arc::new(lib))
                }
                Err(e) => {
                    gst::warning!(
                        CAT,
                        obj = element,
                        "NVMM frames scaled for detection on the CPU: {} (set {} to its path)",
                        e,
                        LIBRARY_ENV
                    );
                    None
                }
            });
        }
        Ok(())
    }

    /// System memory only: nothing to load.
    #[cfg(not(feature = "nvmm"))]
    pub(super) fn negotiate(
        &mut self,
        _element: &super::FaceRec,
        _caps: &gst::Caps,
    ) -> Result<(), gst::LoggableError> {
        Ok(())
    }
}

/// An NVMM frame's surface and the libraries for the VIC to scale it (from device memory).
#[cfg(feature = "nvmm")]
struct VicSource {
    surface: *mut NvBufSurface,
    surfaces: Arc<NvBufSurfaceLib>,
    transform: Arc<NvBufSurfTransformLib>,
}

/// A buffer whose frame is mapped for the CPU. NVMM: the surface's planes, mapped until
/// [`Self::finish`] (or, after an error, until dropped, without writing back).
pub(super) struct MappedBuffer<'a> {
    buffer: &'a mut gst::BufferRef,
    #[cfg(feature = "nvmm")]
    surface: Option<MappedSurface>,
    #[cfg(feature = "nvmm")]
    vic: Option<VicSource>,
}

/// A frame mapped for reading, with what the detector's input is made from.
pub(super) struct SourceFrame<'a> {
    pub(super) video: gst_video::VideoFrameRef<&'a gst::BufferRef>,
    #[cfg(feature = "nvmm")]
    vic: Option<&'a VicSource>,
}

impl<'a> MappedBuffer<'a> {
    /// Maps an NVMM buffer's surface while `libraries` hold `libnvbufsurface.so` (the caps are
    /// NVMM); a system-memory buffer is mapped by [`Self::frame`].
    #[cfg_attr(not(feature = "nvmm"), allow(unused_variables))]
    pub(super) fn map(
        element: &super::FaceRec,
        libraries: &NvmmLibraries,
        buffer: &'a mut gst::BufferRef,
        info: &gst_video::VideoInfo,
    ) -> Result<MappedBuffer<'a>, gst::FlowError> {
        #[cfg(feature = "nvmm")]
        {
            let (surface, vic) = match &libraries.surfaces {
                None => (None, None),
                Some(lib) => {
                    let surface = MappedSurface::map(lib.clone(), buffer, info).map_err(|e| {
                        gst::element_error!(
                            element,
                            gst::StreamError::Format,
                            ("Cannot map the NVMM frame: {}", e)
                        );
                        gst::FlowError::Error
                    })?;
                    // The VIC scales from the surface (device memory) where its library loaded.
                    let vic = libraries.vic.clone().flatten().map(|transform| VicSource {
                        surface: surface.raw(),
                        surfaces: lib.clone(),
                        transform,
                    });
                    (Some(surface), vic)
                }
            };
            Ok(MappedBuffer {
                buffer,
                surface,
                vic,
            })
        }
        #[cfg(not(feature = "nvmm"))]
        Ok(MappedBuffer { buffer })
    }

    /// The frame to read: the buffer's own memory, or the NVMM surface's mapped planes.
    /// Mapped for reading, because a decoder keeps its reference pictures: their memory is
    /// shared, and a writable mapping copies the whole frame, which only drawing needs.
    pub(super) fn frame(
        &self,
        element: &super::FaceRec,
        info: &gst_video::VideoInfo,
    ) -> Result<SourceFrame<'_>, gst::FlowError> {
        #[cfg(feature = "nvmm")]
        let video = match self.surface.as_ref() {
            Some(surface) => surface.readable_frame(info),
            None => gst_video::VideoFrameRef::from_buffer_ref_readable(&*self.buffer, info),
        };
        #[cfg(not(feature = "nvmm"))]
        let video = gst_video::VideoFrameRef::from_buffer_ref_readable(&*self.buffer, info);
        let video = video.map_err(|_| {
            gst::element_error!(
                element,
                gst::CoreError::Failed,
                ("Failed to map the buffer readable")
            );
            gst::FlowError::Error
        })?;
        Ok(SourceFrame {
            video,
            #[cfg(feature = "nvmm")]
            vic: self.vic.as_ref(),
        })
    }

    /// The frame to draw on, writable: the buffer's own memory (copied first where it is
    /// shared), or the NVMM surface's mapped planes.
    pub(super) fn writable_frame(
        &mut self,
        element: &super::FaceRec,
        info: &gst_video::VideoInfo,
    ) -> Result<gst_video::VideoFrameRef<&mut gst::BufferRef>, gst::FlowError> {
        #[cfg(feature = "nvmm")]
        let video = match self.surface.as_mut() {
            Some(surface) => surface.frame(info),
            None => gst_video::VideoFrameRef::from_buffer_ref_writable(&mut *self.buffer, info),
        };
        #[cfg(not(feature = "nvmm"))]
        let video = gst_video::VideoFrameRef::from_buffer_ref_writable(&mut *self.buffer, info);
        video.map_err(|_| {
            gst::element_error!(
                element,
                gst::CoreError::Failed,
                ("Failed to map the buffer writable")
            );
            gst::FlowError::Error
        })
    }

    /// Unmaps an NVMM surface, writing the CPU's changes back to the device when `written`.
    #[cfg_attr(not(feature = "nvmm"), allow(unused_variables))]
    pub(super) fn finish(
        self,
        element: &super::FaceRec,
        written: bool,
    ) -> Result<(), gst::FlowError> {
        #[cfg(feature = "nvmm")]
        if let Some(surface) = self.surface
            && let Err(e) = surface.finish(written)
        {
            gst::element_error!(element, gst::StreamError::Failed, ("{}", e));
            return Err(gst::FlowError::Error);
        }
        Ok(())
    }
}

/// The scalers that make the detector's input, for the current caps and network width, made
/// on the first frame that needs them.
#[derive(Default)]
pub(super) struct NetworkScalers {
    cpu: Option<NetworkScaler>,
    /// NVMM with `libnvbufsurftransform.so`: the VIC makes the detector's input instead.
    #[cfg(feature = "nvmm")]
    vic: Option<VicScaler>,
    /// Time spent making the detector's input (`stats`' convert-ns).
    pub(super) time: Duration,
}

impl NetworkScalers {
    /// The detector's input for `frame`, scaled to `network_width`: on the VIC for an NVMM
    /// frame where its library loaded, else on the CPU from the mapped planes.
    pub(super) fn network_input(
        &mut self,
        element: &super::FaceRec,
        frame: &SourceFrame<'_>,
        info: &gst_video::VideoInfo,
        network_width: u32,
    ) -> Result<NetworkInput<'static>, gst::FlowError> {
        let started = Instant::now();
        #[cfg(feature = "nvmm")]
        let input = match frame.vic {
            Some(vic) => self.scale_on_vic(element, vic, info, network_width)?,
            None => self.scale_on_cpu(element, &frame.video, info, network_width)?,
        };
        #[cfg(not(feature = "nvmm"))]
        let input = self.scale_on_cpu(element, &frame.video, info, network_width)?;
        self.time += started.elapsed();
        Ok(input)
    }

    fn scale_on_cpu(
        &mut self,
        element: &super::FaceRec,
        frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
        info: &gst_video::VideoInfo,
        network_width: u32,
    ) -> Result<NetworkInput<'static>, gst::FlowError> {
        if !self
            .cpu
            .as_ref()
            .is_some_and(|s| s.is_for(info, network_width))
        {
            self.cpu = Some(NetworkScaler::new(info, network_width).map_err(|e| {
                gst::element_error!(
                    element,
                    gst::CoreError::Negotiation,
                    (
                        "Cannot scale {}x{} {:?} frames for detection: {}",
                        info.width(),
                        info.height(),
                        info.format(),
                        e
                    )
                );
                gst::FlowError::NotNegotiated
            })?);
        }
        let scaler = self.cpu.as_mut().expect("made above");
        scaler.scale(frame).map_err(|e| {
            gst::element_error!(element, gst::StreamError::Format, ("{}", e));
            gst::FlowError::Error
        })
    }

    #[cfg(feature = "nvmm")]
    fn scale_on_vic(
        &mut self,
        element: &super::FaceRec,
        source: &VicSource,
        info: &gst_video::VideoInfo,
        network_width: u32,
    ) -> Result<NetworkInput<'static>, gst::FlowError> {
        if !self
            .vic
            .as_ref()
            .is_some_and(|v| v.is_for(info, network_width))
        {
            // The old surface goes before a new one is made.
            self.vic = None;
            self.vic = Some(
                VicScaler::new(
                    source.surfaces.clone(),
                    source.transform.clone(),
                    info,
                    network_width,
                )
                .map_err(|e| {
                    gst::element_error!(
                        element,
                        gst::LibraryError::Failed,
                        ("Cannot scale NVMM frames on the VIC: {}", e)
                    );
                    gst::FlowError::Error
                })?,
            );
        }
        let scaler = self.vic.as_mut().expect("made above");
        scaler.scale(source.surface).map_err(|e| {
            gst::element_error!(
                element,
                gst::LibraryError::Failed,
                ("Cannot scale the NVMM frame on the VIC: {}", e)
            );
            gst::FlowError::Error
        })
    }
}
