"""Simulated studies: rounds of scripted-speaker games, decoding, training and the next round.

A simulated study is an ordinary study flagged ``simulated`` whose plan and speaker population
are stored with it (``Study.simulation``), so every step is resumable: a round plays only the
games its systems still lack, decoding skips labelled turns, training skips systems with a
finished run, and the next round is opened only once. Games are played through the engine with
model listeners answering on the ``gpu-live`` queue (``games.sim.driver``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import close_old_connections, transaction

from games.live import engine
from games.live.configs import derive_seed, draw_config
from games.models import Game, GameConfig, Round, Study, System, Tangram, Worker
from games.rounds import SystemSpec, open_round
from games.sim.driver import LISTENERS, play_game
from games.sim.speaker import Population
from games.tangrams import generate_demo_tangrams
from games.workers import get_or_create_worker

from .models import TrainingRun
from .selectors import tangram_image_path
from .services import decode_study
from .training.config import training_config
from .training.manifests import build_seed_manifest
from .training.runs import finished_run, launch_training_run, open_next_round
from .training.selectors import TrainingError, decoder_kind, objective_of

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
SIMULATED_TURN_SECONDS = 900
# Simulated games draw from one split, so that human-listener (oracle) games qualify as D₀.
SIMULATED_SPLIT = "train"


@dataclass
class SimulationPlan:
    name: str
    rounds: int
    games_per_system: int
    systems: list[str]
    policy: str
    population: dict = field(default_factory=dict)
    decoder: str = "lexicon"
    seed: int = 0
    training: dict = field(default_factory=dict)
    concurrency: int = 8
    context_size: int = 10
    targets: tuple[int, int] = (3, 5)

    def speakers(self) -> Population:
        return Population(**self.population)


def check_plan(plan: SimulationPlan) -> None:
    """Refuse a plan that could not run to its end, before anything is written: ValueError
    naming the ``simulate_study`` option at fault (``--rounds: …``)."""
    counts = {
        "--rounds": plan.rounds,
        "--games-per-system": plan.games_per_system,
        "--concurrency": plan.concurrency,
        "--context-size": plan.context_size,
    }
    for option, value in counts.items():
        if value < 1:
            raise ValueError(f"{option}: must be at least 1, not {value}")
    if not plan.systems:
        raise ValueError("--systems: name at least one system")
    low, high = plan.targets
    if not 1 <= low <= high <= plan.context_size:
        raise ValueError(
            f"--targets: {low}-{high} must satisfy 1 ≤ MIN ≤ MAX ≤ --context-size "
            f"({plan.context_size})"
        )
    try:
        Population(**plan.population)
    except TypeError as error:
        raise ValueError(f"unknown speaker parameter in the population: {error}") from error
    trained = [n for n in plan.systems if n not in (System.HUMAN, System.CONTROL)]
    for objective in sorted({objective_of(name) for name in trained} or {"fft"}):
        try:
            training_config(objective, settings.TRAINING, plan.training)
        except ValueError as error:
            raise ValueError(f"--epochs/--training-seeds/--set: {error}") from error


def prepare_study(plan: SimulationPlan) -> Study:
    """The simulated study of ``plan.name`` with its round 0, created if missing. An existing
    study must be simulated and have been started with the same plan (it is resumed)."""
    check_plan(plan)
    study = Study.objects.filter(name=plan.name).first()
    if study is not None:
        if not study.simulated:
            raise ValueError(f"study {plan.name!r} exists and is not a simulated study")
        stored = dict(study.simulation.get("plan", {}))
        mine = json.loads(json.dumps(asdict(plan)))  # as stored: tuples become lists
        if {k: stored.get(k) for k in mine if k != "rounds"} != {
            k: v for k, v in mine.items() if k != "rounds"
        }:
            raise ValueError(
                f"simulated study {plan.name!r} was started with another plan "
                f"({stored}); resume it with the same options or choose another --name"
            )
        study.simulation = {**study.simulation, "plan": mine}
        study.save(update_fields=["simulation"])
        return study
    _ensure_tangrams(plan.context_size)
    with transaction.atomic():
        study = Study.objects.create(
            name=plan.name,
            description="Simulated study (scripted speakers).",
            simulated=True,
            # Scripted speakers answer at once; generous limits keep a busy machine from timing
            # turns out (idle speakers are simulated on the engine's clock instead).
            speaker_seconds=SIMULATED_TURN_SECONDS,
            listener_seconds=SIMULATED_TURN_SECONDS,
            context_size=plan.context_size,
            min_targets=plan.targets[0],
            max_targets=plan.targets[1],
            simulation={"plan": asdict(plan), "population": plan.speakers().as_dict()},
        )
        systems = [
            SystemSpec(
                name=name,
                policy_checkpoint="" if name == System.HUMAN else plan.policy,
                decoder="" if name == System.HUMAN else plan.decoder,
                description="simulated",
            )
            for name in plan.systems
        ]
        open_round(study, 0, systems, notes="simulated")
    return study


def _ensure_tangrams(size: int) -> None:
    if len(_image_pool()) < size:
        generate_demo_tangrams()


def _image_pool() -> list[str]:
    tangrams = Tangram.objects.filter(split=SIMULATED_SPLIT).order_by("name")
    return [t.name for t in tangrams if tangram_image_path(t, t.name)]


def _speaker(study: Study) -> Worker:
    return get_or_create_worker(Worker.Platform.LOCAL, f"simulated-speaker-{study.pk}")


def _listener(study: Study) -> Worker:
    return get_or_create_worker(Worker.Platform.LOCAL, f"simulated-listener-{study.pk}")


def missing_games(round_: Round, plan: SimulationPlan) -> list[Callable[[], Game]]:
    """One starter per game the round still needs: the games a stopped run left in play (their
    turn clock restarts, since the pause was the simulator's, not the speaker's idling), then
    new games, each created and started only when a player thread takes it, so that a stop
    leaves at most ``plan.concurrency`` games in play."""
    starters: list[Callable[[], Game]] = []
    fresh_deadline = engine.clock.now() + timedelta(seconds=SIMULATED_TURN_SECONDS)
    for system in round_.systems.order_by("name"):
        present = list(Game.objects.filter(round=round_, system=system).order_by("pk"))
        playing = [g.pk for g in present if g.status == Game.Status.PLAYING]
        Game.objects.filter(pk__in=playing).update(deadline=fresh_deadline)
        starters += [partial(Game.objects.get, pk=pk) for pk in playing]
        taken = {g.external_id for g in present}
        numbers = [
            n for n in range(plan.games_per_system) if _external_id(round_, system, n) not in taken
        ]
        for number in numbers[: max(0, plan.games_per_system - len(present))]:
            starters.append(partial(_start_game, round_, system, plan, number))
    return starters


def _external_id(round_: Round, system: System, number: int) -> str:
    return f"sim-{round_.index}-{system.name}-{number:04d}"


def _start_game(round_: Round, system: System, plan: SimulationPlan, number: int) -> Game:
    study = round_.study
    seed = derive_seed(plan.seed, round_.index, system.name, number)
    with transaction.atomic():
        config = GameConfig.objects.create(
            study=study, seed=seed, **draw_config(study, _image_pool(), seed)
        )
        game = Game.objects.create(
            study=study,
            round=round_,
            system=system,
            config=config,
            external_id=_external_id(round_, system, number),
            speaker=_speaker(study),
            listener=_listener(study) if system.is_human else None,
        )
        engine.start_game(game, engine.clock.now())
    return game


def play_round(round_: Round, plan: SimulationPlan, progress: Progress) -> int:
    """Play the round's missing games, ``plan.concurrency`` at a time; returns how many."""
    games = missing_games(round_, plan)
    population = plan.speakers()
    done = 0
    lock = threading.Lock()
    stopping = threading.Event()

    def play(start: Callable[[], Game]) -> None:
        nonlocal done
        try:
            game = start()
            listener = LISTENERS["oracle"] if game.system.is_human else None
            seed = f"{plan.seed}:{game.external_id}"
            played = play_game(game.pk, population, seed, listener=listener, stop=stopping.is_set)
            record_truth(played.game_id, played.satisfied, population)
        finally:
            close_old_connections()
        with lock:
            done += 1
            progress(f"round {round_.index}: played {done}/{len(games)} games")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, plan.concurrency)) as pool:
        futures = [pool.submit(play, start) for start in games]
        try:
            for future in futures:
                future.result()
        except BaseException:
            # Start no more games; those in play stop at their next move and stay in play
            # for the next run to resume.
            stopping.set()
            for future in futures:
                future.cancel()
            raise
    if games:
        seconds = time.monotonic() - started
        progress(
            f"round {round_.index}: played {len(games)} games in {seconds:.1f} s "
            f"({len(games) / seconds:.2f} games/s)"
        )
    return len(games)


def record_truth(game_id: int, satisfied: list[bool | None], population: Population) -> None:
    """Keep the speaker's own satisfaction after each turn with the game (decoder truth)."""
    game = Game.objects.get(pk=game_id)
    game.metadata = {
        **game.metadata,
        "simulation": {
            "population": f"{population.name}@{population.version}",
            "satisfied": satisfied,
        },
    }
    game.save(update_fields=["metadata"])


def decode_round(study: Study, round_: Round, plan: SimulationPlan) -> None:
    """Label the round's model-system turns in the kind each system learns from (CONTROL and
    other names without a B-/T- prefix: binary, for the dashboards)."""
    for system in round_.systems.exclude(name=System.HUMAN):
        decode_study(
            study,
            decoder_spec=plan.decoder,
            kind=_kind(system.name),
            round_index=round_.index,
            system_name=system.name,
        )


def _kind(system_name: str) -> str:
    try:
        return decoder_kind(system_name)
    except TrainingError:
        return "binary"


def train_round(study: Study, round_: Round, plan: SimulationPlan, progress: Progress) -> None:
    """Train every model system of the round (except CONTROL) on the worker, one at a time."""
    for system in round_.systems.exclude(name__in=(System.HUMAN, System.CONTROL)).order_by("name"):
        if finished_run(study, round_.index, system.name):
            continue
        run = TrainingRun.objects.filter(
            study=study,
            round_index=round_.index,
            system_name=system.name,
            status__in=(TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING),
        ).first()
        if run is None:
            run = launch_training_run(
                study,
                round_.index,
                system.name,
                base=plan.policy.split("+lora:", 1)[0],
                # D₀ comes from the HH games: without them there is nothing to rehearse
                overrides={
                    **plan.training,
                    **({} if System.HUMAN in plan.systems else {"rehearse_seed_set": False}),
                },
            )
        while run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
            time.sleep(1)
            run.refresh_from_db()
            progress(
                f"round {round_.index}: training {system.name} epoch {run.epoch} step "
                f"{run.step}/{run.total_steps}"
            )
        progress(f"round {round_.index}: trained {system.name} ({_seconds(run)})")
        if run.status != TrainingRun.Status.DONE:
            raise RuntimeError(
                f"training {system.name} in round {round_.index} {run.status}: {run.error}"
            )


def simulate(plan: SimulationPlan, progress: Progress) -> Study:
    """Run (or resume) the whole simulated study."""
    study = prepare_study(plan)
    for index in range(plan.rounds):
        round_ = Round.objects.get(study=study, index=index)
        play_round(round_, plan, progress)
        decode_round(study, round_, plan)
        if index == 0 and System.HUMAN in plan.systems:
            build_seed_manifest(study, 0, split=SIMULATED_SPLIT)
            progress("round 0: seed set D₀ built from the human-listener (oracle) games")
        if index + 1 == plan.rounds:
            break
        train_round(study, round_, plan, progress)
        if not Round.objects.filter(study=study, index=index + 1).exists():
            open_next_round(study, index)
            progress(f"opened round {index + 1}")
    return study


def decoder_truth(study: Study) -> dict[tuple[int, str], dict]:
    """Per (round, system): the decoder's positive labels against the simulated speakers' own
    satisfaction (precision and recall of ``positive``; None where undefined)."""
    from games.models import FeedbackLabel

    counts: dict[tuple[int, str], dict[str, int]] = {}
    games = Game.objects.filter(study=study).select_related("round", "system")
    truth = {
        game.pk: (game.round.index, game.system.name, game.metadata.get("simulation", {}))
        for game in games
    }
    labels = FeedbackLabel.objects.filter(turn__game__study=study).values_list(
        "turn__game_id", "turn__index", "label", "kind"
    )
    for game_id, index, label, kind in labels:
        round_index, system_name, simulated = truth[game_id]
        if kind != _kind(system_name):
            continue
        satisfied = simulated.get("satisfied", [])
        if index >= len(satisfied) or satisfied[index] is None:
            continue
        cell = counts.setdefault((round_index, system_name), {"tp": 0, "fp": 0, "fn": 0, "n": 0})
        predicted, actual = label == "positive", bool(satisfied[index])
        cell["n"] += 1
        cell["tp"] += predicted and actual
        cell["fp"] += predicted and not actual
        cell["fn"] += actual and not predicted
    return {
        key: {
            "labelled": cell["n"],
            "precision": cell["tp"] / (cell["tp"] + cell["fp"])
            if cell["tp"] + cell["fp"]
            else None,
            "recall": cell["tp"] / (cell["tp"] + cell["fn"]) if cell["tp"] + cell["fn"] else None,
        }
        for key, cell in counts.items()
    }


def training_examples(study: Study) -> dict[tuple[int, str], int]:
    """Examples each system's finished run of a round trained on."""
    runs = TrainingRun.objects.filter(study=study, status=TrainingRun.Status.DONE)
    return {(r.round_index, r.system_name): r.manifest.summary["examples"] for r in runs}


def _seconds(run: TrainingRun) -> str:
    if run.started_at and run.finished_at:
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"
    return "time unknown"
