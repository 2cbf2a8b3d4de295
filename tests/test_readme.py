"""Every Python example in README.md runs as written, and its model table lists every registered model."""

import re
from pathlib import Path

import pytest

import tokenizers_zoo

README = Path(__file__).parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(EXAMPLES[index], f"README.md example {index + 1}", "exec"), {"__name__": f"readme_{index}"})


def test_model_table_lists_every_registered_model():
    table = README.read_text(encoding="utf-8").split("## Models", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.MULTILINE)
    assert sorted(listed) == sorted(tokenizers_zoo.list_models())
