"""``ispo.models.recording.GenerationRecorder``: per-token log-probs and entropies read during ``generate``
equal a full forward's, through either hook (the trainer's forward hook, eval's logits processor)."""

from __future__ import annotations

import pytest
import torch

from ispo.core import entropy_from_logits
from ispo.models import build_char_tokenizer, build_tiny_model
from ispo.models.recording import GenerationRecorder


@pytest.fixture(scope="module")
def model_and_prompts():
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=2, seed=1).eval()
    prompts = tokenizer(["Q: 1+2\n", "Q: 17-3+4\n"], return_tensors="pt", padding=True, add_special_tokens=False)
    return model, tokenizer, prompts


def generate(model, tokenizer, prompts, recorder, *, use_hook: bool, temperature=0.7, new_tokens=12):
    torch.manual_seed(0)
    kwargs = dict(
        max_new_tokens=new_tokens,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,
    )
    if use_hook:
        handle = model.register_forward_hook(recorder.hook, with_kwargs=True)
        try:
            sequences = model.generate(**prompts, **kwargs)
        finally:
            handle.remove()
    else:
        sequences = model.generate(**prompts, **kwargs, logits_processor=[recorder.logits_processor()])
    return sequences[:, prompts["input_ids"].shape[1] :]  # (B, T)


def full_forward(model, prompts, completions, temperature):
    """Plain reference: one forward over prompt + completion, per-position log-softmax and entropy."""
    ids = torch.cat([prompts["input_ids"], completions], dim=1)
    mask = torch.cat([prompts["attention_mask"], torch.ones_like(completions)], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    width = completions.shape[1]
    step_logits = logits[:, -width - 1 : -1] / temperature  # (B, T, V): the logits that produced each token
    logps = torch.log_softmax(step_logits, dim=-1).gather(2, completions.unsqueeze(2)).squeeze(2)
    return logps, entropy_from_logits(step_logits)


@pytest.mark.parametrize("use_hook", [True, False], ids=["forward hook", "logits processor"])
def test_recorded_values_equal_a_full_forward(model_and_prompts, use_hook):
    model, tokenizer, prompts = model_and_prompts
    temperature = 0.7 if use_hook else 1.0  # the trainer's sampling temperature; eval's raw distribution
    recorder = GenerationRecorder(temperature)
    completions = generate(model, tokenizer, prompts, recorder, use_hook=use_hook)
    mask = torch.ones_like(completions)
    mask[0, 8:] = 0  # a shorter first completion: masked positions come back as 0
    logps, entropies = recorder.result(completions, mask)
    expected_logps, expected_entropies = full_forward(model, prompts, completions, temperature)
    torch.testing.assert_close(logps, expected_logps * mask, atol=1e-4, rtol=0)
    torch.testing.assert_close(entropies, expected_entropies * mask, atol=1e-4, rtol=0)
    assert (logps[0, 8:] == 0).all() and (entropies[1] > 0).all()


def test_a_recording_of_other_tokens_is_refused(model_and_prompts):
    model, tokenizer, prompts = model_and_prompts
    recorder = GenerationRecorder(1.0)
    completions = generate(model, tokenizer, prompts, recorder, use_hook=True)
    other = completions.clone()
    other[1, 2] = (other[1, 2] + 1) % len(tokenizer)
    assert recorder.result(other, torch.ones_like(other)) is None
    longer = torch.cat([completions, completions[:, :1]], dim=1)
    assert recorder.result(longer, torch.ones_like(longer)) is None  # more tokens than decoding steps


def test_a_forward_that_is_not_one_token_per_step_marks_the_recording_failed(model_and_prompts):
    model, _, prompts = model_and_prompts
    recorder = GenerationRecorder(1.0)
    handle = model.register_forward_hook(recorder.hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**prompts)
            model(**prompts)  # a second full forward, not a decoding step
    finally:
        handle.remove()
    assert recorder.failed
    assert recorder.result(prompts["input_ids"][:, :1], torch.ones_like(prompts["input_ids"][:, :1])) is None


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature"):
        GenerationRecorder(0.0)
