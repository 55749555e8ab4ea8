"""Researcher pages for learning between rounds: launch and follow training runs, open the next
round, read each system's policy lineage; register and check model checkpoints. Views parse the
request; services do the work."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from config.db_ranges import SMALLINT_MAX
from config.errors import ApplicationError
from games.models import Round, Study, System
from games.roles import ResearcherRequiredMixin

from .checkpoint_registration import RegistrationError, queue_loading_check, register_checkpoint
from .models import ModelCheckpoint, TrainingRun
from .selectors import registered_checkpoints
from .services import check_checkpoint_files
from .training import runs
from .training.forms import TrainingLaunchForm, form_errors
from .training.plots import history_plot
from .training.readiness import next_round_refusal, training_refusal
from .training.report import report_rows, training_report
from .training.selectors import policy_lineage, study_training_runs


class TrainingView(ResearcherRequiredMixin, TemplateView):
    """Every round's systems with the launch form, greyed out with the reason of
    ``training_refusal``; "Open round N" greyed out with ``next_round_refusal``'s (the board's
    rules)."""

    template_name = "models_svc/training.html"

    def get_context_data(self, **kwargs):
        study = get_object_or_404(Study, pk=self.kwargs["pk"])
        rounds = list(study.rounds.prefetch_related("systems").order_by("index"))
        names = sorted(
            {s.name for r in rounds for s in r.systems.all() if s.name not in ("HH", "CONTROL")}
        )
        last = rounds[-1] if rounds else None
        return super().get_context_data(
            study=study,
            rounds=[
                (r, [(s, _blocked(study, r.index, s)) for s in r.systems.all()]) for r in rounds
            ],
            last_round=last,
            next_round_blocked=next_round_refusal(study, last.index) if last else "",
            runs=study_training_runs(study)[:50],
            lineages={name: policy_lineage(study, name) for name in names},
            form=TrainingLaunchForm(),
            **kwargs,
        )


def _blocked(study: Study, round_index: int, system: System) -> str:
    if system.name in (System.HUMAN, System.CONTROL):
        return ""
    refusal = training_refusal(study, round_index, system.name, base=None)
    return refusal.message if refusal is not None else ""


class LaunchRunView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        form = TrainingLaunchForm(request.POST)
        back = reverse("models_svc:training", kwargs={"pk": study.pk})
        if not form.is_valid():
            messages.error(request, f"Not launched: {form_errors(form)}")
            return HttpResponseRedirect(back)
        try:
            run = runs.launch_training_run(study, user=request.user, **form.launch_arguments())
        except ApplicationError as error:
            messages.error(request, f"Not launched: {error.message}")
            return HttpResponseRedirect(back)
        messages.success(
            request, f"Training run {run.pk} queued on the {settings.GPU_BATCH_QUEUE} queue."
        )
        return HttpResponseRedirect(reverse("models_svc:run", kwargs={"pk": run.pk}))


class OpenRoundView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        back = reverse("models_svc:training", kwargs={"pk": study.pk})
        form = OpenRoundForm(request.POST)
        if not form.is_valid():
            messages.error(request, f"Round not opened: {form_errors(form)}")
            return HttpResponseRedirect(back)
        try:
            new_round = runs.open_next_round(study, form.cleaned_data["from_round"])
        except ApplicationError as error:
            messages.error(request, f"Round not opened: {error.message}")
        else:
            messages.success(request, f"Round {new_round.index} opened.")
        return HttpResponseRedirect(back)


class OpenRoundForm(forms.Form):
    from_round = forms.IntegerField(min_value=0, max_value=SMALLINT_MAX)


class RunView(ResearcherRequiredMixin, TemplateView):
    template_name = "models_svc/run.html"

    def get_context_data(self, **kwargs):
        run = get_object_or_404(
            TrainingRun.objects.select_related("study", "manifest", "seed_manifest"),
            pk=self.kwargs["pk"],
        )
        return super().get_context_data(
            run=run,
            active=run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING),
            stale=runs.is_stale(run),
            plot=history_plot(run.history),
            report=(report := training_report(run)),
            diagnostic_rows=report_rows(report),
            **kwargs,
        )


class RunProgressView(ResearcherRequiredMixin, View):
    """The run's progress as JSON (the run page polls it)."""

    def get(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        return JsonResponse(
            {
                "status": run.status,
                "seed": run.seed_index,
                "epoch": run.epoch,
                "step": run.step,
                "total_steps": run.total_steps,
                "loss": run.loss,
                "history": run.history,
                "selected": run.selected,
                "adapter": run.output_adapter,
                "error": run.error,
            }
        )


class ResumeRunView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        try:
            run = runs.resume_training_run(get_object_or_404(TrainingRun, pk=pk))
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"Run {run.pk} queued again; it resumes after its last epoch."
            )
        return HttpResponseRedirect(reverse("models_svc:run", kwargs={"pk": pk}))


class CancelRunView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        run = runs.cancel_training_run(get_object_or_404(TrainingRun, pk=pk))
        messages.info(request, f"Run {run.pk}: {run.get_status_display()} (cancel requested).")
        return HttpResponseRedirect(reverse("models_svc:run", kwargs={"pk": run.pk}))


class RoundChoiceField(forms.ModelChoiceField):
    """Rounds named with their study, which a bare round number does not identify."""

    def label_from_instance(self, obj: Round) -> str:
        return f"{obj.study.name} · round {obj.index}"


class CheckpointForm(forms.Form):
    kind = forms.ChoiceField(choices=ModelCheckpoint.Kind.choices)
    spec = forms.CharField(
        max_length=600,
        label="Checkpoint",
        help_text="a directory on this server (/data/idefics2-ft), or a spec: hf:PATH, "
        "hf:PATH+lora:ADAPTER, clip:PATH, lexicon",
    )
    round = RoundChoiceField(
        queryset=Round.objects.select_related("study").order_by("study__name", "index"),
        required=False,
        empty_label="every study (not tied to a round)",
    )
    notes = forms.CharField(max_length=200, required=False)


class CheckpointsView(ResearcherRequiredMixin, TemplateView):
    """Registered checkpoints with their check status, and the form to register one."""

    template_name = "models_svc/checkpoints.html"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", CheckpointForm())
        return super().get_context_data(checkpoints=registered_checkpoints(), **kwargs)

    def post(self, request):
        form = CheckpointForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        data = form.cleaned_data
        try:
            checkpoint, created = register_checkpoint(
                data["kind"], data["spec"], round_=data["round"], notes=data["notes"]
            )
        except RegistrationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        if created:
            messages.success(
                request, f"Registered {checkpoint.kind} checkpoint {checkpoint.spec}: files ready."
            )
        else:
            messages.info(
                request,
                f"{checkpoint.spec} was already registered; checked again: "
                f"{checkpoint.get_status_display()}.",
            )
        return HttpResponseRedirect(reverse("models_svc:checkpoints"))


class CheckFilesView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        checkpoint = check_checkpoint_files(get_object_or_404(ModelCheckpoint, pk=pk))
        text = f"{checkpoint.spec}: {checkpoint.get_status_display()}"
        if checkpoint.status == ModelCheckpoint.Status.READY:
            messages.success(request, f"{text} (version {checkpoint.model_version or '—'}).")
        else:
            messages.error(request, f"{text}: {checkpoint.status_message}")
        return HttpResponseRedirect(reverse("models_svc:checkpoints"))


class LoadCheckView(ResearcherRequiredMixin, View):
    def post(self, request, pk: int):
        checkpoint = get_object_or_404(ModelCheckpoint, pk=pk)
        queue_loading_check(checkpoint)
        messages.info(
            request,
            f"Loading {checkpoint.spec} on a gpu worker; its status here changes when it is done.",
        )
        return HttpResponseRedirect(reverse("models_svc:checkpoints"))
