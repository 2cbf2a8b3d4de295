"""Where the package's data folders are: installed (wheel) or in a source checkout.

``cuda/`` and ``model_cards/`` live at the top of the repository and are installed as the data packages
``tokenizers_zoo._cuda`` and ``tokenizers_zoo._model_cards`` (folders without ``__init__.py``). When the
package is imported from a checkout (tests, editable installs run from the repository root) those names
do not resolve, so the top-level folders are used directly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_DATA_PACKAGES = {"cuda": "tokenizers_zoo._cuda", "model_cards": "tokenizers_zoo._model_cards"}


def data_dir(name: str) -> Path:
    """The folder holding the ``cuda`` or ``model_cards`` files."""
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec(_DATA_PACKAGES[name])
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package's {name} files are missing: reinstall tokenizers-zoo")
    return Path(next(iter(spec.submodule_search_locations)))
