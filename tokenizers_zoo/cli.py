"""The ``tokenizers-zoo`` command (also ``python -m tokenizers_zoo``): list, info, encode, decode, eval, train."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

from . import registry
from .config import ConfigError
from .data import list_images, load_image, save_image
from .data.images import IMAGE_SUFFIXES
from .hub import CheckpointError, load_pretrained
from .metrics import CodebookUsage, psnr
from .ops.cuda import CudaUnavailable
from .token_file import TokenFile, TokenFileError, load_tokens, save_tokens

USER_ERRORS = (
    FileNotFoundError, ValueError, TypeError, KeyError, ConfigError, CheckpointError, TokenFileError, CudaUnavailable
)


def main(argv: list[str] | None = None) -> int:
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

    p = commands.add_parser("encode", help="images -> token file")
    _model_arguments(p)
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("-o", "--output", required=True, help="token file to write (.safetensors)")
    p.add_argument("--size", type=int, help="resize the shorter side to SIZE and centre-crop square first")
    p.set_defaults(run=cmd_encode)

    p = commands.add_parser("decode", help="token file -> images")
    p.add_argument("tokens", help="token file written by 'encode'")
    p.add_argument("-o", "--output", required=True, help="image file (one item) or folder")
    p.add_argument("--model", help="decode with this model instead of the one recorded in the file")
    p.add_argument("--revision")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=cmd_decode)

    p = commands.add_parser("eval", help="reconstruction PSNR and codebook usage over a folder of images")
    _model_arguments(p)
    p.add_argument("data", help="folder of images")
    p.add_argument("--size", type=int)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="use at most this many images")
    p.add_argument("--save-reconstructions", metavar="DIR")
    p.set_defaults(run=cmd_eval)

    p = commands.add_parser("build-cuda", help="compile the CUDA nearest-codeword kernel ahead of time")
    p.add_argument("--build-dir", help="where to build (default: torch's extension cache, used at run time)")
    p.add_argument("--arch", nargs="+", help="compute capabilities, e.g. 80 90 (default: the visible GPU's)")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_build_cuda)

    p = commands.add_parser("train", help="run a training recipe (works under torchrun)")
    p.add_argument("recipe", help="recipe JSON (see recipes/)")
    p.add_argument("--data", required=True, help="folder of training data")
    p.add_argument("--output", required=True, help="run folder (checkpoints, log, final model)")
    p.add_argument("--steps", type=int, help="override the recipe's number of steps")
    p.set_defaults(run=cmd_train)
    return parser


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="registered name, saved folder or Hub repo id")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    p.add_argument("--device", default="cpu")


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
    items = _expand_images(args.images)
    files = [path for _, path in items]
    tokenizer = _image_tokenizer(args)
    images = [load_image(f, args.size) for f in files]
    tokens: list[torch.Tensor] = [torch.empty(0)] * len(files)
    by_shape = defaultdict(list)
    for position, image in enumerate(images):
        by_shape[tuple(image.shape)].append(position)
    with torch.no_grad():
        for positions in by_shape.values():
            batch = torch.stack([images[i] for i in positions]).to(args.device)
            for i, indices in zip(positions, tokenizer.encode(batch).indices.cpu()):
                tokens[i] = indices
    token_file = TokenFile(
        model=str(args.model),
        revision=args.revision,
        modality="image",
        index_layout=tokenizer.index_layout,
        codebook_size=tokenizer.quantizer.codebook_size,
        num_groups=tokenizer.quantizer.num_groups,
        input_spec=tokenizer.input_spec.to_dict(),
        items=[{"name": name, "shape": list(image.shape)} for (name, _), image in zip(items, images)],
        tokens=tokens,
    )
    save_tokens(args.output, token_file)
    print(f"{len(files)} image(s) -> {args.output} ({sum(t.numel() for t in tokens)} tokens, layout {tokenizer.index_layout})")


def cmd_decode(args) -> None:
    token_file = load_tokens(args.tokens)
    tokenizer = load_pretrained(args.model or token_file.model, revision=args.revision or token_file.revision, device=args.device)
    _check_fits(token_file, tokenizer, args.model or token_file.model)
    targets = _output_paths(Path(args.output), token_file.items)
    with torch.no_grad():
        for indices, target in zip(token_file.tokens, targets):
            save_image(tokenizer.decode(indices[None].to(args.device))[0], target)
    print(f"{len(targets)} image(s) -> {args.output}")


def cmd_eval(args) -> None:
    files = list_images(args.data)[: args.limit]
    tokenizer = _image_tokenizer(args)
    usage, scores = CodebookUsage(tokenizer.quantizer.codebook_size), []
    with torch.no_grad():
        for start in range(0, len(files), args.batch_size):
            chunk = files[start : start + args.batch_size]
            batch = torch.stack([load_image(f, args.size) for f in chunk]).to(args.device)
            out = tokenizer.encode(batch)
            reconstruction = tokenizer.decode_latents(out.quantized).clamp(-1, 1)
            usage.update(out.indices)
            scores.append(psnr(reconstruction, batch).cpu())
            if args.save_reconstructions:
                for f, image in zip(chunk, reconstruction):
                    save_image(image, Path(args.save_reconstructions) / _png_name(f.relative_to(args.data).as_posix()))
    result = {
        "model": args.model,
        "images": len(files),
        "psnr_db": round(float(torch.cat(scores).mean()), 3),
        "codebook_usage": round(usage.usage, 4),
        "codebook_perplexity": round(usage.perplexity, 2),
        "codebook_size": tokenizer.quantizer.codebook_size,
    }
    print(json.dumps(result))


def cmd_build_cuda(args) -> None:
    from .ops.cuda import build_extension

    module = build_extension(args.build_dir, args.arch, args.verbose)
    print(f"built {module.__file__}")


def cmd_train(args) -> None:
    from .training import run_recipe

    run_recipe(args.recipe, args.data, args.output, {"steps": args.steps} if args.steps else None)


def _image_tokenizer(args):
    tokenizer = load_pretrained(args.model, revision=args.revision, device=args.device)
    if tokenizer.input_spec.modality != "image":
        raise ValueError(f"{args.model} is a {tokenizer.input_spec.modality} tokenizer; '{args.command}' reads images")
    return tokenizer


def _expand_images(paths: list[str]) -> list[tuple[str, Path]]:
    """(item name, file) pairs: a file keeps its name, images found in a folder are named by their path in it."""
    items = []
    for path in map(Path, paths):
        if path.is_dir():
            items.extend((f.relative_to(path).as_posix(), f) for f in list_images(path))
        elif path.is_file():
            items.append((path.name, path))
        else:
            raise FileNotFoundError(f"no image file or folder {path}")
    return items


def _check_fits(token_file: TokenFile, tokenizer, source: str) -> None:
    expected = (token_file.modality, token_file.codebook_size, token_file.num_groups)
    actual = (tokenizer.input_spec.modality, tokenizer.quantizer.codebook_size, tokenizer.quantizer.num_groups)
    if expected != actual:
        raise TokenFileError(
            f"the token file was made by {token_file.model} (modality, codebook size, groups = {expected}); "
            f"{source} has {actual}"
        )


def _output_paths(output: Path, items: list[dict]) -> list[Path]:
    if output.suffix.lower() in IMAGE_SUFFIXES:
        if len(items) != 1:
            raise ValueError(f"the token file holds {len(items)} items: give a folder, not the file {output}")
        return [output]
    return [output / f"{i:04d}_{_png_name(item['name'])}" for i, item in enumerate(items)]


def _png_name(name: str) -> str:
    """A flat PNG file name for an item named by its path, e.g. ``cat/0001.jpg`` -> ``cat_0001.png``."""
    return Path(name).with_suffix(".png").as_posix().replace("/", "_")
