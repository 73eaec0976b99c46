"""The method registry and presets: registration, lookup, passes, the config's method checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ispo.methods import (
    METHODS,
    IspoOptions,
    MethodOutput,
    NoOptions,
    Pass,
    config_field,
    get_method,
    method_names,
    register_method,
)
from ispo.methods.presets import PAPER_ABLATIONS, resolve_preset
from ispo.methods.registry import option_config_names

BUILTIN = {"grpo", "dr_grpo", "entropy_tokens", "ispo", "self_certainty", "rlpr", "zvp", "prog", "pacr"}
RECIPES = Path(__file__).parents[2] / "recipes"


def test_builtin_methods_are_registered():
    assert BUILTIN <= set(method_names())


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'nope'; registered methods: .*rlpr"):
        get_method("nope")


def test_register_a_new_method_with_one_decorator():
    @dataclass(frozen=True)
    class BonusOptions:
        weight: float  # ISPOConfig.test_bonus_weight (stands in for a config here)
        scale: str = config_field("scale_rewards")

    @register_method(
        "test_bonus",
        options=BonusOptions,
        passes=lambda options: {Pass.PI_OLD} if options.weight else set(),
        prefix="test_bonus_",
    )
    def test_bonus(batch, options):
        return MethodOutput(rewards=batch.outcome + options.weight)

    config = SimpleNamespace(test_bonus_weight=2.0, scale_rewards="none", weight=-1.0)
    try:
        method = get_method("test_bonus")
        assert method.function is test_bonus and method.prefix == "test_bonus_"
        assert method.options(config) == BonusOptions(weight=2.0, scale="none")  # prefix + name, or config_field
        assert method.passes(config) == frozenset({Pass.PI_OLD})
        assert method.passes(SimpleNamespace(test_bonus_weight=0.0, scale_rewards="none")) == frozenset()
        batch = SimpleNamespace(outcome=torch.tensor([0.0, 1.0]))
        assert torch.equal(method.compute(batch, config).rewards, torch.tensor([2.0, 3.0]))
        with pytest.raises(ValueError, match="already registered"):
            register_method("test_bonus")(test_bonus)
        with pytest.raises(AttributeError, match="BonusOptions.weight reads the config field 'test_bonus_weight'"):
            method.options(SimpleNamespace(scale_rewards="none"))
    finally:
        METHODS.pop("test_bonus", None)


def test_options_must_be_a_frozen_dataclass_without_defaults():
    @dataclass
    class Mutable:
        weight: float

    @dataclass(frozen=True)
    class WithDefault:
        weight: float = 0.5

    with pytest.raises(TypeError, match="options must be a frozen dataclass"):
        register_method("test_mutable", options=Mutable)
    with pytest.raises(TypeError, match="weight have a default; defaults are written once, in ISPOConfig"):
        register_method("test_default", options=WithDefault)
    assert "test_mutable" not in METHODS and "test_default" not in METHODS


def test_every_method_reads_exactly_its_own_config_fields():
    """Options are built from ISPOConfig by one rule; every prefixed field of a method is one of its options."""
    from ispo import ISPOConfig

    names = {f.name for f in dataclasses.fields(ISPOConfig)}
    for name in method_names():
        method = get_method(name)
        read = set(option_config_names(method.options_class, method.prefix).values())
        assert read <= names, (name, read - names)
        if method.prefix:
            assert {n for n in names if n.startswith(method.prefix)} <= read, name
        config = ISPOConfig(output_dir="/tmp/ispo-test", use_cpu=True, bf16=False, report_to=[], method=name)
        options = method.options(config)
        assert isinstance(options, method.options_class)
        for option, field_name in option_config_names(method.options_class, method.prefix).items():
            assert getattr(options, option) == getattr(config, field_name), (name, option)
    assert get_method("grpo").options_class is NoOptions
    ispo_fields = set(option_config_names(IspoOptions, None).values())
    assert ispo_fields == {
        "lambda_ifd",
        "lambda_tok",
        "entropy_top_frac",
        "drift_threshold",
        "hinge_tau",
        "entropy_alpha",
        "hinge_beta",
        "critical",
        "ifd_answer",
        "token_credit",
        "intrinsic_scale",
        "intrinsic_groups",
        "token_asymmetry",
        "scale_rewards",
    }


def test_the_registry_imports_none_of_its_users():
    source = (Path(__file__).parents[2] / "src/ispo/methods/registry.py").read_text()
    assert "ispo.methods.builtin" not in source and "ispo.methods.baselines" not in source


def test_passes_follow_the_config():
    from ispo import ISPOConfig

    def config(**kwargs):
        return ISPOConfig(output_dir="/tmp/ispo-test", use_cpu=True, bf16=False, report_to=[], **kwargs)

    ispo = get_method("ispo")
    assert ispo.passes(config()) == {Pass.PI_OLD, Pass.REFERENCE, Pass.ANSWER_WITHOUT_REASONING}
    assert ispo.passes(config(critical="entropy", lambda_ifd=0.0)) == {Pass.PI_OLD}
    assert ispo.passes(config(lambda_tok=0.0, ifd_answer="reference")) == {Pass.GOLD_ANSWER}
    assert ispo.passes(config(lambda_ifd=0.0, lambda_tok=0.0)) == frozenset()
    assert get_method("grpo").passes(config(method="grpo")) == frozenset()
    assert get_method("rlpr").passes(config(method="rlpr")) == {Pass.GOLD_ANSWER}
    assert get_method("zvp").passes(config(method="zvp")) == {Pass.PI_OLD}


def test_method_trl_settings_fill_defaults_and_refuse_conflicts():
    from ispo import ISPOConfig

    base = dict(output_dir="/tmp/ispo-test", use_cpu=True, bf16=False, report_to=[])
    dr = ISPOConfig(**base, method="dr_grpo")
    assert (dr.loss_type, dr.scale_rewards) == ("dr_grpo", "none")
    assert ISPOConfig(**base, method="entropy_tokens").top_entropy_quantile == 0.2
    with pytest.raises(ValueError, match="method 'dr_grpo' means loss_type='dr_grpo', got 'grpo'"):
        ISPOConfig(**base, method="dr_grpo", loss_type="grpo")
    with pytest.raises(ValueError, match="ISPOConfig.zvp_alpha belongs to method 'zvp' but method is 'rlpr'"):
        ISPOConfig(**base, method="rlpr", zvp_alpha=0.3)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        ISPOConfig(**base, method="nope")


def test_presets_resolve_names_aliases_and_methods():
    assert resolve_preset("GRPO") == {"method": "grpo"}
    assert resolve_preset("Dr.GRPO") == {"method": "dr_grpo"}
    assert resolve_preset("ISPO-paper") == resolve_preset("ispo") == {"method": "ispo"}  # one definition
    assert resolve_preset("rlpr") == {"method": "rlpr"}
    assert resolve_preset("+IFD") == {"method": "ispo", "lambda_tok": 0.0}
    assert resolve_preset("beta = 0") == {"method": "ispo", "hinge_beta": 0.0}
    with pytest.raises(ValueError, match="unknown preset or method 'nope'"):
        resolve_preset("nope")
    with pytest.raises(ValueError, match="preset 'ISPO-recommended' was removed"):
        resolve_preset("ISPO-recommended")


def test_paper_ablation_presets_change_one_part_of_ispo():
    """Each Table 2 ablation is the paper's ISPO with one field changed, and builds a valid config."""
    from ispo import ISPOConfig

    for name, fields in PAPER_ABLATIONS.items():
        assert fields["method"] == "ispo" and len(fields) == 2, name
        ISPOConfig(output_dir="/tmp/ispo-test", use_cpu=True, bf16=False, report_to=[], **fields)


@pytest.mark.parametrize("method", sorted(BUILTIN - {"ispo"}))
def test_every_method_has_a_recipe_with_the_ispo_recipes_budget(method):
    from ispo.train import load_recipe

    overrides = {"bf16": "false", "use_cpu": "true"}
    _, reference = load_recipe(RECIPES / "qwen2.5-math-7b.yaml", overrides)
    recipe, config = load_recipe(RECIPES / f"{method}_qwen2.5-math-7b.yaml", overrides)
    assert config.method == method
    for name in (
        "max_steps",
        "learning_rate",
        "num_generations",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_completion_length",
        "temperature",
        "seed",
    ):
        assert getattr(config, name) == getattr(reference, name), name
    assert recipe.dataset == load_recipe(RECIPES / "qwen2.5-math-7b.yaml", overrides)[0].dataset
