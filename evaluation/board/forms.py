"""Forms of the round board's buttons; each names the round it acts on by its index."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from models_svc.training.config import PRESETS, preset_summary

KINDS = [("binary", "binary"), ("ternary", "ternary")]


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
    """``("tiny", "tiny (1 epoch × 1 seed)")``, the default first."""
    first = default_preset()
    names = [first, *(name for name in PRESETS if name != first)]
    return [(name, f"{name} ({preset_summary(name)})") for name in names]


class RoundForm(forms.Form):
    round_index = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


class LobbyForm(RoundForm):
    open = forms.TypedChoiceField(
        choices=[("1", "open"), ("0", "closed")], coerce=lambda value: value == "1"
    )


class AutoDecodeForm(RoundForm):
    system_name = forms.CharField(max_length=40)
    enabled = forms.TypedChoiceField(
        choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1"
    )


class SystemForm(RoundForm):
    system_name = forms.CharField(max_length=40)


class DecodeForm(RoundForm):
    decoder = forms.CharField(
        max_length=600, initial="lexicon", help_text="lexicon, or hf:PATH on the gpu workers"
    )
    kind = forms.ChoiceField(choices=KINDS)


class TrainForm(RoundForm):
    system_name = forms.CharField(max_length=40, widget=forms.HiddenInput)
    base = forms.CharField(
        max_length=600,
        required=False,
        help_text="hf:PATH; empty: the system's own policy checkpoint",
    )
    preset = forms.ChoiceField(choices=preset_choices)
    epochs = forms.IntegerField(min_value=1, max_value=200, required=False)
    seeds = forms.IntegerField(min_value=1, max_value=10, required=False)

    def overrides(self) -> dict:
        """The preset's settings, then the epochs and seeds given."""
        data = self.cleaned_data
        chosen = {name: data[name] for name in ("epochs", "seeds") if data.get(name)}
        return {**PRESETS[data["preset"]], **chosen}


def form_errors(form: forms.Form) -> str:
    return "; ".join(
        f"{name}: {' '.join(str(error) for error in errors)}"
        for name, errors in form.errors.items()
    )
