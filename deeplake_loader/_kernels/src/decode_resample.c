/* Pillow-compatible antialiased bilinear resampling; see decode_resample.h for the contract.
 *
 * Two passes like Pillow: each needed source row is resampled horizontally into an 8-bit
 * temporary (rows yfirst..ylast only), then each output row is a weighted sum of temporary
 * rows. The AVX2 versions of the row functions do the same integer sums in vector lanes:
 * four taps of one output pixel's channels per vpmaddwd (two pixels per step) for the
 * horizontal pass, 32 bytes of an output row for the vertical pass. */
#include "decode_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DL_X86_SIMD 1
#include <immintrin.h>
#endif

#define DL_PRECISION_BITS (32 - 8 - 2)

static double tri(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

static int ksize_for(double lo, double hi, int outsz) {
  double scale = (hi - lo) / outsz;
  double fs = scale < 1.0 ? 1.0 : scale;
  return (int)ceil(fs) * 2 + 1;
}

/* Coefficients for outsz outputs over [lo, hi); source pixels limited to [lim0, lim1). Same
 * arithmetic as Pillow's precompute_coeffs on the image [lim0, lim1) resized with box
 * (lo - lim0, hi - lim0): lim = [floor(lo), ceil(hi)) is resizing a crop, lim = the whole
 * image is a window of a resize of the whole image. */
static void coeffs(double lo, double hi, int lim0, int lim1, int outsz, int ksize, int *bounds,
                   int32_t *kk, double *tmp) {
  int base = lim0;
  double frac = lo - base;
  int insz = lim1 - base;
  double scale = (hi - lo) / outsz;
  double fs = scale < 1.0 ? 1.0 : scale;
  double support = fs, ss = 1.0 / fs, center, ww, v;
  int xx, x, xmin, xmax;
  if (insz < 1) insz = 1;
  for (xx = 0; xx < outsz; xx++) {
    center = frac + (xx + 0.5) * scale;
    xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmin > insz - 1) xmin = insz - 1;
    xmax = (int)(center + support + 0.5);
    if (xmax > insz) xmax = insz;
    xmax -= xmin;
    if (xmax > ksize) xmax = ksize;
    if (xmax < 1) xmax = 1;
    ww = 0.0;
    for (x = 0; x < xmax; x++) {
      v = tri((x + xmin - center + 0.5) * ss);
      tmp[x] = v;
      ww += v;
    }
    for (x = 0; x < xmax; x++) {
      v = ww != 0.0 ? tmp[x] / ww : tmp[x];
      kk[xx * ksize + x] = (int32_t)(v < 0 ? -0.5 + v * (1 << DL_PRECISION_BITS)
                                           : 0.5 + v * (1 << DL_PRECISION_BITS));
    }
    for (; x < ksize; x++) kk[xx * ksize + x] = 0;
    bounds[2 * xx] = xmin + base;
    bounds[2 * xx + 1] = xmax;
  }
}

static inline uint8_t clip8(int32_t v) {
  v >>= DL_PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

/* One output pixel of the horizontal pass: taps source pixels from p weighted by k. */
static inline __attribute__((always_inline)) void hpix(const uint8_t *p, const int32_t *k, int taps,
                                                       int c, uint8_t *o) {
  int x, ch;
  int32_t ss[4];
  if (c <= 4) {
    for (ch = 0; ch < c; ch++) ss[ch] = 1 << (DL_PRECISION_BITS - 1);
    for (x = 0; x < taps; x++)
      for (ch = 0; ch < c; ch++) ss[ch] += (int32_t)p[(size_t)x * c + ch] * k[x];
    for (ch = 0; ch < c; ch++) o[ch] = clip8(ss[ch]);
  } else {
    for (ch = 0; ch < c; ch++) {
      int32_t s1 = 1 << (DL_PRECISION_BITS - 1);
      for (x = 0; x < taps; x++) s1 += (int32_t)p[(size_t)x * c + ch] * k[x];
      o[ch] = clip8(s1);
    }
  }
}

/* One output row of the horizontal pass; inlined with a constant c for 1, 3 and 4 channels. */
static inline __attribute__((always_inline)) void hrow(const uint8_t *row, uint8_t *trow, int tw,
                                                       int c, const int *bh, const int32_t *kkh,
                                                       int kh) {
  int xx;
  for (xx = 0; xx < tw; xx++)
    hpix(row + (size_t)bh[2 * xx] * c, kkh + (size_t)xx * kh, bh[2 * xx + 1], c,
         trow + (size_t)xx * c);
}

/* Horizontal pass row for images with alpha last (LA, RGBA): colour channels are premultiplied
 * by alpha on the fly exactly like Pillow's RGBA -> RGBa conversion (MULDIV255). */
static void hrow_alpha(const uint8_t *row, uint8_t *trow, int tw, int c, const int *bh,
                       const int32_t *kkh, int kh) {
  int xx, x, ch, xmin, xmax, t;
  int32_t ss[4];
  const int32_t *k;
  for (xx = 0; xx < tw; xx++) {
    xmin = bh[2 * xx];
    xmax = bh[2 * xx + 1];
    k = kkh + (size_t)xx * kh;
    const uint8_t *p = row + (size_t)xmin * c;
    for (ch = 0; ch < c; ch++) ss[ch] = 1 << (DL_PRECISION_BITS - 1);
    for (x = 0; x < xmax; x++) {
      const uint8_t *px = p + (size_t)x * c;
      int a = px[c - 1];
      for (ch = 0; ch < c - 1; ch++) {
        t = px[ch] * a + 128;
        ss[ch] += (int32_t)(((t >> 8) + t) >> 8) * k[x];
      }
      ss[c - 1] += (int32_t)a * k[x];
    }
    for (ch = 0; ch < c; ch++) trow[(size_t)xx * c + ch] = clip8(ss[ch]);
  }
}


/* One output row of the vertical pass: bytes 0..n-1, each the sum over taps of temp rows
 * first..first+taps-1 (stride bytes apart) weighted by k. */
static void vrow(const uint8_t *temp, size_t stride, size_t n, int first, int taps,
                 const int32_t *k, int32_t *acc, uint8_t *orow) {
  size_t i;
  int x;
  for (i = 0; i < n; i++) acc[i] = 1 << (DL_PRECISION_BITS - 1);
  for (x = 0; x < taps; x++) {
    const uint8_t *trow = temp + (size_t)(x + first) * stride;
    int32_t kx = k[x];
    for (i = 0; i < n; i++) acc[i] += (int32_t)trow[i] * kx;
  }
  for (i = 0; i < n; i++) orow[i] = clip8(acc[i]);
}

#ifdef DL_X86_SIMD
#define DL_AVX2 __attribute__((target("avx2")))

/* Round, shift and saturate one pixel's 4 int32 sums to 4 bytes (clip8 on each lane). */
DL_AVX2 static inline uint32_t pack_pixel(__m128i s) {
  s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(1 << (DL_PRECISION_BITS - 1))),
                     DL_PRECISION_BITS);
  s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
  return (uint32_t)_mm_cvtsi128_si32(s);
}

/* The horizontal pass in AVX2 works on 16-bit lanes with vpmaddwd, which multiplies pairs of
 * int16 and adds them. A 22-bit coefficient does not fit in 16 bits, so each is split as
 * k = hi * 2^11 + lo (lo in 0..2047) and the pixel sums become (sum p*hi) * 2^11 + sum p*lo:
 * the same integers as the 32-bit scalar sums. kk16 holds, per output pixel and per group of
 * 4 taps, a vector of hi parts then a vector of lo parts, laid out to match the shuffled pixels:
 * 128-bit lane 0 = taps 0 and 1 interleaved per channel, lane 1 = taps 2 and 3. */
#define DL_SPLIT_BITS 11

static void split_coeffs(const int32_t *kkh, int kh, int tw, int ng, int16_t *kk16) {
  int xx, g, lane, j, ch, t;
  for (xx = 0; xx < tw; xx++)
    for (g = 0; g < ng; g++) {
      int16_t *hi = kk16 + ((size_t)xx * ng + g) * 32, *lo = hi + 16;
      for (lane = 0; lane < 2; lane++)
        for (j = 0; j < 2; j++) {
          t = 4 * g + 2 * lane + j;
          int32_t k = t < kh ? kkh[(size_t)xx * kh + t] : 0;
          for (ch = 0; ch < 4; ch++) {
            hi[lane * 8 + ch * 2 + j] = (int16_t)(k >> DL_SPLIT_BITS);
            lo[lane * 8 + ch * 2 + j] = (int16_t)(k & ((1 << DL_SPLIT_BITS) - 1));
          }
        }
    }
}

/* Sum of one output pixel's tap groups: 8 int32 lanes, channel sums of taps 0-1 in the low
 * 128 bits and of taps 2-3 in the high 128 bits (to be added together). */
DL_AVX2 static inline __attribute__((always_inline)) __m256i hsum_avx2(const uint8_t *p, int c,
                                                                      const int16_t *kv, int ng,
                                                                      __m256i sh) {
  __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
  int g;
  for (g = 0; g < ng; g++) {
    __m256i v = _mm256_shuffle_epi8(
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + (size_t)g * 4 * c))), sh);
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *)(kv + 32 * g))));
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *)(kv + 32 * g + 16))));
  }
  return _mm256_add_epi32(_mm256_slli_epi32(hi, DL_SPLIT_BITS), lo);
}

/* Horizontal row, 3 or 4 channels (c is a constant after inlining). Group g loads the 16 bytes
 * at tap 4g (for RGB that is 4 pixels and 4 bytes of the next one) into both 128-bit lanes and
 * shuffles pixel bytes into int16 channel pairs. Output pixels from nsafe on would load past
 * the end of the row (the box reaches the right edge) and take the portable path. Two output
 * pixels per step share the final lane sums, rounding and packing. */
DL_AVX2 static inline __attribute__((always_inline)) void hrow_avx2(
    const uint8_t *row, uint8_t *trow, int tw, int nsafe, int c, const int *bh,
    const int32_t *kkh, int kh, const int16_t *kk16, int ng) {
  const __m256i sh = c == 3 ? _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1,
                                               -1, -1, 6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1,
                                               -1, -1, -1, -1)
                            : _mm256_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7,
                                               -1, 8, -1, 12, -1, 9, -1, 13, -1, 10, -1, 14, -1,
                                               11, -1, 15, -1);
  const __m256i half = _mm256_set1_epi32(1 << (DL_PRECISION_BITS - 1));
  int xx = 0;
  uint32_t px;
  for (; xx + 1 < nsafe; xx += 2) {
    __m256i a = hsum_avx2(row + (size_t)bh[2 * xx] * c, c, kk16 + (size_t)xx * ng * 32, ng, sh);
    __m256i b = hsum_avx2(row + (size_t)bh[2 * xx + 2] * c, c, kk16 + (size_t)(xx + 1) * ng * 32,
                          ng, sh);
    /* [a taps 0-1 | b taps 0-1] + [a taps 2-3 | b taps 2-3] = [a | b] */
    __m256i t = _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                                 _mm256_permute2x128_si256(a, b, 0x31));
    t = _mm256_srai_epi32(_mm256_add_epi32(t, half), DL_PRECISION_BITS);
    t = _mm256_packus_epi16(_mm256_packs_epi32(t, t), t);
    px = (uint32_t)_mm256_cvtsi256_si32(t);
    memcpy(trow + (size_t)xx * c, &px, (size_t)c);
    px = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(t, 1));
    memcpy(trow + (size_t)(xx + 1) * c, &px, (size_t)c);
  }
  for (; xx < nsafe; xx++) {
    __m256i s = hsum_avx2(row + (size_t)bh[2 * xx] * c, c, kk16 + (size_t)xx * ng * 32, ng, sh);
    px = pack_pixel(_mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
    memcpy(trow + (size_t)xx * c, &px, (size_t)c);
  }
  for (; xx < tw; xx++)
    hpix(row + (size_t)bh[2 * xx] * c, kkh + (size_t)xx * kh, bh[2 * xx + 1], c,
         trow + (size_t)xx * c);
}

DL_AVX2 static void hrow3_avx2(const uint8_t *row, uint8_t *trow, int tw, int nsafe,
                               const int *bh, const int32_t *kkh, int kh, const int16_t *kk16,
                               int ng) {
  hrow_avx2(row, trow, tw, nsafe, 3, bh, kkh, kh, kk16, ng);
}

DL_AVX2 static void hrow4_avx2(const uint8_t *row, uint8_t *trow, int tw, int nsafe,
                               const int *bh, const int32_t *kkh, int kh, const int16_t *kk16,
                               int ng) {
  hrow_avx2(row, trow, tw, nsafe, 4, bh, kkh, kh, kk16, ng);
}

/* Vertical row: 32 output bytes per step held in four 8-lane accumulators across all taps. */
DL_AVX2 static void vrow_avx2(const uint8_t *temp, size_t stride, size_t n, int first, int taps,
                              const int32_t *k, int32_t *acc, uint8_t *orow) {
  const __m256i half = _mm256_set1_epi32(1 << (DL_PRECISION_BITS - 1));
  size_t i = 0;
  int x;
  for (; i + 32 <= n; i += 32) {
    __m256i a0 = half, a1 = half, a2 = half, a3 = half;
    for (x = 0; x < taps; x++) {
      const uint8_t *t = temp + (size_t)(x + first) * stride + i;
      __m256i kv = _mm256_set1_epi32(k[x]);
      __m128i lo = _mm_loadu_si128((const __m128i *)t);
      __m128i hi = _mm_loadu_si128((const __m128i *)(t + 16));
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(lo), kv));
      a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), kv));
      a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(hi), kv));
      a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), kv));
    }
    a0 = _mm256_srai_epi32(a0, DL_PRECISION_BITS);
    a1 = _mm256_srai_epi32(a1, DL_PRECISION_BITS);
    a2 = _mm256_srai_epi32(a2, DL_PRECISION_BITS);
    a3 = _mm256_srai_epi32(a3, DL_PRECISION_BITS);
    /* packs/packus work within 128-bit lanes; the 64-bit permutes restore byte order */
    __m256i w01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
    __m256i w23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a2, a3), 0xD8);
    __m256i b = _mm256_permute4x64_epi64(_mm256_packus_epi16(w01, w23), 0xD8);
    _mm256_storeu_si256((__m256i *)(orow + i), b);
  }
  if (i < n) vrow(temp + i, stride, n - i, first, taps, k, acc, orow + i);
}
#endif

static int simd_wanted = 1;

static int simd_on(void) {
#ifdef DL_X86_SIMD
  __builtin_cpu_init();
  return simd_wanted && __builtin_cpu_supports("avx2");
#else
  return 0;
#endif
}

int dl_resample_use_simd(int on) {
  simd_wanted = on != 0;
  return simd_on();
}

static int lim_hi(double hi, int limit) {
  int v = (int)ceil(hi);
  return v > limit ? limit : v;
}

int dl_resample_bilinear(dl_ctx *ctx, const uint8_t *src, int sh, int sw, size_t sstride, int c,
                         double y0, double x0, double y1, double x1, uint8_t *out, int th, int tw,
                         int flip, int alpha) {
  return dl_resample_bilinear_in(ctx, src, sh, sw, sstride, c, y0, x0, y1, x1, (int)floor(y0),
                                 (int)floor(x0), lim_hi(y1, sh), lim_hi(x1, sw), out, th, tw, flip,
                                 alpha, 0);
}

int dl_resample_vertical_first(int order, int in_h, int in_w, int out_h, int out_w) {
  if (order != DL_ORDER_PILLOW13) return 0;
  return out_h < in_h && (int64_t)(in_h - out_h) > 2 * (int64_t)(in_w - out_w);
}

/* One output row of the horizontal pass, any channel count, the row code chosen as the
 * horizontal-first path chooses it. */
static inline void hrow_any(const uint8_t *row, uint8_t *trow, int tw, int nsafe, int c,
                            const int *bh, const int32_t *kkh, int kh, const int16_t *kk16, int ng) {
#ifdef DL_X86_SIMD
  if (kk16) {
    if (c == 3)
      hrow3_avx2(row, trow, tw, nsafe, bh, kkh, kh, kk16, ng);
    else
      hrow4_avx2(row, trow, tw, nsafe, bh, kkh, kh, kk16, ng);
    return;
  }
#else
  (void)nsafe;
  (void)kk16;
  (void)ng;
#endif
  switch (c) {
    case 1: hrow(row, trow, tw, 1, bh, kkh, kh); break;
    case 3: hrow(row, trow, tw, 3, bh, kkh, kh); break;
    case 4: hrow(row, trow, tw, 4, bh, kkh, kh); break;
    default: hrow(row, trow, tw, c, bh, kkh, kh); break;
  }
}

int dl_resample_bilinear_in(dl_ctx *ctx, const uint8_t *src, int sh, int sw, size_t sstride, int c,
                            double y0, double x0, double y1, double x1, int ly0, int lx0, int ly1,
                            int lx1, uint8_t *out, int th, int tw, int flip, int alpha,
                            int vfirst) {
  int kh = ksize_for(x0, x1, tw), kv = ksize_for(y0, y1, th);
  int kmax = kh > kv ? kh : kv;
  int ng = 0, nsafe = 0; /* AVX2 horizontal pass: 4-tap groups; outputs whose loads fit */
  size_t need = ((size_t)tw * kh + (size_t)th * kv) * sizeof(int32_t) +
                ((size_t)tw + th) * 2 * sizeof(int) + (size_t)kmax * sizeof(double) + 8;
  char *mem = (char *)dl_ctx_scratch(ctx, 2, need);
  int32_t *kkh, *kkv;
  int *bh, *bv;
  double *tmp;
  int yfirst, ylast, yy, xx, ch, ox, simd = simd_on(), xfirst = 0, rowlen = sw;
  int16_t *kk16 = NULL;
  size_t n;
  uint8_t *temp, *rowbuf;
  int32_t *acc;
  if (!(0 <= ly0 && ly0 < ly1 && ly1 <= sh && 0 <= lx0 && lx0 < lx1 && lx1 <= sw) ||
      !(ly0 <= y0 && y0 < y1 && y1 <= ly1 && lx0 <= x0 && x0 < x1 && x1 <= lx1) || th < 1 ||
      tw < 1 || c < 1)
    return DL_ERR_BOX;
  if (!mem) return DL_ERR_NOMEM;
  alpha = alpha && (c == 2 || c == 4);
  if (x0 == floor(x0) && y0 == floor(y0) && x1 - x0 == tw && y1 - y0 == th) {
    /* same size: Pillow returns a copy (no resampling, no alpha premultiplication) */
    for (yy = 0; yy < th; yy++) {
      const uint8_t *srow = src + (size_t)(yy + (int)y0) * sstride + (size_t)x0 * c;
      uint8_t *orow = out + (size_t)yy * tw * c;
      if (!flip) {
        memcpy(orow, srow, (size_t)tw * c);
      } else {
        for (xx = 0; xx < tw; xx++) memcpy(orow + (size_t)(tw - 1 - xx) * c, srow + (size_t)xx * c, c);
      }
    }
    return DL_OK;
  }
  kkh = (int32_t *)mem;
  kkv = kkh + (size_t)tw * kh;
  bh = (int *)(kkv + (size_t)th * kv);
  bv = bh + 2 * (size_t)tw;
  tmp = (double *)(((uintptr_t)(bv + 2 * (size_t)th) + 7) & ~(uintptr_t)7); /* within the +8 */
  coeffs(x0, x1, lx0, lx1, tw, kh, bh, kkh, tmp);
  coeffs(y0, y1, ly0, ly1, th, kv, bv, kkv, tmp);
  vfirst = vfirst && !alpha; /* premultiplied alpha rows are resampled horizontally first */
  if (vfirst) { /* the horizontal pass then reads columns xfirst..xlast of the vertical pass' rows */
    xfirst = bh[0];
    rowlen = bh[2 * (tw - 1)] + bh[2 * (tw - 1) + 1] - xfirst;
    for (xx = 0; xx < tw; xx++) bh[2 * xx] -= xfirst;
  }
#ifdef DL_X86_SIMD
  if (simd && !alpha && (c == 3 || c == 4)) {
    int most = 1;
    for (xx = 0; xx < tw; xx++)
      if (bh[2 * xx + 1] > most) most = bh[2 * xx + 1];
    ng = (most + 3) / 4;
    kk16 = (int16_t *)dl_ctx_scratch(ctx, 4, (size_t)tw * ng * 32 * sizeof(int16_t));
    if (!kk16) return DL_ERR_NOMEM;
    split_coeffs(kkh, kh, tw, ng, kk16);
    /* xmin never decreases, so the outputs whose vector loads stay in the row are a prefix.
     * RGB loads read 4 bytes past the last of the 4 * ng pixels. */
    while (nsafe < tw &&
           (size_t)(bh[2 * nsafe] + 4 * ng) * c + (c == 3 ? 4 : 0) <= (size_t)rowlen * c)
      nsafe++;
  }
#endif
  if (vfirst) {
    /* Pillow >= 13's order when the height shrinks much more than the width: each output row
     * is first a weighted sum of source rows (columns xfirst..xlast only), then resampled
     * horizontally, flipped on write. */
    size_t nin = (size_t)rowlen * c;
    n = (size_t)tw * c;
    temp = (uint8_t *)dl_ctx_scratch(ctx, 3, (size_t)th * nin);
    if (!temp) return DL_ERR_NOMEM;
    acc = (int32_t *)dl_ctx_scratch(ctx, 0, nin * sizeof(int32_t) + n);
    if (!acc) return DL_ERR_NOMEM;
    rowbuf = (uint8_t *)(acc + nin);
    for (yy = 0; yy < th; yy++) {
      const uint8_t *base = src + (size_t)xfirst * c;
      const int32_t *k = kkv + (size_t)yy * kv;
#ifdef DL_X86_SIMD
      if (simd)
        vrow_avx2(base, sstride, nin, bv[2 * yy], bv[2 * yy + 1], k, acc, temp + (size_t)yy * nin);
      else
#endif
        vrow(base, sstride, nin, bv[2 * yy], bv[2 * yy + 1], k, acc, temp + (size_t)yy * nin);
    }
    for (yy = 0; yy < th; yy++) {
      uint8_t *orow = out + (size_t)yy * n;
      uint8_t *dst = flip ? rowbuf : orow;
      hrow_any(temp + (size_t)yy * nin, dst, tw, nsafe, c, bh, kkh, kh, kk16, ng);
      if (flip)
        for (xx = 0; xx < tw; xx++)
          memcpy(orow + (size_t)(tw - 1 - xx) * c, rowbuf + (size_t)xx * c, (size_t)c);
    }
    return DL_OK;
  }
  yfirst = bv[0];
  ylast = bv[2 * (th - 1)] + bv[2 * (th - 1) + 1];
  n = (size_t)tw * c;
  temp = (uint8_t *)dl_ctx_scratch(ctx, 3, (size_t)(ylast - yfirst) * n);
  if (!temp) return DL_ERR_NOMEM;
  /* acc: n sums, then one output row for the flipped write */
  acc = (int32_t *)dl_ctx_scratch(ctx, 0, n * sizeof(int32_t) + n);
  if (!acc) return DL_ERR_NOMEM;
  rowbuf = (uint8_t *)(acc + n);
  /* horizontal pass over the rows the vertical pass needs */
  for (yy = yfirst; yy < ylast; yy++) {
    const uint8_t *row = src + (size_t)yy * sstride;
    uint8_t *trow = temp + (size_t)(yy - yfirst) * n;
    if (alpha)
      hrow_alpha(row, trow, tw, c, bh, kkh, kh);
    else
      hrow_any(row, trow, tw, nsafe, c, bh, kkh, kh, kk16, ng);
  }
  /* vertical pass, optional left-right flip on write */
  for (yy = 0; yy < th; yy++) {
    int first = bv[2 * yy] - yfirst, taps = bv[2 * yy + 1];
    const int32_t *k = kkv + (size_t)yy * kv;
    uint8_t *orow = out + (size_t)yy * n;
    uint8_t *dst = flip ? rowbuf : orow;
    if (alpha) { /* un-premultiply like Pillow's RGBa -> RGBA / La -> LA */
      vrow(temp, n, n, first, taps, k, acc, dst);
      for (xx = 0; xx < tw; xx++) {
        uint8_t *px = dst + (size_t)xx * c;
        int a = px[c - 1];
        if (a == 255 || a == 0) continue;
        for (ch = 0; ch < c - 1; ch++) {
          int v = (255 * px[ch]) / a;
          px[ch] = (uint8_t)(v > 255 ? 255 : v);
        }
      }
    } else {
#ifdef DL_X86_SIMD
      if (simd)
        vrow_avx2(temp, n, n, first, taps, k, acc, dst);
      else
#endif
        vrow(temp, n, n, first, taps, k, acc, dst);
    }
    if (flip) {
      for (xx = 0; xx < tw; xx++) {
        ox = tw - 1 - xx;
        memcpy(orow + (size_t)ox * c, rowbuf + (size_t)xx * c, (size_t)c);
      }
    }
  }
  return DL_OK;
}
