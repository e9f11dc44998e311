"""`threads: null`: how many torch threads a job takes (jobs.auto_threads on the work of one training step,
within its launcher's share of the cores and the cores left idle), and what its record says it used."""
from __future__ import annotations

import json

import pytest
import torch

from regbench import jobs
from regbench.experiment import Experiment, step_flops
from tests.conftest import run_cli

PER_THREAD = jobs.STEP_FLOPS_PER_THREAD


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Experiment.run sets torch's thread count for the process: give the next tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def idle(monkeypatch):
    """A machine of 8 cores, `idle.free` of them idle (default all); counts how often it was looked at."""
    class Idle:
        free: int | None = 8
        looks = 0

        def __call__(self, seconds: float = 0.1) -> int | None:
            self.looks += 1
            return self.free
    state = Idle()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # conftest gives the tests one thread: a user's has none
    monkeypatch.setattr(jobs, "free_cores", state)
    monkeypatch.setattr(jobs, "cores", lambda: 8)
    return state


# ---- the rule -----------------------------------------------------------------------------------

def test_a_small_step_takes_one_thread_without_looking_at_the_machine(idle):
    assert jobs.auto_threads(PER_THREAD - 1, None) == 1
    assert jobs.auto_threads(0, 4) == 1
    assert idle.looks == 0


@pytest.mark.parametrize("step, share, expected", [
    (2 * PER_THREAD, None, 2),        # one thread per PER_THREAD of a step's work
    (3.5 * PER_THREAD, None, 3),      # rounded down
    (100 * PER_THREAD, None, 8),      # never more than the cores
    (100 * PER_THREAD, 4, 4),         # nor more than a parallel launcher's share (jobs.job_threads)
    (100 * PER_THREAD, 1, 1),
])
def test_a_large_step_takes_a_thread_per_share_of_work(idle, step, share, expected):
    assert jobs.auto_threads(step, share) == expected


@pytest.mark.parametrize("free, expected", [(8, 8), (5, 5), (1, 1), (0, 1), (None, 8)])
def test_a_large_step_takes_no_more_threads_than_cores_left_idle(idle, free, expected):
    idle.free = free  # None: cannot be told (not Linux), then the share alone decides
    assert jobs.auto_threads(100 * PER_THREAD, None) == expected


def test_omp_num_threads_caps_the_threads_as_it_caps_torchs_default(idle, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert jobs.auto_threads(100 * PER_THREAD, None) == 3
    assert jobs.auto_threads(100 * PER_THREAD, 2) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a count: torch ignores it too
    assert jobs.auto_threads(100 * PER_THREAD, None) == 8


def test_cpus_stands_in_for_this_machines_cores(idle):
    assert jobs.auto_threads(100 * PER_THREAD, None, cpus=3) == 3


STAT = """cpu  {total}
cpu0 {a} 0 0 {a_idle} {a_wait} 0 0 0 0 0
cpu1 {b} 0 0 {b_idle} 0 0 0 0 0 0
intr 12345
"""


def test_idle_cores_sums_each_cores_idle_share():
    before = STAT.format(total="0", a=100, a_idle=100, a_wait=0, b=100, b_idle=100)
    # cpu0: 10 of 100 ticks working, 80 idle, 10 waiting on I/O (counts as idle); cpu1: 95 of 100 working
    after = STAT.format(total="0", a=110, a_idle=180, a_wait=10, b=195, b_idle=105)
    assert jobs.idle_cores(before, after) == 1                 # 0.9 + 0.05
    assert jobs.idle_cores(before, after, cpus={1}) == 0       # only cpu1 is ours
    assert jobs.idle_cores(before, after, cpus={0}) == 1
    assert jobs.idle_cores(before, "intr 1\n") is None


def test_free_cores_reads_this_machine():
    free = jobs.free_cores(0.05)
    assert free is not None and 0 <= free <= jobs.cores()


# ---- the work of a step, and the job's choice -------------------------------------------------

def test_step_flops_counts_the_layers_of_a_forward_pass_three_times(make_cfg):
    experiment = Experiment.from_config(make_cfg("replicates=3"))
    data = experiment.dataset.load()
    forward = 2 * (40 * 100 + 100 * 100 + 100 * 10)     # per example: 2 per multiply-add
    assert step_flops(experiment.model, data, 100, 3) == 3 * forward * 100 * 3 == 27_000_000
    assert step_flops(experiment.model, data, None, 1) == 3 * forward * len(data.y_train)


def test_step_flops_counts_a_convolution_at_every_position(make_cfg):
    experiment = Experiment.from_config(make_cfg("dataset=digits", "model.channels=[4]"))
    data = experiment.dataset.load()
    conv = 2 * 1 * 3 * 3 * 4 * 8 * 8        # 1 -> 4 channels, 3x3 kernel, padding 1, over the 8x8 image
    head = 2 * 4 * 4 * 4 * 10               # after the 2x2 pool: 4 x 4 x 4 features to 10 classes
    assert step_flops(experiment.model, data, 1, 1) == 3 * (conv + head)


def test_the_mnist1d_mlp_trains_on_one_thread(make_cfg, idle):
    experiment = Experiment.from_config(make_cfg("replicates=3", smoke=False))
    assert experiment.torch_threads(experiment.dataset.load(), 3) == 1


def test_a_job_with_enough_work_takes_more_threads_within_its_share(make_cfg, idle, monkeypatch):
    experiment = Experiment.from_config(make_cfg("replicates=3"))
    data = experiment.dataset.load()
    work = step_flops(experiment.model, data, experiment.trainer.batch_size, 3)
    monkeypatch.setattr(jobs, "STEP_FLOPS_PER_THREAD", work / 5)
    assert experiment.torch_threads(data, 3) == 5
    assert experiment.torch_threads(data, 6) == 8           # twice the members, twice the work: all 8 cores
    experiment.cores = 2                                    # joblib running 4 jobs at once (app.execute)
    assert experiment.torch_threads(data, 3) == 2
    idle.free = 1
    experiment.cores = None
    assert experiment.torch_threads(data, 3) == 1


def test_an_ensemble_counts_its_members(make_cfg, idle, monkeypatch):
    plain = Experiment.from_config(make_cfg("replicates=2"))
    data = plain.dataset.load()
    monkeypatch.setattr(jobs, "STEP_FLOPS_PER_THREAD", step_flops(plain.model, data, plain.trainer.batch_size, 2))
    assert plain.torch_threads(data, 2) == 1
    ensemble = Experiment.from_config(make_cfg("replicates=2", "regularizer=ensemble"))
    members = max(hook.ensemble_size() for hook in ensemble.regularizers)
    assert members > 1 and ensemble.torch_threads(data, 2) == members


def test_an_explicit_thread_count_wins(make_cfg, idle, monkeypatch):
    experiment = Experiment.from_config(make_cfg("threads=3"))
    experiment.cores = 1  # a launcher's share never replaces an explicit count
    data = experiment.dataset.load()
    assert experiment.torch_threads(data, 1) == 3
    monkeypatch.setattr(jobs, "STEP_FLOPS_PER_THREAD", 1.0)
    assert experiment.torch_threads(data, 1) == 3


# ---- what the record says ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("extra, expected", [([], 1), (["threads=2"], 2)], ids=["default", "explicit"])
def test_the_record_says_how_many_threads_torch_used(tmp_path, extra, expected):
    done = run_cli("+suite=smoke", "trainer.epochs=1", "progress=false", *extra, f"hydra.run.dir={tmp_path}",
                   env={"OMP_NUM_THREADS": None})  # a user's environment, not the tests' one thread
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["threads"] == expected


def test_the_record_says_the_threads_a_large_job_took(make_cfg, idle, monkeypatch, tmp_path):
    from regbench.experiment import job_record, run_job

    cfg = make_cfg("trainer.epochs=1", f"hydra.run.dir={tmp_path}")
    experiment = Experiment.from_config(cfg)
    monkeypatch.setattr(jobs, "STEP_FLOPS_PER_THREAD", 1.0)
    monkeypatch.setattr(jobs, "cores", lambda: 2)
    [(record, _)] = run_job(experiment, [job_record(experiment, cfg, [])])
    assert record["threads"] == torch.get_num_threads() == 2
