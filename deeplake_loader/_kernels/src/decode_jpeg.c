/* JPEG decode with libjpeg-turbo's libjpeg API; see decode_jpeg.h for the contract.
 *
 * Errors: libjpeg's error_exit (which would call exit()) is replaced by dl_error_exit, which
 * formats libjpeg's own message and longjmps back into the public function that called libjpeg
 * (each public function holds its own setjmp). Warnings (corrupt data, premature end of file)
 * are counted; with strict=1 the first warning aborts the decode like an error. */
#include "decode_jpeg.h"
#include "decode_resample.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define DL_MAX_SCANS 1000 /* progressive files with more scans are rejected (decode-time bomb) */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  int strict;
  int was_warning;
  int nwarn;
  char msg[DL_MSG_LEN];  /* error text (or the warning that aborted a strict decode) */
  char warn[DL_MSG_LEN]; /* first warning text */
} dl_jerr;

struct dl_ctx {
  struct jpeg_decompress_struct cinfo;
  dl_jerr jerr;
  struct jpeg_progress_mgr progress;
  int created;
  void *scratch[DL_SCRATCH_KINDS];
  size_t scratch_n[DL_SCRATCH_KINDS];
};

static void dl_error_exit(j_common_ptr ci) {
  dl_jerr *e = (dl_jerr *)ci->err;
  (*ci->err->format_message)(ci, e->msg);
  e->was_warning = 0;
  longjmp(e->jb, 1);
}

static void dl_emit_message(j_common_ptr ci, int level) {
  dl_jerr *e = (dl_jerr *)ci->err;
  if (level >= 0) return; /* trace messages */
  if (e->nwarn == 0) (*ci->err->format_message)(ci, e->warn);
  e->nwarn++;
  ci->err->num_warnings++;
  if (e->strict) {
    memcpy(e->msg, e->warn, DL_MSG_LEN);
    e->was_warning = 1;
    longjmp(e->jb, 1);
  }
}

static void dl_output_message(j_common_ptr ci) { (void)ci; }

static void dl_progress(j_common_ptr ci) {
  if (ci->is_decompressor && ((j_decompress_ptr)ci)->input_scan_number > DL_MAX_SCANS) {
    dl_jerr *e = (dl_jerr *)ci->err;
    snprintf(e->msg, DL_MSG_LEN, "JPEG has more than %d scans", DL_MAX_SCANS);
    e->was_warning = 0;
    longjmp(e->jb, 1);
  }
}

dl_ctx *dl_ctx_new(void) {
  dl_ctx *ctx = (dl_ctx *)calloc(1, sizeof(dl_ctx));
  if (!ctx) return NULL;
  ctx->cinfo.err = jpeg_std_error(&ctx->jerr.pub);
  ctx->jerr.pub.error_exit = dl_error_exit;
  ctx->jerr.pub.emit_message = dl_emit_message;
  ctx->jerr.pub.output_message = dl_output_message;
  if (setjmp(ctx->jerr.jb)) {
    free(ctx);
    return NULL;
  }
  jpeg_create_decompress(&ctx->cinfo);
  ctx->created = 1;
  ctx->progress.progress_monitor = dl_progress;
  ctx->cinfo.progress = &ctx->progress;
  return ctx;
}

void dl_ctx_free(dl_ctx *ctx) {
  int i;
  if (!ctx) return;
  if (ctx->created) jpeg_destroy_decompress(&ctx->cinfo);
  for (i = 0; i < DL_SCRATCH_KINDS; i++) free(ctx->scratch[i]);
  free(ctx);
}

void *dl_ctx_scratch(dl_ctx *ctx, int kind, size_t n) {
  if (kind < 0 || kind >= DL_SCRATCH_KINDS) return NULL;
  if (n == 0) n = 1;
  if (ctx->scratch_n[kind] < n) {
    size_t want = n + n / 4;
    void *p = realloc(ctx->scratch[kind], want);
    if (!p) return NULL;
    ctx->scratch[kind] = p;
    ctx->scratch_n[kind] = want;
  }
  return ctx->scratch[kind];
}

/* 2 x Pillow's Image.MAX_IMAGE_PIXELS: the size at which Pillow refuses an image outright. */
static volatile uint64_t max_pixels = 178956970u;

void dl_set_max_pixels(uint64_t n) { max_pixels = n; }

uint64_t dl_max_pixels(void) { return max_pixels; }

int dl_check_pixels(uint64_t height, uint64_t width, char *msg) {
  uint64_t limit = max_pixels;
  if (height * width <= limit) return DL_OK; /* both < 2^32: the product cannot overflow */
  if (msg)
    snprintf(msg, DL_MSG_LEN,
             "image header claims %llux%llu (%llu pixels), over the limit of %llu pixels "
             "(deeplake_loader.set_max_image_pixels raises it)",
             (unsigned long long)height, (unsigned long long)width,
             (unsigned long long)(height * width), (unsigned long long)limit);
  return DL_ERR_TOOBIG;
}

int dl_codec_of(const uint8_t *buf, size_t n) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return DL_CODEC_JPEG;
  if (n >= 8 && memcmp(buf, png_sig, 8) == 0) return DL_CODEC_PNG;
  return DL_CODEC_UNKNOWN;
}

/* Channels as stored: what Pillow's mode gives. 0 = unsupported colour space. */
static int natural_channels(j_decompress_ptr ci) {
  switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: return 1;
    case JCS_YCbCr:
    case JCS_RGB: return 3;
    case JCS_CMYK:
    case JCS_YCCK: return 4;
    default: return 0;
  }
}

static void reset_err(dl_ctx *ctx, int strict) {
  ctx->jerr.strict = strict;
  ctx->jerr.was_warning = 0;
  ctx->jerr.nwarn = 0;
  ctx->jerr.pub.num_warnings = 0;
  ctx->jerr.msg[0] = 0;
  ctx->jerr.warn[0] = 0;
}

static void set_msg(char *msg, const char *text) {
  if (!msg) return;
  strncpy(msg, text, DL_MSG_LEN - 1);
  msg[DL_MSG_LEN - 1] = 0;
}

static int finish_status(dl_ctx *ctx, char *msg) {
  if (ctx->jerr.nwarn > 0) {
    set_msg(msg, ctx->jerr.warn);
    return DL_WARNED;
  }
  if (msg) msg[0] = 0;
  return DL_OK;
}

/* Pick the output colour space for a request of c channels; *convert = 1 when CMYK must be
 * converted to RGB after decoding. Returns the libjpeg output component count, 0 if unsupported. */
static int choose_space(j_decompress_ptr ci, int nat, int c, int *convert) {
  *convert = 0;
  if (c == nat) {
    ci->out_color_space = nat == 1 ? JCS_GRAYSCALE : (nat == 3 ? JCS_RGB : JCS_CMYK);
    return c;
  }
  if (c == 3 && nat == 1) {
    ci->out_color_space = JCS_RGB;
    return 3;
  }
  if (c == 3 && nat == 4) {
    ci->out_color_space = JCS_CMYK;
    *convert = 1;
    return 4;
  }
  return 0;
}

static void invert(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (uint8_t)(255 - p[i]);
}

void dl_cmyk_to_rgb(const uint8_t *in, uint8_t *out, size_t npix) {
  size_t i;
  int k, nk, t;
  for (i = 0; i < npix; i++) {
    nk = 255 - in[4 * i + 3];
    for (k = 0; k < 3; k++) {
      t = in[4 * i + k] * nk + 128;
      t = ((t >> 8) + t) >> 8;
      t = nk - t;
      out[3 * i + k] = (uint8_t)(t < 0 ? 0 : (t > 255 ? 255 : t));
    }
  }
}

int dl_jpeg_info(dl_ctx *ctx, const uint8_t *buf, size_t n, int *height, int *width,
                 int *channels, char *msg) {
  j_decompress_ptr ci = &ctx->cinfo;
  reset_err(ctx, 0);
  if (n == 0) {
    set_msg(msg, "empty buffer");
    return DL_ERR_FORMAT;
  }
  if (setjmp(ctx->jerr.jb)) {
    jpeg_abort_decompress(ci);
    set_msg(msg, ctx->jerr.msg);
    return DL_ERR_CORRUPT;
  }
  jpeg_mem_src(ci, buf, (unsigned long)n);
  if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "JPEG holds tables only, no image");
    return DL_ERR_CORRUPT;
  }
  *height = (int)ci->image_height;
  *width = (int)ci->image_width;
  *channels = natural_channels(ci);
  jpeg_abort_decompress(ci);
  if (dl_check_pixels(ci->image_height, ci->image_width, msg) != DL_OK) return DL_ERR_TOOBIG;
  if (*channels == 0) {
    set_msg(msg, "unsupported JPEG colour space");
    return DL_ERR_UNSUPPORTED;
  }
  if (msg) msg[0] = 0;
  return DL_OK;
}

int dl_jpeg_decode(dl_ctx *ctx, const uint8_t *buf, size_t n, uint8_t *out, int h, int w, int c,
                   int strict, char *msg) {
  j_decompress_ptr ci = &ctx->cinfo;
  int nat, convert, comps, k, i, got;
  uint8_t *cmyk = NULL;
  JSAMPROW rows[16];
  size_t rowbytes = (size_t)w * (size_t)c;

  reset_err(ctx, strict);
  if (n == 0) {
    set_msg(msg, "empty buffer");
    return DL_ERR_FORMAT;
  }
  if (h <= 0 || w <= 0) {
    set_msg(msg, "output buffer has a zero dimension");
    return DL_ERR_SHAPE;
  }
  if (setjmp(ctx->jerr.jb)) {
    jpeg_abort_decompress(ci);
    set_msg(msg, ctx->jerr.msg);
    return ctx->jerr.was_warning ? DL_ERR_WARNING : DL_ERR_CORRUPT;
  }
  jpeg_mem_src(ci, buf, (unsigned long)n);
  if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "JPEG holds tables only, no image");
    return DL_ERR_CORRUPT;
  }
  if (dl_check_pixels(ci->image_height, ci->image_width, msg) != DL_OK) {
    jpeg_abort_decompress(ci);
    return DL_ERR_TOOBIG;
  }
  nat = natural_channels(ci);
  if (nat == 0) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "unsupported JPEG colour space");
    return DL_ERR_UNSUPPORTED;
  }
  if (ci->image_height != (JDIMENSION)h || ci->image_width != (JDIMENSION)w) {
    if (msg)
      snprintf(msg, DL_MSG_LEN, "JPEG header says %ux%ux%d but the output is %dx%dx%d",
               (unsigned)ci->image_height, (unsigned)ci->image_width, nat, h, w, c);
    jpeg_abort_decompress(ci);
    return DL_ERR_SHAPE;
  }
  comps = choose_space(ci, nat, c, &convert);
  if (comps == 0) {
    if (msg)
      snprintf(msg, DL_MSG_LEN, "cannot decode a %d-channel JPEG into %d channels", nat, c);
    jpeg_abort_decompress(ci);
    return DL_ERR_UNSUPPORTED;
  }
  if (convert) {
    cmyk = (uint8_t *)dl_ctx_scratch(ctx, 0, (size_t)w * 4);
    if (!cmyk) {
      jpeg_abort_decompress(ci);
      set_msg(msg, "out of memory");
      return DL_ERR_NOMEM;
    }
  }
  ci->dct_method = JDCT_ISLOW;
  ci->scale_num = 1;
  ci->scale_denom = 1;
  jpeg_start_decompress(ci);
  if (ci->output_height != (JDIMENSION)h || ci->output_width != (JDIMENSION)w ||
      ci->output_components != comps) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "JPEG output geometry does not match the output buffer");
    return DL_ERR_SHAPE;
  }
  while (ci->output_scanline < ci->output_height) {
    unsigned y = ci->output_scanline;
    if (convert) {
      rows[0] = cmyk;
      k = 1;
    } else {
      k = (int)(ci->output_height - y);
      if (k > 16) k = 16;
      for (i = 0; i < k; i++) rows[i] = out + (size_t)(y + i) * rowbytes;
    }
    got = (int)jpeg_read_scanlines(ci, rows, (JDIMENSION)k);
    if (got <= 0) {
      jpeg_abort_decompress(ci);
      set_msg(msg, "JPEG decoder made no progress");
      return DL_ERR_CORRUPT;
    }
    if (convert) {
      invert(cmyk, (size_t)w * 4);
      dl_cmyk_to_rgb(cmyk, out + (size_t)y * rowbytes, (size_t)w);
    } else if (c == 4) {
      invert(out + (size_t)y * rowbytes, (size_t)got * rowbytes);
    }
  }
  if (strict)
    jpeg_finish_decompress(ci);
  else
    jpeg_abort_decompress(ci);
  return finish_status(ctx, msg);
}

int dl_jpeg_pick_scale(int crop_h, int crop_w, int th, int tw) {
  int s;
  for (s = 1; s < 8; s *= 2)
    if ((int64_t)crop_h * s >= (int64_t)th * 8 && (int64_t)crop_w * s >= (int64_t)tw * 8) return s;
  return 8;
}

int dl_jpeg_decode_crop(dl_ctx *ctx, const uint8_t *buf, size_t n, const int64_t *box, int th,
                        int tw, int flip, uint8_t *out, int c, int strict, char *msg) {
  int64_t lim[4] = {box[0], box[1], box[0] + box[2], box[1] + box[3]};
  double fbox[4] = {(double)lim[0], (double)lim[1], (double)lim[2], (double)lim[3]};
  return dl_jpeg_decode_view(ctx, buf, n, fbox, lim, th, tw, flip, out, c, strict, 1,
                             DL_ORDER_HFIRST, msg);
}

int dl_view_vertical_first(int order, const double *box, const int64_t *lim, int th, int tw) {
  /* the whole resize the view is a window of: the limits to (limits / box) x the output */
  int in_h = (int)(lim[2] - lim[0]), in_w = (int)(lim[3] - lim[1]);
  int out_h = (int)lround((double)in_h * th / (box[2] - box[0]));
  int out_w = (int)lround((double)in_w * tw / (box[3] - box[1]));
  return dl_resample_vertical_first(order, in_h, in_w, out_h, out_w);
}

/* The scaled-domain rows (or columns) [*a, *b) a view needs: the box [f0, f1) widened by the
 * filter's support (sup output pixels) and one pixel, kept inside the limits [l0, l1). */
static void view_span(double f0, double f1, int l0, int l1, double sup, int *a, int *b) {
  int lo = (int)floor(f0 - sup) - 1, hi = (int)ceil(f1 + sup) + 1;
  *a = lo < l0 ? l0 : lo;
  *b = hi > l1 ? l1 : hi;
}

int dl_jpeg_decode_view(dl_ctx *ctx, const uint8_t *buf, size_t n, const double *box,
                        const int64_t *lim, int th, int tw, int flip, uint8_t *out, int c,
                        int strict, int dct, int order, char *msg) {
  j_decompress_ptr ci = &ctx->cinfo;
  int nat, convert, comps, s, status;
  double y0 = box[0], x0 = box[1], y1 = box[2], x1 = box[3];
  int64_t H, W;
  double f, fy0, fy1, fx0, fx1;
  int ly0, ly1, lx0, lx1, ny0, ny1, nx0, nx1;
  int ya, yb, xa, xb, OH, OW;
  JDIMENSION xoff, cw;
  size_t rowbytes, y;
  uint8_t *region;
  JSAMPROW row;

  reset_err(ctx, strict);
  if (n == 0) {
    set_msg(msg, "empty buffer");
    return DL_ERR_FORMAT;
  }
  if (th <= 0 || tw <= 0) {
    set_msg(msg, "target size must be positive");
    return DL_ERR_SHAPE;
  }
  if (setjmp(ctx->jerr.jb)) {
    jpeg_abort_decompress(ci);
    set_msg(msg, ctx->jerr.msg);
    return ctx->jerr.was_warning ? DL_ERR_WARNING : DL_ERR_CORRUPT;
  }
  jpeg_mem_src(ci, buf, (unsigned long)n);
  if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "JPEG holds tables only, no image");
    return DL_ERR_CORRUPT;
  }
  H = ci->image_height;
  W = ci->image_width;
  if (dl_check_pixels((uint64_t)H, (uint64_t)W, msg) != DL_OK) {
    jpeg_abort_decompress(ci);
    return DL_ERR_TOOBIG;
  }
  /* limits inside the image, the box inside the limits (NaN fails every comparison) */
  if (!(0 <= lim[0] && lim[0] < lim[2] && lim[2] <= H && 0 <= lim[1] && lim[1] < lim[3] &&
        lim[3] <= W) ||
      !(lim[0] <= y0 && y0 < y1 && y1 <= lim[2] && lim[1] <= x0 && x0 < x1 && x1 <= lim[3])) {
    if (msg)
      snprintf(msg, DL_MSG_LEN,
               "crop box (y=%g..%g, x=%g..%g) in limits (y=%lld..%lld, x=%lld..%lld) outside the "
               "%lldx%lld image", y0, y1, x0, x1, (long long)lim[0], (long long)lim[2],
               (long long)lim[1], (long long)lim[3], (long long)H, (long long)W);
    jpeg_abort_decompress(ci);
    return DL_ERR_BOX;
  }
  nat = natural_channels(ci);
  comps = nat ? choose_space(ci, nat, c, &convert) : 0;
  if (comps == 0) {
    if (msg)
      snprintf(msg, DL_MSG_LEN, "cannot decode a %d-channel JPEG into %d channels", nat, c);
    jpeg_abort_decompress(ci);
    return DL_ERR_UNSUPPORTED;
  }
  s = dct < 1 ? 8 : dl_jpeg_pick_scale((int)floor(y1 - y0), (int)floor(x1 - x0), th * dct, tw * dct);
  ci->dct_method = JDCT_ISLOW;
  ci->scale_num = (unsigned)s;
  ci->scale_denom = 8;
  jpeg_start_decompress(ci);
  OH = (int)ci->output_height;
  OW = (int)ci->output_width;
  f = (double)s / 8.0;
  fy0 = y0 * f;
  fy1 = y1 * f;
  fx0 = x0 * f;
  fx1 = x1 * f;
  if (fy1 > OH) fy1 = OH;
  if (fx1 > OW) fx1 = OW;
  /* the limits in the scaled image */
  ly0 = (int)floor((double)lim[0] * f);
  lx0 = (int)floor((double)lim[1] * f);
  ly1 = (int)ceil((double)lim[2] * f);
  lx1 = (int)ceil((double)lim[3] * f);
  if (ly1 > OH) ly1 = OH;
  if (lx1 > OW) lx1 = OW;
  if (fy0 < ly0 || fx0 < lx0 || !(fy0 < fy1) || !(fx0 < fx1) || ly0 >= ly1 || lx0 >= lx1) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "the scaled crop box is empty");
    return DL_ERR_BOX;
  }
  /* the pixels the filter reads, then one extra pixel on each side: edge pixels of the region
   * then see the same neighbours (chroma upsampling context) as in a full decode */
  view_span(fy0, fy1, ly0, ly1, (fy1 - fy0) / th < 1.0 ? 1.0 : (fy1 - fy0) / th, &ny0, &ny1);
  view_span(fx0, fx1, lx0, lx1, (fx1 - fx0) / tw < 1.0 ? 1.0 : (fx1 - fx0) / tw, &nx0, &nx1);
  ya = ny0 - 1;
  if (ya < 0) ya = 0;
  yb = ny1 + 1;
  if (yb > OH) yb = OH;
  xa = nx0 - 1;
  if (xa < 0) xa = 0;
  xb = nx1 + 1;
  if (xb > OW) xb = OW;
  xoff = (JDIMENSION)xa;
  cw = (JDIMENSION)(xb - xa);
  if (xoff > 0 || (int)cw < OW) jpeg_crop_scanline(ci, &xoff, &cw); /* may widen to an iMCU */
  if ((int)xoff > xa || (int)(xoff + cw) < xb) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "jpeg_crop_scanline returned a narrower range");
    return DL_ERR_CORRUPT;
  }
  rowbytes = (size_t)cw * (size_t)comps;
  region = (uint8_t *)dl_ctx_scratch(ctx, 1, rowbytes * (size_t)(yb - ya));
  if (!region) {
    jpeg_abort_decompress(ci);
    set_msg(msg, "out of memory");
    return DL_ERR_NOMEM;
  }
  if (ya > 0) jpeg_skip_scanlines(ci, (JDIMENSION)ya);
  while ((int)ci->output_scanline < yb) {
    y = ci->output_scanline;
    if ((int)y < ya) { /* skip_scanlines skipped fewer rows than asked: read and drop */
      row = region;
    } else {
      row = region + (y - (size_t)ya) * rowbytes;
    }
    if (jpeg_read_scanlines(ci, &row, 1) != 1) {
      jpeg_abort_decompress(ci);
      set_msg(msg, "JPEG decoder made no progress");
      return DL_ERR_CORRUPT;
    }
  }
  if (strict && yb == OH && ci->output_scanline == ci->output_height)
    jpeg_finish_decompress(ci);
  else
    jpeg_abort_decompress(ci);
  if (convert) {
    for (y = 0; y < (size_t)(yb - ya); y++) {
      uint8_t *r = region + y * rowbytes;
      invert(r, (size_t)cw * 4);
      dl_cmyk_to_rgb(r, r, (size_t)cw); /* in place: writes never overtake reads */
    }
  } else if (c == 4) {
    invert(region, rowbytes * (size_t)(yb - ya));
  }
  status = dl_resample_bilinear_in(ctx, region, yb - ya, (int)cw, rowbytes, c, fy0 - ya,
                                   fx0 - xoff, fy1 - ya, fx1 - xoff, ny0 - ya, nx0 - (int)xoff,
                                   ny1 - ya, nx1 - (int)xoff, out, th, tw, flip, 0,
                                   dl_view_vertical_first(order, box, lim, th, tw));
  if (status != DL_OK) {
    set_msg(msg, status == DL_ERR_NOMEM ? "out of memory" : "crop box outside the decoded region");
    return status;
  }
  return finish_status(ctx, msg);
}
