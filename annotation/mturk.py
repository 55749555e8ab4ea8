"""Amazon Mechanical Turk through boto3: HITs with an ExternalQuestion, approvals, bonuses.

Sandbox or production follows the task's ``mturk_sandbox``. Credentials come from boto3's usual
sources (environment, config files). Each payment is recorded as a ``Payout`` before the call,
with a ``UniqueRequestToken`` derived from it, so a retried payment is never paid twice. Raw
worker ids are decrypted only for the call and never logged or stored in errors.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from xml.sax.saxutils import escape

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction

from games.models import Worker
from games.workers import decrypt_platform_id

from .earnings import session_pay
from .models import CrowdSession, CrowdTask, MTurkHIT, Payout
from .validation import InputError

log = logging.getLogger(__name__)

EXTERNAL_QUESTION = (
    '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/'
    'AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">'
    "<ExternalURL>{url}</ExternalURL><FrameHeight>0</FrameHeight></ExternalQuestion>"
)
# MTurk system qualifications: approval rate, number of approved HITs, locale (appendix A.3).
QUALIFICATIONS = [
    {
        "QualificationTypeId": "000000000000000000L0",
        "Comparator": "GreaterThanOrEqualTo",
        "IntegerValues": [98],
    },
    {
        "QualificationTypeId": "00000000000000000040",
        "Comparator": "GreaterThanOrEqualTo",
        "IntegerValues": [1000],
    },
    {
        "QualificationTypeId": "00000000000000000071",
        "Comparator": "In",
        "LocaleValues": [{"Country": c} for c in ("US", "GB", "CA", "AU", "NZ", "IE")],
    },
]


def client(sandbox: bool):
    """A boto3 MTurk client for the sandbox or production endpoint."""
    mode = "sandbox" if sandbox else "production"
    return boto3.client(
        "mturk", region_name="us-east-1", endpoint_url=settings.ANNOTATION_MTURK_ENDPOINTS[mode]
    )


def external_question(url: str) -> str:
    if not url.startswith("https://"):
        raise InputError("url", "MTurk requires an https ExternalURL")
    return EXTERNAL_QUESTION.format(url=escape(url))


def create_hit(task: CrowdTask, external_url: str, *, mturk=None) -> MTurkHIT:
    """Create a HIT whose question is this task's ExternalQuestion page."""
    question = external_question(external_url)
    mturk = mturk or client(task.mturk_sandbox)
    try:
        response = mturk.create_hit(
            Title=task.mturk_title or task.name,
            Description=task.mturk_description or task.name,
            Keywords=task.mturk_keywords or "annotation, research",
            Reward=f"{task.mturk_reward:.2f}",
            MaxAssignments=task.mturk_max_assignments,
            LifetimeInSeconds=task.mturk_lifetime_seconds,
            AssignmentDurationInSeconds=task.mturk_assignment_seconds,
            AutoApprovalDelayInSeconds=task.mturk_auto_approve_seconds,
            Question=question,
            QualificationRequirements=[] if task.mturk_sandbox else QUALIFICATIONS,
        )
    except (ClientError, BotoCoreError) as error:
        raise InputError("mturk", f"creating the HIT failed: {error}", status=502) from error
    hit = response["HIT"]
    return MTurkHIT.objects.create(
        task=task,
        hit_id=hit["HITId"],
        hit_type_id=hit.get("HITTypeId", ""),
        sandbox=task.mturk_sandbox,
        max_assignments=task.mturk_max_assignments,
        reward=task.mturk_reward,
    )


def _record(session: CrowdSession, kind: str, amount: Decimal, token: str) -> Payout | None:
    """The payout row to send, or None when it was already paid."""
    with transaction.atomic():
        payout, _ = Payout.objects.select_for_update().get_or_create(
            request_token=token, defaults={"session": session, "kind": kind, "amount": amount}
        )
        if payout.status == Payout.Status.DONE:
            return None
        return payout


def _finish(payout: Payout, error: Exception | None, raw_id: str) -> Payout:
    if error is None:
        payout.status, payout.error = Payout.Status.DONE, ""
    else:
        payout.status = Payout.Status.FAILED
        payout.error = str(error).replace(raw_id, "<worker>")[:2000]
        log.warning("MTurk %s payout %s failed", payout.kind, payout.pk)
    payout.save(update_fields=["status", "error", "updated_at"])
    return payout


def approve_and_pay(session: CrowdSession, *, mturk=None) -> list[Payout]:
    """Approve the MTurk assignment (paying the HIT reward) and send what remains as a bonus.

    The bonus is the session's earnings (per-turn pay and bonuses) less the HIT reward and less
    bonuses already paid. Calling again after a failure retries with the same request token.
    """
    if session.platform != Worker.Platform.MTURK:
        raise InputError("session", "only MTurk sessions are paid through MTurk")
    if session.status != CrowdSession.Status.COMPLETED:
        raise InputError("session", "the session is not completed yet")
    raw_id = decrypt_platform_id(session.worker)
    if raw_id is None:
        raise InputError("worker", "no platform id is stored for this worker")
    mturk = mturk or client(session.task.mturk_sandbox)
    done: list[Payout] = []
    reward = session.task.mturk_reward

    approval = _record(session, Payout.Kind.APPROVAL, reward, f"approve-{session.pk}")
    if approval is not None:
        error = None
        try:
            mturk.approve_assignment(
                AssignmentId=session.external_id,
                RequesterFeedback="Thank you for your careful work.",
                OverrideRejection=False,
            )
        except (ClientError, BotoCoreError) as caught:
            error = caught
        done.append(_finish(approval, error, raw_id))
        if error is not None:
            return done

    earned = session_pay([session]).get(session.pk)
    paid_bonus = sum(
        (
            p.amount
            for p in session.payouts.filter(kind=Payout.Kind.BONUS, status=Payout.Status.DONE)
        ),
        Decimal("0.00"),
    )
    owed = (earned.total if earned else Decimal("0.00")) - reward - paid_bonus
    if owed <= 0:
        return done
    pending = session.payouts.filter(kind=Payout.Kind.BONUS).exclude(status=Payout.Status.DONE)
    retry = pending.first()
    number = session.payouts.filter(kind=Payout.Kind.BONUS).count() + (0 if retry else 1)
    token = retry.request_token if retry else f"bonus-{session.pk}-{number}"
    bonus = _record(session, Payout.Kind.BONUS, owed, token)
    if bonus is None:
        return done
    if bonus.amount != owed:
        bonus.amount = owed
        bonus.save(update_fields=["amount"])
    error = None
    try:
        mturk.send_bonus(
            WorkerId=raw_id,
            BonusAmount=f"{owed:.2f}",
            AssignmentId=session.external_id,
            Reason="Pay per annotated turn in the tangram survey.",
            UniqueRequestToken=token,
        )
    except (ClientError, BotoCoreError) as caught:
        error = caught
    done.append(_finish(bonus, error, raw_id))
    return done
