"""API for crowdworkers: ``/api/work/…`` with their session token in ``X-Worker-Token``.

One view per step of the survey. Refusals are ``InputError``s raised by the services and the
qualification check, answered by ``config.errors.exception_handler``.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services, survey
from ..models import CrowdSession, CrowdTask
from ..tokens import session_from_token
from ..validation import InputError
from ..work_queue import claim_next


class WorkerTokenAuthentication(BaseAuthentication):
    """``X-Worker-Token: <signed crowd-session token>``; ``request.auth`` is the session."""

    keyword = "X-Worker-Token"

    def authenticate(self, request):
        token = request.headers.get(self.keyword)
        if token is None:
            return None
        session = session_from_token(token)
        if session is None:
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


class WorkerView(APIView):
    authentication_classes = [WorkerTokenAuthentication]
    permission_classes = [IsCrowdWorker]

    def check_qualified(self, session: CrowdSession) -> None:
        """Refuse a session that may not annotate (yet): wrong kind of task, no consent, quiz."""
        if session.task.kind != CrowdTask.Kind.ANNOTATION:
            raise InputError("task", "this task is a game round, not an annotation batch")
        if not selectors.has_consented(session):
            raise InputError("consent", "consent is required first", status=403)
        if selectors.quiz_status(session) != "passed":
            raise InputError("quiz", "the qualification quiz must be passed first", status=403)

    def state(self, session: CrowdSession, **extra) -> Response:
        session.refresh_from_db(fields=["status"])
        assignment = selectors.current_assignment(session)
        return Response({**selectors.worker_state(session, assignment), **extra})


def json_object(request: Request) -> dict:
    if not isinstance(request.data, dict):
        raise InputError("body", "must be a JSON object")
    return request.data


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
        self.check_qualified(request.auth)
        return self.state(request.auth)


class WorkNext(WorkerView):
    @extend_schema(request=None, responses=STATE, summary="Claim the next game (or resume)")
    def post(self, request: Request) -> Response:
        session = request.auth
        self.check_qualified(session)
        if session.status != CrowdSession.Status.COMPLETED:
            claim_next(session)
        return self.state(session)


class AnswerSerializer(serializers.Serializer):
    """The input of an answer, for the schema: ``annotation.survey.submit_answer`` checks it
    with messages that name the step."""

    assignment = serializers.IntegerField()
    turn = serializers.IntegerField()
    phase = serializers.IntegerField()
    action = serializers.CharField(required=False, allow_blank=True)
    satisfaction = serializers.CharField(required=False, allow_blank=True)


class WorkAnswer(WorkerView):
    @extend_schema(request=AnswerSerializer, responses=STATE, summary="Answer one survey step")
    def post(self, request: Request) -> Response:
        # Assignments exist only for qualified workers (claims check), so no check here.
        session = request.auth
        result = survey.submit_answer(session, json_object(request))
        state = selectors.worker_state(
            session, result.assignment, turns=result.turns, answers=result.answers
        )
        return Response({**state, "duplicate": result.duplicate})


class SubmitSerializer(serializers.Serializer):
    """The input of a submission, for the schema: ``annotation.survey.submit_game`` checks it."""

    assignment = serializers.IntegerField()
    comment = serializers.CharField(required=False, allow_blank=True)


class WorkSubmit(WorkerView):
    @extend_schema(request=SubmitSerializer, responses=STATE, summary="Submit a finished game")
    def post(self, request: Request) -> Response:
        session = request.auth
        result = survey.submit_game(session, json_object(request))
        services.continue_session(session)
        return self.state(session, duplicate=result.duplicate)


class WorkComplete(WorkerView):
    @extend_schema(request=None, responses=STATE, summary="Finish early when no work is left")
    def post(self, request: Request) -> Response:
        session = request.auth
        self.check_qualified(session)
        services.finish_early(session)
        return self.state(session)
