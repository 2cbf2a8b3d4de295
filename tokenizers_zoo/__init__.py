"""tokenizers_zoo: discrete image, audio and graph tokenizers behind one interface.

>>> import tokenizers_zoo
>>> tokenizers_zoo.list_models("vqvae*")
['vqvae_tiny']
"""

from .version import __version__
from . import ops
from .converters import convert_official
from .factory import create_model
from .hub import CheckpointError, load_pretrained as from_pretrained
from .interfaces import Decoder, Encoder, Quantizer
from .models import AudioTokenizer, GraphTokenizer, ImageTokenizer, Keywords, Tokenizer, TokenizerConfig
from .outputs import CodebookStats, EncodeOutput, QuantizerOutput, TokenizerOutput
from .registry import ModelInfo, is_model, list_models, model_info, register_model
from .specs import AudioSpec, GraphSpec, ImageSpec

__all__ = [
    "AudioSpec", "AudioTokenizer", "CheckpointError", "CodebookStats", "Decoder", "EncodeOutput", "Encoder",
    "GraphSpec", "GraphTokenizer", "ImageSpec", "ImageTokenizer", "Keywords", "ModelInfo", "Quantizer",
    "QuantizerOutput", "Tokenizer", "TokenizerConfig", "TokenizerOutput", "__version__", "convert_official",
    "create_model", "from_pretrained", "is_model", "list_models", "model_info", "ops", "register_model",
]
