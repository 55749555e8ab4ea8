"""The one application error: DRF views answer it through the project's exception handler."""

from __future__ import annotations

from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from annotation.validation import InputError
from config.errors import ApplicationError, message_for


class Refusing(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    error = ApplicationError("set by as_view")

    def get(self, request):
        raise self.error


def answer(error: ApplicationError):
    response = Refusing.as_view(error=error)(APIRequestFactory().get("/"))
    return response.status_code, response.data


def test_an_application_error_is_answered_with_its_message_field_status_and_extra():
    error = ApplicationError("the run is busy", status=409, extra={"run": 7})
    assert answer(error) == (409, {"error": "the run is busy", "field": None, "run": 7})


def test_an_input_error_is_answered_as_the_api_always_did():
    error = InputError("assignment", "is not a game assigned to you", status=403)
    assert answer(error) == (403, {"error": "is not a game assigned to you", "field": "assignment"})


def test_pages_word_a_refusal_as_field_then_message():
    assert message_for(InputError("quiz", "no attempts left")) == "quiz: no attempts left"
    assert message_for(ApplicationError("closed")) == "closed"
    assert str(InputError("quiz", "no attempts left")) == "quiz: no attempts left"
