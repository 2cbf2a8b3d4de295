from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
CIFAR = DATA / "cifar10"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def cifar_images() -> torch.Tensor:
    """The 100 held-out CIFAR-10 test images as [100, 3, 32, 32] in [-1, 1]."""
    from tokenizers_zoo.data import ImageFolder

    dataset = ImageFolder(CIFAR)
    return torch.stack([dataset[i] for i in range(len(dataset))])


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def small_image_model(**quantizer):
    """A tiny VQ-VAE (taming encoder/decoder, 32 channels) for training tests: an EMA codebook of 64 x 8."""
    import tokenizers_zoo

    spec = {"type": "vq", "codebook_size": 64, "ema": True, **quantizer}
    return tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer=spec)
