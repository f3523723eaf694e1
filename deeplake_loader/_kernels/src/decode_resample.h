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
 * copy (Pillow returns a copy). Uses ctx scratch kinds 0, 2, 3 and 4. Returns DL_OK,
 * DL_ERR_NOMEM, or DL_ERR_BOX for a box outside the image or an empty size. */
int dl_resample_bilinear(dl_ctx *ctx, const uint8_t *src, int sh, int sw, size_t sstride, int c,
                         double y0, double x0, double y1, double x1, uint8_t *out, int th, int tw,
                         int flip, int alpha);

/* The same with the pixels the filter may read given explicitly: [lx0, lx1) x [ly0, ly1), which
 * must hold the box and lie in the image. Limits [floor(x0), ceil(x1)) are dl_resample_bilinear
 * (resizing a crop); limits larger than the box make the output the window of a resize of the
 * limited region: with a box of (W / rw) * [ox, ox + tw), the output is Pillow's resize of the
 * region to width rw, cropped to [ox, ox + tw) (a torchvision Resize followed by a crop). */
int dl_resample_bilinear_in(dl_ctx *ctx, const uint8_t *src, int sh, int sw, size_t sstride, int c,
                            double y0, double x0, double y1, double x1, int ly0, int lx0, int ly1,
                            int lx1, uint8_t *out, int th, int tw, int flip, int alpha,
                            int vfirst);

/* Pass order. Pillow up to 12 always resamples horizontally first (DL_ORDER_HFIRST); Pillow 13
 * resamples vertically first when the height shrinks by more than twice what the width does
 * (DL_ORDER_PILLOW13; measured on 13.0.0: out_h < in_h && in_h - out_h > 2 (in_w - out_w)).
 * The rounding between the passes differs with the order, so exact equality with a Pillow
 * needs its order. Returns the vfirst argument for a resize of in_h x in_w to out_h x out_w
 * (the whole resize, also when only a window of it is computed); alpha images always go
 * horizontally first. */
#define DL_ORDER_HFIRST 0
#define DL_ORDER_PILLOW13 1
int dl_resample_vertical_first(int order, int in_h, int in_w, int out_h, int out_w);

/* Which row code dl_resample_bilinear uses: 1 = AVX2 where the CPU has it (the default),
 * 0 = portable C only. Returns whether AVX2 code is in use after the call. For tests that
 * compare the two; not thread-safe against concurrent resampling. */
int dl_resample_use_simd(int on);

#endif
