"""zth.llama's tokenizer layout, tokenizer.bin decoding, and training through the GPT-2 trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zth.llama.llama2c import load_llama2c, read_tokenizer_bin, write_tokenizer_bin
from zth.llama.tokenizer import BOS, EOS, StoryTokenizer, decode_pieces

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


def test_training_reuses_gpt2_trainer(tmp_path):
    from zth.gpt2.trainer import TrainConfig, Trainer
    from zth.llama import LlamaConfig
    from zth.llama.train import Stories, cut_at_bos, story_sampler, train_llama

    tok = StoryTokenizer.train(TEXT, vocab_size=280)
    ids = np.array([i for part in TEXT.split("\n\n") for i in tok.encode(part)], dtype=np.uint16)
    data = Stories(tok, ids, ids[: len(ids) // 2].copy())
    mcfg = LlamaConfig(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=280, multiple_of=8,
                       max_seq_len=32)
    tcfg = TrainConfig(total_batch_tokens=256, micro_batch=4, seq_len=32, max_steps=30, max_lr=1e-2,
                       min_lr=1e-3, warmup_steps=3, eval_interval=15, eval_steps=2, print_interval=0,
                       checkpoint_interval=0, out_dir=str(tmp_path), device="cpu")
    model, trainer = train_llama(mcfg, tcfg, data, evals=[story_sampler(tok, n=1, max_new_tokens=20)],
                                 log=lambda s: None)
    assert isinstance(trainer, Trainer) and trainer.grad_accum_steps == 2
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(vals) == 3 and vals[-1] < vals[0] - 1.0
    assert records[-1]["samples"][0] and isinstance(records[-1]["samples"][0], str)
    assert cut_at_bos([BOS, 5, 6, BOS, 7]) == [BOS, 5, 6]
    with pytest.raises(ValueError, match="tokenizer"):
        train_llama(LlamaConfig(**{**mcfg.to_dict(), "vocab_size": 100}), tcfg, data)


def test_cli_trains_and_exports(tmp_path, monkeypatch):
    """The command line end to end on a tiny budget, with the data through ZTH_DATA_DIR."""
    from zth.data import DataError, path
    from zth.llama.train import main

    try:
        path("tinystories_train"), path("tinystories_valid")
    except DataError:
        pytest.skip("TinyStories sample not available (offline mirror only)")
    out = tmp_path / "run"
    code = main(["--out", str(out), "--export", str(out / "model.bin"), "--max-steps", "2", "--micro-batch",
                 "4", "--total-batch-tokens", "1024", "--eval-steps", "1", "--print-interval", "0",
                 "--device", "cpu"])
    assert code == 0
    model = load_llama2c(out / "model.bin")
    assert model.config.vocab_size == 512 and model.num_params() == 292_800
    assert not model.config.tie_embeddings
    pieces, _, _ = read_tokenizer_bin(out / "tokenizer.bin", 512)
    assert len(pieces) == 512
    assert (out / "tokenizer.model").is_file() and (out / "metrics.jsonl").is_file()
    assert main(["--max-steps", "0"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--preset", "nope"])
    assert e.value.code == 2
