"""qrr as users get it: the wheel and the sdist hatchling builds, and the library and commands without their extras."""

from __future__ import annotations

import email
import importlib
import pydoc
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import qrr
from tests.clitools import said

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-d", str(out)], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_wheel_holds_the_package_its_license_and_its_version(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "qrr").rglob("*.py")}
    assert sources <= names and "qrr/py.typed" in names  # a type checker reads qrr's hints only with py.typed
    assert {n.split("/", 1)[0] for n in names} == {"qrr", info}  # no tests, benchmarks or caches
    assert metadata["Version"] == qrr.__version__  # one version: pyproject reads qrr/_version.py's
    assert metadata["License-Expression"] == "Apache-2.0" and metadata["License-File"] == "LICENSE"
    assert f"{info}/licenses/LICENSE" in names
    assert "Typing :: Typed" in metadata.get_all("Classifier")


def test_the_sdist_holds_the_license_and_no_caches(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "docs/cli.md",
        "pyproject.toml",
        "qrr/__init__.py",
        "tests/tiny.py",
    } <= names
    assert not [n for n in names if n.split("/")[0] in (".hypothesis", ".venv", ".git", ".pytest_cache")]


@pytest.fixture
def without_ray(monkeypatch):
    """As where the ray extra is not installed: its packages' imports refused, qrr.raydata not imported yet."""
    for name in ("ray", "pyarrow"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "qrr.raydata", raising=False)
    if "raydata" in vars(qrr):  # getattr would import it
        monkeypatch.delattr(qrr, "raydata")


def test_the_modules_are_listed_for_completion():
    assert {"pipelines", "formats", "server", "raydata"} <= set(dir(qrr))  # the test extra installs Ray


def test_help_on_qrr_without_the_ray_extra(without_ray):
    assert "raydata" not in dir(qrr) and "pipelines" in dir(qrr)
    # pydoc reads every name dir() lists: with raydata among them, help(qrr) said "No module named 'pyarrow'"
    assert "Reranker" in pydoc.render_doc(qrr)


def test_qrr_raydata_without_the_ray_extra_names_the_extra(without_ray):
    with pytest.raises(
        ImportError, match=r"^qrr.raydata needs Ray Data: pip install 'qrr\[ray\]' \(pyarrow is missing\)$"
    ) as caught:
        importlib.import_module("qrr.raydata")
    assert caught.value.name == "pyarrow"


def test_ray_options_without_the_ray_extra(without_ray, cli, tmp_path):
    (tmp_path / "pairs.jsonl").write_text('{"query": "q", "document": "d"}\n')
    result = cli("score", "--ray", "-o", str(tmp_path / "out.jsonl"), str(tmp_path / "pairs.jsonl"))
    assert result.exit_code == 1
    assert said(result) == "error: --ray needs Ray Data: pip install 'qrr[ray]' (pyarrow is missing)"


def test_serve_without_the_serve_extra(monkeypatch, cli):
    # its modules imported by earlier tests too: a cached submodule is found without its package
    for name in ["starlette", *(n for n in sys.modules if n.startswith("starlette."))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "qrr.server.app", raising=False)
    if "app" in vars(qrr.server):
        monkeypatch.delattr(qrr.server, "app")
    result = cli("serve", model=False)
    assert result.exit_code == 1
    assert said(result) == "error: qrr serve needs the serve extra: pip install 'qrr[serve]' (starlette is missing)"
    # the module itself says so, as qrr.raydata does
    monkeypatch.delitem(sys.modules, "qrr.server.app", raising=False)
    with pytest.raises(ImportError, match=r"^qrr.server.app needs the serve extra: pip install 'qrr\[serve\]' "
                                          r"\(starlette is missing\)$") as caught:  # fmt: skip
        importlib.import_module("qrr.server.app")
    assert caught.value.name == "starlette.applications"
    assert "Needs the serve extra: pip install 'qrr[serve]'." in " ".join(
        cli("serve", "--help", model=False).stdout.split()
    )
