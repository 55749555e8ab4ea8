"""The zero-setup demo's whole loop in headless Chromium against a real daphne and a real Celery
worker: from the demo data, a researcher trains every learning system of the last round on the
round board with the form's defaults (the demo's registered tiny base policy, the ``tiny``
preset: 1 epoch, 1 seed), opens the next round and its lobby, and a person plays a game
against the new policy from the local entry."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import expect

from games.demo import DEMO_STUDY
from games.models import Game, Round, Study
from models_svc.models import TrainingRun
from models_svc.services import decode_study
from tests.play.conftest import PlayServer

pytestmark = [
    # Two CPU training runs of the tiny checkpoint, minutes each on a busy two-core machine.
    pytest.mark.timeout(1800),
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.ml,
    pytest.mark.django_db(transaction=True),
]
TRAINED = ("B-FFT", "B-KTO")


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def demo(transactional_db, settings, tmp_path):
    """The demo as ``run.py demo`` leaves it: demo data, its base policy registered; the
    feedback of every round decoded (the board's decoding is tested elsewhere)."""
    settings.VAR_DIR = tmp_path
    settings.TRAINING_DIR = tmp_path / "training"
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    call_command("load_demo", "--tangrams", "30")
    call_command("demo_policy")
    researcher = User.objects.get(username="researcher")
    researcher.set_password("respect-demo")
    researcher.save(update_fields=["password"])
    study = Study.objects.get(name=DEMO_STUDY)
    for round_index in (0, 1, 2):
        decode_study(study, decoder_spec="lexicon", kind="binary", round_index=round_index)
    return study


@pytest.fixture
def demo_server(demo):
    """daphne as the demo runs it: local play on, the tiny preset chosen (no GPU)."""
    server = PlayServer()
    server.env.update(PLAY_LOCAL_ENTRY="1", RESPECT_TRAINING_PRESET="tiny")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def step(page, index: int, key: str):
    return page.locator(f'#round-{index} section[data-step="{key}"]')


def test_train_with_the_defaults_open_the_next_round_and_play_the_new_policy(
    demo, demo_server, celery_worker, browser, settings
):
    base = (settings.VAR_DIR / "tiny-idefics2").resolve()
    timings: dict[str, float] = {}
    started = time.monotonic()
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{demo_server.url}/accounts/login/")
    page.fill("#id_username", "researcher")
    page.fill("#id_password", "respect-demo")
    page.click("button[type=submit]")
    expect(page.locator("form.logout")).to_contain_text("researcher")
    page.goto(f"{demo_server.url}/studies/{demo.pk}/board/")
    train = step(page, 2, "train")
    expect(train.locator(".default-preset")).to_contain_text(
        "The preset chosen by default here is tiny (no GPU on this machine: a run finishes in "
        "minutes)."
    )
    for system in TRAINED:
        target = train.locator(f'.train-target[data-system="{system}"]')
        form = target.locator("form")
        assert form.locator('select[name="preset"]').input_value() == "tiny"
        assert form.locator('select[name="base"]').input_value() == f"hf:{base}"
        form.locator("button.train").click()
        expect(page.locator(".messages")).to_contain_text(
            f", {system}) queued on the gpu-batch queue."
        )
        expect(target.locator(".run-status")).to_have_text("done", timeout=600_000)
        timings[f"train {system}"] = time.monotonic() - started
    for system in TRAINED:
        run = TrainingRun.objects.get(study=demo, round_index=2, system_name=system)
        assert (run.hyperparameters["epochs"], run.hyperparameters["seeds"]) == (1, 1)

    step(page, 2, "next_round").locator("button.next-round").click()
    expect(page.locator(".messages")).to_contain_text(
        "Round 3 opened with the trained policies (B-FFT, B-KTO, CONTROL)."
    )
    step(page, 3, "collect").locator("button", has_text="Open the lobby").click()
    expect(page.locator(".messages")).to_contain_text("Round 3: the lobby is open")
    round_three = Round.objects.get(study=demo, index=3)
    deployed = round_three.systems.get(name="B-FFT").policy_checkpoint
    run = TrainingRun.objects.get(study=demo, round_index=2, system_name="B-FFT")
    assert deployed == run.policy_spec and "+lora:" in deployed

    player = browser.new_context().new_page()
    player.set_default_timeout(30_000)
    player.goto(f"{demo_server.url}/play/lobby/{round_three.pk}/local/")
    player.fill("#id_name", "tester")
    player.select_option("#id_system", "B-FFT")
    player.click("button[type=submit]")
    player.wait_for_url(re.compile(r"/play/game/\d+/$"), timeout=60_000)
    expect(player.locator("#send")).to_be_enabled()
    player.fill("#utterance", "select the first one")
    player.press("#utterance", "Enter")
    # The new policy answers on the gpu queue; the speaker sees its selection and turn 2 opens
    # (or the game ends, if the policy happened to select every target).
    expect(player.locator("#history li")).to_have_count(1, timeout=120_000)
    next_turn = player.locator("#turn-no", has_text=re.compile("^2$"))
    expect(next_turn.or_(player.locator("#end:not([hidden])")).first).to_be_attached(
        timeout=120_000
    )
    timings["play one turn"] = time.monotonic() - started
    game = Game.objects.get(round=round_three, system__name="B-FFT")
    turn = game.turns.get(index=0)
    assert game.system.name == "B-FFT" and game.system.policy_checkpoint == deployed
    assert turn.selection_after is not None and turn.action_reason != "model_timeout"
    print("demo loop seconds since login:", {k: round(v) for k, v in timings.items()})
