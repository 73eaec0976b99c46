"""`ispo.verify` stays a backwards-compatible alias of `ispo.answers`."""

from __future__ import annotations

import ispo.answers
import ispo.verify


def test_legacy_module_exposes_the_public_names():
    names = ["verify_answer", "verify_batch", "extract_answer", "find_answer_span", "Verifier", "VerifyConfig"]
    for name in names + ["AnswerFormat", "ANSWER_FORMATS"]:
        assert getattr(ispo.verify, name) is getattr(ispo.answers, name), name
    assert set(names) <= set(ispo.verify.__all__)


def test_legacy_import_still_grades():
    from ispo.verify import verify_answer

    assert verify_answer("5", r"\boxed{5}") is True
