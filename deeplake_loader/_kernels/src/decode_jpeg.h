/* JPEG decode (libjpeg API of libjpeg-turbo 2.1) behind a setjmp error manager, plus the pieces
 * shared with the PNG decoder: status codes and the per-thread decoder context. The resampler
 * of the fused crop+scale path is in decode_resample.h.
 *
 * No Python API here. Every function is safe to call without the GIL, from several threads at
 * once provided each thread passes its own dl_ctx. Untrusted bytes never cause an out-of-bounds
 * write: image dimensions are checked against the caller's output shape before any pixel is
 * written, and every libjpeg/libpng error becomes a status code plus a message. */
#ifndef DEEPLAKE_LOADER_DECODE_JPEG_H
#define DEEPLAKE_LOADER_DECODE_JPEG_H

#include <stddef.h>
#include <stdint.h>

#define DL_MSG_LEN 200

/* Status codes. DL_OK and DL_WARNED mean the output holds the decoded image. */
#define DL_OK 0
#define DL_WARNED 1          /* decoded; the library emitted a warning (text in msg), strict=0 */
#define DL_ERR_CORRUPT 2     /* the codec library reported an error (text in msg) */
#define DL_ERR_WARNING 3     /* strict=1 and the library emitted a warning (text in msg) */
#define DL_ERR_SHAPE 4       /* header dimensions/channels do not match the output buffer */
#define DL_ERR_UNSUPPORTED 5 /* colour space / bit depth / channel request not supported */
#define DL_ERR_NOMEM 6       /* scratch allocation failed */
#define DL_ERR_FORMAT 7      /* neither a JPEG nor a PNG (or empty) */
#define DL_ERR_BOX 8         /* crop box outside the image or empty */
#define DL_ERR_TOOBIG 9      /* the header claims more pixels than dl_max_pixels() allows */

#define DL_CODEC_UNKNOWN 0
#define DL_CODEC_JPEG 1
#define DL_CODEC_PNG 2

/* Per-thread decoder state: a reusable libjpeg decompress object and growable scratch memory. */
typedef struct dl_ctx dl_ctx;
#define DL_SCRATCH_KINDS 6

dl_ctx *dl_ctx_new(void);
void dl_ctx_free(dl_ctx *ctx);
/* Scratch memory owned by ctx, at least n bytes (kinds 0..DL_SCRATCH_KINDS-1 are independent
 * buffers). NULL if the allocation fails. Valid until the next call with the same kind or
 * dl_ctx_free. */
void *dl_ctx_scratch(dl_ctx *ctx, int kind, size_t n);

int dl_codec_of(const uint8_t *buf, size_t n);

/* The decompression-bomb limit: the most pixels (height x width) an image header may claim.
 * Every info/decode/crop function checks it right after reading the header, before it allocates
 * anything of the image's size; over the limit it returns DL_ERR_TOOBIG with the claimed size in
 * msg. Process-wide; set it before decoding (a change during a decode applies to later images). */
void dl_set_max_pixels(uint64_t n);
uint64_t dl_max_pixels(void);
/* DL_OK, or DL_ERR_TOOBIG with a message naming the claimed size and the limit. */
int dl_check_pixels(uint64_t height, uint64_t width, char *msg);

/* Header only. channels: 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK. */
int dl_jpeg_info(dl_ctx *ctx, const uint8_t *buf, size_t n, int *height, int *width,
                 int *channels, char *msg);

/* Full decode into out (h*w*c bytes, row-major HWC). c equal to the stored channel count gives
 * what np.asarray(PIL.Image.open(f)) gives (CMYK inverted, as Pillow's "CMYK;I"); c == 3 from
 * gray replicates, c == 3 from CMYK converts like Image.convert("RGB"). */
int dl_jpeg_decode(dl_ctx *ctx, const uint8_t *buf, size_t n, uint8_t *out, int h, int w, int c,
                   int strict, char *msg);

/* Fused crop + DCT scale + bilinear resize + optional horizontal flip into out (th*tw*c).
 * box = {y, x, h, w} in full-image pixels. */
int dl_jpeg_decode_crop(dl_ctx *ctx, const uint8_t *buf, size_t n, const int64_t *box, int th,
                        int tw, int flip, uint8_t *out, int c, int strict, char *msg);

/* The general view behind it: the fractional box {y0, x0, y1, x1} (full-image pixels) resized to
 * th x tw, the filter reading only pixels inside lim {y0, x0, y1, x1} (integers, holding the
 * box). lim == box is the crop above (torchvision's crop-then-resize); lim == the whole image
 * with box = (H / rh) * [oy, oy + th) x (W / rw) * [ox, ox + tw) is a resize of the whole image
 * to rh x rw cropped at (oy, ox) (torchvision's Resize then CenterCrop/RandomCrop), computed
 * without resizing the rest. dct >= 1: decoded at the smallest DCT scale whose box still covers
 * dct x (th x tw) (1: as above); dct == 0: always at full size. order: the resampler's pass
 * order (decode_resample.h; the crop above uses DL_ORDER_HFIRST). */
int dl_jpeg_decode_view(dl_ctx *ctx, const uint8_t *buf, size_t n, const double *box,
                        const int64_t *lim, int th, int tw, int flip, uint8_t *out, int c,
                        int strict, int dct, int order, char *msg);

/* Whether a view resamples vertically first under the pass order `order` (DL_ORDER_* of
 * decode_resample.h), judged on the whole resize it is a window of. */
int dl_view_vertical_first(int order, const double *box, const int64_t *lim, int th, int tw);

/* Smallest scale_num in {1, 2, 4, 8} (denominator 8) whose scaled crop still covers th x tw.
 * Only these scales: libjpeg-turbo has SIMD IDCTs for them, while 3/8, 5/8, 6/8, 7/8 run
 * plain-C IDCTs that were slower than decoding at full size and resizing (and further from
 * Pillow's result). */
int dl_jpeg_pick_scale(int crop_h, int crop_w, int th, int tw);

/* Pillow's CMYK (already inverted) -> RGB conversion of n pixels. */
void dl_cmyk_to_rgb(const uint8_t *in, uint8_t *out, size_t npix);

#endif
