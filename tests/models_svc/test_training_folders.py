"""A run's folder is its own: named by a unique id, claimed with the run's identity, and read
back only as plain trainer state (a planted pickle never runs)."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
import torch

from models_svc.models import TrainingRun
from models_svc.training.checkpoint_io import RunFolderError
from models_svc.training.config import training_config
from models_svc.training.runs import run_dir
from models_svc.training.trainer import TrainingJob, train

from .test_trainer import random_game


def test_runs_with_the_same_database_id_never_share_a_folder(settings, tmp_path):
    # Two fresh databases both number their first run 1: the folders still differ.
    settings.TRAINING_DIR = tmp_path
    first, second = TrainingRun(pk=1), TrainingRun(pk=1)
    assert first.folder != second.folder
    assert run_dir(first) != run_dir(second)
    assert run_dir(first) == tmp_path / f"run-{first.folder}"
    assert isinstance(first.folder, uuid.UUID)


class Planted:
    """An object whose unpickling writes a file (what a malicious trainer state would do)."""

    marker = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


@pytest.fixture(scope="module")
def paths(tangram_images):
    from .conftest import NAMES

    return dict(zip(NAMES, tangram_images, strict=True))


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _job(model, paths, out, identity, epochs=2):
    examples = [e for g in range(2) for e in random_game(g, random.Random(g), turns=2)]
    config = training_config("fft", {"epochs": epochs, "seeds": 1, "effective_batch": 4})
    return TrainingJob(model, str(out), config, examples, paths, device="cpu", identity=identity)


@pytest.mark.ml
def test_a_folder_is_resumed_only_by_its_own_run_and_never_unpickled(
    tiny_idefics2, paths, tmp_path, one_thread
):
    out = tmp_path / "run"
    mine = {"run": "a", "manifest": "h1"}
    train(_job(tiny_idefics2, paths, out, mine))
    state = out / "seed-0" / "epoch-1" / "trainer_state.pt"
    finished = state.stat().st_mtime_ns

    # Another run (another database's run 1, or the same run over other data) is refused.
    for other in ({"run": "b", "manifest": "h1"}, {"run": "a", "manifest": "h2"}):
        with pytest.raises(RunFolderError, match="belongs to manifest h1, run a"):
            train(_job(tiny_idefics2, paths, out, other))
    assert state.stat().st_mtime_ns == finished

    # Checkpoints that no identity record claims are refused too.
    (out / "run.json").unlink()
    with pytest.raises(RunFolderError, match="no identity record claims"):
        train(_job(tiny_idefics2, paths, out, mine))

    # A planted pickle in the run's own folder is refused without running.
    (out / "run.json").write_text('{"manifest": "h1", "run": "a"}')
    marker = tmp_path / "marker"
    Planted.marker = str(marker)
    state.unlink()
    torch.save({"optimizer": Planted()}, out / "seed-0" / "epoch-0" / "trainer_state.pt")
    with pytest.raises(RunFolderError, match="not plain trainer state"):
        train(_job(tiny_idefics2, paths, out, mine))
    assert not marker.exists()
