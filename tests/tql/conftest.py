"""A generated dataset for query tests, and the same data as plain Python for reference answers."""

import numpy as np
import pytest

N = 120
NAMES = ["cat", "dog", "car", "motorcycle", "bus"]


def reference_data():
    rng = np.random.default_rng(7)
    data = {
        "labels": [int(v) for v in rng.integers(0, 5, N)],
        "categories": [sorted(set(int(v) for v in rng.integers(0, 5, int(rng.integers(0, 4))))) for _ in range(N)],
        "caption": [f"{NAMES[i % 5]} number {i}" + (" special" if i % 7 == 0 else "") for i in range(N)],
        "boxes": [rng.integers(0, 40, (int(rng.integers(0, 4)), 4)).astype(np.float32) for _ in range(N)],
        "score": rng.normal(0, 1, N).astype(np.float32),
        "images": [rng.integers(0, 255, (int(rng.integers(8, 20)), int(rng.integers(8, 20)), 3), dtype=np.uint8)
                   for _ in range(N)],
    }
    return data


@pytest.fixture(scope="session")
def ref():
    return reference_data()


@pytest.fixture(scope="session")
def qds(tmp_path_factory, ref):
    import deeplake_loader as dl

    path = str(tmp_path_factory.mktemp("tql") / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("labels", htype="class_label", class_names=NAMES)
        ds.create_tensor("categories", htype="class_label", class_names=NAMES)
        ds.create_tensor("caption", htype="text")
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("score", dtype="float32")
        ds.create_tensor("grp/images", htype="image", sample_compression="png")
        ds.extend({"labels": ref["labels"], "categories": ref["categories"], "caption": ref["caption"],
                   "boxes": ref["boxes"], "score": list(ref["score"]), "grp/images": ref["images"]})
    return dl.load(path, read_only=True)
