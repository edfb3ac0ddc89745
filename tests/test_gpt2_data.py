"""Token shards, their preparation from text, the per-rank loader, and HellaSwag scoring."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import tiktoken
import torch
import torch.nn as nn

from zth.gpt2 import hellaswag
from zth.gpt2.prepare import main as prepare_main
from zth.gpt2.prepare import text_documents
from zth.gpt2.shards import write_shards
from zth.train.data import TokenStream, find_shards, load_tokens


def test_write_shards_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 65536, n).astype(np.uint16) for n in (5, 300, 17, 1000, 1)]
    files = write_shards(docs, tmp_path, "t", shard_tokens=400, val_tokens=100)
    assert [f.name for f in files] == ["t_val_000000.npy", "t_train_000001.npy", "t_train_000002.npy",
                                       "t_train_000003.npy", "t_train_000004.npy"]
    parts = [np.asarray(load_tokens(f)) for f in files]
    assert [len(p) for p in parts] == [100, 400, 400, 400, 23]
    np.testing.assert_array_equal(np.concatenate(parts), np.concatenate(docs))
    assert find_shards(tmp_path, "train") == files[1:]
    with pytest.raises(ValueError, match="uint16"):
        write_shards([np.array([70000])], tmp_path / "x")
    (tmp_path / "bad_train_000001.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable token shard"):
        load_tokens(tmp_path / "bad_train_000001.npy")
    np.save(tmp_path / "f_train_000001.npy", np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="uint16"):
        load_tokens(tmp_path / "f_train_000001.npy")


def test_loader_walks_shards_and_splits_ranks():
    a, b = np.arange(0, 50, dtype=np.uint16), np.arange(100, 140, dtype=np.uint16)
    one = TokenStream([a, b], batch_size=2, seq_len=4)
    x, y = one.next_batch()
    assert x.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and y.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    seq = [x] + [one.next_batch()[0] for _ in range(10)]  # 6 batches from a, 4 from b
    assert seq[5].tolist() == [[40, 41, 42, 43], [44, 45, 46, 47]]
    assert seq[6].tolist() == [[100, 101, 102, 103], [104, 105, 106, 107]]  # next shard
    assert seq[-1][0, 0].item() == 0  # wrapped around to the first shard
    # two ranks together read what one rank reads in two calls
    r0, r1 = (TokenStream([a, b], 2, 4, rank=r, world_size=2) for r in (0, 1))
    one.reset()
    for _ in range(6):
        assert torch.equal(r0.next_batch()[0], one.next_batch()[0])
        assert torch.equal(r1.next_batch()[0], one.next_batch()[0])
    state = r0.state_dict()
    expected = r0.next_batch()
    r0.reset()
    r0.load_state_dict(state)
    assert torch.equal(r0.next_batch()[0], expected[0])
    with pytest.raises(ValueError, match="fewer than one step"):
        TokenStream([np.arange(10, dtype=np.uint16)], 2, 8)
    with pytest.raises(ValueError, match="no 'train' shards"):
        TokenStream.from_dir("/nonexistent", "train", 2, 4)


def test_prepare_text_file(tmp_path, capsys):
    text = "First story.\n\nSecond story, longer than the first.\n\n\nThird."
    src = tmp_path / "stories.txt"
    src.write_text(text)
    assert text_documents(text, "blank") == ["First story.", "Second story, longer than the first.", "Third."]
    assert prepare_main(["--text", str(src), "--docs", "blank", "--out", str(tmp_path / "out"),
                         "--val-tokens", "5", "--shard-tokens", "8", "--workers", "2"]) == 0
    files = sorted((tmp_path / "out").glob("*.npy"))
    tokens = np.concatenate([load_tokens(f) for f in sorted(files, key=lambda f: f.name[-10:])])
    enc = tiktoken.get_encoding("gpt2")
    expected = []
    for doc in text_documents(text, "blank"):
        expected += [enc.eot_token] + enc.encode_ordinary(doc)
    assert tokens.tolist() == expected
    assert files[-1].name == "stories_val_000000.npy"
    assert prepare_main(["--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path)]) == 2
    assert "neither a zth.data name nor a file" in capsys.readouterr().err


class ChainModel(nn.Module):
    """A 'language model' that knows one fact: after token a comes token table[a]."""

    def __init__(self, table: dict[int, int], vocab: int = 50257):
        super().__init__()
        self.table, self.vocab = table, vocab

    def forward(self, idx, targets=None):
        logits = torch.zeros(*idx.shape, self.vocab)
        for a, b in self.table.items():
            logits[..., b] += 10.0 * (idx == a)
        return logits, None


def test_hellaswag_scoring_on_a_handmade_example():
    enc = tiktoken.get_encoding("gpt2")
    ex = {"ctx": "The cat sat on the", "label": 2,
          "endings": ["dog", "piano quietly", "mat and slept", "roof"]}
    right = enc.encode(" mat and slept")
    chain = dict(zip([enc.encode("The cat sat on the")[-1], *right[:-1]], right, strict=True))
    tokens, mask, label = hellaswag.render_example(ex, enc.encode_ordinary)
    assert tokens.shape[0] == 4 and label == 2
    assert tokens[2, mask[2].bool()].tolist() == right
    total, mean = hellaswag.score_endings(ChainModel(chain), tokens, mask)
    assert int(mean.argmin()) == 2 and int(total.argmin()) == 2
    r = hellaswag.evaluate(ChainModel(chain), [ex, {**ex, "label": 0}], enc.encode_ordinary)
    assert r == {"n": 2, "acc": 0.5, "acc_norm": 0.5}
    # sum vs mean: a long ending that is mostly right beats a short wrong one only by the mean
    ex2 = {"ctx": "The cat sat on the", "label": 0, "endings": ["mat and slept all day long", "x", "y", "z"]}
    tokens, mask, _ = hellaswag.render_example(ex2, enc.encode_ordinary)
    total, mean = hellaswag.score_endings(ChainModel(chain), tokens, mask)
    assert int(mean.argmin()) == 0 and int(total.argmin()) != 0
    # rows longer than the model's context keep the ending and lose context from the left
    tokens, mask, _ = hellaswag.render_example(ex, enc.encode_ordinary, max_len=4)
    assert tokens.shape[1] == 4 and tokens[2, mask[2].bool()].tolist() == right


def test_hellaswag_file_prefers_official(tmp_path, monkeypatch):
    path, which = hellaswag.hellaswag_file("auto")
    assert which == "derived" and path.name == "hellaswag_val_derived.jsonl"
    examples = hellaswag.load_examples(path, limit=10)
    assert len(examples) == 10 and all(len(e["endings"]) == 4 for e in examples)
    official = tmp_path / "hellaswag" / "hellaswag_val.jsonl"  # a cache holding the official file
    official.parent.mkdir()
    with open(official, "w") as f:
        for i in range(10042):
            f.write(json.dumps({"ctx": f"c{i}", "endings": ["a", "b", "c", "d"], "label": 0}) + "\n")
    monkeypatch.setenv("ZTH_CACHE_DIR", str(tmp_path))
    assert hellaswag.hellaswag_file("auto") == (official, "official")
    with pytest.raises(ValueError, match="source"):
        hellaswag.hellaswag_file("nope")


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_prepare_refuses_an_empty_corpus(tmp_path, capsys, text):
    src = tmp_path / "empty.txt"
    src.write_text(text)
    assert prepare_main(["--text", str(src), "--docs", "blank", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m zth.gpt2.prepare: error: ") and "is empty" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_prepare_fineweb_without_datasets_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the package were not installed
    assert prepare_main(["--fineweb", "sample-10BT", "--out", str(tmp_path / "fw")]) == 2
    assert "pip install datasets" in capsys.readouterr().err
    assert not (tmp_path / "fw").exists()
