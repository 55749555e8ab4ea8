"""API for researchers: annotation batches, their progress and gold games, quizzes, and crowd
tasks for game rounds.

The creation serializers are shared with the researcher pages (``annotation.researcher_views``),
so both accept and refuse the same input. Refusals of the services are ``InputError``s, answered
by ``config.errors.exception_handler``.
"""

from __future__ import annotations

from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.db_ranges import BIGINT_MAX, BIGINT_MIN, INT_MAX, SMALLINT_MAX
from games.models import Round, Study
from games.roles import IsResearcher

from .. import creation, gold, selectors
from ..models import AnnotationBatch, CrowdTask, Currency, Quiz
from ..validation import InputError


def amount_field(**options) -> serializers.DecimalField:
    """An amount of money in the task's currency (two decimals, not negative)."""
    return serializers.DecimalField(
        required=False, max_digits=6, decimal_places=2, min_value=Decimal("0"), **options
    )


class TaskOptionsSerializer(serializers.Serializer):
    """Settings of a crowd task. The researcher pages post the same fields as HTML forms."""

    quiz = serializers.PrimaryKeyRelatedField(queryset=Quiz.objects.all(), required=False)
    consent_text = serializers.CharField(required=False, max_length=20000)
    guidelines = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    games_per_session = serializers.IntegerField(required=False, min_value=1, max_value=100)
    platform = serializers.ChoiceField(CrowdTask.Platform.choices, required=False)
    currency = serializers.ChoiceField(Currency.choices, required=False)
    prolific_study_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    prolific_completion_code = serializers.CharField(
        required=False, allow_blank=True, max_length=64
    )
    mturk_sandbox = serializers.BooleanField(required=False, default=True)
    mturk_title = serializers.CharField(required=False, allow_blank=True, max_length=128)
    mturk_description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    mturk_reward = serializers.DecimalField(
        required=False, max_digits=6, decimal_places=2, min_value=Decimal("0.01")
    )
    mturk_max_assignments = serializers.IntegerField(required=False, min_value=1, max_value=INT_MAX)


class BatchCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    study = serializers.PrimaryKeyRelatedField(queryset=Study.objects.all())
    round = serializers.IntegerField(min_value=0, max_value=SMALLINT_MAX)
    system = serializers.CharField(max_length=40)
    games = serializers.IntegerField(required=False, min_value=1, max_value=INT_MAX)
    turns = serializers.IntegerField(required=False, min_value=1, max_value=INT_MAX)
    redundancy_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    redundancy_count = serializers.IntegerField(required=False, min_value=2, max_value=20)
    gold_interval = serializers.IntegerField(required=False, min_value=0, max_value=100)
    timeout_minutes = serializers.IntegerField(required=False, min_value=1, max_value=1440)
    seed = serializers.IntegerField(required=False, min_value=BIGINT_MIN, max_value=BIGINT_MAX)
    pay_per_turn = amount_field()
    pay_per_error_turn = amount_field()
    pay_per_game = amount_field()
    pay_per_minute = amount_field()
    task = TaskOptionsSerializer(required=False)


def create_validated_batch(data: dict, user) -> AnnotationBatch:
    """Create a batch from ``BatchCreateSerializer.validated_data`` (the API and the page)."""
    data = dict(data)
    return creation.create_batch(
        study=data.pop("study"),
        round_index=data.pop("round"),
        system_name=data.pop("system"),
        created_by=user,
        task_options=dict(data.pop("task", {})),
        **data,
    )


def create_validated_game_task(data: dict) -> CrowdTask:
    """Create a game task from ``GameTaskSerializer.validated_data`` (the API and the page)."""
    data = dict(data)
    return creation.create_game_task(name=data.pop("name"), round_=data.pop("round"), **data)


def batch_summary(batch: AnnotationBatch, request: Request) -> dict[str, object]:
    """The output of a batch: its settings, progress and, when it has one, its task's links."""
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
    """Lists batches (GET) and creates one (POST): one URL, the two uses of a collection."""

    permission_classes = [IsResearcher]

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="Annotation batches", operation_id="batches_list"
    )
    def get(self, request: Request) -> Response:
        return Response([batch_summary(b, request) for b in selectors.batches()])

    @extend_schema(request=BatchCreateSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        form = BatchCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = create_validated_batch(form.validated_data, request.user)
        return Response(batch_summary(batch, request), status=status.HTTP_201_CREATED)


class GoldAccuracySerializer(serializers.Serializer):
    worker = serializers.CharField(source="worker_hash")
    turns = serializers.IntegerField()
    action_accuracy = serializers.FloatField()
    satisfaction_accuracy = serializers.FloatField()


class BatchDetail(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Progress and gold accuracy")
    def get(self, request: Request, pk: int) -> Response:
        batch = get_object_or_404(selectors.batches(), pk=pk)
        data = batch_summary(batch, request)
        data["gold_accuracy"] = GoldAccuracySerializer(
            selectors.gold_accuracy(batch), many=True
        ).data
        return Response(data)


class GoldSerializer(serializers.Serializer):
    game = serializers.CharField(help_text="the game's external id in the batch's study")
    answers = serializers.ListField(child=serializers.DictField(), max_length=100)


class GoldItemSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="pk")
    position = serializers.IntegerField()


class BatchGold(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=GoldSerializer, responses={201: GoldItemSerializer})
    def post(self, request: Request, pk: int) -> Response:
        batch = get_object_or_404(AnnotationBatch, pk=pk)
        form = GoldSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        game = selectors.study_game(batch, form.validated_data["game"])
        if game is None:
            raise InputError("game", "no such game in the batch's study", status=404)
        item = gold.add_gold_game(batch, game, form.validated_data["answers"])
        return Response(GoldItemSerializer(item).data, status=201)


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
    # many=True hands min_length and max_length to the ListSerializer (DRF's
    # LIST_SERIALIZER_KWARGS); the stubs' Serializer.__init__ does not list them.
    questions = QuestionSerializer(many=True, min_length=1, max_length=50)  # type: ignore[call-arg]


class CreatedQuizSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()


class QuizList(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=QuizSerializer, responses={201: CreatedQuizSerializer})
    def post(self, request: Request) -> Response:
        form = QuizSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        quiz = creation.create_quiz(**form.validated_data)
        return Response(CreatedQuizSerializer(quiz).data, status=201)


class GameTaskSerializer(TaskOptionsSerializer):
    name = serializers.CharField(max_length=120)
    round = serializers.PrimaryKeyRelatedField(queryset=Round.objects.all())
    pay_per_game = amount_field(help_text="sets the study's base pay per game")
    pay_per_minute = amount_field(help_text="sets the study's waiting pay per minute")


class CreatedTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    key = serializers.CharField()


class GameTaskCreate(APIView):
    """A crowd task for a game round: arrival, consent and quiz here, then the games lobby."""

    permission_classes = [IsResearcher]

    @extend_schema(request=GameTaskSerializer, responses={201: CreatedTaskSerializer})
    def post(self, request: Request) -> Response:
        form = GameTaskSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        task = create_validated_game_task(form.validated_data)
        return Response(CreatedTaskSerializer(task).data, status=201)
