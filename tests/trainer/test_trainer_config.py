"""ISPOConfig: the spec's defaults, and validation errors that name the field."""

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


def test_defaults_follow_the_spec():
    config = make()
    assert (config.lambda_ifd, config.lambda_tok, config.kappa) == (0.2, 0.2, 2.0)
    assert (config.rho_h, config.rho_d, config.delta_min) == (0.2, 0.5, 1e-3)
    assert (config.tau, config.eta) == (0.3, 1.0)
    assert (config.critical, config.ifd_answer, config.answer_format) == ("intersection", "sampled", "boxed")
    assert config.allow_outcome_override is False and config.token_credit == "sequence"
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
        ("kappa", 0.0),
        ("rho_h", 0.0),
        ("rho_h", 1.5),
        ("rho_d", -0.2),
        ("delta_min", -1e-3),
        ("tau", 1.2),
        ("eta", -1.0),
        ("critical", "both"),
        ("ifd_answer", "gold"),
        ("answer_format", "json"),
        ("token_credit", "token"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"ISPOConfig.{field}"):
        make(**{field: value})


def test_outcome_dominance_is_enforced():
    with pytest.raises(ValueError, match="lambda_ifd"):
        make(lambda_ifd=0.4, lambda_tok=0.2)
    with pytest.raises(ValueError, match="allow_outcome_override"):
        make(lambda_ifd=0.0, lambda_tok=1.0)
    assert make(lambda_ifd=0.4, lambda_tok=0.2, allow_outcome_override=True).lambda_ifd == 0.4
    make(lambda_ifd=0.3, lambda_tok=0.3)  # 0.9 < 1 is fine


def test_needs_sum_then_normalize_when_active():
    with pytest.raises(ValueError, match="multi_objective_aggregation"):
        make(multi_objective_aggregation="normalize_then_sum")
    make(multi_objective_aggregation="normalize_then_sum", lambda_ifd=0.0, lambda_tok=0.0)


@pytest.mark.parametrize(
    ("mode", "needs"), [("intersection", True), ("entropy", False), ("drift", True), ("union", True)]
)
def test_which_modes_need_drift(mode, needs):
    assert make(critical=mode).needs_drift is needs
