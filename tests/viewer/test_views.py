"""The game viewer: who may see it, what the filters return, what a replayed turn shows."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from games.models import FeedbackLabel, Game, Turn, Worker
from games.workers import get_or_create_worker
from tests.factories import make_game, make_study, make_system, make_user

pytestmark = pytest.mark.django_db

# make_game's context is page9-0 … page9-9 in speaker order and the reverse in listener order,
# so page9-9 is A, page9-8 is B, …, page9-0 is J; its default targets page9-0/1/2 are J, I, H.
P = "page9-"


@pytest.fixture
def researcher(client):
    make_user("rita", role="researcher")
    client.login(username="rita", password="pw-for-tests")
    return client


@pytest.fixture
def game():
    system = make_system(make_study("Replay study"), 0, "B-FFT")
    game = make_game(
        system,
        [[f"{P}9"], [f"{P}0", f"{P}1"], [f"{P}0", f"{P}1", f"{P}2"]],
        ["pick the bird", "no, the other one and the fox", "yes. now the boat"],
        outcome="successful",
    )
    first = game.turns.get(index=0)
    FeedbackLabel.objects.create(
        turn=first, decoder="lexicon", kind="binary", label="negative", raw_output="negative"
    )
    Turn.objects.filter(pk=first.pk).update(action_probability=0.625, speaker_seconds=7.5)
    return game


def urls(game: Game) -> list[str]:
    return [
        reverse("games:home"),
        reverse("games:study", kwargs={"pk": game.study_id}),
        reverse("games:game", kwargs={"pk": game.pk}),
    ]


def test_anonymous_users_are_sent_to_the_login_page(client, game):
    for url in urls(game):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_users_without_a_research_role_are_refused(client, game):
    make_user("walter")
    client.login(username="walter", password="pw-for-tests")
    for url in urls(game):
        assert client.get(url).status_code == 403


@pytest.mark.parametrize("role", ["researcher", "admin"])
def test_researchers_and_admins_see_the_viewer(client, game, role):
    make_user("someone", role=role)
    client.login(username="someone", password="pw-for-tests")
    for url in urls(game):
        assert client.get(url).status_code == 200


def test_home_lists_studies_with_counts(researcher, game):
    other = make_system(game.study, 1, "HH")
    make_game(other, [[f"{P}3"]], outcome="unsuccessful")
    make_study("Empty study")
    summaries = {s.study.name: s for s in researcher.get("/").context["summaries"]}
    replay = summaries["Replay study"]
    assert (replay.rounds, replay.systems, replay.games, replay.turns) == (2, 2, 2, 4)
    assert replay.successful == 1 and replay.success_rate == 0.5
    empty = summaries["Empty study"]
    assert (empty.rounds, empty.games, empty.turns, empty.success_rate) == (0, 0, 0, None)


def test_home_without_studies_says_what_to_do(researcher):
    html = researcher.get("/").content.decode()
    assert "No studies yet" in html
    assert "manage.py load_demo" in html and "manage.py import_games" in html


@pytest.fixture
def study_with_games():
    """Round 0: B-FFT 2 games (1 successful), HH 1 successful; round 1: B-FFT successful,
    unsuccessful and idle. Speaker aaaa… spoke in two games, bbbb… in one."""
    study = make_study("Filter study")
    r0_bfft, r0_hh = make_system(study, 0, "B-FFT"), make_system(study, 0, "HH")
    r1_bfft = make_system(study, 1, "B-FFT")
    spec = [
        ("a1", r0_bfft, "successful", [[f"{P}0", f"{P}1", f"{P}2"]]),
        ("a2", r0_bfft, "unsuccessful", [[f"{P}5"], [f"{P}5", f"{P}6"]]),
        ("h1", r0_hh, "successful", [[f"{P}0"], [f"{P}0", f"{P}1", f"{P}2"]]),
        ("b1", r1_bfft, "successful", [[f"{P}0", f"{P}1", f"{P}2"]]),
        ("b2", r1_bfft, "unsuccessful", [[f"{P}7"]] * 3),
        ("b3", r1_bfft, "idle", [[f"{P}4"]]),
    ]
    for external_id, system, outcome, selections in spec:
        make_game(system, selections, external_id=external_id, outcome=outcome)
    speaker_a = Worker.objects.create(platform="import", id_hash="a" * 64)
    speaker_b = Worker.objects.create(platform="import", id_hash="b" * 64)
    Game.objects.filter(external_id__in=["a1", "b2"]).update(speaker=speaker_a)
    Game.objects.filter(external_id="h1").update(speaker=speaker_b)
    return study


@pytest.mark.parametrize(
    ("query", "expected", "successful", "turns"),
    [
        ({}, {"a1", "a2", "h1", "b1", "b2", "b3"}, 3, 10),
        ({"round": "0"}, {"a1", "a2", "h1"}, 2, 5),
        ({"system": "B-FFT"}, {"a1", "a2", "b1", "b2", "b3"}, 2, 8),
        ({"round": "1", "system": "B-FFT"}, {"b1", "b2", "b3"}, 1, 5),
        ({"outcome": "successful"}, {"a1", "h1", "b1"}, 3, 4),
        ({"outcome": "unsuccessful"}, {"a2", "b2"}, 0, 5),
        ({"outcome": "idle"}, {"b3"}, 0, 1),
        ({"speaker": "AAAA"}, {"a1", "b2"}, 1, 4),
        ({"speaker": "b" * 64}, {"h1"}, 1, 2),
        ({"speaker": "c"}, set(), 0, 0),
        ({"round": "0", "outcome": "successful", "system": "HH"}, {"h1"}, 1, 2),
    ],
)
def test_study_filters_return_exactly_the_matching_games(
    researcher, study_with_games, query, expected, successful, turns
):
    url = reverse("games:study", kwargs={"pk": study_with_games.pk})
    response = researcher.get(url, query)
    assert response.status_code == 200
    page = response.context["page"]
    assert {g.external_id for g in page.object_list} == expected
    total = response.context["total"]
    assert (total.games, total.successful, total.turns) == (len(expected), successful, turns)


def test_study_breakdown_by_round_and_system(researcher, study_with_games):
    url = reverse("games:study", kwargs={"pk": study_with_games.pk})
    groups = researcher.get(url).context["groups"]
    rows = [(g.round_index, g.system, g.games, g.successful, g.turns) for g in groups]
    assert rows == [(0, "B-FFT", 2, 1, 3), (0, "HH", 1, 1, 2), (1, "B-FFT", 3, 1, 5)]
    assert groups[2].success_rate == pytest.approx(1 / 3)


def test_invalid_filters_are_reported_and_ignored(researcher, study_with_games):
    url = reverse("games:study", kwargs={"pk": study_with_games.pk})
    response = researcher.get(url, {"round": "7", "speaker": "xyz!"})
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 6
    assert response.context["form"].errors.keys() == {"round", "speaker"}


def test_study_page_paginates_and_keeps_filters(researcher, django_assert_max_num_queries):
    study = make_study("Big study")
    system = make_system(study, 2, "T-RL")
    for number in range(27):
        make_game(system, [[f"{P}0"]], external_id=f"g{number:02d}")
    url = reverse("games:study", kwargs={"pk": study.pk})
    # A fixed number of queries whatever the page size: no query per game.
    with django_assert_max_num_queries(12):
        first = researcher.get(url, {"system": "T-RL"})
    assert len(first.context["page"].object_list) == 25
    assert 'href="?system=T-RL&amp;page=2"' in first.content.decode()
    second = researcher.get(url, {"system": "T-RL", "page": "2"})
    assert [g.external_id for g in second.context["page"].object_list] == ["g25", "g26"]


def turn_page(client, game: Game, number: int, order: str = "listener"):
    url = reverse("games:game", kwargs={"pk": game.pk})
    return client.get(url, {"turn": number, "order": order})


def image_marks(html: str) -> list[tuple[str, str, str]]:
    """(name, letter, change) of each image in page order."""
    return re.findall(r'data-name="([^"]+)" data-letter="([A-J])" data-change="([a-z]*)"', html)


def test_game_page_shows_each_turns_changes_and_action(researcher, game):
    expected = [
        # turn, action, changed letters, selected after, changes by letter
        (1, "select A", ["A"], ["A"], {"A": "selected"}),
        (2, "deselect A select I J", ["A", "I", "J"], ["I", "J"], {"A": "deselected",
                                                                    "I": "selected",
                                                                    "J": "selected"}),
        (3, "select H", ["H"], ["H", "I", "J"], {"H": "selected"}),
    ]  # fmt: skip
    for number, action, changed, selected, changes in expected:
        response = turn_page(researcher, game, number)
        current = response.context["current"]
        assert current.turn.action == action
        assert current.changed_letters == changed
        assert current.selected_after_letters == selected
        html = response.content.decode()
        assert f'<code id="action">{action}</code>' in html
        marks = image_marks(html)
        assert [letter for _, letter, _ in marks] == list("ABCDEFGHIJ")
        assert {letter: change for _, letter, change in marks if change} == changes


def test_game_page_shows_utterance_follow_up_labels_and_probability(researcher, game):
    html = turn_page(researcher, game, 1).content.decode()
    assert "pick the bird" in html
    assert "no, the other one and the fox" in html  # the follow-up the decoders read
    assert 'class="badge feedback-negative">negative<' in html
    assert '<span id="probability">0.625</span>' in html
    assert "speaker 7.5 s" in html
    last = turn_page(researcher, game, 3).content.decode()
    assert "Last turn: no follow-up utterance" in last
    assert "No feedback labels" not in last  # a last turn is never labelled
    unlabelled = turn_page(researcher, game, 2).content.decode()
    assert "No feedback labels for this turn yet: decode round 0 from the" in unlabelled
    assert f'href="/studies/{game.study_id}/board/#round-0">round board</a>' in unlabelled


def test_game_page_marks_targets_and_can_show_the_speaker_order(researcher, game):
    response = turn_page(researcher, game, 1, order="speaker")
    assert response.context["replay"].target_letters == ["H", "I", "J"]
    marks = image_marks(response.content.decode())
    # Speaker order is page9-0 … page9-9; letters still follow the listener order.
    assert marks[0] == (f"{P}0", "J", "") and marks[9] == (f"{P}9", "A", "selected")
    html = response.content.decode()
    assert html.count("data-target") == 3


def test_turn_navigation_links(researcher, game):
    first = turn_page(researcher, game, 1).content.decode()
    assert 'id="next-turn" rel="next" href="?turn=2&amp;order=listener"' in first
    assert 'id="prev-turn"' not in first
    middle = turn_page(researcher, game, 2, order="speaker").content.decode()
    assert (
        'href="?turn=1&amp;order=speaker"' in middle
        and 'href="?turn=3&amp;order=speaker"' in middle
    )
    last = turn_page(researcher, game, 3).content.decode()
    assert 'id="next-turn"' not in last
    # Out-of-range or malformed turn numbers clamp to the game's turns.
    assert turn_page(researcher, game, 99).context["number"] == 3
    url = reverse("games:game", kwargs={"pk": game.pk})
    assert researcher.get(url, {"turn": "x"}).context["number"] == 1


def test_game_page_flags_an_action_that_contradicts_the_selections(researcher, game):
    Turn.objects.filter(game=game, index=2).update(action="select G")
    html = turn_page(researcher, game, 3).content.decode()
    assert "does not match the recorded selections" in html and "<code>select H</code>" in html


def test_game_page_queries_do_not_grow_with_turns(researcher, django_assert_max_num_queries):
    system = make_system(make_study("Long"), 0, "B-FFT")
    long_game = make_game(system, [[f"{P}{i}"] for i in range(10)])
    for turn in long_game.turns.all():
        FeedbackLabel.objects.create(turn=turn, decoder="lexicon", kind="binary", label="positive")
    with django_assert_max_num_queries(8):
        assert turn_page(researcher, long_game, 5).status_code == 200


def test_game_page_shows_worker_hashes_never_raw_ids(researcher, game):
    worker = get_or_create_worker("prolific", "RAW-PROLIFIC-ID-123")
    Game.objects.filter(pk=game.pk).update(speaker=worker)
    html = turn_page(researcher, game, 1).content.decode()
    assert worker.id_hash[:12] in html
    assert "RAW-PROLIFIC-ID-123" not in html


def test_unknown_study_and_game_are_404(researcher):
    assert researcher.get(reverse("games:study", kwargs={"pk": 999999})).status_code == 404
    assert researcher.get(reverse("games:game", kwargs={"pk": 999999})).status_code == 404


def test_admin_worker_pages_show_the_hash_only(client):
    make_user("boss", role="admin")
    client.login(username="boss", password="pw-for-tests")
    worker = get_or_create_worker("mturk", "A1RAWMTURKID")
    listing = client.get("/admin/games/worker/").content.decode()
    change = client.get(f"/admin/games/worker/{worker.pk}/change/").content.decode()
    for html in (listing, change):
        assert worker.id_hash in html
        assert "A1RAWMTURKID" not in html
        assert "encrypted" not in html.lower()
    for page in ("game", "turn", "tangram", "study", "round", "system", "feedbacklabel"):
        assert client.get(f"/admin/games/{page}/").status_code == 200
