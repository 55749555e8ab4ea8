"""Who may open what: every URL pattern and websocket route × every kind of visitor.

The patterns come from the URL conf itself, so a new URL without a rule here fails
``test_every_url_has_a_rule``. Visitors: anonymous, a crowdworker of the study's own game task
(consented, in the game), a crowdworker who arrived for another study's task, a researcher and
an admin. Each request must be either let through (2xx, 3xx elsewhere than a login or refusal
page, 400/409 for a well-formed refusal of the input) or refused (302 to the login page, 401,
403, 404, 405 never counts); a 500 fails whatever the rule says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotation import creation
from annotation.tokens import session_token
from evaluation import services as evaluation_services
from games.models import Game, Round, Worker
from tests.factories import make_game, make_study, make_system, make_user

pytestmark = pytest.mark.django_db(transaction=True)

ANON, OWN, OTHER, RESEARCHER, ADMIN = (
    "anonymous",
    "own worker",
    "other worker",
    "researcher",
    "admin",
)
ROLES = (ANON, OWN, OTHER, RESEARCHER, ADMIN)
EVERYONE = frozenset(ROLES)
STAFF = frozenset({RESEARCHER, ADMIN})
ADMINS = frozenset({ADMIN})
PLAYER = frozenset({OWN})
NOBODY: frozenset[str] = frozenset()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """The tangram image the world stores goes to a scratch folder."""
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture(autouse=True)
def _no_tasks_left_behind():
    """Buttons researchers may press queue real tasks (a metric run, a loading check); no worker
    runs here, so they are purged rather than left for a later test's worker."""
    yield
    from config.celery import app

    app.control.purge()


def walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = (
                f"{namespace}:{entry.namespace}"
                if namespace and entry.namespace
                else (entry.namespace or namespace)
            )
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace else (entry.name or "")
            yield name, prefix + str(entry.pattern)


def url_patterns() -> list[tuple[str, str]]:
    return sorted(set(walk(get_resolver().url_patterns)))


# --- the world every request is made in ---------------------------------------------------------


@dataclass
class World:
    study: object
    round: object
    task: object
    own: Worker
    own_session_pk: int
    own_token: str
    other: Worker
    other_token: str
    game: Game
    batch: object
    run: object
    training_run: object
    checkpoint_pk: int
    tangram: str


def build_world() -> World:
    from games.models import System
    from models_svc.models import TrainingManifest, TrainingRun
    from tests.play import helpers

    study = make_study("matrix")
    system = make_system(study, 0, "B-FFT")
    System.objects.create(round=system.round, name="HH")
    round_ = Round.objects.get(pk=system.round.pk)
    round_.lobby_open = True
    round_.save(update_fields=["lobby_open"])
    task = helpers.crowd_task(round_)
    own_session = helpers.arrival(task, "own-worker")
    other_round = make_system(make_study("elsewhere"), 0, "HH").round
    other_session = helpers.arrival(helpers.crowd_task(other_round), "other-worker")
    game = make_game(system, [["page9-9"]], ["the bird"], external_id="matrix-game")
    game.speaker = own_session.worker
    game.save(update_fields=["speaker"])
    batch = creation.create_batch(
        study=study,
        round_index=0,
        system_name="B-FFT",
        name="matrix batch",
        games=1,
        redundancy_fraction=0.0,
        task_options={"prolific_completion_code": "C0DE42"},
    )
    run = evaluation_services.execute_metric_run(
        evaluation_services.create_metric_run(study, resamples=50, seed=1).pk
    )
    manifest = TrainingManifest.objects.create(
        study=study,
        role="train",
        round_index=0,
        system_name="B-FFT",
        content_hash="0" * 64,
        prompt_format=system.prompt_format,
    )
    training_run = TrainingRun.objects.create(
        study=study,
        round_index=0,
        system_name="B-FFT",
        objective="fft",
        base_checkpoint="hf:/models/base",
        prompt_format=system.prompt_format,
        manifest=manifest,
    )
    from models_svc.models import ModelCheckpoint

    checkpoint = ModelCheckpoint.objects.create(kind="policy", spec="hf:/nowhere/policy")
    return World(
        checkpoint_pk=checkpoint.pk,
        study=study,
        round=round_,
        task=task,
        own=own_session.worker,
        own_session_pk=own_session.pk,
        own_token=session_token(own_session),
        other=other_session.worker,
        other_token=session_token(other_session),
        game=game,
        batch=batch,
        run=run,
        training_run=training_run,
        tangram=_tangram_with_image("page9-0"),
    )


def _tangram_with_image(name: str) -> str:
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    from games.models import Tangram

    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 255)).save(buffer, format="PNG")
    tangram = Tangram.objects.get(name=name)
    tangram.image.save(f"{name}.png", ContentFile(buffer.getvalue()), save=True)
    return name


def clients(world: World) -> dict[str, Client]:
    from tests.play import helpers

    made = {role: Client(raise_request_exception=False) for role in ROLES}
    made[OWN].cookies["sessionid"] = helpers.session_cookie(world.own)
    made[OWN].defaults["HTTP_X_WORKER_TOKEN"] = world.own_token
    made[OTHER].cookies["sessionid"] = helpers.session_cookie(world.other)
    made[OTHER].defaults["HTTP_X_WORKER_TOKEN"] = world.other_token
    from django.contrib.auth.models import User

    researcher = User.objects.filter(username="rules-researcher").first()
    admin = User.objects.filter(username="rules-admin").first()
    made[RESEARCHER].force_login(researcher or make_user("rules-researcher", role="researcher"))
    made[ADMIN].force_login(admin or make_user("rules-admin", role="admin"))
    return made


# --- the rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    method: str = "get"
    kwargs: object = None  # World -> dict of URL arguments
    query: object = None  # (World, role) -> dict of query parameters
    why: str = ""


def study_pk(w: World) -> dict:
    return {"pk": w.study.pk}


def run_pk(w: World) -> dict:
    return {"run_id": w.run.pk}


def training_pk(w: World) -> dict:
    return {"pk": w.training_run.pk}


def batch_pk(w: World) -> dict:
    return {"pk": w.batch.pk}


def own_token(w: World) -> dict:
    return {"token": w.own_token}


def round_id(w: World) -> dict:
    return {"round_id": w.round.pk}


def game_id(w: World) -> dict:
    return {"game_id": w.game.pk}


def arrival_query(w: World, role: str) -> dict:
    worker = role.replace(" ", "-")
    return {"PROLIFIC_PID": f"arriving-{worker}", "STUDY_ID": "S", "SESSION_ID": f"s-{worker}"}


PUBLIC = "anyone may open it"
STAFF_ONLY = "researchers' pages (admins are researchers too)"
ADMIN_ONLY = "pay and raw platform ids: admins only"
BEARER = "the signed, expiring token in the URL is the worker's credential"

RULES: dict[str, Rule] = {
    # accounts: Django's own views
    "login": Rule(EVERYONE, why=PUBLIC),
    "logout": Rule(EVERYONE, method="post", why=PUBLIC),
    "password_reset": Rule(EVERYONE, why=PUBLIC),
    "password_reset_done": Rule(EVERYONE, why=PUBLIC),
    "password_reset_complete": Rule(EVERYONE, why=PUBLIC),
    "password_reset_confirm": Rule(
        EVERYONE, kwargs=lambda w: {"uidb64": "MQ", "token": "set-password"}, why=PUBLIC
    ),
    "password_change": Rule(STAFF, why="users with a password only"),
    "password_change_done": Rule(STAFF, why="users with a password only"),
    "api-schema": Rule(STAFF, why="the API's map is for signed-in users only"),
    "api-docs": Rule(STAFF, why="the API's map is for signed-in users only"),
    # games: viewer and live play
    "games:home": Rule(STAFF, why=STAFF_ONLY),
    "games:study": Rule(STAFF, kwargs=study_pk, why=STAFF_ONLY),
    "games:game": Rule(STAFF, kwargs=lambda w: {"pk": w.game.pk}, why=STAFF_ONLY),
    "games:tangram_image": Rule(
        EVERYONE, kwargs=lambda w: {"name": w.tangram}, why="images carry no study data"
    ),
    "games:lobby": Rule(PLAYER, kwargs=round_id, why="participants of the round's task only"),
    "games:play_lobby_leave": Rule(
        frozenset({OWN, OTHER}),
        method="post",
        kwargs=round_id,
        why="a worker ends only their own wait; one not waiting is sent back to the lobby page",
    ),
    "games:play_local_entry": Rule(NOBODY, kwargs=round_id, why="the demo only (DEBUG)"),
    "games:play_game": Rule(PLAYER, kwargs=game_id, why="the game's own players only"),
    "games:play_survey": Rule(PLAYER, kwargs=game_id, why="the game's own players only"),
    "games:play_done": Rule(PLAYER, kwargs=game_id, why="the game's own players only"),
    "games:play_live": Rule(STAFF, kwargs=lambda w: {"study_id": w.study.pk}, why=STAFF_ONLY),
    "games:play_live_data": Rule(STAFF, kwargs=lambda w: {"study_id": w.study.pk}, why=STAFF_ONLY),
    # annotation: arrival and worker pages
    "annotation:prolific": Rule(
        EVERYONE,
        kwargs=lambda w: {"key": w.batch.task.key},
        query=arrival_query,
        why="the platform's link: anyone who has it arrives as a worker",
    ),
    "annotation:mturk": Rule(
        NOBODY,
        kwargs=lambda w: {"key": w.batch.task.key},
        query=lambda w, role: {"workerId": f"A{role}", "assignmentId": "x", "hitId": "h"},
        why="a Prolific task refuses MTurk arrivals",
    ),
    "annotation:arrival-refused": Rule(EVERYONE, why=PUBLIC),
    "annotation:entry": Rule(EVERYONE, kwargs=own_token, why=BEARER),
    "annotation:consent": Rule(EVERYONE, kwargs=own_token, why=BEARER),
    "annotation:guidelines": Rule(EVERYONE, kwargs=own_token, why=BEARER),
    "annotation:quiz": Rule(EVERYONE, kwargs=own_token, why=BEARER),
    "annotation:survey": Rule(EVERYONE, kwargs=own_token, why=BEARER),
    "annotation:api-work": Rule(
        frozenset({OWN, OTHER}), why="a worker token names the caller's own session"
    ),
    "annotation:api-work-next": Rule(
        frozenset({OWN, OTHER}), method="post", why="a worker token names the caller's session"
    ),
    "annotation:api-work-answer": Rule(
        frozenset({OWN, OTHER}), method="post", why="a worker token names the caller's session"
    ),
    "annotation:api-work-submit": Rule(
        frozenset({OWN, OTHER}), method="post", why="a worker token names the caller's session"
    ),
    "annotation:api-work-complete": Rule(
        frozenset({OWN, OTHER}), method="post", why="a worker token names the caller's session"
    ),
    # annotation: researchers and admins
    "annotation:batches": Rule(STAFF, why=STAFF_ONLY),
    "annotation:batch-detail": Rule(STAFF, kwargs=batch_pk, why=STAFF_ONLY),
    "annotation:game-tasks": Rule(STAFF, why=STAFF_ONLY),
    "annotation:game-task": Rule(STAFF, kwargs=lambda w: {"pk": w.task.pk}, why=STAFF_ONLY),
    "annotation:preview": Rule(
        STAFF, kwargs=lambda w: {"pk": w.batch.task.pk, "step": "consent"}, why=STAFF_ONLY
    ),
    "annotation:payments": Rule(ADMINS, why=ADMIN_ONLY),
    "annotation:pay-session": Rule(
        ADMINS, method="post", kwargs=lambda w: {"pk": w.own_session_pk}, why=ADMIN_ONLY
    ),
    "annotation:reveal-platform-id": Rule(
        ADMINS, method="post", kwargs=lambda w: {"pk": w.own.pk}, why=ADMIN_ONLY
    ),
    "annotation:api-batches": Rule(STAFF, why=STAFF_ONLY),
    "annotation:api-batch": Rule(STAFF, kwargs=batch_pk, why=STAFF_ONLY),
    "annotation:api-batch-gold": Rule(STAFF, method="post", kwargs=batch_pk, why=STAFF_ONLY),
    "annotation:api-agreement": Rule(ADMINS, kwargs=batch_pk, why="hashed worker ids: admins"),
    "annotation:api-quizzes": Rule(STAFF, method="post", why=STAFF_ONLY),
    "annotation:api-game-tasks": Rule(STAFF, method="post", why=STAFF_ONLY),
    "annotation:api-payments": Rule(ADMINS, why=ADMIN_ONLY),
    "annotation:api-bonuses": Rule(ADMINS, method="post", why=ADMIN_ONLY),
    "annotation:api-session-pay": Rule(
        ADMINS, method="post", kwargs=lambda w: {"pk": w.own_session_pk}, why=ADMIN_ONLY
    ),
    # evaluation
    "evaluation:index": Rule(STAFF, why=STAFF_ONLY),
    "evaluation:study": Rule(STAFF, kwargs=study_pk, why=STAFF_ONLY),
    "evaluation:start_run": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "evaluation:exports": Rule(ADMINS, kwargs=study_pk, why="exports with hashed worker ids"),
    "evaluation:run_progress": Rule(STAFF, kwargs=run_pk, why=STAFF_ONLY),
    "evaluation:section_csv": Rule(
        STAFF, kwargs=lambda w: {"run_id": w.run.pk, "section": "success_rate"}, why=STAFF_ONLY
    ),
    "evaluation:section_figure": Rule(
        STAFF,
        kwargs=lambda w: {"run_id": w.run.pk, "section": "success_rate", "fmt": "svg"},
        why=STAFF_ONLY,
    ),
    "evaluation:export": Rule(
        ADMINS,
        kwargs=lambda w: {"run_id": w.run.pk, "name": "metrics.csv"},
        why="exports with hashed worker ids",
    ),
    "evaluation:api-study-runs": Rule(STAFF, kwargs=study_pk, why=STAFF_ONLY),
    "evaluation:api-run": Rule(STAFF, kwargs=run_pk, why=STAFF_ONLY),
    # the round board (every button is a POST; an empty one is refused by its form)
    "board:study": Rule(STAFF, kwargs=study_pk, why=STAFF_ONLY),
    "board:lobby": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:auto_decode": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:decode": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:decode_lineage": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:metrics": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:train": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:next_round": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:seed_set": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:seed_run": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "board:seed_deploy": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    # model service: checkpoints and training
    "models_svc:checkpoints": Rule(STAFF, why=STAFF_ONLY),
    "models_svc:check_files": Rule(
        STAFF, method="post", kwargs=lambda w: {"pk": w.checkpoint_pk}, why=STAFF_ONLY
    ),
    "models_svc:check_load": Rule(
        STAFF, method="post", kwargs=lambda w: {"pk": w.checkpoint_pk}, why=STAFF_ONLY
    ),
    "models_svc:training": Rule(STAFF, kwargs=study_pk, why=STAFF_ONLY),
    "models_svc:launch": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "models_svc:open_round": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "models_svc:run": Rule(STAFF, kwargs=training_pk, why=STAFF_ONLY),
    "models_svc:run_progress": Rule(STAFF, kwargs=training_pk, why=STAFF_ONLY),
    "models_svc:cancel": Rule(STAFF, method="post", kwargs=training_pk, why=STAFF_ONLY),
    "models_svc:resume": Rule(STAFF, method="post", kwargs=training_pk, why=STAFF_ONLY),
    "models_svc:api-training-runs": Rule(STAFF, method="post", kwargs=study_pk, why=STAFF_ONLY),
    "models_svc:api-training-run": Rule(STAFF, kwargs=training_pk, why=STAFF_ONLY),
}

# Views of the admin site itself (ModelAdmin views carry ``model_admin`` and pass through
# ``AdminSite.admin_view``, the staff check, like these).
ADMIN_SITE_PUBLIC = {"admin:login"}
ADMIN_SITE_WITH_ARGUMENTS = {
    "admin:app_list",
    "admin:view_on_site",
    "admin:auth_user_password_change",  # UserAdmin's own view, behind admin_view
    "admin:autocomplete",  # needs the field it completes in its query
    "admin:None",  # the catch-all that sends unknown admin paths to the login or a 404
}


# --- requests and their outcome -------------------------------------------------------------------

LOGIN_PAGES = ("/accounts/login/", "/admin/login/", "/annotation/refused/")


def outcome(response) -> str:
    """``allowed``, ``refused`` or ``error`` (a 500, whatever the rule says)."""
    status = response.status_code
    if status >= 500:
        return "error"
    if status in (401, 403, 404, 405):
        return "refused"
    if status in (301, 302) and response["Location"].startswith(LOGIN_PAGES):
        return "refused"
    return "allowed"


def request(client: Client, rule: Rule, name: str, world: World, role: str):
    from django.urls import reverse

    url = reverse(name, kwargs=rule.kwargs(world) if rule.kwargs else None)
    query = rule.query(world, role) if rule.query else {}
    if rule.method == "post":
        return client.post(url, query)
    return client.get(url, query)


def test_every_url_has_a_rule():
    names = {name for name, _ in url_patterns()}
    admin = {n for n in names if n.startswith("admin:")}
    assert sorted(names - admin - set(RULES)) == [], "give each new URL a rule in RULES"
    assert sorted(set(RULES) - names) == [], "rules for URLs that no longer exist"


def test_each_url_admits_exactly_whom_its_rule_names():
    world = build_world()
    wrong = []
    for name, rule in sorted(RULES.items()):
        visitors = clients(world)  # fresh: a token page or a logout changes who a client is
        for role in ROLES:
            got = outcome(request(visitors[role], rule, name, world, role))
            expected = "allowed" if role in rule.allowed else "refused"
            if got != expected:
                wrong.append(f"{name} × {role}: {got}, expected {expected} ({rule.why})")
    assert wrong == [], "\n".join(wrong)


def test_the_admin_site_is_for_admins_only():
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    world = build_world()
    visitors = clients(world)
    wrong = []
    for pattern in _flatten(admin.site.urls[0]):
        name = f"admin:{pattern.name}"
        if name in ADMIN_SITE_WITH_ARGUMENTS:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            # Views of one object: ModelAdmin views (behind the same staff check) or the site's.
            if not (
                getattr(pattern.callback, "model_admin", None) or name in ADMIN_SITE_WITH_ARGUMENTS
            ):
                wrong.append(f"{name}: an admin URL with arguments needs a rule")
            continue
        if name == "admin:logout":
            continue  # logging out is allowed to anyone and changes the client
        for role in ROLES:
            response = visitors[role].get(url)
            got = outcome(response)
            if role == ADMIN and name.endswith("_add") and response.status_code == 403:
                continue  # read-only models: nobody adds their rows by hand
            allowed = role == ADMIN or name in ADMIN_SITE_PUBLIC
            if got != ("allowed" if allowed else "refused"):
                wrong.append(f"{name} × {role}: {got}")
    assert wrong == [], "\n".join(wrong)


def _flatten(patterns):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _flatten(entry.url_patterns)
        else:
            yield entry


def test_a_forged_or_foreign_worker_token_opens_nothing():
    world = build_world()
    anonymous = Client(raise_request_exception=False)
    from django.urls import reverse

    for name in ("annotation:entry", "annotation:consent", "annotation:survey"):
        url = reverse(name, kwargs={"token": world.own_token[:-4] + "AAAA"})
        assert outcome(anonymous.get(url)) == "refused", name
    api = Client(raise_request_exception=False, HTTP_X_WORKER_TOKEN="forged")
    assert outcome(api.get(reverse("annotation:api-work"))) == "refused"


# --- websockets ---------------------------------------------------------------------------------


async def socket_outcome(path: str, cookie: str | None) -> str:
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    if not connected:
        return "refused"
    try:
        while True:
            message = await communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                return "refused"
            if message["type"] == "websocket.send":
                import json

                data = json.loads(message.get("text") or "{}")
                if data.get("type") in ("refused", "error"):
                    return "refused"
                return "allowed"
    except TimeoutError:
        return "allowed"
    finally:
        await communicator.disconnect()


WEBSOCKET_RULES = {
    "ws/play/game/<int:game_id>/": PLAYER,
    "ws/play/lobby/<int:round_id>/": PLAYER,
}


def test_every_websocket_route_has_a_rule():
    from config.routing import websocket_urlpatterns

    routes = [str(p.pattern) for p in websocket_urlpatterns]
    assert routes[-1] == "", "the last route refuses every other path"
    assert sorted(routes[:-1]) == sorted(WEBSOCKET_RULES)


def test_each_socket_admits_exactly_its_players():
    from asgiref.sync import async_to_sync

    from tests.play import helpers

    world = build_world()
    Game.objects.filter(pk=world.game.pk).update(status=Game.Status.PLAYING, outcome="")
    cookies = {
        ANON: None,
        OWN: helpers.session_cookie(world.own),
        OTHER: helpers.session_cookie(world.other),
    }
    paths = {
        "ws/play/game/<int:game_id>/": f"/ws/play/game/{world.game.pk}/",
        "ws/play/lobby/<int:round_id>/": f"/ws/play/lobby/{world.round.pk}/",
        "no such route": "/ws/play/nothing/",
    }
    wrong = []
    for route, path in paths.items():
        for role, cookie in cookies.items():
            got = async_to_sync(socket_outcome)(path, cookie)
            expected = "allowed" if role in WEBSOCKET_RULES.get(route, NOBODY) else "refused"
            if got != expected:
                wrong.append(f"{route} × {role}: {got}, expected {expected}")
    assert wrong == [], "\n".join(wrong)
