/* The last step of a fused torchvision pipeline: an 8-bit HWC image (what the decoders write)
 * to the CHW layout torch tensors have, as uint8 or as float32 through a per-channel table of
 * the 256 values (ToTensor's /255, ToDtype's scaling, Normalize's (x - mean) / std, computed in
 * float32 once per batch by the caller, so every value is the float torch computes for it),
 * optionally flipped top to bottom. No Python API; cannot fail. */
#ifndef DEEPLAKE_LOADER_DECODE_LAYOUT_H
#define DEEPLAKE_LOADER_DECODE_LAYOUT_H

#include <stdint.h>

/* src: h x w x c bytes; out: c x h x w uint8 (lut NULL) or float32 (lut: c x 256 floats, the
 * value of byte v in channel ch at lut[ch * 256 + v]). vflip != 0 writes row y of src to row
 * h - 1 - y. */
void dl_layout_chw(const uint8_t *src, int h, int w, int c, int vflip, const float *lut, void *out);

#endif
