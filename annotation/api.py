"""REST API (DRF) for what the pages do, so studies can be scripted.

- crowdworkers: ``/api/work/…`` with their session token in ``X-Worker-Token``;
- researchers: batches, progress, gold games, quizzes, game-round tasks;
- admins: agreement exports, payments, bonuses, MTurk payment.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from games.models import Game, Round, Study
from games.roles import IsAdmin, IsResearcher, signed_in_user

from . import mturk, selectors, services
from .models import AnnotationBatch, Bonus, CrowdSession, CrowdTask, Quiz, QuizQuestion
from .tokens import session_from_token
from .validation import InputError, free_text

# --- authentication of crowdworkers --------------------------------------------------------


class WorkerTokenAuthentication(BaseAuthentication):
    """``X-Worker-Token: <signed crowd-session token>``; ``request.auth`` is the session."""

    keyword = "X-Worker-Token"

    def authenticate(self, request):
        token = request.headers.get(self.keyword)
        if token is None:
            return None
        session = session_from_token(token)
        if session is None:
            from rest_framework.exceptions import AuthenticationFailed

            raise AuthenticationFailed("The worker token is not valid.")
        return AnonymousUser(), session

    def authenticate_header(self, request) -> str:
        return self.keyword


class WorkerTokenScheme(OpenApiAuthenticationExtension):
    target_class = WorkerTokenAuthentication
    name = "workerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": WorkerTokenAuthentication.keyword}


class IsCrowdWorker(BasePermission):
    message = "Only a crowdworker with a valid session token may do this."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, CrowdSession)


def refused(error: InputError) -> Response:
    return Response({"error": error.message, "field": error.field}, status=error.status)


class WorkerView(APIView):
    authentication_classes = [WorkerTokenAuthentication]
    permission_classes = [IsCrowdWorker]

    @staticmethod
    def crowd_session(request: Request) -> CrowdSession:
        """The session ``WorkerTokenAuthentication`` put in ``request.auth`` (``IsCrowdWorker``
        has already refused requests without one)."""
        if not isinstance(request.auth, CrowdSession):
            raise PermissionDenied(IsCrowdWorker.message)
        return request.auth

    def qualified(self, session: CrowdSession) -> InputError | None:
        if session.task.kind != CrowdTask.Kind.ANNOTATION:
            return InputError("task", "this task is a game round, not an annotation batch")
        if not selectors.has_consented(session):
            return InputError("consent", "consent is required first", status=403)
        if selectors.quiz_status(session) != "passed":
            return InputError("quiz", "the qualification quiz must be passed first", status=403)
        return None

    def state(self, session: CrowdSession, **extra) -> Response:
        session.refresh_from_db(fields=["status"])
        assignment = (
            session.worker.assignments.filter(batch=session.task.batch_id, status="active")
            .select_related("item__game__config", "batch")
            .first()
            if session.status != CrowdSession.Status.COMPLETED
            else None
        )
        return Response({**selectors.worker_state(session, assignment), **extra})


STATE = inline_serializer(
    "WorkerState",
    {
        "status": serializers.ChoiceField(
            ["annotating", "review", "can_complete", "no_work", "complete"]
        ),
        "games_done": serializers.IntegerField(),
        "games_per_session": serializers.IntegerField(),
        "game": serializers.DictField(required=False),
        "completion": serializers.DictField(required=False),
    },
)


class WorkState(WorkerView):
    @extend_schema(responses=STATE, summary="The worker's current state (no side effects)")
    def get(self, request: Request) -> Response:
        session = self.crowd_session(request)
        error = self.qualified(session)
        return refused(error) if error else self.state(session)


class WorkNext(WorkerView):
    @extend_schema(request=None, responses=STATE, summary="Claim the next game (or resume)")
    def post(self, request: Request) -> Response:
        session = self.crowd_session(request)
        error = self.qualified(session)
        if error:
            return refused(error)
        if session.status != CrowdSession.Status.COMPLETED:
            services.claim_next(session)
        return self.state(session)


class AnswerSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    turn = serializers.IntegerField()
    phase = serializers.IntegerField()
    action = serializers.CharField(required=False, allow_blank=True)
    satisfaction = serializers.CharField(required=False, allow_blank=True)


class WorkAnswer(WorkerView):
    @extend_schema(request=AnswerSerializer, responses=STATE, summary="Answer one survey step")
    def post(self, request: Request) -> Response:
        # Assignments exist only for qualified workers (claims check), so no check here.
        session = self.crowd_session(request)
        if not isinstance(request.data, dict):
            return refused(InputError("body", "must be a JSON object"))
        try:
            result = services.submit_answer(session, request.data)
        except InputError as error:
            return refused(error)
        state = selectors.worker_state(
            session, result.assignment, turns=result.turns, answers=result.answers
        )
        return Response({**state, "duplicate": result.duplicate})


class SubmitSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    comment = serializers.CharField(required=False, allow_blank=True)


class WorkSubmit(WorkerView):
    @extend_schema(request=SubmitSerializer, responses=STATE, summary="Submit a finished game")
    def post(self, request: Request) -> Response:
        session = self.crowd_session(request)
        if not isinstance(request.data, dict):
            return refused(InputError("body", "must be a JSON object"))
        try:
            result = services.submit_game(session, request.data)
        except InputError as error:
            return refused(error)
        if selectors.games_done(session) >= session.task.games_per_session:
            services.complete_session(session)
        elif session.status != CrowdSession.Status.COMPLETED:
            services.claim_next(session)
        return self.state(session, duplicate=result.duplicate)


class WorkComplete(WorkerView):
    @extend_schema(request=None, responses=STATE, summary="Finish early when no work is left")
    def post(self, request: Request) -> Response:
        session = self.crowd_session(request)
        error = self.qualified(session)
        if error:
            return refused(error)
        if session.status != CrowdSession.Status.COMPLETED:
            if not selectors.games_done(session):
                return refused(InputError("session", "submit at least one game first"))
            if services.claim_next(session) is not None:
                return refused(InputError("session", "finish your current game first", status=409))
            services.complete_session(session)
        return self.state(session)


# --- researchers ---------------------------------------------------------------------------


class TaskOptionsSerializer(serializers.Serializer):
    quiz = serializers.PrimaryKeyRelatedField(queryset=Quiz.objects.all(), required=False)
    consent_text = serializers.CharField(required=False, max_length=20000)
    guidelines = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    games_per_session = serializers.IntegerField(required=False, min_value=1, max_value=100)
    prolific_study_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    prolific_completion_code = serializers.CharField(
        required=False, allow_blank=True, max_length=64
    )
    mturk_sandbox = serializers.BooleanField(required=False)
    mturk_title = serializers.CharField(required=False, allow_blank=True, max_length=128)
    mturk_description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    mturk_reward = serializers.DecimalField(
        required=False, max_digits=6, decimal_places=2, min_value=Decimal("0.01")
    )
    mturk_max_assignments = serializers.IntegerField(required=False, min_value=1)


class BatchCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    study = serializers.PrimaryKeyRelatedField(queryset=Study.objects.all())
    round = serializers.IntegerField(min_value=0)
    system = serializers.CharField(max_length=40)
    games = serializers.IntegerField(required=False, min_value=1)
    turns = serializers.IntegerField(required=False, min_value=1)
    redundancy_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    redundancy_count = serializers.IntegerField(required=False, min_value=2, max_value=20)
    gold_interval = serializers.IntegerField(required=False, min_value=0, max_value=100)
    timeout_minutes = serializers.IntegerField(required=False, min_value=1, max_value=1440)
    seed = serializers.IntegerField(required=False)
    task = TaskOptionsSerializer(required=False)


def batch_summary(batch: AnnotationBatch, request: Request) -> dict[str, object]:
    task = selectors.task_for(batch)
    data: dict[str, object] = {
        "id": batch.pk,
        "name": batch.name,
        "study": batch.study_id,
        "round": batch.round.index,
        "system": batch.system.name,
        "redundancy_fraction": batch.redundancy_fraction,
        "redundancy_count": batch.redundancy_count,
        "gold_interval": batch.gold_interval,
        "is_open": batch.is_open,
        "progress": selectors.batch_progress(batch),
    }
    if task is not None:
        data["task"] = {
            "key": task.key,
            "prolific_url": request.build_absolute_uri(
                reverse("annotation:prolific", kwargs={"key": task.key})
            ),
            "mturk_url": request.build_absolute_uri(
                reverse("annotation:mturk", kwargs={"key": task.key})
            ),
        }
    return data


class BatchList(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="Annotation batches", operation_id="batches_list"
    )
    def get(self, request: Request) -> Response:
        batches = AnnotationBatch.objects.select_related("round", "system")
        return Response([batch_summary(b, request) for b in batches])

    @extend_schema(request=BatchCreateSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        form = BatchCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        task_options = dict(data.pop("task", {}))
        try:
            batch = services.create_batch(
                study=data.pop("study"),
                round_index=data.pop("round"),
                system_name=data.pop("system"),
                created_by=request.user,
                task_options=task_options,
                **data,
            )
        except InputError as error:
            return refused(error)
        return Response(batch_summary(batch, request), status=status.HTTP_201_CREATED)


class BatchDetail(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Progress and gold accuracy")
    def get(self, request: Request, pk: int) -> Response:
        batch = get_object_or_404(AnnotationBatch.objects.select_related("round", "system"), pk=pk)
        data = batch_summary(batch, request)
        data["gold_accuracy"] = [
            {
                "worker": row.worker_hash,
                "turns": row.turns,
                "action_accuracy": row.action_accuracy,
                "satisfaction_accuracy": row.satisfaction_accuracy,
            }
            for row in selectors.gold_accuracy(batch)
        ]
        return Response(data)


class GoldSerializer(serializers.Serializer):
    game = serializers.CharField(help_text="the game's external id in the batch's study")
    answers = serializers.ListField(child=serializers.DictField(), max_length=100)


class BatchGold(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=GoldSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        batch = get_object_or_404(AnnotationBatch, pk=pk)
        form = GoldSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        game = Game.objects.filter(
            study=batch.study, external_id=form.validated_data["game"]
        ).first()
        if game is None:
            return refused(InputError("game", "no such game in the batch's study", status=404))
        try:
            item = services.add_gold_game(batch, game, form.validated_data["answers"])
        except InputError as error:
            return refused(error)
        return Response({"item": item.pk, "position": item.position}, status=201)


class QuestionSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=2000)
    choices = serializers.ListField(
        child=serializers.CharField(max_length=500), min_length=2, max_length=10
    )
    correct_choice = serializers.IntegerField(min_value=0)


class QuizSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    instructions = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    pass_mark = serializers.IntegerField(min_value=0, max_value=100)
    max_attempts = serializers.IntegerField(required=False, min_value=1, max_value=20)
    # DRF passes min_length and max_length on to the ListSerializer; the stubs lack them.
    questions = QuestionSerializer(many=True, min_length=1, max_length=50)  # type: ignore[call-arg]


class QuizList(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=QuizSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        form = QuizSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            texts = [
                free_text("name", data["name"]),
                free_text("instructions", data.get("instructions", "")),
            ]
            for n, q in enumerate(data["questions"]):
                free_text(f"questions[{n}].text", q["text"])
                for c, choice in enumerate(q["choices"]):
                    free_text(f"questions[{n}].choices[{c}]", choice)
                if q["correct_choice"] >= len(q["choices"]):
                    raise InputError(f"questions[{n}].correct_choice", "is not one of the choices")
        except InputError as error:
            return refused(error)
        if Quiz.objects.filter(name=texts[0]).exists():
            return refused(InputError("name", "a quiz with this name exists"))
        with transaction.atomic():
            quiz = Quiz.objects.create(
                name=texts[0],
                instructions=texts[1],
                pass_mark=data["pass_mark"],
                max_attempts=data.get("max_attempts", 3),
            )
            QuizQuestion.objects.bulk_create(
                QuizQuestion(quiz=quiz, position=n, **q) for n, q in enumerate(data["questions"])
            )
        return Response({"id": quiz.pk, "name": quiz.name}, status=201)


class GameTaskSerializer(TaskOptionsSerializer):
    name = serializers.CharField(max_length=120)
    round = serializers.PrimaryKeyRelatedField(queryset=Round.objects.all())


class GameTaskCreate(APIView):
    """A crowd task for a game round: arrival, consent and quiz here, then the games lobby."""

    permission_classes = [IsResearcher]

    @extend_schema(request=GameTaskSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        form = GameTaskSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        try:
            task = services.create_task(
                name=free_text("name", data.pop("name")), round_=data.pop("round"), **data
            )
        except InputError as error:
            return refused(error)
        return Response({"id": task.pk, "key": task.key}, status=201)


# --- admins --------------------------------------------------------------------------------

ANSWER_COLUMNS = [
    "game",
    "turn",
    "listener_action",
    "worker",
    "action",
    "correct",
    "satisfaction",
    "phase1_seconds",
    "phase2_seconds",
]


def csv_response(rows: list[list[object]], header: list[str], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def statistics_rows(statistics: dict[str, dict]) -> list[list[object]]:
    """One row per statistic (long format); Cohen's κ rows name their two raters."""
    rows: list[list[object]] = []
    for dimension, stats in statistics.items():
        for name, items in (
            ("percent_all_agree", stats["items"]),
            ("fleiss_kappa", stats["fleiss_items"]),
            ("krippendorff_alpha", stats["items"]),
        ):
            rows.append([dimension, name, "", items, "" if stats[name] is None else stats[name]])
        for pair in stats["cohen_kappa_pairs"]:
            kappa = pair["cohen_kappa"]
            raters = " ".join(pair["raters"])
            rows.append(
                [dimension, "cohen_kappa", raters, pair["items"], "" if kappa is None else kappa]
            )
    return rows


class BatchAgreement(APIView):
    """Turns annotated by several workers, their answers, and the agreement statistics."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[
            OpenApiParameter("as", str, enum=["json", "csv", "statistics.csv"], required=False)
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, pk: int):
        batch = get_object_or_404(AnnotationBatch, pk=pk)
        report = selectors.agreement_report(batch)
        kind = request.query_params.get("as", "json")
        if kind == "json":
            return Response(report)
        if kind == "csv":
            rows = [
                [item["game"], item["turn"], item["listener_action"]]
                + [a[c] for c in ANSWER_COLUMNS[3:]]
                for item in report["items"]
                for a in item["answers"]
            ]
            return csv_response(rows, ANSWER_COLUMNS, f"agreement-batch-{batch.pk}-answers.csv")
        if kind == "statistics.csv":
            return csv_response(
                statistics_rows(report["statistics"]),
                ["dimension", "statistic", "raters", "items", "value"],
                f"agreement-batch-{batch.pk}-statistics.csv",
            )
        return refused(InputError("as", "must be json, csv or statistics.csv"))


class Payments(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Pay per worker (hashed ids only)")
    def get(self, request: Request):
        rows = [
            {
                "worker": row.worker_hash,
                "platform": row.platform,
                "turns": row.turns,
                "error_turns": row.error_turns,
                "annotation": str(row.annotation),
                "bonuses": str(row.bonuses),
                "games": str(row.games),
                "total": str(row.total),
                "paid": str(row.paid),
                "outstanding": str(row.outstanding),
                "sessions": row.sessions,
            }
            for row in selectors.payments_by_worker()
        ]
        if request.query_params.get("as") == "csv":
            header = [k for k in rows[0] if k != "sessions"] if rows else ["worker"]
            return csv_response(
                [[r[k] for k in header] for r in rows], header, "annotation-payments.csv"
            )
        return Response(rows)


class BonusSerializer(serializers.Serializer):
    session = serializers.PrimaryKeyRelatedField(queryset=CrowdSession.objects.all())
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=Decimal("0.01"))
    reason = serializers.CharField(max_length=200)


class BonusCreate(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=BonusSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        form = BonusSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            reason = free_text("reason", data["reason"], max_chars=200)
        except InputError as error:
            return refused(error)
        bonus = Bonus.objects.create(
            worker=data["session"].worker,
            session=data["session"],
            amount=data["amount"],
            reason=reason,
            created_by=signed_in_user(request),
        )
        return Response({"id": bonus.pk, "amount": str(bonus.amount)}, status=201)


class SessionPay(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, summary="Pay via MTurk")
    def post(self, request: Request, pk: int) -> Response:
        session = get_object_or_404(CrowdSession, pk=pk)
        try:
            payouts = mturk.approve_and_pay(session)
        except InputError as error:
            return refused(error)
        return Response(
            [{"kind": p.kind, "amount": str(p.amount), "status": p.status} for p in payouts]
        )
