"""WeTok's second stage: a generative decoder (noise input) started from a trained deterministic model.

The official ``init_from_ckpt`` (``models/lfqgan_pretrain_gan_decoder.py``) loads the trained encoder and decoder
and concatenates zeros to ``decoder.conv_in.weight`` along its input channels, so the noise channels start
with no influence and the new model decodes exactly as the old one. Stage 2 then trains the decoder alone
against a discriminator, the encoder and quantizer frozen (``"freeze": ["encoder", "quantizer"]`` in a recipe,
as ``recipes/wetok_tiny_gd_cifar10.json``).
"""

from __future__ import annotations

import torch

from ..hub import load_state_dict_checked
from ..models.wetok import WeTok

CONV_IN = "decoder.conv_in.weight"


def extend_decoder(model: WeTok) -> WeTok:
    """A copy of the deterministic WeTok ``model`` with a generative decoder: every weight copied, the
    decoder's conv_in zero-extended over the noise channels. Its outputs equal ``model``'s for any noise."""
    if not isinstance(model, WeTok):
        raise ValueError(f"only a WeTok decoder can be extended with a noise input, got a {type(model).__name__}")
    if model.config.gan_decoder:
        raise ValueError("the model's decoder already takes noise (gan_decoder=True)")
    extended = WeTok(model.config.replace(gan_decoder=True))
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    state[CONV_IN] = torch.cat([state[CONV_IN], torch.zeros_like(state[CONV_IN])], dim=1)
    load_state_dict_checked(extended, state, "the extended model")
    return extended.to(model.device).train(model.training)
