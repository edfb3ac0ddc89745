"""zth.llama's tokenizer layout, tokenizer.bin decoding, and training through the shared trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zth.llama.llama2c import load_llama2c, read_tokenizer_bin, write_tokenizer_bin
from zth.llama.tokenizer import BOS, EOS, StoryTokenizer, decode_pieces
from zth.runs import read_metrics

TEXT = ("Once upon a time, there was a little dog named Max. Max liked to play in the park.\n\n"
        "One day, Max saw a big red ball. He ran to the ball and played all day. The end.\n") * 20


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok() -> StoryTokenizer:
    return StoryTokenizer.train(TEXT, vocab_size=300)


def test_layout_and_round_trip(tok):
    assert tok.vocab_size == 300
    ids = tok.encode("Max ran.", bos=True, eos=True)
    assert ids[0] == BOS and ids[-1] == EOS and min(ids[1:-1]) >= 3
    assert tok.decode(ids) == "Max ran."
    # a byte the BPE never merged keeps its byte value, shifted by the three special tokens
    assert tok.encode("~", bos=False) == [ord("~") + 3]
    for s in ["héllo wörld 🦙", "\x00\x01 tabs\tand\nnewlines", TEXT[:300]]:
        assert tok.decode(tok.encode(s)) == s
    # the shift is exactly the inner BPE's ids
    assert tok.encode(TEXT, bos=False) == [i + 3 for i in tok.bpe.encode_ordinary(TEXT)]


def test_tokenizer_bin_decodes_like_the_tokenizer(tok, tmp_path):
    pieces, scores = tok.pieces()
    assert len(pieces) == tok.vocab_size and pieces[BOS] == b"\n<s>\n"
    assert pieces[3 + ord("a")] == b"a" and pieces[3 + 0xC3] == b"<0xC3>"
    merges = scores[3 + 256:]
    assert merges == sorted(merges, reverse=True) and merges[0] == 0.0  # earlier merge, higher score
    write_tokenizer_bin(tmp_path / "tokenizer.bin", pieces, scores)
    got, got_scores, _ = read_tokenizer_bin(tmp_path / "tokenizer.bin", tok.vocab_size)
    assert got == pieces and got_scores == scores
    for s in ["Once upon a time, Max saw a ball.", "Zoë's café 🦙 costs 3€.\nThe end."]:
        ids = tok.encode(s, eos=True)
        assert decode_pieces(got, ids).decode("utf-8") == s


def test_save_load(tok, tmp_path):
    tok.save(tmp_path / "tok")
    back = StoryTokenizer.load(tmp_path / "tok.model")
    assert back.encode(TEXT) == tok.encode(TEXT)


def test_split_stories():
    from zth.llama.train import split_stories

    s = "Story one.\n\nStill one.\nStory two.\n\nMore two.\n"
    assert split_stories(s) == ["Story one.\n\nStill one.", "Story two.\n\nMore two."]


def _tiny_run(tmp_path, name: str, max_steps: int = 30):
    from zth.llama import LlamaConfig
    from zth.llama.train import Stories, StoryData
    from zth.train import RunConfig, TrainConfig

    tok = StoryTokenizer.train(TEXT, vocab_size=280)
    ids = np.array([i for part in TEXT.split("\n\n") for i in tok.encode(part)], dtype=np.uint16)
    data = Stories(tok, ids, ids[: len(ids) // 2].copy())
    mcfg = LlamaConfig(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=280, multiple_of=8,
                       max_seq_len=32, dropout=0.1)
    tcfg = TrainConfig(total_batch_tokens=256, batch_size=4, seq_len=32, max_steps=max_steps, lr=1e-2,
                       min_lr=1e-3, warmup_steps=3, eval_interval=15, eval_steps=2, log_interval=1,
                       device="cpu")
    return RunConfig(mcfg, tcfg, StoryData()), data, tok, tmp_path / name


def test_training_runs_on_the_shared_trainer(tmp_path):
    from zth.llama import LlamaConfig
    from zth.llama.train import cut_at_bos, story_sampler, train_llama
    from zth.train import RunConfig

    cfg, data, tok, out = _tiny_run(tmp_path, "run")
    model, result = train_llama(cfg, data, out, evals=[story_sampler(tok, n=1, max_new_tokens=20)], log=None)
    records = read_metrics(out / "metrics.jsonl")
    vals = [r["val_loss"] for r in records if r["kind"] == "eval"]
    assert len(vals) == 3 and vals[-1] < vals[0] - 1.0 and result.best_val_loss == min(vals)
    assert records[-1]["samples"][0] and isinstance(records[-1]["samples"][0], str)
    assert cut_at_bos([BOS, 5, 6, BOS, 7]) == [BOS, 5, 6]
    with pytest.raises(ValueError, match="tokenizer"):
        train_llama(RunConfig(LlamaConfig(**{**cfg.model.to_dict(), "vocab_size": 100}), cfg.train), data)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    from zth.llama.model import Llama
    from zth.llama.train import train_llama
    from zth.train import TokenStream, Trainer

    cfg, data, _, full_dir = _tiny_run(tmp_path, "full", max_steps=8)
    _, full = train_llama(cfg, data, full_dir, log=None)
    split = tmp_path / "split"
    torch.manual_seed(cfg.train.seed)
    shape = (cfg.train.batch_size, cfg.train.seq_len)
    val = {"val": TokenStream([data.val], *shape)}
    part = Trainer(Llama(cfg.model), cfg, TokenStream([data.train], *shape), val, out=split,
                   log=None).train(stop_after=5)
    assert part.interrupted and part.step == 5
    _, resumed = train_llama(cfg, data, split, log=None, resume=True)
    assert resumed.step == 8
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_cli_trains_and_exports(tmp_path, monkeypatch):
    """The command line end to end on a tiny budget, with the data through ZTH_DATA_DIR."""
    from zth.data import DataError, path
    from zth.llama.train import main

    try:
        path("tinystories_train"), path("tinystories_valid")
    except DataError:
        pytest.skip("TinyStories sample not available (offline mirror only)")
    out = tmp_path / "run"
    code = main(["--out", str(out), "--export", str(out / "model.bin"), "--device", "cpu", "--quiet",
                 "--set", "max_steps=2", "batch_size=4", "total_batch_tokens=1024", "eval_steps=1"])
    assert code == 0
    model = load_llama2c(out / "model.bin")
    assert model.config.vocab_size == 512 and model.num_params() == 292_800
    assert not model.config.tie_embeddings
    pieces, _, _ = read_tokenizer_bin(out / "tokenizer.bin", 512)
    assert len(pieces) == 512
    assert (out / "tokenizer.model").is_file() and (out / "metrics.jsonl").is_file()
    assert main(["--set", "max_steps=-1"]) == 2
    assert main(["--preset", "nope"]) == 2
    assert main(["--out", str(out)]) == 2  # the run is there already: never overwritten
