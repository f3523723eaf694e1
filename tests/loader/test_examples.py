"""The example scripts run end to end (small sizes) and learn something."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("workers", [0, 2])
def test_fashion_cnn_trains(tmp_path, workers, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # importable by name: spawned workers unpickle its transform
    mod = importlib.import_module("train_fashion_cnn")
    history = mod.main(["--path", str(tmp_path / "fashion"), "--n", "1200", "--epochs", "2",
                           "--workers", str(workers)])
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["accuracy"] > 0.3  # 10 classes: chance is 0.1


def test_demo_runs(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "demo.py"), "--images", "300", "--epochs", "1",
                          "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "images/s" in out.stdout and "epoch 1" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_lightning", "train_keras"])
def test_framework_examples_train(tmp_path, script, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    mod = importlib.import_module(script)
    history = mod.main(["--images", "600", "--epochs", "3", "--workdir", str(tmp_path)])
    assert len(history) == 3
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["accuracy"] > 0.3  # 4 classes: chance is 0.25
