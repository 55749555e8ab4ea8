from __future__ import annotations

from django import forms

from evaluation.models import MetricRun
from evaluation.stats.bootstrap import DEFAULT_RESAMPLES


class MetricRunForm(forms.Form):
    resamples = forms.IntegerField(min_value=100, max_value=100_000, initial=DEFAULT_RESAMPLES)
    seed = forms.IntegerField(min_value=0, max_value=2**62, initial=0)
    method = forms.ChoiceField(choices=MetricRun.Method.choices, initial=MetricRun.Method.BCA)
    confidence = forms.TypedChoiceField(
        choices=[("0.9", "90%"), ("0.95", "95%"), ("0.99", "99%")], coerce=float, initial="0.95"
    )
