"""JSON API of training runs (researchers): launch one with the pages' form and the service's
refusals, and read one. A form error is a 400 naming each field; a refusal of
``launch_training_run`` (``training_refusal`` first) is a 400 ``{"error", "field"}`` through the
project's exception handler."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from games.models import Study
from games.roles import IsResearcher

from .models import TrainingRun
from .training import runs
from .training.forms import TrainingLaunchForm


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "study",
            "round_index",
            "system_name",
            "objective",
            "base_checkpoint",
            "hyperparameters",
            "status",
            "seed_index",
            "epoch",
            "step",
            "total_steps",
            "loss",
            "selected",
            "output_adapter",
            "error",
            "queued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingLaunchSerializer(serializers.Serializer):
    """The schema of the launch form (``TrainingLaunchForm`` validates the request)."""

    round_index = serializers.IntegerField(min_value=0)
    system_name = serializers.CharField(max_length=40)
    objective = serializers.ChoiceField(choices=["", "fft", "rl", "kto"], required=False)
    base = serializers.CharField(max_length=600, required=False, allow_blank=True)
    preset = serializers.ChoiceField(choices=["paper", "tiny"], required=False)
    epochs = serializers.IntegerField(min_value=1, max_value=200, required=False)
    seeds = serializers.IntegerField(min_value=1, max_value=10, required=False)


class StudyTrainingRunsView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=TrainingLaunchSerializer, responses={202: TrainingRunSerializer})
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        form = TrainingLaunchForm(request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        run = runs.launch_training_run(study, user=request.user, **form.launch_arguments())
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses=TrainingRunSerializer)
    def get(self, request, pk: int):
        return Response(TrainingRunSerializer(get_object_or_404(TrainingRun, pk=pk)).data)
