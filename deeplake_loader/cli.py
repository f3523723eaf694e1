"""The ``deeplake-loader`` command: look at a Deep Lake 3 dataset and turn an image folder into one.

    deeplake-loader info PATH              # tensors, htypes, lengths (like ds.summary())
    deeplake-loader ingest FOLDER PATH     # class-per-subfolder images -> images + labels tensors

Everything goes through the public API (``load``, ``empty``, ``read``), so the command shows
what a script would see.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import DeepLakeLoaderError

_IMAGE_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


def _cmd_info(args) -> int:
    from . import load

    ds = load(args.path, read_only=True)
    ds.summary()
    return 0


def _image_files(folder: Path, compression: str):
    """(class_names, [(file, class_id)]) for a folder of one sub-folder per class, sorted."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DeepLakeLoaderError(f"{folder}: no class sub-folders (expected {folder}/<class>/<image>)")
    files, skipped = [], []
    for label, name in enumerate(classes):
        for f in sorted((folder / name).iterdir()):
            if not f.is_file():
                continue
            if _IMAGE_SUFFIXES.get(f.suffix.lower()) == compression:
                files.append((f, label))
            else:
                skipped.append(f)
    if not files:
        raise DeepLakeLoaderError(f"{folder}: no {compression} images in its class sub-folders")
    return classes, files, skipped


def _cmd_ingest(args) -> int:
    from . import empty, read

    folder = Path(args.folder)
    if not folder.is_dir():
        raise DeepLakeLoaderError(f"{folder}: not a folder")
    classes, files, skipped = _image_files(folder, args.compression)
    ds = empty(args.path, overwrite=args.overwrite)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression=args.compression)
        ds.create_tensor("labels", htype="class_label", class_names=classes)
        for start in range(0, len(files), args.batch):
            part = files[start:start + args.batch]
            ds.extend({"images": [read(str(f)) for f, _ in part],
                       "labels": [label for _, label in part]})
    print(f"{args.path}: {len(files)} images in {len(classes)} classes"
          + (f" ({len(skipped)} files of another format skipped)" if skipped else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deeplake-loader", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print the tensors of a dataset")
    info.add_argument("path", help="dataset path or URL (local, mem://, s3://, file://)")
    info.set_defaults(run=_cmd_info)
    ingest = sub.add_parser("ingest", help="store a class-per-subfolder image folder as a dataset")
    ingest.add_argument("folder")
    ingest.add_argument("path", help="where to write the dataset")
    ingest.add_argument("--compression", choices=["jpeg", "png"], default="jpeg",
                        help="image format to take (stored as-is, never re-encoded)")
    ingest.add_argument("--overwrite", action="store_true", help="replace a dataset already at PATH")
    ingest.add_argument("--batch", type=int, default=256, help="images per extend() call")
    ingest.set_defaults(run=_cmd_ingest)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DeepLakeLoaderError as e:
        print(f"deeplake-loader {args.command}: {e}", file=sys.stderr)
        return 1
