"""The round board: one page per study showing each round's steps, and one view per button.

Every button posts the round's index; its view parses the form, refuses what the board shows
as disabled (the same reason, from ``evaluation.board.selectors``), calls the service of the
app that owns the step and comes back to the round on the board with a message.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from config.errors import ApplicationError, message_for
from evaluation import services as metric_services
from evaluation.board import selectors
from evaluation.board.forms import (
    KINDS,
    AutoDecodeForm,
    DecodeForm,
    LobbyForm,
    RoundForm,
    SystemForm,
    TrainForm,
)
from evaluation.board.services import set_round_lobby
from evaluation.forms import MetricRunForm
from evaluation.models import MetricRun
from evaluation.stats.bootstrap import DEFAULT_RESAMPLES
from games.live.lobby import set_decode_when_lobby_closes
from games.models import Round, Study
from games.roles import ResearcherRequiredMixin
from models_svc.decode_runs import request_decode_run
from models_svc.training import runs
from models_svc.training.forms import default_preset, form_errors
from models_svc.training.selectors import TrainingError, decoder_kind, decoder_name


def board_url(study: Study, round_index: int | None = None) -> str:
    url = reverse("board:study", kwargs={"pk": study.pk})
    return url if round_index is None else f"{url}#round-{round_index}"


class BoardView(ResearcherRequiredMixin, TemplateView):
    template_name = "evaluation/board.html"

    def get_context_data(self, **kwargs):
        study = get_object_or_404(Study, pk=self.kwargs["pk"])
        boards = selectors.study_board(study)
        return super().get_context_data(
            study=study,
            boards=boards,
            refresh=any(board.active for board in boards),
            kinds=[value for value, _ in KINDS],
            train_form=TrainForm(),
            default_preset=default_preset(),
            resamples=DEFAULT_RESAMPLES,
            conventions=MetricRun.Conventions.choices,
            **kwargs,
        )


class RoundActionView(ResearcherRequiredMixin, View):
    """Parses the form, finds the round and hands both to ``act``; refusals come back as
    messages on the board."""

    form_class: type[forms.Form] = RoundForm

    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        form = self.form_class(request.POST)
        if not form.is_valid():
            messages.error(request, f"Nothing done: {form_errors(form)}")
            return HttpResponseRedirect(board_url(study))
        round_ = get_object_or_404(Round, study=study, index=form.cleaned_data["round_index"])
        self.act(request, round_, form)
        return HttpResponseRedirect(board_url(study, self.back_to(round_)))

    def act(self, request, round_: Round, form) -> None:
        raise NotImplementedError

    def back_to(self, round_: Round) -> int:
        return round_.index


class LobbyView(RoundActionView):
    form_class = LobbyForm

    def act(self, request, round_: Round, form) -> None:
        is_open = form.cleaned_data["open"]
        change = set_round_lobby(round_, is_open, user=request.user)
        state = "open: workers arriving are paired" if is_open else "closed"
        prefix = "" if change.changed else "already "
        messages.success(request, f"Round {round_.index}: the lobby is {prefix}{state}.")
        for run, created in change.decodes.runs:
            verb = "queued" if created else "already under way"
            messages.info(
                request, f"Decoding run {run.pk} ({run.kind}, {run.decoder}) {verb}, as asked."
            )
        for name, reason in change.decodes.skipped.items():
            messages.error(request, f"{name} is not decoded automatically: {reason}")


class AutoDecodeView(RoundActionView):
    form_class = AutoDecodeForm

    def act(self, request, round_: Round, form) -> None:
        data = form.cleaned_data
        system = round_.systems.filter(name=data["system_name"]).first()
        if system is None or system.is_human:
            messages.error(
                request, f"Round {round_.index} has no model system {data['system_name']!r}."
            )
            return
        set_decode_when_lobby_closes(system, data["enabled"])
        when = "will be decoded" if data["enabled"] else "will not be decoded"
        messages.success(
            request, f"{system.name}: round {round_.index} {when} when its lobby closes."
        )


class DecodeView(RoundActionView):
    form_class = DecodeForm

    def act(self, request, round_: Round, form) -> None:
        blocked = selectors.round_board(round_, is_last=False).decode.blocked
        if blocked:
            messages.error(request, f"Not decoded: {blocked}")
            return
        data = form.cleaned_data
        try:
            run, created = request_decode_run(
                round_.study,
                round_.index,
                decoder=data["decoder"],
                kind=data["kind"],
                user=request.user,
            )
        except ApplicationError as error:
            messages.error(request, f"Not decoded: {message_for(error)}")
            return
        if created:
            messages.success(
                request,
                f"Decoding run {run.pk} queued on the {settings.GPU_BATCH_QUEUE} queue "
                f"({run.kind}, {run.decoder}, round {round_.index}).",
            )
        else:
            messages.info(request, f"Decoding run {run.pk} is already doing this ({run.status}).")


class DecodeLineageView(RoundActionView):
    """Queues the decoding of every round a system learns from that lacks its labels."""

    form_class = SystemForm

    def act(self, request, round_: Round, form) -> None:
        name = form.cleaned_data["system_name"]
        system = round_.systems.filter(name=name).first()
        if system is None or system.is_human:
            messages.error(request, f"Round {round_.index} has no model system {name!r}.")
            return
        kind, decoder = decoder_kind_or_none(system), decoder_name(system)
        rounds = selectors.undecoded_rounds(round_, system)
        if kind is None or not rounds:
            messages.info(request, f"Nothing to decode: {name} has every label it learns from.")
            return
        for index in rounds:
            try:
                run, created = request_decode_run(
                    round_.study, index, decoder=decoder, kind=kind, user=request.user
                )
            except ApplicationError as error:
                messages.error(request, f"Round {index} not decoded: {error.message}")
                continue
            verb = (
                f"queued on the {settings.GPU_BATCH_QUEUE} queue"
                if created
                else f"already {run.status}"
            )
            messages.success(
                request, f"Decoding run {run.pk} of round {index} ({kind}, {decoder}) {verb}."
            )


def decoder_kind_or_none(system) -> str | None:
    try:
        return decoder_kind(system.name)
    except TrainingError:
        return None


class MetricsView(RoundActionView):
    """Starts the study's metric run (the dashboard's run; metrics cover every round)."""

    def post(self, request, pk: int):
        self.metric_form = MetricRunForm(request.POST)
        return super().post(request, pk)

    def act(self, request, round_: Round, form) -> None:
        if not self.metric_form.is_valid():
            messages.error(request, f"Metric run not started: {form_errors(self.metric_form)}")
            return
        blocked = selectors.round_board(round_, is_last=False).metrics.blocked
        if blocked:
            messages.error(request, f"Metric run not started: {blocked}")
            return
        run, created = metric_services.request_metric_run(
            round_.study, user=request.user, **self.metric_form.cleaned_data
        )
        if created:
            messages.success(request, f"Metric run {run.pk} started.")
        else:
            messages.info(request, f"The same metric run ({run.pk}) is already under way.")


class TrainView(RoundActionView):
    """Launches with the Training page's form; ``launch_training_run`` owns every refusal
    (the same rule that greys out the board's button)."""

    form_class = TrainForm

    def act(self, request, round_: Round, form) -> None:
        try:
            run = runs.launch_training_run(
                round_.study, user=request.user, **form.launch_arguments()
            )
        except ApplicationError as error:
            messages.error(request, f"Not launched: {error.message}")
            return
        messages.success(
            request,
            f"Training run {run.pk} ({run.get_objective_display()}, {run.system_name}) queued "
            f"on the {settings.GPU_BATCH_QUEUE} queue.",
        )


def chosen_runs(data) -> dict[str, int]:
    """``run-<system>`` fields of the next-round form: the run each system deploys (the
    service refuses one that is not a finished run of that system and round)."""
    chosen = {}
    for key, value in data.items():
        if key.startswith("run-") and value.strip():
            try:
                chosen[key.removeprefix("run-")] = int(value)
            except ValueError:
                raise TrainingError(f"{key}: {value[:40]!r} is not a run number") from None
    return chosen


class NextRoundView(RoundActionView):
    opened: Round | None = None

    def act(self, request, round_: Round, form) -> None:
        try:
            self.opened = runs.open_next_round(
                round_.study, round_.index, chosen_runs(request.POST)
            )
        except ApplicationError as error:
            messages.error(request, f"Round not opened: {error.message}")
            return
        messages.success(
            request,
            f"Round {self.opened.index} opened with the trained policies "
            f"({', '.join(self.opened.systems.order_by('name').values_list('name', flat=True))}).",
        )

    def back_to(self, round_: Round) -> int:
        return self.opened.index if self.opened is not None else round_.index
