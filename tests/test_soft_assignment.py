"""The soft-assignment op: probabilities, entropies and KL equal dense float64 references (values and
gradients), forward and backward hold one chunk of the N x K matrix at most."""

import itertools

import pytest
import torch

from tokenizers_zoo.ops import chunk_elements, code_entropy, code_kl, code_probabilities

from op_helpers import LargestTensor, dense_distances


def reference_log_probs(x, codebook, temperature, metric):
    """Dense float64 log p from explicit pairwise distances."""
    return torch.log_softmax(-dense_distances(x, codebook, metric) / temperature, dim=1)


def reference_entropy(x, codebook, temperature, metric):
    log_p = reference_log_probs(x, codebook, temperature, metric)
    p = log_p.exp()
    mean_probs = p.mean(0)
    return -(p * log_p).sum(1).mean(), -torch.xlogy(mean_probs, mean_probs).sum(), mean_probs


def reference_kl(x, codebook, target_x, target_codebook, temperature, metric, target_metric):
    log_p = reference_log_probs(x, codebook, temperature, metric)
    log_q = reference_log_probs(target_x, target_codebook, temperature, target_metric)
    return (log_q.exp() * (log_q - log_p)).sum(1).mean()


def as_leaves(*tensors, dtype=torch.float64):
    return [tensor.detach().to(dtype).requires_grad_() for tensor in tensors]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_probabilities_sum_to_one_and_match_the_reference(metric):
    x, codebook = torch.randn(40, 5), torch.randn(23, 5)
    x[0] = 0  # zero vector: cosine 0 to every code
    probs = code_probabilities(x, codebook, temperature=0.3, metric=metric)
    assert probs.dtype == torch.float32 and probs.shape == (40, 23)
    torch.testing.assert_close(probs.sum(1), torch.ones(40), atol=1e-6, rtol=0)
    expected = reference_log_probs(x, codebook, 0.3, metric).exp()
    torch.testing.assert_close(probs.double(), expected, atol=2e-6, rtol=1e-5)
    exact = code_probabilities(x.double(), codebook, temperature=0.3, metric=metric)
    assert exact.dtype == torch.float64
    torch.testing.assert_close(exact, expected, atol=1e-12, rtol=1e-10)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the op disables autocast: same float32 answer
        assert torch.equal(code_probabilities(x, codebook, temperature=0.3, metric=metric), probs)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["random", "large_offset"])
def test_entropy_matches_the_reference_over_many_chunks(metric, case):
    x, codebook = torch.randn(50, 6), torch.randn(37, 6)
    if case == "large_offset":  # centring by the codebook mean keeps float32 logits exact enough at T = 0.1
        offset = 1000 * torch.randn(6)
        x, codebook = x + offset, codebook + offset
    expected = reference_entropy(x, codebook, 0.1, metric)
    with chunk_elements(100):  # 2 rows per chunk: 25 chunks
        out = code_entropy(x, codebook, temperature=0.1, metric=metric)
        exact = code_entropy(x.double(), codebook.double(), temperature=0.1, metric=metric)
    for value, exact_value, want in zip(out, exact, expected):
        assert value.dtype == torch.float32 and exact_value.dtype == torch.float64
        torch.testing.assert_close(value.double(), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(exact_value, want, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(out.mean_probs.sum(), torch.tensor(1.0))


def test_wetok_sign_patterns_give_one_hot_rows_and_the_histogram_entropy():
    patterns = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=8)))  # the 256 codes of {-1, +1}^8
    picks = torch.randint(256, (300,))
    x = patterns[picks].clone().requires_grad_()
    with chunk_elements(2048):
        out = code_entropy(x, patterns, temperature=0.01)
    histogram = torch.bincount(picks, minlength=256).double() / 300
    assert out.sample_entropy.item() == pytest.approx(0.0, abs=1e-6)  # nearest other pattern: logit gap 400
    torch.testing.assert_close(out.mean_probs.double(), histogram, atol=1e-6, rtol=0)
    histogram_entropy = -torch.xlogy(histogram, histogram).sum()
    torch.testing.assert_close(out.codebook_entropy.double(), histogram_entropy, atol=1e-5, rtol=0)
    (out.sample_entropy - out.codebook_entropy).backward()  # most codes have mean probability 0: no NaN
    assert torch.isfinite(x.grad).all()


KL_CASES = {  # name: (metric, target_metric, D of the target's own codebook or None to share the codebook)
    "l2": ("l2", None, None),
    "cosine": ("cosine", None, None),
    "mixed_metrics": ("l2", "cosine", None),
    "own_target_codebook": ("cosine", "l2", 9),
}


@pytest.mark.parametrize("case", KL_CASES)
def test_kl_matches_the_reference_over_many_chunks(case):
    metric, target_metric, target_dim = KL_CASES[case]
    x, codebook = torch.randn(30, 4), torch.randn(17, 4)
    target_x, target_codebook = torch.randn(30, target_dim or 4), torch.randn(17, target_dim or 4)
    if target_dim is None:
        target_codebook = None
    expected = reference_kl(
        x, codebook, target_x, codebook if target_codebook is None else target_codebook, 4.0, metric,
        target_metric or metric,
    )
    with chunk_elements(40):  # 2 rows per chunk
        out = code_kl(x, codebook, target_x, target_codebook, 4.0, metric=metric, target_metric=target_metric)
    assert out.dtype == torch.float32 and out.ndim == 0 and out.item() > 0
    torch.testing.assert_close(out.double(), expected, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_entropy_gradients_match_the_reference(metric):
    x, codebook = torch.randn(45, 5), torch.randn(20, 5)
    weights = torch.randn(20, dtype=torch.float64)

    def loss(out):  # every output of code_entropy feeds the loss
        sample, codebook_entropy, mean_probs = out
        return 0.7 * sample - 1.3 * codebook_entropy + (weights * mean_probs).sum()

    ref_x, ref_codebook = as_leaves(x, codebook)
    loss(reference_entropy(ref_x, ref_codebook, 0.5, metric)).backward()
    for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 2e-4)):
        op_x, op_codebook = as_leaves(x, codebook, dtype=dtype)
        with chunk_elements(60):  # 3 rows per chunk: 15 chunks
            loss(code_entropy(op_x, op_codebook, temperature=0.5, metric=metric)).backward()
        torch.testing.assert_close(op_x.grad.double(), ref_x.grad, atol=tolerance, rtol=tolerance)
        torch.testing.assert_close(op_codebook.grad.double(), ref_codebook.grad, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("case", KL_CASES)
def test_kl_gradients_match_the_reference(case):
    metric, target_metric, target_dim = KL_CASES[case]
    x, codebook = torch.randn(25, 4), torch.randn(11, 4)
    target_x, target_codebook = torch.randn(25, target_dim or 4), torch.randn(11, target_dim or 4)
    ref = as_leaves(x, codebook, target_x, target_codebook)
    op = as_leaves(x, codebook, target_x, target_codebook)
    if target_dim is None:  # shared codebook: its gradient sums both sides
        ref[3], op[3] = ref[1], op[1]
    reference_kl(*ref, 2.0, metric, target_metric or metric).backward()
    with chunk_elements(22):  # 2 rows per chunk
        code_kl(*op, temperature=2.0, metric=metric, target_metric=target_metric).backward()
    for got, want in zip(op, ref):
        torch.testing.assert_close(got.grad, want.grad, atol=1e-10, rtol=1e-10)


def test_gradcheck_entropy_and_kl():
    x, codebook, target_x = as_leaves(torch.randn(7, 3), torch.randn(5, 3), torch.randn(7, 3))
    with chunk_elements(10):  # 2 rows per chunk
        for metric in ("l2", "cosine"):
            assert torch.autograd.gradcheck(lambda a, c: tuple(code_entropy(a, c, 0.8, metric)), (x, codebook))
            assert torch.autograd.gradcheck(
                lambda a, c, t: code_kl(a, c, t, temperature=1.5, metric=metric, target_metric="cosine"),
                (x, codebook, target_x),
            )


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_forward_and_backward_never_hold_more_than_a_chunk_of_the_matrix(metric):
    n, k_codes, dim, budget = 2000, 1000, 4, 1 << 14
    x, codebook, target_x = as_leaves(
        torch.randn(n, dim), torch.randn(k_codes, dim), torch.randn(n, dim), dtype=torch.float32
    )
    assert n * k_codes > 100 * budget and (n + k_codes) * dim < budget - k_codes
    saved = {}  # storage -> elements, of every tensor the forward keeps for the backward

    def pack(tensor):
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes() // tensor.element_size()
        return tensor

    with chunk_elements(budget):
        with LargestTensor() as forward, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = code_entropy(x, codebook, temperature=0.01, metric=metric)
            kl = code_kl(x, codebook, target_x, temperature=4.0, metric=metric, target_metric="cosine")
        with LargestTensor() as backward:
            (out.sample_entropy - out.codebook_entropy + kl).backward()
    for recorder in (forward, backward):  # both passes built chunk-sized [rows, K] blocks, and nothing larger
        assert budget - k_codes < recorder.largest <= budget
    assert sum(saved.values()) < 10 * (n + k_codes) * dim  # O((N + K) D) kept for backward, not N x K
    assert torch.isfinite(x.grad).all() and torch.isfinite(codebook.grad).all() and x.grad.abs().sum() > 0
    assert target_x.grad.abs().sum() > 0


def test_fqgan_entropy_objective_falls_under_sgd():
    x = torch.randn(64, 8, requires_grad=True)
    codebook = torch.randn(32, 8, requires_grad=True)
    optimizer = torch.optim.SGD([x, codebook], lr=0.5)
    losses = []
    with chunk_elements(256):
        for _ in range(15):
            out = code_entropy(x, codebook, temperature=0.5)
            loss = out.sample_entropy - out.codebook_entropy
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert losses[-1] < losses[0] - 0.4, losses


def test_kl_is_zero_for_identical_inputs_and_positive_otherwise():
    x, codebook = torch.randn(20, 5), torch.randn(9, 5)
    assert code_kl(x, codebook, x.clone(), temperature=4.0).item() == 0.0
    assert code_kl(x, codebook, x.clone(), codebook.clone(), temperature=4.0, metric="cosine").item() == 0.0
    assert code_kl(x, codebook, x + 0.5 * torch.randn(20, 5), temperature=4.0).item() > 1e-4
    assert code_kl(x, codebook, x, temperature=4.0, target_metric="cosine").item() > 1e-4


def test_clear_errors():
    x, codebook = torch.randn(4, 3), torch.randn(5, 3)
    with pytest.raises(ValueError, match="D=3 but the codebook has D=2"):
        code_entropy(x, torch.randn(5, 2))
    with pytest.raises(ValueError, match="metric must be one of"):
        code_probabilities(x, codebook, metric="dot")
    for temperature in (0, -1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="temperature must be a positive finite number"):
            code_entropy(x, codebook, temperature=temperature)
    bad = x.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        code_entropy(bad, codebook)
    with pytest.raises(ValueError, match="codebook contains NaN or infinite values"):
        code_kl(x, torch.full((5, 3), float("inf")), x)
    with pytest.raises(ValueError, match="x is empty"):
        code_entropy(torch.randn(0, 3), codebook)
    with pytest.raises(ValueError, match="codebook is empty"):
        code_probabilities(x, torch.randn(0, 3))
    with pytest.raises(ValueError, match="x has N=4 rows but target_x has N=5"):
        code_kl(x, codebook, torch.randn(5, 3))
    with pytest.raises(ValueError, match="target_codebook has K=6"):
        code_kl(x, codebook, x, torch.randn(6, 3))
    with pytest.raises(ValueError, match="target side .* x has D=2 but the codebook has D=3"):
        code_kl(x, codebook, torch.randn(4, 2))
