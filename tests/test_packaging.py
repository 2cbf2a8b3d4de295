"""The wheel carries the bundled weights, the card templates and the kernel sources, and works installed."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("tokenizers_zoo-*.whl")
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    code = (
        "import tempfile, tokenizers_zoo\n"
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
