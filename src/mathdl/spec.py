"""The plain types of a plan: frozen dataclasses, the config error, stable ids.

This module imports nothing of the package, so every other module (config, tasks,
engine, studies) may import it without a cycle. ``mathdl.config`` loads and validates
plans into these types and re-exports them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

# Training hyperparameters that may differ between the runs of one group: the engine
# holds them as tensors of shape (M, 1, 1). Every other key defines the group's shape.
PER_RUN_TRAIN_KEYS = ("lr", "momentum", "beta2", "eps", "weight_decay", "l1", "dropout")


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the key."""




@dataclass(frozen=True)
class ProjectConfig:
    title: str
    authors: tuple[str, ...]
    course: str
    date: str


@dataclass(frozen=True)
class ReportConfig:
    name: str  # the plan's documents go to results/report/<name>/ ("" = the plan file's name)
    main: tuple[str, ...]  # experiments in the main text, in order
    appendix: tuple[str, ...]  # experiments in the appendix, in order
    survey: bool  # the background survey (report/sections/survey.tex) in the paper


@dataclass(frozen=True)
class PlotConfig:
    style: str
    context: str
    palette: str
    width: float
    height: float
    dpi: int
    confidence: float


@dataclass(frozen=True)
class TaskConfig:
    name: str  # teacher | digits | mnist | fashion_mnist | cifar10 | none
    path: str  # folder of a real data set's files ("" = data/<name>)
    standardize: bool  # real data: features to mean 0, sd 1 on the training split
    kind: str  # regression | classification
    input_dim: int
    n_classes: int  # classes, or outputs of a regression
    teacher_width: int
    n_train: int
    n_val: int
    n_test: int
    label_noise: float
    seed: int


@dataclass(frozen=True)
class ModelConfig:
    depth: int  # hidden layers (residual: blocks)
    width: int
    activation: str  # relu | logistic | tanh | softplus | identity | step (step: forward only)
    residual: bool  # blocks h <- h + s (W2 sigma(W1 h + b1) + b2) after a linear embedding
    residual_scale: float  # s, the scale of each residual branch
    init: str  # pytorch | uniform | he | glorot | ntk
    output_scale: float  # alpha: the network computes alpha * (last layer)
    # A target parameter count (0: off); when set, the plan chose ``width`` to meet it.
    param_budget: int = 0
    arch: str = "mlp"  # mlp (plain or residual) | cnn | resnet18 | module; cnn, resnet18: width is k
    module: str = ""  # arch module: the group's own nn.Module, "package.module:Class"
    kwargs: tuple[tuple[str, Any], ...] = ()  # arch module: its keyword arguments, sorted by name

    def __post_init__(self):
        # A plan gives kwargs as a mapping and a group file (JSON) as a list of pairs: both
        # become sorted pairs, so a ModelConfig compares and hashes by value.
        pairs = self.kwargs.items() if isinstance(self.kwargs, Mapping) else self.kwargs
        object.__setattr__(self, "kwargs", tuple(sorted((str(k), v) for k, v in pairs)))


@dataclass(frozen=True)
class TrainConfig:
    loss: str  # mse | cross_entropy | hinge
    optimizer: str  # gd | sgd | momentum | nesterov | adagrad | adam
    lr: float
    momentum: float  # mu of momentum and nesterov; Adam's b1
    beta2: float  # Adam's b2
    eps: float  # AdaGrad's and Adam's epsilon
    weight_decay: float  # L2: adds weight_decay * theta to the gradient
    l1: float  # adds l1 * sign(theta) to the gradient
    dropout: float  # drop probability of every hidden unit while training
    lr_schedule: str  # constant | step | cosine, per epoch
    lr_step_epochs: int  # step: multiply lr by lr_gamma every this many epochs
    lr_gamma: float
    batch_size: int  # 0: full batch
    epochs: int
    eval_points: int
    early_stopping: bool  # select the epoch of best validation metric (never test)
    patience: int  # stop a run after this many epochs without improvement; 0: never stop
    selection_metric: str  # loss | error, on the validation split
    dtype: str  # float32 | float64
    augment_crop: int = 0  # image networks: random crops of the image padded by this many pixels (0: off)
    augment_flip: bool = False  # image networks: random horizontal flips
    mixed_precision: bool = False  # image networks: forward passes under bfloat16 autocast (float32 parameters)


@dataclass(frozen=True)
class ExperimentPlot:
    x: str  # the varied key on the horizontal axis (the first varied key when not set)
    logx: bool
    logy: bool
    # Varied keys drawn as colour, line style, facet columns and facet rows; "" lets the
    # sweep study's figures choose among the varied keys that are not on another channel.
    hue: str = ""
    style: str = ""
    col: str = ""
    row: str = ""


@dataclass(frozen=True)
class RunSpec:
    """One network: the resolved parameters of one sweep point and one seed."""

    run_id: str
    seed: int
    point: tuple[tuple[str, Any], ...]  # the swept (key, value) pairs of this run
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig
    params: Mapping[str, Any] = field(default_factory=dict)  # the study's own parameters


@dataclass(frozen=True)
class GroupSpec:
    """Runs that train together: same task, architecture and training loop."""

    group_id: str
    experiment: str
    study: str
    data_id: str
    runs: tuple[RunSpec, ...]

    @property
    def task(self) -> TaskConfig:
        return self.runs[0].task

    @property
    def model(self) -> ModelConfig:
        return self.runs[0].model

    @property
    def train(self) -> TrainConfig:
        return self.runs[0].train

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "GroupSpec":
        runs = tuple(
            RunSpec(
                run_id=r["run_id"],
                seed=r["seed"],
                point=tuple((k, v) for k, v in r["point"]),
                task=TaskConfig(**r["task"]),
                model=ModelConfig(**r["model"]),
                train=TrainConfig(**r["train"]),
                params=dict(r.get("params", {})),
            )
            for r in d["runs"]
        )
        return cls(d["group_id"], d["experiment"], d["study"], d["data_id"], runs)


@dataclass(frozen=True)
class Experiment:
    name: str
    study: str
    title: str
    description: str
    seeds: tuple[int, ...]
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig
    params: Mapping[str, Any]  # the study's own parameters (see its PARAMS_SCHEMA)
    sweep: tuple[tuple[str, tuple], ...]  # (key, values) in config order
    plot: ExperimentPlot
    groups: tuple[GroupSpec, ...] = field(repr=False)

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        return tuple(r for g in self.groups for r in g.runs)

    def group(self, group_id: str) -> GroupSpec:
        for g in self.groups:
            if g.group_id == group_id:
                return g
        raise KeyError(f"experiment {self.name!r} has no group {group_id!r}")

    def tasks(self) -> dict[str, TaskConfig]:
        """The distinct data sets of this experiment, by data id."""
        return {g.data_id: g.task for g in self.groups}


@dataclass(frozen=True)
class Plan:
    project: ProjectConfig
    device: str
    threads: int
    gpus_for_auto: bool
    max_mem_mb: int  # a training job may need at most this much memory; 0: this machine's
    plot: PlotConfig
    report: ReportConfig
    experiments: tuple[Experiment, ...]
    resolved: Mapping = field(repr=False, compare=False)  # the validated config, defaults filled

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise KeyError(f"no experiment {name!r}; the plan has {[e.name for e in self.experiments]}")



# Keys added after plans had ids, with the value that leaves a plan as it was: at that value a
# key stays out of run and group ids, so the plans of before keep their ids (and their results).
MODEL_KEYS_ADDED = {"param_budget": 0, "arch": "mlp", "module": "", "kwargs": ()}
TRAIN_KEYS_ADDED = {"augment_crop": 0, "augment_flip": False, "mixed_precision": False}


def _leave_out_added(section: Mapping[str, Any], added: Mapping[str, Any]) -> dict:
    def at_default(k, v):
        return k in added and (v == added[k] or (added[k] == () and not v))  # kwargs: {} or [] or ()

    return {k: v for k, v in section.items() if not at_default(k, v)}


def model_identity(model: Mapping[str, Any]) -> dict:
    """The model keys that go into run and group ids: every key, but those of ``MODEL_KEYS_ADDED``
    only when set (param_budget not 0, arch not mlp, a module and its kwargs).

    A budget that is off (0) is left out so that plans without budgets keep the ids they had
    before budgets existed (their results are reused); a budget that is set stays, since two
    budgets are two points of a design even where they happen to choose the same width. The
    same holds for the architecture keys.
    """
    return _leave_out_added(model, MODEL_KEYS_ADDED)


def train_identity(train: Mapping[str, Any]) -> dict:
    """The train keys that go into run and group ids: every key, but augmentation and mixed precision
    only when on."""
    return _leave_out_added(train, TRAIN_KEYS_ADDED)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any, length: int = 10) -> str:
    """A short hash of the canonical JSON of ``obj``: the same parameters, the same id."""
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:length]
