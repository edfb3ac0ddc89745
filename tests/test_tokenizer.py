"""zth.tokenizer against tiktoken (GPT-2 and GPT-4 parity, special tokens, to_tiktoken) and the lecture."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zth import data
from zth.tokenizer import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BasicTokenizer,
    GPT2Tokenizer,
    GPT4Tokenizer,
    RegexTokenizer,
    Tokenizer,
    TokenizerFileError,
    encode_chunk,
    get_stats,
    merge,
    train_fast,
    train_reference,
)
from zth.tokenizer.cli import main

tiktoken = pytest.importorskip("tiktoken")

_TIKTOKEN_URLS = {
    "gpt2": ["https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
             "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"],
    "cl100k_base": ["https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"],
}

MULTILINGUAL = [
    "hello world!!!? (안녕하세요!) lol123 😉",
    "Ünïcödé façade — naïve café, 1234567 items; 3.14159",
    "日本語のテキスト、中文文本。 Русский текст! العربية עברית हिन्दी",
    "e\u0301 a\u0308 combining marks, Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "tabs\tand\r\nwindows newlines\x00\x01\x1b[0m control   \n\n\n   spaces      ",
    "👩‍👩‍👧‍👦 family, 🇺🇸 flag, 🏳️‍🌈, 1️⃣ keycap",
    "    def f(x):\n        return x ** 2  # indented code\n\tif True:\n\t\tpass\n",
    "I'm, you're, he'LL, THEY'VE, it's, 'd 'S 'M",
]
TEXTS = st.text(max_size=300) | st.sampled_from(MULTILINGUAL) | st.text(
    alphabet=" \t\n\r\x0b\x0c\u00a0\u2003abc'S1😉\u0301", max_size=80)


def _cached(name: str) -> bool:
    """Are tiktoken's files for ``name`` in its cache (so a test never downloads)?"""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or \
        os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return all(os.path.exists(os.path.join(cache, hashlib.sha1(u.encode()).hexdigest()))
               for u in _TIKTOKEN_URLS[name])


def _pair(ours_cls, name: str):
    if not _cached(name):
        pytest.skip(f"tiktoken's {name} files are not cached; set TIKTOKEN_CACHE_DIR")
    return ours_cls(), tiktoken.get_encoding(name)


@pytest.fixture(scope="module")
def gpt4():
    return _pair(GPT4Tokenizer, "cl100k_base")


@pytest.fixture(scope="module")
def gpt2():
    return _pair(GPT2Tokenizer, "gpt2")


@pytest.fixture(scope="module")
def taylor() -> str:
    return data.text("taylorswift")


@pytest.fixture(scope="module")
def trained(taylor):
    """A Basic and a Regex tokenizer trained on taylorswift.txt, with special tokens."""
    basic, reg = BasicTokenizer(), RegexTokenizer()
    basic.train(taylor[:30_000], 400)
    reg.train(taylor, 600)
    for tok in (basic, reg):
        n = len(tok.vocab)
        tok.register_special_tokens({"<|endoftext|>": n, "<|fim_prefix|>": n + 1})
    return {"basic": basic, "regex": reg}


# ---------------------------------------------------------------- the lecture's primitives
def test_lecture_primitives():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([5, 6, 6, 7, 9, 1], (6, 7), 99) == [5, 6, 99, 9, 1]
    assert merge([5, 5, 5], (5, 5), 6) == [6, 5]
    assert merge([5, 5, 5, 5], (5, 5), 6) == [6, 6]


@pytest.mark.parametrize("trainer", ["fast", "reference"])
def test_wikipedia_example(trainer):
    tok = BasicTokenizer()
    tok.train("aaabdaaabac", 256 + 3, trainer=trainer)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"
    assert tok.vocab[258] == b"aaab"


def _lecture_encode(ids, merges):
    """The lecture's encode loop, verbatim in spirit: lowest-ranked present pair, merged everywhere."""
    while len(ids) >= 2:
        stats = get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="aab c\n", min_size=1, max_size=120), st.text(alphabet="aab c\n", max_size=120))
def test_encode_chunk_equals_lecture_loop(train_text, text):
    tok = BasicTokenizer()
    tok.train(train_text, 256 + 25)
    ids = list(text.encode())
    assert encode_chunk(ids, tok.merges) == _lecture_encode(ids, tok.merges)


# ---------------------------------------------------------------- trainers
@settings(max_examples=120, deadline=None)
@given(st.text(alphabet="aaab c\n1é", max_size=200), st.booleans(), st.integers(1, 60))
def test_fast_trainer_equals_reference(text, split, num_merges):
    chunks = regex.findall(GPT4_SPLIT_PATTERN, text) if split else [text]
    chunks = [c.encode() for c in chunks if c]
    assert train_fast(chunks, num_merges) == train_reference(chunks, num_merges)


def test_fast_trainer_equals_reference_on_real_text(taylor):
    text = taylor[:20_000]
    for pattern in (None, GPT2_SPLIT_PATTERN):
        tok_f, tok_r = Tokenizer(pattern), Tokenizer(pattern)
        tok_f.train(text, 256 + 60)
        tok_r.train(text, 256 + 60, trainer="reference")
        assert tok_f.merges == tok_r.merges
        assert len(tok_f.merges) == 60


def test_tie_break_is_smallest_pair():
    # "ba" and "ab" both occur once in "bab": the smaller pair (97, 98) = "ab" wins.
    assert train_fast([b"bab"], 1) == train_reference([b"bab"], 1) == [(97, 98)]
    # weights count: a chunk given as a mapping counts that many times
    assert train_fast({b"xy": 3, b"ab": 2}, 1) == [(120, 121)]


def test_training_stops_when_pairs_run_out():
    tok = RegexTokenizer()
    tok.train("hello hello", 1000)
    assert len(tok.encode("hello")) == len(tok.encode(" hello")) == 1
    assert len(tok.merges) < 4 + 5  # at most 4 merges make "hello", 5 " hello"; they share some


def test_train_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        BasicTokenizer().train("abc", 100)
    with pytest.raises(ValueError, match="trainer"):
        BasicTokenizer().train("abc", 300, trainer="slow")
    with pytest.raises(NotImplementedError):
        GPT2Tokenizer.__new__(GPT2Tokenizer).train("abc", 300)


# ---------------------------------------------------------------- round trips
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS)
def test_round_trip(trained, text):
    for tok in trained.values():
        assert tok.decode(tok.encode_ordinary(text)) == text


def test_round_trip_special_cases(trained, gpt4):
    cases = MULTILINGUAL + [" " * 1000, "\n" * 500 + "x", "a" * 5000, "", "\ufffd\U0010ffff"]
    for tok in [*trained.values(), gpt4[0]]:
        for text in cases:
            assert tok.decode(tok.encode(text)) == text


def test_decode_invalid_utf8_is_replaced(gpt4):
    ours, theirs = gpt4
    ids = [ours.byte_ids[0xE2], ours.byte_ids[0x82]]  # a truncated 3-byte sequence
    assert ours.decode(ids) == theirs.decode(ids) == "\ufffd"
    assert BasicTokenizer().decode([128]) == "\ufffd"
    with pytest.raises(ValueError, match="invalid token id"):
        ours.decode([10**7])


# ---------------------------------------------------------------- GPT-2 / GPT-4 parity with tiktoken
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS)
def test_gpt_parity_hypothesis(gpt2, gpt4, text):
    for ours, theirs in (gpt2, gpt4):
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


@pytest.mark.parametrize("name", ["taylorswift", "shakespeare"])
def test_gpt4_parity_on_datasets(gpt4, name):
    ours, theirs = gpt4
    text = data.text(name)
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_gpt2_parity_on_datasets(gpt2, taylor):
    ours, theirs = gpt2
    for text in [taylor, data.shakespeare()[:200_000], *MULTILINGUAL]:
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_gpt_parity_multilingual_and_surrogates(gpt2, gpt4):
    for ours, theirs in (gpt2, gpt4):
        for text in [*MULTILINGUAL, "lone \ud800 surrogate", "pair \ud83d\ude00 joined", "\udfff"]:
            assert ours.encode(text) == theirs.encode(text)


def test_gpt_known_values(gpt2, gpt4):
    assert gpt2[0].encode("hello world") == [31373, 995]
    assert gpt4[0].encode("hello world") == [15339, 1917]
    assert gpt4[0].special_tokens == {s: gpt4[1].encode_single_token(s) for s in gpt4[1].special_tokens_set}
    assert gpt4[0].n_vocab == gpt4[1].n_vocab == 100277
    assert gpt2[0].n_vocab == gpt2[1].n_vocab == 50257


def test_gpt2_pattern_equals_tiktokens():
    from tiktoken_ext import openai_public  # pattern only: no download
    text = "".join(MULTILINGUAL) + "  x \n\n  y   "
    theirs = openai_public.r50k_pat_str
    assert regex.findall(GPT2_SPLIT_PATTERN, text) == regex.findall(theirs, text)


# ---------------------------------------------------------------- special tokens: tiktoken's semantics
SPECIAL_TEXTS = [
    "hello <|endoftext|> world",
    "<|fim_prefix|>def f(<|fim_suffix|>) pass<|fim_middle|>",
    "no specials at all",
    "<|endoftext|><|endoftext|>x<|endofprompt|>",
    "almost <|endoftext| and <|endoftext|",
]
MODES = [  # (ours, tiktoken kwargs)
    ({"allowed_special": "all"}, {"allowed_special": "all"}),
    ({"allowed_special": "none"}, {"disallowed_special": ()}),
    ({"allowed_special": "none_raise"}, {}),
    ({"allowed_special": {"<|endoftext|>"}}, {"allowed_special": {"<|endoftext|>"}}),
    ({"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()},
     {"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()}),
    ({"allowed_special": {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"}},
     {"allowed_special": {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"}}),
    ({"allowed_special": "none_raise", "disallowed_special": {"<|fim_prefix|>"}},
     {"disallowed_special": {"<|fim_prefix|>"}}),
]


def _outcome(encode, text, **kwargs):
    try:
        return encode(text, **kwargs)
    except ValueError:
        return "ValueError"


@pytest.mark.parametrize("mode", range(len(MODES)))
def test_special_tokens_like_tiktoken(gpt4, mode):
    ours, theirs = gpt4
    kw_ours, kw_theirs = MODES[mode]
    for text in SPECIAL_TEXTS:
        assert _outcome(ours.encode, text, **kw_ours) == _outcome(theirs.encode, text, **kw_theirs), text


def test_disallowed_special_message_is_one_line(gpt4):
    with pytest.raises(ValueError) as e:
        gpt4[0].encode("x <|endoftext|>")
    assert "\n" not in str(e.value) and "<|endoftext|>" in str(e.value)
    with pytest.raises(ValueError, match="not understood"):
        gpt4[0].encode("x", allowed_special="some")


def test_register_special_tokens_rejects_taken_ids(trained):
    tok = trained["regex"]
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|x|>": 300})
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|x|>": tok.special_tokens["<|endoftext|>"]})
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|x|>": 10_000, "<|y|>": 10_000})
    with pytest.raises(ValueError, match="non-negative integer"):
        tok.register_special_tokens({"<|x|>": -1})
    assert "<|x|>" not in tok.special_tokens


# ---------------------------------------------------------------- to_tiktoken
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS)
def test_to_tiktoken_encodes_identically(trained, text):
    for tok in trained.values():
        enc = tok.to_tiktoken()
        assert _outcome(enc.encode, text) == _outcome(tok.encode, text)  # a special token raises in both
        assert enc.decode(tok.encode(text, allowed_special="none")) == text


def test_to_tiktoken_on_real_text_and_specials(trained, gpt4, taylor):
    shakespeare = data.shakespeare()[:100_000] + "<|endoftext|>" + taylor[:5000]
    for tok in [trained["regex"], gpt4[0]]:
        enc = tok.to_tiktoken()
        assert enc.encode(shakespeare, allowed_special="all") == \
            tok.encode(shakespeare, allowed_special="all")
    basic = trained["basic"]
    assert basic.to_tiktoken().encode(taylor[:3000]) == basic.encode(taylor[:3000])


# ---------------------------------------------------------------- files
def test_save_load_round_trip(trained, gpt2, tmp_path):
    text = "".join(MULTILINGUAL) + "<|endoftext|>"
    for name, tok in [*trained.items(), ("gpt2", gpt2[0])]:
        model, vocab = tok.save(tmp_path / name)
        assert model.name == f"{name}.model" and vocab.is_file()
        loaded = Tokenizer.from_file(model)
        assert type(loaded) is type(tok)
        assert loaded.merges == tok.merges and loaded.special_tokens == tok.special_tokens
        assert loaded.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
        assert type(tok).from_file(model).vocab == tok.vocab
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporary files
    lines = (tmp_path / "regex.vocab").read_text(encoding="utf-8").splitlines()
    assert lines[256].startswith("[") and "-> [" in lines[256] and lines[256].endswith(" 256")


def test_load_rejects_bad_files(trained, tmp_path):
    model, _ = trained["regex"].save(tmp_path / "ok")
    state = json.loads(model.read_text(encoding="utf-8"))

    def write(obj, text=None) -> Path:
        p = tmp_path / f"bad{len(list(tmp_path.glob('bad*')))}.model"
        p.write_text(text if text is not None else json.dumps(obj), encoding="utf-8")
        return p

    cases = [
        (write(None, "minbpe v1\n"), "not JSON"),
        (write({**state, "version": 2}), "version 2"),
        (write({**state, "format": "other"}), "not a zth tokenizer"),
        (write({**state, "merges": [[1, 2]]}), "merges"),
        (write({**state, "merges": [[1, 999, 256]]}), "unknown token"),
        (write({**state, "byte_ids": [0] * 256}), "byte_ids"),
        (write({**state, "special_tokens": {"<|x|>": 256}}), "already taken"),
        (write({**state, "pattern": "(unclosed"}), "malformed"),
        (tmp_path / "missing.model", "cannot read"),
    ]
    for path, message in cases:
        with pytest.raises(TokenizerFileError, match=message):
            Tokenizer.from_file(path)
    with pytest.raises(TokenizerFileError, match="not a BasicTokenizer"):
        BasicTokenizer.from_file(model)


# ---------------------------------------------------------------- command line
def test_cli_train_and_encode(tmp_path, capsys, taylor):
    src = tmp_path / "text.txt"
    src.write_text(taylor[:20_000], encoding="utf-8")
    assert main(["train", "--input", str(src), "--vocab-size", "300", "--out", str(tmp_path / "t")]) == 0
    capsys.readouterr()
    assert main(["encode", "--model", str(tmp_path / "t.model"), "hello world"]) == 0
    ids = json.loads(capsys.readouterr().out)
    assert Tokenizer.from_file(tmp_path / "t.model").decode(ids) == "hello world"


def test_python_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "zth.tokenizer", "encode", "--model", "/no/such.model", "hi"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("python -m zth.tokenizer: error: cannot read")


def test_cli_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    [],
    ["train", "--data", "no-such-dataset", "--vocab-size", "300", "--out", "x"],
    ["train", "--input", "/no/such/file", "--vocab-size", "300", "--out", "x"],
    ["train", "--data", "taylorswift", "--vocab-size", "12", "--out", "x"],
    ["encode", "--model", "/no/such.model", "hi"],
    ["encode", "--model", "gpt2"],
    ["encode", "--model", "gpt2", "--allowed-special", "<|nope|>", "hi <|nope|>"],
    ["decode", "--model", "gpt2"],
    ["decode", "--model", "gpt2", "15339", "x"],
    ["decode", "--model", "gpt2", "-3"],
    ["decode", "--model", "gpt2", "99999999"],
])
def test_cli_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m zth.tokenizer: error: ") and err.count("\n") == 1


def test_cli_errors_carry_the_commands_name(capsys):
    from zth.cli import main as zth_main
    assert zth_main(["tokenizer", "encode", "--model", "/no/such.model", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zth tokenizer: error: cannot read tokenizer file /no/such.model")


def test_cli_allowed_special_names_the_unknown_token(gpt2, capsys):
    assert main(["encode", "--model", "gpt2", "--allowed-special", "<|endoftext|>,<|nope|>", "x"]) == 2
    err = capsys.readouterr().err
    assert "<|nope|> is not a special token of gpt2" in err and "<|endoftext|>" in err
    assert main(["encode", "--model", "gpt2", "--allowed-special", "<|endoftext|>", "a<|endoftext|>"]) == 0
    assert json.loads(capsys.readouterr().out) == gpt2[1].encode("a<|endoftext|>", allowed_special="all")


@pytest.mark.parametrize("corpus", ["", "   \n"])
def test_cli_empty_corpus_trains_nothing(tmp_path, capsys, corpus):
    src = tmp_path / "empty.txt"
    src.write_text(corpus, encoding="utf-8")
    assert main(["train", "--input", str(src), "--vocab-size", "300", "--out", str(tmp_path / "t")]) == 2
    assert "is empty" in capsys.readouterr().err
    assert not list(tmp_path.glob("t.*"))


def test_cli_no_pairs_writes_no_tokenizer(tmp_path, capsys):
    src = tmp_path / "one.txt"
    src.write_text("a", encoding="utf-8")
    assert main(["train", "--input", str(src), "--vocab-size", "300", "--out", str(tmp_path / "t")]) == 2
    assert "no pair of tokens to merge" in capsys.readouterr().err and not list(tmp_path.glob("t.*"))


def test_train_on_empty_text_raises():
    with pytest.raises(ValueError, match="empty text"):
        RegexTokenizer().train("", 300)


def test_cli_encode_decode_round_trip(gpt4, tmp_path, capsys):
    text = "".join(MULTILINGUAL) + "\r\nlast line without newline"
    src = tmp_path / "in.txt"
    src.write_bytes(text.encode("utf-8"))
    assert main(["encode", "--model", "gpt4", "--input", str(src)]) == 0
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(capsys.readouterr().out, encoding="utf-8")
    assert json.loads(ids_file.read_text()) == gpt4[1].encode(text)
    assert main(["decode", "--model", "gpt4", "--input", str(ids_file)]) == 0
    assert capsys.readouterr().out == text
    assert main(["decode", "--model", "gpt4", "15339", "1917"]) == 0
    assert capsys.readouterr().out == "hello world"
    ids_file.write_text("15339, 1917\n", encoding="utf-8")
    assert main(["decode", "--model", "gpt4", "--input", str(ids_file)]) == 0
    assert capsys.readouterr().out == "hello world"


def test_cli_decode_errors_option(gpt4, capsys):
    broken = [str(gpt4[0].byte_ids[0xE2]), str(gpt4[0].byte_ids[0x82])]  # a truncated 3-byte sequence
    assert main(["decode", "--model", "gpt4", *broken]) == 0
    assert capsys.readouterr().out == "\ufffd"
    assert main(["decode", "--model", "gpt4", "--errors", "strict", *broken]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_shell_round_trip_through_zth(tmp_path):
    """From the shell, as a user would: encode a file, pipe the ids to decode, get the same bytes."""
    if not _cached("gpt2"):
        pytest.skip("tiktoken's gpt2 files are not cached")
    src = tmp_path / "in.txt"
    src.write_bytes("Hello, wörld!\r\n\ttabs  and 😉 emoji\n".encode())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    enc = subprocess.run([sys.executable, "-m", "zth", "tokenizer", "encode", "--model", "gpt2", "--input",
                          str(src)], capture_output=True, timeout=120, env=env, check=True)
    dec = subprocess.run([sys.executable, "-m", "zth", "tokenizer", "decode", "--model", "gpt2", "--input",
                          "-"], input=enc.stdout, capture_output=True, timeout=120, env=env, check=True)
    assert dec.stdout == src.read_bytes()


@pytest.mark.parametrize("errors", ["replace", "ignore", "strict", "backslashreplace"])
def test_decode_errors_as_tiktoken(gpt4, errors):
    ours, theirs = gpt4
    for ids in ([ours.byte_ids[0xE2], ours.byte_ids[0x82]], theirs.encode("ok"), [ours.byte_ids[0xFF]]):
        assert _outcome(lambda x, **k: ours.decode(x, **k), ids, errors=errors) == \
            _outcome(lambda x, **k: theirs.decode(x, **k), ids, errors=errors)


# ---------------------------------------------------------------- the lecture's idiom (minbpe's API)
LLAMA_TEXT = """
<|endoftext|>The llama (/ˈlɑːmə/; Spanish pronunciation: [ˈʎama] or [ˈʝama]) (Lama glama) is a domesticated
South American camelid, widely used as a meat and pack animal by Andean cultures since the pre-Columbian era.
Llamas are social animals and live with others as a herd. Their wool is soft and contains only a small
amount of lanolin.[2] Llamas can learn simple tasks after a few repetitions. When using a pack, they can
carry about 25 to 30% of their body weight for 8 to 13 km (5–8 miles).[3] The name llama (in the past also
spelled "lama" or "glama") was adopted by European settlers from native Peruvians.[4]
<|fim_prefix|>In<|fim_suffix|> the<|fim_middle|> Inca<|endofprompt|> times
""".strip()
LECTURE_SPECIALS = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


@pytest.mark.parametrize("cls", [BasicTokenizer, RegexTokenizer])
def test_lecture_save_load_idiom(cls, tmp_path, monkeypatch):
    """minbpe's test_save_load, call for call: ``tok = Cls(); tok.load("x.model")`` loads into ``tok``."""
    monkeypatch.chdir(tmp_path)
    text = LLAMA_TEXT
    tokenizer = cls()
    tokenizer.train(text, 256 + 64)
    tokenizer.register_special_tokens(LECTURE_SPECIALS)
    if cls is RegexTokenizer:
        assert tokenizer.decode(tokenizer.encode(text, "all")) == text
        ids = tokenizer.encode(text, "all")
    else:
        ids = tokenizer.encode(text, "none")
    tokenizer.save("test_tokenizer_tmp")
    tokenizer = cls()
    assert tokenizer.load("test_tokenizer_tmp.model") is None  # minbpe's load returns nothing
    assert tokenizer.decode(ids) == text
    again = tokenizer.encode(text, "all") if cls is RegexTokenizer else tokenizer.encode(text, "none")
    assert again == ids
    assert tokenizer.special_tokens == LECTURE_SPECIALS


def test_lecture_api_runs_unchanged(gpt4):
    """The lecture's calls (minbpe's README and tests) on zth: train, encode, decode, GPT4Tokenizer."""
    tokenizer = BasicTokenizer()
    text = "aaabdaaabac"
    tokenizer.train(text, 256 + 3)
    assert tokenizer.encode(text) == [258, 100, 258, 97, 99]
    assert tokenizer.decode([258, 100, 258, 97, 99]) == text
    tokenizer = GPT4Tokenizer()
    enc = gpt4[1]
    for t in ["hello world!!!? (안녕하세요!) lol123 😉", LLAMA_TEXT.replace("<|", "<")]:
        assert tokenizer.encode(t) == enc.encode(t)
        assert tokenizer.decode(tokenizer.encode(t)) == t
    assert tokenizer.encode("<|endoftext|>hi", allowed_special="all") == enc.encode(
        "<|endoftext|>hi", allowed_special="all")
    assert tokenizer.encode("<|endoftext|>hi", "all") == [100257, 6151]


def test_load_into_instance_checks_the_class(trained, tmp_path):
    model, _ = trained["regex"].save(tmp_path / "r")
    with pytest.raises(TokenizerFileError, match="not a BasicTokenizer"):
        BasicTokenizer().load(model)
    tok = Tokenizer()
    tok.load(model)  # any tokenizer file loads into a plain Tokenizer
    assert tok.merges == trained["regex"].merges


# ---------------------------------------------------------------- every code point, as tiktoken classes it
def _tiktoken_class(cls: str, text: str) -> str:
    """The characters of ``text`` that tiktoken's regex engine matches with ``cls`` (no files needed)."""
    ranks = {bytes([i]): i for i in range(256)}
    enc = tiktoken.Encoding("probe", pat_str=cls, mergeable_ranks=ranks, special_tokens={})
    return enc.decode_bytes(enc.encode_ordinary(text)).decode("utf-8")


def test_letter_and_number_classes_match_tiktoken_on_every_code_point():
    from zth.tokenizer import as_tiktoken_splits
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for cls in (r"\p{L}", r"\p{N}", r"[^\s\p{L}\p{N}]", r"[^\r\n\p{L}\p{N}]", r"[\p{L}\p{N}]"):
        ours = "".join(regex.findall(as_tiktoken_splits(cls), every))
        theirs = _tiktoken_class(cls, every)
        if ours != theirs:
            extra = sorted(set(ours) ^ set(theirs))[:5]
            pytest.fail(f"{cls}: zth and tiktoken class {len(set(ours) ^ set(theirs))} code points "
                        f"differently, e.g. {[hex(ord(c)) for c in extra]}; update NEWER_LETTERS / "
                        "NEWER_NUMBERS in zth/tokenizer/split.py")


def test_new_code_point_example(gpt2, gpt4):
    for ours, theirs in (gpt2, gpt4):
        for text in ["\U0003e75e's", "x\U00010940y", "\U00011de0\U00011de1 1"]:
            assert ours.encode(text) == theirs.encode(text)


def test_gpt_parity_random_unicode_fuzz(gpt2, gpt4):
    """8,000 random strings over the whole code point range (fixed seed): 0 mismatches."""
    import random
    rng = random.Random(19)
    pool = ["'s", "'t", "'LL", " ", "  ", "\n", "\r\n", "\t", "a", "1", "123456", ".", "!?"]
    texts = []
    for _ in range(8000):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.5:
                cp = rng.randrange(0x110000)
                parts.append(chr(cp if not 0xD800 <= cp < 0xE000 else cp + 0x800))
            else:
                parts.append(rng.choice(pool))
        texts.append("".join(parts))
    for ours, theirs in (gpt2, gpt4):
        bad = [t for t in texts if ours.encode_ordinary(t) != theirs.encode_ordinary(t)]
        assert not bad, f"{len(bad)} of {len(texts)} differ, e.g. {bad[0]!r}"
