"""Model options as data: descriptions from the config docstrings, type checks, closest-name suggestions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from caadbench.cli import main
from caadbench.errors import ModelError
from caadbench.models import ModelConfig, get_model_spec, list_models
from caadbench.models.options import check_options, config_options, docstring_attributes


@dataclass
class Demo(ModelConfig):
    """A demo.

    Attributes:
        alpha: first line
            continued here.
        beta, gamma: shared text.

    Raises:
        Nothing: not an attribute.
    """

    alpha: float = 1.0
    beta: int = 2
    gamma: tuple[int, ...] = (1, 2)


def test_docstring_attributes_join_continuations_and_share_grouped_entries():
    assert docstring_attributes(Demo) == {"alpha": "first line continued here.", "beta": "shared text.",
                                          "gamma": "shared text."}


def test_every_option_of_every_model_is_described():
    for spec in list_models():
        options = config_options(spec.cls.config_cls, spec.overrides)
        assert [o.name for o in options] == [f.name for f in dataclasses.fields(spec.cls.config_cls)], spec.name
        for o in options:
            assert o.description and "``" not in o.description, (spec.name, o.name)


def test_no_two_options_of_a_model_share_one_description():
    """A shared ``a, b: text`` entry describes neither option (``max_steps`` read "passes over the train part")."""
    for spec in list_models():
        options = config_options(spec.cls.config_cls, spec.overrides)
        seen: dict[str, str] = {}
        for o in options:
            assert o.description not in seen, f"{spec.name}: {o.name} and {seen[o.description]} share a description"
            seen[o.description] = o.name
    text = {o.name: o.description for o in config_options(get_model_spec("aprilgan").cls.config_cls)}
    assert text["max_steps"].startswith("optimisation steps") and text["epochs"].startswith("passes over")


def test_variant_defaults_are_the_variant_overrides():
    spec = get_model_spec("coreclip.no_csr")
    by_name = {o.name: o for o in config_options(spec.cls.config_cls, spec.overrides)}
    assert by_name["csr_blocks"].default == 0 and by_name["fusion"].default == "crm"
    assert by_name["precision"].owner == "ModelConfig" and by_name["lr"].owner == "CoreClipConfig"


def test_undocumented_option_is_a_documentation_error():
    @dataclass
    class Undocumented(ModelConfig):
        """No attributes section."""

        hidden: int = 0

    with pytest.raises(ModelError, match="option 'hidden' has no description"):
        config_options(Undocumented)


@pytest.mark.parametrize(("values", "expected"), [
    ({"alpha": "1e-3"}, {"alpha": 1e-3}),
    ({"alpha": 2}, {"alpha": 2.0}),
    ({"beta": 3.0}, {"beta": 3}),
    ({"gamma": "2,3"}, {"gamma": (2, 3)}),
    ({"gamma": [4]}, {"gamma": (4,)}),
    ({"pretrained": "null"}, {"pretrained": None}),
    ({"image_size": None}, {"image_size": None}),
])
def test_values_are_converted(values, expected):
    assert check_options(Demo, values) == expected


@pytest.mark.parametrize(("values", "words"), [
    ({"alpah": 1}, "unknown option 'alpah' (did you mean 'alpha'?)"),
    ({"zzz": 1}, "unknown option 'zzz' (known: "),
    ({"beta": 2.5}, "'beta' expects an integer, got 2.5"),
    ({"alpha": "fast"}, "'alpha' expects a number"),
    ({"gamma": ["x"]}, "'gamma' expects an integer"),
    ({"backbone": 3}, "'backbone' expects a string"),
])
def test_bad_values_are_refused(values, words):
    with pytest.raises(ModelError) as err:
        check_options(Demo, values)
    assert words in str(err.value) and str(err.value).startswith("Demo: ")


def test_from_dict_refuses_a_typo_with_the_closest_name_and_a_bad_precision():
    spec = get_model_spec("winclip")
    with pytest.raises(ModelError, match=r"unknown option 'scale' \(did you mean 'scales'\?\)"):
        spec.make_config(scale=(2,))
    with pytest.raises(ModelError, match="'precision' must be one of auto, fp32, bf16"):
        spec.make_config(precision="fp16")


def test_legacy_amp_becomes_precision():
    spec = get_model_spec("coreclip")
    assert spec.cls.config_cls.from_dict({"amp": True}).precision == "auto"
    assert spec.cls.config_cls.from_dict({"amp": False}).precision == "fp32"


def test_models_options_command_prints_every_option():
    result = CliRunner().invoke(main, ["models", "--options", "coreclip.mean_fusion"])
    assert result.exit_code == 0, result.output
    fields = [f.name for f in dataclasses.fields(get_model_spec("coreclip").cls.config_cls)]
    rows = {line.split("|")[1].strip(): line for line in result.output.splitlines() if line.startswith("| ")}
    assert set(fields) <= set(rows)
    assert "| mean " in rows["fusion"] and "weight of the patch BCE" in rows["w_pixel"]
    bad = CliRunner().invoke(main, ["models", "--options", "coreclip.nope"])
    assert bad.exit_code == 2 and "coreclip.nope: unknown model" in bad.output
