"""The ``deeplake-loader`` command: look at a dataset, make one from an image folder, and see whether the
loader pays off on it.

    deeplake-loader info PATH              # tensors, htypes, lengths (like ds.summary())
    deeplake-loader ingest FOLDER PATH     # image folder -> images + labels tensors (resumable)
    deeplake-loader bench PATH             # one epoch: ours vs torch DataLoader + Pillow

This module only parses arguments and turns library errors into one-line messages; the work of each
sub-command is in ``commands/``. They go through the public API (``load``, ``empty``, ``read``,
``ds.dataloader()``), so the command shows what a script would see.
"""

from __future__ import annotations

import argparse
import sys

from .errors import DeepLakeLoaderError


def _cmd_info(args) -> int:
    from . import load

    ds = load(args.path, read_only=True)
    ds.summary()
    return 0


def _cmd_ingest(args) -> int:
    from .commands import ingest

    return ingest.run(args.folder, args.path, compression=args.compression, labels=args.labels,
                      overwrite=args.overwrite, batch=args.batch, progress=not args.no_progress)


def _cmd_bench(args) -> int:
    from .commands import bench

    return bench.run(args.path, tensor=args.tensor, transform=args.transform, workers=args.workers,
                     batch_size=args.batch_size, limit=args.limit)


def build_parser() -> argparse.ArgumentParser:
    from .commands import bench

    p = argparse.ArgumentParser(prog="deeplake-loader", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print the tensors of a dataset")
    info.add_argument("path", help="dataset path or URL (local, mem://, s3://, file://)")
    info.set_defaults(run=_cmd_info)

    ingest = sub.add_parser(
        "ingest", help="store an image folder as a dataset of images + labels (run again to resume)",
        description="Labels come from one sub-folder per class (FOLDER/<class>/<image>), or from --labels: a CSV "
                    "with a header row naming a 'filename' column (relative to FOLDER) and a 'label' column (a "
                    "class name, or a whole-number class id). Images are stored as they are. If the command is "
                    "interrupted, run it again: it continues where the dataset stops.")
    ingest.add_argument("folder")
    ingest.add_argument("path", help="where to write the dataset")
    ingest.add_argument("--labels", metavar="CSV", help="filename,label CSV instead of class sub-folders")
    ingest.add_argument("--compression", choices=["jpeg", "png"], default="jpeg",
                        help="image format to take (stored as-is, never re-encoded)")
    ingest.add_argument("--overwrite", action="store_true", help="replace a dataset already at PATH")
    ingest.add_argument("--batch", type=int, default=256, help="images per write (the unit of resuming)")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar")
    ingest.set_defaults(run=_cmd_ingest)

    b = sub.add_parser("bench", help="one epoch of a dataset's images: deeplake_loader vs torch DataLoader + Pillow",
                       description=bench.__doc__.split("\n\n")[0].replace("`", ""))
    bench.add_arguments(b)
    b.set_defaults(run=_cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DeepLakeLoaderError as e:
        print(f"deeplake-loader {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        again = " (run the same command again to resume)" if args.command == "ingest" else ""
        print(f"deeplake-loader {args.command}: interrupted{again}", file=sys.stderr)
        return 130
