"""The frozen configuration one DeepLakeDataLoader chain describes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class LoaderConfig:
    dataset: Any
    tensors: Optional[tuple] = None  # None: every visible tensor
    batch_size: int = 1
    drop_last: bool = False
    shuffle: bool = False
    buffer_size: int = 2048  # MB of compressed samples in the shuffle buffer
    offset: int = 0
    transform: Any = None  # None | callable | {tensor: callable | None}
    collate_fn: Optional[Callable] = None
    decode_method: dict = field(default_factory=dict)  # tensor -> 'numpy' | 'tobytes' | 'pil' | 'data'
    return_index: bool = True
    num_workers: int = 0
    num_threads: Optional[int] = None
    prefetch_factor: int = 2
    persistent_workers: bool = False
    distributed: bool = False
    query_rows: Any = None  # int64 rows of `dataset` a query selected
    query_tensors: Optional[tuple] = None  # projection of `select t1, t2`
    sample: Any = None  # (weights, replace, size)
    mode: Optional[str] = None  # 'pytorch' | 'tensorflow' | 'numpy'
    ignore_errors: bool = False  # skip samples that cannot be read, decoded or transformed (pipeline/refill.py)
    verbose: bool = False  # log each skipped sample as it happens
    # ds.pytorch() / ds.tensorflow() (oss_loaders.py)
    unbatched: bool = False  # batch_size=None: samples without a batch dimension, no collate
    oss_samples: bool = False  # text-likes reach transforms in tensor[i].numpy() form, as Deep Lake 3's OSS loader
    progressbar: bool = False  # a tqdm bar over the batches
    # torch DataLoader options (iterators/torch_loader.py): a framework's sharding, pinning, workers
    pin_memory: bool = False
    shard: Optional[tuple] = None  # (rank, world size) taken from a DistributedSampler a framework injected
    timeout: float = 0  # seconds to wait for a batch from the worker processes (0: no limit)
    worker_init_fn: Optional[Callable] = None
    start_method: Optional[str] = None  # how worker processes start: 'fork' | 'exec' | None (the platform's: workers.py)
    generator: Any = None  # torch.Generator seeding the sampler parts (loader.sampler)
    seed: Optional[int] = None  # root of every random stream; None: deeplake_loader.random's (state.py pins it)

    def with_(self, **changes) -> "LoaderConfig":
        return replace(self, **changes)
