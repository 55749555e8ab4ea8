"""Researcher pages of the games app (the game viewer) and the tangram image endpoint.

Views only parse the request and pick a template; the queries are in ``games.selectors``.
"""

from __future__ import annotations

from typing import cast

from django import forms
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import condition, require_safe
from django.views.generic import TemplateView

from games import selectors
from games.models import Game, Study, Tangram
from games.roles import ResearcherRequiredMixin

GAMES_PER_PAGE = 25
ORDERS = ("listener", "speaker")


class HomeView(ResearcherRequiredMixin, TemplateView):
    template_name = "home.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            summaries=selectors.study_summaries(),
            library=selectors.tangram_library_counts(),
            **kwargs,
        )


class GameFilterForm(forms.Form):
    """The study page's filters; choices come from the study's own rounds and systems."""

    round = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    system = forms.ChoiceField(required=False)
    outcome = forms.ChoiceField(
        required=False,
        choices=[
            ("", "any"),
            ("successful", "successful"),
            ("unsuccessful", "unsuccessful"),
            ("idle", "idle"),
            ("not-ended", "not ended"),
        ],
    )
    speaker = forms.RegexField(
        required=False,
        regex=r"^[0-9a-fA-F]{1,64}$",
        max_length=64,
        label="Speaker hash",
        error_messages={"invalid": "Enter the start of a worker hash (hex digits)."},
    )

    def __init__(self, *args, rounds, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["round"]).choices = [("", "any")] + [
            (r.index, r.index) for r in rounds
        ]
        names = sorted({s.name for r in rounds for s in r.systems.all()})
        cast(forms.ChoiceField, self.fields["system"]).choices = [("", "any")] + [
            (n, n) for n in names
        ]

    def filters(self) -> selectors.GameFilters:
        if not self.is_valid():
            return selectors.GameFilters()
        data = self.cleaned_data
        return selectors.GameFilters(
            round_index=data["round"],
            system=data["system"],
            outcome=data["outcome"],
            speaker=data["speaker"].lower(),
        )


class StudyView(ResearcherRequiredMixin, TemplateView):
    template_name = "games/study.html"

    def get_context_data(self, **kwargs):
        study = get_object_or_404(Study, pk=self.kwargs["pk"])
        rounds = selectors.study_rounds(study)
        form = GameFilterForm(self.request.GET or None, rounds=rounds)
        games = selectors.study_games(study, form.filters())
        total, groups = selectors.game_counts(games)
        page = Paginator(games, GAMES_PER_PAGE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            study=study,
            rounds=rounds,
            form=form,
            filtered=form.is_bound and form.is_valid() and any(form.cleaned_data.values()),
            total=total,
            groups=groups,
            page=page,
            query=query.urlencode(),
            **kwargs,
        )


class GameView(ResearcherRequiredMixin, TemplateView):
    template_name = "games/game.html"

    def get_context_data(self, **kwargs):
        try:
            game = selectors.game_for_replay(self.kwargs["pk"])
        except Game.DoesNotExist as error:
            raise Http404("No such game.") from error
        replay = selectors.game_replay(game)
        order = self.request.GET.get("order")
        order = order if order in ORDERS else "listener"
        count = len(replay.turns)
        try:
            number = int(self.request.GET.get("turn", 1))
        except ValueError:
            number = 1
        number = min(max(number, 1), count) if count else 0
        current = replay.turns[number - 1] if count else None
        images = None
        if current is not None:
            images = current.images_listener if order == "listener" else current.images_speaker
        return super().get_context_data(
            game=game,
            replay=replay,
            order=order,
            other_order="speaker" if order == "listener" else "listener",
            current=current,
            images=images,
            number=number,
            count=count,
            previous_number=number - 1 if number > 1 else None,
            next_number=number + 1 if number < count else None,
            **kwargs,
        )


def _tangram_etag(request: HttpRequest, name: str) -> str | None:
    image_name = Tangram.objects.filter(name=name).values_list("image", flat=True).first()
    return image_name or None


@require_safe
@condition(etag_func=_tangram_etag)
def tangram_image(request: HttpRequest, name: str) -> FileResponse:
    """A tangram's PNG from storage. Public (crowdworkers see the images in games); storage
    names carry a content hash, so a changed image gets a new ETag."""
    tangram = get_object_or_404(Tangram.objects.only("name", "image"), name=name)
    if not tangram.image:
        raise Http404("This tangram has no image; load one with import_tangrams.")
    try:
        handle = tangram.image.open("rb")
    except FileNotFoundError as error:
        raise Http404("The tangram's image file is missing from storage.") from error
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response
