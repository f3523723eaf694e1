"""The deeplake-loader command: ingest a class-per-folder image tree, then look at it."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image

import deeplake_loader as dl
from deeplake_loader.cli import main


def make_tree(root):
    for label, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8 + i, 10, 3), 40 * label + i, np.uint8)).save(root / name / f"{i}.jpg", quality=95)
    (root / "dogs" / "notes.txt").write_text("not an image")


def test_ingest_stores_files_as_is_and_info_prints_them(tmp_path, capsys):
    make_tree(tmp_path / "tree")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")]) == 0
    assert "6 images in 2 classes (1 files of another format skipped)" in capsys.readouterr().out
    ds = dl.load(str(tmp_path / "ds"), read_only=True)
    assert ds.labels.info.class_names == ["cats", "dogs"]
    assert ds.labels.numpy().reshape(-1).tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images[4].tobytes() == (tmp_path / "tree" / "dogs" / "1.jpg").read_bytes()
    assert main(["info", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "images" in out and "class_label" in out and "jpeg" in out


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "missing"), str(tmp_path / "ds")]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nothing")]) == 1
    assert "No Deep Lake dataset" in capsys.readouterr().err
    make_tree(tmp_path / "tree")
    main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")])
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")]) == 1
    assert "overwrite" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "deeplake_loader", "info", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and "No Deep Lake dataset" in out.stderr
