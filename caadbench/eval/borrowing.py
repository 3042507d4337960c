"""Between-context variation for (subject, role) strata of a single context, borrowed from the other strata.

At the context level of :mod:`caadbench.eval.bootstrap` a stratum of ``k ≥ 2`` contexts is resampled (Rao–Wu),
so a replicate sees what another draw of that subject's contexts would give. A stratum of one context has no
estimable between-context variance of its own: its images alone are resampled, and the interval then misses that
a new context of that subject and role could sit elsewhere. This module gives such a context a *borrowed context
effect*: in every resample its images' scores move together by a shift drawn from the pooled, centred context
effects of the strata of the same role that hold two or more contexts (``docs/evaluation.md``, *Protocol
decisions*). Per score row (seed):

1. every headline cell (subject, context) has its mean score ``m_c``, image count ``n_c`` and within-cell
   variance ``v_c``; a subject's scale ``w_s`` is its pooled within-cell standard deviation;
2. a donor stratum ``h`` (``k_h ≥ 2`` cells, subject ``s``) gives ``k_h`` standardised centred effects
   ``z = (m_c − mean_h m) / w_s · √(k_h / (k_h − 1))`` (the factor makes ``mean z²`` unbiased for the variance
   of a cell mean);
3. a cell mean also carries its images' noise (``v_c / n_c``), which the singleton's own image resampling
   already counts: the pool is shrunk by ``√(τ̂² / mean z²)`` with ``τ̂² = max(0, mean z² − mean v_c/(w_s² n_c))``
   (method of moments), so only the between-context part is added;
4. a singleton cell of subject ``s`` moves by ``w_s · z*`` with ``z*`` drawn uniformly from its role's pool
   (all roles' donors pooled when its role has none).

The draws depend on the design and the seed only (a separate stream from the weights', so the resampled weights
are those of the plain scheme), so two runs on the same test images share them (paired comparisons); the shift
values come from each run's own scores. Assumption: a context acts on a subject's scores as a location shift,
exchangeable across the subjects of one role once scaled by their within-context spread.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass
class Borrowing:
    """Which headline cells borrow a context effect, from which donors, with which draws.

    Attributes:
        cell: ``(n,)`` int cell (0 … C − 1) of each headline image.
        subject: ``(C,)`` int subject of each cell.
        singles: ``(M,)`` int the cells alone in their (subject, role) stratum.
        pools: ``M`` arrays of donor cell ids, one per single (the donors of its role, or of every role).
        donor_strata: ``(C,)`` int the donor stratum of each cell (``-1`` for a non-donor).
        draws: ``(B, M)`` float in [0, 1): the uniform draw of each single in each resample.
    """

    cell: np.ndarray
    subject: np.ndarray
    singles: np.ndarray
    pools: list[np.ndarray]
    donor_strata: np.ndarray
    draws: np.ndarray

    @classmethod
    def plan(cls, cell: np.ndarray, subject: np.ndarray, stratum: np.ndarray, role: np.ndarray,
             n_resamples: int, rng: np.random.Generator) -> Borrowing | None:
        """The plan of a design, or ``None`` when no stratum is single or no stratum can donate.

        Args:
            cell: ``(n,)`` int cell of each headline image, ``0 … C − 1``.
            subject, stratum: ``(C,)`` int subject and (subject, scope, role) stratum of each cell.
            role: ``(C,)`` object role of each cell (``"0"``, ``"1"``, ``"mixed"``).
        """
        _, inverse, counts = np.unique(stratum, return_inverse=True, return_counts=True)
        k = counts[inverse]
        singles = np.flatnonzero(k == 1)
        donors = np.flatnonzero(k >= 2)
        if len(singles) == 0 or len(donors) == 0:
            return None
        by_role: dict[str, list[int]] = defaultdict(list)
        for c in donors:
            by_role[str(role[c])].append(int(c))
        pools = [np.array(by_role.get(str(role[c]), donors.tolist())) for c in singles]
        donor_strata = np.where(k >= 2, inverse, -1)
        return cls(cell=cell, subject=subject, singles=singles, pools=pools, donor_strata=donor_strata,
                   draws=rng.random((n_resamples, len(singles))))

    def shifts(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The borrowed shifts of one score row.

        Args:
            scores: ``(n,)`` the headline images' scores of one seed.

        Returns:
            ``((B, n) shift of every image in every resample, (n,) bool images that move)``.
        """
        n_cells = len(self.subject)
        n = np.bincount(self.cell, minlength=n_cells).astype(np.float64)
        total = np.bincount(self.cell, scores, minlength=n_cells)
        mean = total / np.maximum(n, 1)
        squares = np.bincount(self.cell, (scores - mean[self.cell]) ** 2, minlength=n_cells)
        n_subjects = int(self.subject.max()) + 1
        dof = np.bincount(self.subject, np.maximum(n - 1, 0), minlength=n_subjects)
        within = np.bincount(self.subject, squares, minlength=n_subjects)
        scale = np.sqrt(within / np.maximum(dof, 1))  # (subjects,) pooled within-cell SD
        variance = squares / np.maximum(n - 1, 1)  # (C,) within-cell variance
        z, noise = self._effects(mean, n, variance, scale)
        moved = np.zeros(len(scores), dtype=bool)
        out = np.zeros((len(self.draws), len(scores)))
        for j, c in enumerate(self.singles):
            pool = self.pools[j]
            zs, ns = z[pool], noise[pool]
            spread = float(np.mean(zs**2))
            shrink = np.sqrt(max(0.0, spread - float(np.mean(ns))) / spread) if spread > 0 else 0.0
            pick = np.minimum((self.draws[:, j] * len(pool)).astype(np.int64), len(pool) - 1)
            images = self.cell == c
            out[:, images] = (scale[self.subject[c]] * shrink * zs[pick])[:, None]
            moved |= images
        return out, moved

    def _effects(self, mean: np.ndarray, n: np.ndarray, variance: np.ndarray,
                 scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``((C,) standardised centred effect, (C,) its noise part v_c / (w_s² n_c))`` of every donor cell
        (0 elsewhere; a subject of scale 0 gives 0)."""
        z = np.zeros(len(mean))
        noise = np.zeros(len(mean))
        donor = self.donor_strata >= 0
        strata = self.donor_strata[donor]
        _, inverse, k = np.unique(strata, return_inverse=True, return_counts=True)
        centre = np.bincount(inverse, mean[donor]) / k
        w = scale[self.subject[donor]]
        safe = np.where(w > 0, w, 1.0)
        z[donor] = np.where(w > 0, (mean[donor] - centre[inverse]) / safe * np.sqrt(k / (k - 1))[inverse], 0.0)
        noise[donor] = np.where(w > 0, variance[donor] / (safe**2 * np.maximum(n[donor], 1)), 0.0)
        return z, noise


__all__ = ["Borrowing"]
