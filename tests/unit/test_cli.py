"""The deeplake-loader command: ingest an image tree (class sub-folders or a CSV of labels), look at it.
(Resuming after a killed process and `bench` run the real command: tests/integration/test_cli.py.)"""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import deeplake_loader as dl
from deeplake_loader.cli import main
from deeplake_loader.storage.local import LocalProvider


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
    assert ds.info["ingest"]["files"] == 6 and ds.info["ingest"]["labels"] == "class sub-folders"
    assert main(["info", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "images" in out and "class_label" in out and "jpeg" in out


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "missing"), str(tmp_path / "ds")]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nothing")]) == 1
    assert "No Deep Lake dataset" in capsys.readouterr().err
    make_tree(tmp_path / "tree")
    other = dl.empty(str(tmp_path / "other"))
    other.create_tensor("x")
    other.x.extend([np.zeros(2)])
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "other")]) == 1
    assert "did not start; pass --overwrite" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "other"), "--overwrite"]) == 0
    assert len(dl.load(str(tmp_path / "other")).images) == 6


def test_running_a_finished_ingest_again_changes_nothing(tmp_path, capsys):
    make_tree(tmp_path / "tree")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")]) == 0
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")]) == 0
    assert "all 6 images already stored, nothing to do" in capsys.readouterr().out
    assert len(dl.load(str(tmp_path / "ds")).images) == 6


def test_a_changed_folder_is_not_resumed_into(tmp_path, capsys):
    make_tree(tmp_path / "tree")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds"), "--no-progress"]) == 0
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "tree" / "cats" / "new.jpg")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "holds an ingest of 6 files" in err and "7 different files" in err and "--overwrite" in err


def test_a_lagging_tensor_catches_up(tmp_path, capsys):
    """What a kill between the writes of the two tensors leaves: images one batch ahead of labels."""
    make_tree(tmp_path / "tree")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds"), "--batch", "2", "--no-progress"]) == 0
    full = dl.load(str(tmp_path / "ds"), read_only=True)
    want = [full.images[i].tobytes() for i in range(6)]
    # rebuild the state by hand: 4 images, 2 labels, the same ingest record
    ds = dl.empty(str(tmp_path / "cut"))
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.create_tensor("labels", htype="class_label", class_names=["cats", "dogs"])
    ds.info["ingest"] = dict(full.info["ingest"])
    ds.images.extend([dl.read(str(tmp_path / "tree" / "cats" / f"{i}.jpg")) for i in range(3)]
                     + [dl.read(str(tmp_path / "tree" / "dogs" / "0.jpg"))])
    ds.labels.extend([0, 0])
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "cut"), "--no-progress"]) == 0
    assert "4 of 6 images already stored, resuming" in capsys.readouterr().out
    ds = dl.load(str(tmp_path / "cut"), read_only=True)
    assert [ds.images[i].tobytes() for i in range(len(ds.images))] == want
    assert ds.labels.numpy().reshape(-1).tolist() == [0, 0, 0, 1, 1, 1]


class Killed(BaseException):
    """The process died here."""


def test_resume_after_a_write_cut_short(tmp_path, monkeypatch, capsys):
    """Killed after the second batch's images chunk and chunk index were written, before its
    tensor_meta.json: the run again drops that half-written batch and stores it once."""
    make_tree(tmp_path / "tree")
    real, metas = LocalProvider.put, []

    def put(self, key, data):
        if key.endswith("images/tensor_meta.json"):
            metas.append(key)
            if len(metas) == 3:  # 1: create_tensor, 2: first batch, 3: second batch
                raise Killed(key)
        return real(self, key, data)

    monkeypatch.setattr(LocalProvider, "put", put)
    args = ["ingest", str(tmp_path / "tree"), str(tmp_path / "ds"), "--batch", "2", "--no-progress"]
    with pytest.raises(Killed):
        main(args)
    monkeypatch.setattr(LocalProvider, "put", real)
    capsys.readouterr()
    assert main(args) == 0
    assert "2 of 6 images already stored, resuming" in capsys.readouterr().out
    ds = dl.load(str(tmp_path / "ds"), read_only=True)
    files = [tmp_path / "tree" / c / f"{i}.jpg" for c in ("cats", "dogs") for i in range(3)]
    assert [ds.images[i].tobytes() for i in range(len(ds.images))] == [f.read_bytes() for f in files]
    assert ds.labels.numpy().reshape(-1).tolist() == [0, 0, 0, 1, 1, 1]


def test_labels_from_a_csv(tmp_path, capsys):
    make_tree(tmp_path / "tree")
    (tmp_path / "tree" / "loose.jpg").write_bytes((tmp_path / "tree" / "cats" / "2.jpg").read_bytes())
    (tmp_path / "labels.csv").write_text("Filename,label,comment\n"
                                         "dogs/1.jpg,zebra,x\nloose.jpg,ant,\ncats/0.jpg,zebra,y\n"
                                         "dogs/notes.txt,ant,\n")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds"), "--labels", str(tmp_path / "labels.csv"),
                 "--no-progress"]) == 0
    assert "3 images in 2 classes (1 files of another format skipped)" in capsys.readouterr().out
    ds = dl.load(str(tmp_path / "ds"), read_only=True)
    assert ds.labels.info.class_names == ["ant", "zebra"]
    assert ds.labels.numpy().reshape(-1).tolist() == [1, 0, 1]
    assert [ds.images[i].tobytes() for i in range(3)] == [
        (tmp_path / "tree" / p).read_bytes() for p in ("dogs/1.jpg", "loose.jpg", "cats/0.jpg")]


def test_whole_number_csv_labels_are_class_ids(tmp_path):
    make_tree(tmp_path / "tree")
    (tmp_path / "ids.csv").write_text("filename,label\ncats/1.jpg,7\ndogs/2.jpg,0\n")
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds"), "--labels", str(tmp_path / "ids.csv"),
                 "--no-progress"]) == 0
    ds = dl.load(str(tmp_path / "ds"), read_only=True)
    assert ds.labels.numpy().reshape(-1).tolist() == [7, 0]
    assert not ds.labels.info.class_names


def test_bad_csv_and_bad_files_are_named(tmp_path, capsys):
    make_tree(tmp_path / "tree")
    csv = tmp_path / "l.csv"
    args = ["ingest", str(tmp_path / "tree"), str(tmp_path / "ds"), "--labels", str(csv)]
    csv.write_text("file,class\ncats/0.jpg,a\n")
    assert main(args) == 1
    assert "must name a 'filename' and a 'label' column, it has ['file', 'class']" in capsys.readouterr().err
    csv.write_text("filename,label\ncats/0.jpg,a\ncats/9.jpg,b\ncats/0.jpg,c\ncats/1.jpg,\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "line 3: " in err and "cats/9.jpg is not a file" in err
    assert "line 4: cats/0.jpg is also on line 2" in err and "line 5: empty label" in err
    (tmp_path / "tree" / "cats" / "fake.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    assert main(["ingest", str(tmp_path / "tree"), str(tmp_path / "ds")]) == 1
    assert "1 file(s) named like jpeg are not jpeg files: " in capsys.readouterr().err
    assert not dl.exists(str(tmp_path / "ds"))


def test_module_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "deeplake_loader", "info", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and "No Deep Lake dataset" in out.stderr
