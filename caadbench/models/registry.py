"""The explicit model registry: ``name`` or ``name.variant`` → a configured model class.

Methods register themselves with :func:`register_model`. The built-in methods are found through an explicit
import list (``BUILTIN_MODULES``); third-party methods through the ``caadbench.models`` entry-point group.
Nothing scans the file system, and ``caadbench.models`` never imports ``caadbench.baselines`` statically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from caadbench.errors import ModelError
from caadbench.models.base import AnomalyModel, Learning
from caadbench.models.options import closest

BUILTIN_MODULES = {
    "clip": "caadbench.baselines.clip",
    "winclip": "caadbench.baselines.winclip",
    "aprilgan": "caadbench.baselines.aprilgan",
    "anomalyclip": "caadbench.baselines.anomalyclip",
    "probe": "caadbench.baselines.probe",
    "coreclip": "caadbench.models.coreclip",
}
ENTRY_POINT_GROUP = "caadbench.models"
DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class Variant:
    """A named configuration of a method.

    Attributes:
        learning: what the variant needs before predicting, as its config derives it
            (:attr:`~caadbench.models.base.ModelConfig.learning`); stated here so that the registration fails
            at import when the two disagree.
        overrides: config values that differ from the method's defaults.
        description: one line for ``caadbench models``.
    """

    learning: Learning
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A registered, buildable model.

    Attributes:
        name: ``family`` for the default variant, else ``family.variant``.
        family: the method (``winclip``).
        variant: the variant key (``default``, ``plus``, ...).
        cls: the :class:`AnomalyModel` subclass.
        learning: the learning type of the variant's config (options may change it: ``make_config(...).learning``
            is what a configured model needs).
        overrides, description: from the :class:`Variant`.
    """

    name: str
    family: str
    variant: str
    cls: type[AnomalyModel]
    learning: Learning
    overrides: Mapping[str, Any]
    description: str

    def make_config(self, **overrides: Any):
        """The variant's config with ``overrides`` applied (``None`` values are ignored)."""
        values = {**self.overrides, **{k: v for k, v in overrides.items() if v is not None}}
        return self.cls.config_cls.from_dict(values)

    def build(self, backbone=None, **overrides: Any) -> AnomalyModel:
        """Construct the model; ``backbone`` lets several models share one frozen backbone.

        ``backbone`` may also be an architecture name (``create_model("winclip", backbone="caad-tiny")``): it is
        then the config's ``backbone`` option. A shared backbone instance sets the config's architecture and
        image size, so the saved config says what actually ran.
        """
        if isinstance(backbone, str):
            overrides["backbone"], backbone = backbone, None
        elif backbone is not None:
            overrides.setdefault("backbone", backbone.identity.arch)
            overrides.setdefault("image_size", backbone.identity.image_size)
            if backbone.identity.pos_embed_resize is not None:
                overrides.setdefault("pos_embed_resize", backbone.identity.pos_embed_resize)
        model = self.cls(self.make_config(**overrides), backbone=backbone)
        model.name = self.name
        return model


_REGISTRY: dict[str, ModelSpec] = {}
_loaded_all = False


def register_model(family: str, variants: Mapping[str, Variant]) -> Callable[[type], type]:
    """Class decorator registering ``family`` and ``family.<variant>`` for every entry of ``variants``.

    The ``"default"`` variant is registered under the bare family name.
    """
    if "." in family or not family:
        raise ValueError(f"model family {family!r} must be non-empty and contain no dot")
    if DEFAULT_VARIANT not in variants:
        raise ValueError(f"model family {family!r} needs a {DEFAULT_VARIANT!r} variant")

    def decorate(cls: type[AnomalyModel]) -> type[AnomalyModel]:
        for key, var in variants.items():
            name = family if key == DEFAULT_VARIANT else f"{family}.{key}"
            existing = _REGISTRY.get(name)
            if existing is not None and existing.cls.__qualname__ != cls.__qualname__:
                raise ValueError(f"model {name!r} is already registered by {existing.cls.__qualname__}")
            learning = cls.config_cls.from_dict(dict(var.overrides)).learning  # fails at import on a bad override
            if learning != Learning(var.learning):
                raise ValueError(f"model {name!r} declares {Learning(var.learning)} but its config is {learning} "
                                 f"(the config's `learning` property decides)")
            _REGISTRY[name] = ModelSpec(name, family, key, cls, learning, dict(var.overrides), var.description)
        return cls

    return decorate


def _load_family(family: str) -> None:
    """Import the module that registers ``family`` (built-in list first, then entry points)."""
    if family in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[family])
        return
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == family:
            ep.load()


def _load_all() -> None:
    global _loaded_all
    if _loaded_all:
        return
    for module in BUILTIN_MODULES.values():
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    _loaded_all = True


def list_models(pattern: str | None = None) -> list[ModelSpec]:
    """Every registered model (optionally those whose name contains ``pattern``), sorted by name."""
    _load_all()
    specs = sorted(_REGISTRY.values(), key=lambda s: (s.family, s.variant != DEFAULT_VARIANT, s.name))
    return [s for s in specs if pattern is None or pattern in s.name]


def get_model_spec(name: str) -> ModelSpec:
    """The spec of ``name`` (``family`` or ``family.variant``).

    Raises:
        ModelError: unknown name, naming the closest registered one (difflib) or, when none is close, the families.
    """
    if name not in _REGISTRY:
        _load_family(name.split(".")[0])
    if name not in _REGISTRY:
        _load_all()
        guess = closest(name, list(_REGISTRY))
        hint = (f"did you mean {guess!r}?" if guess else
                f"families: {', '.join(sorted({s.family for s in _REGISTRY.values()}))};")
        raise ModelError(name, f"unknown model ({hint} `caadbench models` lists every model)")
    return _REGISTRY[name]


def create_model(name: str, backbone=None, **overrides: Any) -> AnomalyModel:
    """Build a registered model by name with config ``overrides``."""
    return get_model_spec(name).build(backbone=backbone, **overrides)
