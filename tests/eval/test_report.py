"""The cross-context report: every figure written and linked, with and without the examples sidecar."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caadbench.errors import CaadError
from caadbench.eval.report import MARKER_FILE, render_report, write_report
from tests.eval.fakes import write_fake_run

FIGURES = ["roc.png", "roc_subjects.png", "per_subject.png", "per_context.png", "subject_context.png", "scores.png"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_with_examples(tmp_path_factory) -> Path:
    return write_fake_run(tmp_path_factory.mktemp("rep") / "run.json", seeds=(0, 1), n_per_pair=2, examples=True)


def linked(markdown: str) -> set[str]:
    return set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown))


def test_writes_every_figure_and_links_them(run_with_examples):
    report = write_report(run_with_examples)
    assert report == run_with_examples.with_name("run-report") / "report.md"
    text = report.read_text()
    assert linked(text) == set(FIGURES + ["examples.png"])
    for name in FIGURES + ["examples.png"]:
        data = (report.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    assert "Random-init backbone weights" in text
    for heading in ("## Headline metrics", "## Seen vs unseen contexts", "## Where it fails", "## Per subject",
                    "## Per context", "## Provenance"):
        assert heading in text
    assert "| seen |" in text and "| unseen |" in text
    assert "Examples from `run.examples.npz`" in text


def test_the_report_opens_with_seen_and_unseen_side_by_side(run_with_examples):
    from caadbench.eval.results import read_results
    from caadbench.eval.summaries import chance_levels

    res = read_results(run_with_examples)
    text = render_report(res, {}, results_name=run_with_examples.name, examples_name=None)  # the text only
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Seen vs unseen contexts"  # the first section after the identity table
    assert ("| Metric | Unseen contexts (headline) | Headline, over contexts | Seen contexts | Gap (seen − unseen) | "
            "Chance (unseen) | Chance (seen) |") in text
    row = next(line for line in text.splitlines() if line.startswith("| I-AUROC |"))
    u, s, g = res.metrics["i_auroc"], res.seen.metrics["i_auroc"], res.gap["i_auroc"]

    def ci(interval):
        return f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"

    assert row == (f"| I-AUROC | {100 * u.mean:.1f} ± {100 * u.std:.1f} {ci(u.ci_image)} | {ci(u.ci_context)} | "
                   f"{100 * s.mean:.1f} ± {100 * s.std:.1f} | "
                   f"{100 * g.mean:+.1f} ± {100 * g.std:.1f} | {100 * chance_levels(res, 'unseen')['i_auroc']:.1f} | "
                   f"{100 * chance_levels(res, 'seen')['i_auroc']:.1f} |")
    micro = res.micro_i_auroc
    assert f"| Micro I-AUROC | {100 * micro.mean:.1f} ± {100 * micro.std:.1f} {ci(micro.ci_image)} |" in text
    assert "| Subjects with I-AUROC < 50 |" in text and "Gap measured: " in text
    assert "Seen I-AUROC | Gap I-AUROC |" in text  # per subject
    cell = res.per_context[0]
    assert f"| {cell.subject} | {cell.context} |" in text and ci(cell.auroc.ci_image) in text  # per context


def test_examples_of_a_model_without_maps_say_so(run_with_examples):
    """NaN maps (a model that gives none) are drawn as "no map", not as an empty colour scale."""
    import numpy as np

    from caadbench.eval.examples import examples_path, read_examples
    from caadbench.eval.report_plots import examples_figure

    examples = read_examples(examples_path(run_with_examples))
    with_maps = examples_figure(examples)
    examples.maps[:] = np.nan
    without = examples_figure(examples)
    texts = [t.get_text() for ax in without.axes for t in ax.texts]
    assert texts.count("no map\n(the model gives none)") == len(examples)
    assert not any(ax.texts for ax in with_maps.axes)
    assert len(without.axes) == 3 * len(examples)  # no colour bar without any map


def test_works_without_the_examples_sidecar(tmp_path):
    path = write_fake_run(tmp_path / "cc.json", seeds=(0,), n_per_pair=1, examples=False, seen=False)
    out = tmp_path / "custom-out"
    report = write_report(path, out)
    text = report.read_text()
    assert report.parent == out and linked(text) == set(FIGURES)
    assert not (out / "examples.png").exists()
    assert "examples sidecar (`cc.examples.npz`" in text and "is absent" in text
    assert "| Metric | Unseen contexts (headline) | Headline, over contexts | Chance |" in text  # no seen column
    assert "Gap unavailable: every test image of this run is of an unseen context" in text
    assert "**one seed**" in text
    # rewriting over an existing report replaces it; a foreign directory is refused
    write_report(path, out)
    assert (out / MARKER_FILE).is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(CaadError, match="not a caadbench report"):
        write_report(path, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_world_weights_are_announced(tmp_path):
    from caadbench.eval.results import read_results

    path = write_fake_run(tmp_path / "w.json", seeds=(0,), n_per_pair=1, examples=False, weights="world")
    text = render_report(read_results(path), {}, results_name=path.name, examples_name=None)
    assert "> ◇ Synthetic-world weights" in text and "| world ◇ (sha256 " in text


def test_trained_run_gets_its_training_curves(tmp_path):
    from caadbench.eval.results import read_results, write_results

    path = write_fake_run(tmp_path / "trained.json", examples=False, seeds=(0, 1))
    results = read_results(path)
    curve = [{"step": s, "total": 1.0 / s, "bce": 0.5 / s} for s in range(1, 11)]
    results.training = {str(seed): {"trainable_params": 10, "stage1": {"steps": 10, "curve": curve},
                                    "stage2": {"steps": 10, "curve": curve}} for seed in results.seeds}
    write_results(path, results)
    report = write_report(path)
    assert "training.png" in linked(report.read_text())
    assert (report.parent / "training.png").read_bytes().startswith(PNG_MAGIC)
    untrained = write_report(write_fake_run(tmp_path / "zero.json", examples=False, seeds=(0,)))
    assert "training.png" not in linked(untrained.read_text())


def test_the_diagnosis_section_is_rendered_when_present(tmp_path, run_with_examples):
    from caadbench.eval.results import read_results

    path = write_fake_run(tmp_path / "d.json", seeds=(0, 1), n_per_pair=2, examples=False, extras=True)
    res = read_results(path)
    text = write_report(path).read_text()
    for heading in ("## Diagnosis", "### Per-branch I-AUROC", "### Fusion weights α", "### Family neighbourhood"):
        assert heading in text
    u = res.diagnosis.branch_i_auroc["unseen"]["context"]
    assert f"| context | {100 * u.mean:.1f} ± {100 * u.std:.1f} |" in text
    assert text.index("## Diagnosis") < text.index("## Figures")
    plain = render_report(read_results(run_with_examples), {}, results_name="run.json", examples_name=None)
    assert "Diagnosis" not in plain  # nothing for a run without one
