"""MTurk calls through boto3, checked with botocore's Stubber (no network)."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from annotation import mturk, services
from annotation.models import Bonus, MTurkHIT, Payout
from annotation.validation import InputError

from .conftest import annotate, make_batch

pytestmark = pytest.mark.django_db
SANDBOX = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"


@pytest.fixture
def client():
    mturk_client = boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=SANDBOX,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(mturk_client) as stubber:
        yield mturk_client, stubber
        stubber.assert_no_pending_responses()


def test_clients_use_the_endpoint_of_the_mode(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert mturk.client(True).meta.endpoint_url == SANDBOX
    assert (
        mturk.client(False).meta.endpoint_url == "https://mturk-requester.us-east-1.amazonaws.com"
    )


def test_create_hit_sends_the_external_question(system, client):
    mturk_client, stubber = client
    batch = make_batch(system, 1)
    task = batch.task
    task.mturk_title, task.mturk_reward, task.mturk_max_assignments = "Survey", Decimal("0.50"), 9
    task.save()
    url = f"https://respect.example/annotation/mturk/{task.key}/"
    stubber.add_response(
        "create_hit",
        {"HIT": {"HITId": "HIT123", "HITTypeId": "TYPE1"}},
        {
            "Title": "Survey",
            "Description": "batch",
            "Keywords": "annotation, research",
            "Reward": "0.50",
            "MaxAssignments": 9,
            "LifetimeInSeconds": 259200,
            "AssignmentDurationInSeconds": 3600,
            "AutoApprovalDelayInSeconds": 259200,
            "Question": (
                '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/'
                'AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">'
                f"<ExternalURL>{url}</ExternalURL><FrameHeight>0</FrameHeight>"
                "</ExternalQuestion>"
            ),
            "QualificationRequirements": [],
        },
    )
    hit = mturk.create_hit(task, url, mturk=mturk_client)
    assert (hit.hit_id, hit.hit_type_id, hit.sandbox, hit.reward) == (
        "HIT123",
        "TYPE1",
        True,
        Decimal("0.50"),
    )


def test_create_hit_needs_https_and_reports_failures(system, client):
    mturk_client, stubber = client
    task = make_batch(system, 1).task
    with pytest.raises(InputError, match="https"):
        mturk.create_hit(task, "http://insecure.example/", mturk=mturk_client)
    stubber.add_client_error("create_hit", "ServiceFault", "try later")
    with pytest.raises(InputError) as caught:
        mturk.create_hit(task, "https://ok.example/", mturk=mturk_client)
    assert caught.value.status == 502
    assert not MTurkHIT.objects.exists()


@pytest.fixture
def finished_session(system):
    """An MTurk session with one submitted 3-turn game: two plain turns, one error turn."""
    batch = make_batch(system, 1)
    session = services.arrive(
        batch.task,
        platform="mturk",
        worker_id="AWORKER9",
        session_id="ASSIGN9",
        study_id="HIT9",
        turk_submit_to="https://workersandbox.mturk.com",
    )
    annotate(session, [("select A", "yes"), ("select B", "no"), ("select C", None)])
    services.complete_session(session)
    return session


def test_approve_and_bonus_pay_the_per_turn_rates_once(finished_session, client):
    mturk_client, stubber = client
    session = finished_session
    Bonus.objects.create(
        worker=session.worker, session=session, amount=Decimal("0.25"), reason="careful"
    )
    # 0.06 + 0.08 (turn 1: "no") + 0.06 = 0.20, plus 0.25 bonus, less the 0.10 HIT reward
    stubber.add_response(
        "approve_assignment",
        {},
        {
            "AssignmentId": "ASSIGN9",
            "RequesterFeedback": "Thank you for your careful work.",
            "OverrideRejection": False,
        },
    )
    stubber.add_response(
        "send_bonus",
        {},
        {
            "WorkerId": "AWORKER9",
            "BonusAmount": "0.35",
            "AssignmentId": "ASSIGN9",
            "Reason": "Pay per annotated turn in the tangram survey.",
            "UniqueRequestToken": f"bonus-{session.pk}-1",
        },
    )
    payouts = mturk.approve_and_pay(session, mturk=mturk_client)
    assert [(p.kind, p.amount, p.status) for p in payouts] == [
        ("approval", Decimal("0.10"), "done"),
        ("bonus", Decimal("0.35"), "done"),
    ]
    assert mturk.approve_and_pay(session, mturk=mturk_client) == []  # nothing more to pay


def test_a_failed_bonus_is_recorded_without_the_worker_id_and_retried_with_its_token(
    finished_session, client
):
    mturk_client, stubber = client
    session = finished_session
    stubber.add_response("approve_assignment", {}, None)
    stubber.add_client_error("send_bonus", "RequestError", "worker AWORKER9 is blocked")
    [approval, bonus] = mturk.approve_and_pay(session, mturk=mturk_client)
    assert (approval.status, bonus.status) == ("done", "failed")
    assert "AWORKER9" not in bonus.error and "<worker>" in bonus.error
    stubber.add_response(
        "send_bonus",
        {},
        {
            "WorkerId": "AWORKER9",
            "BonusAmount": "0.10",
            "AssignmentId": "ASSIGN9",
            "Reason": "Pay per annotated turn in the tangram survey.",
            "UniqueRequestToken": bonus.request_token,
        },
    )
    [retried] = mturk.approve_and_pay(session, mturk=mturk_client)
    assert (retried.pk, retried.status) == (bonus.pk, "done")
    assert Payout.objects.filter(status="done").count() == 2


def test_only_completed_mturk_sessions_are_paid(system, client):
    mturk_client, _ = client
    batch = make_batch(system, 1)
    prolific = services.arrive(
        batch.task, platform="prolific", worker_id="P1", session_id="S1", study_id="X"
    )
    with pytest.raises(InputError, match="only MTurk"):
        mturk.approve_and_pay(prolific, mturk=mturk_client)
    open_session = services.arrive(
        batch.task,
        platform="mturk",
        worker_id="W",
        session_id="A",
        study_id="H",
        turk_submit_to="https://workersandbox.mturk.com",
    )
    with pytest.raises(InputError, match="not completed"):
        mturk.approve_and_pay(open_session, mturk=mturk_client)
