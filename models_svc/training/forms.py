"""The one training launch form: the round board and the Training page both post it, and
``launch_training_run`` (which owns every refusal) gets its values from ``launch_arguments``."""

from __future__ import annotations

from typing import Any

from django import forms

from .config import PRESETS

PRESET_LABELS = {
    "paper": "paper: the study's settings (20 epochs × 3 seeds; hours on a CPU, use a GPU)",
    "tiny": "tiny: for a tiny test checkpoint (minutes on a CPU)",
}
OBJECTIVES = [("", "from the system's name"), ("fft", "FFT"), ("rl", "RL"), ("kto", "KTO")]
SMALLINT_MAX = 32767  # the round index column


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
        choices=[(name, PRESET_LABELS.get(name, name)) for name in PRESETS],
        initial="paper",
        required=False,
        help_text="tiny suits a CPU (minutes); paper is the study's settings, for a GPU",
    )
    epochs = forms.IntegerField(min_value=1, max_value=200, required=False)
    seeds = forms.IntegerField(min_value=1, max_value=10, required=False)

    def overrides(self) -> dict[str, Any]:
        """The preset's settings, then the epochs and seeds given."""
        data = self.cleaned_data
        chosen = {name: data[name] for name in ("epochs", "seeds") if data.get(name)}
        return {**PRESETS[data.get("preset") or "paper"], **chosen}

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
