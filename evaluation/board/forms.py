"""Forms of the round board's buttons; each names the round it acts on by its index."""

from __future__ import annotations

from django import forms

from models_svc.training.config import PRESETS
from models_svc.training.forms import TrainingLaunchForm

KINDS = [("binary", "binary"), ("ternary", "ternary")]


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


class TrainForm(TrainingLaunchForm, RoundForm):
    """The Training page's launch form (``models_svc.training.forms``), posted from the board."""


class SeedSetForm(RoundForm):
    prompt_format = forms.CharField(max_length=40)
    split = forms.ChoiceField(
        choices=[("dev", "dev"), ("main", "main"), ("train", "train"), ("test", "test")],
        initial="dev",
    )


class SeedRunForm(RoundForm):
    base = forms.CharField(max_length=600, required=False, help_text="hf:PATH")
    preset = forms.ChoiceField(choices=[(name, name) for name in PRESETS], initial="paper")
    epochs = forms.IntegerField(min_value=1, max_value=200, required=False)
    seeds = forms.IntegerField(min_value=1, max_value=10, required=False)

    def overrides(self) -> dict:
        """The epochs and seeds given (the preset is applied by the seed run's service)."""
        return {
            name: self.cleaned_data[name]
            for name in ("epochs", "seeds")
            if self.cleaned_data.get(name)
        }


class DeploySeedForm(RoundForm):
    run_id = forms.IntegerField(min_value=1)
