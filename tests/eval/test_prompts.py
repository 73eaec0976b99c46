import pytest

from ispo.eval.prompts import (
    INSTRUCTIONS,
    NO_CHAT_TEMPLATE,
    build_prompt,
    choose_prompt_format,
    encode_prompt,
    resolve_template,
)

PROBLEM = "Compute $\\frac{1}{2} + \\frac{1}{2}$."


def test_qwen_math_puts_the_instruction_in_the_system_turn_of_the_chat_template(tokenizer):
    text, add_special_tokens = build_prompt(tokenizer, PROBLEM)
    assert text == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        f"<|im_start|>user\n{PROBLEM}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert add_special_tokens is False  # the template already holds its special tokens


def test_plain_template_has_no_chat_markup(tokenizer):
    text, add_special_tokens = build_prompt(tokenizer, PROBLEM, template="plain")
    assert text.startswith(f"Question: {PROBLEM}\n") and INSTRUCTIONS["boxed"] in text
    assert "<|im_start|>" not in text and add_special_tokens is True


def test_answer_format_changes_the_instruction(tokenizer):
    text, _ = build_prompt(tokenizer, PROBLEM, answer_format="answer_tag")
    assert "<answer> </answer>" in text and "\\boxed" not in text.replace(PROBLEM, "")


def test_custom_template_substitutes_literally(tokenizer, tmp_path):
    template = resolve_template("Solve {problem} and write \\boxed{x}. {instruction}")
    text, _ = build_prompt(tokenizer, PROBLEM, template=template)
    assert text == f"Solve {PROBLEM} and write \\boxed{{x}}. {INSTRUCTIONS['boxed']}"
    chat_text, _ = build_prompt(tokenizer, PROBLEM, template=template, chat=True)
    assert chat_text.startswith("<|im_start|>user\nSolve ") and "system" not in chat_text
    path = tmp_path / "prompt.txt"
    path.write_text("Q: {problem}\nA:")
    assert resolve_template(f"@{path}") == "Q: {problem}\nA:"


@pytest.mark.parametrize("template", ["no placeholder", "@/nonexistent/prompt.txt"])
def test_bad_custom_templates_are_refused(template):
    with pytest.raises(ValueError, match="problem|does not exist"):
        resolve_template(template)


def test_without_a_chat_template_qwen_math_falls_back_to_plain_and_chat_insists(tokenizer):
    import copy

    without_template = copy.deepcopy(tokenizer)
    without_template.chat_template = None
    chosen = choose_prompt_format(without_template)
    assert (chosen.template, chosen.chat, chosen.description) == ("plain", False, NO_CHAT_TEMPLATE)
    assert build_prompt(without_template, PROBLEM) == build_prompt(tokenizer, PROBLEM, template="plain")
    with pytest.raises(ValueError, match="--chat: the tokenizer has no chat template"):
        build_prompt(without_template, PROBLEM, chat=True)
    with pytest.raises(ValueError, match="no chat template"):
        choose_prompt_format(without_template, "plain", chat=True)
    text, _ = build_prompt(without_template, PROBLEM, chat=False)
    assert text == f"{INSTRUCTIONS['boxed']}\n\n{PROBLEM}\n"


@pytest.mark.parametrize(
    ("template", "chat", "description"),
    [
        ("qwen_math", None, "qwen_math (chat template)"),
        ("qwen_math", False, "qwen_math (no chat template)"),
        ("plain", None, "plain"),
        ("plain", True, "plain (chat template)"),
        ("Q: {problem}", None, "custom"),
        ("Q: {problem}", True, "custom (chat template)"),
    ],
)
def test_the_format_is_described(tokenizer, template, chat, description):
    assert choose_prompt_format(tokenizer, template, chat).description == description


def test_encode_prompt_round_trips(tokenizer):
    ids = encode_prompt(tokenizer, PROBLEM)
    assert tokenizer.decode(ids) == build_prompt(tokenizer, PROBLEM)[0]
