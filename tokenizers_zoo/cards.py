"""Model cards (``README.md``) rendered from the templates in ``model_cards/``."""

from __future__ import annotations

import string

from huggingface_hub import ModelCardData
from torch import nn

from . import registry
from .version import __version__
from .resources import data_dir

PIPELINE_TAGS = {"image": "image-to-image", "audio": "audio-to-audio", "graph": "graph-ml"}


def read_template(name: str) -> string.Template:
    return string.Template((data_dir("model_cards") / name).read_text(encoding="utf-8"))


def render_model_card(model: nn.Module) -> str:
    """The card for ``model``: YAML metadata for the Hub, then what it is and how to use it."""
    info = registry.model_info(model.model_name) if model.model_name and registry.is_model(model.model_name) else None
    modality = model.input_spec.modality
    repo_id = f"<org>/{model.model_name or model.architecture}"
    tags = ["tokenizers-zoo", f"{modality}-tokenization", "vector-quantization", model.architecture]
    if info and info.paper_url and "arxiv.org/abs/" in info.paper_url:
        tags.append("arxiv:" + info.paper_url.rsplit("/", 1)[-1])
    card_data = ModelCardData(
        library_name="tokenizers-zoo",
        license=(info.license if info else "other"),
        tags=tags,
        pipeline_tag=PIPELINE_TAGS[modality],
        datasets=list(info.datasets) if info else None,
        metrics=sorted(info.metrics) if info and info.metrics else None,
    )
    quantizer = model.quantizer
    groups = f" x {quantizer.num_groups} groups" if quantizer.num_groups > 1 else ""
    usage = read_template(f"usage_{modality}.md").substitute(source=model.model_name or repo_id)
    return read_template("tokenizer.md").substitute(
        metadata=card_data.to_yaml(),
        title=model.model_name or model.architecture,
        description=info.description if info else f"A `{model.architecture}` tokenizer.",
        architecture=model.architecture,
        modality=modality,
        codebook=f"{quantizer.codebook_size} codes of dimension {quantizer.code_dim}{groups}",
        tokens=info.tokens if info else "see the config",
        index_layout=model.index_layout,
        input_spec=model.input_spec.describe(),
        paper=_link(info.paper, info.paper_url) if info else "-",
        official_repo=(info.official_repo or "-") if info else "-",
        official_weights=(info.official_weights or "-") if info else "-",
        license=info.license if info else "other",
        metrics=_metrics_table(info.metrics) if info and info.metrics else "No reported metrics yet.",
        usage=usage,
        version=__version__,
    )


def _link(text: str | None, url: str | None) -> str:
    if text and url:
        return f"[{text}]({url})"
    return text or url or "-"


def _metrics_table(metrics: dict[str, float]) -> str:
    rows = "\n".join(f"| {name} | {value:g} |" for name, value in sorted(metrics.items()))
    return f"| metric | value |\n|---|---|\n{rows}"
