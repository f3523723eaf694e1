"""conda/meta.yaml rendered the way conda-build renders it (Jinja2, then YAML).

conda-build cannot run here (no conda channels): tests/unit/test_packaging.py checks the rendered
recipe against pyproject.toml, and tests/integration/test_wheel.py runs its ``test:`` section
against the installed wheel.
"""

from __future__ import annotations

from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.9/3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def render_recipe() -> dict:
    import jinja2
    import yaml

    def load_file_data(name, from_recipe_dir=True):
        base = ROOT / "conda" if from_recipe_dir else ROOT
        return tomllib.loads((base / name).read_text())

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string((ROOT / "conda" / "meta.yaml").read_text()).render(
        load_file_data=load_file_data,
        compiler=lambda lang: f"{lang}-compiler",
        pin_compatible=lambda name, **kw: name,
        PYTHON="python",
    )
    return yaml.safe_load(text)
