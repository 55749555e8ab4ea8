"""The seed set D₀: its synthetic deselection turns and one D₀ per prompt format."""

from __future__ import annotations

import pytest

from games.models import Tangram
from models_svc.training.manifests import build_seed_manifest
from models_svc.training.selectors import manifest_examples
from tests.factories import make_game, make_study, make_system

pytestmark = pytest.mark.django_db

TARGETS = ["page8-0", "page8-1", "page8-2"]  # letters J, I, H (the listener order is reversed)


def seed_study(name: str = "seed", games: int = 12):
    """Human–human games on dev tangrams: turn 0 selects J (a target, good); turn 1 selects E
    and I together (E is not a target: not good); turn 2 deselects E (good)."""
    study = make_study(name)
    Tangram.objects.bulk_create(
        [Tangram(name=f"page8-{i}", split="dev") for i in range(10)], ignore_conflicts=True
    )
    human = make_system(study, 0, "HH")
    for _ in range(games):
        make_game(
            human,
            [["page8-0"], ["page8-0", "page8-5", "page8-1"], ["page8-0", "page8-1"]],
            ["the bird", "the hat and the boat", "no, not the hat"],
            targets=TARGETS,
            tangram_prefix="page8-",
        )
    return study


def test_an_undo_turn_deselects_everything_the_previous_turn_newly_selected():
    study = seed_study()
    manifest = build_seed_manifest(study, 0)
    assert manifest.summary["real"] == 24
    assert manifest.summary["excluded"] == {"not_good": 12}
    assert manifest.summary["synthetic"] == {"undo": 1, "clear": 1}
    synthetic = {e["kind"]: e for e in manifest.entries if "kind" in e}
    # The turn it follows was "select E I" (I a target): the undo takes both back, so the
    # listener is never taught to tell targets apart from what the speaker called wrong.
    assert synthetic["undo"]["action"] == "deselect E I"
    undo = next(e for e in manifest_examples(manifest) if e.key.startswith("synthetic:undo"))
    assert undo.selection == ("E", "I", "J")
    assert undo.history[-1].action == "select E I"
    assert undo.action == "deselect E I"


def test_seed_sets_are_built_and_found_per_prompt_format():
    from models_svc.models import TrainingManifest
    from models_svc.training.selectors import seed_manifest_for

    study = seed_study("formats", games=2)
    assert seed_manifest_for(study, "respect-2024") is None
    plain = build_seed_manifest(study, 0)
    assert plain.prompt_format == "respect-2024"
    assert seed_manifest_for(study, "respect-2024") == plain
    assert seed_manifest_for(study, "platform-p1") is None
    other = build_seed_manifest(study, 0, prompt_format="platform-p1")
    assert other.pk != plain.pk and other.prompt_format == "platform-p1"
    assert seed_manifest_for(study, "platform-p1") == other
    assert seed_manifest_for(study, "respect-2024") == plain
    assert TrainingManifest.objects.filter(role="seed").count() == 2
