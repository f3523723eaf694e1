# Batch JPEG/PNG decode kernels. The C helpers live in src/decode_jpeg.c, src/decode_png.c and
# src/decode_resample.c and src/decode_layout.c; every function below is nogil and reports failure through its int
# status (never raises).
from libc.stdint cimport uint8_t, int64_t, uint64_t

cdef extern from "decode_jpeg.h" nogil:
    enum:
        DL_MSG_LEN
        DL_OK
        DL_WARNED
        DL_ERR_CORRUPT
        DL_ERR_WARNING
        DL_ERR_SHAPE
        DL_ERR_UNSUPPORTED
        DL_ERR_NOMEM
        DL_ERR_FORMAT
        DL_ERR_BOX
        DL_ERR_TOOBIG
        DL_CODEC_UNKNOWN
        DL_CODEC_JPEG
        DL_CODEC_PNG
    ctypedef struct dl_ctx:
        pass
    dl_ctx* dl_ctx_new()
    void dl_ctx_free(dl_ctx* ctx)
    void* dl_ctx_scratch(dl_ctx* ctx, int kind, size_t n)
    int dl_codec_of(const uint8_t* buf, size_t n)
    void dl_set_max_pixels(uint64_t n)
    uint64_t dl_max_pixels()
    int dl_check_pixels(uint64_t height, uint64_t width, char* msg)
    int dl_jpeg_info(dl_ctx* ctx, const uint8_t* buf, size_t n, int* height, int* width,
                     int* channels, char* msg)
    int dl_jpeg_decode(dl_ctx* ctx, const uint8_t* buf, size_t n, uint8_t* out, int h, int w,
                       int c, int strict, char* msg)
    int dl_jpeg_decode_crop(dl_ctx* ctx, const uint8_t* buf, size_t n, const int64_t* box,
                            int th, int tw, int flip, uint8_t* out, int c, int strict, char* msg)
    int dl_jpeg_decode_view(dl_ctx* ctx, const uint8_t* buf, size_t n, const double* box,
                            const int64_t* lim, int th, int tw, int flip, uint8_t* out, int c,
                            int strict, int dct, int order, char* msg)
    int dl_jpeg_pick_scale(int crop_h, int crop_w, int th, int tw)

cdef extern from "decode_resample.h" nogil:
    int dl_resample_use_simd(int on)
    int dl_resample_bilinear(dl_ctx* ctx, const uint8_t* src, int sh, int sw, size_t sstride,
                             int c, double y0, double x0, double y1, double x1, uint8_t* out,
                             int th, int tw, int flip, int alpha)
    int dl_resample_bilinear_in(dl_ctx* ctx, const uint8_t* src, int sh, int sw, size_t sstride,
                                int c, double y0, double x0, double y1, double x1, int ly0,
                                int lx0, int ly1, int lx1, uint8_t* out, int th, int tw, int flip,
                                int alpha, int vfirst)
    int dl_resample_vertical_first(int order, int in_h, int in_w, int out_h, int out_w)
    enum:
        DL_ORDER_HFIRST
        DL_ORDER_PILLOW13

cdef extern from "decode_layout.h" nogil:
    void dl_layout_chw(const uint8_t* src, int h, int w, int c, int vflip, const float* lut,
                       void* out)

cdef extern from "decode_png.h" nogil:
    int dl_png_info(const uint8_t* buf, size_t n, int* height, int* width, int* channels,
                    int* bytes_per_channel, char* msg)
    int dl_png_decode(const uint8_t* buf, size_t n, uint8_t* out, int h, int w, int c, int bpc,
                      char* msg)
    int dl_png_decode_crop(dl_ctx* ctx, const uint8_t* buf, size_t n, const int64_t* box,
                           int th, int tw, int flip, uint8_t* out, int c, char* msg)
    int dl_png_decode_view(dl_ctx* ctx, const uint8_t* buf, size_t n, const double* box,
                           const int64_t* lim, int th, int tw, int flip, uint8_t* out, int c,
                           int order, char* msg)

# One sample, any codec: full decode into out (h*w*c*bpc bytes).
cdef int decode_one(dl_ctx* ctx, const uint8_t* buf, size_t n, uint8_t* out, int h, int w, int c,
                    int bpc, int strict, char* msg) noexcept nogil

# One sample, any codec: fused crop (box = y, x, h, w) + resize to th x tw + flip into out.
cdef int decode_crop_one(dl_ctx* ctx, const uint8_t* buf, size_t n, const int64_t* box, int th,
                         int tw, int flip, uint8_t* out, int c, int strict, char* msg) noexcept nogil

# One sample, any codec: the view (fractional box read within the integer limits lim, both
# y0, x0, y1, x1) resized to th x tw + horizontal flip into out (th*tw*c, HWC); JPEGs decoded at
# the smallest DCT scale covering dct x the output (0: full size); order: the resampler's pass
# order (DL_ORDER_HFIRST, or DL_ORDER_PILLOW13 to match Pillow >= 13 byte for byte).
cdef int decode_view_one(dl_ctx* ctx, const uint8_t* buf, size_t n, const double* box,
                         const int64_t* lim, int th, int tw, int flip, uint8_t* out, int c,
                         int strict, int dct, int order, char* msg) noexcept nogil
