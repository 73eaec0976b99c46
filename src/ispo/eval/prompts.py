"""Prompts: the Qwen2.5-Math chat prompt, a plain-text prompt, or a custom template.

``qwen_math`` is the prompt Qwen2.5-Math is evaluated with: the instruction as the system message
and the problem as the user message, rendered by the model's own chat template. ``plain`` is for
base models without a chat template, and what ``qwen_math`` falls back to when the tokenizer has
none (unless ``--chat`` insists). A custom template is any other ``--prompt`` value (or
``@FILE``): text containing ``{problem}`` and optionally ``{instruction}``, substituted literally
(LaTeX braces elsewhere in it are left alone). The instruction names the marker that
``--answer-format`` extracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ispo.answers.formats import ANSWER_FORMAT_SPECS, AnswerFormat

INSTRUCTIONS: dict[str, str] = {name: spec.instruction for name, spec in ANSWER_FORMAT_SPECS.items()}

BUILTIN_TEMPLATES = ("qwen_math", "plain")
PLAIN_TEMPLATE = "Question: {problem}\n{instruction}\nAnswer:"


def resolve_template(template: str) -> str:
    """Return a built-in name unchanged, or the text of a custom template (read from ``@FILE``).

    Raises:
        ValueError: a custom template without ``{problem}``, or an unreadable ``@FILE``.
    """
    if template in BUILTIN_TEMPLATES:
        return template
    if template.startswith("@"):
        path = Path(template[1:])
        if not path.is_file():
            raise ValueError(f"prompt template file {path} does not exist")
        template = path.read_text(encoding="utf-8")
    if "{problem}" not in template:
        raise ValueError(
            f"--prompt must be one of {', '.join(BUILTIN_TEMPLATES)}, @FILE, or a template containing "
            f"'{{problem}}'; got {template[:60]!r}"
        )
    return template


@dataclass(frozen=True)
class PromptFormat:
    """How problems are rendered: the template actually used, whether the chat template wraps it,
    and a description for ``summary.json``."""

    template: str
    chat: bool
    description: str


NO_CHAT_TEMPLATE = "plain (tokenizer has no chat template)"


def choose_prompt_format(tokenizer, template: str = "qwen_math", chat: bool | None = None) -> PromptFormat:
    """Settle the prompt format for ``tokenizer``.

    ``chat=None`` means the chat template for ``qwen_math`` only; a tokenizer without one then falls
    back to the ``plain`` prompt (described as :data:`NO_CHAT_TEMPLATE`). ``chat=True`` insists.

    Raises:
        ValueError: ``chat=True`` and the tokenizer has no chat template.
    """
    name = template if template in BUILTIN_TEMPLATES else "custom"
    wants_chat = (template == "qwen_math") if chat is None else chat
    if not wants_chat:
        return PromptFormat(template, False, f"{name} (no chat template)" if template == "qwen_math" else name)
    if getattr(tokenizer, "chat_template", None):
        return PromptFormat(template, True, f"{name} (chat template)")
    if chat:
        raise ValueError(
            "--chat: the tokenizer has no chat template; leave --chat out to use the plain prompt, "
            "or pass --tokenizer with a chat template"
        )
    return PromptFormat("plain", False, NO_CHAT_TEMPLATE)


def build_prompt(
    tokenizer,
    problem: str,
    *,
    template: str = "qwen_math",
    answer_format: AnswerFormat = "boxed",
    chat: bool | None = None,
) -> tuple[str, bool]:
    """Render one problem as model input text.

    Args:
        template: ``qwen_math``, ``plain``, or a resolved custom template (see :func:`resolve_template`).
        chat: wrap in the tokenizer's chat template; ``None`` means yes for ``qwen_math`` only (and the
            plain prompt for a tokenizer without one, see :func:`choose_prompt_format`). With a plain
            or custom template the rendered text becomes the user message.

    Returns:
        ``(text, add_special_tokens)``: chat-rendered text already holds its special tokens, so it
        must be tokenised without adding more (a second BOS); plain text gets the tokenizer's own.
    """
    chosen = choose_prompt_format(tokenizer, template, chat)
    template, use_chat = chosen.template, chosen.chat
    instruction = INSTRUCTIONS[answer_format]
    if template == "qwen_math":
        if not use_chat:  # qwen_math without the chat template: system text, then the problem
            return f"{instruction}\n\n{problem}\n", True
        messages = [{"role": "system", "content": instruction}, {"role": "user", "content": problem}]
    else:
        body = PLAIN_TEMPLATE if template == "plain" else template
        text = body.replace("{instruction}", instruction).replace("{problem}", problem)
        if not use_chat:
            return text, True
        messages = [{"role": "user", "content": text}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text, False


def encode_prompt(tokenizer, problem: str, **kwargs) -> list[int]:
    """Token ids of :func:`build_prompt`'s text (same keyword arguments)."""
    text, add_special_tokens = build_prompt(tokenizer, problem, **kwargs)
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
