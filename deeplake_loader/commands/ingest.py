"""`deeplake-loader ingest FOLDER PATH`: a folder of images into a dataset of images + labels, resumable.

The plan is the ordered list of (image file, class id):

* by default, one sub-folder per class: classes are the sub-folder names, sorted; files are taken
  in sorted order within each class;
* with ``--labels file.csv``: a CSV whose header row names a ``filename`` and a ``label`` column
  (other columns are ignored). ``filename`` is relative to FOLDER (or absolute); ``label`` is a
  class name, or, when every label is a whole number, the class id itself. Rows keep the CSV's
  order; class names are the distinct labels, sorted.

Files of the chosen ``--compression`` (by suffix) are stored as they are, never re-encoded; files of
another format are skipped and counted; a file whose bytes are not what its suffix says is an
error listing every such file before anything is written.

Resuming: ``ds.info["ingest"]`` records the source, the number of files and a digest of the plan.
Running the same command again after an interruption (Ctrl-C, a killed process) continues where the
dataset stops: each tensor catches up from its own length (a kill can fall between the writes of
the two tensors; format/writer.py drops any half-written append), so nothing is stored twice or
lost. If the folder or CSV changed meanwhile, the command says so and asks for ``--overwrite``.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from ..errors import DeepLakeLoaderError

SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
_MAGIC = {"jpeg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",)}
TENSORS = ("images", "labels")


class Plan:
    """What to ingest, in order: ``files`` [(Path, class id)], ``class_names`` (None: ids as given),
    ``skipped`` (files of another format), ``source`` (how labels were found)."""

    def __init__(self, files, class_names, skipped, source):
        self.files, self.class_names, self.skipped, self.source = files, class_names, skipped, source

    def digest(self, folder: Path) -> str:
        h = hashlib.sha256()
        h.update(repr(self.class_names).encode())
        for f, label in self.files:
            h.update(f"{os.path.relpath(f, folder)}\t{label}\n".encode())
        return h.hexdigest()


def plan_folders(folder: Path, compression: str) -> Plan:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DeepLakeLoaderError(f"{folder}: no class sub-folders (expected {folder}/<class>/<image>, "
                                  "or give the labels with --labels file.csv)")
    files, skipped = [], []
    for label, name in enumerate(classes):
        for f in sorted((folder / name).iterdir()):
            if f.is_file():
                (files if SUFFIXES.get(f.suffix.lower()) == compression else skipped).append((f, label))
    return Plan(files, classes, [f for f, _ in skipped], "class sub-folders")


def plan_csv(folder: Path, csv_path: Path, compression: str) -> Plan:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DeepLakeLoaderError(f"--labels {csv_path}: {e.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip().lower(): c for c in (reader.fieldnames or [])}
    if "filename" not in columns or "label" not in columns:
        raise DeepLakeLoaderError(f"--labels {csv_path}: the header row must name a 'filename' and a 'label' "
                                  f"column, it has {reader.fieldnames}")
    rows, seen, problems = [], {}, []
    for line, rec in enumerate(reader, start=2):
        name = (rec.get(columns["filename"]) or "").strip()
        label = (rec.get(columns["label"]) or "").strip()
        if not name or not label:
            problems.append(f"line {line}: empty {'filename' if not name else 'label'}")
            continue
        path = folder / name
        if name in seen:
            problems.append(f"line {line}: {name} is also on line {seen[name]}")
        elif not path.is_file():
            problems.append(f"line {line}: {path} is not a file")
        seen[name] = line
        rows.append((path, label))
    if problems:
        raise DeepLakeLoaderError(f"--labels {csv_path}: " + "; ".join(problems[:10])
                                  + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
    if not rows:
        raise DeepLakeLoaderError(f"--labels {csv_path}: no rows")
    if all(label.isdigit() for _, label in rows):
        class_names, ids = None, [int(label) for _, label in rows]
    else:
        class_names = sorted({label for _, label in rows})
        index = {name: i for i, name in enumerate(class_names)}
        ids = [index[label] for _, label in rows]
    files = [(p, i) for (p, _), i in zip(rows, ids) if SUFFIXES.get(p.suffix.lower()) == compression]
    skipped = [p for p, _ in rows if SUFFIXES.get(p.suffix.lower()) != compression]
    return Plan(files, class_names, skipped, f"csv {csv_path.resolve()}")


def check_signatures(plan: Plan, compression: str) -> None:
    """Every file starts as its format does; one error naming all that do not."""
    bad = []
    for f, _ in plan.files:
        with open(f, "rb") as fh:
            head = fh.read(8)
        if not head.startswith(_MAGIC[compression]):
            bad.append(str(f))
    if bad:
        raise DeepLakeLoaderError(f"{len(bad)} file(s) named like {compression} are not {compression} files: "
                                  + ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else ""))


def _open(path: str, plan: Plan, record: dict, overwrite: bool):
    """(dataset, rows already ingested per tensor): a new dataset, or the one an interrupted run of the
    same ingest left at PATH."""
    from .. import empty, exists, load

    if exists(path) and not overwrite:
        ds = load(path)
        previous = ds.info.get("ingest")
        names = set(ds.tensors)
        if previous is None:
            if names <= set(TENSORS) and not any(len(ds[n]) for n in names):
                overwrite = True  # created, then interrupted before the first row: start again
            else:
                raise DeepLakeLoaderError(f"{path} already holds a dataset that this command did not start; "
                                          "pass --overwrite to replace it")
        elif previous.get("plan_sha256") != record["plan_sha256"] or names != set(TENSORS):
            raise DeepLakeLoaderError(
                f"{path} holds an ingest of {previous.get('files')} files from {previous.get('folder')} "
                f"({previous.get('labels')}); {record['folder']} ({record['labels']}) now gives "
                f"{record['files']} different files or labels. Restore the source to resume, or pass "
                "--overwrite to start over")
        else:
            for n in TENSORS:  # an append of nothing first drops what a cut-short append left (format/writer.py)
                ds[n].extend([])
            return ds, {n: len(ds[n]) for n in TENSORS}
    ds = empty(path, overwrite=overwrite)
    ds.create_tensor("images", htype="image", sample_compression=record["compression"])
    if plan.class_names is None:
        ds.create_tensor("labels", htype="class_label")
    else:
        ds.create_tensor("labels", htype="class_label", class_names=plan.class_names)
    ds.info["ingest"] = record
    return ds, {n: 0 for n in TENSORS}


def _columns(part):
    from ..sample import Sample

    return {"images": [Sample(str(f)) for f, _ in part], "labels": [label for _, label in part]}


def run(folder: str, path: str, *, compression: str = "jpeg", labels: str | None = None, overwrite: bool = False,
        batch: int = 256, progress: bool = True) -> int:
    from tqdm import tqdm

    folder = Path(folder)
    if not folder.is_dir():
        raise DeepLakeLoaderError(f"{folder}: not a folder")
    if batch < 1:
        raise DeepLakeLoaderError(f"--batch must be at least 1, got {batch}")
    plan = plan_csv(folder, Path(labels), compression) if labels else plan_folders(folder, compression)
    if not plan.files:
        raise DeepLakeLoaderError(f"{folder}: no {compression} images ({plan.source})")
    check_signatures(plan, compression)
    record = {"folder": str(folder.resolve()), "labels": plan.source, "compression": compression,
              "files": len(plan.files), "plan_sha256": plan.digest(folder)}
    ds, done = _open(path, plan, record, overwrite)
    total, start = len(plan.files), max(done.values())
    if min(done.values()) == total:
        print(f"{path}: all {total} images already stored, nothing to do")
        return 0
    if start:
        print(f"{path}: {start} of {total} images already stored, resuming", flush=True)
    for name, n in done.items():  # a tensor behind the other: catch it up first
        if n < start:
            ds[name].extend(_columns(plan.files[n:start])[name])
    with tqdm(total=total, initial=start, unit="img", desc="ingest", disable=not progress, mininterval=0.5,
              dynamic_ncols=True) as bar:
        for lo in range(start, total, batch):
            part = plan.files[lo:lo + batch]
            ds.extend(_columns(part))  # written (flushed) before the next batch starts
            bar.update(len(part))
    classes = "" if plan.class_names is None else f" in {len(plan.class_names)} classes"
    skipped = f" ({len(plan.skipped)} files of another format skipped)" if plan.skipped else ""
    print(f"{path}: {total} images{classes}{skipped}")
    return 0
