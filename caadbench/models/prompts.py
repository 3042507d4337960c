"""Prompt sets shared by every method, and the one function that turns them into class prototypes.

The compositional prompt ensemble is WinCLIP's (Jeong et al., CVPR 2023, appendix): 7 normal and 4 anomalous
state words, each put into 22 templates, averaged into one normal and one anomalous prototype per class.
(anomalib's copy has 21 templates with "a jpeg corrupted photo of the {}." twice and "a cropped photo of a
{}." missing; we follow the paper's list.)

APRIL-GAN's ensemble (Chen et al., VAND 2023; the official repository's ``prompt_ensemble.py``) keeps WinCLIP's 7
normal states, adds "broken {}" to the anomalous ones (5 in all) and uses 35 templates (CLIP's ImageNet templates
and five "there is / this is ... in the scene" ones): 245 normal and 175 anomalous prompts per class.

The contextual prompt set is our option for contextual anomalies: states that speak of the subject's
surroundings rather than of damage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NORMAL_STATES: tuple[str, ...] = (
    "{}",
    "flawless {}",
    "perfect {}",
    "unblemished {}",
    "{} without flaw",
    "{} without defect",
    "{} without damage",
)

ANOMALOUS_STATES: tuple[str, ...] = (
    "damaged {}",
    "{} with flaw",
    "{} with defect",
    "{} with damage",
)

TEMPLATES: tuple[str, ...] = (
    "a cropped photo of the {}.",
    "a cropped photo of a {}.",
    "a close-up photo of a {}.",
    "a close-up photo of the {}.",
    "a bright photo of a {}.",
    "a bright photo of the {}.",
    "a dark photo of the {}.",
    "a dark photo of a {}.",
    "a jpeg corrupted photo of a {}.",
    "a jpeg corrupted photo of the {}.",
    "a blurry photo of the {}.",
    "a blurry photo of a {}.",
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a small {}.",
    "a photo of the small {}.",
    "a photo of a large {}.",
    "a photo of the large {}.",
    "a photo of the {} for visual inspection.",
    "a photo of a {} for visual inspection.",
    "a photo of the {} for anomaly detection.",
    "a photo of a {} for anomaly detection.",
)

APRIL_GAN_ANOMALOUS_STATES: tuple[str, ...] = (
    "damaged {}",
    "broken {}",
    "{} with flaw",
    "{} with defect",
    "{} with damage",
)

APRIL_GAN_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a low resolution photo of the {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a photo of my {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a photo of one {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "a low resolution photo of a {}.",
    "a photo of a large {}.",
    "a blurry photo of a {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "a dark photo of a {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "this is the {} in the scene.",
    "this is one {} in the scene.",
)

CONTEXT_NORMAL_STATES: tuple[str, ...] = (
    "{} in its usual surroundings",
    "{} in a place where it belongs",
    "{} in a normal setting",
)

CONTEXT_ANOMALOUS_STATES: tuple[str, ...] = (
    "{} in an unusual place",
    "{} out of place",
    "{} in a setting where it does not belong",
)

CONTEXT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a {} in a scene.",
    "a photo of the {} in its environment.",
)


@dataclass(frozen=True)
class PromptSet:
    """States × templates for one side (normal, anomalous) of a class.

    Attributes:
        normal_states: formats with one ``{}`` for the class name.
        anomalous_states: likewise.
        templates: formats with one ``{}`` for a filled state.
    """

    normal_states: tuple[str, ...]
    anomalous_states: tuple[str, ...]
    templates: tuple[str, ...]

    def prompts(self, subject: str, anomalous: bool) -> list[str]:
        """Every template filled with every state of one side, for ``subject``."""
        states = self.anomalous_states if anomalous else self.normal_states
        name = subject.replace("_", " ")
        return [t.format(s.format(name)) for s in states for t in self.templates]


@dataclass(frozen=True)
class PromptEnsemble:
    """Several prompt sets used together; states and templates pair within each set only."""

    sets: tuple[PromptSet, ...]

    def prompts(self, subject: str, anomalous: bool) -> list[str]:
        return [p for part in self.sets for p in part.prompts(subject, anomalous)]


WINCLIP_PROMPTS = PromptSet(NORMAL_STATES, ANOMALOUS_STATES, TEMPLATES)
CONTEXT_PROMPTS = PromptSet(CONTEXT_NORMAL_STATES, CONTEXT_ANOMALOUS_STATES, CONTEXT_TEMPLATES)
APRIL_GAN_PROMPTS = PromptSet(NORMAL_STATES, APRIL_GAN_ANOMALOUS_STATES, APRIL_GAN_TEMPLATES)
TWO_PROMPTS = PromptSet(("a normal {}",), ("an anomalous {}",), ("a photo of {}.",))  # "a photo of an anomalous cow."

PROMPT_SETS: dict[str, PromptSet | PromptEnsemble] = {
    "two": TWO_PROMPTS,
    "winclip": WINCLIP_PROMPTS,
    "context": CONTEXT_PROMPTS,
    "winclip+context": PromptEnsemble((WINCLIP_PROMPTS, CONTEXT_PROMPTS)),
    "aprilgan": APRIL_GAN_PROMPTS,
}


def get_prompt_set(name: str) -> PromptSet | PromptEnsemble:
    """A prompt set by name (``two``, ``winclip``, ``context``, ``winclip+context``, ``aprilgan``)."""
    from caadbench.errors import ModelError

    if name not in PROMPT_SETS:
        raise ModelError(name, f"unknown prompt set (known: {', '.join(PROMPT_SETS)})")
    return PROMPT_SETS[name]


def class_prototypes(encode_text, prompts: PromptSet | PromptEnsemble, subjects: Sequence[str]) -> torch.Tensor:
    """Normal and anomalous text prototypes per subject.

    Each prompt is embedded and L2-normalised, the embeddings of one side are averaged, and the mean is
    L2-normalised again (CLIP's prompt-ensemble recipe, as WinCLIP uses it).

    Args:
        encode_text: ``list[str] -> (N, D)`` L2-normalised embeddings (e.g. ``ClipBackbone.encode_text``,
            possibly under text-adapter hooks).
        prompts: the prompt set.
        subjects: ``S`` class names.

    Returns:
        ``(S, 2, D)``: index 0 normal, 1 anomalous.
    """
    texts, sizes = [], []
    for subject in subjects:
        for anomalous in (False, True):
            batch = prompts.prompts(subject, anomalous)
            texts.extend(batch)
            sizes.append(len(batch))
    emb = encode_text(texts)
    means = torch.stack([chunk.mean(dim=0) for chunk in torch.split(emb, sizes)])
    return F.normalize(means, dim=-1).view(len(subjects), 2, -1)
