"""ISPOConfig: the paper's defaults, and validation errors that name the field."""

from __future__ import annotations

import pytest

from ispo import ISPOConfig


def make(**overrides) -> ISPOConfig:
    return ISPOConfig(
        output_dir="unused",
        use_cpu=True,
        bf16=False,
        report_to=[],
        num_generations=2,
        per_device_train_batch_size=2,
        **overrides,
    )


def test_defaults_are_the_papers():
    """lambda_1 0.5, lambda_2 0.1 (Eq. 8); top 10% per rollout (Eq. 4); 0.3 nats (Eq. 5); tau_H 0.3, alpha = beta = 1
    (Eq. 7): the values of the paper's §4.1 and Appendix A.2, written by hand here, not read from ispo.core.paper."""
    config = make()
    assert (config.lambda_ifd, config.lambda_tok) == (0.5, 0.1)
    assert (config.entropy_top_frac, config.drift_threshold) == (0.1, 0.3)
    assert (config.hinge_tau, config.entropy_alpha, config.hinge_beta) == (0.3, 1.0, 1.0)
    assert (config.critical, config.ifd_answer, config.answer_format) == ("intersection", "sampled", "boxed")
    assert config.token_credit == "sequence" and config.intrinsic_scale == "group" and config.token_asymmetry
    assert config.ispo_enabled and config.needs_drift


def test_is_a_grpo_config():
    from trl import GRPOConfig

    assert isinstance(make(), GRPOConfig)
    assert make(lambda_ifd=0.0, lambda_tok=0.0).ispo_enabled is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lambda_ifd", -0.1),
        ("lambda_tok", float("nan")),
        ("entropy_top_frac", 0.0),
        ("entropy_top_frac", 1.5),
        ("drift_threshold", float("inf")),
        ("hinge_tau", -0.1),
        ("entropy_alpha", -1.0),
        ("hinge_beta", -1.0),
        ("pacr_variant", "sprase"),
        ("rlpr_aggregate", "bogus"),
        ("intrinsic_scale", "grup"),
        ("critical", "both"),
        ("ifd_answer", "gold"),
        ("answer_format", "json"),
        ("token_credit", "token"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"ISPOConfig.{field}"):
        make(**{field: value})


def test_outcome_dominance_is_not_enforced():
    """The paper does not enforce it: its own weights (2 * 0.5 + 0.1 >= 1) are accepted, and so is more."""
    assert make().lambda_ifd == 0.5
    assert make(lambda_ifd=2.0, lambda_tok=1.0).lambda_tok == 1.0


def test_a_choice_of_another_method_is_checked_too():
    """Every Literal field is checked when the config is built, whatever the method (a typo never trains)."""
    with pytest.raises(ValueError, match="ISPOConfig.pacr_variant.*dense, sparse.*'sprase'"):
        make(method="pacr", pacr_variant="sprase")
    with pytest.raises(ValueError, match="ISPOConfig.rlpr_aggregate.*'bogus'"):
        make(method="rlpr", rlpr_aggregate="bogus")


@pytest.mark.parametrize(("field", "text", "value"), [("learning_rate", "1e-4", 1e-4), ("lambda_ifd", "5e-1", 0.5)])
def test_text_is_read_by_the_fields_type(field, text, value):
    """YAML reads 1e-4 as text: the field's annotation says it is a number, wherever it was written."""
    assert getattr(make(**{field: text}), field) == value


@pytest.mark.parametrize("name", ["kappa", "rho_h", "rho_d", "delta_min", "tau", "eta"])
def test_removed_fields_name_their_replacement(name):
    from ispo.trainer.config import removed_field_error

    message = removed_field_error(name)
    assert message.startswith(f"ISPOConfig.{name} was ") and "\n" not in message
    assert removed_field_error("lambda_ifd") is None


def test_needs_sum_then_normalize_when_active():
    with pytest.raises(ValueError, match="multi_objective_aggregation"):
        make(multi_objective_aggregation="normalize_then_sum")
    make(multi_objective_aggregation="normalize_then_sum", lambda_ifd=0.0, lambda_tok=0.0)


@pytest.mark.parametrize(
    ("mode", "needs"), [("intersection", True), ("entropy", False), ("drift", True), ("union", True)]
)
def test_which_modes_need_drift(mode, needs):
    assert make(critical=mode).needs_drift is needs
