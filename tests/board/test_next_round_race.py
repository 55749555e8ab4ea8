"""Six researchers press "open the next round" at once: one round is opened, the other five are
told it is already open, none gets a server error (real threads on PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client

from games.models import Round
from games.rounds import RoundAlreadyOpen, SystemSpec, open_round
from models_svc.training import runs
from tests.factories import make_study, make_user

from .builders import finish_run, letters_round

pytestmark = pytest.mark.django_db(transaction=True)
PRESSES = 6


@pytest.mark.postgresql("concurrent transactions lock SQLite's tables")
def test_six_concurrent_presses_open_one_round(monkeypatch):
    round_ = letters_round("race")
    finish_run(round_, "B-FFT", adapter="/runs/7/adapter")
    clients = []
    for number in range(PRESSES):
        client = Client(raise_request_exception=False)
        client.force_login(make_user(f"rita{number}", role="researcher"))
        clients.append(client)
    # Every request passes the service's "is there a round 1 yet?" check before any creates it:
    # the widest window a race can have.
    everyone_checked = threading.Barrier(PRESSES, timeout=60)
    waited = threading.local()
    finished_run = runs.finished_run

    def finished_run_after_everyone(*args, **kwargs):
        if not getattr(waited, "done", False):
            waited.done = True
            everyone_checked.wait()
        return finished_run(*args, **kwargs)

    monkeypatch.setattr(runs, "finished_run", finished_run_after_everyone)
    answers: list[tuple[int, list[str]]] = []
    lock = threading.Lock()

    def press(client: Client) -> None:
        try:
            response = client.post(
                f"/studies/{round_.study_id}/board/next-round/", {"round_index": 0}
            )
            said = [str(m) for m in get_messages(response.wsgi_request)]
            with lock:
                answers.append((response.status_code, said))
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(status for status, _ in answers) == [302] * PRESSES
    messages = sorted(said[0] for _, said in answers)
    assert messages == ["Round 1 opened with the trained policies (B-FFT, CONTROL)."] + [
        "Round not opened: study 'race' already has round 1"
    ] * (PRESSES - 1)
    opened = Round.objects.get(study=round_.study, index=1)
    assert sorted(opened.systems.values_list("name", flat=True)) == ["B-FFT", "CONTROL"]


def test_opening_a_round_the_study_has_is_refused_with_409_and_writes_nothing():
    study = make_study("twice")
    first = open_round(study, 0, [SystemSpec("B-FFT", decoder="lexicon"), SystemSpec("CONTROL")])
    assert sorted(first.systems.values_list("name", "decoder")) == [
        ("B-FFT", "lexicon"),
        ("CONTROL", ""),
    ]
    with pytest.raises(RoundAlreadyOpen) as refused:
        open_round(study, 0, [SystemSpec("T-RL")])
    assert (refused.value.status, refused.value.field, refused.value.message) == (
        409,
        "round",
        "study 'twice' already has round 0",
    )
    assert list(Round.objects.get(study=study, index=0).systems.order_by("name")) == list(
        first.systems.order_by("name")
    )
