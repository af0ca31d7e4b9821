"""The package as installed: every subpackage is listed for installation, the CLI lives inside the
landscape namespace, and the core never imports torchvision."""
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_installed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"landscape." + ".".join(p.parent.relative_to(REPO / "landscape").parts)
             for p in (REPO / "landscape").rglob("__init__.py") if p.parent != REPO / "landscape"}
    assert found | {"landscape", "landscape.cli"} == listed
    assert config["package-dir"] == {"landscape.cli": "cli"}  # no top-level `cli` package


def test_core_does_not_import_torchvision():
    code = ("import sys, landscape, landscape.api, landscape.report, landscape.prune, landscape.lmc, "
            "landscape.cli.main; assert 'torchvision' not in sys.modules, 'torchvision was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
