"""The model registry: names, variants, learning types, building every model on caad-tiny, clear errors."""

from __future__ import annotations

import re

import pytest

from caadbench.errors import ModelError
from caadbench.models import AnomalyModel, Learning, Variant, create_model, get_model_spec, list_models, register_model
from caadbench.models.base import ModelConfig
from caadbench.models.registry import BUILTIN_MODULES

NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


def test_names_are_family_or_family_dot_variant():
    specs = list_models()
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert set(BUILTIN_MODULES) <= {s.family for s in specs}
    for spec in specs:
        assert NAME.match(spec.name), spec.name
        expected = spec.family if spec.variant == "default" else f"{spec.family}.{spec.variant}"
        assert spec.name == expected
        assert isinstance(spec.learning, Learning) and spec.description
        assert issubclass(spec.cls, AnomalyModel) and issubclass(spec.cls.config_cls, ModelConfig)


def test_baseline_variants_and_learning_types():
    learning = {s.name: s.learning for s in list_models()}
    assert learning["clip"] == learning["clip.ensemble"] == Learning.ZERO_SHOT
    assert learning["winclip"] == learning["winclip.context"] == Learning.ZERO_SHOT
    assert learning["clip.few_shot"] == learning["winclip.plus"] == Learning.FEW_SHOT


def test_every_registered_model_builds_on_caad_tiny(tiny_backbone):
    for spec in list_models():
        model = create_model(spec.name, backbone="caad-tiny")
        assert model.name == spec.name and model.learning == spec.learning
        assert model.config.backbone == "caad-tiny" and model.image_size == 128
        assert model.is_fitted == (spec.learning == Learning.ZERO_SHOT)
        for key, value in spec.overrides.items():
            assert getattr(model.config, key) == (tuple(value) if isinstance(value, list) else value)
        assert type(model.config).from_dict(model.config.to_dict()) == model.config  # config round-trips
        shared = create_model(spec.name, backbone=tiny_backbone)
        assert shared.backbone is tiny_backbone and shared.config.backbone == "caad-tiny"


def test_unknown_names_suggest_the_nearest_or_list_the_families():
    with pytest.raises(ModelError, match=r"^winclipp: unknown model \(did you mean 'winclip'\? `caadbench models`"):
        create_model("winclipp", backbone="caad-tiny")
    with pytest.raises(ModelError, match=r"did you mean 'coreclip\.no_orthogonality'\?"):
        get_model_spec("coreclip.no_orthogonalty")
    with pytest.raises(ModelError, match=r"did you mean 'clip\.few_shot'\?"):
        get_model_spec("clip.fewshot")
    with pytest.raises(ModelError, match=r"unknown model \(families: anomalyclip, aprilgan, clip, coreclip, probe, winclip;"):
        get_model_spec("no_such_method")


def test_unknown_config_option_is_refused():
    with pytest.raises(ModelError, match="unknown option.*scalez"):
        create_model("winclip", backbone="caad-tiny", scalez=(2,))


def test_register_model_refuses_bad_families_and_clashes():
    with pytest.raises(ValueError, match="contain no dot"):
        register_model("a.b", {"default": Variant(Learning.ZERO_SHOT)})
    with pytest.raises(ValueError, match="needs a 'default' variant"):
        register_model("fam", {"x": Variant(Learning.ZERO_SHOT)})
    clip_cls = get_model_spec("clip").cls

    class Other(clip_cls):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_model("clip", {"default": Variant(Learning.ZERO_SHOT)})(Other)


def test_a_variant_cannot_declare_another_learning_type_than_its_config():
    clip_cls = get_model_spec("clip").cls
    with pytest.raises(ValueError, match="declares trained but its config is few-shot"):
        register_model("mislabelled", {"default": Variant(Learning.TRAINED, {"few_shot": True})})(clip_cls)
    assert get_model_spec("clip").make_config(few_shot=True).learning == Learning.FEW_SHOT
