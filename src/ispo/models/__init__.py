"""Small models and tokenizers that the tests and the offline demo build locally (no hub access)."""

from ispo.models.tiny import build_char_tokenizer, build_tiny_model, save_tiny_model

__all__ = ["build_char_tokenizer", "build_tiny_model", "save_tiny_model"]
