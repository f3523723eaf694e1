# cython: language_level=3
"""Batch JPEG/PNG decode into caller-provided memory, on OpenMP threads without the GIL.

Public functions (all raise ``deeplake_loader.errors.DecodeError`` with ``.position`` set to the
batch position of the first sample that failed; the message is libjpeg's/libpng's own text):

* ``image_info(buf) -> ImageInfo`` — header only: a 4-tuple ``(codec, height, width, channels)``
  (codec ``"jpeg"`` or ``"png"``) with an extra ``.dtype`` attribute (uint8, or uint16 for
  16-bit grayscale PNG). ``image_infos(buffers)``: the same for a batch (``.position`` of a
  failure is its batch position).
* ``decode_batch(buffers, out, num_threads=1, strict=True) -> list`` — decode every buffer into
  ``out``: one C-contiguous ``(B, H, W, C)`` array, or a list of ``B`` C-contiguous ``(H, W, C)``
  arrays. Returns one entry per sample: ``None``, or the text of a library warning that did not
  fail the decode (``strict=False`` for JPEG; PNG warnings never fail).
* ``decode(buffers, num_threads=1, strict=True, channels=None)`` — plans with ``image_info``,
  allocates, decodes: a ``(B, H, W, C)`` array when all shapes agree, else a list of arrays.
* ``decode_crop_batch(buffers, boxes, flips, out, num_threads=1, strict=True) -> list`` — fused
  crop + DCT scale + antialiased bilinear resize + horizontal flip into ``out`` (B, th, tw, C)
  uint8; ``boxes`` int64 (B, 4) rows ``(y, x, h, w)`` in full-image pixels, ``flips`` (B,).
* ``decode_view_batch(buffers, boxes, limits, flips, out, lut=None, num_threads=1, strict=True)``
  — the general fused view behind torchvision pipelines (``deeplake_loader/fusion.py``): per
  sample a fractional box ``(y0, x0, y1, x1)`` resized to the output size with the filter reading
  only pixels inside the integer ``limits`` (the box's own pixels for crop-then-resize, the whole
  image for resize-then-crop), flipped left-right and/or top-bottom (``flips`` (B, 2)), written
  CHW into ``out`` (B, C, th, tw): uint8, or float32 through ``lut`` (C, 256) float32, the value of
  each byte per channel.

Decompression bombs: every function reads the image header first and refuses (DecodeError,
``.status == TOO_BIG``) an image whose header claims more than ``max_pixels()`` pixels
(height x width) before allocating anything of its size. ``set_max_pixels(n)`` changes the limit
for the process; it starts at $DEEPLAKE_LOADER_MAX_IMAGE_PIXELS, else 178,956,970 (the size at
which Pillow refuses an image). Users set it through ``deeplake_loader.set_max_image_pixels``.

Channels: ``C`` in the output selects the conversion. ``C`` equal to the stored channel count
gives what ``np.asarray(PIL.Image.open(f))`` gives (with a trailing axis for grayscale; CMYK
JPEGs inverted like Pillow's "CMYK;I"; palette PNGs expanded to RGB/RGBA, see
src/decode_png.h). ``C == 3`` also accepts grayscale JPEGs (replicated) and CMYK/YCCK JPEGs
(converted like ``Image.convert("RGB")``).
"""
import numpy as np
cimport numpy as cnp
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free, calloc
from libc.string cimport memset
from libc.stdint cimport uint8_t, int64_t, uint64_t
import os as _os

from deeplake_loader.errors import DecodeError

cnp.import_array()

TOO_BIG = DL_ERR_TOOBIG           # DecodeError.status of an image over the pixel limit
DEFAULT_MAX_PIXELS = 178956970   # 2 x PIL.Image.MAX_IMAGE_PIXELS: Pillow's DecompressionBombError size
MAX_PIXELS_ENV = "DEEPLAKE_LOADER_MAX_IMAGE_PIXELS"


def _limit_from_env():
    text = _os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${MAX_PIXELS_ENV} must be a positive whole number of pixels, got {text!r}")
    return n


def set_max_pixels(n):
    """The most pixels (height x width) an image header may claim before any decode refuses it."""
    n = int(n)
    if n < 1:
        raise ValueError(f"the image pixel limit must be >= 1, got {n}")
    dl_set_max_pixels(<uint64_t>n)


def max_pixels():
    return int(dl_max_pixels())


def check_pixels(height, width):
    """None when an image of height x width is within the limit, else the reason it is refused."""
    cdef char msg[DL_MSG_LEN]
    if height < 0 or width < 0 or height >= (1 << 32) or width >= (1 << 32):
        return f"image header claims {height}x{width}, not a possible image size"
    if dl_check_pixels(<uint64_t>height, <uint64_t>width, msg) == DL_OK:
        return None
    return (<bytes>msg).decode("utf-8", "replace")


dl_set_max_pixels(<uint64_t>_limit_from_env())

_KIND = {
    DL_ERR_CORRUPT: "corrupt image data",
    DL_ERR_WARNING: "corrupt image data (a libjpeg warning, an error when strict)",
    DL_ERR_TOOBIG: "image too large",
    DL_ERR_SHAPE: "image does not match the output buffer",
    DL_ERR_UNSUPPORTED: "unsupported image",
    DL_ERR_NOMEM: "out of memory while decoding",
    DL_ERR_FORMAT: "not a JPEG or PNG image",
    DL_ERR_BOX: "bad crop box",
}


cdef int decode_one(dl_ctx* ctx, const uint8_t* buf, size_t n, uint8_t* out, int h, int w, int c,
                    int bpc, int strict, char* msg) noexcept nogil:
    cdef int codec = dl_codec_of(buf, n)
    if codec == DL_CODEC_JPEG:
        if bpc != 1:
            _cmsg(msg, b"JPEG decodes to uint8 but the output is uint16")
            return DL_ERR_SHAPE
        return dl_jpeg_decode(ctx, buf, n, out, h, w, c, strict, msg)
    if codec == DL_CODEC_PNG:
        return dl_png_decode(buf, n, out, h, w, c, bpc, msg)
    _cmsg(msg, b"empty buffer" if n == 0 else b"unknown signature (neither JPEG nor PNG)")
    return DL_ERR_FORMAT


cdef int decode_crop_one(dl_ctx* ctx, const uint8_t* buf, size_t n, const int64_t* box, int th,
                         int tw, int flip, uint8_t* out, int c, int strict, char* msg) noexcept nogil:
    cdef int codec = dl_codec_of(buf, n)
    if codec == DL_CODEC_JPEG:
        return dl_jpeg_decode_crop(ctx, buf, n, box, th, tw, flip, out, c, strict, msg)
    if codec == DL_CODEC_PNG:
        return dl_png_decode_crop(ctx, buf, n, box, th, tw, flip, out, c, msg)
    _cmsg(msg, b"empty buffer" if n == 0 else b"unknown signature (neither JPEG nor PNG)")
    return DL_ERR_FORMAT


cdef int decode_view_one(dl_ctx* ctx, const uint8_t* buf, size_t n, const double* box,
                         const int64_t* lim, int th, int tw, int flip, uint8_t* out, int c,
                         int strict, int dct, int order, char* msg) noexcept nogil:
    cdef int codec = dl_codec_of(buf, n)
    if codec == DL_CODEC_JPEG:
        return dl_jpeg_decode_view(ctx, buf, n, box, lim, th, tw, flip, out, c, strict, dct, order, msg)
    if codec == DL_CODEC_PNG:
        return dl_png_decode_view(ctx, buf, n, box, lim, th, tw, flip, out, c, order, msg)
    _cmsg(msg, b"empty buffer" if n == 0 else b"unknown signature (neither JPEG nor PNG)")
    return DL_ERR_FORMAT


cdef inline void _cmsg(char* msg, const char* text) noexcept nogil:
    cdef int i = 0
    while text[i] != 0 and i < DL_MSG_LEN - 1:
        msg[i] = text[i]
        i += 1
    msg[i] = 0


# ---- per-thread decoder contexts, reused across calls --------------------------------------

cdef class _Contexts:
    """``n`` decoder contexts (one per OpenMP thread); freed when the object dies."""
    cdef dl_ctx** ctx
    cdef int n

    def __cinit__(self, int n):
        cdef int i
        self.n = 0
        if n < 1 or n > 256:
            raise ValueError(f"bad context count {n}")
        self.ctx = <dl_ctx**>calloc(<size_t>n, sizeof(dl_ctx*))
        if self.ctx == NULL:
            raise MemoryError("cannot allocate decoder contexts")
        for i in range(n):
            self.ctx[i] = dl_ctx_new()
            if self.ctx[i] == NULL:
                raise MemoryError("cannot create a libjpeg decompress object")
            self.n = i + 1

    def __dealloc__(self):
        cdef int i
        if self.ctx != NULL:
            for i in range(self.n):
                dl_ctx_free(self.ctx[i])
            free(self.ctx)
            self.ctx = NULL


_pool = []   # free _Contexts; taken and returned with the GIL held, so callers never share one


cdef _Contexts _take(int n):
    for i in range(len(_pool)):
        if (<_Contexts>_pool[i]).n >= n:
            return _pool.pop(i)
    return _Contexts(n)


cdef _give(_Contexts c):
    if len(_pool) < 4:
        _pool.append(c)


# ---- input/output validation ----------------------------------------------------------------

cdef class _Inputs:
    """Pointers and lengths of B buffer objects (no copies), released on every path."""
    cdef Py_buffer* views
    cdef const uint8_t** ptr
    cdef size_t* size
    cdef int n, acquired

    def __cinit__(self, buffers):
        cdef int i
        cdef object b
        self.n = len(buffers)
        self.acquired = 0
        self.views = <Py_buffer*>calloc(max(self.n, 1), sizeof(Py_buffer))
        self.ptr = <const uint8_t**>calloc(max(self.n, 1), sizeof(uint8_t*))
        self.size = <size_t*>calloc(max(self.n, 1), sizeof(size_t))
        if self.views == NULL or self.ptr == NULL or self.size == NULL:
            raise MemoryError()
        for i in range(self.n):
            b = buffers[i]
            try:
                PyObject_GetBuffer(b, &self.views[i], PyBUF_SIMPLE)
            except (TypeError, BufferError) as e:
                raise DecodeError(f"sample is not a contiguous bytes-like object ({type(b).__name__}): {e}",
                                  position=i) from None
            self.acquired = i + 1
            self.ptr[i] = <const uint8_t*>self.views[i].buf
            self.size[i] = <size_t>self.views[i].len

    def __dealloc__(self):
        cdef int i
        if self.views != NULL:
            for i in range(self.acquired):
                PyBuffer_Release(&self.views[i])
            free(self.views)
        free(self.ptr)
        free(self.size)


cdef _check_array(cnp.ndarray a, int ndim, str what):
    if a.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {(<object>a).shape}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{what} must be C-contiguous and writeable")
    if a.dtype != np.uint8 and a.dtype != np.uint16:
        raise ValueError(f"{what} must be uint8 (or uint16 for 16-bit grayscale PNG), got {a.dtype}")


cdef object _statuses(int n, int* status, char* msgs):
    """Raise DecodeError for the first failing sample; else return the per-sample warnings."""
    cdef int i, first = -1, failed = 0
    warnings = [None] * n
    for i in range(n):
        if status[i] >= DL_ERR_CORRUPT:
            failed += 1
            if first < 0:
                first = i
        elif status[i] == DL_WARNED:
            warnings[i] = (<bytes>(msgs + i * DL_MSG_LEN)).decode("utf-8", "replace")
    if first >= 0:
        text = (<bytes>(msgs + first * DL_MSG_LEN)).decode("utf-8", "replace")
        message = f"{_KIND.get(status[first], 'decode failed')}: {text}"
        if failed > 1:
            message += f" ({failed - 1} more sample(s) of this batch also failed)"
        err = DecodeError(message, position=first)
        err.status = status[first]
        raise err
    return warnings


def _threads(num_threads):
    n = int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return min(n, 256)


# ---- running a batch: OpenMP, or Python threads in a forked child ------------------------------
#
# GNU libgomp's thread team does not survive fork(): a child whose parent already ran a parallel
# region hangs on its first one. So once this process has used prange, a forked child (e.g. a
# DataLoader worker started with "fork") runs batches on a small pool of Python threads instead,
# each decoding an interleaved share of the batch with the GIL released.

cdef struct _Job:
    int crop              # 0 full decode, 1 crop, 2 view (+ CHW layout)
    int n
    const uint8_t** ptr
    size_t* size
    uint8_t** optr        # full decode: per-sample output pointers
    int* dims             # full decode: h, w, c, bytes per channel per sample
    const int64_t* boxes  # crop: (n, 4)
    const uint8_t* flips  # crop: (n,); view: (n, 2) left-right, top-bottom
    const double* fboxes  # view: (n, 4) y0, x0, y1, x1
    const int64_t* lims   # view: (n, 4) y0, x0, y1, x1
    const float* lut      # view: (c, 256) float32 output values, or NULL for uint8
    uint8_t* base         # crop: output block
    size_t stride
    int th, tw, c
    int strict
    int dct               # view: DCT scaling margin (0: full-size decode)
    int order             # view: the resampler's pass order (DL_ORDER_*)
    int* status
    char* msgs


cdef inline int _view_one(_Job* j, int i, dl_ctx* ctx) noexcept nogil:
    """Decode sample i's view HWC into scratch, then lay it out CHW in the output."""
    cdef char* msg = j.msgs + i * DL_MSG_LEN
    cdef uint8_t* hwc = <uint8_t*>dl_ctx_scratch(ctx, 5, <size_t>j.th * j.tw * j.c)
    cdef int st
    if hwc == NULL:
        _cmsg(msg, b"out of memory")
        return DL_ERR_NOMEM
    st = decode_view_one(ctx, j.ptr[i], j.size[i], j.fboxes + 4 * i, j.lims + 4 * i, j.th, j.tw,
                         j.flips[2 * i], hwc, j.c, j.strict, j.dct, j.order, msg)
    if st == DL_OK or st == DL_WARNED:
        dl_layout_chw(hwc, j.th, j.tw, j.c, j.flips[2 * i + 1], j.lut, j.base + i * j.stride)
    return st


cdef inline void _run_one(_Job* j, int i, dl_ctx* ctx) noexcept nogil:
    if j.crop == 2:
        j.status[i] = _view_one(j, i, ctx)
    elif j.crop:
        j.status[i] = decode_crop_one(ctx, j.ptr[i], j.size[i], j.boxes + 4 * i, j.th, j.tw,
                                      j.flips[i], j.base + i * j.stride, j.c, j.strict,
                                      j.msgs + i * DL_MSG_LEN)
    else:
        j.status[i] = decode_one(ctx, j.ptr[i], j.size[i], j.optr[i], j.dims[4 * i],
                                 j.dims[4 * i + 1], j.dims[4 * i + 2], j.dims[4 * i + 3],
                                 j.strict, j.msgs + i * DL_MSG_LEN)


cdef class _Share:
    """One Python thread's interleaved share of a batch (fork fallback)."""
    cdef _Job* job
    cdef _Contexts ctxs

    def run(self, int k, int step):
        cdef int i
        with nogil:
            i = k
            while i < self.job.n:
                _run_one(self.job, i, self.ctxs.ctx[k])
                i += step


_omp_used = False
_omp_unusable = False
_executor = None


def _after_fork_in_child():
    global _omp_unusable, _executor
    if _omp_used:
        _omp_unusable = True
    _executor = None


_os.register_at_fork(after_in_child=_after_fork_in_child)


cdef _run(_Job* job, _Contexts ctxs, int nt):
    global _omp_used, _executor
    cdef int i
    cdef _Share share
    if nt == 1 or job.n == 1:
        with nogil:
            for i in range(job.n):
                _run_one(job, i, ctxs.ctx[0])
    elif not _omp_unusable:
        _omp_used = True
        with nogil:
            for i in prange(job.n, num_threads=nt, schedule="dynamic"):
                _run_one(job, i, ctxs.ctx[threadid()])
    else:
        from concurrent.futures import ThreadPoolExecutor
        if _executor is None or _executor._max_workers < nt:
            _executor = ThreadPoolExecutor(max_workers=nt, thread_name_prefix="deeplake_loader-decode")
        share = _Share()
        share.job = job
        share.ctxs = ctxs
        for f in [_executor.submit(share.run, k, nt) for k in range(nt)]:
            f.result()


cdef _execute(_Job* job, int nt):
    """Run a filled ``job`` (its per-sample status and message buffers and its decoder contexts
    made here) and return the per-sample warnings (``_statuses``)."""
    cdef int n = job.n
    cdef int* status = <int*>malloc(n * sizeof(int))
    cdef char* msgs = <char*>calloc(n, DL_MSG_LEN)
    cdef _Contexts ctxs = None
    try:
        if status == NULL or msgs == NULL:
            raise MemoryError()
        ctxs = _take(nt)
        job.status = status
        job.msgs = msgs
        _run(job, ctxs, nt)
        return _statuses(n, status, msgs)
    finally:
        if ctxs is not None:
            _give(ctxs)
        free(status)
        free(msgs)


# ---- public API ----------------------------------------------------------------------------

class ImageInfo(tuple):
    """``(codec, height, width, channels)`` with ``.dtype`` (np.uint8 or np.uint16)."""

    def __new__(cls, codec, height, width, channels, dtype):
        self = tuple.__new__(cls, (codec, height, width, channels))
        self.dtype = dtype
        return self

    codec = property(lambda self: self[0])
    height = property(lambda self: self[1])
    width = property(lambda self: self[2])
    channels = property(lambda self: self[3])

    @property
    def shape(self):
        return (self[1], self[2], self[3])


def image_info(buf):
    """Header-only probe: ``ImageInfo(codec, height, width, channels)`` (+ ``.dtype``)."""
    cdef _Inputs inp = _Inputs([buf])
    cdef _Contexts ctxs = _take(1)
    cdef int h = 0, w = 0, c = 0, bpc = 1, st, codec
    cdef char msg[DL_MSG_LEN]
    msg[0] = 0
    try:
        with nogil:
            codec = dl_codec_of(inp.ptr[0], inp.size[0])
            if codec == DL_CODEC_JPEG:
                st = dl_jpeg_info(ctxs.ctx[0], inp.ptr[0], inp.size[0], &h, &w, &c, msg)
            elif codec == DL_CODEC_PNG:
                st = dl_png_info(inp.ptr[0], inp.size[0], &h, &w, &c, &bpc, msg)
            else:
                _cmsg(msg, b"empty buffer" if inp.size[0] == 0 else b"unknown signature (neither JPEG nor PNG)")
                st = DL_ERR_FORMAT
    finally:
        _give(ctxs)
    if st != DL_OK:
        err = DecodeError(f"{_KIND.get(st, 'decode failed')}: {(<bytes>msg).decode('utf-8', 'replace')}",
                          position=0)
        err.status = st
        raise err
    return ImageInfo("jpeg" if codec == DL_CODEC_JPEG else "png", h, w, c,
                     np.uint16 if bpc == 2 else np.uint8)


def image_infos(buffers):
    """Header probes of a whole batch in one call, the GIL released for the loop: an (n, 5) int64
    array of [codec (1 JPEG, 2 PNG), height, width, channels, bytes per channel]. DecodeError
    (with ``position``) for the first sample that is not a readable JPEG/PNG header."""
    cdef _Inputs inp = _Inputs(buffers)
    cdef int n = inp.n, i, codec, h, w, c, bpc
    out = np.zeros((n, 5), np.int64)
    cdef int64_t* o = <int64_t*>cnp.PyArray_DATA(out)
    cdef int* status = <int*>malloc(max(n, 1) * sizeof(int))
    cdef char* msgs = <char*>calloc(max(n, 1), DL_MSG_LEN)
    cdef _Contexts ctxs = None
    try:
        if status == NULL or msgs == NULL:
            raise MemoryError()
        ctxs = _take(1)
        with nogil:
            for i in range(n):
                h = w = c = 0
                bpc = 1
                codec = dl_codec_of(inp.ptr[i], inp.size[i])
                if codec == DL_CODEC_JPEG:
                    status[i] = dl_jpeg_info(ctxs.ctx[0], inp.ptr[i], inp.size[i], &h, &w, &c, msgs + i * DL_MSG_LEN)
                    codec = 1
                elif codec == DL_CODEC_PNG:
                    status[i] = dl_png_info(inp.ptr[i], inp.size[i], &h, &w, &c, &bpc, msgs + i * DL_MSG_LEN)
                    codec = 2
                else:
                    _cmsg(msgs + i * DL_MSG_LEN, b"empty buffer" if inp.size[i] == 0
                          else b"unknown signature (neither JPEG nor PNG)")
                    status[i] = DL_ERR_FORMAT
                    codec = 0
                o[5 * i] = codec
                o[5 * i + 1] = h
                o[5 * i + 2] = w
                o[5 * i + 3] = c
                o[5 * i + 4] = bpc
        for i in range(n):
            if status[i] != DL_OK:
                err = DecodeError(f"{_KIND.get(status[i], 'decode failed')}: "
                                  f"{(<bytes>(msgs + i * DL_MSG_LEN)).decode('utf-8', 'replace')}", position=i)
                err.status = status[i]
                raise err
        return out
    finally:
        if ctxs is not None:
            _give(ctxs)
        free(status)
        free(msgs)


def decode_batch(buffers, out, *, num_threads=1, bint strict=True):
    """Decode ``buffers`` into ``out`` ((B,H,W,C) array or list of (H,W,C) arrays); see module doc."""
    cdef _Inputs inp = _Inputs(buffers)
    cdef int n = inp.n, i, nt = _threads(num_threads)
    cdef cnp.ndarray a
    cdef uint8_t** optr
    cdef int* dims
    cdef int st_strict = 1 if strict else 0
    cdef uint8_t* base
    cdef size_t stride
    cdef _Job job
    if n == 0:
        return []
    optr = <uint8_t**>malloc(n * sizeof(uint8_t*))
    dims = <int*>malloc(n * 4 * sizeof(int))
    try:
        if optr == NULL or dims == NULL:
            raise MemoryError()
        if isinstance(out, np.ndarray):
            a = out
            _check_array(a, 4, "out")
            if a.shape[0] != n:
                raise ValueError(f"out holds {a.shape[0]} samples but {n} buffers were given")
            base = <uint8_t*>cnp.PyArray_DATA(a)
            stride = <size_t>a.strides[0]
            for i in range(n):
                optr[i] = base + i * stride
                dims[4 * i] = a.shape[1]
                dims[4 * i + 1] = a.shape[2]
                dims[4 * i + 2] = a.shape[3]
                dims[4 * i + 3] = a.itemsize
        else:
            if len(out) != n:
                raise ValueError(f"out holds {len(out)} arrays but {n} buffers were given")
            for i in range(n):
                if not isinstance(out[i], np.ndarray):
                    raise ValueError(f"out[{i}] must be a numpy array, got {type(out[i]).__name__}")
                a = out[i]
                _check_array(a, 3, f"out[{i}]")
                optr[i] = <uint8_t*>cnp.PyArray_DATA(a)
                dims[4 * i] = a.shape[0]
                dims[4 * i + 1] = a.shape[1]
                dims[4 * i + 2] = a.shape[2]
                dims[4 * i + 3] = a.itemsize
        memset(&job, 0, sizeof(job))
        job.crop = 0
        job.n = n
        job.ptr = inp.ptr
        job.size = inp.size
        job.optr = optr
        job.dims = dims
        job.strict = st_strict
        return _execute(&job, nt)
    finally:
        free(optr)
        free(dims)


def decode(buffers, *, num_threads=1, bint strict=True, channels=None):
    """Plan with ``image_info``, allocate and decode. One (B,H,W,C) array when every sample has
    the same shape and dtype, else a list of (H,W,C) arrays. ``channels`` forces C (e.g. 3 to get
    RGB from grayscale or CMYK JPEGs)."""
    shapes = []
    for _, h, w, c, bpc in image_infos(buffers).tolist():  # the pixel limit holds here, before allocating
        c = c if channels is None else int(channels)
        shapes.append(((h, w, c), np.dtype(np.uint16 if bpc == 2 else np.uint8)))
    if not shapes:
        return np.empty((0, 0, 0, 0 if channels is None else int(channels)), np.uint8)
    if all(s == shapes[0] for s in shapes):
        out = np.empty((len(shapes),) + shapes[0][0], shapes[0][1])
    else:
        out = [np.empty(s, d) for s, d in shapes]
    decode_batch(buffers, out, num_threads=num_threads, strict=strict)
    return out


def decode_crop_batch(buffers, boxes, flips, out, *, num_threads=1, bint strict=True):
    """Fused crop + scale + flip decode into ``out`` (B, th, tw, C) uint8; see module doc."""
    cdef _Inputs inp = _Inputs(buffers)
    cdef int n = inp.n, i, nt = _threads(num_threads)
    cdef cnp.ndarray a
    cdef int64_t[:, ::1] bx
    cdef uint8_t[::1] fl
    cdef int st_strict = 1 if strict else 0
    cdef uint8_t* base
    cdef size_t stride
    cdef int th, tw, c
    cdef _Job job
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array (B, th, tw, C), got {type(out).__name__}")
    a = out
    _check_array(a, 4, "out")
    if a.dtype != np.uint8:
        raise ValueError(f"out must be uint8 for the crop+resize decode, got {a.dtype}")
    if a.shape[0] != n:
        raise ValueError(f"out holds {a.shape[0]} samples but {n} buffers were given")
    boxes_arr = np.ascontiguousarray(boxes, dtype=np.int64)
    if boxes_arr.shape != (n, 4):
        raise ValueError(f"boxes must have shape ({n}, 4) (y, x, h, w), got {boxes_arr.shape}")
    flips_arr = np.ascontiguousarray(flips, dtype=np.uint8).reshape(-1)
    if flips_arr.shape[0] != n:
        raise ValueError(f"flips must have {n} entries, got {flips_arr.shape[0]}")
    if n == 0:
        return []
    bx = boxes_arr
    fl = flips_arr
    th, tw, c = a.shape[1], a.shape[2], a.shape[3]
    if th < 1 or tw < 1 or c < 1:
        raise ValueError(f"out has an empty target size {(<object>a).shape}")
    base = <uint8_t*>cnp.PyArray_DATA(a)
    stride = <size_t>a.strides[0]
    memset(&job, 0, sizeof(job))
    job.crop = 1
    job.n = n
    job.ptr = inp.ptr
    job.size = inp.size
    job.boxes = &bx[0, 0]
    job.flips = &fl[0]
    job.base = base
    job.stride = stride
    job.th, job.tw, job.c = th, tw, c
    job.strict = st_strict
    return _execute(&job, nt)


PASS_ORDERS = {"hfirst": DL_ORDER_HFIRST, "pillow13": DL_ORDER_PILLOW13}


def decode_view_batch(buffers, boxes, limits, flips, out, lut=None, *, num_threads=1, bint strict=True,
                      int dct=1, order="hfirst"):
    """Fused view decode into ``out`` (B, C, th, tw), uint8 or float32 through ``lut``; see module
    doc. ``dct``: JPEGs are decoded at the smallest DCT scale (1/8, 1/4, 1/2) whose box still
    covers ``dct`` times the output (1: like decode_crop_batch; 0: always full size). ``order``:
    the resampler's pass order, ``"hfirst"`` (Pillow <= 12: horizontal, then vertical) or
    ``"pillow13"`` (Pillow >= 13: vertically first when the height shrinks by more than twice what
    the width does), judged on the whole resize a view is a window of. Returns the per-sample
    warnings (``decode_batch``'s contract)."""
    cdef _Inputs inp = _Inputs(buffers)
    cdef int n = inp.n, nt = _threads(num_threads)
    cdef cnp.ndarray a
    cdef double[:, ::1] bx
    cdef int64_t[:, ::1] lm
    cdef uint8_t[:, ::1] fl
    cdef float[:, ::1] lt
    cdef _Job job
    if order not in PASS_ORDERS:
        raise ValueError(f"order must be one of {sorted(PASS_ORDERS)}, got {order!r}")
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array (B, C, th, tw), got {type(out).__name__}")
    a = out
    if a.ndim != 4 or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"out must be a C-contiguous writeable (B, C, th, tw) array, got shape {out.shape}")
    if a.shape[0] != n:
        raise ValueError(f"out holds {a.shape[0]} samples but {n} buffers were given")
    c, th, tw = int(a.shape[1]), int(a.shape[2]), int(a.shape[3])
    if th < 1 or tw < 1 or c < 1 or c > 4:
        raise ValueError(f"out has an empty target size or an unsupported channel count {out.shape}")
    if lut is None:
        if a.dtype != np.uint8:
            raise ValueError(f"out must be uint8 without a lut, got {a.dtype}")
    else:
        lut_arr = np.ascontiguousarray(lut, dtype=np.float32)
        if lut_arr.shape != (c, 256):
            raise ValueError(f"lut must have shape ({c}, 256), got {lut_arr.shape}")
        if a.dtype != np.float32:
            raise ValueError(f"out must be float32 with a lut, got {a.dtype}")
        lt = lut_arr
    boxes_arr = np.ascontiguousarray(boxes, dtype=np.float64)
    if boxes_arr.shape != (n, 4):
        raise ValueError(f"boxes must have shape ({n}, 4) (y0, x0, y1, x1), got {boxes_arr.shape}")
    lims_arr = np.ascontiguousarray(limits, dtype=np.int64)
    if lims_arr.shape != (n, 4):
        raise ValueError(f"limits must have shape ({n}, 4) (y0, x0, y1, x1), got {lims_arr.shape}")
    flips_arr = np.ascontiguousarray(flips, dtype=np.uint8)
    if flips_arr.shape != (n, 2):
        raise ValueError(f"flips must have shape ({n}, 2) (left-right, top-bottom), got {flips_arr.shape}")
    if n == 0:
        return []
    bx = boxes_arr
    lm = lims_arr
    fl = flips_arr
    memset(&job, 0, sizeof(job))
    job.crop = 2
    job.n = n
    job.ptr = inp.ptr
    job.size = inp.size
    job.fboxes = &bx[0, 0]
    job.lims = &lm[0, 0]
    job.flips = &fl[0, 0]
    job.lut = &lt[0, 0] if lut is not None else NULL
    job.base = <uint8_t*>cnp.PyArray_DATA(a)
    job.stride = <size_t>a.strides[0]
    job.th, job.tw, job.c = th, tw, c
    job.strict = 1 if strict else 0
    job.dct = max(dct, 0)
    job.order = PASS_ORDERS[order]
    return _execute(&job, nt)


# ---- test shims (convention 7) -------------------------------------------------------------

def _layout_chw_py(const uint8_t[:, :, ::1] src not None, lut=None, bint vflip=False):
    """``src`` (H, W, C) uint8 laid out (C, H, W): uint8, or float32 through ``lut`` (C, 256)."""
    cdef int h = src.shape[0], w = src.shape[1], c = src.shape[2]
    cdef float[:, ::1] lt
    cdef const float* lp = NULL
    out = np.empty((c, h, w), np.uint8 if lut is None else np.float32)
    cdef cnp.ndarray o = out
    if lut is not None:
        lut_arr = np.ascontiguousarray(lut, dtype=np.float32)
        if lut_arr.shape != (c, 256):
            raise ValueError(f"lut must have shape ({c}, 256), got {lut_arr.shape}")
        lt = lut_arr
        lp = &lt[0, 0]
    if h and w and c:
        with nogil:
            dl_layout_chw(&src[0, 0, 0], h, w, c, vflip, lp, cnp.PyArray_DATA(o))
    return out


def _vertical_first_py(order, int in_h, int in_w, int out_h, int out_w):
    """Whether a resize of in_h x in_w to out_h x out_w goes vertically first under ``order``."""
    return bool(dl_resample_vertical_first(PASS_ORDERS[order], in_h, in_w, out_h, out_w))


def _pick_scale_py(int crop_h, int crop_w, int th, int tw):
    """The DCT scale numerator (denominator 8) the fused JPEG path uses for this crop."""
    return dl_jpeg_pick_scale(crop_h, crop_w, th, tw)


def _resample_use_simd(bint on):
    """Let the resampler use its AVX2 rows (True, the default) or only portable C (False).
    Returns whether AVX2 rows are in use; False on CPUs without AVX2 whatever was asked."""
    return bool(dl_resample_use_simd(on))


def _resample_bilinear_py(const uint8_t[:, :, ::1] src not None, box, size, bint flip=False,
                          bint alpha=False, limits=None, bint vertical_first=False):
    """Resize ``src[y0:y1, x0:x1]`` (``box = (y0, x0, y1, x1)``, floats allowed) to ``size =
    (th, tw)`` with the kernel's Pillow-compatible bilinear filter. ``alpha``: the last of 2 or 4
    channels is alpha (premultiplied resampling, like Image.resize on LA/RGBA). ``limits``
    ``(y0, x0, y1, x1)``: the pixels the filter may read (default: the box's own).
    ``vertical_first``: the vertical pass first (Pillow 13's order for tall reductions)."""
    cdef double y0 = box[0], x0 = box[1], y1 = box[2], x1 = box[3]
    cdef int th = size[0], tw = size[1], st
    cdef int ly0, lx0, ly1, lx1
    if not (0 <= y0 < y1 <= src.shape[0] and 0 <= x0 < x1 <= src.shape[1]) or th < 1 or tw < 1:
        raise ValueError(f"bad box {box} or size {size} for an image of shape ({src.shape[0]}, {src.shape[1]}, {src.shape[2]})")
    if limits is None:
        limits = (int(np.floor(y0)), int(np.floor(x0)), min(int(np.ceil(y1)), src.shape[0]),
                  min(int(np.ceil(x1)), src.shape[1]))
    ly0, lx0, ly1, lx1 = (int(v) for v in limits)
    out = np.empty((th, tw, src.shape[2]), np.uint8)
    cdef uint8_t[:, :, ::1] o = out
    cdef _Contexts ctxs = _take(1)
    try:
        with nogil:
            st = dl_resample_bilinear_in(ctxs.ctx[0], &src[0, 0, 0], src.shape[0], src.shape[1],
                                         src.strides[0], src.shape[2], y0, x0, y1, x1, ly0, lx0,
                                         ly1, lx1, &o[0, 0, 0], th, tw, flip, alpha, vertical_first)
    finally:
        _give(ctxs)
    if st == DL_ERR_BOX:
        raise ValueError(f"limits {limits} do not hold the box {box} inside the image")
    if st != DL_OK:
        raise MemoryError("resample scratch allocation failed")
    return out
