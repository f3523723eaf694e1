"""``deeplake.constants``' size units as deeplake defines them (decimal: ``MB = 1000 * 1000``), for
sizes scripts compute with them (``cache_size=64 * MB``, ``buffer_size``)."""

B = 1
KB = 1000 * B
MB = 1000 * KB
GB = 1000 * MB

__all__ = ["B", "KB", "MB", "GB"]
