"""``progressbar=True`` of ``ds.pytorch()``: a tqdm bar over the batches of one epoch, labelled
with the dataset's path as Deep Lake 3 labels it, closed when the epoch ends or is abandoned (and
over the keys ``deepcopy`` copies)."""

from __future__ import annotations


def bar(batches, total: int, desc: str, unit: str = "batch"):
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit) as progress:
        for batch in batches:
            progress.update(1)
            yield batch
