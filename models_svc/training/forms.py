"""The one training launch form: the round board and the Training page both post it, and
``launch_training_run`` (which owns every refusal) gets its values from ``launch_arguments``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .config import PRESETS, preset_summary

PRESET_USES = {
    "paper": "the study's settings: hours on a CPU, use a GPU",
    "tiny": "for a tiny test checkpoint: minutes on a CPU",
}
OBJECTIVES = [("", "from the system's name"), ("fft", "FFT"), ("rl", "RL"), ("kto", "KTO")]
SMALLINT_MAX = 32767  # the round index column


def default_preset() -> str:
    """The preset the launch forms start on: ``RESPECT_TRAINING_PRESET`` (``run.py demo`` sets
    ``tiny`` on a machine without an NVIDIA GPU), else the paper's settings."""
    name = settings.TRAINING_PRESET
    if name not in PRESETS:
        raise ImproperlyConfigured(
            f"RESPECT_TRAINING_PRESET={name!r}: must be one of {', '.join(PRESETS)}"
        )
    return name


def preset_choices() -> list[tuple[str, str]]:
    """``("tiny", "tiny (1 epoch × 1 seed; for a tiny test checkpoint: …)")``, the default
    first."""
    first = default_preset()
    names = [first, *(name for name in PRESETS if name != first)]
    return [
        (name, f"{name} ({preset_summary(name)}; {PRESET_USES.get(name, 'custom')})")
        for name in names
    ]


class TrainingLaunchForm(forms.Form):
    round_index = forms.IntegerField(min_value=0, max_value=SMALLINT_MAX, widget=forms.HiddenInput)
    system_name = forms.CharField(max_length=40, widget=forms.HiddenInput)
    objective = forms.ChoiceField(choices=OBJECTIVES, required=False)
    base = forms.CharField(
        max_length=600,
        required=False,
        help_text="hf:PATH; empty: the system's own policy checkpoint",
    )
    preset = forms.ChoiceField(
        choices=preset_choices,
        initial=default_preset,
        required=False,
        help_text="tiny suits a CPU (minutes); paper is the study's settings, for a GPU",
    )
    epochs = forms.IntegerField(min_value=1, max_value=200, required=False)
    seeds = forms.IntegerField(min_value=1, max_value=10, required=False)

    def overrides(self) -> dict[str, Any]:
        """The preset's settings, then the epochs and seeds given."""
        data = self.cleaned_data
        chosen = {name: data[name] for name in ("epochs", "seeds") if data.get(name)}
        return {**PRESETS[data.get("preset") or default_preset()], **chosen}

    def launch_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``launch_training_run`` after the study."""
        data = self.cleaned_data
        return {
            "round_index": data["round_index"],
            "system_name": data["system_name"],
            "objective": data["objective"],
            "base": data["base"].strip(),
            "overrides": self.overrides(),
        }


def form_errors(form: forms.Form) -> str:
    """A form's errors on one line, each named by its field."""
    return "; ".join(
        f"{name}: {' '.join(str(error) for error in errors)}"
        for name, errors in form.errors.items()
    )
