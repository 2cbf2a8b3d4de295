"""Image, audio and graph data: loading, saving, datasets and their errors."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from PIL import Image

from tokenizers_zoo.data import (
    AudioFolder,
    GraphDataset,
    ImageFolder,
    collate_audio,
    image_size,
    list_audio,
    load_audio,
    load_image,
    save_audio,
    save_image,
)

DATA = Path(__file__).parent / "data"
AUDIO = DATA / "audio"
CLIP = AUDIO / "8455_210777_000067_000000.wav"  # LibriTTS, 24 kHz mono, 73,201 frames
CLIP_FRAMES = 73201


def old_load_image(path, size=None):
    """``load_image`` before high-bit-depth support: everything through convert("RGB")."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    if size is not None:
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((width, height), Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 127.5 - 1.0


def rgb_image(width, height, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


# --- images -----------------------------------------------------------------------------------------------------


def test_16bit_grayscale_png_keeps_its_levels(tmp_path):
    levels = np.random.default_rng(0).integers(0, 65536, (12, 16)).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(levels).save(path)
    expected = torch.from_numpy(levels / 65535 * 2 - 1).float()
    image = load_image(path)
    assert image.shape == (3, 12, 16) and image.dtype == torch.float32
    for channel in image:
        torch.testing.assert_close(channel, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(old_load_image(path)[0], expected, atol=0.01)  # convert("RGB") clips to white


def test_16bit_resize_keeps_more_than_8_bits(tmp_path):
    ramp = np.linspace(0, 65535, 300 * 200).reshape(200, 300).round().astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    image = load_image(path, size=100)
    assert image.shape == (3, 100, 100)
    assert image.min() >= -1 and image.max() <= 1
    assert len(image[0].unique()) > 256
    torch.testing.assert_close(image[0].mean(), torch.tensor(0.0), atol=0.01, rtol=0)  # the ramp is symmetric


def test_float_tiff_in_unit_range_loads_exactly(tmp_path):
    values = np.random.default_rng(1).random((10, 14), dtype=np.float32)
    values[0, :2] = 0, 1
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert torch.equal(image, (torch.from_numpy(values) * 2 - 1).expand(3, -1, -1))


def test_float_tiff_out_of_range_or_not_finite_is_refused(tmp_path):
    path = tmp_path / "hdr.tif"
    Image.fromarray(np.linspace(0, 300, 64, dtype=np.float32).reshape(8, 8)).save(path)
    with pytest.raises(ValueError, match=r"hdr\.tif is a float image with values from 0 to 300"):
        load_image(path)
    values = np.zeros((8, 8), np.float32)
    values[3, 3] = np.nan
    Image.fromarray(values).save(path)
    with pytest.raises(ValueError, match=r"hdr\.tif is a float image with non-finite values"):
        load_image(path)


def test_32bit_integer_tiff_is_refused(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.arange(64, dtype=np.int32).reshape(8, 8) * 1000).save(path)
    with pytest.raises(ValueError, match=r"int32\.tif is a 32-bit integer image \(Pillow mode I\).*8- or 16-bit"):
        load_image(path)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L"])
@pytest.mark.parametrize("size", [None, 20])
def test_8bit_modes_load_as_before(tmp_path, mode, size):
    path = tmp_path / f"{mode}.png"
    rgb_image(40, 30).convert(mode).save(path)
    with Image.open(path) as written:
        assert written.mode == mode
    image = load_image(path, size)
    assert torch.equal(image, old_load_image(path, size))
    assert image.shape == ((3, 30, 40) if size is None else (3, 20, 20))


def test_image_size_reads_the_header(tmp_path):
    rgb_image(40, 30).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((7, 9), np.uint16)).save(tmp_path / "gray16.png")
    assert image_size(tmp_path / "rgb.png") == (40, 30)
    assert image_size(tmp_path / "gray16.png") == (9, 7)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    for read in (image_size, load_image):
        with pytest.raises(FileNotFoundError, match="no image file .*missing.png"):
            read(tmp_path / "missing.png")
        with pytest.raises(ValueError, match=r"broken\.png is not a readable image"):
            read(tmp_path / "broken.png")


def test_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    rgb_image(40, 30).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for read in (image_size, load_image):
        with pytest.raises(ValueError, match=r"big\.png is too large.*1200 pixels.*MAX_IMAGE_PIXELS = 100 pixels"):
            read(path)


def test_save_image_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    image = load_image(DATA / "cifar10" / "airplane" / "0000.jpg")
    save_image(image, path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert torch.equal(load_image(path), image)  # decoded JPEG pixels are exact 8-bit levels
    before = path.read_bytes()

    def failing_save(self, target, *args, **kwargs):
        Path(target).write_bytes(b"half written")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(-image, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.fixture
def image_folder(tmp_path):
    rgb_image(40, 30, seed=1).save(tmp_path / "a.png")
    rgb_image(24, 36, seed=2).save(tmp_path / "b.png")
    return tmp_path


def test_image_folder_centre_crop_is_the_old_size_behaviour(image_folder):
    dataset = ImageFolder(image_folder, size=20)
    for i, path in enumerate(dataset.files):
        assert torch.equal(dataset[i], old_load_image(path, 20))
    original = load_image(image_folder / "a.png")
    assert torch.equal(ImageFolder(image_folder, crop=16)[0], original[:, 7:23, 12:28])  # crop at full resolution


def test_image_folder_random_crops_and_flips_are_seeded(image_folder):
    dataset = ImageFolder(image_folder, size=20, crop=12, random_crop=True, hflip=True)
    torch.manual_seed(3)
    first = [dataset[0] for _ in range(12)]
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(first, [dataset[0] for _ in range(12)]))
    assert all(image.shape == (3, 12, 12) for image in first)

    with Image.open(image_folder / "a.png") as original:  # 40x30, resized to 27x20 before cropping
        resized = original.convert("RGB").resize((27, 20), Image.BICUBIC)
    full = torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 127.5 - 1.0

    def placement(image):
        """(top, left, flipped) of the 12x12 window of ``full`` that ``image`` is."""
        return next(
            (top, left, flipped)
            for top in range(9)
            for left in range(16)
            for flipped in (False, True)
            if torch.equal(full[:, top : top + 12, left : left + 12], image.flip(-1) if flipped else image)
        )

    placements = [placement(image) for image in first]
    assert len({(top, left) for top, left, _ in placements}) > 3
    assert {flipped for _, _, flipped in placements} == {False, True}


def test_image_folder_errors(image_folder):
    with pytest.raises(ValueError, match=r"b\.png is 24x36 .*smaller than the 30x30 crop"):
        ImageFolder(image_folder, crop=30)[1]
    with pytest.raises(ValueError, match="crop 24 is larger than size 20"):
        ImageFolder(image_folder, size=20, crop=24)
    with pytest.raises(ValueError, match="random_crop needs a crop"):
        ImageFolder(image_folder, random_crop=True)


# --- audio ------------------------------------------------------------------------------------------------------


def test_libritts_clip_loads_at_24k():
    assert list_audio(AUDIO) == [CLIP]
    wav = load_audio(CLIP, 24000)
    assert wav.shape == (CLIP_FRAMES,) and wav.dtype == torch.float32
    assert torch.equal(wav, torch.from_numpy(soundfile.read(CLIP, dtype="float32")[0]))
    assert 0.01 < wav.abs().max() <= 1


def test_stereo_16k_becomes_the_resampled_channel_mean(tmp_path, caplog):
    t = np.arange(8000) / 16000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sign(np.sin(2 * np.pi * 100 * t))], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo.astype(np.float32), 16000, subtype="FLOAT")
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.data.audio"):
        wav = load_audio(path, 24000)
    mean = torch.from_numpy(stereo.astype(np.float32)).mean(dim=1)
    assert wav.shape == (12000,)
    torch.testing.assert_close(wav, torchaudio.functional.resample(mean, 16000, 24000))
    assert "stereo.wav: averaged 2 channels to mono" in caplog.text
    assert "stereo.wav: resampled from 16000 Hz to 24000 Hz" in caplog.text


def test_bad_audio_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no audio file .*missing.wav"):
        load_audio(tmp_path / "missing.wav", 24000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    with pytest.raises(ValueError, match=r"corrupt\.wav is not a readable audio file"):
        load_audio(tmp_path / "corrupt.wav", 24000)
    soundfile.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 24000)
    with pytest.raises(ValueError, match=r"empty\.wav holds no audio \(0 frames\)"):
        load_audio(tmp_path / "empty.wav", 24000)
    soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2], np.float32), 24000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan\.wav has non-finite samples"):
        load_audio(tmp_path / "nan.wav", 24000)


@pytest.mark.parametrize("name", ["out.wav", "out.flac"])
def test_save_audio_round_trips_in_16_bit(tmp_path, name):
    wav = torch.linspace(-1.2, 1.2, 5000)[None]
    path = tmp_path / name
    save_audio(wav, path, 24000)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    torch.testing.assert_close(load_audio(path, 24000), wav[0].clamp(-1, 1), atol=1.5 / 32768, rtol=0)


def test_save_audio_is_atomic_and_checks_its_input(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    save_audio(torch.zeros(100), path, 24000)
    before = path.read_bytes()

    def failing_write(target, *args, **kwargs):
        Path(target).write_bytes(b"half written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(soundfile, "write", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        save_audio(torch.ones(100), path, 24000)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    with pytest.raises(ValueError, match=r"cannot write .*out\.mp3: the suffix must be one of \.wav, \.flac"):
        save_audio(torch.zeros(100), tmp_path / "out.mp3", 24000)
    with pytest.raises(ValueError, match=r"expected non-empty audio \[T\] or \[1, T\], got shape \(2, 100\)"):
        save_audio(torch.zeros(2, 100), path, 24000)


def test_collate_audio_pads_and_returns_lengths():
    first = {"x": torch.ones(3), "lengths": torch.tensor(3)}
    second = {"x": torch.full((5,), 2.0), "lengths": torch.tensor(5)}
    batch = collate_audio([first, second, torch.full((4,), 3.0)])  # a bare tensor's length is its size
    assert torch.equal(batch["lengths"], torch.tensor([3, 5, 4]))
    assert batch["lengths"].dtype == torch.int64
    assert torch.equal(batch["x"], torch.tensor([[1.0, 1, 1, 0, 0], [2, 2, 2, 2, 2], [3, 3, 3, 3, 0]]))


def test_audio_folder_segments(tmp_path):
    short = tmp_path / "short.wav"
    soundfile.write(short, np.full(2400, 0.25, np.float32), 24000, subtype="FLOAT")
    dataset = AudioFolder([CLIP, short], 24000, segment=24000)
    assert dataset.collate is collate_audio
    clip = load_audio(CLIP, 24000)

    padded = dataset[1]
    assert padded["x"].shape == (24000,) and int(padded["lengths"]) == 2400
    assert torch.all(padded["x"][:2400] == 0.25) and torch.all(padded["x"][2400:] == 0)

    torch.manual_seed(7)
    crops = [dataset[0] for _ in range(4)]
    torch.manual_seed(7)
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(crops, [dataset[0] for _ in range(4)]))
    starts = set()
    for crop in crops:
        assert crop["x"].shape == (24000,) and int(crop["lengths"]) == 24000
        start = next(s for s in range(CLIP_FRAMES - 24000 + 1) if torch.equal(clip[s : s + 24000], crop["x"]))
        starts.add(start)
    assert len(starts) > 1

    assert torch.equal(AudioFolder([CLIP], 24000, segment=24000, random_crop=False)[0]["x"], clip[:24000])
    whole = AudioFolder(AUDIO, 24000)[0]
    assert torch.equal(whole["x"], clip) and int(whole["lengths"]) == CLIP_FRAMES
    batch = dataset.collate([dataset[0], dataset[1]])
    assert batch["x"].shape == (2, 24000) and batch["lengths"].tolist() == [24000, 2400]


# --- graph ------------------------------------------------------------------------------------------------------


def small_graph():
    x = torch.randn(5, 3)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    return x, edge_index, torch.tensor([0, 1, 0, 1, 1]), torch.tensor([True, True, False, False, True])


def test_graph_dataset_from_tensors():
    x, edge_index, labels, mask = small_graph()
    dataset = GraphDataset(x, edge_index, labels=labels, train_mask=mask)
    assert len(dataset) == 1
    item = dataset[0]
    assert list(item) == ["x", "edge_index", "labels", "train_mask"]
    assert item["x"] is x and item["edge_index"] is edge_index
    assert item["labels"] is labels and item["train_mask"] is mask
    assert dataset.collate([item]) is item
    items = list(dataset)  # iteration stops after the one graph
    assert len(items) == 1 and items[0] is item


def test_graph_dataset_from_pyg():
    from torch_geometric.data import Data

    x, edge_index, labels, mask = small_graph()
    data = Data(x=x, edge_index=edge_index, y=labels, train_mask=mask)
    item = GraphDataset.from_pyg(data, labels="y", train_mask="train_mask")[0]
    assert sorted(item) == ["edge_index", "labels", "train_mask", "x"]
    assert torch.equal(item["x"], x) and torch.equal(item["edge_index"], edge_index)
    assert torch.equal(item["labels"], labels) and torch.equal(item["train_mask"], mask)
    with pytest.raises(ValueError, match="the graph has no val_mask; its attributes: edge_index, train_mask, x, y"):
        GraphDataset.from_pyg(data, val_mask="val_mask")
    with pytest.raises(ValueError, match="the graph has no x"):
        GraphDataset.from_pyg(Data(edge_index=edge_index, num_nodes=5))


def test_graph_dataset_errors():
    x, edge_index, labels, _ = small_graph()
    bad = [
        ((x[0], edge_index), {}, r"x must be float node features \[N, F\], got torch.float32 tensor of shape \(3,\)"),
        ((x.long(), edge_index), {}, r"x must be float node features \[N, F\], got torch.int64"),
        ((x, edge_index.int()), {}, r"edge_index must be int64 \[2, E\], got torch.int32"),
        ((x, edge_index.T), {}, r"edge_index must be int64 \[2, E\], got torch.int64 tensor of shape \(4, 2\)"),
        ((x, edge_index + 1), {}, r"edge_index has node ids from 1 to 5, but x has 5 nodes \(ids 0..4\)"),
        ((x, edge_index - 1), {}, r"edge_index has node ids from -1 to 3"),
        ((x, edge_index), {"labels": labels[:4]}, r"labels must be a tensor with one row per node \(5\), got .*\(4,\)"),
        ((x, edge_index), {"labels": [0, 1, 0, 1, 1]}, r"labels must be a tensor with one row per node .*got list"),
    ]
    for args, node_tensors, message in bad:
        with pytest.raises(ValueError, match=message):
            GraphDataset(*args, **node_tensors)
    dataset = GraphDataset(x, edge_index)
    with pytest.raises(IndexError, match="one graph"):
        dataset[1]
    with pytest.raises(ValueError, match="expected a batch of 1 item, got 2"):
        dataset.collate([dataset[0], dataset[0]])
