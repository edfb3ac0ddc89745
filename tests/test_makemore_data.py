"""zth.makemore's shared pieces: vocabulary, datasets, the canonical split, sampling, training."""

import json
import random

import pytest
import torch
import torch.nn.functional as F

from zth.makemore import (
    Examples,
    TrainConfig,
    Vocab,
    build_dataset,
    cosine,
    evaluate_loss,
    load_splits,
    piecewise,
    sample,
    split_words,
    train,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def splits(words):
    return load_splits(3, words)


def test_vocab_of_names(words):
    v = Vocab.from_words(words)
    assert len(words) == 32033
    assert len(v) == 27
    assert v.itos[0] == "." and v.stoi["."] == 0
    assert v.stoi["a"] == 1 and v.stoi["z"] == 26 and v.itos[5] == "e"
    assert "".join(v.itos[1:]) == "abcdefghijklmnopqrstuvwxyz"
    assert v.decode(v.encode("emma")) == "emma"


def test_vocab_rejects_bad_input():
    v = Vocab.from_words(["ab"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("abc")
    with pytest.raises(ValueError, match="boundary"):
        Vocab.from_words(["a.b"])
    with pytest.raises(ValueError):
        Vocab(("a", "b"))


def test_build_dataset_emma():
    v = Vocab.from_words(["emma"])  # . e m a
    X, Y = build_dataset(["emma"], 3, v)
    assert X.shape == (5, 3) and Y.shape == (5,)
    assert [v.decode(x) for x in X.tolist()] == ["...", "..e", ".em", "emm", "mma"]
    assert v.decode(Y.tolist()) == "emma."
    X1, Y1 = build_dataset(["emma"], 1, v)
    assert X1.shape == (5, 1) and torch.equal(X1[1:, 0], Y1[:-1])
    with pytest.raises(ValueError, match="block_size"):
        build_dataset(["emma"], 0, v)


def test_canonical_split(words, splits):
    # the lectures' recipe, literally: the global RNG seeded with 42, then shuffled in place
    expected = list(words)
    random.seed(42)
    random.shuffle(expected)
    n1, n2 = int(0.8 * len(expected)), int(0.9 * len(expected))
    assert splits.train_words == expected[:n1]
    assert splits.dev_words == expected[n1:n2]
    assert splits.test_words == expected[n2:]
    assert splits.train.X.shape == (182625, 3) and splits.train.Y.shape == (182625,)
    assert splits.dev.X.shape == (22655, 3)
    assert splits.test.X.shape == (22866, 3)
    assert splits.train.X.dtype == torch.long
    assert splits["dev"] is splits.dev
    assert sum(len(w) + 1 for w in words) == 182625 + 22655 + 22866


def test_split_words_leaves_global_rng_and_input_alone():
    ws = [f"w{i}" for i in range(10)]
    random.seed(0)
    before = random.random()
    random.seed(0)
    tr, dv, te = split_words(ws)
    assert random.random() == before
    assert ws == [f"w{i}" for i in range(10)]
    assert (len(tr), len(dv), len(te)) == (8, 1, 1)
    assert sorted(tr + dv + te) == sorted(ws)
    with pytest.raises(ValueError):
        split_words(ws, train=0.9, dev=0.2)


def _bigram_logits(P):
    return lambda ctx: P[ctx[:, -1]].log()


def test_sampling_reproduces_lecture_2(words):
    """The lecture notebook's smoothed bigram model, seed 2147483647: its five printed names.

    (The video, recorded with an older PyTorch whose ``multinomial`` drew differently, shows others.)
    """
    v = Vocab.from_words(words)
    X, Y = build_dataset(words, 1, v)
    N = torch.bincount(X[:, 0] * 27 + Y, minlength=27 * 27).view(27, 27)
    P = (N + 1).float()
    P /= P.sum(1, keepdim=True)
    out = sample(_bigram_logits(P), v, block_size=1, n=5, generator=2147483647)
    assert out == ["cexze", "momasurailezitynn", "konimittain", "llayn", "ka"]


def test_sampling_is_seeded_and_checks_shapes():
    v = Vocab.from_words(["abc"])
    W = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    model = lambda ctx: W[ctx[:, -1]]
    a = sample(model, v, 1, n=10, generator=123)
    assert a == sample(model, v, 1, n=10, generator=torch.Generator().manual_seed(123))
    assert a != sample(model, v, 1, n=10, generator=124)
    assert all(len(w) <= 3 for w in sample(model, v, 1, n=10, generator=1, max_len=3))
    with pytest.raises(ValueError, match="logits of shape"):
        sample(lambda ctx: torch.zeros(1, 5), v, 1, n=1)


def test_schedules():
    s = piecewise(0.1, [(100_000, 0.01)])
    assert s(0) == 0.1 and s(99_999) == 0.1 and s(100_000) == 0.01
    c = cosine(1.0, 0.1, 100, warmup=10)
    assert c(0) == pytest.approx(0.1) and c(9) == pytest.approx(1.0)
    assert c(10) == pytest.approx(1.0) and c(100) == pytest.approx(0.1)
    assert c(55) == pytest.approx(0.55)


def _toy_problem(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 5, (n, 2), generator=g)
    Y = (X[:, 0] + X[:, 1]) % 5  # a deterministic function of the context
    return Examples(X, Y)


def _toy_model(seed=0):
    g = torch.Generator().manual_seed(seed)
    W = (torch.randn(10, 5, generator=g) * 0.1).requires_grad_()
    return (lambda X: F.one_hot(X, 5).float().view(len(X), -1) @ W), [W]


def test_train_matches_manual_sgd_and_logs(tmp_path, capsys):
    data = _toy_problem()
    forward, params = _toy_model()
    cfg = TrainConfig(steps=50, batch_size=16, lr=piecewise(0.5, [(25, 0.05)]), seed=3, log_lines=3)
    seen = []
    hist = train(forward, params, data, cfg, evals={"dev": data}, metrics_path=tmp_path / "m.jsonl",
                 callback=lambda step, lr, loss: seen.append(step), progress=False)

    # the same loop written out by hand, from the same initial weights and minibatch generator
    f2, (W2,) = _toy_model()
    g = torch.Generator().manual_seed(3)
    losses = []
    for step in range(50):
        ix = torch.randint(0, len(data.Y), (16,), generator=g)
        loss = F.cross_entropy(f2(data.X[ix]), data.Y[ix])
        W2.grad = None
        loss.backward()
        with torch.no_grad():
            W2 -= (0.5 if step < 25 else 0.05) * W2.grad
        losses.append(loss.item())
    assert hist.loss == pytest.approx(losses, abs=1e-6)
    assert torch.allclose(params[0], W2, atol=1e-6)
    assert hist.lr[0] == 0.5 and hist.lr[-1] == 0.05
    assert seen == list(range(50))
    assert hist.loss[-1] < hist.loss[0]

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("step  1/50") and "dev" in lines[-1]
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 26, 50]
    assert records[-1]["dev_loss"] == pytest.approx(evaluate_loss(forward, data))
    assert {"loss", "lr", "examples_per_s", "elapsed"} <= records[0].keys()


def test_weight_decay_shrinks_weight_matrices_only():
    """With a zero gradient, each step multiplies a matrix by 1 - lr * wd and leaves vectors alone."""
    data = _toy_problem()
    W = torch.ones(10, 5, requires_grad=True)
    b = torch.ones(5, requires_grad=True)
    forward = lambda X: (W * 0 + b * 0).sum() + torch.zeros(len(X), 5)  # noqa: E731  (zero gradients)
    cfg = TrainConfig(steps=3, batch_size=4, lr=0.5, weight_decay=0.1, log_lines=0)
    train(forward, [W, b], data, cfg, progress=False)
    torch.testing.assert_close(W.detach(), torch.full((10, 5), (1 - 0.05) ** 3))
    assert torch.equal(b.detach(), torch.ones(5))


def test_train_quiet_and_validates(capsys):
    data = _toy_problem()
    forward, params = _toy_model()
    train(forward, params, data, TrainConfig(steps=5, batch_size=4, log_lines=0), progress=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="requires_grad"):
        train(forward, [torch.zeros(3)], data, TrainConfig(steps=1))
    with pytest.raises(ValueError, match="steps"):
        train(forward, params, data, TrainConfig(steps=0))


def test_evaluate_loss_chunks_match_full():
    data = _toy_problem(n=1000)
    forward, _ = _toy_model()
    full = F.cross_entropy(forward(data.X), data.Y).item()
    assert evaluate_loss(forward, data, batch_size=64) == pytest.approx(full, rel=1e-6)
    with pytest.raises(ValueError, match="empty"):
        evaluate_loss(forward, Examples(data.X[:0], data.Y[:0]))
