"""Every job in jobs/ through the Jobs API, as a user submits it from the repo: `ray job submit --working-dir .
-- python jobs/<job>.py --config jobs/configs/<job>.yaml --set ...` (synth once through JobSubmissionClient)
to a real head, each ending SUCCEEDED with its outputs in place, on tiny settings; a bad config ends
FAILED with the field error as the last line of the job's log. The jobs chain (synth -> extract ->
annotate -> train -> predict -> evaluate, sweep) through module fixtures; the demo runs on its own. ~5 min on
2 cores."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from heads import REPO, VENV_BIN, JobRun, job_logs, last_lines, submit

pytestmark = pytest.mark.slow

RUNTIMES: dict[str, float] = {}  # job -> seconds from submission to its end (printed at teardown)


@pytest.fixture(scope="module")
def head(plain_head):
    yield plain_head
    print(f"\njob runtimes (s): {json.dumps(RUNTIMES)}")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jobs")


def _status(head, submission_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(head.dashboard_url).get_job_status(submission_id))


def _sets(*values: str) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def _succeeded(head, run: JobRun, job: str) -> JobRun:
    RUNTIMES[job] = run.seconds
    assert run.returncode == 0 and _status(head, run.submission_id) == "SUCCEEDED", run.output[-4000:]
    return run


@pytest.fixture(scope="module")
def synth_videos(head, work) -> str:
    """jobs/synth.py through the Python SDK (JobSubmissionClient), polled to its end."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    out = work / "synth"
    client = JobSubmissionClient(head.dashboard_url)
    entrypoint = (f"python jobs/synth.py --config jobs/configs/synth.yaml --set out={out} --set num_videos=4 "
                  "--set num_frames=100 --set width=96 --set height=72 --set seed=3")  # fmt: skip
    began = time.monotonic()
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env={"working_dir": str(REPO)})
    deadline = began + 180
    while client.get_job_status(job_id) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.monotonic() < deadline, client.get_job_logs(job_id)[-3000:]
        time.sleep(1)
    RUNTIMES["synth (JobSubmissionClient)"] = round(time.monotonic() - began, 1)
    assert client.get_job_status(job_id) == JobStatus.SUCCEEDED, client.get_job_logs(job_id)[-4000:]
    return str(out)


@pytest.fixture(scope="module")
def dataset(head, work, synth_videos) -> str:
    out = work / "dataset"
    sets = _sets(f"videos=[{synth_videos}]", f"out={out}", "clip.min_bin_frames=100", "writers.max_size=1")
    _succeeded(head, submit(head, "extract", "--config", "jobs/configs/extract.yaml", *sets), "extract")
    return str(out)


@pytest.fixture(scope="module")
def annotated(head, work, dataset) -> str:
    out = work / "annotated"
    sets = _sets(f"dataset={dataset}", f"out={out}", "split.val_fraction=0.5")
    _succeeded(head, submit(head, "annotate", "--config", "jobs/configs/annotate.yaml", *sets), "annotate")
    return str(out)


@pytest.fixture(scope="module")
def trained(head, work, annotated) -> dict:
    args = ["--dataset", f"{annotated}/train", "--storage", str(work / "train"), "--name", "jobs", "--max-steps", "2",
            "--workers", "1", *_sets("checkpoint.every_n_steps=2", "data.frames_per_sample=2")]  # fmt: skip
    _succeeded(head, submit(head, "train", "--config", "jobs/configs/train_tiny.yaml", *args), "train")
    return json.loads((work / "train" / "jobs" / "train_summary.json").read_text())


@pytest.fixture(scope="module")
def predictions(head, work, annotated, trained) -> str:
    out = work / "predictions.jsonl"
    sets = _sets(f"dataset={annotated}/valid", f"checkpoint={trained['export']['checkpoint']}", f"out={out}",
                 "inference.num_frames=2")
    _succeeded(head, submit(head, "predict", "--config", "jobs/configs/predict.yaml", *sets), "predict")
    return str(out)


def test_synth_submitted_through_the_sdk_writes_its_videos(synth_videos):
    summary = json.loads((Path(synth_videos) / "synth_summary.json").read_text())
    assert summary["written"] == 4 and len(list(Path(synth_videos).glob("*.mp4"))) == 4
    assert len(list(Path(synth_videos).glob("*.masks.json"))) == 4


def test_extract_job_writes_the_dataset_folder(dataset):
    summary = json.loads((Path(dataset) / "extract_summary.json").read_text())
    assert summary["run"]["errors"] == [] and summary["dataset"]["clips"] >= 4
    assert (Path(dataset) / "clips.parquet").is_file() and (Path(dataset) / "meta_expressions.json").is_file()


def test_annotate_job_writes_both_splits(annotated):
    summary = json.loads((Path(annotated) / "annotate_summary.json").read_text())
    splits = summary["dataset"]["splits"]
    assert splits["train"]["expressions"] > 0 and splits["valid"]["expressions"] > 0, splits
    for split in ("train", "valid"):
        assert json.loads((Path(annotated) / split / "meta_expressions.json").read_text())["videos"]


def test_train_job_runs_its_steps_and_exports_the_model(trained):
    assert trained["steps"] == 2 and trained["export"]["step"] == 2
    assert Path(trained["export"]["checkpoint"]).is_dir() and Path(trained["report"]).exists()


def test_predict_job_answers_every_held_out_expression(predictions, annotated):
    meta = json.loads((Path(annotated) / "valid" / "meta_expressions.json").read_text())["videos"]
    expected = sum(len(v["expressions"]) for v in meta.values())
    lines = Path(predictions).read_text().splitlines()
    assert len(lines) == expected and all("actor" in json.loads(x) for x in lines[:1])


def test_evaluate_job_scores_the_predictions(head, work, annotated, predictions):
    out = work / "evaluate"
    sets = _sets(f"dataset={annotated}/valid", f"predictions={predictions}", f"out={out}", "overlays.samples=1")
    _succeeded(head, submit(head, "evaluate", "--config", "jobs/configs/evaluate.yaml", *sets), "evaluate")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["overall"]["JF"] >= 0 and (out / "metrics.md").is_file()


def test_sweep_job_scores_its_grid_and_resubmitted_predicts_nothing(head, work, annotated, trained):
    checkpoint = trained["export"]["checkpoint"]
    sets = _sets(f"checkpoints=[{{id: jobs, path: {checkpoint}}}]", f"datasets=[{{id: valid, path: {annotated}/valid}}]",
                 "axes={K: {field: inference.num_frames, values: [1, 2]}}", f"out={work / 'sweep'}",
                 f"cache={work / 'sweep_cache'}", "report.plots=false")  # fmt: skip
    first = _succeeded(head, submit(head, "sweep", "--config", "jobs/configs/sweep.yaml", *sets), "sweep")
    summary = json.loads((work / "sweep" / "sweep_summary.json").read_text())
    assert summary["cells"] == summary["done"] == 2 and not summary["failed"], first.output[-3000:]
    assert summary["expressions_predicted"] > 0 and (work / "sweep" / "report.md").is_file()
    # Submitted again (a new job, a new upload of the repo): the cache on the driver's node answers it all.
    _succeeded(head, submit(head, "sweep", "--config", "jobs/configs/sweep.yaml", *sets), "sweep (re-submitted)")
    again = json.loads((work / "sweep" / "sweep_summary.json").read_text())
    assert again["model_calls"] == again["expressions_predicted"] == 0 and again["done"] == 2


def test_demo_job_writes_its_report(head, work):
    out = work / "demo"
    # The jobs above cover annotation, training and the sweep through `ray job submit`, and tests/test_demo.py
    # the demo's training proof: this job runs the demo's own pipeline (synth, extract, validate, baselines).
    sets = _sets(f"out={out}", "include_real_videos=false", "annotate=false", "training.enabled=false",
                 "synth.num_videos=1", "synth.num_frames=150", "synth.width=96", "synth.height=72",
                 "clip.min_bin_frames=100", "clip.clip_frames=100")  # fmt: skip
    _succeeded(head, submit(head, "demo", "--config", "jobs/configs/demo.yaml", *sets, timeout_s=420), "demo")
    report = (out / "report.md").read_text()
    assert "The dataset folders are valid" in report and "| oracle | 100.0 |" in report
    assert "## Training" not in report
    assert (out / "report" / "contact_sheet.png").stat().st_size > 1000


def test_bad_config_fails_the_job_with_the_field_error_as_its_last_line(head, work):
    run = submit(head, "synth", "--config", "jobs/configs/synth.yaml", *_sets("num_videos=-1", f"out={work / 'bad'}"))
    RUNTIMES["synth (bad config)"] = run.seconds
    assert run.returncode != 0 and _status(head, run.submission_id) == "FAILED", run.output[-3000:]
    logs = job_logs(head, run.submission_id)
    assert last_lines(logs, 1) == ["  num_videos: Input should be greater than or equal to 1 (got -1)"], logs[-2000:]
    # What the job printed after Ray's "Running entrypoint" line: the config error (its header, which names
    # the --set values, may wrap) and the field line; no traceback.
    printed = logs.split("Running entrypoint for job", 1)[1].splitlines()[1:]
    assert "Traceback" not in logs and len([x for x in printed if x.strip()]) <= 3, logs[-2000:]
    assert not (work / "bad").exists()


def test_job_driver_runs_the_venv_python_on_the_uploaded_repo_without_venv_or_runs(head):
    # The same upload as every job above (--working-dir . in the repo), with a probe instead of a job script.
    probe = "import os, sys, interrvos; print('PY', sys.executable); print('FILES', sorted(os.listdir('.')))"
    cmd = [str(VENV_BIN / "ray"), "job", "submit", "--address", head.dashboard_url, "--working-dir", ".",
           "--", "python", "-c", probe]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, env=head.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    py = next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("PY "))
    files = next(line for line in done.stdout.splitlines() if line.startswith("FILES "))
    assert Path(py).parent == VENV_BIN, py  # `python` on the head's PATH: the venv's, which has interrvos
    # .gitignore'd folders stay behind (Ray honours .gitignore): the upload stays far under Ray's 100 MiB cap.
    assert "'jobs'" in files and "'platform'" in files and "'.venv'" not in files and "'runs'" not in files, files
