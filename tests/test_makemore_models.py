"""Lectures 2 and 3: the counting and neural n-gram models, the MLP, mixtures."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zth.makemore import Examples, TrainConfig, Vocab, build_dataset, evaluate_loss, sample, train
from zth.makemore.bigram import (
    NeuralNGram,
    NGramCounts,
    all_contexts,
    count_ngrams,
    count_table,
    count_weighted_nll,
)
from zth.makemore.mixture import mixture
from zth.makemore.mlp import MLP, MLPConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vocab(words):
    return Vocab.from_words(words)


@pytest.fixture(scope="module")
def bigrams(words, vocab):
    return build_dataset(words, 1, vocab)


# --- counting ---------------------------------------------------------------------------------

def test_counts_match_the_lectures_dictionary(words, vocab, bigrams):
    N = count_ngrams(bigrams, 27)
    assert N.shape == (27, 27) and N.sum().item() == 228146
    b = {}
    for w in words:
        chs = ["."] + list(w) + ["."]
        for c1, c2 in zip(chs, chs[1:], strict=False):
            b[c1, c2] = b.get((c1, c2), 0) + 1
    assert all(N[vocab.stoi[c1], vocab.stoi[c2]].item() == n for (c1, c2), n in b.items())
    assert N.sum().item() == sum(b.values())


def test_trigram_counts_match_loops(words, vocab):
    ex = build_dataset(words[:200], 2, vocab)
    N3 = count_ngrams(ex, 27)
    expected = torch.zeros(27, 27, 27, dtype=torch.long)
    for w in words[:200]:
        chs = [0, 0] + vocab.encode(w) + [0]
        for a, b, c in zip(chs, chs[1:], chs[2:], strict=False):
            expected[a, b, c] += 1
    assert torch.equal(N3, expected)


def test_bigram_nll_values_from_the_lecture(bigrams):
    assert round(NGramCounts.fit(bigrams, 27).nll(bigrams), 4) == 2.4540
    assert round(NGramCounts.fit(bigrams, 27, smoothing=1.0).nll(bigrams), 4) == 2.4546


def test_ngram_probs_and_logits(bigrams, vocab):
    m = NGramCounts.fit(bigrams, 27, smoothing=1.0)
    assert torch.allclose(m.probs.sum(1), torch.ones(27))
    X = torch.tensor([[0], [vocab.stoi["q"]]])
    assert torch.allclose(m(X), m.probs[[0, vocab.stoi["q"]]].log())
    # a longer context is cut to its last character
    assert torch.allclose(m(torch.tensor([[5, 13, 0]])), m(torch.tensor([[0]])))
    with pytest.raises(ValueError, match="contexts"):
        NGramCounts.fit(build_dataset(["ab"], 2, vocab), 27)(torch.tensor([[1]]))


def test_all_contexts_align_with_count_rows():
    ctx = all_contexts(4, 2)
    assert ctx.shape == (16, 2)
    assert ctx[6].tolist() == [1, 2]  # row 6 of counts.view(-1, 4) is context (1, 2) = 1·4 + 2


# --- the neural n-gram -------------------------------------------------------------------------

def test_neural_bigram_is_onehot_times_W():
    net = NeuralNGram(context=1)
    x = torch.randint(0, 27, (50, 1), generator=torch.Generator().manual_seed(0))
    assert torch.equal(net(x), F.one_hot(x[:, 0], 27).float() @ net.W)
    g = torch.Generator().manual_seed(2147483647)
    assert torch.equal(net.W.detach(), torch.randn((27, 27), generator=g))  # the lecture's W


def test_neural_trigram_inputs():
    x = torch.randint(0, 27, (40, 2), generator=torch.Generator().manual_seed(1))
    concat = NeuralNGram(context=2)
    onehot = torch.cat([F.one_hot(x[:, 0], 27), F.one_hot(x[:, 1], 27)], dim=1).float()
    assert torch.allclose(concat(x), onehot @ concat.W, atol=1e-6)
    joint = NeuralNGram(context=2, joint=True)
    assert joint.W.shape == (729, 27)
    assert torch.equal(joint(x), F.one_hot(x[:, 0] * 27 + x[:, 1], 729).float() @ joint.W)
    with pytest.raises(ValueError, match="shape"):
        concat(torch.zeros(3, 1, dtype=torch.long))


def test_count_weighted_nll_equals_cross_entropy(bigrams):
    net = NeuralNGram(context=1)
    W = net.W.detach().double().requires_grad_()
    loss_ex = F.cross_entropy(W[bigrams.X[:, 0]], bigrams.Y)
    (g_ex,) = torch.autograd.grad(loss_ex, W)
    table = count_table(count_ngrams(bigrams, 27))
    loss_ct = count_weighted_nll(W[table.X[:, 0]], table.Y.double())
    (g_ct,) = torch.autograd.grad(loss_ct, W)
    assert loss_ex.item() == pytest.approx(loss_ct.item(), abs=1e-12)
    assert torch.allclose(g_ex, g_ct, rtol=0, atol=1e-12)


def test_neural_bigram_converges_to_the_counting_model(bigrams):
    N = count_ngrams(bigrams, 27)
    net = NeuralNGram(context=1)
    train(net, [net.W], count_table(N), TrainConfig(steps=1000, batch_size=None, lr=50, log_lines=0),
          loss_fn=count_weighted_nll, progress=False)
    nn_nll = evaluate_loss(net, bigrams)
    count_nll = NGramCounts(N).nll(bigrams)
    assert count_nll <= nn_nll < count_nll + 0.01


def test_neural_bigram_on_examples_converges_too(words, vocab):
    """The literal lecture loop (full batch of examples, no count trick) on a subset of names."""
    ex = build_dataset(words[:300], 1, vocab)
    net = NeuralNGram(context=1)
    train(net, [net.W], ex, TrainConfig(steps=600, batch_size=None, lr=50, log_lines=0), progress=False)
    count_nll = NGramCounts.fit(ex, 27).nll(ex)
    assert count_nll <= evaluate_loss(net, ex) < count_nll + 0.03


# --- the MLP --------------------------------------------------------------------------------------

def test_mlp_shapes_and_parameter_count():
    m = MLP()
    assert sum(p.numel() for p in m.parameters()) == 11897
    X = torch.randint(0, 27, (7, 3))
    assert m(X).shape == (7, 27)
    assert sum(p.numel() for p in MLP(MLPConfig(n_embd=2, n_hidden=100)).parameters()) == 3481
    assert sum(p.numel() for p in MLP(MLPConfig(n_embd=2, n_hidden=300)).parameters()) == 10281
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="init"):
        MLP(init="xavier")


def test_mlp_matches_torch_nn_layers():
    m = MLP(init="lecture")
    ref = nn.Sequential(nn.Embedding(27, 10), nn.Flatten(), nn.Linear(30, 200), nn.Tanh(), nn.Linear(200, 27))
    with torch.no_grad():
        ref[0].weight.copy_(m.C)
        ref[2].weight.copy_(m.W1.T)
        ref[2].bias.copy_(m.b1)
        ref[4].weight.copy_(m.W2.T)
        ref[4].bias.copy_(m.b2)
    X = torch.randint(0, 27, (64, 3), generator=torch.Generator().manual_seed(0))
    Y = torch.randint(0, 27, (64,), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(m(X), ref(X), atol=1e-5)
    F.cross_entropy(m(X), Y).backward()
    F.cross_entropy(ref(X), Y).backward()
    assert torch.allclose(m.W1.grad, ref[2].weight.grad.T, atol=1e-5)
    assert torch.allclose(m.C.grad, ref[0].weight.grad, atol=1e-5)


def test_lecture_init_draws_in_the_lectures_order():
    g = torch.Generator().manual_seed(2147483647)
    C, W1 = torch.randn((27, 10), generator=g), torch.randn((30, 200), generator=g)
    b1, W2 = torch.randn(200, generator=g), torch.randn((200, 27), generator=g)
    m = MLP(init="lecture")
    assert torch.equal(m.C.detach(), C) and torch.equal(m.W1.detach(), W1)
    assert torch.equal(m.b1.detach(), b1) and torch.equal(m.W2.detach(), W2)


def test_scaled_init_starts_near_the_uniform_loss(words, vocab):
    ex = build_dataset(words[:2000], 3, vocab)
    uniform = -math.log(1 / 27)
    assert abs(F.cross_entropy(MLP(init="scaled")(ex.X), ex.Y).item() - uniform) < 0.05
    assert F.cross_entropy(MLP(init="lecture")(ex.X), ex.Y).item() > 10


def test_tiny_mlp_overfits_a_small_batch(words, vocab):
    ex = build_dataset(words[:5], 3, vocab)  # the lecture's 32 examples
    assert len(ex.Y) == 32
    m = MLP(MLPConfig(n_embd=2, n_hidden=100), init="lecture")
    hist = train(m, list(m.parameters()), ex, TrainConfig(steps=1000, batch_size=None, lr=0.1, log_lines=0),
                 progress=False)
    floor = NGramCounts.fit(ex, 27).nll(ex)  # the empirical distribution of each context: the optimum
    final = evaluate_loss(m, ex)
    assert hist.loss[0] > 10
    assert floor <= final < floor + 0.05


def test_sampling_from_the_mlp_is_reproducible(vocab):
    m = MLP()
    a = sample(m, vocab, 3, n=10, generator=2147483647 + 10)
    assert a == sample(m, vocab, 3, n=10, generator=2147483647 + 10)
    assert a != sample(m, vocab, 3, n=10, generator=1)
    assert all(set(w) <= set(vocab.itos[1:]) for w in a)


# --- mixtures -----------------------------------------------------------------------------------

def test_mixture_averages_probabilities():
    X = torch.randint(0, 5, (10, 2), generator=torch.Generator().manual_seed(0))
    A = torch.randn(5, 5, generator=torch.Generator().manual_seed(1))
    B = torch.randn(5, 5, generator=torch.Generator().manual_seed(2))
    ma, mb = (lambda x: A[x[:, -1]]), (lambda x: B[x[:, 0]])
    mix = mixture([ma, mb], [0.3, 0.7])
    expected = 0.3 * F.softmax(ma(X), 1) + 0.7 * F.softmax(mb(X), 1)
    assert torch.allclose(F.softmax(mix(X), 1), expected, atol=1e-6)
    assert torch.allclose(mix(X).exp().sum(1), torch.ones(10), atol=1e-6)
    Y = torch.randint(0, 5, (10,))
    manual = -expected[torch.arange(10), Y].log().mean().item()
    assert evaluate_loss(mix, Examples(X, Y)) == pytest.approx(manual, rel=1e-5)
    with pytest.raises(ValueError, match="sum to 1"):
        mixture([ma, mb], [0.5, 0.6])
    with pytest.raises(ValueError, match="one weight per model"):
        mixture([ma], [0.5, 0.5])
