/* PNG decode: a libdeflate fast path for 8-bit non-interlaced files without palette or tRNS, and
 * libpng 1.6 (classic API, reading from memory) behind png_jmpbuf for everything else.
 *
 * Output follows Pillow's np.asarray(Image.open(f)) with palettes expanded:
 *   gray 1/2/4/8-bit -> 1 channel uint8 (1-bit gives 0/255 like Image.convert("L"),
 *                       2/4-bit scaled to 0..255 as Pillow does)
 *   gray 16-bit      -> 1 channel uint16 (native endian), like Pillow's "I;16"
 *   gray+alpha       -> 2 channels uint8; 16-bit gray+alpha -> 4 channels RGBA uint8 (high
 *                       byte, gray replicated), as Pillow opens it (mode RGBA, rawmode "LA;16B")
 *   RGB / RGBA       -> 3 / 4 channels uint8 (16-bit: high byte, like "RGB;16B"/"RGBA;16B")
 *   palette          -> 3 channels (RGB), or 4 (RGBA) when a tRNS chunk is present,
 *                       equal to Image.convert("RGB") / Image.convert("RGBA")
 * tRNS on gray/RGB images is ignored (Pillow keeps it in .info only). No gamma is applied.
 * libpng warnings never fail a decode; the first one is returned with DL_WARNED. */
#ifndef DEEPLAKE_LOADER_DECODE_PNG_H
#define DEEPLAKE_LOADER_DECODE_PNG_H

#include "decode_jpeg.h"

/* Header only: channels as above, *bytes_per_channel 1 or 2 (2 only for 16-bit gray). */
int dl_png_info(const uint8_t *buf, size_t n, int *height, int *width, int *channels,
                int *bytes_per_channel, char *msg);

/* Full decode into out (h*w*c*bpc bytes). bpc must equal the image's bytes per channel. */
int dl_png_decode(const uint8_t *buf, size_t n, uint8_t *out, int h, int w, int c, int bpc,
                  char *msg);

/* Full decode into ctx scratch, crop box {y, x, h, w}, bilinear resize to th x tw, flip.
 * 16-bit gray images are not supported here (DL_ERR_UNSUPPORTED). */
int dl_png_decode_crop(dl_ctx *ctx, const uint8_t *buf, size_t n, const int64_t *box, int th,
                       int tw, int flip, uint8_t *out, int c, char *msg);

/* Full decode into ctx scratch, then the view of decode_jpeg.h's dl_jpeg_decode_view: box
 * {y0, x0, y1, x1} (fractional) resized to th x tw reading only pixels in lim {y0, x0, y1, x1}. */
int dl_png_decode_view(dl_ctx *ctx, const uint8_t *buf, size_t n, const double *box,
                       const int64_t *lim, int th, int tw, int flip, uint8_t *out, int c,
                       int order, char *msg);

#endif
