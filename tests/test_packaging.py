"""The wheel carries the bundled weights, the card templates and the kernel sources, and works installed."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a clean copy: a stale build/ folder in the checkout would fill in missing packages
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("tokenizers_zoo-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tokenizers_zoo").rglob("*.py")}
    assert modules <= packed, f"missing from the wheel: {sorted(modules - packed)}"
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    code = (
        "import importlib, pkgutil, tempfile, tokenizers_zoo\n"
        "for module in pkgutil.walk_packages(tokenizers_zoo.__path__, 'tokenizers_zoo.'):\n"
        "    if module.name != 'tokenizers_zoo.__main__':\n"
        "        importlib.import_module(module.name)\n"
        "from tokenizers_zoo.resources import data_dir\n"
        "assert tokenizers_zoo.__file__.startswith(%r)\n"
        "assert (data_dir('cuda') / 'nearest_codeword.cu').is_file()\n"
        "model = tokenizers_zoo.from_pretrained('vqvae_tiny')\n"
        "with tempfile.TemporaryDirectory() as folder:\n"
        "    model.save_pretrained(folder)\n"
        "    print(open(folder + '/README.md').read().splitlines()[0])\n"
    ) % str(target)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "---"
