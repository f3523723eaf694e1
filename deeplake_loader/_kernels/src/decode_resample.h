/* Pillow-compatible antialiased bilinear resampling (8 bits per channel), the last step of the
 * fused crop+scale path of both decoders.
 *
 * Same fixed-point arithmetic as Pillow's ImagingResample (22-bit coefficients, horizontal
 * pass then vertical pass, rounding and clipping to 8 bits between them), so the bytes equal
 * Image.resize(size, BILINEAR, box) on the crop. On x86-64 CPUs with AVX2 the 3- and 4-channel
 * rows and the vertical pass run through AVX2 code picked once at run time; it computes the same
 * integers, so the bytes do not depend on the CPU. */
#ifndef DEEPLAKE_LOADER_DECODE_RESAMPLE_H
#define DEEPLAKE_LOADER_DECODE_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "decode_jpeg.h"

/* Pillow-compatible antialiased bilinear resize (Image.resize(..., BILINEAR, box)) of the
 * region [x0, x1) x [y0, y1) (fractional allowed) of an 8-bit HWC image src (sh x sw x c,
 * row stride sstride bytes) into out (th x tw x c), optionally flipped left-right. The filter
 * never reads outside [floor(x0), ceil(x1)) x [floor(y0), ceil(y1)), exactly like resizing a
 * crop. alpha != 0 with c == 2 or 4 treats the last channel as alpha and resamples
 * premultiplied colours, as Image.resize does for LA/RGBA. A same-size integer box is a plain
 * copy (Pillow returns a copy). Uses ctx scratch kinds 0, 2, 3 and 4. Returns DL_OK or
 * DL_ERR_NOMEM. */
int dl_resample_bilinear(dl_ctx *ctx, const uint8_t *src, int sh, int sw, size_t sstride, int c,
                         double y0, double x0, double y1, double x1, uint8_t *out, int th, int tw,
                         int flip, int alpha);

/* Which row code dl_resample_bilinear uses: 1 = AVX2 where the CPU has it (the default),
 * 0 = portable C only. Returns whether AVX2 code is in use after the call. For tests that
 * compare the two; not thread-safe against concurrent resampling. */
int dl_resample_use_simd(int on);

#endif
