"""Pilot a whole study by simulation: scripted speakers, model listeners, decoding, training."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError

from ._study import settings_from


class Command(BaseCommand):
    help = (
        "Create (or resume) a simulated study: per round, G games per system played by scripted "
        "speakers through the game engine with model listeners on the gpu-live queue, then "
        "feedback decoding, training of every model system, and the next round. Starts its own "
        "worker on the gpu-live, gpu-batch and default queues unless --no-worker. --json prints "
        "one row per round and system."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--games-per-system", type=int, default=60, dest="games")
        parser.add_argument("--systems", default="B-FFT,CONTROL")
        parser.add_argument("--speakers", choices=["letters", "names", "mixed"], default="names")
        parser.add_argument("--policy", required=True, help="hf:PATH[+lora:PATH] of round 0")
        parser.add_argument(
            "--population",
            default="{}",
            help='speaker parameters as JSON, e.g. \'{"approve": 0.4, "typo": 0.1, "idle": 0.02}\' '
            "(games.sim.speaker.Population)",
        )
        parser.add_argument("--decoder", default="lexicon")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--epochs", type=int, default=5, help="training epochs per round")
        parser.add_argument("--training-seeds", type=int, default=1)
        parser.add_argument(
            "--training-preset",
            choices=["paper", "tiny"],
            default="paper",
            help="tiny: the settings that teach a make_tiny_checkpoint policy on a CPU",
        )
        parser.add_argument(
            "--set", action="append", default=[], metavar="NAME=VALUE", help="training setting"
        )
        parser.add_argument("--concurrency", type=int, default=8, help="games played at once")
        parser.add_argument("--context-size", type=int, default=10, help="images per game")
        parser.add_argument("--targets", default="3-5", help="targets per game, MIN-MAX")
        parser.add_argument(
            "--no-worker", action="store_true", help="use running gpu-live and gpu-batch workers"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        from models_svc.simulation import SimulationPlan, check_plan, simulate
        from models_svc.training.config import PRESETS

        training = {
            **PRESETS[options["training_preset"]],
            "epochs": options["epochs"],
            "seeds": options["training_seeds"],
        }
        training |= settings_from(options["set"])
        plan = SimulationPlan(
            name=options["name"],
            rounds=options["rounds"],
            games_per_system=options["games"],
            systems=[s.strip() for s in options["systems"].split(",") if s.strip()],
            policy=options["policy"],
            population=_population(options),
            decoder=options["decoder"],
            seed=options["seed"],
            training=training,
            concurrency=options["concurrency"],
            context_size=options["context_size"],
            targets=_targets(options["targets"]),
        )
        try:
            check_plan(plan)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        worker = None if options["no_worker"] else self._start_worker()
        started = time.monotonic()
        try:
            study = simulate(plan, self._progress)
        except (ApplicationError, ValueError, RuntimeError) as exc:
            raise CommandError(f"{exc}{_resume_hint(plan.name)}") from exc
        except KeyboardInterrupt:
            raise CommandError(f"interrupted{_resume_hint(plan.name)}") from None
        finally:
            if worker is not None:
                _stop(worker)
        rows = self._rows(study)
        if options["json"]:
            self.stdout.write(json.dumps({"study": study.name, "simulated": True, "rows": rows}))
            return
        self.stdout.write(f"simulated study {study.name} in {time.monotonic() - started:.0f} s")
        for row in rows:
            success = row["success_rate"]
            decoder = row["decoder"] or {}
            self.stdout.write(
                f"  round {row['round']} {row['system']:8} {row['games']:4} games, success "
                f"{success['value']:.2f} [{success['ci'][0]:.2f}, {success['ci'][1]:.2f}], "
                f"{row['turns_per_game']['value']:.1f} turns/game, decoder precision "
                f"{_number(decoder.get('precision'))} recall {_number(decoder.get('recall'))}, "
                f"trained on {row['training_examples'] or '—'}"
            )

    def _progress(self, line: str) -> None:
        self.stderr.write(line)

    def _start_worker(self) -> subprocess.Popen:
        from config.celery import app

        log = (
            Path(settings.VAR_DIR if hasattr(settings, "VAR_DIR") else ".") / "simulate-worker.log"
        )
        # One worker takes both kinds of GPU work here: the simulation waits for its games to
        # end before decoding and training, so batch work never competes with live turns.
        queues = ",".join([settings.GPU_LIVE_QUEUE, settings.GPU_BATCH_QUEUE, "default"])
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues]
        command += ["--pool", "threads", "-c", "8", "--without-gossip", "--without-mingle"]
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=dict(os.environ),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        # A ping expires after its timeout, and a worker on the filesystem broker polls its
        # queues about once a second: pings that expire sooner can miss every poll for as long
        # as the two loops keep in step, so each ping lives two seconds.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"the worker did not start: see {log}")
            if app.control.ping(timeout=2.0, limit=1):
                return process
        _stop(process)
        raise CommandError(f"the worker did not answer within a minute: see {log}")

    @staticmethod
    def _rows(study) -> list[dict]:
        from models_svc.simulation import decoder_truth, training_examples

        buffer = io.StringIO()
        call_command("compute_metrics", "--study", study.name, "--json", stdout=buffer)
        metrics = json.loads(buffer.getvalue())
        truth = decoder_truth(study)
        examples = training_examples(study)
        keys = ("games", "success_rate", "turns_per_game", "click_accuracy")
        return [
            {
                "round": row["round"],
                "system": row["system"],
                **{key: row[key] for key in keys},
                "decoder": truth.get((row["round"], row["system"])),
                "training_examples": examples.get((row["round"], row["system"])),
            }
            for row in metrics["rows"]
        ]


def _stop(process: subprocess.Popen) -> None:
    """End the worker this command started: a warm shutdown, a kill if it does not end in time."""
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _resume_hint(name: str) -> str:
    """Games the stop left in play, which the same command started again finishes."""
    from games.models import Game

    playing = Game.objects.filter(study__name=name, status=Game.Status.PLAYING).count()
    if not playing:
        return ""
    return (
        f" ({playing} game{'s' * (playing != 1)} left in play: start the same command again to "
        "finish them and resume the study)"
    )


def _population(options) -> dict:
    try:
        extra = json.loads(options["population"])
    except ValueError as exc:
        raise CommandError(f"--population is not JSON: {exc}") from exc
    if not isinstance(extra, dict):
        raise CommandError("--population must be a JSON object of speaker parameters")
    return {**extra, "refer": options["speakers"], "seed": options["seed"]}


def _targets(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        return (int(low), int(high or low))
    except ValueError:
        raise CommandError(f"--targets {text!r}: write MIN-MAX, e.g. 3-5") from None


def _number(value) -> str:
    return "—" if value is None else f"{value:.2f}"
