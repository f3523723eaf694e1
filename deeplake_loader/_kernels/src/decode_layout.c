/* HWC uint8 -> CHW uint8 / float32 with a per-channel table; see decode_layout.h. One pass over
 * the source rows: each pixel's channels go to their planes while the row is in cache; the
 * table (c x 1 KiB) stays in L1. */
#include "decode_layout.h"

#include <stddef.h>

void dl_layout_chw(const uint8_t *src, int h, int w, int c, int vflip, const float *lut, void *out) {
  size_t plane = (size_t)h * w;
  int y, x, ch;
  for (y = 0; y < h; y++) {
    const uint8_t *row = src + (size_t)(vflip ? h - 1 - y : y) * w * c;
    size_t o = (size_t)y * w;
    if (lut) {
      float *f = (float *)out + o;
      if (c == 3) {
        const float *t0 = lut, *t1 = lut + 256, *t2 = lut + 512;
        float *f0 = f, *f1 = f + plane, *f2 = f + 2 * plane;
        for (x = 0; x < w; x++) {
          f0[x] = t0[row[3 * x]];
          f1[x] = t1[row[3 * x + 1]];
          f2[x] = t2[row[3 * x + 2]];
        }
      } else {
        for (ch = 0; ch < c; ch++) {
          const float *t = lut + (size_t)ch * 256;
          float *fc = f + (size_t)ch * plane;
          for (x = 0; x < w; x++) fc[x] = t[row[(size_t)x * c + ch]];
        }
      }
    } else if (c == 3) {
      uint8_t *u0 = (uint8_t *)out + o, *u1 = u0 + plane, *u2 = u1 + plane;
      for (x = 0; x < w; x++) {
        u0[x] = row[3 * x];
        u1[x] = row[3 * x + 1];
        u2[x] = row[3 * x + 2];
      }
    } else {
      uint8_t *u = (uint8_t *)out + o;
      for (ch = 0; ch < c; ch++) {
        uint8_t *uc = u + (size_t)ch * plane;
        for (x = 0; x < w; x++) uc[x] = row[(size_t)x * c + ch];
      }
    }
  }
}
