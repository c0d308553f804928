"""The Serve deploy configs (serve/model.yaml, serve/evaluate.yaml) offline: Serve's own schema
(ServeDeploySchema, AutoscalingConfig) plus our typed args, broken copies rejected naming the field,
`--set` overrides reaching the right app, and `interrvos serve` refusing a bad copy before anything
starts. One slow test runs `serve run` on a copy of serve/model.yaml with a private Ray."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from interrvos.errors import ConfigError
from interrvos.serving.config import EvaluateAppConfig, ModelAppConfig
from interrvos.serving.launch import APP_CONFIGS, DEPLOY_CONFIGS, app_specs, load_specs, read_deploy_config

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's console scripts: interrvos, serve


def _tree(which: str) -> dict:
    return yaml.safe_load(DEPLOY_CONFIGS[which].read_text())


def _write(tmp_path: Path, tree: dict, name: str = "copy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the shipped configs

@pytest.mark.parametrize("which, model, prefix",
                         [("model", ModelAppConfig, "/"), ("evaluate", EvaluateAppConfig, "/eval")])
def test_shipped_config_validates_with_serve_schema_and_our_args(which, model, prefix):
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import ServeDeploySchema

    path = DEPLOY_CONFIGS[which]
    assert path.parent == REPO / "serve"
    tree = read_deploy_config(path)
    schema = ServeDeploySchema.model_validate(tree)
    assert [a.name for a in schema.applications] == [which]
    (spec,) = app_specs(tree, str(path))
    assert isinstance(spec.config, model) and spec.route_prefix == prefix and spec.name == which
    assert APP_CONFIGS[spec.import_path] is model
    # Every arg in the file is a field of the typed config (nothing silently dropped or defaulted away).
    assert spec.args() == model.model_validate(tree["applications"][0]["args"]).model_dump(mode="json")
    AutoscalingConfig(**spec.config.deployment.autoscaling.model_dump())
    # The builder named by import_path builds the application offline (no cluster): Serve accepts the
    # deployment options our config produces.
    module, _, attr = spec.import_path.partition(":")
    builder = getattr(__import__(module, fromlist=[attr]), attr)
    app = builder(spec.args())
    assert type(app).__name__ == "Application"


def test_both_apps_share_one_http_proxy():
    """`interrvos serve all` starts one proxy from the first file's http_options; `serve deploy` of both
    files needs them equal too."""
    model, evaluate = _tree("model"), _tree("evaluate")
    assert model["http_options"] == evaluate["http_options"]
    specs, http = load_specs("all")
    assert [(s.name, s.route_prefix) for s in specs] == [("model", "/"), ("evaluate", "/eval")]
    assert http == model["http_options"]


# ---------------------------------------------------------------- broken copies

def _set(tree: dict, dotted: str, value) -> dict:
    """Set a key of the (only) application, or of the file itself when `dotted` starts with "/"."""
    node = tree if dotted.startswith("/") else tree["applications"][0]
    *parents, last = dotted.removeprefix("/").split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return tree


BROKEN = [
    ("model", "args.deployment.autoscaling.min_replicas", 3,
     ["deployment.autoscaling", "min_replicas (3)", "max_replicas (2)"]),
    ("model", "args.max_modles_per_replica", 1, ["max_modles_per_replica", "Extra inputs are not permitted"]),
    ("model", "args.limits.max_upload_mb", -5, ["limits.max_upload_mb", "greater than 0", "-5"]),
    ("model", "import_path", "interrvos.serving.nope:build_app", ["import_path", "interrvos.serving.nope:build_app"]),
    ("model", "args.device", "tpu", ["device", "'tpu'"]),
    ("model", "/proxy_location", "Everywhere", ["proxy_location", "'EveryNode'", "'Everywhere'"]),  # Serve's schema
    ("evaluate", "args.deployment.max_queued_requests", -7, ["deployment.max_queued_requests", "-7"]),
    ("evaluate", "args.limits.max_upload_mb", 0, ["limits.max_upload_mb", "greater than 0"]),
]


@pytest.mark.parametrize("which, field, value, words", BROKEN, ids=[f"{w}:{f}" for w, f, _, _ in BROKEN])
def test_a_broken_copy_is_a_config_error_naming_the_field(tmp_path, which, field, value, words):
    path = _write(tmp_path, _set(_tree(which), field, value))
    with pytest.raises(ConfigError) as caught:
        load_specs(which, path)
    message = str(caught.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message


def test_a_deployments_override_with_min_above_max_is_caught_offline(tmp_path):
    """ServeDeploySchema keeps `deployments[].autoscaling_config` a plain dict: Ray's AutoscalingConfig
    must see it too, or the mistake surfaces only at deploy time."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    tree = _tree("model")
    tree["applications"][0]["deployments"] = [{"name": "ModelServer",
                                               "autoscaling_config": {"min_replicas": 3, "max_replicas": 2}}]
    ServeDeploySchema.model_validate(tree)  # Serve's schema alone lets it through
    path = _write(tmp_path, tree)
    with pytest.raises(ConfigError, match=r"applications\.0\.deployments\.0\.autoscaling_config") as caught:
        read_deploy_config(path)
    assert "min_replicas (3)" in str(caught.value)
    with pytest.raises(ValidationError):
        from ray.serve.config import AutoscalingConfig

        AutoscalingConfig(min_replicas=3, max_replicas=2)


def test_a_missing_or_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_specs("model", tmp_path / "nowhere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_specs("model", bad)
    with pytest.raises(ConfigError, match="unknown app 'modle'"):
        load_specs("modle")
    with pytest.raises(ConfigError, match="give --config to one app"):
        load_specs("all", DEPLOY_CONFIGS["model"])


# ---------------------------------------------------------------- --set overrides

def test_overrides_reach_the_app_they_name():
    specs, _ = load_specs("all", None, ["model.default_checkpoint=x", "model.limits.max_frames=12",
                                        "evaluate.storage=/srv/eval"])  # fmt: skip
    model, evaluate = (s.config for s in specs)
    assert (model.default_checkpoint, model.limits.max_frames) == ("x", 12)  # typed: 12 is an int
    assert evaluate.storage == "/srv/eval"
    shipped_evaluate = EvaluateAppConfig.model_validate(_tree("evaluate")["applications"][0]["args"])
    assert evaluate.model_copy(update={"storage": shipped_evaluate.storage}) == shipped_evaluate
    shipped_model = ModelAppConfig.model_validate(_tree("model")["applications"][0]["args"])
    assert model.model_copy(update={"default_checkpoint": None, "limits": shipped_model.limits}) == shipped_model
    # With one app, a bare key or the app's name both work; another app's name is not applied here.
    (alone,) = load_specs("model", None, ["default_checkpoint=y"])[0]
    assert alone.config.default_checkpoint == "y"
    (alone,) = load_specs("model", None, ["model.default_checkpoint=z", "evaluate.storage=/elsewhere"])[0]
    assert alone.config.default_checkpoint == "z"


def test_overrides_are_validated_and_leave_the_tree_alone():
    tree = _tree("model")
    before = yaml.safe_dump(tree)
    (spec,) = app_specs(tree, "serve/model.yaml", ["model.limits.max_frames=9", "model.deployment.num_cpus=0.5"])
    assert spec.config.limits.max_frames == 9 and spec.config.deployment.num_cpus == 0.5
    assert yaml.safe_dump(tree) == before  # a second app_specs on the same tree sees the file's values
    with pytest.raises(ConfigError, match=r"limits\.max_frames"):
        app_specs(tree, "serve/model.yaml", ["model.limits.max_frames=0"])
    with pytest.raises(ConfigError, match="must look like"):
        app_specs(tree, "serve/model.yaml", ["model.limits.max_frames"])


# ---------------------------------------------------------------- the CLI

def test_interrvos_serve_refuses_a_bad_copy_before_starting_anything(tmp_path):
    path = _write(tmp_path, _set(_tree("model"), "args.limits.max_upload_mb", -5))
    started = time.monotonic()
    done = subprocess.run([str(BIN / "interrvos"), "serve", "model", "--config", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    lines = [line for line in output.splitlines() if "limits.max_upload_mb" in line]
    assert len(lines) == 1 and "greater than 0" in lines[0] and "-5" in lines[0], output
    assert "config error" in output and "Traceback" not in output
    assert "local Ray instance" not in output and took < 60, (took, output)  # validation comes before Ray


# ---------------------------------------------------------------- `serve run`, for real

def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


# `serve run` with SIGINT's default disposition, whatever this process inherited: a shell starts background
# jobs with SIGINT ignored, an ignored signal stays ignored across exec, and Python then installs no
# KeyboardInterrupt handler, so `serve run` would never see the Ctrl-C this test sends (exec keeps the pid).
WITH_DEFAULT_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                       "os.execv(sys.argv[1], sys.argv[1:])"]


def _stop(proc: subprocess.Popen, children: list) -> list[int]:
    """SIGINT (serve run shuts Serve and its own Ray down), then SIGTERM, then SIGKILL, by PID; then
    any process it started that outlived it, by PID. Returns the PIDs that had to be killed."""
    import psutil

    forced = []
    for sig, wait in ((signal.SIGINT, 45), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        if sig != signal.SIGINT:
            forced.append(proc.pid)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    _, alive = psutil.wait_procs(children, timeout=20)
    for child in alive:
        forced.append(child.pid)
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    return forced


@pytest.mark.slow
def test_serve_run_starts_the_model_app_from_its_yaml(tmp_path):
    import requests

    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.reviosa import build_model

    save_checkpoint(build_model("tiny", ["inference.num_frames=2"]), str(tmp_path / "checkpoints" / "tiny"))
    tree = _tree("model")
    port = _free_port()
    tree["http_options"] = {**tree["http_options"], "host": "127.0.0.1", "port": port}
    args = tree["applications"][0]["args"]
    args.update(checkpoints_root=str(tmp_path / "checkpoints"), default_checkpoint="tiny", device="cpu",
                dtype="float32")  # fmt: skip
    args["deployment"].update(num_replicas=1, num_cpus=0.5)
    config = _write(tmp_path, tree, "model.yaml")
    load_specs("model", config)  # the copy is valid for us as well as for serve run

    # A private Ray for the subprocess: RAY_ADDRESS=local makes `serve run` (ray.init(address=...))
    # start its own instead of joining the session's or one found through ray_current_cluster, and a
    # short RAY_TMPDIR of its own keeps its session files (and that file) away from other clusters'.
    ray_tmp = tempfile.mkdtemp(prefix="rsrun", dir="/tmp")
    env = {**os.environ, "RAY_ADDRESS": "local", "RAY_TMPDIR": ray_tmp, "RAY_AUTH_MODE": "disabled",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log_path = tmp_path / "serve-run.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*WITH_DEFAULT_SIGINT, str(BIN / "serve"), "run", str(config)], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    children: dict[int, object] = {}
    forced: list[int] = []
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            children.update({c.pid: c for c in _descendants(proc.pid)})
            assert proc.poll() is None, f"serve run exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
            try:
                r = requests.get(f"{base}/healthz", timeout=5)
                if r.status_code == 200:
                    health = r.json()
                    break
            except requests.RequestException:
                pass  # the proxy is not up yet
            time.sleep(0.5)
        assert health is not None, f"no 200 from /healthz within 120 s:\n{log_path.read_text()[-4000:]}"
        models = requests.get(f"{base}/v1/models", timeout=30).json()
        assert models["default"] == "tiny" and [m["id"] for m in models["models"]] == ["tiny"]  # the YAML's args
        children.update({c.pid: c for c in _descendants(proc.pid)})
        assert health["status"] == "ok" and health["pid"] in children  # the replica runs on this run's own Ray
    finally:
        forced = _stop(proc, list(children.values()))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode is not None
    assert not forced, f"had to kill {forced} after SIGINT:\n{log_path.read_text()[-4000:]}"
