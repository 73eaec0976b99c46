import pytest
import torch

from ispo.models import build_char_tokenizer, build_tiny_model, save_tiny_model

TEXT = "Q: 12 + 3\n\tthen \\boxed{\\frac{1}{2}}"


def test_char_tokenizer_round_trips_text():
    tokenizer = build_char_tokenizer()
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(TEXT)
    assert tokenizer.decode(ids) == TEXT


def test_saved_model_loads_by_path_like_a_hub_id(tmp_path):
    """AutoTokenizer must give back the same tokenizer (a qwen2 config once made it drop whitespace)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    save_tiny_model(tmp_path, seed=3)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    original = build_char_tokenizer()
    assert tokenizer(TEXT)["input_ids"] == original(TEXT)["input_ids"]
    assert tokenizer.decode(tokenizer(TEXT)["input_ids"]) == TEXT
    assert tokenizer.padding_side == "left"
    assert (tokenizer.pad_token, tokenizer.eos_token) == ("<|pad|>", "<|endoftext|>")
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    rebuilt = build_tiny_model(original, seed=3)
    for (name, a), (_, b) in zip(model.state_dict().items(), rebuilt.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_seed_fixes_the_weights_and_leaves_the_global_rng_alone():
    tokenizer = build_char_tokenizer()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_tiny_model(tokenizer, seed=1)
    after = torch.rand(1)
    b = build_tiny_model(tokenizer, seed=1)
    c = build_tiny_model(tokenizer, seed=2)
    assert torch.equal(before, after)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("characters", ["0123456789+-=", "ab"])
def test_restricted_character_sets_keep_special_tokens(characters):
    tokenizer = build_char_tokenizer(characters)
    assert len(tokenizer) == 5 + len(set(characters))
    assert tokenizer.decode(tokenizer("<|im_start|>" + characters[0])["input_ids"]) == "<|im_start|>" + characters[0]
