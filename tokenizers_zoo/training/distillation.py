"""Graph-to-MLP distillation (GLNN, VQGraph): an MLP student learns from a graph teacher's soft labels and, in
VQGraph, from its soft code assignments, so that inference needs node features only.

Two modes:

``"correct"`` (default): one loss per minibatch of distilled nodes,
``(1 - label_weight) * KL(teacher || student) + code_weight * T^2 * KL(q || p) + label_weight * CE(train nodes)``,
where q and p are the teacher's and the student's soft assignments to the teacher codebook
(``softmax(cos / T)``, :func:`~tokenizers_zoo.ops.code_kl`), for the *same* node; the epoch kept is the best by
validation accuracy.

``"repro_official"``: the official ``train_student.py`` as written: per epoch three separate Adam passes
(code term, hard labels on train nodes, soft labels), where the code term matches student row ``p`` of the
permuted node list with the teacher assignment of node id ``p`` (misaligned), uses the student's euclidean
distance to the raw codebook against the teacher's cosine similarity, and ``KLDivLoss(log_target=True)`` on
a probability target; in the transductive setting the epoch is chosen by *test* accuracy.

Both modes record the test accuracy at the best validation epoch and at the best test epoch, so the
selection effect is measured in every run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import Config, ConfigError, check_positive
from ..ops import code_kl

MODES = ("correct", "repro_official")


@dataclass
class StudentConfig(Config):
    """The MLP student and its training (official defaults; Cora's yaml: lr 0.01, wd 0.005, dropout 0.6).

    ``code_weight`` is VQGraph's ``lamb_soft_tokens`` (0: GLNN-style soft-label KD only), ``label_weight`` its
    ``lamb_soft_labels`` (weight of hard labels; soft labels get ``1 - label_weight``), ``temperature`` the
    soft-assignment temperature. ``select_on`` names the evaluation set that picks the epoch and drives the
    early stop (``"val"``; the official transductive distillation uses ``"test"``).
    """

    hidden: int = 128
    num_layers: int = 2
    dropout: float = 0.6
    lr: float = 0.01
    weight_decay: float = 0.005
    epochs: int = 500
    patience: int = 50
    batch_size: int = 512
    temperature: float = 4.0
    code_weight: float = 1e-8
    label_weight: float = 0.0
    mode: Literal["correct", "repro_official"] = "correct"
    select_on: str = "val"
    seed: int = 0

    def validate(self) -> None:
        check_positive(self, "hidden", "lr", "epochs", "patience", "batch_size", "temperature")
        if not 0.0 <= self.label_weight <= 1.0 or self.code_weight < 0:
            raise ConfigError(f"label_weight must be in [0, 1] and code_weight >= 0, got {self.label_weight}, {self.code_weight}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        super().validate()


@dataclass
class TeacherTargets:
    """What the student learns from, one row per node of the training feature matrix: teacher ``log_probs``
    ``[N, C]``, encoder ``latents`` ``[N, D]`` and the ``codebook`` ``[K, D]`` they are assigned to."""

    log_probs: torch.Tensor
    latents: torch.Tensor
    codebook: torch.Tensor


@dataclass
class StudentFit:
    """Accuracies per evaluation set at the epoch kept (``selected``) and at the best validation and best test
    epochs (``by_val``, ``by_test``), with the epochs."""

    selected: dict[str, float]
    by_val: dict[str, float]
    by_test: dict[str, float]
    best_epoch: int
    epochs_run: int


def distill(student, x: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, distilled: torch.Tensor,
            teacher: TeacherTargets | None, evaluation: dict[str, tuple[torch.Tensor, torch.Tensor]],
            config: StudentConfig) -> StudentFit:
    """Train ``student`` (:class:`~tokenizers_zoo.networks.gnn.NodeMLP`) on the rows ``x``: without a teacher on
    the hard labels of ``train`` (the plain MLP baseline), else distilled on the nodes ``distilled``.

    ``evaluation`` maps names (it must hold ``"val"`` and ``"test"``) to ``(features, labels)``; the student's
    weights at the selected epoch are loaded back.
    """
    for name in ("val", "test", config.select_on):
        if name not in evaluation:
            raise ValueError(f"evaluation needs a {name!r} set, got {sorted(evaluation)}")
    if teacher is not None and teacher.log_probs.shape[0] != x.shape[0]:
        raise ValueError(f"teacher targets have {teacher.log_probs.shape[0]} rows, the features {x.shape[0]}")
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    tracker = _Selection(config.select_on)
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        student.train()
        if teacher is None:
            _hard_label_pass(student, optimizer, x, labels, train, config.batch_size, 1.0)
        elif config.mode == "correct":
            _correct_epoch(student, optimizer, x, labels, train, distilled, teacher, config)
        else:
            _official_epoch(student, optimizer, x, labels, train, distilled, teacher, config)
        student.eval()
        with torch.no_grad():
            scores = {name: _accuracy(student(features)[0], targets) for name, (features, targets) in evaluation.items()}
        if tracker.update(epoch, scores, student) >= config.patience:
            break
    student.load_state_dict(tracker.state)
    student.eval()
    return StudentFit(tracker.best["selected"][1], tracker.best["val"][1], tracker.best["test"][1], tracker.best["selected"][0], epoch)


class _Selection:
    """Best epochs by the selection set, by val and by test (later epochs win ties, as the official ``>=``)."""

    def __init__(self, select_on: str):
        self.select_on, self.best, self.state, self.waited = select_on, {}, None, 0

    def update(self, epoch: int, scores: dict[str, float], student) -> int:
        for key, name in (("val", "val"), ("test", "test"), ("selected", self.select_on)):
            if key not in self.best or scores[name] >= self.best[key][2]:
                self.best[key] = (epoch, dict(scores), scores[name])
                if key == "selected":
                    self.state, self.waited = copy.deepcopy(student.state_dict()), -1
        self.waited += 1
        return self.waited


def _batches(count: int, batch_size: int) -> list[torch.Tensor]:
    """Official minibatching: a random permutation cut into ``max(1, count // batch_size)`` full batches."""
    batches = max(1, count // batch_size)
    order = torch.randperm(count)[: batches * batch_size] if count >= batch_size else torch.randperm(count)
    return list(order.chunk(batches))


def _step(optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _hard_label_pass(student, optimizer, x, labels, train, batch_size: int, weight: float) -> None:
    for rows in _batches(train.numel(), batch_size):
        nodes = train[rows]
        _step(optimizer, weight * F.cross_entropy(student(x[nodes])[0], labels[nodes]))


def _soft_label_kl(logits: torch.Tensor, teacher_log_probs: torch.Tensor) -> torch.Tensor:
    """``KL(teacher || student)`` per node, averaged (``KLDivLoss(batchmean, log_target=True)``)."""
    return F.kl_div(logits.log_softmax(1), teacher_log_probs, reduction="batchmean", log_target=True)


def _correct_epoch(student, optimizer, x, labels, train, distilled, teacher: TeacherTargets, config: StudentConfig) -> None:
    is_train = torch.zeros(x.shape[0], dtype=torch.bool)
    is_train[train] = True
    for rows in _batches(distilled.numel(), config.batch_size):
        nodes = distilled[rows]
        logits, projected = student(x[nodes])
        loss = (1 - config.label_weight) * _soft_label_kl(logits, teacher.log_probs[nodes])
        if config.code_weight > 0:
            loss = loss + config.code_weight * config.temperature**2 * code_kl(
                projected, teacher.codebook, teacher.latents[nodes], temperature=config.temperature, metric="cosine")
        labelled = is_train[nodes]
        if config.label_weight > 0 and labelled.any():
            loss = loss + config.label_weight * F.cross_entropy(logits[labelled], labels[nodes][labelled])
        _step(optimizer, loss)


def _official_epoch(student, optimizer, x, labels, train, distilled, teacher: TeacherTargets, config: StudentConfig) -> None:
    """The three passes of the official epoch, bugs included (see the module docstring)."""
    temperature = config.temperature
    codes = F.normalize(teacher.codebook, dim=1)
    for rows in _batches(distilled.numel(), config.batch_size):
        if config.code_weight == 0:  # the official step on a zero loss still moves Adam: take it, skip the math
            _zero_gradient_step(student, optimizer)
            continue
        _, projected = student(x[distilled[rows]])
        target = (F.normalize(teacher.latents[rows], dim=1) @ codes.T / temperature).softmax(1)  # node id = row position
        log_student = (-torch.cdist(projected, teacher.codebook) / temperature).log_softmax(1)
        misused = F.kl_div(log_student, target, reduction="batchmean", log_target=True)
        _step(optimizer, config.code_weight * misused * temperature**2)
    _hard_label_pass(student, optimizer, x, labels, train, config.batch_size, config.label_weight)
    for rows in _batches(distilled.numel(), config.batch_size):
        nodes = distilled[rows]
        _step(optimizer, (1 - config.label_weight) * _soft_label_kl(student(x[nodes])[0], teacher.log_probs[nodes]))


def _zero_gradient_step(student, optimizer) -> None:
    """``optimizer.step()`` after backpropagating a zero code loss: zero gradients on the layers the code term
    reaches (hidden layers, projection), none on the classifier."""
    optimizer.zero_grad(set_to_none=True)
    for name, parameter in student.named_parameters():
        if not name.startswith("classifier."):
            parameter.grad = torch.zeros_like(parameter)
    optimizer.step()


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return float((logits.argmax(1) == targets).float().mean())
