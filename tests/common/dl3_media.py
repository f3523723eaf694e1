"""What REAL deeplake 3.9.52 reads from media datasets (video, audio, dicom, nifti, point clouds,
meshes, polygons, sequences and links of them). RUN ONLY INSIDE THE SIDE VENV (tests/common/dl3.py).

    python dl3_media.py write FILES_DIR OUT_DIR     # deeplake fills OUT_DIR/dl3 (media.fill), records it
    python dl3_media.py read DATASET OUT_DIR NAME   # records what deeplake reads from DATASET

Recording (``record``): OUT_DIR/NAME.json = {tensor: {"htype", "dtype", "shape", "length",
"sample_compression", "samples": [{"shape", "numpy", "data", "tobytes", "sub"...}]}} where every
array is a key of OUT_DIR/NAME.npz and a read deeplake raised on is {"error": "<Type>: <message>"}.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("BUGGER_OFF", "true")

import numpy as np  # noqa: E402

import deeplake  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.common import media  # noqa: E402

VIDEO_SUBS = {"frame5": 5, "2to10by3": slice(2, 10, 3), "last": -1}


class Recorder:
    def __init__(self):
        self.arrays = {}

    def value(self, key, v):
        """A JSON form of v; arrays go to the npz under ``key``."""
        if isinstance(v, np.ndarray) and v.dtype != object:
            self.arrays[key] = v
            return {"npz": key}
        if isinstance(v, np.ndarray):
            return [self.value(f"{key}/{k}", x) for k, x in enumerate(v.tolist())]
        if isinstance(v, dict):
            return {str(k): self.value(f"{key}/{k}", x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [self.value(f"{key}/{k}", x) for k, x in enumerate(v)]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, bytes):
            return {"bytes": v.hex()}
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        return {"repr": repr(v)}

    def attempt(self, key, fn):
        try:
            return self.value(key, fn())
        except Exception as e:  # noqa: BLE001 - what deeplake raises is part of what is recorded
            return {"error": f"{type(e).__name__}: {e}"}


def record(ds, out_dir, name):
    rec = Recorder()
    out = {}
    for tname in list(media.LAYOUT) + ["polygon", "link_tiled"]:
        if tname not in ds.tensors:
            continue
        t = ds[tname]
        meta = {"htype": t.htype, "dtype": t.meta.dtype, "shape": [None if x is None else int(x) for x in t.shape],
                "length": len(t), "sample_compression": t.meta.sample_compression, "samples": []}
        for i in range(len(t)):
            k = f"{tname}/{i}"
            s = {"shape": rec.attempt(f"{k}/shape", lambda: list(t[i].shape)),
                 "numpy": rec.attempt(f"{k}/numpy", lambda: t[i].numpy()),
                 "aslist": rec.attempt(f"{k}/aslist", lambda: t[i:i + 1].numpy(aslist=True)[0]),
                 "data": rec.attempt(f"{k}/data", lambda: t[i].data()),
                 "tobytes": rec.attempt(f"{k}/tobytes", lambda: hashlib.sha256(t[i].tobytes()).hexdigest())}
            if meta["htype"] == "video":
                for sub_name, sub in VIDEO_SUBS.items():
                    s[sub_name] = rec.attempt(f"{k}/{sub_name}", lambda: t[i, sub].numpy())
            meta["samples"].append(s)
        out[tname] = meta
    np.savez(os.path.join(out_dir, f"{name}.npz"), **rec.arrays)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(out, f)


def main(argv):
    mode = argv[0]
    if mode == "write":
        files_dir, out_dir = argv[1], argv[2]
        files = {n: os.path.join(files_dir, n) for n in os.listdir(files_dir)}
        ds = deeplake.empty(os.path.join(out_dir, "dl3"), overwrite=True, verbose=False)
        media.fill(deeplake, ds, files)
        tiles = sorted(n for n in files if n.startswith("tile"))
        if tiles:
            ds.create_tensor("link_tiled", htype="link[image]", sample_compression="png")
            # tiled first: deeplake 3.9.52 fails to append a tiled link into a chunk that holds a plain one
            ds.link_tiled.append(deeplake.link_tiled(np.array([files[n] for n in tiles]).reshape(2, 2)))
            ds.link_tiled.append(deeplake.link(files["whole.png"]))
        ds = deeplake.load(os.path.join(out_dir, "dl3"), read_only=True, verbose=False)
        record(ds, out_dir, "dl3")
    elif mode == "read":
        record(deeplake.load(argv[1], read_only=True, verbose=False), argv[2], argv[3])
    elif mode == "append":  # deeplake appends to and commits on a dataset we wrote
        ds = deeplake.load(argv[1], verbose=False)
        files = {n: os.path.join(argv[2], n) for n in os.listdir(argv[2])}
        ds.video_mp4.append(deeplake.read(files["mpeg4.mp4"]))
        ds.seq_video.append([deeplake.read(files["h264_b0.mp4"])])
        ds.link_video.append(deeplake.link(files["h264.mp4"]))
        ds.polygon.append([np.array([[9, 9], [8, 8], [7, 7]], np.float32)])
        ds.commit("deeplake appended")
        with open(os.environ["DL3_RESULT"], "w") as f:
            json.dump({n: len(ds[n]) for n in ("video_mp4", "seq_video", "link_video", "polygon")}, f)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
