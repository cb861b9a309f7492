/* SPDX-License-Identifier: MPL-2.0
 *
 * A stand-in libnvbufsurface.so for the facerec tests: the NvBufSurface API of Jetson Linux
 * r36 (JetPack 6) nvbufsurface.h over system memory, with that header's struct layouts
 * (written out here, checked by _Static_assert on 64-bit targets and against the plugin's
 * Rust definitions through standin_layout()).
 *
 * It models what makes NVMM different from system memory: dataPtr is the "device" memory;
 * NvBufSurfaceMap gives each plane a separate CPU mapping filled with 0xCD, which only
 * NvBufSurfaceSyncForCpu fills from the device, and only NvBufSurfaceSyncForDevice writes back.
 * A reader that skips a sync, or reads dataPtr instead of mappedAddr, sees garbage; a writer
 * that skips SyncForDevice loses its pixels. Mapping a mapped plane, or syncing or unmapping an
 * unmapped one, fails (-1) as a misuse would on the device. Pitches are padded to 256 bytes
 * like the VIC's, so that strides are exercised.
 *
 * Built by gst-facerec/tests/nvmm.rs with `cc -shared -fPIC`.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvbufsurface_standin.h"

#define PITCH_ALIGN 256u
#define UNSYNCED 0xCD

/* Calls, for the tests: map, unmap, sync for CPU, sync for device, failed calls. */
static int counts[5]; /* updated atomically: the element may run on any thread */

void standin_counts(int out[5]) { memcpy(out, counts, sizeof counts); }

/* Sizes and offsets the tests compare with the plugin's definitions. */
void standin_layout(size_t out[8]) {
  out[0] = sizeof(NvBufSurfacePlaneParams);
  out[1] = sizeof(NvBufSurfaceMappedAddr);
  out[2] = sizeof(NvBufSurfaceParams);
  out[3] = sizeof(NvBufSurface);
  out[4] = sizeof(NvBufSurfaceCreateParams);
  out[5] = offsetof(NvBufSurfaceParams, planeParams);
  out[6] = offsetof(NvBufSurfaceParams, mappedAddr);
  out[7] = offsetof(NvBufSurface, surfaceList);
}

static int fail(void) {
  __atomic_fetch_add(&counts[4], 1, __ATOMIC_RELAXED);
  return -1;
}

static uint32_t align(uint32_t v) { return (v + PITCH_ALIGN - 1) / PITCH_ALIGN * PITCH_ALIGN; }

static bool is_nv12(NvBufSurfaceColorFormat f) {
  return f == NVBUF_COLOR_FORMAT_NV12 || f == NVBUF_COLOR_FORMAT_NV12_ER ||
         f == NVBUF_COLOR_FORMAT_NV12_709 || f == NVBUF_COLOR_FORMAT_NV12_709_ER ||
         f == NVBUF_COLOR_FORMAT_NV12_2020;
}

int NvBufSurfaceCreate(NvBufSurface **surf, uint32_t batchSize, NvBufSurfaceCreateParams *params) {
  if (!surf || !params || batchSize == 0 || params->width == 0 || params->height == 0)
    return fail();
  if (params->colorFormat != NVBUF_COLOR_FORMAT_RGBA && !is_nv12(params->colorFormat))
    return fail();
  NvBufSurface *s = calloc(1, sizeof *s);
  NvBufSurfaceParams *list = calloc(batchSize, sizeof *list);
  if (!s || !list) {
    free(s);
    free(list);
    return fail();
  }
  s->gpuId = params->gpuId;
  s->batchSize = batchSize;
  s->numFilled = 0;
  s->isContiguous = params->isContiguous;
  s->memType = params->memType == NVBUF_MEM_DEFAULT ? NVBUF_MEM_SURFACE_ARRAY : params->memType;
  s->surfaceList = list;
  for (uint32_t i = 0; i < batchSize; i++) {
    NvBufSurfaceParams *p = &list[i];
    NvBufSurfacePlaneParams *pp = &p->planeParams;
    uint32_t w = params->width, h = params->height;
    p->width = w;
    p->height = h;
    p->colorFormat = params->colorFormat;
    p->layout = params->layout;
    if (params->colorFormat == NVBUF_COLOR_FORMAT_RGBA) {
      pp->num_planes = 1;
      pp->width[0] = w;
      pp->height[0] = h;
      pp->bytesPerPix[0] = 4;
    } else {
      pp->num_planes = 2;
      pp->width[0] = w;
      pp->height[0] = h;
      pp->bytesPerPix[0] = 1;
      pp->width[1] = (w + 1) / 2;
      pp->height[1] = (h + 1) / 2;
      pp->bytesPerPix[1] = 2;
    }
    uint32_t offset = 0;
    for (uint32_t k = 0; k < pp->num_planes; k++) {
      pp->pitch[k] = align(pp->width[k] * pp->bytesPerPix[k]);
      pp->offset[k] = offset;
      pp->psize[k] = pp->pitch[k] * pp->height[k];
      offset += pp->psize[k];
    }
    p->pitch = pp->pitch[0];
    p->dataSize = offset;
    p->dataPtr = calloc(1, offset);
    if (!p->dataPtr) return fail();
  }
  *surf = s;
  return 0;
}

int NvBufSurfaceDestroy(NvBufSurface *surf) {
  if (!surf) return fail();
  int rc = 0;
  for (uint32_t i = 0; i < surf->batchSize; i++) {
    NvBufSurfaceParams *p = &surf->surfaceList[i];
    for (int k = 0; k < NVBUF_MAX_PLANES; k++) {
      if (p->mappedAddr.addr[k]) {
        /* Destroying a mapped surface is a leak on the device: report it. */
        rc = fail();
        free(p->mappedAddr.addr[k]);
      }
    }
    free(p->dataPtr);
  }
  free(surf->surfaceList);
  free(surf);
  return rc;
}

/* Calls f on each (buffer, plane) selected by index and plane (-1: all); -1 when a selection
 * is out of range or f fails. */
static int each(NvBufSurface *surf, int index, int plane, int (*f)(NvBufSurfaceParams *, int, int),
                int arg) {
  if (!surf || !surf->surfaceList || index < -1 || index >= (int)surf->batchSize) return fail();
  int first = index == -1 ? 0 : index, last = index == -1 ? (int)surf->batchSize - 1 : index;
  for (int i = first; i <= last; i++) {
    NvBufSurfaceParams *p = &surf->surfaceList[i];
    int planes = (int)p->planeParams.num_planes;
    if (plane < -1 || plane >= planes) return fail();
    int pf = plane == -1 ? 0 : plane, pl = plane == -1 ? planes - 1 : plane;
    for (int k = pf; k <= pl; k++)
      if (f(p, k, arg) != 0) return fail();
  }
  return 0;
}

static int map_one(NvBufSurfaceParams *p, int k, int type) {
  if (p->layout != NVBUF_LAYOUT_PITCH || p->mappedAddr.addr[k]) return -1;
  if (type < NVBUF_MAP_READ || type > NVBUF_MAP_READ_WRITE) return -1;
  void *shadow = malloc(p->planeParams.psize[k]);
  if (!shadow) return -1;
  memset(shadow, UNSYNCED, p->planeParams.psize[k]);
  p->mappedAddr.addr[k] = shadow;
  return 0;
}

static int unmap_one(NvBufSurfaceParams *p, int k, int unused) {
  (void)unused;
  if (!p->mappedAddr.addr[k]) return -1;
  free(p->mappedAddr.addr[k]);
  p->mappedAddr.addr[k] = NULL;
  return 0;
}

static int sync_cpu_one(NvBufSurfaceParams *p, int k, int unused) {
  (void)unused;
  if (!p->mappedAddr.addr[k]) return -1;
  memcpy(p->mappedAddr.addr[k], (uint8_t *)p->dataPtr + p->planeParams.offset[k],
         p->planeParams.psize[k]);
  return 0;
}

static int sync_device_one(NvBufSurfaceParams *p, int k, int unused) {
  (void)unused;
  if (!p->mappedAddr.addr[k]) return -1;
  memcpy((uint8_t *)p->dataPtr + p->planeParams.offset[k], p->mappedAddr.addr[k],
         p->planeParams.psize[k]);
  return 0;
}

int NvBufSurfaceMap(NvBufSurface *surf, int index, int plane, NvBufSurfaceMemMapFlags type) {
  __atomic_fetch_add(&counts[0], 1, __ATOMIC_RELAXED);
  return each(surf, index, plane, map_one, (int)type);
}

int NvBufSurfaceUnMap(NvBufSurface *surf, int index, int plane) {
  __atomic_fetch_add(&counts[1], 1, __ATOMIC_RELAXED);
  return each(surf, index, plane, unmap_one, 0);
}

int NvBufSurfaceSyncForCpu(NvBufSurface *surf, int index, int plane) {
  __atomic_fetch_add(&counts[2], 1, __ATOMIC_RELAXED);
  return each(surf, index, plane, sync_cpu_one, 0);
}

int NvBufSurfaceSyncForDevice(NvBufSurface *surf, int index, int plane) {
  __atomic_fetch_add(&counts[3], 1, __ATOMIC_RELAXED);
  return each(surf, index, plane, sync_device_one, 0);
}
