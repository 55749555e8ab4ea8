from __future__ import annotations

from django import forms

from evaluation.models import MetricRun
from evaluation.stats.bootstrap import DEFAULT_RESAMPLES

# The most resamples a run started from a page or the API may ask for (about 340 MB of
# bootstrap at 100,000; compute_metrics on the command line accepts up to 1,000,000).
MAX_WEB_RESAMPLES = 100_000


class MetricRunForm(forms.Form):
    """A metric run from the dashboard; an empty ``method`` takes the conventions' own."""

    resamples = forms.IntegerField(
        min_value=100, max_value=MAX_WEB_RESAMPLES, initial=DEFAULT_RESAMPLES
    )
    seed = forms.IntegerField(min_value=0, max_value=2**62, initial=0)
    conventions = forms.ChoiceField(
        choices=MetricRun.Conventions.choices, initial=MetricRun.Conventions.PLATFORM
    )
    method = forms.ChoiceField(
        choices=[("", "the conventions' (BCa; paper: percentile)"), *MetricRun.Method.choices],
        required=False,
        initial="",
    )
    confidence = forms.TypedChoiceField(
        choices=[("0.9", "90%"), ("0.95", "95%"), ("0.99", "99%")], coerce=float, initial="0.95"
    )
