"""Training hyperparameters: the paper's values as defaults, every one a setting (pure).

Defaults follow the study (section 4, appendix B, table 1): LoRA r = α = 8, dropout 0.1 on the
text model, the modality projection and the perceiver resampler (q/k/v/o and gate/up/down
projections); FFT and RL with AdamW at 1e-4 and cosine decay, KTO with RMSProp at 1e-5 and no
decay; 20 epochs, 10 warm-up steps, weight decay 0.01, effective batch 64; label smoothing
("entropy weight") 0.01 (FFT, RL) or 0.1 (KTO); KTO β = 0.5 with λ_d = λ_u = 1 and negatives
subsampled to about 5:4; checkpoint selection over 3 seeds. ``settings.TRAINING`` overrides
any default for every run; a run's own options override both, and the run stores the values it
used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# The released adapters' target modules: text model, modality projection and perceiver
# resampler; attention and MLP projections. The "enhanced" variant adds the vision model.
LORA_TARGETS = (
    r".*(text_model|modality_projection|perceiver_resampler).*"
    r"(down_proj|gate_proj|up_proj|k_proj|q_proj|v_proj|o_proj).*$"
)
ENHANCED_LORA_TARGETS = (
    r".*(text_model|modality_projection|perceiver_resampler).*"
    r"(down_proj|gate_proj|up_proj|k_proj|q_proj|v_proj|o_proj).*$"
    r"|.*vision_model.*(out_proj|fc1|fc2|k_proj|q_proj|v_proj).*$"
)
OBJECTIVES = ("fft", "rl", "kto")
# The labels each objective trains on (neutral examples teach RL nothing: R = 0).
OBJECTIVE_LABELS: dict[str, tuple[str, ...]] = {
    "fft": ("positive",),
    "rl": ("positive", "negative"),
    "kto": ("positive", "negative"),
}
# Objectives that continue from the system's current adapter (the paper's KTO); the others start
# from the pretrained weights every round.
CONTINUES_FROM_ADAPTER: frozenset[str] = frozenset({"kto"})
# The labels whose examples need the logged probability p_t: RL's importance weight applies to
# negative examples only; KTO's reference is log p_t for every example it trains on.
PROBABILITY_NEEDED: dict[str, tuple[str, ...]] = {
    "fft": (),
    "rl": ("negative",),
    "kto": ("positive", "negative"),
}


@dataclass(frozen=True)
class TrainingConfig:
    objective: str = "fft"
    epochs: int = 20
    seeds: int = 3
    effective_batch: int = 64
    learning_rate: float = 1e-4
    schedule: str = "cosine"  # cosine or constant (after linear warm-up)
    warmup_steps: int = 10
    weight_decay: float = 0.01
    optimizer: str = "adamw"  # adamw or rmsprop
    label_smoothing: float = 0.01
    lora_r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.1
    lora_targets: str = LORA_TARGETS
    enhanced_lora: bool = False
    kto_beta: float = 0.5
    kto_desirable_weight: float = 1.0
    kto_undesirable_weight: float = 1.0
    rl_propensity_floor: float = 0.01
    rl_coefficient_cap: float = 1.0
    negative_ratio: tuple[int, int] = (5, 4)
    augment_permutations: bool = True
    rehearse_seed_set: bool = True
    packing: bool = True
    gradient_checkpointing: bool = True
    dtype: str = "auto"  # auto: bfloat16 on GPU, float32 on CPU
    temperature: float = 1.0
    max_validation: int = 0  # 0: every validation turn

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["negative_ratio"] = list(self.negative_ratio)
        return values

    @property
    def target_modules(self) -> str:
        return ENHANCED_LORA_TARGETS if self.enhanced_lora else self.lora_targets


OBJECTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "fft": {},
    "rl": {},
    "kto": {
        "learning_rate": 1e-5,
        "schedule": "constant",
        "optimizer": "rmsprop",
        "label_smoothing": 0.1,
    },
}


# Named sets of overrides. ``tiny`` is what teaches a tiny random checkpoint
# (``make_tiny_checkpoint``) the letters round of a simulated study in a few epochs on a CPU; the
# letters speakers name letters, so the images must keep their order (no permutations). Its one
# epoch and one seed make a launch from the round board finish in minutes on a CPU (the
# simulation sets its own epochs and seeds).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "epochs": 1,
        "seeds": 1,
        "learning_rate": 5e-3,
        "lora_r": 32,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "augment_permutations": False,
        "effective_batch": 8,
        "warmup_steps": 10,
    },
}


def preset_summary(name: str) -> str:
    """``"1 epoch × 1 seed"``: what a preset trains, for the launch forms."""
    values = {**asdict(TrainingConfig()), **PRESETS[name]}
    epochs, seeds = values["epochs"], values["seeds"]
    return f"{epochs} epoch{'s' * (epochs != 1)} × {seeds} seed{'s' * (seeds != 1)}"


def training_config(objective: str, *layers: dict[str, Any] | None) -> TrainingConfig:
    """The config of ``objective``: paper defaults, then each layer of overrides in order.

    Unknown names and values of the wrong type raise ValueError naming them.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    config = replace(TrainingConfig(objective=objective), **OBJECTIVE_DEFAULTS[objective])
    known = {f.name: f for f in fields(TrainingConfig)}
    for layer in layers:
        for name, value in (layer or {}).items():
            if name not in known or name == "objective":
                raise ValueError(f"unknown training setting {name!r}")
            config = replace(config, **{name: _coerce(name, value, getattr(config, name))})
    _check(config)
    return config


def _coerce(name: str, value: Any, current: Any) -> Any:
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(current, tuple):
            return tuple(int(v) for v in value)
        return type(current)(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"training setting {name}: {value!r} is not a {type(current).__name__}"
        ) from exc


def _check(config: TrainingConfig) -> None:
    if config.epochs < 1 or config.seeds < 1 or config.effective_batch < 1:
        raise ValueError("epochs, seeds and effective_batch must be at least 1")
    if config.schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be cosine or constant, not {config.schedule!r}")
    if config.optimizer not in ("adamw", "rmsprop"):
        raise ValueError(f"optimizer must be adamw or rmsprop, not {config.optimizer!r}")
    if not 0 <= config.label_smoothing < 1:
        raise ValueError("label_smoothing must be in [0, 1)")
