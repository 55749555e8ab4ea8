"""Pay per worker: per-turn rates, bonuses, game earnings; exports carry hashes only."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from annotation.earnings import payments_by_worker
from annotation.models import Bonus
from annotation.services import complete_session
from games import selectors as game_selectors
from tests.factories import make_user

from .conftest import annotate, arrive, make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_batch(system):
    batch = make_batch(system, 3)
    plain = arrive(batch.task, "PLAIN")  # every turn right and satisfied: 3 x 0.06
    annotate(plain, [("select A", "yes"), ("select B", "yes"), ("select C", "")])
    errors = arrive(batch.task, "ERRORS")  # wrong a* on turn 0, "no" on turn 1: 2 x 0.08 + 0.06
    annotate(errors, [("select B", "yes"), ("select B", "no"), ("select C", "")])
    complete_session(errors)
    Bonus.objects.create(
        worker=errors.worker, session=errors, amount=Decimal("0.50"), reason="gold"
    )
    unfinished = arrive(batch.task, "UNFINISHED")  # answers of an unsubmitted game earn nothing
    annotate(unfinished, [("select A", "yes")], submit=False)
    return plain, errors, unfinished


def test_rates_per_turn_with_errors_and_bonuses(paid_batch, monkeypatch):
    plain, errors, unfinished = paid_batch
    earnings = {errors.worker_id: Decimal("1.62")}
    monkeypatch.setattr(
        game_selectors,
        "worker_game_earnings",
        lambda worker: earnings.get(worker.pk, Decimal("0")),
        raising=False,
    )
    rows = {row.worker_id: row for row in payments_by_worker()}
    assert (rows[plain.worker_id].turns, rows[plain.worker_id].error_turns) == (3, 0)
    assert rows[plain.worker_id].total == Decimal("0.18")
    err = rows[errors.worker_id]
    assert (err.turns, err.error_turns, err.annotation, err.bonuses, err.games) == (
        3,
        2,
        Decimal("0.22"),
        Decimal("0.50"),
        Decimal("1.62"),
    )
    assert err.total == err.outstanding == Decimal("2.34")
    assert rows[unfinished.worker_id].total == Decimal("0.00")


def test_the_payments_export_has_hashed_ids_only(client, paid_batch):
    client.force_login(make_user("root", role="admin"))
    response = client.get("/annotation/api/payments/", {"as": "csv"})
    text = response.content.decode()
    for raw in ("PLAIN", "ERRORS", "UNFINISHED"):
        assert raw not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["annotation"] for r in rows) == ["0.00", "0.18", "0.22"]
    assert all(len(r["worker"]) == 64 for r in rows)


def test_admins_can_read_a_raw_id_for_payment_but_researchers_cannot(client, paid_batch):
    plain, _, _ = paid_batch
    url = f"/annotation/workers/{plain.worker_id}/platform-id/"
    client.force_login(make_user("res", role="researcher"))
    assert client.post(url).status_code == 403
    client.force_login(make_user("root", role="admin"))
    assert "PLAIN" in client.post(url).content.decode()
    assert client.get(url).status_code == 405
    page = client.get("/annotation/payments/").content.decode()
    assert "PLAIN" not in page and "ERRORS" not in page
