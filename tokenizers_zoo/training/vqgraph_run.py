"""The VQGraph experiment: for each seed and setting, train the teacher tokenizer, then the plain MLP, the
soft-label (GLNN-style) student and the VQGraph student in the correct and the ``repro_official`` modes; the
table rows are mean and standard deviation (numpy's, ddof 0, as GLNN prints) of accuracy in % over the seeds.

Settings: ``transductive`` (the teacher and student see every node; accuracy on the test nodes) and
``inductive`` (GLNN's production split: 20% of the test nodes and their edges are held out; rows
``inductive_tran``, ``inductive_ind`` and ``production`` = 0.8 tran + 0.2 ind).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import math
import os
import platform
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..atomic import atomic_write
from ..config import Config, ConfigError, check_positive
from ..data.graph_files import NodeGraph, cpf_split, inductive_split, load_cpf_npz, load_planetoid
from ..models.vqgraph import VQGraph, VQGraphConfig
from ..ops import code_entropy
from ..networks.gnn import NodeMLP
from .distillation import StudentConfig, TeacherTargets, distill
from .graph_teacher import TeacherTrainConfig, accuracy, train_teacher

SETTINGS = ("transductive", "inductive")
METHODS = ("MLP", "GLNN-style KD", "VQGraph")
PRODUCTION_TRAN_SHARE = 0.8


@dataclass
class VQGraphRunConfig(Config):
    """One dataset file (CPF ``.npz``, or a Planetoid folder with ``planetoid_name``), the seeds, the teacher
    (config overrides of :class:`VQGraphConfig` and its training), the student, and the correct mode's code
    term (``correct_code_weight``, ``correct_temperature``)."""

    data: str = ""
    dataset: str = "cora"
    planetoid_name: str = ""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    settings: tuple[str, ...] = SETTINGS
    split_rate: float = 0.2
    teacher: dict[str, Any] = field(default_factory=dict)
    teacher_train: TeacherTrainConfig = field(default_factory=TeacherTrainConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    correct_code_weight: float = 1.0
    correct_temperature: float = 4.0

    def validate(self) -> None:
        check_positive(self, "correct_temperature")
        unknown = sorted(set(self.settings) - set(SETTINGS))
        if unknown or not self.settings or not self.seeds:
            raise ConfigError(f"settings must be a non-empty subset of {SETTINGS} and seeds non-empty, got {self.settings}, {self.seeds}")
        if self.correct_code_weight < 0:
            raise ConfigError(f"correct_code_weight must be >= 0, got {self.correct_code_weight}")
        super().validate()


def load_graph(config: VQGraphRunConfig) -> NodeGraph:
    if not config.data:
        raise ConfigError("say where the graph is: data = a CPF .npz file or a Planetoid folder")
    if config.planetoid_name:
        return load_planetoid(config.data, config.planetoid_name, largest_component=True)[0]
    return load_cpf_npz(config.data)


def run(config: VQGraphRunConfig, log: Callable[[str], None] = print,
        on_seed: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Every seed and setting; returns the table rows (see the module docstring). ``on_seed`` gets the rows
    so far after each seed (to save partial results)."""
    graph = load_graph(config)
    scores: dict[tuple, list[float]] = defaultdict(list)
    for seed in config.seeds:
        for setting in config.settings:
            started, cpu = time.perf_counter(), time.process_time()
            for key, value in _one_run(graph, config, setting, seed).items():
                scores[key].append(value)
            log(f"{config.dataset} {setting} seed {seed}: {time.perf_counter() - started:.0f} s wall, "
                f"{time.process_time() - cpu:.0f} s CPU")
        if on_seed is not None:
            on_seed([_row(config.dataset, key, values) for key, values in scores.items()])
    return [_row(config.dataset, key, values) for key, values in scores.items()]


def inference_ms(call: Callable[[], Any], repeats: int = 5) -> float:
    """Median wall time of ``call()`` in milliseconds, after one warm-up call, without autograd."""
    with torch.no_grad():
        call()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _row(dataset: str, key: tuple, values: list[float]) -> dict[str, Any]:
    setting, mode, method, selection = key
    scale, digits = (100.0, 2) if selection in ("val", "test") else (1.0, 4)  # accuracies in %, the rest as measured
    return {
        "dataset": dataset, "setting": setting, "mode": mode, "method": method, "selection": selection,
        "mean": round(scale * statistics.fmean(values), digits), "std": round(scale * statistics.pstdev(values), digits),
        "seeds": len(values),
    }


def _one_run(graph: NodeGraph, config: VQGraphRunConfig, setting: str, seed: int) -> dict[tuple, float]:
    split = cpf_split(graph.labels, seed)
    teacher_config = VQGraphConfig(in_features=graph.x.shape[1], num_classes=graph.num_classes).replace(**config.teacher)
    torch.manual_seed(seed)
    teacher = VQGraph(teacher_config)
    train_config = config.teacher_train.replace(seed=seed)
    results: dict[tuple, float] = {}
    if setting == "transductive":
        train_teacher(teacher, graph.x, graph.edge_index, graph.labels, split.train, split.val, train_config)
        targets, used = _targets(teacher, graph)
        results[(setting, "shared", "GNN teacher", "val")] = accuracy(targets.log_probs, graph.labels, split.test)
        evaluation = {name: (graph.x[ids], graph.labels[ids]) for name, ids in (("val", split.val), ("test", split.test))}
        students = _students(graph.x, graph.labels, split.train, torch.cat([split.train, split.val, split.test]), targets,
                             evaluation, config, seed, official_selection="test")
        results.update({(setting, *key): scores["test"] for key, scores in students.items()})
    else:
        held = inductive_split(split, seed, config.split_rate)
        observed = graph.subgraph(held.observed)
        sizes = [split.train.numel(), split.val.numel(), held.test_tran.numel()]
        obs_train, obs_val, obs_test = torch.arange(sum(sizes)).split(sizes)
        train_teacher(teacher, observed.x, observed.edge_index, observed.labels, obs_train, obs_val, train_config)
        targets, used = _targets(teacher, observed)
        with torch.no_grad():
            full_logits = teacher.classify(graph.x, graph.edge_index).logits
        tran, ind = accuracy(targets.log_probs, observed.labels, obs_test), accuracy(full_logits, graph.labels, held.test_ind)
        results.update(_production_rows(("shared", "GNN teacher", "val"), tran, ind))
        evaluation = {"val": (observed.x[obs_val], observed.labels[obs_val]), "test": (observed.x[obs_test], observed.labels[obs_test]),
                      "test_ind": (graph.x[held.test_ind], graph.labels[held.test_ind])}
        students = _students(observed.x, observed.labels, obs_train, torch.arange(observed.num_nodes), targets, evaluation,
                             config, seed, official_selection="val")
        for key, scores in students.items():
            results.update(_production_rows(key, scores["test"], scores["test_ind"]))
    codebook_size = teacher.quantizer.codebook_size
    entropy = code_entropy(targets.latents, targets.codebook, config.correct_temperature, "cosine").sample_entropy
    student = NodeMLP(graph.x.shape[1], config.student.hidden, graph.num_classes).eval()
    results.update({
        (setting, "shared", "codebook_used_codes", "-"): float(used),
        (setting, "shared", "codebook_usage", "-"): used / codebook_size,
        (setting, "shared", "code_target_entropy/log(K)", "-"): float(entropy) / math.log(codebook_size),
        (setting, "shared", "inference_ms_gnn", "-"): inference_ms(lambda: teacher.classify(graph.x, graph.edge_index)),
        (setting, "shared", "inference_ms_mlp", "-"): inference_ms(lambda: student(graph.x)),
    })
    return results


def _production_rows(key: tuple, tran: float, ind: float) -> dict[tuple, float]:
    prod = PRODUCTION_TRAN_SHARE * tran + (1 - PRODUCTION_TRAN_SHARE) * ind
    return {("inductive_tran", *key): tran, ("inductive_ind", *key): ind, ("production", *key): prod}


@torch.no_grad()
def _targets(teacher: VQGraph, graph: NodeGraph) -> tuple[TeacherTargets, int]:
    teacher.eval()
    out = teacher.classify(graph.x, graph.edge_index)
    targets = TeacherTargets(F.log_softmax(out.logits, 1), out.latents, teacher.quantizer.get_codebook().detach())
    return targets, int(out.indices.unique().numel())


def _students(x, labels, train, distilled, targets, evaluation, config: VQGraphRunConfig, seed: int,
              official_selection: str) -> dict[tuple, dict[str, float]]:
    """Test accuracies per (mode, method, selection); plain MLP once (hard labels, selected on val)."""
    base = config.student.replace(seed=seed)
    code_dim = targets.codebook.shape[1]
    runs = {
        ("shared", "MLP"): (None, base.replace(mode="correct", select_on="val")),
        ("correct", "GLNN-style KD"): (targets, base.replace(mode="correct", select_on="val", code_weight=0.0)),
        ("correct", "VQGraph"): (targets, base.replace(mode="correct", select_on="val", code_weight=config.correct_code_weight,
                                                       temperature=config.correct_temperature)),
        ("repro_official", "GLNN-style KD"): (targets, base.replace(mode="repro_official", select_on=official_selection, code_weight=0.0)),
        ("repro_official", "VQGraph"): (targets, base.replace(mode="repro_official", select_on=official_selection)),
    }
    results = {}
    for (mode, method), (teacher, student_config) in runs.items():
        torch.manual_seed(seed)
        student = NodeMLP(x.shape[1], student_config.hidden, int(labels.max()) + 1, student_config.num_layers,
                          student_config.dropout, code_dim=code_dim if teacher is not None else None)
        fit = distill(student, x, labels, train, distilled, teacher, evaluation, student_config)
        results[(mode, method, student_config.select_on)] = fit.selected
        other = "test" if student_config.select_on == "val" else "val"
        results[(mode, method, other)] = fit.by_test if other == "test" else fit.by_val
    return results


def save_rows(path: str | os.PathLike, rows: list[dict[str, Any]], command: str) -> None:
    """Write ``rows`` into the JSON results file at ``path`` (atomically), replacing the rows of their dataset."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)  # runs of several datasets may share the file: lock its folder
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        result = json.loads(path.read_text()) if path.is_file() else {"rows": []}
        datasets = {row["dataset"] for row in rows}
        commands = {**result.get("commands", {}), **{dataset: command for dataset in datasets}}
        result.update(
            device=f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
            date=str(datetime.date.today()),
            command="; ".join(commands.values()),
            commands=commands,
            rows=[row for row in result["rows"] if row["dataset"] not in datasets] + rows,
        )
        atomic_write(path, lambda temporary: temporary.write_text(json.dumps(result, indent=1) + "\n"))
    finally:
        os.close(folder)  # closing releases the lock


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table."""
    lines = [f"{'dataset':10} {'setting':15} {'mode':15} {'method':22} {'select':6} {'mean':>8} {'std':>6} {'n':>3}"]
    for row in rows:
        lines.append(f"{row['dataset']:10} {row['setting']:15} {row['mode']:15} {row['method']:22} {row['selection']:6} "
                     f"{row['mean']:8.2f} {row['std']:6.2f} {row['seeds']:3d}")
    return "\n".join(lines)
