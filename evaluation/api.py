"""JSON API of metric runs (researchers): list and start a study's runs, read one run."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import services
from evaluation.forms import MAX_WEB_RESAMPLES
from evaluation.models import MetricRun
from evaluation.stats.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from games.models import Study
from games.roles import IsResearcher


class MetricRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricRun
        fields = [
            "id",
            "study",
            "status",
            "progress",
            "message",
            "resamples",
            "seed",
            "confidence",
            "method",
            "conventions",
            "parameters",
            "code_version",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class MetricRunDetailSerializer(MetricRunSerializer):
    class Meta(MetricRunSerializer.Meta):
        fields = [*MetricRunSerializer.Meta.fields, "data_stamp", "results"]
        read_only_fields = fields


class MetricRunRequestSerializer(serializers.Serializer):
    resamples = serializers.IntegerField(
        min_value=1, max_value=MAX_WEB_RESAMPLES, default=DEFAULT_RESAMPLES
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**62, default=0)
    confidence = serializers.FloatField(min_value=0.5, max_value=0.999, default=DEFAULT_CONFIDENCE)
    method = serializers.ChoiceField(
        choices=MetricRun.Method.values,
        allow_null=True,
        default=None,
        help_text="default: the conventions' interval method (bca; paper: percentile)",
    )
    conventions = serializers.ChoiceField(
        choices=MetricRun.Conventions.values, default=MetricRun.Conventions.PLATFORM
    )


class StudyRunsView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses=MetricRunSerializer(many=True))
    def get(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        runs = MetricRun.objects.filter(study=study).order_by("-created_at", "-id")[:50]
        return Response(MetricRunSerializer(runs, many=True).data)

    @extend_schema(request=MetricRunRequestSerializer, responses=MetricRunSerializer)
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        form = MetricRunRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        run, created = services.request_metric_run(study, user=request.user, **form.validated_data)
        return Response(
            MetricRunSerializer(run).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )


class RunDetailView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses=MetricRunDetailSerializer)
    def get(self, request, run_id: int):
        run = get_object_or_404(MetricRun, pk=run_id)
        return Response(MetricRunDetailSerializer(run).data)
