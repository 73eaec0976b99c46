import subprocess
import sys

import pytest
import torch

from ispo.eval.backends import HFBackend, stop_token_ids
from ispo.eval.prompts import encode_prompt

QUESTIONS = ["What is 2+2?", "A much longer problem statement: compute 17 * 3 and explain.", "x"]


@pytest.fixture(scope="module")
def backend(tiny_model, tokenizer):
    return HFBackend(tiny_model, tokenizer)


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [encode_prompt(tokenizer, q) for q in QUESTIONS]


def teacher_forced_logprobs(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1]  # (T, V)
    return torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(completion)[:, None])[:, 0]


def test_stop_tokens_include_eos_and_chat_turn_ends(tokenizer):
    ids = stop_token_ids(tokenizer)
    assert tokenizer.eos_token_id in ids and tokenizer.convert_tokens_to_ids("<|im_end|>") in ids


@pytest.mark.slow
def test_left_padded_batch_matches_one_prompt_at_a_time(backend, prompts, tiny_model):
    batched = backend.generate(prompts, temperature=0.0, max_new_tokens=12, seeds=[0, 1, 2])
    for prompt, generation in zip(prompts, batched):
        alone = backend.generate([prompt], temperature=0.0, max_new_tokens=12, seeds=[0])[0]
        assert alone.token_ids == generation.token_ids
        assert alone.token_logprobs == pytest.approx(generation.token_logprobs, abs=1e-4)
        assert len(generation.token_ids) == len(generation.token_logprobs) == 12
        assert generation.finish_reason == "length"
        expected = teacher_forced_logprobs(tiny_model, prompt, generation.token_ids)
        torch.testing.assert_close(torch.tensor(generation.token_logprobs), expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_sampling_is_seeded_and_logprobs_are_the_raw_model_distribution(backend, prompts, tiny_model):
    kwargs = dict(temperature=0.7, top_p=0.9, max_new_tokens=10, seeds=[5, 6, 7])
    first, second = backend.generate(prompts, **kwargs), backend.generate(prompts, **kwargs)
    assert [g.token_ids for g in first] == [g.token_ids for g in second]
    for prompt, generation in zip(prompts, first):
        expected = teacher_forced_logprobs(tiny_model, prompt, generation.token_ids)  # temperature 1, no top-p
        torch.testing.assert_close(torch.tensor(generation.token_logprobs), expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_generation_stops_at_a_stop_token(tiny_model, tokenizer, prompts):
    probe = HFBackend(tiny_model, tokenizer).generate(prompts[:1], temperature=0.0, max_new_tokens=3, seeds=[0])[0]
    backend = HFBackend(tiny_model, tokenizer)
    backend.stop_ids = sorted({*backend.stop_ids, probe.token_ids[0]})  # the model's first greedy token now stops it
    generation = backend.generate(prompts[:1], temperature=0.0, max_new_tokens=8, seeds=[0])[0]
    assert generation.finish_reason == "stop"
    assert generation.token_ids == probe.token_ids[:1] and len(generation.token_logprobs) == 1


def test_vllm_is_imported_only_when_chosen():
    code = (
        "import sys, ispo.eval, ispo.eval.runner, ispo.eval.cli\n"
        "assert 'vllm' not in sys.modules\n"
        "from ispo.eval import EvalConfig\n"
        "from ispo.eval.runner import make_backend\n"
        "try:\n"
        "    make_backend(EvalConfig(model='m', output_dir='o', backend='vllm'))\n"
        "except ImportError as error:\n"
        "    assert \"pip install 'ispo[vllm]'\" in str(error), error\n"
        "    print('clear error')\n"
        "else:\n"
        "    print('vllm present')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("clear error", "vllm present")


def test_out_of_memory_halves_the_batch(backend, prompts, monkeypatch):
    sizes = []
    generate = backend._generate

    def fragile(batch, *args):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return generate(batch, *args)

    monkeypatch.setattr(backend, "_generate", fragile)
    generations = backend.generate(prompts, temperature=0.0, max_new_tokens=2, seeds=[0, 1, 2])
    assert len(generations) == 3 and sizes == [3, 1, 2, 1, 1]


def test_vllm_adapter_against_a_stand_in_module(monkeypatch, tokenizer):
    """The adapter's use of vLLM's API (per-request seeds, sampled-token log-probs), without vLLM."""
    import types

    calls = {}

    class Logprob:
        def __init__(self, logprob):
            self.logprob = logprob

    class LLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def get_tokenizer(self):
            return tokenizer

        def generate(self, requests, params, use_tqdm=False):
            calls["generate"] = (requests, params)
            sample = types.SimpleNamespace(
                token_ids=[7, 8],
                text="ab",
                finish_reason="length",
                logprobs=[{7: Logprob(-0.5), 9: Logprob(-2.0)}, {8: Logprob(-0.25)}],
            )
            return [types.SimpleNamespace(outputs=[sample]) for _ in requests]

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    from ispo.eval.backends import VLLMBackend

    backend = VLLMBackend("org/model", seed=3, tensor_parallel_size=2)
    assert calls["init"]["model"] == "org/model" and calls["init"]["tensor_parallel_size"] == 2
    generations = backend.generate([[1, 2], [3]], temperature=0.6, top_p=0.95, max_new_tokens=5, seeds=[11, 12])
    requests, params = calls["generate"]
    assert requests == [{"prompt_token_ids": [1, 2]}, {"prompt_token_ids": [3]}]
    assert [p.kwargs["seed"] for p in params] == [11, 12]
    assert params[0].kwargs["logprobs"] == 0 and params[0].kwargs["max_tokens"] == 5
    assert tokenizer.eos_token_id in params[0].kwargs["stop_token_ids"]
    assert generations[0].token_logprobs == [-0.5, -0.25] and generations[0].finish_reason == "length"


def test_eval_never_imports_the_trainer_nor_trl():
    code = (
        "import sys\n"
        "import ispo.eval, ispo.eval.runner, ispo.eval.cli, ispo.eval.backends, ispo.eval.summary\n"
        "from ispo.eval.confidence import answer_confidences\n"
        "from ispo.models.tiny import build_char_tokenizer\n"
        "tokenizer = build_char_tokenizer()\n"
        "ids = tokenizer('so \\\\boxed{12}', add_special_tokens=False)['input_ids']\n"
        "assert answer_confidences(tokenizer, [ids], [[-0.5] * len(ids)])[0] is not None\n"
        "bad = [m for m in sys.modules if m.startswith(('trl', 'ispo.trainer'))]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
