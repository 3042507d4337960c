"""Evaluation commands: ``run``, ``report``, ``leaderboard``, ``quickstart`` (filled in by the evaluation layer)."""

from __future__ import annotations
