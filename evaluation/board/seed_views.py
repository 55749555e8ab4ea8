"""The round board's seed buttons (round 0): build D₀, train π₀ on it, deploy π₀.

Each refuses what the board shows as disabled, with the service's own reason
(``models_svc.training.seed_runs``), and comes back to round 0 with a message.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages

from config.errors import ApplicationError
from evaluation.board.forms import DeploySeedForm, SeedRunForm, SeedSetForm
from evaluation.board.views import RoundActionView
from games.models import Round
from models_svc.models import TrainingRun
from models_svc.prompt_formats import UnknownPromptFormat
from models_svc.training.manifests import build_seed_manifest
from models_svc.training.seed_runs import deploy_seed_policy, launch_seed_run, seed_run_refusal
from models_svc.training.selectors import TrainingError


class SeedSetView(RoundActionView):
    """Builds D₀ in one prompt format from round 0's HH games on one split's tangrams (dev, as
    the study does, unless the researcher picks another)."""

    form_class = SeedSetForm

    def act(self, request, round_: Round, form) -> None:
        prompt_format = form.cleaned_data["prompt_format"]
        try:
            manifest = build_seed_manifest(
                round_.study,
                round_.index,
                prompt_format=prompt_format,
                split=form.cleaned_data["split"],
            )
        except (TrainingError, UnknownPromptFormat) as error:
            messages.error(request, f"D₀ not built: {error}")
            return
        summary = manifest.summary
        messages.success(
            request,
            f"Seed set D₀ ({manifest.prompt_format}) {manifest.content_hash[:12]}: "
            f"{summary['real']} good turns and {summary['synthetic']['undo']} undo + "
            f"{summary['synthetic']['clear']} clear synthetic turns from {summary['games']} games.",
        )


class SeedRunView(RoundActionView):
    form_class = SeedRunForm

    def act(self, request, round_: Round, form) -> None:
        blocked = seed_run_refusal(round_.study)
        if blocked:
            messages.error(request, f"π₀ not launched: {blocked}")
            return
        data = form.cleaned_data
        try:
            run = launch_seed_run(
                round_.study,
                base=data["base"].strip(),
                overrides=form.overrides(),
                preset=data["preset"],
                user=request.user,
            )
        except ApplicationError as error:
            messages.error(request, f"π₀ not launched: {error}")
            return
        messages.success(
            request,
            f"Seed run {run.pk} (π₀ on D₀, {run.hyperparameters['epochs']} epochs) queued on the "
            f"{settings.GPU_BATCH_QUEUE} queue.",
        )


class DeploySeedView(RoundActionView):
    form_class = DeploySeedForm

    def act(self, request, round_: Round, form) -> None:
        run = TrainingRun.objects.filter(study=round_.study, pk=form.cleaned_data["run_id"]).first()
        if run is None:
            messages.error(
                request, f"π₀ not deployed: no training run {form.cleaned_data['run_id']}"
            )
            return
        try:
            systems = deploy_seed_policy(run)
        except ApplicationError as error:
            messages.error(request, f"π₀ not deployed: {error}")
            return
        names = ", ".join(s.name for s in systems)
        messages.success(request, f"Round 0 ({names}) now acts with π₀: {run.policy_spec}.")
