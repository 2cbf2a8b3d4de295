"""VQGraph: the teacher tokenizer (encode/decode, Hub round trip, declared losses, input checks), its edge loss against
the dense formula, the official student loop's zero-loss step, and a CI-sized Cora run where the distilled MLP beats
the plain MLP by a wide margin; the ``vqgraph`` command writes the table rows."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.data import cpf_split, load_cpf_npz
from tokenizers_zoo.models.vqgraph import VQGraph, VQGraphConfig, edge_reconstruction_loss, vqgraph_quantizer
from tokenizers_zoo.networks.gnn import NodeMLP
from tokenizers_zoo.training.distillation import StudentConfig, TeacherTargets, _zero_gradient_step, distill
from tokenizers_zoo.training.graph_teacher import TeacherTrainConfig, accuracy, train_teacher

CORA = Path(__file__).parent / "data" / "graph" / "cora.npz"


def ring(nodes: int = 12, features: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.arange(nodes)
    edge_index = torch.stack([torch.cat([ids, (ids + 1) % nodes]), torch.cat([(ids + 1) % nodes, ids])])
    return torch.rand(nodes, features), edge_index


def tiny_config(**overrides) -> VQGraphConfig:
    return VQGraphConfig(in_features=6, num_classes=3, hidden_dim=8, out_hidden=4, dropout=0.0, quantizer=vqgraph_quantizer(16)).replace(**overrides)


def test_encode_decode_and_the_hub_round_trip(tmp_path):
    x, edge_index = ring()
    model = VQGraph(tiny_config()).eval()
    encoded = model.encode(x, edge_index=edge_index)
    assert encoded.indices.shape == (12,) and encoded.indices.dtype == torch.int64
    assert encoded.latents.shape == (12, 8) and model.index_layout.startswith("[N]")
    decoded = model.decode(encoded.indices, edge_index=edge_index)
    assert decoded.shape == (12, 8)
    assert torch.allclose(decoded, model.decoder(model.quantizer.get_codebook()[encoded.indices]))
    model.save_pretrained(tmp_path / "vqgraph")
    loaded = tokenizers_zoo.from_pretrained(tmp_path / "vqgraph")
    assert isinstance(loaded, VQGraph) and loaded.config == model.config
    assert torch.equal(loaded.encode(x, edge_index=edge_index).indices, encoded.indices)
    assert torch.equal(loaded.classify(x, edge_index).logits, model.classify(x, edge_index).logits)


def test_default_config_is_the_official_teacher():
    config = VQGraphConfig()
    assert config.code_dim == 1433 and config.out_hidden == 64 and config.dropout == 0.8
    assert config.loss_weights == {"node": 1e-3, "edge": 0.03}
    assert config.quantizer == {"type": "vq", "codebook_size": 5000, "metric": "cosine", "ema": True, "decay": 0.8, "beta": 0.25}


def test_training_forward_returns_the_declared_weighted_losses():
    x, edge_index = ring()
    model = VQGraph(tiny_config(loss_weights={"node": 0.5, "edge": 0.25})).train()
    labels, mask = torch.randint(0, 3, (12,)), torch.arange(12) < 4
    out = model(x, edge_index=edge_index, labels=labels, train_mask=mask)
    assert set(out.losses) == {"reconstruction", "node", "edge", "classification", "commitment"}
    assert float(out.losses["reconstruction"]) == 0.0
    assert torch.isclose(out.losses["node"], 0.5 * F.mse_loss(out.reconstruction, out.extras["latents"]))
    assert torch.isclose(out.losses["classification"], F.cross_entropy(out.extras["logits"][mask], labels[mask]))
    assert torch.isclose(out.loss, sum(out.losses.values()))
    assert set(model(x, edge_index=edge_index).losses) == {"reconstruction", "node", "edge", "commitment"}


def test_bad_input_is_refused_by_name():
    x, edge_index = ring()
    model = VQGraph(tiny_config())
    with pytest.raises(ValueError, match="edge_index"):
        model.encode(x)
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        model.encode(torch.rand(12, 5), edge_index=edge_index)
    with pytest.raises(TypeError, match="labels"):
        model.encode(x, edge_index=edge_index, labels=torch.zeros(12, dtype=torch.int64))
    with pytest.raises(ValueError, match="both labels and train_mask"):
        model(x, edge_index=edge_index, labels=torch.zeros(12, dtype=torch.int64))
    with pytest.raises(tokenizers_zoo.config.ConfigError, match="conv"):
        tiny_config(conv="gat")


def test_edge_loss_equals_the_dense_official_formula():
    vectors = torch.randn(40, 5, dtype=torch.float64, requires_grad=True)
    pairs = torch.randint(0, 40, (2, 90))
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)  # duplicates and self-loops included
    dense = torch.eye(40, dtype=torch.float64)
    dense[edge_index[0], edge_index[1]] = 1.0
    similarity = vectors @ vectors.T
    expected = F.mse_loss((similarity - similarity.min()) / (similarity.max() - similarity.min()), dense).sqrt()
    got = edge_reconstruction_loss(vectors, edge_index, rows_per_chunk=7)
    assert torch.isclose(got, expected, rtol=1e-10)
    assert torch.allclose(torch.autograd.grad(got, vectors)[0], torch.autograd.grad(expected, vectors)[0], atol=1e-12)


def test_the_zero_code_loss_step_matches_backpropagating_a_zero_loss():
    x = torch.rand(8, 6)
    stepped, reference = (NodeMLP(6, 5, 3, dropout=0.0, code_dim=4) for _ in range(2))
    reference.load_state_dict(stepped.state_dict())
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.1, weight_decay=0.01) for m in (stepped, reference)]
    for _ in range(2):  # a real step first so that Adam has moments to move by
        for model, optimizer in zip((stepped, reference), optimizers):
            optimizer.zero_grad()
            model(x)[0].square().mean().backward()
            optimizer.step()
    _zero_gradient_step(stepped, optimizers[0])
    optimizers[1].zero_grad(set_to_none=True)
    (0.0 * reference(x)[1].sum()).backward()  # the official code pass with lamb_soft_tokens = 0
    optimizers[1].step()
    for (name, a), b in zip(stepped.named_parameters(), reference.parameters()):
        assert torch.equal(a, b), name


def test_cora_student_beats_the_plain_mlp_by_a_wide_margin():
    """CI-sized: teacher width 128, 256 codes, 30 epochs; students at most 60 epochs (about 20 s on one core)."""
    graph = load_cpf_npz(CORA)
    split = cpf_split(graph.labels, seed=0)
    teacher = VQGraph(VQGraphConfig(hidden_dim=128, dropout=0.5, quantizer=vqgraph_quantizer(256)))
    fit = train_teacher(teacher, graph.x, graph.edge_index, graph.labels, split.train, split.val,
                        TeacherTrainConfig(lr=0.01, epochs=30, patience=30))
    out = teacher.classify(graph.x, graph.edge_index)
    used = out.indices.unique().numel()
    assert fit.val_accuracy > 0.7 and accuracy(out.logits, graph.labels, split.test) > 0.7 and 10 < used < 256
    targets = TeacherTargets(F.log_softmax(out.logits, 1).detach(), out.latents.detach(), teacher.quantizer.get_codebook().detach())
    evaluation = {"val": (graph.x[split.val], graph.labels[split.val]), "test": (graph.x[split.test], graph.labels[split.test])}
    scores = {}
    for name, teacher_targets, mode in (("mlp", None, "correct"), ("vqgraph", targets, "correct"), ("official", targets, "repro_official")):
        torch.manual_seed(0)
        student = NodeMLP(1433, 128, 7, dropout=0.6, code_dim=128)
        config = StudentConfig(epochs=60, patience=20, mode=mode, code_weight=1.0 if mode == "correct" else 1e-8,
                               select_on="val" if mode == "correct" else "test")
        scores[name] = distill(student, graph.x, graph.labels, split.train, torch.arange(graph.num_nodes), teacher_targets, evaluation, config)
    assert scores["mlp"].selected["test"] < 0.65
    assert scores["vqgraph"].selected["test"] > scores["mlp"].selected["test"] + 0.12
    assert scores["official"].selected == scores["official"].by_test  # the official transductive selection reads the test set
    assert all(fit.by_test["test"] >= fit.by_val["test"] for fit in scores.values())


def test_vqgraph_command_writes_the_table_rows(tmp_path, capsys):
    recipe = {"data": str(CORA), "dataset": "cora", "seeds": [0], "settings": ["inductive"],
              "teacher": {"hidden_dim": 16, "quantizer": vqgraph_quantizer(32)}, "teacher_train": {"lr": 0.01, "epochs": 3},
              "student": {"epochs": 3, "patience": 3}}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["vqgraph", str(tmp_path / "recipe.json"), "-o", str(tmp_path / "out.json")]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert {"device", "date", "command", "rows"} <= set(result)
    rows = {(row["setting"], row["mode"], row["method"], row["selection"]): row for row in result["rows"]}
    assert set(rows[("production", "repro_official", "VQGraph", "val")]) == {"dataset", "setting", "mode", "method", "selection", "mean", "std", "seeds"}
    assert {"inductive_tran", "inductive_ind", "production", "inductive"} == {key[0] for key in rows}
    assert 0 < rows[("inductive", "shared", "codebook_usage", "-")]["mean"] <= 1
    assert "GNN teacher" in capsys.readouterr().out
    assert main(["vqgraph", str(tmp_path / "recipe.json"), "--data", str(tmp_path / "none.npz")]) == 1


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[1] / "recipes").glob("vqgraph_*.json")), ids=lambda path: path.stem)
def test_every_vqgraph_recipe_builds_its_teacher_and_student(recipe):
    from tokenizers_zoo.training.vqgraph_run import VQGraphRunConfig

    config = VQGraphRunConfig.from_dict(json.loads(recipe.read_text()))
    features, classes = {"cora": (1433, 7), "citeseer": (3703, 6)}[config.dataset.split("_")[0]]
    teacher = VQGraph(VQGraphConfig(in_features=features, num_classes=classes).replace(**config.teacher))
    assert teacher.quantizer.codebook_size == config.teacher["quantizer"]["codebook_size"]
    assert teacher.config.code_dim == config.teacher.get("hidden_dim", features)  # paper scale: the input width
    student = NodeMLP(features, config.student.hidden, classes, config.student.num_layers, config.student.dropout,
                      code_dim=teacher.config.code_dim)
    assert student(torch.zeros(2, features))[1].shape == (2, teacher.config.code_dim)
    assert len(config.seeds) == 10 and Path(config.data).name == f"{config.dataset.split('_')[0]}.npz"


def test_bundled_cora_tokenizer_gives_its_registered_figures():
    model = tokenizers_zoo.from_pretrained("vqgraph_cora_tiny")
    info = tokenizers_zoo.model_info("vqgraph_cora_tiny")
    assert info.weights == "bundled:vqgraph_cora_tiny" and info.modality == "graph" and info.tokens == "1 per node"
    graph = load_cpf_npz(CORA)
    split = cpf_split(graph.labels, seed=0)
    with torch.no_grad():
        out = model.classify(graph.x, graph.edge_index)
        decoded = model.decode(out.indices, edge_index=graph.edge_index)
    assert abs(accuracy(out.logits, graph.labels, split.test) - info.metrics["test_accuracy_cora_seed0"]) < 1e-3
    assert abs(out.indices.unique().numel() / 256 - info.metrics["codebook_usage_cora"]) < 1e-3
    assert decoded.shape == (2485, 128)
    size = sum(f.stat().st_size for f in (Path(tokenizers_zoo.__file__).parent / "weights" / "vqgraph_cora_tiny").iterdir())
    assert size < 3 * 2**20
