"""Fixtures of the multi-node runs: one local cluster for the folder (a head and two worker nodes, 1 CPU
each, every node its own `ray start`), the jobs as subprocesses of the CLI joining it with
`--set ray.address=...` (never the session's in-process Ray), small data, and one clean run of each job
whose outputs the node-failure runs must reproduce.

Sizes are chosen so that work must spread and a lost node's work fits on the nodes that remain:
extraction writers 3 x 0.5 CPU, annotation pools 1 x 0.5 (prepare) + 5 x 0.25, prediction 2 x 0.5,
training 2 workers x 0.75 CPU (so one per node) + 2 decoders x 0.25.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # local_cluster.py (tests use --import-mode=importlib)
sys.path.insert(0, str(HERE.parent / "annotate"))  # stand_in_server.py

from job_args import REAL_VIDEOS, Jobs, annotate_args, extract_args, train_args  # noqa: E402
from local_cluster import LocalCluster  # noqa: E402
from stand_in_server import StandInServer  # noqa: E402


@pytest.fixture(scope="package")
def cluster_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cluster_logs")


@pytest.fixture(scope="package")
def cluster(cluster_logs):
    c = LocalCluster(cluster_logs)
    try:
        c.start_head()
        c.add_worker("w1")
        c.add_worker("w2")
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="package")
def jobs(cluster, cluster_logs) -> Jobs:
    return Jobs(cluster, cluster_logs)


@pytest.fixture
def two_worker_nodes(cluster) -> list[str]:
    """Two alive worker nodes (replacing any a test killed) before a node-failure test."""
    alive = [n for n in cluster.nodes.values() if n.name != "head" and not n.killed]
    for i in range(2 - len(alive)):
        cluster.add_worker(f"w{len(cluster.nodes) + i}")
    return [n.name for n in cluster.nodes.values() if n.name != "head" and not n.killed]


@pytest.fixture(scope="package")
def stand_in():
    server = StandInServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def record(cluster_logs):
    """record(test, **facts): what happened (timings, what Ray did), printed and kept in runs.jsonl."""
    path = cluster_logs / "runs.jsonl"

    def write(test: str, **facts) -> None:
        line = json.dumps({"test": test, **facts}, default=str)
        print(line)
        with open(path, "a") as f:
            f.write(line + "\n")

    return write


# --- data and clean runs ---


@pytest.fixture(scope="package")
def sources(tmp_path_factory) -> list[str]:
    """4 synthetic videos of 120 frames with objects (2 clips each) and the real sample videos (no objects)."""
    from interrvos.config import SynthConfig
    from interrvos.synth.generate import generate_video, video_id_for

    folder = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(out=str(folder), num_videos=4, num_frames=120, width=160, height=120, seed=3,
                      min_objects=2, max_objects=3)
    for i in range(cfg.num_videos):
        generate_video(video_id_for(cfg.seed, i), i, cfg)
    return [str(folder)] + ([str(REAL_VIDEOS)] if any(REAL_VIDEOS.glob("*.mp4")) else [])


@pytest.fixture(scope="package")
def pushing(tmp_path_factory) -> dict[str, str]:
    """The tiny training set and a held-out one for prediction (interrvos.train.sample_data)."""
    from interrvos.train.sample_data import write_pushing_dataset

    root = tmp_path_factory.mktemp("pushing")
    return {"train": write_pushing_dataset(root / "train", num_videos=4, num_frames=6, height=72, width=96, seed=0),
            "val": write_pushing_dataset(root / "val", num_videos=2, num_frames=6, height=72, width=96, seed=100)}


@pytest.fixture(scope="package")
def clean_extract(jobs, sources, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("clean") / "dataset"
    seconds = jobs.run("extract-clean", "extract", *extract_args(sources, out))
    return {"out": out, "seconds": seconds, "summary": json.loads((out / "extract_summary.json").read_text())}


@pytest.fixture(scope="package")
def clean_annotate(jobs, clean_extract, stand_in, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("clean") / "annotated"
    stand_in.reset()
    seconds = jobs.run("annotate-clean", "annotate", *annotate_args(clean_extract["out"], out, stand_in.base_url))
    return {"out": out, "seconds": seconds, "requests": stand_in.requests_for(),
            "summary": json.loads((out / "annotate_summary.json").read_text())}


@pytest.fixture(scope="package")
def clean_train(jobs, pushing, tmp_path_factory) -> dict:
    storage = tmp_path_factory.mktemp("clean") / "runs"
    seconds = jobs.run("train-clean", "train", *train_args(pushing["train"], storage, "tiny"))
    run = storage / "tiny"
    return {"run": run, "seconds": seconds, "summary": json.loads((run / "train_summary.json").read_text())}


@pytest.fixture(scope="package")
def clean_predict(jobs, pushing, clean_train, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("clean") / "predictions.jsonl"
    seconds = jobs.run("predict-clean", "predict", "--dataset", pushing["val"], "--checkpoint",
                       clean_train["summary"]["export"]["checkpoint"], "--out", str(out),
                       "--set", "workers.min_size=2", "--set", "workers.max_size=2", "--set", "workers.num_cpus=0.5",
                       "--set", "batch_size=2")  # fmt: skip
    return {"out": out, "seconds": seconds, "summary": json.loads(Path(f"{out}.summary.json").read_text())}
