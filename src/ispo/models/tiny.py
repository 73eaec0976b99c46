"""A character-level tokenizer and a tiny Qwen3-style causal LM, built offline.

Tests, benchmarks and the embedded demo need a real ``transformers`` model and a real fast tokenizer
(so that TRL, ``generate`` and ``save_pretrained`` behave as they do for hub models) but cannot download
anything. Character-level tokenisation keeps the vocabulary tiny and makes every string round-trip,
which matters for answer spans located in token space.

The architecture is Qwen3 rather than Qwen2 on purpose: for a folder whose ``config.json`` says
``qwen2``, ``AutoTokenizer`` (transformers 5) ignores the saved tokenizer class and rebuilds a
byte-level Qwen2 tokenizer that silently drops spaces and newlines from this vocabulary. With
``qwen3`` the saved tokenizer loads back as it was, so a saved tiny model loads by path exactly like a
hub id (TRL, ``ispo eval``), which the tests check.
"""

from __future__ import annotations

import string
from pathlib import Path

# A chat template in the Qwen style, kept minimal: TRL and the eval harness apply it to conversational
# prompts exactly as they would for a hub model.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|unk|>"]
DEFAULT_CHARACTERS = string.printable  # letters, digits, punctuation, whitespace


def build_char_tokenizer(characters: str = DEFAULT_CHARACTERS):
    """Return a ``PreTrainedTokenizerFast`` with one token per character plus chat special tokens.

    Unknown characters map to ``<|unk|>``; ``<|endoftext|>`` is EOS and ``<|pad|>`` is padding.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(characters))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    # Split into single characters; special tokens are matched before this runs.
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        unk_token="<|unk|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        padding_side="left",  # decoder-only generation pads on the left
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    tokenizer,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
    seed: int = 0,
):
    """Return a randomly initialised ``Qwen3ForCausalLM`` sized for CPU work (float32)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Qwen3ForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save_tiny_model(path: str | Path, *, seed: int = 0, **model_kwargs) -> Path:
    """Build a tokenizer and tiny model and save both to ``path`` so that they load by path like a hub id."""
    path = Path(path)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed=seed, **model_kwargs)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
