"""A job dir's claim (regbench.jobs.claim) is exclusive: real processes racing for one dir, round after round."""
from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest

from regbench import jobs

PROCESSES = 3
DEAD_PID = 999_999_999  # above any pid_max: no process has it


def attempt(directory: Path, tried) -> str:
    """One process's turn at `directory`: what it got ('held', 'refused', or what went wrong). A holder
    keeps the dir until every process has tried, so two holders at once cannot pass as taking turns."""
    waited = False
    try:
        with jobs.claim(directory) as holder:
            if holder is not None:
                outcome = "refused"
            elif json.loads((directory / jobs.CLAIM).read_text())["pid"] == os.getpid():
                outcome = "held"
            else:
                outcome = "held, but the claim file names another process"
            tried.wait()
            waited = True
    except Exception as error:
        outcome = f"{type(error).__name__}: {error}"
    if not waited:
        tried.wait()
    return outcome


def contend(root: Path, rounds: int, start, tried, outcomes) -> None:
    for round_ in range(rounds):
        directory = root / str(round_)
        start.wait()  # the dir is ready (fresh, or holding a dead process's claim): all go at once
        outcomes.put((round_, attempt(directory, tried)))


def race(root: Path, rounds: int, stale: bool) -> list[list[str]]:
    """Each round, PROCESSES processes claim one dir at once: a dir not yet made, or (stale) a dir holding
    the claim of a dead process. Returns each round's outcomes, sorted."""
    context = multiprocessing.get_context("spawn")
    start, tried = context.Barrier(PROCESSES + 1), context.Barrier(PROCESSES)
    outcomes = context.Queue()
    workers = [context.Process(target=contend, args=(root, rounds, start, tried, outcomes))
               for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    results = [[] for _ in range(rounds)]
    try:
        for round_ in range(rounds):
            if stale:
                (root / str(round_)).mkdir()
                (root / str(round_) / jobs.CLAIM).write_text(
                    json.dumps({"host": socket.gethostname(), "pid": DEAD_PID}))
            start.wait(timeout=60)
            for _ in range(PROCESSES):
                done, outcome = outcomes.get(timeout=60)
                results[done].append(outcome)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.exitcode is None:
                worker.kill()
    return [sorted(outcome) for outcome in results]


@pytest.mark.slow
@pytest.mark.parametrize("stale", [False, True], ids=["fresh dir", "dead holder"])
def test_one_process_holds_a_dir_that_several_claim_at_once(tmp_path, stale):
    rounds = 150
    results = race(tmp_path, rounds, stale)
    wrong = [(round_, outcome) for round_, outcome in enumerate(results)
             if outcome != ["held"] + ["refused"] * (PROCESSES - 1)]
    assert not wrong, f"{len(wrong)} of {rounds} rounds went wrong, e.g. {wrong[:3]}"
    # each holder let go: no claim is left behind, and a dir the claims made holds nothing else
    assert not list(tmp_path.glob(f"*/{jobs.CLAIM}*"))


def test_a_holder_leaves_a_claim_that_another_host_took_over(tmp_path):
    """A process on another host counts this one as gone and takes the dir over (jobs.alive cannot see
    across hosts); when this one lets go, the claim it removes must be its own, not the newcomer's."""
    other = json.dumps({"host": "another-host", "pid": 4321})
    with jobs.claim(tmp_path) as holder:
        assert holder is None
        replacement = tmp_path / "taken-over"
        replacement.write_text(other)
        os.replace(replacement, tmp_path / jobs.CLAIM)
    assert (tmp_path / jobs.CLAIM).read_text() == other
