"""The WaveNet builder and its convolutional twin."""

import pytest
import torch
import torch.nn.functional as F

from zth.makemore.data import Vocab, build_dataset
from zth.makemore.layers import BatchNorm1d
from zth.makemore.wavenet import BatchNorm1dPerStep, conv_logits, mlp, wavenet, word_sequences

pytestmark = pytest.mark.usefixtures("one_thread")


def test_parameter_counts_of_the_lecture():
    assert sum(p.numel() for p in wavenet(27).parameters()) == 76_579
    assert sum(p.numel() for p in wavenet(27, 8, 10, 68).parameters()) == 22_397
    assert sum(p.numel() for p in mlp(27, 8, 10, 200).parameters()) == 22_097
    assert sum(p.numel() for p in mlp(27, 3, 10, 200).parameters()) == 12_097
    with pytest.raises(ValueError, match="power of two"):
        wavenet(27, block_size=6)


def test_initial_loss_is_near_uniform():
    g = torch.Generator().manual_seed(0)
    model = wavenet(27, generator=g)
    X = torch.randint(0, 27, (512, 8), generator=g)
    Y = torch.randint(0, 27, (512,), generator=g)
    assert F.cross_entropy(model(X), Y).item() == pytest.approx(torch.log(torch.tensor(27.0)).item(), abs=0.1)


def test_per_step_batchnorm_keeps_separate_statistics():
    model = wavenet(27, 8, 4, 6, per_step_batchnorm=True, generator=torch.Generator().manual_seed(1))
    model(torch.randint(0, 27, (32, 8)))
    bns = [layer for layer in model if isinstance(layer, BatchNorm1d)]
    assert [type(b) for b in bns] == [BatchNorm1dPerStep, BatchNorm1dPerStep, BatchNorm1d]
    assert [tuple(b.running_mean.shape) for b in bns] == [(4, 6), (2, 6), (6,)]


@pytest.mark.parametrize("build, block", [(lambda g: wavenet(27, 8, 5, 7, generator=g), 8),
                                          (lambda g: wavenet(27, 4, 3, 6, generator=g), 4),
                                          (lambda g: mlp(27, 3, 4, 9, generator=g), 3)])
def test_conv_logits_equal_the_model_on_every_window(build, block):
    torch.set_default_dtype(torch.float64)
    try:
        g = torch.Generator().manual_seed(2)
        model = build(g)
        for layer in model:  # non-trivial BatchNorm parameters and statistics
            if isinstance(layer, BatchNorm1d):
                layer.gamma = torch.rand(layer.gamma.shape, generator=g) + 0.5
                layer.beta = torch.randn(layer.beta.shape, generator=g)
        for _ in range(5):
            model(torch.randint(0, 27, (64, block), generator=g))
        model.eval()
        words = ["emma", "olivia", "x", "bartholomew"]
        vocab = Vocab.from_words("abcdefghijklmnopqrstuvwxyz")
        inputs, targets = word_sequences(words, vocab, block)
        logits = conv_logits(model, inputs)
        assert logits.shape == (4, 12, 27) and targets.shape == (4, 12)
        X, Y = build_dataset(words, block, vocab)
        mask = targets != -100
        torch.testing.assert_close(logits[mask], model(X))
        torch.testing.assert_close(targets[mask], Y)
    finally:
        torch.set_default_dtype(torch.float32)


def test_conv_logits_needs_eval_mode():
    model = wavenet(27, 4, 3, 6)
    with pytest.raises(ValueError, match="eval mode"):
        conv_logits(model, torch.zeros((1, 6), dtype=torch.long))
