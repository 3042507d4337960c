"""``caadbench run``: evaluate one model on one split and write one results file.

For every seed the runner builds the model on one shared frozen backbone, fits it as its learning type (from
its config) needs (zero-shot: nothing; few-shot: the stored k-shot support keys of that seed; trained: the
split's *train* part, or another dataset's part with ``--train-data`` (:mod:`caadbench.eval.transfer`), and
that part's subjects only — on ``cs`` the held-out subjects' names appear at inference only — or a
``--checkpoint``), evaluates it on the *test* part, and aggregates the seeds into one versioned results file
(:mod:`caadbench.eval.results`) with its examples sidecar. Nothing is ever fitted on the test part.

Under ``torchrun`` every rank reads its own block of the train and test shards; rank 0 gathers the evaluators,
merges them (the metrics equal one process's) and writes the outputs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caadbench.data.batch import MIN_IMAGE_SIZE, Batch
from caadbench.data.loader import CaadDataset, open_dataset, validation_kind
from caadbench.errors import CaadError, ModelError, SplitError, check_at_least
from caadbench.eval import datasets, shipped
from caadbench.eval.evaluator import Evaluator
from caadbench.eval.examples import examples_path, write_examples
from caadbench.eval.meter import ResourceMeter
from caadbench.eval.plan import plan_line, training_steps
from caadbench.eval.naming import RunData, check_replace, fit_part, results_name, weights_part
from caadbench.eval.provenance import collect_provenance
from caadbench.eval.results import build_results, write_results
from caadbench.eval.schema import Results
from caadbench.eval.transfer import TrainingSet, open_training_set
from caadbench.models import AnomalyModel, BackboneIdentity, ClipBackbone, FitData, Learning, get_model_spec
from caadbench.utils import distributed as D
from caadbench.utils.devices import resolve_device

logger = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """One evaluation run.

    Attributes:
        model: registry name (``coreclip``, ``winclip.plus``, ...).
        split: split stored in the dataset (``cc``, ``ic``, ``cs``, ``std``).
        data: the shard directory (built by ``caadbench build-shards``) or its URL.
        shots: k normal references per subject (few-shot models; 0 otherwise).
        seeds: one fit + evaluation per seed (support sets and training are seeded).
        backbone, pretrained, image_size: backbone overrides (``None``: the model's defaults).
        precision: ``auto``, ``fp32`` or ``bf16`` (``None``: the model's default, ``auto``); the resolved one is
            recorded in the provenance.
        checkpoint: fitted state to load instead of fitting (a file written by ``AnomalyModel.save``).
        options: further model config overrides (``--option key=value``).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:i``.
        batch_size: test (and support) batch size; training uses the model's own.
        workers: DataLoader workers for reading shards.
        out: directory for the results file, its examples sidecar and checkpoints of trained models.
        dataset_id: results' dataset id (default from the source and its categories, see
            :mod:`caadbench.eval.datasets`; a paper id is refused for an incomplete category set).
        progress: show progress bars.
        train_data: shard directory (or URL) a trained model is trained on (``None``: ``data``).
        train_split: its split to train on (``None``: ``split``).
        train_part: the part of that split to train on.
        select: model selection on the split's ``val`` part (trained models; ``docs/evaluation.md``):
            ``auto`` (``early-stop`` when the split stores a validation part, else ``none`` with a note),
            ``early-stop`` (score on ``val`` during training, end with the best state), ``search`` (the method's
            ``SEARCH`` space — learning-rate multipliers — each candidate trained with early stopping on the
            first seed, the best applied to every seed) or ``none``.
        retrain: train a trained model even when a shipped checkpoint (:mod:`caadbench.eval.shipped`) matches the
            run; by default a matching one is loaded (sha256-checked) instead of training.
    """

    model: str
    split: str
    data: str | Path
    shots: int = 0
    seeds: tuple[int, ...] = (0,)
    backbone: str | None = None
    pretrained: str | None = None
    image_size: int | None = None
    precision: str | None = None
    checkpoint: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    batch_size: int = 32
    workers: int = 0
    out: Path = Path("runs")
    dataset_id: str | None = None
    progress: bool = True
    train_data: str | Path | None = None
    train_split: str | None = None
    train_part: str = "train"
    select: str = "auto"
    retrain: bool = False


SELECT_MODES = ("auto", "early-stop", "search", "none")
SEED_SELECTION = ("selected_step", "stopped_at", "selected", "val_score")
"""Keys of a model's ``train_log["selection"]`` the results' ``selection.per_seed`` keeps (those it has)."""


def dataset_id(ds: CaadDataset, split: str) -> str:
    """The results' dataset id for a shard directory (the split's subjects are its categories)."""
    return datasets.dataset_id(ds.manifest.source, ds.subjects(split), ds.root, ds.manifest.seed)


def native_image_size(arch: str) -> int | None:
    """The input side an open_clip architecture is defined with (``None`` when its config is not registered)."""
    import open_clip

    size = ((open_clip.get_model_config(arch) or {}).get("vision_cfg") or {}).get("image_size")
    return size if isinstance(size, int) else None


def check_run_sizes(cfg: RunConfig) -> None:
    """Refuse, before any work, an image size, batch size or worker count no run can use.

    Raises:
        CaadError: naming the option.
    """
    if cfg.image_size is not None:
        check_at_least(cfg.image_size, "--image-size", MIN_IMAGE_SIZE)
    check_at_least(cfg.batch_size, "--batch-size")
    check_at_least(cfg.workers, "--workers", 0)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_shots(name: str, learning: Learning, shots: int) -> None:
    """Refuse a shot count the model's learning type cannot use.

    Raises:
        ModelError: naming the model.
    """
    if shots < 0:
        raise ModelError(name, f"--shots must be ≥ 0, got {shots}")
    if learning == Learning.FEW_SHOT and shots == 0:
        raise ModelError(name, "is a few-shot model: pass --shots K (K ≥ 1)")
    if learning != Learning.FEW_SHOT and shots > 0:
        raise ModelError(name, f"is a {learning} model and uses no support set; drop --shots or pick a few-shot "
                               "variant (see `caadbench models`)")


class Runner:
    """Runs one :class:`RunConfig` (see module docstring)."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        check_run_sizes(cfg)
        self.spec = get_model_spec(cfg.model)
        self.model_config = self.spec.make_config(**self._overrides())
        self.learning = self.model_config.learning  # options may change it (clip --option few_shot=true)
        check_shots(cfg.model, self.learning, cfg.shots)
        if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
            raise CaadError(None, f"--seeds must be distinct integers, got {list(cfg.seeds)}")
        device = resolve_device(cfg.device)
        self.dist = D.init_from_env(device)
        self.device = D.local_device(device)
        self.ds = open_dataset(cfg.data)
        if cfg.split not in self.ds.splits:
            raise SplitError(self.ds.root / "index.json", f"split {cfg.split!r} is not stored here "
                                                          f"(stored: {', '.join(self.ds.splits)})")
        if cfg.checkpoint is not None and not Path(cfg.checkpoint).is_file():
            raise ModelError(cfg.checkpoint, "checkpoint file not found")
        if cfg.dataset_id:
            datasets.check_dataset_id(cfg.dataset_id, self.ds.subjects(cfg.split), self.ds.root / "index.json")
        self.dataset = cfg.dataset_id or dataset_id(self.ds, cfg.split)
        self.subjects = self.ds.subjects(cfg.split)
        if self.learning == Learning.FEW_SHOT:  # fail before any work on a support set that is too small
            for seed in cfg.seeds:
                self.ds.support_keys(cfg.split, cfg.shots, seed)
        self.training = self._training_set()
        self.select = self._select_mode()
        self.selection: dict[str, Any] | None = None
        self.shipped: dict[str, dict[str, Any]] = {}

    def _training_set(self) -> TrainingSet | None:
        """The data a trained model is fitted on (checked against the evaluated test part), or ``None``."""
        cfg = self.cfg
        asked = cfg.train_data is not None or cfg.train_split is not None or cfg.train_part != "train"
        if self.learning != Learning.TRAINED or cfg.checkpoint is not None:
            if asked:
                why = "loads --checkpoint" if cfg.checkpoint is not None else f"is a {self.learning} model"
                raise ModelError(cfg.model, f"{why}: --train-data, --train-split and --train-part are for training")
            return None

        def name(ds: CaadDataset) -> str:
            return self.dataset if cfg.train_data is None else dataset_id(ds, cfg.train_split or cfg.split)

        return open_training_set(cfg.train_data or cfg.data, cfg.train_split, cfg.train_part, self.ds, cfg.split,
                                 name)

    def _select_mode(self) -> str:
        """The selection mode this run uses (``auto`` resolved); refuses selection the data cannot support."""
        mode = self.cfg.select
        if mode not in SELECT_MODES:
            raise CaadError(None, f"--select must be one of {', '.join(SELECT_MODES)}, got {mode!r}")
        if self.training is None or mode == "none":
            return "none"
        t = self.training
        has_val = "val" in t.ds.parts(t.split) and t.ds.count(t.split, "val") > 0
        if mode == "auto":
            return "early-stop" if has_val else "none"
        if not has_val:
            kind = validation_kind(t.ds.manifest.splits[t.split].definition)
            why = ("was built before validation parts: rebuild it with `caadbench build-shards`" if kind is None
                   else f"has no validation part ({kind})")
            raise SplitError(t.ds.root / "index.json", f"split {t.split} {why}, or run with --select none")
        return mode

    def validator(self, size: int) -> Any:
        """``validate(model) -> float``: macro I-AUROC over the validation part's subjects (reads ``val`` only)."""
        from caadbench.eval.metrics import auroc, macro_mean

        t = self.training

        def validate(model: AnomalyModel) -> float:
            subjects, labels, scores = [], [], []
            for batch in t.ds.batches(t.split, "val", image_size=size, rank=self.dist.rank,
                                      world_size=self.dist.world_size, workers=self.cfg.workers, progress=False,
                                      batch_size=self.cfg.batch_size):
                out = model.predict(batch)
                subjects += list(batch.subjects)
                labels += batch.labels.tolist()
                scores += out.scores.cpu().tolist()
            if self.dist.world_size > 1:
                parts = D.all_gather_objects((subjects, labels, scores))
                subjects, labels, scores = (sum((p[i] for p in parts), []) for i in range(3))
            subj, lab, sc = np.array(subjects), np.array(labels), np.array(scores)
            score = macro_mean(auroc(sc[subj == s], lab[subj == s]) for s in sorted(set(subjects))
                               if len(set(lab[subj == s].tolist())) == 2)
            return 0.0 if np.isnan(score) else float(score)

        return validate

    @property
    def trained_on(self) -> str | None:
        """Suffix naming training data other than the evaluated split's train part (``None`` for that one)."""
        t = self.training
        if t is None or (t.ds.fingerprint == self.ds.fingerprint and (t.split, t.part) == (self.cfg.split, "train")):
            return None
        return f"{t.dataset}-{t.split}-{t.part}"

    # ----------------------------------------------------------------- pieces
    def results_path(self, identity: BackboneIdentity) -> Path:
        """Where the results of this run on a backbone of ``identity`` go (:func:`~caadbench.eval.naming.results_name`;
        the checkpoints of a trained model go to ``checkpoints/<its stem>_seed<s>/`` beside it)."""
        cfg = self.cfg
        from caadbench.utils.hashing import sha256_file

        checkpoint = sha256_file(cfg.checkpoint) if cfg.checkpoint is not None else None
        return cfg.out / results_name(
            dataset=self.dataset, split=cfg.split, model=cfg.model,
            fit=fit_part(str(self.learning), cfg.shots, self.trained_on, checkpoint), backbone=identity.arch,
            weights=weights_part(identity.weights, identity.sha256, identity.init_seed),
            image_size=identity.image_size if identity.image_size != native_image_size(identity.arch) else None)

    def _run_data(self, identity: BackboneIdentity) -> RunData:
        t = self.training.record() if self.training is not None else None
        return RunData(self.ds.fingerprint, identity.arch, identity.image_size, identity.weights, identity.sha256,
                       None if t is None else (t.fingerprint, t.split, t.part))

    def _announce(self) -> None:
        """Log the plan line (:mod:`caadbench.eval.plan`): a warning when the weights are random-init."""
        cfg, c = self.cfg, self.model_config
        trains = self.training is not None
        line, random_init = plan_line(
            model=cfg.model, learning=self.learning, data=str(self.ds.root), split=cfg.split,
            test_images=self.ds.count(cfg.split, "test"), seeds=len(cfg.seeds), backbone=c.backbone,
            backbone_given="backbone" in self._overrides(), pretrained=c.pretrained,
            pretrained_given="pretrained" in self._overrides(), shots=cfg.shots, subjects=len(self.subjects),
            training=training_steps(c, self.training.size, cfg.batch_size) if trains else None,
            checkpoint=None if cfg.checkpoint is None else str(cfg.checkpoint))
        logger.log(logging.WARNING if random_init else logging.INFO, line)

    def _backbone(self) -> ClipBackbone:
        c = self.model_config
        return ClipBackbone(c.backbone, c.pretrained, c.image_size, c.init_seed, c.pos_embed_resize)

    def _overrides(self) -> dict[str, Any]:
        """Model config overrides of the run: its options and the run settings that are model options."""
        given = {"backbone": self.cfg.backbone, "pretrained": self.cfg.pretrained, "image_size": self.cfg.image_size,
                 "precision": self.cfg.precision}
        return {**self.cfg.options, **{k: v for k, v in given.items() if v is not None}}

    def _batches(self, part: str, image_size: int, training: TrainingSet | None = None, **kw: Any) -> Iterator[Batch]:
        ds, split = (self.ds, self.cfg.split) if training is None else (training.ds, training.split)
        return ds.batches(split, part, image_size=image_size, rank=self.dist.rank, world_size=self.dist.world_size,
                          workers=self.cfg.workers, progress=self.cfg.progress and self.dist.is_main, **kw)

    def shipped_wanted(self, model: AnomalyModel, seed: int) -> shipped.Wanted:
        """What a shipped checkpoint must match to stand in for training ``model`` on ``seed`` in this run."""
        t = self.training
        return shipped.Wanted(
            model=self.cfg.model, seed=seed, config=model.config.to_dict(),
            dataset=shipped.data_identity(self.ds, self.cfg.split),
            train_data=shipped.train_data_key(vars(t.record())), backbone=model.identity.to_dict(),
            run={"select": self.select, "batch_size": self.cfg.batch_size, "device": str(self.device).split(":")[0]})

    def _load_shipped(self, model: AnomalyModel, seed: int) -> bool:
        """Load the shipped checkpoint that matches this run and ``seed`` (see :mod:`caadbench.eval.shipped`);
        ``False`` (with a one-line note) when none matches, so the model trains."""
        if (self.training is None or self.cfg.retrain or self.cfg.checkpoint is not None or self.select == "search"
                or self.dist.world_size > 1):
            return False
        wanted = self.shipped_wanted(model, seed)
        entry, why = shipped.find(wanted)
        if entry is None:
            logger.info(f"{self.cfg.model}: {why}: training it")
            return False
        path = shipped.load(model, entry, wanted.dataset)
        model.train_log = entry["training"]
        self.shipped[str(seed)] = shipped.provenance(entry)
        logger.info(f"{self.cfg.model}: seed {seed} loaded from the shipped checkpoint {path.name} (sha256 "
                    f"{entry['sha256'][:12]}…, commit {entry['commit'][:10]}); --retrain trains it instead")
        return True

    def _fit(self, model: AnomalyModel, seed: int, tag: str = "") -> dict[str, list[str]]:
        """Fit ``model`` for ``seed`` (``tag`` names a search candidate's checkpoint folder); return the support
        keys used (empty unless few-shot)."""
        cfg, size = self.cfg, model.image_size
        if cfg.checkpoint is not None:
            model.load(cfg.checkpoint)
            return {}
        if self.learning == Learning.ZERO_SHOT:
            model.fit(FitData(subjects=self.subjects, seed=seed, device=self.device))
            return {}
        if self.learning == Learning.FEW_SHOT:
            support = self.ds.support_keys(cfg.split, cfg.shots, seed)
            keys = sorted(k for ks in support.values() for k in ks)
            batches = list(self.ds.batches(cfg.split, "support", image_size=size, keys=keys,
                                           batch_size=cfg.batch_size, workers=cfg.workers))
            model.fit(FitData(subjects=self.subjects, support=batches, seed=seed, device=self.device))
            return support
        training = self.training

        def train_pass(epoch: int) -> Iterator[Batch]:
            return self._batches(training.part, size, training, shuffle=True, seed=seed, epoch=epoch,
                                 batch_size=getattr(model.config, "batch_size", cfg.batch_size))

        out_dir = cfg.out / "checkpoints" / f"{self.results_path(model.identity).stem}{tag}_seed{seed}"
        # the trained part's subjects only: held-out (cs) or other datasets' names must not get training losses
        # or be negatives; they appear at inference only
        model.fit(FitData(subjects=training.subjects, train=train_pass, train_size=training.size, seed=seed,
                          device=self.device, output_dir=out_dir if self.dist.is_main else None,
                          validate=self.validator(size) if self.select != "none" else None,
                          train_identity=f"dataset {training.ds.fingerprint[:16]} {training.split}/{training.part}"))
        return {}

    def fit_seed(self, seed: int, backbone: ClipBackbone | None = None, **options: Any) -> AnomalyModel:
        """Build the run's model (with model ``options`` on top of the run's) and fit it for ``seed`` exactly as
        :meth:`run` does — trained models on the train part with the run's selection on ``val`` — without
        evaluating anything: what a selection study reads (``benchmarks/coreclip_selection.py``)."""
        backbone = backbone or self._backbone().to(self.device)
        overrides = {k: v for k, v in self._overrides().items() if k not in ("backbone", "image_size")}
        seed_everything(seed)
        model = self.spec.build(backbone=backbone, **{**overrides, **options}).to(self.device)
        self._fit(model, seed)
        return model

    def _evaluate(self, model: AnomalyModel, meter: ResourceMeter) -> Evaluator:
        seen = {s: side["seen"] for s, side in self.ds.context_sides(self.cfg.split).items()} or None
        evaluator = Evaluator(seen if self.ds.kind == "contextual" else None, families=self.ds.context_families(),
                              extras_columns=model.extras_columns)
        for batch in self._batches("test", model.image_size, batch_size=self.cfg.batch_size):
            evaluator.update(batch, model.predict(batch, diagnostics=True))
            meter.count(len(batch))
        if self.dist.world_size > 1:
            gathered = D.gather_objects(evaluator)
            if gathered is not None:
                evaluator = gathered[0]
                for other in gathered[1:]:
                    evaluator.merge(other)
        return evaluator

    def _search(self, backbone: ClipBackbone, overrides: dict[str, Any]) -> dict[str, Any]:
        """``--select search``: train each candidate of the method's ``SEARCH`` space on the first seed with early
        stopping; return the overrides of the best validation score (ties: the earlier candidate)."""
        config = self.model_config
        space = dict(getattr(config, "SEARCH", {}))
        fields = [f for f in getattr(config, "LR_FIELDS", ()) if hasattr(config, f)]
        if not space or not fields:
            raise ModelError(self.cfg.model, "has no search space: run with --select early-stop or none")
        seed = self.cfg.seeds[0]
        tried = []
        for scale in space["lr_scale"]:
            candidate = {f: getattr(config, f) * scale for f in fields}
            seed_everything(seed)
            model = self.spec.build(backbone=backbone, **{**overrides, **candidate}).to(self.device)
            self._fit(model, seed, tag=f"_search-lr{scale:g}")
            score = (model.train_log or {}).get("selection", {}).get("val_score", float("nan"))
            tried.append({"lr_scale": scale, **candidate, "val_score": score})
            logger.info(f"{self.cfg.model}: search lr_scale {scale:g}: validation {100 * score:.1f}")
        best = max(tried, key=lambda t: (t["val_score"], -tried.index(t)))
        self.selection = {"mode": "search", "space": {"lr_scale": list(space["lr_scale"])}, "on_seed": seed,
                          "candidates": tried, "selected": {f: best[f] for f in fields} | {"lr_scale": best["lr_scale"]}}
        return {f: best[f] for f in fields}

    def _selection_record(self, training: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
        """What was selected on validation: the mode, the search (if any) and each seed's choice: a trainer's
        early-stopping point (``selected_step``, ``stopped_at``), a probe's grid value (``selected``), and its
        ``val_score``."""
        if self.training is None:
            return None
        record: dict[str, Any] = {"mode": self.select} | (self.selection or {})
        if self.select == "none":
            kind = validation_kind(self.training.ds.manifest.splits[self.training.split].definition)
            record["why"] = ("--select none" if self.cfg.select == "none" else
                             "the set was built before validation parts (rebuild to select)" if kind is None
                             else f"the split has no validation part ({kind})")
            return record
        record["per_seed"] = {str(seed): {k: v for k, v in log["selection"].items() if k in SEED_SELECTION}
                              for seed, log in training.items() if log.get("selection")}
        return record

    def _notes(self) -> list[str]:
        if self.cfg.checkpoint is None:
            return []
        from caadbench.utils.hashing import sha256_file

        return [f"fitted state loaded from checkpoint {Path(self.cfg.checkpoint).name} "
                f"(sha256 {sha256_file(self.cfg.checkpoint)}); its support set or training is not re-run"]

    # ----------------------------------------------------------------- entry
    def run(self, on_fitted: Callable[[int, AnomalyModel], None] | None = None) -> Path | None:
        """Fit and evaluate every seed, then write the results (rank 0). Returns the results path on rank 0.

        Args:
            on_fitted: called with each seed and its fitted model before it is evaluated
                (``caadbench ship-checkpoints`` saves it there).
        """
        from caadbench.eval.runconfig import run_config_to_dict

        cfg = self.cfg
        if self.dist.is_main:
            self._announce()
        backbone = self._backbone().to(self.device)
        path = self.results_path(backbone.identity)
        if self.dist.is_main:
            check_replace(path, self._run_data(backbone.identity), list(cfg.seeds))
        evaluations, supports, training, examples, model = [], {}, {}, None, None
        overrides = {k: v for k, v in self._overrides().items() if k not in ("backbone", "image_size")}
        with ResourceMeter(self.device) as meter:
            searched = self._search(backbone, overrides) if self.select == "search" else None
            if searched is not None:
                overrides = {**overrides, **searched}
            for seed in cfg.seeds:
                seed_everything(seed)
                model = self.spec.build(backbone=backbone, **overrides).to(self.device)
                supports[seed] = {} if self._load_shipped(model, seed) else self._fit(model, seed)
                if on_fitted is not None:
                    on_fitted(seed, model)
                if getattr(model, "train_log", None):
                    training[seed] = model.train_log
                evaluator = self._evaluate(model, meter)
                if self.dist.is_main:
                    evaluations.append(evaluator.compute())
                    examples = examples or evaluator.examples()
        if not self.dist.is_main:
            D.barrier()
            return None
        results = build_results(
            model=cfg.model, learning=str(self.learning), dataset=self.dataset, split=cfg.split,
            shots=cfg.shots, seeds=list(cfg.seeds), evaluations=evaluations,
            support_keys=supports if self.learning == Learning.FEW_SHOT else None,
            config=model.config.to_dict(),
            provenance=collect_provenance(backbone.identity, dataset_fingerprint=self.ds.fingerprint,
                                          dataset_path=self.ds.root, device=self.device, meter=meter,
                                          precision=model.precision_for("predict")),
            training=training,
            notes=self._notes(),
            run_config=run_config_to_dict(cfg),
            train_data=self.training.record() if self.training is not None else None,
            selection=self._selection_record(training),
            shipped=self.shipped or None,
        )
        write_results(path, results)
        if examples is not None:
            write_examples(examples_path(path), examples)
        D.barrier()
        return path


def run(cfg: RunConfig) -> Path | None:
    """Run one evaluation (see :class:`Runner`); the results path on rank 0, ``None`` on other ranks."""
    return Runner(cfg).run()


def summarize(results: Results) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)`` for printing: per metric the headline ``mean ± std`` (and seen and gap when measured)."""
    from caadbench.eval.metrics import METRIC_LABELS, METRIC_NAMES
    from caadbench.eval.tables import mean_std

    if results.has_gap:
        headers = ["metric", "unseen %", "seen %", "gap (seen − unseen)"]
        rows = [[METRIC_LABELS[m], mean_std(results.metrics[m]), mean_std(results.seen.metrics[m]),
                 mean_std(results.gap[m], signed=True)] for m in METRIC_NAMES]
        return headers, rows
    return ["metric", f"{results.headline} %"], [[METRIC_LABELS[m], mean_std(results.metrics[m])] for m in METRIC_NAMES]
