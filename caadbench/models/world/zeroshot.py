"""What world weights know: zero-shot subject and context recognition on scenes they never saw.

Prompts are the plain ones (``a photo of a {subject}.``, ``a photo of the {context}.``); a scene's prediction is
the prompt with the highest cosine similarity. The bar for the shipped weights is ``docs/world.md``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from caadbench.data.world import words

SUBJECT_PROMPT = "a photo of a {}."
CONTEXT_PROMPT = "a photo of the {}."


@dataclass
class ZeroShotReport:
    """Zero-shot recognition of ``n`` scenes.

    Attributes:
        subjects, contexts: class names in the order of the matrices.
        subject_confusion: ``(S, S)`` counts, row = true subject, column = predicted.
        context_confusion: ``(C, C)`` counts, likewise.
        pair_counts: ``(S, C)`` scenes per (subject, context).
        pair_subject_correct: ``(S, C)`` scenes whose subject was recognised, per (subject, context).
    """

    subjects: list[str]
    contexts: list[str]
    subject_confusion: np.ndarray
    context_confusion: np.ndarray
    pair_counts: np.ndarray
    pair_subject_correct: np.ndarray

    @property
    def n(self) -> int:
        return int(self.pair_counts.sum())

    @property
    def subject_accuracy(self) -> float:
        return float(np.trace(self.subject_confusion) / max(1, self.subject_confusion.sum()))

    @property
    def context_accuracy(self) -> float:
        return float(np.trace(self.context_confusion) / max(1, self.context_confusion.sum()))

    def to_dict(self) -> dict:
        return {
            "scenes": self.n,
            "subject_accuracy": round(self.subject_accuracy, 4),
            "context_accuracy": round(self.context_accuracy, 4),
            "subject_chance": round(1.0 / len(self.subjects), 4),
            "context_chance": round(1.0 / len(self.contexts), 4),
            "per_subject_accuracy": {s: round(float(self.subject_confusion[i, i] / max(1, self.subject_confusion[i].sum())), 4)
                                     for i, s in enumerate(self.subjects)},
            "per_context_accuracy": {c: round(float(self.context_confusion[i, i] / max(1, self.context_confusion[i].sum())), 4)
                                     for i, c in enumerate(self.contexts)},
        }


@torch.no_grad()
def zero_shot(encode_image: Callable[[torch.Tensor], torch.Tensor], encode_text: Callable[[list[str]], torch.Tensor],
              images: torch.Tensor, subjects: Sequence[str], contexts: Sequence[str], *,
              subject_names: Sequence[str], context_names: Sequence[str], batch_size: int = 128,
              device: str | torch.device = "cpu") -> ZeroShotReport:
    """Recognise the subject and the context of every image with plain prompts.

    Args:
        encode_image: ``(B, 3, S, S)`` float in [0, 1] → ``(B, D)`` L2-normalised embeddings
            (e.g. :meth:`~caadbench.models.backbone.ClipBackbone.encode_image`).
        encode_text: prompts → ``(N, D)`` L2-normalised embeddings.
        images: ``(N, 3, S, S)`` uint8 (or float in [0, 1]).
        subjects, contexts: the true names of each image.
        subject_names, context_names: the candidate classes (the confusion matrices' order).
    """
    s_index = {s: i for i, s in enumerate(subject_names)}
    c_index = {c: i for i, c in enumerate(context_names)}
    t_subject = encode_text([SUBJECT_PROMPT.format(words(s)) for s in subject_names]).float()
    t_context = encode_text([CONTEXT_PROMPT.format(words(c)) for c in context_names]).float()
    pred_s, pred_c = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size].to(device)
        chunk = chunk.float().div(255.0) if chunk.dtype == torch.uint8 else chunk.float()
        emb = encode_image(chunk).float()
        pred_s.append((emb @ t_subject.T).argmax(1).cpu())
        pred_c.append((emb @ t_context.T).argmax(1).cpu())
    ps, pc = torch.cat(pred_s).numpy(), torch.cat(pred_c).numpy()
    ts = np.array([s_index[s] for s in subjects])
    tc = np.array([c_index[c] for c in contexts])
    S, C = len(subject_names), len(context_names)
    subject_confusion = np.zeros((S, S), np.int64)
    context_confusion = np.zeros((C, C), np.int64)
    pair_counts = np.zeros((S, C), np.int64)
    pair_correct = np.zeros((S, C), np.int64)
    np.add.at(subject_confusion, (ts, ps), 1)
    np.add.at(context_confusion, (tc, pc), 1)
    np.add.at(pair_counts, (ts, tc), 1)
    np.add.at(pair_correct, (ts, tc), (ts == ps).astype(np.int64))
    return ZeroShotReport(list(subject_names), list(context_names), subject_confusion, context_confusion,
                          pair_counts, pair_correct)
