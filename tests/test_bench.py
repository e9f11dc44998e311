"""`make bench`'s harness at tiny sizes: the structure of its results, not its timings."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from regbench import bench
from regbench.data import DATASETS
from regbench.models import MODELS


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """bench.main(--threads) sets torch's thread count for the process: give the next tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_training_flops_counts_six_per_weight_per_example():
    model = MODELS["mlp"]().build((40,), 10)
    weights = 40 * 100 + 100 * 100 + 100 * 10
    assert bench.training_flops(model, 3600) == 6 * weights * 3600 == 324_000_000


def test_reference_is_the_default_mlp():
    assert bench.linear_shapes(bench.reference_model()) == \
        bench.linear_shapes(MODELS["mlp"]().build((40,), 10))


def test_reference_loop_trains():
    torch.manual_seed(0)
    x = torch.randn(200, 40)
    y = torch.randint(0, 10, (200,))
    torch.manual_seed(3)
    before = bench.reference_model()
    untrained = bench.train_reference(x, y, epochs=0, seed=3, device=torch.device("cpu"))
    assert torch.equal(before[0].weight, untrained[0].weight)   # the seed's init...
    after = bench.train_reference(x, y, epochs=2, seed=3, device=torch.device("cpu"))
    assert not torch.equal(before[0].weight, after[0].weight)  # ...moved by training


@pytest.mark.slow
def test_main_writes_every_row(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--epochs", "1", "--sizes", "1", "2", "--repeats", "1", "--skip-process", "--skip-grid", "--skip-threads",
                "--device", "cpu",
                "--threads", "1",
                "--techniques", "none", "dropout", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["epochs"] == 1 and result["process"] == []
    assert result["floor"]["flops_per_model_epoch"] == 6 * 15_000 * result["n_train"]
    assert result["floor"]["matmul_flops_per_s"] > 0 and result["reference"]["seconds_per_model"] > 0
    assert [(row["technique"], row["P"]) for row in result["population"]] == \
        [("none", 1), ("none", 2), ("dropout", 1), ("dropout", 2)]
    for row in result["population"]:
        assert row["seconds_per_model"] > 0 and row["seconds_per_model_evaluating_at_end"] > 0
        assert row["floor_fraction"] == pytest.approx(result["floor"]["seconds_per_model"] / row["seconds_per_model"])
    printed = capsys.readouterr().out
    assert "technique none" in printed and "technique dropout" in printed and "reference loop" in printed


@pytest.mark.slow
def test_process_rows_time_both_processes_and_their_peak_memory(capsys):
    DATASETS["mnist1d"](data_dir=bench.data_dir()).load()  # the reference process reads the cache
    rows = bench.process_rows(epochs=1, device=torch.device("cpu"), models=[2], repeats=1)
    assert [(row["name"], row["models"]) for row in rows] == \
        [("reference loop", 2), ("regbench replicates=2", 2)]
    for row in rows:
        assert row["seconds_per_model"] == pytest.approx(row["wall_seconds"] / 2)
        assert 50 * 2 ** 20 < row["peak_rss_bytes"] < 4 * 2 ** 30   # a python process with torch loaded
    assert rows[0]["reference_over_this"] == 1.0
    assert rows[1]["reference_over_this"] == pytest.approx(rows[0]["wall_seconds"] / rows[1]["wall_seconds"])


@pytest.mark.slow
def test_peak_memory_is_the_commands_own_not_the_benchmarks():
    hold = [torch.ones(2 ** 27)]   # this process holds 512 MiB more than the small command ever does
    _, small = bench.run_process([sys.executable, "-S", "-c", "pass"])
    _, large = bench.run_process([sys.executable, "-S", "-c", "x = bytearray(300 * 2 ** 20)"])
    del hold
    assert small < 100 * 2 ** 20
    assert 300 * 2 ** 20 < large < 400 * 2 ** 20


def test_a_failing_process_is_an_error_with_its_stderr():
    with pytest.raises(RuntimeError, match="no such option --nope"):
        bench.run_process([sys.executable, "-c", "import sys; sys.exit('no such option --nope')"])


def test_reference_only_runs_from_the_cache(capsys):
    bench.main(["--reference-only", "--data-file", bench.cached_draw(), "--models", "1", "--epochs", "1",
                "--device", "cpu"])
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs=0 is not allowed"),
    (["--threads", "0"], "--threads=0 is not allowed"),
    (["--sizes", "4", "0"], "--sizes=[4, 0] is not allowed"),
    (["--process-models", "0"], "--process-models=[0] is not allowed"),
    (["--process-repeats", "0"], "--process-repeats=0 is not allowed"),
    (["--techniques", "nosuch"], "--techniques nosuch not known"),
])
def test_bad_options_exit_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_grid_rows_time_one_grid_job_against_a_job_per_value():
    torch.set_num_threads(1)
    rows = bench.grid_rows(1, torch.device("cpu"), [1e-3, 1e-2], seeds=1, repeats=1)
    assert [(row["jobs"], row["models"]) for row in rows] == [(1, 2), (2, 2), (2, 2)]
    # each way really trained each value as a result of its own: the grid in one job dir
    assert [(row["results"], row["job_dirs"]) for row in rows] == [(2, 1), (2, 2), (2, 2)]
    assert "joblib" in rows[2]["name"]
    for row in rows:   # each a real sweep that ran (run_process raises on a failed one)
        assert row["wall_seconds"] > 0 and row["peak_rss_bytes"] > 2 ** 20


# ---- the threads table and --busy ----------------------------------------------------------------

def cpu_ticks(pid: int) -> int:
    """User + system clock ticks process `pid` has run so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.slow
def test_busy_processes_keep_cores_busy_and_are_gone_after():
    with bench.busy_processes(2) as spinners:
        pids = [spinner.pid for spinner in spinners]
        before = [cpu_ticks(pid) for pid in pids]
        time.sleep(1.0)
        assert all(spinner.poll() is None for spinner in spinners)
        assert all(cpu_ticks(pid) > ticks for pid, ticks in zip(pids, before))  # spinning, not sleeping
    assert all(spinner.returncode is not None for spinner in spinners)   # killed and reaped
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_busy_processes_stop_on_an_error_in_the_block():
    with pytest.raises(KeyboardInterrupt):
        with bench.busy_processes(1) as spinners:
            raise KeyboardInterrupt   # Ctrl-C while a timed process runs
    assert spinners[0].returncode is not None and not Path(f"/proc/{spinners[0].pid}").exists()


@pytest.mark.slow
def test_busy_processes_stop_by_themselves_when_the_benchmark_is_killed():
    """kill -9 of the benchmark leaves no `finally` to run: each spinner sees its parent gone and ends."""
    code = ("import os, signal\nfrom regbench import bench\n"
            "with bench.busy_processes(1) as spinners:\n"
            "    print(spinners[0].pid, flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    orphan, state = int(done.stdout), ""
    deadline = time.monotonic() + 30
    while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
        state = Path(f"/proc/{orphan}/stat").read_text().rpartition(")")[2].split()[0]
        if state == "Z":      # ended; a zombie until init reaps it
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{orphan}").exists() or state == "Z"


@pytest.mark.slow
def test_thread_rows_time_the_default_against_one_and_all_threads_idle_and_busy():
    tiny = [("smoke MLP", ["+suite=smoke"], 1.0)]
    rows = bench.thread_rows(epochs=1, busy=1, repeats=1, jobs=tiny)
    assert [(row["busy"], row["setting"]) for row in rows] == \
        [(load, setting) for load in (0, 1) for setting in ("default", "threads=1", "threads=all")]
    from regbench.jobs import cores
    # the threads each process's record says torch used: a tiny job's default is one thread
    assert [row["threads"] for row in rows] == [1, 1, cores()] * 2
    for load in (0, 1):
        cells = [row for row in rows if row["busy"] == load]
        assert min(row["over_best"] for row in cells) == 1.0
        assert all(row["wall_seconds"] > row["train_seconds"] > 0 for row in cells)
        assert cells[2]["over_all"] == 1.0
        assert cells[0]["over_all"] == pytest.approx(cells[0]["wall_seconds"] / cells[2]["wall_seconds"])


def test_busy_needs_a_count_of_zero_or_more(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--busy", "-1"])
    assert exit_info.value.code == 2
    assert "--busy=-1 is not allowed: expected an integer >= 0" in capsys.readouterr().err
