"""Full-batch training of a node-classifying graph teacher (VQGraph) with model selection on validation accuracy."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..config import Config, check_positive


@dataclass
class TeacherTrainConfig(Config):
    """Adam settings and the early stop (official ``train_teacher.py``: lr 1e-4, 100 epochs, patience 50)."""

    lr: float = 1e-4
    weight_decay: float = 1e-3
    epochs: int = 100
    patience: int = 50
    seed: int = 0

    def validate(self) -> None:
        check_positive(self, "lr", "epochs", "patience")
        super().validate()


@dataclass
class TeacherFit:
    """The best epoch (by validation accuracy, later epochs win ties) and its validation accuracy."""

    best_epoch: int
    val_accuracy: float
    epochs_run: int


def accuracy(logits: torch.Tensor, labels: torch.Tensor, nodes: torch.Tensor) -> float:
    """Fraction of ``nodes`` whose arg-max class is their label."""
    return float((logits[nodes].argmax(1) == labels[nodes]).float().mean())


def train_teacher(model, x: torch.Tensor, edge_index: torch.Tensor, labels: torch.Tensor, train: torch.Tensor,
                  val: torch.Tensor, config: TeacherTrainConfig) -> TeacherFit:
    """Train ``model`` (a :class:`~tokenizers_zoo.models.vqgraph.VQGraph`) on the whole graph, evaluating every
    epoch in eval mode; the weights of the best validation epoch are loaded back. Returns the fit summary."""
    torch.manual_seed(config.seed)
    train_mask = torch.zeros(x.shape[0], dtype=torch.bool)
    train_mask[train] = True
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best, best_state, waited, epoch = (-1.0, 0), None, 0, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        out = model(x, edge_index=edge_index, labels=labels, train_mask=train_mask)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            score = accuracy(model.classify(x, edge_index).logits, labels, val)
        if score >= best[0]:
            best, best_state, waited = (score, epoch), copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return TeacherFit(best_epoch=best[1], val_accuracy=best[0], epochs_run=epoch)
