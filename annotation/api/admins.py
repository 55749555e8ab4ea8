"""API for admins: agreement exports, pay per worker, bonuses and paying MTurk sessions.

Refusals are ``InputError``s, answered by ``config.errors.exception_handler``.
"""

from __future__ import annotations

import io
from decimal import Decimal

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from config.csv_cells import SafeWriter
from games.roles import IsAdmin

from .. import earnings, mturk, selectors, services
from ..models import AnnotationBatch, CrowdSession
from ..validation import InputError

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


def csv_response(
    rows: list[list[object]], header: list[str], filename: str, *, empty_reason: str = ""
) -> HttpResponse:
    """A CSV download; without rows, a last comment line (``#``) says why it is empty."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    if not rows and empty_reason:
        buffer.write(f"# {empty_reason}\r\n")  # a comment line, as csv.writer ends its lines
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


NO_AGREEMENT_ITEMS = (
    "No turn of this batch has answers from several annotators yet, so there is no agreement "
    "to export (a batch measures agreement on its redundancy fraction of turns)."
)


AGREEMENT_FORMATS = ("json", "csv", "statistics.csv")


class BatchAgreement(APIView):
    """Turns annotated by several workers, their answers, and the agreement statistics."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=list(AGREEMENT_FORMATS), required=False)],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        batch = get_object_or_404(AnnotationBatch, pk=pk)
        kind = request.query_params.get("as", "json")
        if kind not in AGREEMENT_FORMATS:
            raise InputError("as", "must be json, csv or statistics.csv")
        report = selectors.agreement_report(batch)
        empty = "" if report["items"] else NO_AGREEMENT_ITEMS
        if kind == "json":
            response = JsonResponse(
                report | ({"empty_reason": empty} if empty else {}),
                encoder=JSONEncoder,
                json_dumps_params={"indent": 2},
            )
            response["Content-Disposition"] = (
                f'attachment; filename="agreement-batch-{batch.pk}.json"'
            )
            return response
        if kind == "csv":
            rows = [
                [item["game"], item["turn"], item["listener_action"]]
                + [a[c] for c in ANSWER_COLUMNS[3:]]
                for item in report["items"]
                for a in item["answers"]
            ]
            return csv_response(
                rows,
                ANSWER_COLUMNS,
                f"agreement-batch-{batch.pk}-answers.csv",
                empty_reason=empty,
            )
        return csv_response(
            statistics_rows(report["statistics"]),
            ["dimension", "statistic", "raters", "items", "value"],
            f"agreement-batch-{batch.pk}-statistics.csv",
            empty_reason=empty,
        )


class WorkerPaySerializer(serializers.Serializer):
    """A worker's pay; amounts as decimal strings. The CSV has these columns but ``sessions``."""

    worker = serializers.CharField(source="worker_hash")
    platform = serializers.CharField()
    turns = serializers.IntegerField()
    error_turns = serializers.IntegerField()
    annotation = serializers.CharField()
    bonuses = serializers.CharField()
    games = serializers.CharField()
    total = serializers.CharField()
    paid = serializers.CharField()
    outstanding = serializers.CharField()
    sessions = serializers.ListField(child=serializers.IntegerField())


class Payments(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["csv"], required=False)],
        responses=WorkerPaySerializer(many=True),
        summary="Pay per worker (hashed ids only)",
        operation_id="annotation_api_payments_retrieve",
    )
    def get(self, request: Request) -> HttpResponse:
        rows = WorkerPaySerializer(earnings.payments_by_worker(), many=True).data
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


class CreatedBonusSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    amount = serializers.CharField()


class BonusCreate(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=BonusSerializer, responses={201: CreatedBonusSerializer})
    def post(self, request: Request) -> Response:
        form = BonusSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        bonus = services.grant_bonus(data["session"], data["amount"], data["reason"], request.user)
        return Response(CreatedBonusSerializer(bonus).data, status=201)


class PayoutSerializer(serializers.Serializer):
    kind = serializers.CharField()
    amount = serializers.CharField()
    status = serializers.CharField()


class SessionPay(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses=PayoutSerializer(many=True), summary="Pay via MTurk")
    def post(self, request: Request, pk: int) -> Response:
        session = get_object_or_404(CrowdSession, pk=pk)
        return Response(PayoutSerializer(mturk.approve_and_pay(session), many=True).data)
