"""The ``tokenizers-zoo`` command (also ``python -m tokenizers_zoo``): list, info, encode, decode, eval, convert,
build-codebook, fold, shrink, extend-decoder, train, build-cuda, vqgraph. Readers and writers follow the model's modality; every refusal is one line on stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import warnings
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Iterator

import torch
from tqdm import tqdm

from . import registry
from .atomic import atomic_folder, atomic_write
from .audio_metrics import audio_reconstruction_metrics, check_metric_length, kbps, missing_audio_metrics
from .config import ConfigError, read_json
from .converters import convert_official
from .data.signal_files import SignalFiles, signal_files
from .factory import create_model
from .hub import CheckpointError, load_pretrained
from .metrics import CodebookUsage, bits_per_pixel, frechet_inception_distance
from .objectives import LPIPS, MelL1
from .ops.cuda import CudaUnavailable
from .token_file import TokenFile, TokenFileError, load_tokens, save_tokens

if TYPE_CHECKING:
    from torchmetrics.image.fid import FrechetInceptionDistance

USER_ERRORS = (
    FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, ValueError, TypeError, KeyError, ImportError,
    ConfigError, CheckpointError, TokenFileError, CudaUnavailable,
)
MAX_NAME_BYTES = 255


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="tokenizers-zoo: %(message)s")
    logging.getLogger("tokenizers_zoo.data").setLevel(logging.INFO)  # notes on converted inputs (resampled, down-mixed)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tokenizers-zoo {args.command}: error: {message}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenizers-zoo", description="Discrete image, audio and graph tokenizers.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="registered models (wildcards allowed)")
    p.add_argument("pattern", nargs="*", default=["*"])
    p.add_argument("--modality", choices=registry.MODALITIES)
    p.add_argument("--pretrained", action="store_true", help="only models with released weights")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("info", help="metadata of a registered model")
    p.add_argument("model")
    p.set_defaults(run=cmd_info)

    p = commands.add_parser("encode", help="signal files -> token file")
    _model_arguments(p)
    p.add_argument("inputs", nargs="+", help="files or folders of files")
    p.add_argument("-o", "--output", required=True, help="token file to write (.safetensors)")
    p.add_argument("--size", type=int, help="images: resize the shorter side to SIZE and centre-crop square first")
    p.add_argument("--chunk-seconds", type=float, help="audio: encode long files in windows of this many seconds (flat memory)")
    p.add_argument("--chunk-context-seconds", type=float, help="audio: context on each side of a window (default 1 s)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=cmd_encode)

    p = commands.add_parser("decode", help="token file -> signal files")
    p.add_argument("tokens", help="token file written by 'encode'")
    p.add_argument("-o", "--output", required=True, help="output file (one item) or folder (created; keeps the items' folders)")
    p.add_argument("--model", help="decode with this model (default: the registered model the file names)")
    p.add_argument("--revision")
    p.add_argument("--device", default="cpu")
    p.add_argument("--online", action="store_true", help="allow downloading the model's weights from the Hub")
    p.add_argument("--force", action="store_true", help="decode with a model whose codebook differs; overwrite outputs")
    p.set_defaults(run=cmd_decode)

    p = commands.add_parser("eval", help="reconstruction quality, bits per pixel and codebook usage over a folder")
    _model_arguments(p)
    p.add_argument("data", help="folder of signal files")
    p.add_argument("--size", type=int)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="use at most this many files")
    p.add_argument("--save-reconstructions", metavar="DIR")
    p.add_argument("--lpips-backbone", metavar="PATH", help="images: torchvision vgg16 state dict, for LPIPS (with --lpips-linear)")
    p.add_argument("--lpips-linear", metavar="PATH", help="images: LPIPS v0.1 vgg.pth linear weights (with --lpips-backbone)")
    p.add_argument("--inception", metavar="PATH", help="images: torch-fidelity's InceptionV3 FID weights file, for rFID")
    p.add_argument("--json", metavar="PATH", help="audio: also write the results to this JSON file")
    p.set_defaults(run=cmd_eval)

    p = commands.add_parser("convert", help="an official checkpoint -> a zoo model folder")
    p.add_argument("checkpoint", help="the official .pth / .pt / .ckpt file")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--family", help="which converter (default: detected from the file)")
    p.add_argument("--config", help="the official YAML config (optional: the architecture is read from the checkpoint)")
    p.add_argument("--no-ema", dest="ema", action="store_const", const=False, default=None, help="use the live weights, not the EMA ones")
    p.add_argument("--trust-pickle", action="store_true", help="allow a file that needs full unpickling (runs code!)")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(run=cmd_convert)

    p = commands.add_parser("build-codebook", help="fill a model's frozen (LC) table with k-means of pooled patch features")
    p.add_argument("model", help="registered name, saved folder or Hub repo id whose quantizer has a projected table")
    p.add_argument("images", help="folder of images (one sub-folder per class with --per-class)")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--encoder", required=True, help="timm model name (built without downloading anything)")
    p.add_argument("--encoder-weights", help="timm state dict for the encoder (.safetensors or .pth); default: random features")
    p.add_argument("--trust-pickle", action="store_true", help="allow encoder weights that need full unpickling (runs code!)")
    p.add_argument("--size", type=int, default=224, help="resize the shorter side and centre-crop to SIZE")
    p.add_argument("--pool", type=int, default=4, help="average-pool the token grid in POOL x POOL cells")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--iters", type=int, default=10, help="k-means iterations")
    p.add_argument("--per-class", action="store_true", help="one k-means per sub-folder, as VQGAN-LC does per ImageNet class")
    p.add_argument("--project", action="store_true", help="map ViT tokens through the encoder's head (CLIP's projection)")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(run=cmd_build_codebook)

    p = commands.add_parser("fold", help="fold a projected table into a plain codebook (same tokens, small inference model)")
    p.add_argument("model", help="registered name, saved folder or Hub repo id")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(run=cmd_fold)

    p = commands.add_parser("shrink", help="k-means a model's codebook into fewer codes (a lower bitrate); writes the index map too")
    p.add_argument("model", help="registered name, saved folder or Hub repo id with a codebook quantizer")
    p.add_argument("-o", "--output", required=True, help="model folder to write, with index_map.json (new = index_map[old])")
    p.add_argument("--codebook-size", type=int, nargs="+", required=True, metavar="K", help="the new size, or one per group")
    p.add_argument("--data", help="folder of signal files: weight each code by how often the model chooses it on them")
    p.add_argument("--weighting", choices=("usage", "uniform"), help="default: usage with --data, else uniform")
    p.add_argument("--size", type=int, help="images: resize the shorter side to SIZE and centre-crop square first")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="use at most this many files")
    p.add_argument("--iters", type=int, default=20, help="k-means iterations")
    p.add_argument("--seed", type=int, default=0, help="seed of the k-means start")
    p.add_argument("--force", action="store_true", help="replace an existing shrunk model folder")
    p.set_defaults(run=cmd_shrink)

    p = commands.add_parser("extend-decoder", help="WeTok: a generative decoder (noise input) from a trained model, for stage 2")
    p.add_argument("model", help="registered name, saved folder or Hub repo id of a WeTok with a deterministic decoder")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(run=cmd_extend_decoder)

    p = commands.add_parser("build-cuda", help="compile the CUDA nearest-codeword kernel ahead of time")
    p.add_argument("--build-dir", help="where to build (default: torch's extension cache, used at run time)")
    p.add_argument("--arch", nargs="+", help="compute capabilities, e.g. 80 90 (default: the visible GPU's)")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_build_cuda)

    p = commands.add_parser("train", help="run a training recipe (works under torchrun)")
    p.add_argument("recipe", help="recipe JSON (see recipes/)")
    p.add_argument("--data", required=True, help="folder of training data")
    p.add_argument("--val-data", help="folder of validation data (default: the recipe's split, if any)")
    p.add_argument("--output", required=True, help="run folder (checkpoints, log, best and final model)")
    p.add_argument("--steps", type=int, help="override the recipe's number of steps")
    p.add_argument("--init-from", help="start from this model (folder, registered name, Hub id) instead of the recipe's")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("vqgraph", help="VQGraph: teacher tokenizer + MLP students over seeds; prints the table")
    p.add_argument("recipe", help="experiment JSON (recipes/vqgraph_*.json)")
    p.add_argument("--data", help="override the recipe's graph file (CPF .npz)")
    p.add_argument("--seeds", type=int, help="run seeds 0..SEEDS-1 instead of the recipe's")
    p.add_argument("--settings", nargs="+", choices=("transductive", "inductive"), help="override the recipe's settings")
    p.add_argument("-o", "--output", help="JSON results file to update (rows of other datasets are kept)")
    p.set_defaults(run=cmd_vqgraph)
    return parser


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="registered name, saved folder or Hub repo id")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    p.add_argument("--device", default="cpu")


# ---------------------------------------------------------------- commands


def cmd_list(args) -> None:
    names = registry.list_models(args.pattern, modality=args.modality, pretrained=args.pretrained)
    rows = [("name", "modality", "codebook", "tokens", "license", "weights")]
    for name in names:
        info = registry.model_info(name)
        groups = f" x{info.num_groups}" if info.num_groups > 1 else ""
        rows.append((name, info.modality, f"{info.codebook_size}{groups}", info.tokens, info.license, info.weights or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def cmd_info(args) -> None:
    print(json.dumps(registry.model_info(args.model).to_dict(), indent=2))


def cmd_encode(args) -> None:
    _check_positive(batch_size=args.batch_size, size=args.size)
    device = resolve_device(args.device)
    tokenizer = load_pretrained(args.model, revision=args.revision, device=device)
    files = signal_files(tokenizer.input_spec.modality)
    items = _expand_inputs(args.inputs, files)
    output = Path(args.output)
    _check_new_file(output, args.force)
    if any(output.exists() and os.path.samefile(output, path) for _, path in items):
        raise ValueError(f"-o {output} is one of the inputs: it would be overwritten with tokens")
    options = {"size": args.size, "chunk_seconds": args.chunk_seconds, "chunk_context_seconds": args.chunk_context_seconds}
    _check_chunk_options(tokenizer, args.chunk_seconds, args.chunk_context_seconds)
    encode_options = files.encode_options(tokenizer, options)
    tokens, shapes = [torch.empty(0)] * len(items), [None] * len(items)
    batches = _batches(items, files, options, args.batch_size) if files.collate is None else _sorted_batches(items, files, options, args.batch_size)
    with torch.no_grad(), tqdm(total=len(items), unit="item", disable=None, file=sys.stderr) as progress:
        for batch in batches:
            signals = [files.read(items[i][1], tokenizer, options) for i in batch]
            x, context = (torch.stack(signals), {}) if files.collate is None else files.collate(signals)
            out = tokenizer.encode(x.to(device), **{name: value.to(device) for name, value in context.items()}, **encode_options)
            counts = [None] * len(batch) if out.lengths is None else out.lengths.tolist()
            for i, signal, item_indices, count in zip(batch, signals, out.indices.cpu(), counts):
                tokens[i], shapes[i] = item_indices[..., :count], list(signal.shape)
            progress.update(len(batch))
    token_file = TokenFile(
        model=str(args.model),
        revision=tokenizer.revision,
        codebook_fingerprint=tokenizer.quantizer.codebook_fingerprint(),
        modality=tokenizer.input_spec.modality,
        index_layout=tokenizer.index_layout,
        codebook_size=tokenizer.quantizer.codebook_size,
        num_groups=tokenizer.quantizer.num_groups,
        input_spec=tokenizer.input_spec.to_dict(),
        items=[{"name": name, "shape": shape} for (name, _), shape in zip(items, shapes)],
        tokens=tokens,
    )
    save_tokens(output, token_file)
    print(f"{len(items)} item(s) -> {output} ({sum(t.numel() for t in tokens)} tokens, layout {tokenizer.index_layout})")


def cmd_decode(args) -> None:
    device = resolve_device(args.device)
    token_file = load_tokens(args.tokens)
    tokenizer = _decoding_model(args, token_file, device)
    files = signal_files(tokenizer.input_spec.modality)
    folder, targets = _output_paths(Path(args.output), token_file.items, files)
    for indices, item in zip(token_file.tokens, token_file.items):  # check and bound the work before doing any
        tokenizer.quantizer.check_indices(indices[None], tokenizer.latent_ndim)
        tokenizer.check_token_grid(indices[None])
        size = files.output_size(indices, tokenizer)
        if size > files.max_output_size():
            raise TokenFileError(f"decoding {item['name']} would give {size:,} samples, above the limit of {files.max_output_size():,}")
    existing = [str(folder / target) for target in targets if (folder / target).exists()]
    if existing and not args.force:
        raise FileExistsError(f"{existing[0]} exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}; pass --force to overwrite")
    with torch.no_grad(), _writing_into(folder) as staging:
        for indices, item, target in tqdm(list(zip(token_file.tokens, token_file.items, targets)), unit="item", disable=None, file=sys.stderr):
            files.write(files.fit_output(tokenizer.decode(indices[None].to(device))[0], item), staging / target, tokenizer)
    print(f"{len(targets)} item(s) -> {args.output}")


def cmd_eval(args) -> None:
    _check_positive(batch_size=args.batch_size, size=args.size, limit=args.limit)
    device = resolve_device(args.device)
    tokenizer = load_pretrained(args.model, revision=args.revision, device=device)
    files = signal_files(tokenizer.input_spec.modality)
    paths = files.list(Path(args.data))[: args.limit]
    lpips, fid = _image_judges(args, tokenizer, len(paths), device)
    if tokenizer.input_spec.modality == "audio":
        return _eval_audio(args, tokenizer, files, paths, device)
    if args.json:
        raise ValueError(f"--json: {args.model} is a {tokenizer.input_spec.modality} model; its results are printed as JSON")
    options = {"size": args.size}
    usage = CodebookUsage(tokenizer.quantizer.codebook_size, tokenizer.quantizer.num_groups)
    totals: dict[str, list[torch.Tensor]] = defaultdict(list)
    bpp: list[float] = []
    with torch.no_grad():
        for batch in _batches(list(enumerate(paths)), files, options, args.batch_size):
            signals = torch.stack([files.read(paths[i], tokenizer, options) for i in batch]).to(device)
            out = tokenizer.encode(signals)
            reconstruction = tokenizer.decode_latents(out.quantized)
            usage.update(out.indices)
            for name, values in tokenizer.reconstruction_metrics(signals, reconstruction).items():
                totals[name].append(values.cpu())
            if tokenizer.input_spec.modality == "image":
                bpp += [bits_per_pixel(out.indices, signals.shape[-2:], usage.codebook_size)] * len(batch)
            if lpips is not None:
                totals["lpips"].append(lpips(*(_in_range(t, tokenizer, -1.0, 1.0) for t in (reconstruction, signals))).cpu())
            if fid is not None:
                fid.update(_in_range(signals, tokenizer, 0.0, 255.0).round().to(torch.uint8), real=True)
                fid.update(_in_range(reconstruction, tokenizer, 0.0, 255.0).round().to(torch.uint8), real=False)
            if args.save_reconstructions:
                for i, signal in zip(batch, reconstruction):
                    name = PurePosixPath(paths[i].relative_to(args.data).as_posix()).with_suffix(files.output_suffix)
                    files.write(signal, Path(args.save_reconstructions) / name, tokenizer)
    result = {"model": args.model, "items": len(paths)}
    result.update({name: round(float(torch.cat(values).mean()), 4) for name, values in totals.items()})
    if bpp:
        result["bpp"] = math.fsum(bpp) / len(bpp)  # not rounded: exact for power-of-two codebooks
    if fid is not None:
        result["rfid"] = round(max(float(fid.compute()), 0.0), 4)  # identical sets can give -1e-6
    result.update(codebook_usage=round(usage.usage, 4), codebook_perplexity=round(usage.perplexity, 2), codebook_size=usage.codebook_size)
    if usage.num_groups > 1:
        result.update({f"codebook_usage/{g}": round(float(v), 4) for g, v in enumerate(usage.group_usage())})
        result.update({f"codebook_perplexity/{g}": round(float(v), 2) for g, v in enumerate(usage.group_perplexity())})
    bad = [name for name, value in result.items() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise ValueError(f"{args.model} gives non-finite {bad} on this data (NaN or infinite weights or outputs?)")
    print(json.dumps(result, allow_nan=False))


def _eval_audio(args, tokenizer, files: SignalFiles, paths: list[Path], device: torch.device) -> None:
    """Each file read at the model's rate, encoded and decoded (files of one duration share a batch, so no item is
    padded and the results do not depend on the batch size), cut to its length and compared with
    :func:`audio_reconstruction_metrics`; the table gives the means over files, each file counting once."""
    if args.size is not None:
        raise ValueError("--size resizes images; audio is read at the model's sample rate")
    if not paths:
        raise ValueError(f"no audio files ({', '.join(files.suffixes)}) in {args.data}")
    spec, quantizer = tokenizer.input_spec, tokenizer.quantizer
    usage = CodebookUsage(quantizer.codebook_size, quantizer.num_groups)
    mel = MelL1(spec.sample_rate)
    totals: dict[str, list[torch.Tensor]] = defaultdict(list)
    samples = 0
    with torch.no_grad():
        for batch in tqdm(list(_batches(list(enumerate(paths)), files, {}, args.batch_size)), unit="batch", disable=None, file=sys.stderr):
            audio = torch.stack([files.read(paths[i], tokenizer, {}) for i in batch])
            check_metric_length(audio.shape[-1], f"{paths[batch[0]]} at {spec.sample_rate} Hz")
            indices = tokenizer.encode(audio.to(device)).indices
            usage.update(indices)
            reconstruction = tokenizer.decode(indices)[..., : audio.shape[-1]].float().cpu()
            for name, values in audio_reconstruction_metrics(reconstruction, audio, spec.sample_rate, mel).items():
                totals[name].append(values)
            samples += audio.numel()
            if args.save_reconstructions:
                for i, signal in zip(batch, reconstruction):
                    name = PurePosixPath(paths[i].relative_to(args.data).as_posix()).with_suffix(files.output_suffix)
                    files.write(signal, Path(args.save_reconstructions) / name, tokenizer)
    result: dict[str, object] = {"model": args.model, "items": len(paths), "seconds": round(samples / spec.sample_rate, 2)}
    result.update({name: round(float(torch.cat(values).double().mean()), 4) for name, values in totals.items() if name != "stoi"})
    if "stoi" in totals:  # undefined (NaN) for files with too little sound: averaged over the others
        stoi = torch.cat(totals["stoi"]).double()
        defined = stoi[~stoi.isnan()]
        result["stoi"] = round(float(defined.mean()), 4) if len(defined) else "undefined (files too short)"
        if 0 < len(defined) < len(stoi):
            result["stoi_items"] = len(defined)
    result.update({name: "not installed" for name in missing_audio_metrics() if name not in result})
    result.update(codebook_usage=round(usage.usage, 4), codebook_perplexity=round(usage.perplexity, 2), codebook_size=usage.codebook_size,
                  kbps=round(kbps(spec.sample_rate / spec.hop_length, quantizer.codebook_size, quantizer.num_groups), 4))
    bad = [name for name, value in result.items() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise ValueError(f"{args.model} gives non-finite {bad} on this data (NaN or infinite weights or outputs?)")
    if args.json:
        atomic_write(args.json, lambda temporary: temporary.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n"))
    width = max(map(len, result))
    print("\n".join(f"{name:<{width}}  {value}" for name, value in result.items()))


def cmd_convert(args) -> None:
    output = Path(args.output)
    if output.exists() and not args.force:
        raise FileExistsError(f"{output} exists; pass --force to replace it")
    model = convert_official(args.checkpoint, family=args.family, config=args.config, ema=args.ema, trust_pickle=args.trust_pickle)
    model.save_pretrained(output)
    print(f"{args.checkpoint} -> {output} ({model.architecture}, {sum(p.numel() for p in model.parameters()):,} parameters)")


def cmd_build_codebook(args) -> None:
    from .training.codebook import build_codebook, fill_table, load_encoder, projected_table

    _check_positive(size=args.size, pool=args.pool, batch_size=args.batch_size, iters=args.iters)
    output = _new_model_folder(args.output, args.force)
    model = _model_to_edit(args.model)
    codes, width = projected_table(model).shape
    encoder = load_encoder(args.encoder, args.encoder_weights, args.trust_pickle)
    codebook = build_codebook(
        args.images, encoder, codes, size=args.size, pool=args.pool, batch_size=args.batch_size, iters=args.iters,
        project=args.project, per_class=args.per_class, feature_dim=width,
    )
    fill_table(model, codebook)
    model.save_pretrained(output)
    print(f"{codes} x {width} k-means codebook from {args.images} ({args.encoder}) -> {output}")


def cmd_fold(args) -> None:
    from .training.codebook import fold_projected

    output = _new_model_folder(args.output, args.force)
    folded = fold_projected(_model_to_edit(args.model))
    folded.save_pretrained(output)
    print(f"{args.model} -> {output} ({folded.quantizer.codebook_size} codes of {folded.quantizer.code_dim} dims, folded)")


def cmd_shrink(args) -> None:
    from .compression import INDEX_MAP_NAME, resolve_weighting, save_shrunk, shrink_codebook

    _check_positive(batch_size=args.batch_size, size=args.size, limit=args.limit, iters=args.iters)
    output = _new_model_folder(args.output, args.force)
    weighting = resolve_weighting(args.weighting, args.data)
    model = _model_to_edit(args.model)
    data = _signal_batches(model, Path(args.data), {"size": args.size}, args.batch_size, args.limit) if args.data else None
    sizes = args.codebook_size[0] if len(args.codebook_size) == 1 else args.codebook_size
    shrunk, index_map = shrink_codebook(model, sizes, weighting=weighting, data=data, iters=args.iters, seed=args.seed)
    provenance = {"source": str(args.model), "weighting": weighting, "data": args.data, "iters": args.iters, "seed": args.seed}
    save_shrunk(shrunk, index_map, output, **provenance)
    print(f"{args.model} -> {output} ({weighting} k-means into {sizes} codes; new = index_map[old] in {output / INDEX_MAP_NAME})")


def _signal_batches(tokenizer, folder: Path, options: dict, batch_size: int, limit: int | None) -> Iterator[torch.Tensor]:
    """Batches of the signal files under ``folder`` read for ``tokenizer`` (at most ``limit`` files)."""
    files = signal_files(tokenizer.input_spec.modality)
    paths = files.list(folder)[:limit]
    for batch in _batches(list(enumerate(paths)), files, options, batch_size):
        yield torch.stack([files.read(paths[i], tokenizer, options) for i in batch]).to(tokenizer.device)


def cmd_extend_decoder(args) -> None:
    from .training.generative_decoder import extend_decoder

    output = _new_model_folder(args.output, args.force)
    extend_decoder(_model_to_edit(args.model)).save_pretrained(output)
    print(f"{args.model} -> {output} (decoder conv_in zero-extended to a noise input: same outputs for any noise until trained)")


def _new_model_folder(path: str, force: bool) -> Path:
    output = Path(path)
    if output.exists() and not force:
        raise FileExistsError(f"{output} exists; pass --force to replace it")
    return output


def _model_to_edit(source: str):
    """A registered model without released weights is built fresh; anything else loads with its weights."""
    if registry.is_model(source) and registry.model_info(source).weights is None:
        return create_model(source)
    return load_pretrained(source)


def cmd_build_cuda(args) -> None:
    from .ops.cuda import build_extension

    module = build_extension(args.build_dir, args.arch, args.verbose)
    print(f"built {module.__file__}")


def cmd_train(args) -> None:
    from .training import run_recipe

    recipe = read_json(args.recipe)
    if args.init_from:
        recipe = {**recipe, "init_from": args.init_from, "overrides": {}}
    run_recipe(recipe, args.data, args.output, {"steps": args.steps} if args.steps else None, args.val_data)


def cmd_vqgraph(args) -> None:
    from .training.vqgraph_run import VQGraphRunConfig, format_table, run, save_rows

    recipe = read_json(args.recipe)
    overrides = {"data": args.data, "seeds": list(range(args.seeds)) if args.seeds else None, "settings": args.settings}
    config = VQGraphRunConfig.from_dict({**recipe, **{key: value for key, value in overrides.items() if value}})
    flags = [f"--{name} {value if not isinstance(value, list) else ' '.join(value)}" for name, value in
             (("data", args.data), ("seeds", args.seeds), ("settings", args.settings)) if value]
    command = " ".join(["OMP_NUM_THREADS=1 tokenizers-zoo vqgraph", args.recipe, *flags])
    save = (lambda rows: save_rows(args.output, rows, command)) if args.output else None
    rows = run(config, log=lambda line: print(line, file=sys.stderr, flush=True), on_seed=save)
    print(format_table(rows))


# ---------------------------------------------------------------- helpers


def _image_judges(args, tokenizer, items: int, device: torch.device) -> tuple[LPIPS | None, FrechetInceptionDistance | None]:
    """The LPIPS network and the FID metric ``eval`` was asked for, built (and checked) before any work."""
    flags = {"--lpips-backbone": args.lpips_backbone, "--lpips-linear": args.lpips_linear, "--inception": args.inception}
    wanted = [flag for flag, value in flags.items() if value]
    if wanted and tokenizer.input_spec.modality != "image":
        raise ValueError(f"{' '.join(wanted)}: LPIPS and rFID are image metrics; {args.model} is a {tokenizer.input_spec.modality} model")
    if (args.lpips_backbone is None) != (args.lpips_linear is None):
        raise ValueError("LPIPS needs both --lpips-backbone (torchvision vgg16 weights) and --lpips-linear (LPIPS vgg.pth)")
    if args.inception and items < 2:
        raise ValueError(f"rFID needs at least 2 images, got {items}")
    lpips = LPIPS.from_files(args.lpips_backbone, args.lpips_linear).to(device) if args.lpips_backbone else None
    fid = frechet_inception_distance(args.inception).to(device) if args.inception else None
    return lpips, fid


def _in_range(images: torch.Tensor, tokenizer, low: float, high: float) -> torch.Tensor:
    """Images in the model's value range (clamped to it), mapped linearly onto [low, high]."""
    model_low, model_high = tokenizer.input_spec.value_range
    unit = (images.float().clamp(model_low, model_high) - model_low) / (model_high - model_low)
    return low + unit * (high - low)


def resolve_device(name: str) -> torch.device:
    """The device named on the command line, with a clear error for a bogus or absent one."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--device {name!r} is not a device name (cpu, cuda, cuda:1, ...)") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: only cpu and cuda are supported")
    return device


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")


def _check_new_file(path: Path, force: bool) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"-o {path} is a folder; give the file to write")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")


def _expand_inputs(paths: list[str], files: SignalFiles) -> list[tuple[str, Path]]:
    """(item name, file) pairs: a file keeps its name, files found in a folder are named by their path in it."""
    items = []
    for path in map(Path, paths):
        if path.is_dir():
            items.extend((f.relative_to(path).as_posix(), f) for f in files.list(path))
        elif path.is_file():
            items.append((path.name, path))
        else:
            raise FileNotFoundError(f"no file or folder {path}")
    return items


def _check_chunk_options(tokenizer, seconds: float | None, context: float | None) -> None:
    if (seconds, context) != (None, None) and tokenizer.input_spec.modality != "audio":
        raise ValueError(f"--chunk-seconds and --chunk-context-seconds are for audio; {tokenizer.input_spec.modality} models take no chunks")
    if context is not None and seconds is None:
        raise ValueError("--chunk-context-seconds is the overlap of chunked encoding: give --chunk-seconds too")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"--chunk-seconds must be a finite number of seconds > 0, got {seconds}")
    if context is not None and not (math.isfinite(context) and context >= 0):
        raise ValueError(f"--chunk-context-seconds must be a finite number of seconds >= 0, got {context}")


def _sorted_batches(items: list, files: SignalFiles, options: dict, batch_size: int):
    """Positions of ``items`` ordered by ``group_key`` (audio: duration) and cut into batches, for a modality
    whose ``collate`` pads: similar sizes share a batch, so little is padded."""
    order = sorted(range(len(items)), key=lambda position: files.group_key(items[position][1], options))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _batches(items: list, files: SignalFiles, options: dict, batch_size: int):
    """Positions of ``items`` in batches of files that can be stacked (same size), in file order per size."""
    groups: dict = defaultdict(list)
    for position, (_, path) in enumerate(items):
        groups[files.group_key(path, options)].append(position)
    for positions in groups.values():
        for start in range(0, len(positions), batch_size):
            yield positions[start : start + batch_size]


def _decoding_model(args, token_file: TokenFile, device: torch.device):
    """The model the user names, else the registered model the file names; never a path or Hub id from a file."""
    source = args.model or token_file.model
    if args.model is None and not registry.is_model(token_file.model):
        raise TokenFileError(
            f"the token file was made by {token_file.model!r}, which is not a registered model: "
            "pass --model with the folder or Hub id to decode with (a file never chooses what gets loaded)"
        )
    revision = args.revision or (token_file.revision if args.model is None and registry.is_model(source) else None)
    try:
        tokenizer = load_pretrained(source, revision=_hub_revision(revision), device=device, local_files_only=not args.online)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}{'' if args.online else ' (decode is offline unless you pass --online)'}") from error
    _check_fits(token_file, tokenizer, source, args.force)
    return tokenizer


def _hub_revision(revision: str | None) -> str | None:
    return None if revision is None or revision.startswith("bundled@") else revision


def _check_fits(token_file: TokenFile, tokenizer, source: str, force: bool) -> None:
    expected = (token_file.modality, token_file.codebook_size, token_file.num_groups)
    actual = (tokenizer.input_spec.modality, tokenizer.quantizer.codebook_size, tokenizer.quantizer.num_groups)
    if expected != actual:
        raise TokenFileError(
            f"the token file was made by {token_file.model} (modality, codebook size, groups = {expected}); {source} has {actual}"
        )
    fingerprint = tokenizer.quantizer.codebook_fingerprint()
    if token_file.codebook_fingerprint == fingerprint:
        return
    problem = (
        "has no codebook fingerprint (written by tokenizers_zoo 0.1)" if token_file.codebook_fingerprint is None
        else f"was made with another codebook than {source}'s ({token_file.codebook_fingerprint[:19]}... vs {fingerprint[:19]}...)"
    )
    if not force:
        raise TokenFileError(f"the token file {problem}: its indices would decode to garbage; pass --force to decode anyway")
    warnings.warn(f"the token file {problem}; decoding anyway (--force)", stacklevel=2)


def _output_paths(output: Path, items: list[dict], files: SignalFiles) -> tuple[Path, list[PurePosixPath]]:
    """The folder written into and each item's path in it: ``output`` itself for one item and a file name,
    else the item's path (its folders kept) under ``output`` with the output suffix; a repeated name gets
    ``_<item number>``. Names were checked to be relative paths when the token file was read."""
    if output.suffix.lower() in files.suffixes:
        if len(items) != 1:
            raise ValueError(f"the token file holds {len(items)} items: give a folder, not the file {output}")
        return output.parent, [PurePosixPath(output.name)]
    targets, seen = [], set()
    for index, item in enumerate(items):
        relative = PurePosixPath(item["name"]).with_suffix(files.output_suffix)
        if relative in seen:
            relative = relative.with_name(f"{relative.stem}_{index}{relative.suffix}")
        seen.add(relative)
        too_long = [part for part in relative.parts if len(part.encode()) > MAX_NAME_BYTES]
        if too_long:
            raise ValueError(f"item {item['name']!r} has a name part over {MAX_NAME_BYTES} bytes: {too_long[0][:40]}...")
        targets.append(relative)
    return output, targets


@contextlib.contextmanager
def _writing_into(folder: Path) -> Iterator[Path]:
    """A new folder is written as a staging folder swapped in at the end (never left half-written); into an
    existing folder, files are added (or, with ``--force``, replaced) one by one."""
    if folder.is_dir():
        yield folder
        return
    if folder.exists():
        raise NotADirectoryError(f"-o {folder} exists and is not a folder")
    with atomic_folder(folder) as staging:
        yield staging
