"""The researcher's set-up forms as the pages render them: fields, values and errors.

Validation is not done here: the pages post the fields of ``BatchCreateSerializer`` and
``GameTaskSerializer`` (task settings of a batch as ``task.<name>``, which DRF reads as the
nested ``task`` object), and the errors of the serializer or of ``annotation.creation`` are put
next to the field they name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from games.models import Round, Study

from .models import AnnotationBatch, CrowdTask, Currency, Quiz
from .validation import InputError


@dataclass(frozen=True)
class Field:
    """One input of a form; ``kind`` is ``text``, ``number``, ``select`` or ``textarea``."""

    name: str
    label: str
    kind: str = "number"
    initial: object = ""
    choices: Sequence[tuple[str, str]] = ()
    help: str = ""
    step: str = ""
    value: str = ""
    error: str = ""

    @property
    def id(self) -> str:
        return "field-" + self.name.replace(".", "-").replace("_", "-")


def _default(model, name: str) -> str:
    return str(model._meta.get_field(name).default)


def _task_fields(prefix: str) -> list[Field]:
    quizzes = [("", "no quiz")] + [(str(q.pk), q.name) for q in Quiz.objects.order_by("name")]
    return [
        Field(f"{prefix}platform", "Platform", "select", "prolific", CrowdTask.Platform.choices),
        Field(
            f"{prefix}prolific_completion_code",
            "Prolific completion code",
            "text",
            help="required for Prolific: workers are sent back to Prolific with it",
        ),
        Field(f"{prefix}prolific_study_id", "Prolific study id (optional)", "text"),
        Field(
            f"{prefix}mturk_sandbox",
            "MTurk mode",
            "select",
            "true",
            [("true", "sandbox"), ("false", "production")],
        ),
        Field(f"{prefix}currency", "Currency", "select", "GBP", Currency.choices),
        Field(f"{prefix}games_per_session", "Games per session", initial=1),
        Field(f"{prefix}quiz", "Qualification quiz", "select", "", quizzes),
        Field(
            f"{prefix}guidelines",
            "Guidelines",
            "textarea",
            help="shown before the quiz or the work; empty: the standard guidelines",
        ),
    ]


def _money(name: str, label: str, initial: object) -> Field:
    return Field(name, label, initial=initial, step="0.01", help="in the task's currency")


def round_systems() -> dict[str, dict[str, list[str]]]:
    """Study id → round index → system names: what the batch form may choose from."""
    choices: dict[str, dict[str, list[str]]] = {}
    for study in Study.objects.prefetch_related("rounds__systems").order_by("name"):
        rounds = choices.setdefault(str(study.pk), {})
        for round_ in sorted(study.rounds.all(), key=lambda r: r.index):
            rounds[str(round_.index)] = sorted(s.name for s in round_.systems.all())
    return choices


def batch_fields(data: Mapping[str, str] | None = None) -> list[Field]:
    """The fields of a new batch; rounds and systems offered are those of the chosen study
    and round (the page's script updates them when another study or round is chosen).
    ``data`` is what was posted, or the study, round and system a link preselects."""
    studies = [(str(s.pk), s.name) for s in Study.objects.order_by("name")]
    tree = round_systems()
    study = (data or {}).get("study") or (studies[0][0] if studies else "")
    rounds = tree.get(study, {})
    round_ = (data or {}).get("round") or next(iter(rounds), "")
    systems = rounds.get(round_, [])
    return [
        Field("name", "Name", "text"),
        Field("study", "Study", "select", study, studies),
        Field("round", "Round", "select", round_, [(i, f"round {i}") for i in rounds]),
        Field(
            "system",
            "System",
            "select",
            (data or {}).get("system")
            if (data or {}).get("system") in systems
            else (systems[0] if systems else ""),
            [(name, name) for name in systems],
        ),
        Field("games", "Games", help="how many games; or leave empty and give turns"),
        Field("turns", "or turns", help="games are added until this many turns"),
        Field(
            "redundancy_fraction",
            "Redundant fraction",
            initial=_default(AnnotationBatch, "redundancy_fraction"),
            step="0.01",
            help="of the games, annotated by several workers",
        ),
        Field("redundancy_count", "Annotators per redundant game", initial=3),
        Field("gold_interval", "Gold every n-th game", initial=0, help="0: no gold games"),
        Field("timeout_minutes", "Release idle games after (minutes)", initial=30),
        Field("seed", "Seed", initial=0),
        _money("pay_per_turn", "Pay per turn", _default(AnnotationBatch, "pay_per_turn")),
        _money(
            "pay_per_error_turn",
            "Pay per turn with an error",
            _default(AnnotationBatch, "pay_per_error_turn"),
        ),
        _money("pay_per_game", "Pay per game", _default(AnnotationBatch, "pay_per_game")),
        _money("pay_per_minute", "Pay per minute", _default(AnnotationBatch, "pay_per_minute")),
        *_task_fields("task."),
    ]


def game_task_fields() -> list[Field]:
    rounds = Round.objects.select_related("study").order_by("study__name", "index")
    choices = [(str(r.pk), f"{r.study.name} · round {r.index}") for r in rounds]
    first = rounds.first()
    return [
        Field("name", "Name", "text"),
        Field("round", "Round", "select", choices[0][0] if choices else "", choices),
        _money(
            "pay_per_game",
            "Pay per game (the study's rate)",
            first.study.base_pay if first else "",
        ),
        _money(
            "pay_per_minute",
            "Waiting pay per minute (the study's rate)",
            first.study.waiting_pay_per_minute if first else "",
        ),
        *_task_fields(""),
    ]


def bound(fields: Sequence[Field], data: Mapping[str, str] | None) -> list[Field]:
    """The fields with the values posted (or their initial values)."""
    if data is None:
        return [replace(f, value=str(f.initial)) for f in fields]
    return [replace(f, value=str(data.get(f.name, ""))) for f in fields]


def flat_errors(errors: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    """Serializer errors as ``{input name: first message}`` (nested objects as ``a.b``)."""
    flat: dict[str, str] = {}
    for name, value in errors.items():
        if isinstance(value, Mapping):
            flat |= flat_errors(value, f"{prefix}{name}.")
        elif isinstance(value, Sequence) and value:  # a list of messages
            flat[f"{prefix}{name}"] = str(value[0])
    return flat


def input_error(error: InputError, fields: Sequence[Field]) -> dict[str, str]:
    """A refusal of ``annotation.creation`` placed on the input it names (or on the form)."""
    names = {f.name for f in fields}
    for name in (error.field, f"task.{error.field}"):
        if name in names:
            return {name: error.message}
    return {"form": f"{error.field}: {error.message}"}


def with_errors(fields: Sequence[Field], errors: Mapping[str, str]) -> list[Field]:
    return [replace(f, error=errors.get(f.name, "")) for f in fields]
