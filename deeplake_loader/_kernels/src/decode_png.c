/* PNG decode with libpng 1.6; see decode_png.h for the output conventions.
 *
 * libpng reports errors through png_error -> our error callback, which copies libpng's message
 * and longjmps to the png_jmpbuf set in the public function that called libpng. */
#include "decode_png.h"
#include "decode_resample.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <libdeflate.h>
#include <png.h>
#include <stdlib.h>

typedef struct {
  const uint8_t *buf;
  size_t n, pos;
  char err[DL_MSG_LEN];
  char warn[DL_MSG_LEN];
  int nwarn;
} dl_pngsrc;

static void dl_png_read(png_structp png, png_bytep data, png_size_t len) {
  dl_pngsrc *s = (dl_pngsrc *)png_get_io_ptr(png);
  if (len > s->n - s->pos) png_error(png, "Read Error: PNG data is truncated");
  memcpy(data, s->buf + s->pos, len);
  s->pos += len;
}

static void dl_png_error(png_structp png, png_const_charp text) {
  dl_pngsrc *s = (dl_pngsrc *)png_get_error_ptr(png);
  strncpy(s->err, text ? text : "libpng error", DL_MSG_LEN - 1);
  s->err[DL_MSG_LEN - 1] = 0;
  png_longjmp(png, 1);
}

static void dl_png_warning(png_structp png, png_const_charp text) {
  dl_pngsrc *s = (dl_pngsrc *)png_get_error_ptr(png);
  (void)png;
  if (s->nwarn == 0) {
    strncpy(s->warn, text ? text : "libpng warning", DL_MSG_LEN - 1);
    s->warn[DL_MSG_LEN - 1] = 0;
  }
  s->nwarn++;
}

static void set_msg(char *msg, const char *text) {
  if (!msg) return;
  strncpy(msg, text, DL_MSG_LEN - 1);
  msg[DL_MSG_LEN - 1] = 0;
}

/* Set the transforms of decode_png.h; returns channels and bytes per channel of the result. */
static void setup_transforms(png_structp png, png_infop info, int *channels, int *bpc) {
  int ct = png_get_color_type(png, info);
  int depth = png_get_bit_depth(png, info);
  *bpc = 1;
  switch (ct) {
    case PNG_COLOR_TYPE_PALETTE:
      png_set_palette_to_rgb(png);
      if (png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_tRNS_to_alpha(png);
        *channels = 4;
      } else {
        *channels = 3;
      }
      break;
    case PNG_COLOR_TYPE_GRAY:
      *channels = 1;
      if (depth < 8) png_set_expand_gray_1_2_4_to_8(png);
      if (depth == 16) {
        *bpc = 2;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        png_set_swap(png);
#endif
      }
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      if (depth == 16) { /* Pillow opens 16-bit LA as RGBA (rawmode "LA;16B") */
        png_set_gray_to_rgb(png);
        *channels = 4;
      } else {
        *channels = 2;
      }
      break;
    case PNG_COLOR_TYPE_RGB:
      *channels = 3;
      break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      *channels = 4;
      break;
    default:
      *channels = 0;
  }
  if (depth == 16 && ct != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png);
}

static png_structp make_png(dl_pngsrc *src) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, dl_png_error, dl_png_warning);
  if (png) {
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_set_chunk_malloc_max(png, 64u << 20);
    /* Every chunk CRC (IDAT included) is verified, so the zlib stream's Adler-32 adds nothing:
     * skip it (about 5% of PNG decode time). */
#ifdef PNG_IGNORE_ADLER32
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
  }
  return png;
}

int dl_png_info(const uint8_t *buf, size_t n, int *height, int *width, int *channels,
                int *bytes_per_channel, char *msg) {
  dl_pngsrc src;
  png_structp png;
  png_infop info = NULL;
  memset(&src, 0, sizeof(src));
  src.buf = buf;
  src.n = n;
  if (n < 8 || png_sig_cmp(buf, 0, 8) != 0) {
    set_msg(msg, "not a PNG file");
    return DL_ERR_FORMAT;
  }
  png = make_png(&src);
  if (!png) {
    set_msg(msg, "out of memory");
    return DL_ERR_NOMEM;
  }
  info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    set_msg(msg, "out of memory");
    return DL_ERR_NOMEM;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    set_msg(msg, src.err);
    return DL_ERR_CORRUPT;
  }
  png_set_read_fn(png, &src, dl_png_read);
  png_read_info(png, info);
  *height = (int)png_get_image_height(png, info);
  *width = (int)png_get_image_width(png, info);
  setup_transforms(png, info, channels, bytes_per_channel);
  png_destroy_read_struct(&png, &info, NULL);
  if (dl_check_pixels((uint64_t)(uint32_t)*height, (uint64_t)(uint32_t)*width, msg) != DL_OK) return DL_ERR_TOOBIG;
  if (*channels == 0) {
    set_msg(msg, "unsupported PNG colour type");
    return DL_ERR_UNSUPPORTED;
  }
  if (msg) msg[0] = 0;
  return DL_OK;
}

/* ---- fast path: 8-bit, non-interlaced gray / gray+alpha / RGB / RGBA with no palette or tRNS ----
 * The chunks are walked and CRC-checked here, the IDAT stream is inflated by libdeflate (about
 * twice zlib's speed; inflate is ~90% of a PNG decode) and the rows are unfiltered in place of
 * libpng. Anything else -- another layout, an unknown chunk, a bad CRC, a broken stream -- returns
 * FAST_NO and libpng decodes the file (and reports what is wrong with it), so behaviour and errors
 * stay libpng's. */
#define FAST_NO (-1)

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static int harmless_chunk(const uint8_t *t) {
  return !memcmp(t, "pHYs", 4) || !memcmp(t, "tEXt", 4) || !memcmp(t, "zTXt", 4) || !memcmp(t, "iTXt", 4) ||
         !memcmp(t, "tIME", 4);
}

static inline uint8_t paeth(int a, int b, int cc) {
  int p = a + b - cc, pa = p > a ? p - a : a - p, pb = p > b ? p - b : b - p, pc = p > cc ? p - cc : cc - p;
  return (uint8_t)((pa <= pb && pa <= pc) ? a : (pb <= pc ? b : cc));
}

static int unfilter(const uint8_t *raw, uint8_t *out, int h, size_t stride, int bpp) {
  size_t i;
  int y;
  for (y = 0; y < h; y++) {
    const uint8_t *cur = raw + (size_t)y * (stride + 1) + 1;
    uint8_t *o = out + (size_t)y * stride;
    const uint8_t *up = y ? o - stride : NULL;
    switch (raw[(size_t)y * (stride + 1)]) {
      case 0: memcpy(o, cur, stride); break;
      case 1:
        for (i = 0; i < stride; i++) o[i] = (uint8_t)(cur[i] + (i >= (size_t)bpp ? o[i - bpp] : 0));
        break;
      case 2:
        for (i = 0; i < stride; i++) o[i] = (uint8_t)(cur[i] + (up ? up[i] : 0));
        break;
      case 3:
        for (i = 0; i < stride; i++)
          o[i] = (uint8_t)(cur[i] + (((i >= (size_t)bpp ? o[i - bpp] : 0) + (up ? up[i] : 0)) >> 1));
        break;
      case 4:
        for (i = 0; i < stride; i++) {
          int a = i >= (size_t)bpp ? o[i - bpp] : 0, b = up ? up[i] : 0;
          int cc = (up && i >= (size_t)bpp) ? up[i - bpp] : 0;
          o[i] = (uint8_t)(cur[i] + paeth(a, b, cc));
        }
        break;
      default: return FAST_NO; /* invalid filter type: libpng names the error */
    }
  }
  return DL_OK;
}

static int fast_png(const uint8_t *buf, size_t n, uint8_t *out, int h, int w, int c, int bpc) {
  static const int channels_of[7] = {1, 0, 3, 0, 2, 0, 4};
  size_t pos = 8, idat_total = 0, stride, expected, got = 0;
  const uint8_t *first_idat = NULL;
  int nidat = 0, seen_ihdr = 0, seen_iend = 0, st;
  uint8_t *joined = NULL, *raw;
  const uint8_t *stream;
  struct libdeflate_decompressor *d;
  enum libdeflate_result r;
  if (bpc != 1) return FAST_NO;
  while (pos + 12 <= n) {
    uint32_t len = be32(buf + pos);
    const uint8_t *type = buf + pos + 4;
    if (len > n - pos - 12) return FAST_NO;
    if (libdeflate_crc32(0, type, (size_t)len + 4) != be32(buf + pos + 8 + len)) return FAST_NO;
    if (!memcmp(type, "IHDR", 4)) {
      const uint8_t *p = type + 4;
      if (seen_ihdr || len != 13) return FAST_NO;
      seen_ihdr = 1;
      if (be32(p) != (uint32_t)w || be32(p + 4) != (uint32_t)h || p[8] != 8 || p[9] > 6 ||
          channels_of[p[9]] != c || p[10] != 0 || p[11] != 0 || p[12] != 0)
        return FAST_NO;
    } else if (!memcmp(type, "IDAT", 4)) {
      if (!seen_ihdr) return FAST_NO;
      if (!nidat) first_idat = type + 4;
      nidat++;
      idat_total += len;
    } else if (!memcmp(type, "IEND", 4)) {
      seen_iend = 1;
      break;
    } else if (!harmless_chunk(type)) {
      return FAST_NO;
    }
    pos += 12 + (size_t)len;
  }
  if (!seen_ihdr || !seen_iend || !nidat) return FAST_NO;
  stream = first_idat;
  if (nidat > 1) { /* join the IDAT pieces */
    joined = (uint8_t *)malloc(idat_total ? idat_total : 1);
    if (!joined) return FAST_NO;
    size_t off = 0;
    pos = 8;
    while (off < idat_total) {
      uint32_t len = be32(buf + pos);
      if (!memcmp(buf + pos + 4, "IDAT", 4)) {
        memcpy(joined + off, buf + pos + 8, len);
        off += len;
      }
      pos += 12 + (size_t)len;
    }
    stream = joined;
  }
  stride = (size_t)w * (size_t)c;
  expected = (size_t)h * (stride + 1);
  raw = (uint8_t *)malloc(expected ? expected : 1);
  d = libdeflate_alloc_decompressor();
  if (!raw || !d) {
    free(raw);
    free(joined);
    if (d) libdeflate_free_decompressor(d);
    return FAST_NO;
  }
  r = libdeflate_zlib_decompress(d, stream, idat_total, raw, expected, &got);
  libdeflate_free_decompressor(d);
  free(joined);
  st = (r == LIBDEFLATE_SUCCESS && got == expected) ? unfilter(raw, out, h, stride, c) : FAST_NO;
  free(raw);
  return st;
}

int dl_png_decode(const uint8_t *buf, size_t n, uint8_t *out, int h, int w, int c, int bpc,
                  char *msg) {
  dl_pngsrc src;
  png_structp png;
  png_infop info = NULL;
  int channels = 0, ibpc = 1, passes, p, y;
  size_t rowbytes = (size_t)w * c * bpc;
  memset(&src, 0, sizeof(src));
  src.buf = buf;
  src.n = n;
  if (n < 8 || png_sig_cmp(buf, 0, 8) != 0) {
    set_msg(msg, n == 0 ? "empty buffer" : "not a PNG file");
    return DL_ERR_FORMAT;
  }
  if (h <= 0 || w <= 0) {
    set_msg(msg, "output buffer has a zero dimension");
    return DL_ERR_SHAPE;
  }
  if (dl_check_pixels((uint64_t)h, (uint64_t)w, msg) != DL_OK) return DL_ERR_TOOBIG;
  if (fast_png(buf, n, out, h, w, c, bpc) == DL_OK) {
    if (msg) msg[0] = 0;
    return DL_OK;
  }
  png = make_png(&src);
  if (!png) {
    set_msg(msg, "out of memory");
    return DL_ERR_NOMEM;
  }
  info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    set_msg(msg, "out of memory");
    return DL_ERR_NOMEM;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    set_msg(msg, src.err);
    return DL_ERR_CORRUPT;
  }
  png_set_read_fn(png, &src, dl_png_read);
  png_read_info(png, info);
  if (dl_check_pixels(png_get_image_height(png, info), png_get_image_width(png, info), msg) != DL_OK) {
    png_destroy_read_struct(&png, &info, NULL);
    return DL_ERR_TOOBIG;
  }
  setup_transforms(png, info, &channels, &ibpc);
  if (channels == 0) {
    png_destroy_read_struct(&png, &info, NULL);
    set_msg(msg, "unsupported PNG colour type");
    return DL_ERR_UNSUPPORTED;
  }
  if (png_get_image_height(png, info) != (png_uint_32)h || png_get_image_width(png, info) != (png_uint_32)w ||
      channels != c || ibpc != bpc) {
    if (msg)
      snprintf(msg, DL_MSG_LEN, "PNG header says %ux%ux%d (%d-byte samples) but the output is %dx%dx%d (%d-byte)",
               (unsigned)png_get_image_height(png, info), (unsigned)png_get_image_width(png, info),
               channels, ibpc, h, w, c, bpc);
    png_destroy_read_struct(&png, &info, NULL);
    return DL_ERR_SHAPE;
  }
  passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != rowbytes) {
    png_destroy_read_struct(&png, &info, NULL);
    set_msg(msg, "PNG row size after transforms does not match the output");
    return DL_ERR_SHAPE;
  }
  for (p = 0; p < passes; p++)
    for (y = 0; y < h; y++) png_read_row(png, out + (size_t)y * rowbytes, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  if (src.nwarn > 0) {
    set_msg(msg, src.warn);
    return DL_WARNED;
  }
  if (msg) msg[0] = 0;
  return DL_OK;
}

int dl_png_decode_crop(dl_ctx *ctx, const uint8_t *buf, size_t n, const int64_t *box, int th,
                       int tw, int flip, uint8_t *out, int c, char *msg) {
  int64_t lim[4] = {box[0], box[1], box[0] + box[2], box[1] + box[3]};
  double fbox[4] = {(double)lim[0], (double)lim[1], (double)lim[2], (double)lim[3]};
  return dl_png_decode_view(ctx, buf, n, fbox, lim, th, tw, flip, out, c, DL_ORDER_HFIRST, msg);
}

int dl_png_decode_view(dl_ctx *ctx, const uint8_t *buf, size_t n, const double *box,
                       const int64_t *lim, int th, int tw, int flip, uint8_t *out, int c,
                       int order, char *msg) {
  int h, w, ch, bpc, st, st2;
  uint8_t *full;
  char wmsg[DL_MSG_LEN];
  wmsg[0] = 0;
  st = dl_png_info(buf, n, &h, &w, &ch, &bpc, msg);
  if (st != DL_OK) return st;
  if (bpc != 1) {
    set_msg(msg, "16-bit grayscale PNG is not supported by the crop+resize decode");
    return DL_ERR_UNSUPPORTED;
  }
  if (ch != c) {
    if (msg) snprintf(msg, DL_MSG_LEN, "PNG has %d channels but the output has %d", ch, c);
    return DL_ERR_SHAPE;
  }
  if (th <= 0 || tw <= 0) {
    set_msg(msg, "target size must be positive");
    return DL_ERR_SHAPE;
  }
  if (!(0 <= lim[0] && lim[0] < lim[2] && lim[2] <= h && 0 <= lim[1] && lim[1] < lim[3] &&
        lim[3] <= w) ||
      !(lim[0] <= box[0] && box[0] < box[2] && box[2] <= lim[2] && lim[1] <= box[1] &&
        box[1] < box[3] && box[3] <= lim[3])) {
    if (msg)
      snprintf(msg, DL_MSG_LEN,
               "crop box (y=%g..%g, x=%g..%g) in limits (y=%lld..%lld, x=%lld..%lld) outside the "
               "%dx%d image", box[0], box[2], box[1], box[3], (long long)lim[0],
               (long long)lim[2], (long long)lim[1], (long long)lim[3], h, w);
    return DL_ERR_BOX;
  }
  full = (uint8_t *)dl_ctx_scratch(ctx, 1, (size_t)h * w * c);
  if (!full) {
    set_msg(msg, "out of memory");
    return DL_ERR_NOMEM;
  }
  st = dl_png_decode(buf, n, full, h, w, c, 1, wmsg);
  if (st != DL_OK && st != DL_WARNED) {
    set_msg(msg, wmsg);
    return st;
  }
  st2 = dl_resample_bilinear_in(ctx, full, h, w, (size_t)w * c, c, box[0], box[1], box[2], box[3],
                                (int)lim[0], (int)lim[1], (int)lim[2], (int)lim[3], out, th, tw,
                                flip, c == 2 || c == 4, dl_view_vertical_first(order, box, lim, th, tw));
  if (st2 != DL_OK) {
    set_msg(msg, st2 == DL_ERR_NOMEM ? "out of memory" : "crop box outside the image");
    return st2;
  }
  set_msg(msg, wmsg);
  return st;
}
