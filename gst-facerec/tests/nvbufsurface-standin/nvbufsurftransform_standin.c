/* SPDX-License-Identifier: MPL-2.0
 *
 * A stand-in libnvbufsurftransform.so for the facerec tests: NvBufSurfTransform and
 * NvBufSurfTransformSetSessionParams of Jetson Linux r36 (JetPack 6) nvbufsurftransform.h
 * (copyright "2019-2023"), over the system memory of the stand-in libnvbufsurface.so's
 * surfaces: it reads the source's and writes the destination's "device" memory (dataPtr),
 * as the VIC does, never their CPU mappings.
 *
 * Supported: buffer 0 of a pitch-linear RGBA or NV12 (BT.601/709/2020, limited or full range,
 * as its colour format says) source, scaled whole into buffer 0 of a pitch-linear RGBA
 * destination, alpha 255. Filters: NvBufSurfTransformInter_Nearest and _Bilinear sample the
 * source; the others (the VIC's 5- and 10-tap and "smart" filters, the GPU's cubic) are modelled
 * by a separable Catmull-Rom convolution whose support widens when it shrinks (no aliasing),
 * each plane scaled in its own format, then NV12 converted to RGB with chroma taken at half
 * resolution. Cropping and flipping are refused (NvBufSurfTransformError_Unsupported): the
 * element asks for neither.
 *
 * With FACEREC_STANDIN_TRANSFORM_FAIL=1, every transform fails (Execution_Error, -2). With
 * FACEREC_STANDIN_TRANSFORM_BLANK=1, every transform succeeds with a black destination (so a
 * test sees whether the detector reads the VIC's output).
 *
 * Built by gst-facerec/tests/nvmm.rs with `cc -shared -fPIC`.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvbufsurface_standin.h"

typedef enum {
  NvBufSurfTransformCompute_Default,
  NvBufSurfTransformCompute_GPU,
  NvBufSurfTransformCompute_VIC
} NvBufSurfTransform_Compute;

typedef enum {
  NvBufSurfTransform_None,
  NvBufSurfTransform_Rotate90,
  NvBufSurfTransform_Rotate180,
  NvBufSurfTransform_Rotate270,
  NvBufSurfTransform_FlipX,
  NvBufSurfTransform_FlipY,
  NvBufSurfTransform_Transpose,
  NvBufSurfTransform_InvTranspose,
} NvBufSurfTransform_Flip;

typedef enum {
  NvBufSurfTransformInter_Nearest = 0,
  NvBufSurfTransformInter_Bilinear,
  NvBufSurfTransformInter_Algo1,
  NvBufSurfTransformInter_Algo2,
  NvBufSurfTransformInter_Algo3,
  NvBufSurfTransformInter_Algo4,
  NvBufSurfTransformInter_Default
} NvBufSurfTransform_Inter;

typedef enum {
  NvBufSurfTransformError_ROI_Error = -4,
  NvBufSurfTransformError_Invalid_Params = -3,
  NvBufSurfTransformError_Execution_Error = -2,
  NvBufSurfTransformError_Unsupported = -1,
  NvBufSurfTransformError_Success = 0
} NvBufSurfTransform_Error;

typedef enum {
  NVBUFSURF_TRANSFORM_CROP_SRC = 1,
  NVBUFSURF_TRANSFORM_CROP_DST = 1 << 1,
  NVBUFSURF_TRANSFORM_FILTER = 1 << 2,
  NVBUFSURF_TRANSFORM_FLIP = 1 << 3,
  NVBUFSURF_TRANSFORM_NORMALIZE = 1 << 4,
  NVBUFSURF_TRANSFORM_ALLOW_ODD_CROP = 1 << 5
} NvBufSurfTransform_Transform_Flag;

typedef struct {
  uint32_t top;
  uint32_t left;
  uint32_t width;
  uint32_t height;
} NvBufSurfTransformRect;

typedef void *cudaStream_t;

typedef struct _NvBufSurfTransformConfigParams {
  NvBufSurfTransform_Compute compute_mode;
  int32_t gpu_id;
  cudaStream_t cuda_stream;
} NvBufSurfTransformConfigParams;

typedef struct _NvBufSurfaceTransformParams {
  uint32_t transform_flag;
  NvBufSurfTransform_Flip transform_flip;
  NvBufSurfTransform_Inter transform_filter;
  NvBufSurfTransformRect *src_rect;
  NvBufSurfTransformRect *dst_rect;
} NvBufSurfTransformParams;

#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(sizeof(NvBufSurfTransformRect) == 16, "NvBufSurfTransformRect");
_Static_assert(sizeof(NvBufSurfTransformConfigParams) == 16, "NvBufSurfTransformConfigParams");
_Static_assert(sizeof(NvBufSurfTransformParams) == 32, "NvBufSurfTransformParams");
_Static_assert(offsetof(NvBufSurfTransformParams, src_rect) == 16, "src_rect");
#endif

/* For the tests: transforms done, failed calls (any function), session sets, the last
 * compute mode set (-1: never). */
static int counts[4] = {0, 0, 0, -1};
/* The session is per thread in the real library (the header: "per thread"): a transform on a
 * thread that never set one uses the default session. The stand-in counts per process. */

void standin_transform_counts(int out[4]) {
  for (int i = 0; i < 4; i++) out[i] = __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
}

/* Sizes the tests compare with the plugin's definitions: Rect, ConfigParams, Params, and the
 * offsets of Params' src_rect and dst_rect. */
void standin_transform_layout(size_t out[5]) {
  out[0] = sizeof(NvBufSurfTransformRect);
  out[1] = sizeof(NvBufSurfTransformConfigParams);
  out[2] = sizeof(NvBufSurfTransformParams);
  out[3] = offsetof(NvBufSurfTransformParams, src_rect);
  out[4] = offsetof(NvBufSurfTransformParams, dst_rect);
}

static NvBufSurfTransform_Error fail(NvBufSurfTransform_Error e) {
  __atomic_fetch_add(&counts[1], 1, __ATOMIC_RELAXED);
  return e;
}

NvBufSurfTransform_Error NvBufSurfTransformSetSessionParams(
    NvBufSurfTransformConfigParams *config_params) {
  if (!config_params || config_params->compute_mode > NvBufSurfTransformCompute_VIC)
    return fail(NvBufSurfTransformError_Invalid_Params);
  __atomic_fetch_add(&counts[2], 1, __ATOMIC_RELAXED);
  __atomic_store_n(&counts[3], (int)config_params->compute_mode, __ATOMIC_RELAXED);
  return NvBufSurfTransformError_Success;
}

/* YUV to RGB coefficients (Kr, Kb) and range of an NV12 colour format; 0 if not NV12. */
static int yuv_params(NvBufSurfaceColorFormat f, double *kr, double *kb, bool *full) {
  switch (f) {
    case NVBUF_COLOR_FORMAT_NV12: *kr = 0.299, *kb = 0.114, *full = false; return 1;
    case NVBUF_COLOR_FORMAT_NV12_ER: *kr = 0.299, *kb = 0.114, *full = true; return 1;
    case NVBUF_COLOR_FORMAT_NV12_709: *kr = 0.2126, *kb = 0.0722, *full = false; return 1;
    case NVBUF_COLOR_FORMAT_NV12_709_ER: *kr = 0.2126, *kb = 0.0722, *full = true; return 1;
    case NVBUF_COLOR_FORMAT_NV12_2020: *kr = 0.2627, *kb = 0.0593, *full = false; return 1;
    default: return 0;
  }
}

/* Sample (x, y), in pixels of a plane of w x h with pixel stride ps, channel c: bilinear with
 * pixel centres at +0.5, edges clamped; nearest when `nearest`. */
static double sample(const uint8_t *plane, uint32_t pitch, uint32_t w, uint32_t h, int ps, int c,
                     double x, double y, bool nearest) {
  if (nearest) {
    long xi = (long)floor(x + 0.5), yi = (long)floor(y + 0.5);
    xi = xi < 0 ? 0 : xi >= (long)w ? (long)w - 1 : xi;
    yi = yi < 0 ? 0 : yi >= (long)h ? (long)h - 1 : yi;
    return plane[(size_t)yi * pitch + (size_t)xi * ps + c];
  }
  if (x < 0) x = 0;
  if (y < 0) y = 0;
  if (x > w - 1) x = w - 1;
  if (y > h - 1) y = h - 1;
  uint32_t x0 = (uint32_t)x, y0 = (uint32_t)y;
  uint32_t x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
  double fx = x - x0, fy = y - y0;
  const uint8_t *r0 = plane + (size_t)y0 * pitch, *r1 = plane + (size_t)y1 * pitch;
  double top = r0[x0 * ps + c] * (1 - fx) + r0[x1 * ps + c] * fx;
  double bottom = r1[x0 * ps + c] * (1 - fx) + r1[x1 * ps + c] * fx;
  return top * (1 - fy) + bottom * fy;
}

static uint8_t clamp8(double v) {
  v = floor(v + 0.5);
  return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}


/* Catmull-Rom (a = -0.5). */
static double catmull_rom(double x) {
  x = fabs(x);
  if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
  if (x < 2) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
  return 0;
}

/* Scales one plane (w x h, ch channels of pixel stride ps, rows of `pitch`) to dw x dh tight
 * rows of ch channels in `out`, Catmull-Rom, separable, rounded to 8 bits after each pass.
 * Returns 0, or -1 when out of memory. */
static int convolve(const uint8_t *src, uint32_t pitch, uint32_t w, uint32_t h, int ps, int ch,
                    uint8_t *out, uint32_t dw, uint32_t dh) {
  uint8_t *tmp = malloc((size_t)dw * h * ch);
  if (!tmp) return -1;
  for (int pass = 0; pass < 2; pass++) {
    uint32_t n = pass == 0 ? w : h, dn = pass == 0 ? dw : dh;
    double scale = (double)n / dn, stretch = scale > 1 ? scale : 1, support = 2 * stretch;
    for (uint32_t d = 0; d < dn; d++) {
      double centre = (d + 0.5) * scale;
      long first = (long)floor(centre - support), last = (long)ceil(centre + support);
      if (first < 0) first = 0;
      if (last > (long)n - 1) last = (long)n - 1;
      double weights[256];
      long count = last - first + 1;
      if (count > 256) {
        free(tmp);
        return -1;
      }
      double sum = 0;
      for (long i = 0; i < count; i++) {
        weights[i] = catmull_rom((first + i + 0.5 - centre) / stretch);
        sum += weights[i];
      }
      for (long i = 0; i < count; i++) weights[i] /= sum;
      uint32_t lines = pass == 0 ? h : dw;
      for (uint32_t l = 0; l < lines; l++) {
        for (int c = 0; c < ch; c++) {
          double acc = 0;
          for (long i = 0; i < count; i++) {
            uint8_t v = pass == 0 ? src[(size_t)l * pitch + (size_t)(first + i) * ps + c]
                                  : tmp[((size_t)(first + i) * dw + l) * ch + c];
            acc += weights[i] * v;
          }
          if (pass == 0)
            tmp[((size_t)l * dw + d) * ch + c] = clamp8(acc);
          else
            out[((size_t)d * dw + l) * ch + c] = clamp8(acc);
        }
      }
    }
  }
  free(tmp);
  return 0;
}

static void yuv_to_rgb(double Y, double U, double V, double kr, double kb, bool full,
                       uint8_t *px) {
  double yy = full ? Y / 255 : (Y - 16) / 219;
  double u = (U - 128) / (full ? 255 : 224), v = (V - 128) / (full ? 255 : 224);
  double r = yy + 2 * (1 - kr) * v, b = yy + 2 * (1 - kb) * u;
  double g = (yy - kr * r - kb * b) / (1 - kr - kb);
  px[0] = clamp8(r * 255), px[1] = clamp8(g * 255), px[2] = clamp8(b * 255);
}

NvBufSurfTransform_Error NvBufSurfTransform(NvBufSurface *src, NvBufSurface *dst,
                                            NvBufSurfTransformParams *transform_params) {
  if (!src || !dst || !transform_params || !src->surfaceList || !dst->surfaceList ||
      src->batchSize == 0 || dst->batchSize == 0)
    return fail(NvBufSurfTransformError_Invalid_Params);
  /* For the tests: a device that fails every transform. */
  const char *failing = getenv("FACEREC_STANDIN_TRANSFORM_FAIL");
  if (failing && strcmp(failing, "1") == 0) return fail(NvBufSurfTransformError_Execution_Error);
  uint32_t flags = transform_params->transform_flag;
  if (flags & (NVBUFSURF_TRANSFORM_CROP_SRC | NVBUFSURF_TRANSFORM_CROP_DST |
               NVBUFSURF_TRANSFORM_FLIP | NVBUFSURF_TRANSFORM_NORMALIZE))
    return fail(NvBufSurfTransformError_Unsupported);
  const NvBufSurfaceParams *s = &src->surfaceList[0];
  const NvBufSurfaceParams *d = &dst->surfaceList[0];
  if (s->layout != NVBUF_LAYOUT_PITCH || d->layout != NVBUF_LAYOUT_PITCH ||
      d->colorFormat != NVBUF_COLOR_FORMAT_RGBA || !s->dataPtr || !d->dataPtr)
    return fail(NvBufSurfTransformError_Unsupported);
  double kr = 0, kb = 0;
  bool full = false;
  bool nv12 = yuv_params(s->colorFormat, &kr, &kb, &full);
  if (!nv12 && s->colorFormat != NVBUF_COLOR_FORMAT_RGBA)
    return fail(NvBufSurfTransformError_Unsupported);
  NvBufSurfTransform_Inter filter = (flags & NVBUFSURF_TRANSFORM_FILTER)
                                        ? transform_params->transform_filter
                                        : NvBufSurfTransformInter_Default;
  bool nearest = filter == NvBufSurfTransformInter_Nearest ||
                 filter == NvBufSurfTransformInter_Default;
  bool sampled = nearest || filter == NvBufSurfTransformInter_Bilinear;
  const NvBufSurfacePlaneParams *sp = &s->planeParams;
  const uint8_t *s0 = (const uint8_t *)s->dataPtr + sp->offset[0];
  const uint8_t *s1 = nv12 ? (const uint8_t *)s->dataPtr + sp->offset[1] : NULL;
  uint8_t *d0 = (uint8_t *)d->dataPtr + d->planeParams.offset[0];
  uint32_t sw = s->width, sh = s->height, dw = d->width, dh = d->height;
  const char *blank = getenv("FACEREC_STANDIN_TRANSFORM_BLANK");
  if (blank && strcmp(blank, "1") == 0) {
    for (uint32_t y = 0; y < dh; y++)
      for (uint32_t x = 0; x < dw; x++)
        memcpy(d0 + (size_t)y * d->planeParams.pitch[0] + (size_t)x * 4, "\0\0\0\xff", 4);
    __atomic_fetch_add(&counts[0], 1, __ATOMIC_RELAXED);
    return NvBufSurfTransformError_Success;
  }
  if (!sampled) {
    uint32_t cdw = (dw + 1) / 2, cdh = (dh + 1) / 2;
    uint8_t *luma = malloc((size_t)dw * dh * (nv12 ? 1 : 4));
    uint8_t *chroma = nv12 ? malloc((size_t)cdw * cdh * 2) : NULL;
    int rc = !luma || (nv12 && !chroma) ? -1 : 0;
    if (rc == 0)
      rc = convolve(s0, sp->pitch[0], sw, sh, nv12 ? 1 : 4, nv12 ? 1 : 4, luma, dw, dh);
    if (rc == 0 && nv12)
      rc = convolve(s1, sp->pitch[1], sp->width[1], sp->height[1], 2, 2, chroma, cdw, cdh);
    for (uint32_t y = 0; rc == 0 && y < dh; y++) {
      uint8_t *row = d0 + (size_t)y * d->planeParams.pitch[0];
      for (uint32_t x = 0; x < dw; x++) {
        uint8_t *px = row + (size_t)x * 4;
        if (nv12) {
          const uint8_t *uv = chroma + ((size_t)(y / 2) * cdw + x / 2) * 2;
          yuv_to_rgb(luma[(size_t)y * dw + x], uv[0], uv[1], kr, kb, full, px);
        } else {
          for (int c = 0; c < 3; c++) px[c] = luma[((size_t)y * dw + x) * 4 + c];
        }
        px[3] = 255;
      }
    }
    free(luma);
    free(chroma);
    if (rc != 0) return fail(NvBufSurfTransformError_Execution_Error);
    __atomic_fetch_add(&counts[0], 1, __ATOMIC_RELAXED);
    return NvBufSurfTransformError_Success;
  }
  double ax = (double)sw / dw, ay = (double)sh / dh;
  for (uint32_t y = 0; y < dh; y++) {
    uint8_t *row = d0 + (size_t)y * d->planeParams.pitch[0];
    double fy = (y + 0.5) * ay - 0.5;
    for (uint32_t x = 0; x < dw; x++) {
      double fx = (x + 0.5) * ax - 0.5;
      uint8_t *px = row + (size_t)x * 4;
      if (!nv12) {
        for (int c = 0; c < 3; c++)
          px[c] = clamp8(sample(s0, sp->pitch[0], sw, sh, 4, c, fx, fy, nearest));
      } else {
        /* Chroma at the centre of each 2x2 block of luma. */
        double cx = (fx + 0.5) / 2 - 0.5, cy = (fy + 0.5) / 2 - 0.5;
        uint32_t cw = sp->width[1], ch = sp->height[1];
        double Y = sample(s0, sp->pitch[0], sw, sh, 1, 0, fx, fy, nearest);
        double U = sample(s1, sp->pitch[1], cw, ch, 2, 0, cx, cy, nearest);
        double V = sample(s1, sp->pitch[1], cw, ch, 2, 1, cx, cy, nearest);
        yuv_to_rgb(Y, U, V, kr, kb, full, px);
      }
      px[3] = 255;
    }
  }
  __atomic_fetch_add(&counts[0], 1, __ATOMIC_RELAXED);
  return NvBufSurfTransformError_Success;
}
