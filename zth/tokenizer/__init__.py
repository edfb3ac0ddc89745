"""Lecture 8: the GPT tokenizer. Byte-level BPE from scratch, a fast trainer, GPT-2/GPT-4 parity.

``BasicTokenizer`` (no split) and ``RegexTokenizer`` (a regex split, GPT-4's by default) train
with ``tok.train(text, vocab_size)``; ``GPT2Tokenizer`` and ``GPT4Tokenizer`` rebuild OpenAI's
tokenizers from tiktoken's files and encode exactly as tiktoken does. Every tokenizer saves with
``tok.save(prefix)``, loads with ``tok.load(path)`` (into ``tok``, as the lecture does) or
``Tokenizer.from_file(path)`` (a new tokenizer of the class that saved it) and converts with
``tok.to_tiktoken()``.
"""

from zth.tokenizer.base import Tokenizer
from zth.tokenizer.basic import BasicTokenizer
from zth.tokenizer.bpe import encode_chunk, get_stats, merge, render_token
from zth.tokenizer.files import TokenizerFileError
from zth.tokenizer.pretrained import GPT2Tokenizer, GPT4Tokenizer, bpe, recover_merges
from zth.tokenizer.regex_tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, RegexTokenizer
from zth.tokenizer.split import as_tiktoken_splits
from zth.tokenizer.train import train_fast, train_reference

__all__ = [
    "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "BasicTokenizer", "GPT2Tokenizer", "GPT4Tokenizer",
    "RegexTokenizer", "Tokenizer", "TokenizerFileError", "as_tiktoken_splits", "bpe", "encode_chunk",
    "get_stats", "merge",
    "recover_merges", "render_token", "train_fast", "train_reference",
]
