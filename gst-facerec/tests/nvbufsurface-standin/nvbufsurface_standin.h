/* SPDX-License-Identifier: MPL-2.0
 *
 * The types of Jetson Linux r36 (JetPack 6) nvbufsurface.h that the stand-ins use, with that
 * header's layouts (checked by _Static_assert on 64-bit targets). Shared by the stand-in
 * libnvbufsurface.so and libnvbufsurftransform.so.
 */
#ifndef NVBUFSURFACE_STANDIN_H
#define NVBUFSURFACE_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRUCTURE_PADDING 4
#define NVBUF_MAX_PLANES 4

typedef enum { NVBUF_MAP_READ, NVBUF_MAP_WRITE, NVBUF_MAP_READ_WRITE } NvBufSurfaceMemMapFlags;
typedef enum { NVBUF_LAYOUT_PITCH, NVBUF_LAYOUT_BLOCK_LINEAR } NvBufSurfaceLayout;
typedef enum {
  NVBUF_MEM_DEFAULT,
  NVBUF_MEM_CUDA_PINNED,
  NVBUF_MEM_CUDA_DEVICE,
  NVBUF_MEM_CUDA_UNIFIED,
  NVBUF_MEM_SURFACE_ARRAY,
  NVBUF_MEM_HANDLE,
  NVBUF_MEM_SYSTEM,
} NvBufSurfaceMemType;
/* NvBufSurfaceColorFormat: only the values used here, at their positions in the enum. */
typedef enum {
  NVBUF_COLOR_FORMAT_INVALID = 0,
  NVBUF_COLOR_FORMAT_NV12 = 6,
  NVBUF_COLOR_FORMAT_NV12_ER = 7,
  NVBUF_COLOR_FORMAT_RGBA = 19,
  NVBUF_COLOR_FORMAT_NV12_709 = 33,
  NVBUF_COLOR_FORMAT_NV12_709_ER = 34,
  NVBUF_COLOR_FORMAT_NV12_2020 = 36,
} NvBufSurfaceColorFormat;

typedef struct NvBufSurfacePlaneParams {
  uint32_t num_planes;
  uint32_t width[NVBUF_MAX_PLANES];
  uint32_t height[NVBUF_MAX_PLANES];
  uint32_t pitch[NVBUF_MAX_PLANES];
  uint32_t offset[NVBUF_MAX_PLANES];
  uint32_t psize[NVBUF_MAX_PLANES];
  uint32_t bytesPerPix[NVBUF_MAX_PLANES];
  void *_reserved[STRUCTURE_PADDING * NVBUF_MAX_PLANES];
} NvBufSurfacePlaneParams;

typedef struct NvBufSurfaceMappedAddr {
  void *addr[NVBUF_MAX_PLANES];
  void *eglImage;
  void *_reserved[STRUCTURE_PADDING];
} NvBufSurfaceMappedAddr;

typedef struct NvBufSurfaceParams {
  uint32_t width;
  uint32_t height;
  uint32_t pitch;
  NvBufSurfaceColorFormat colorFormat;
  NvBufSurfaceLayout layout;
  uint64_t bufferDesc;
  uint32_t dataSize;
  void *dataPtr;
  NvBufSurfacePlaneParams planeParams;
  NvBufSurfaceMappedAddr mappedAddr;
  void *paramex;
  void *_reserved[STRUCTURE_PADDING - 1];
} NvBufSurfaceParams;

typedef struct NvBufSurface {
  uint32_t gpuId;
  uint32_t batchSize;
  uint32_t numFilled;
  bool isContiguous;
  NvBufSurfaceMemType memType;
  NvBufSurfaceParams *surfaceList;
  void *_reserved[STRUCTURE_PADDING];
} NvBufSurface;

typedef struct NvBufSurfaceCreateParams {
  uint32_t gpuId;
  uint32_t width;
  uint32_t height;
  uint32_t size;
  bool isContiguous;
  NvBufSurfaceColorFormat colorFormat;
  NvBufSurfaceLayout layout;
  NvBufSurfaceMemType memType;
} NvBufSurfaceCreateParams;

#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(sizeof(NvBufSurfacePlaneParams) == 232, "NvBufSurfacePlaneParams");
_Static_assert(sizeof(NvBufSurfaceMappedAddr) == 72, "NvBufSurfaceMappedAddr");
_Static_assert(sizeof(NvBufSurfaceParams) == 384, "NvBufSurfaceParams");
_Static_assert(offsetof(NvBufSurfaceParams, planeParams) == 48, "planeParams");
_Static_assert(offsetof(NvBufSurfaceParams, mappedAddr) == 280, "mappedAddr");
_Static_assert(sizeof(NvBufSurface) == 64, "NvBufSurface");
_Static_assert(offsetof(NvBufSurface, surfaceList) == 24, "surfaceList");
_Static_assert(sizeof(NvBufSurfaceCreateParams) == 32, "NvBufSurfaceCreateParams");
#endif

#endif
