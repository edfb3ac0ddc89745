"""Extra: Llama 2 (as in llama2.c), trained on TinyStories and exported to llama2.c's formats."""

from zth.llama.layers import FeedForward, RMSNorm, apply_rope, rope_frequencies, swiglu_hidden_dim
from zth.llama.model import PRESETS, Attention, Block, KVCache, Llama, LlamaConfig

__all__ = ["PRESETS", "Attention", "Block", "FeedForward", "KVCache", "Llama", "LlamaConfig", "RMSNorm",
           "apply_rope", "rope_frequencies", "swiglu_hidden_dim"]
