"""The cluster files (cluster/): rendered from cluster/cluster.yaml, committed as rendered, and accepted or
rejected offline by the checks `ray up` and `kubectl apply` would make. No Ray cluster starts (~10 s)."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from interrvos.cluster import spec as spec_module
from interrvos.cluster.kuberay import render_rayservice
from interrvos.cluster.render import differing, render_all
from interrvos.cluster.spec import ClusterSpec, installed_ray_version, load_spec, ray_pin
from interrvos.cluster.validate import SchemasUnavailable, kuberay_errors, launcher_errors, load_kuberay_checker
from interrvos.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = ["cluster/aws.yaml", "cluster/gcp.yaml", "cluster/onprem.yaml"]
KUBERAY = sorted(str(p.relative_to(REPO)) for p in (REPO / "cluster" / "kuberay").glob("*.yaml"))
LONG_JOBS = ["extract", "annotate", "train", "sweep"]


def _load(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


@pytest.fixture(scope="module")
def spec() -> ClusterSpec:
    return load_spec()


@pytest.fixture(scope="module")
def kuberay_checker():
    try:
        return load_kuberay_checker()
    except SchemasUnavailable as reason:
        pytest.skip(str(reason))


# --- one source: the committed files are what `interrvos cluster render` writes ---------------------------

def test_committed_cluster_files_equal_what_render_produces(spec):
    files = render_all(spec)
    assert differing(files, REPO) == []
    assert {f.path for f in files} == set(LAUNCHER) | set(KUBERAY) | {"cluster/serve.yaml"}


def test_render_check_exits_1_naming_each_file_that_differs(tmp_path):
    from interrvos.cli import app

    tree = yaml.safe_load((REPO / "cluster" / "cluster.yaml").read_text())
    tree["workers"]["cpu"]["max_workers"] = 6  # changes every file with node types (not onprem.yaml, serve.yaml)
    changed = tmp_path / "cluster.yaml"
    changed.write_text(yaml.safe_dump(tree))
    result = CliRunner().invoke(app, ["cluster", "render", "--check", "--spec", str(changed)])
    assert result.exit_code == 1, result.output
    named = set(re.findall(r"(cluster/\S+\.yaml) \(differs\)", result.output))
    assert named == (set(LAUNCHER) | set(KUBERAY)) - {"cluster/onprem.yaml"}
    unchanged = CliRunner().invoke(app, ["cluster", "render", "--check"])
    assert unchanged.exit_code == 0, unchanged.output


def test_a_stale_generated_manifest_is_reported(spec, tmp_path):
    files = render_all(spec)
    for f in files:
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.path).write_text(f.text)
    assert differing(files, tmp_path) == []
    (tmp_path / "cluster/kuberay/rayjob-gone.yaml").write_text("kind: RayJob\n")
    assert differing(files, tmp_path) == ["cluster/kuberay/rayjob-gone.yaml (stale: not rendered by cluster/cluster.yaml)"]


# --- launcher files: prepare_config + validate_config, plus min <= max ---------------------------------------

@pytest.mark.parametrize("path", LAUNCHER)
def test_launcher_file_validates_offline(path):
    assert launcher_errors(_load(path)) == []


@pytest.mark.parametrize("path", ["cluster/aws.yaml", "cluster/gcp.yaml"])
def test_launcher_file_sets_every_key_the_provider_defaults_would_fill(path):
    import ray.autoscaler

    cfg = _load(path)
    defaults = yaml.safe_load((Path(ray.autoscaler.__file__).parent / cfg["provider"]["type"] / "defaults.yaml").read_text())
    assert set(defaults) <= set(cfg), f"left to Ray's defaults: {sorted(set(defaults) - set(cfg))}"
    for key in ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands"):
        assert cfg[key] == [], key  # the image holds the project; the defaults would pip-install nightly Ray
    for name, node in cfg["available_node_types"].items():
        assert set(node["resources"]) == {"CPU", "GPU"}, name
    assert cfg["docker"]["image"] == load_spec().image_ref


def _unknown_key(cfg):
    cfg["setup_command"] = []


def _fractional_cpu(cfg):
    cfg["available_node_types"]["cpu"]["resources"]["CPU"] = 0.5


def _min_above_max(cfg):
    cfg["available_node_types"]["cpu"]["min_workers"] = cfg["available_node_types"]["cpu"]["max_workers"] + 1


@pytest.mark.parametrize("path", ["cluster/aws.yaml", "cluster/gcp.yaml"])
@pytest.mark.parametrize("break_it, message", [
    (_unknown_key, "'setup_command' was unexpected"),
    (_fractional_cpu, "0.5 is not of type 'integer'"),
    (_min_above_max, "min_workers (9) is greater than max_workers (8)"),
])  # fmt: skip
def test_broken_launcher_copy_is_rejected(path, break_it, message):
    cfg = _load(path)
    break_it(cfg)
    errors = launcher_errors(cfg)
    assert any(message in e for e in errors), errors


def test_onprem_file_with_node_types_is_rejected():
    cfg = _load("cluster/onprem.yaml")
    cfg["available_node_types"] = copy.deepcopy(_load("cluster/aws.yaml")["available_node_types"])
    assert any("not supported for on-premise" in e for e in launcher_errors(cfg))


def test_launcher_nodes_start_ray_with_token_auth_and_the_secrets_file(spec):
    for path in LAUNCHER:
        cfg = _load(path)
        assert list(cfg["file_mounts"].values()) == [spec.secrets.env_file]
        for command in cfg["head_start_ray_commands"][-1:] + cfg["worker_start_ray_commands"][-1:]:
            assert "export RAY_AUTH_MODE=token;" in command and ". /home/ray/.interrvos/cluster.env" in command


# --- KubeRay manifests: the shared ray.io/v1 schemas --------------------------------------------------------

@pytest.mark.parametrize("path", KUBERAY)
def test_kuberay_manifest_validates(path, kuberay_checker):
    assert kuberay_errors(_load(path)) == []


def _misspelled_group_field(doc):
    _cluster(doc)["workerGroupSpec"] = _cluster(doc).pop("workerGroupSpecs")


def _misspelled_container_field(doc):
    container = _cluster(doc)["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")


def _bad_memory_quantity(doc):
    _cluster(doc)["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "56GB"


def _replicas_min_above_max(doc):
    _cluster(doc)["workerGroupSpecs"][0]["minReplicas"] = 9


def _cluster(doc):
    spec = doc["spec"]
    return spec.get("rayClusterSpec") or spec.get("rayClusterConfig") or spec


@pytest.mark.parametrize("path", KUBERAY)
@pytest.mark.parametrize("break_it, where", [
    (_misspelled_group_field, "workerGroupSpec"),
    (_misspelled_container_field, "resource"),
    (_bad_memory_quantity, "56GB"),
    (_replicas_min_above_max, "minReplicas (9) is greater than maxReplicas (8)"),
])  # fmt: skip
def test_broken_kuberay_copy_is_rejected(path, break_it, where, kuberay_checker):
    doc = _load(path)
    break_it(doc)
    errors = kuberay_errors(doc)
    assert errors and any(where in e for e in errors), errors


def test_a_broken_serve_config_in_the_rayservice_is_rejected(kuberay_checker):
    doc = _load("cluster/kuberay/rayservice.yaml")
    serve = yaml.safe_load(doc["spec"]["serveConfigV2"])
    serve["applications"][0]["import_pathh"] = serve["applications"][0].pop("import_path")
    doc["spec"]["serveConfigV2"] = yaml.safe_dump(serve)
    assert any("serveConfigV2" in e for e in kuberay_errors(doc))


def test_without_the_shared_schemas_rendering_says_the_kuberay_check_was_skipped(spec, tmp_path):
    from interrvos.cluster.render import render

    with pytest.raises(SchemasUnavailable, match="no KubeRay schema checker at"):
        load_kuberay_checker(tmp_path)
    assert render(spec, schemas=tmp_path).notes == [
        f"KubeRay manifests not validated: no KubeRay schema checker at {tmp_path / 'validate.py'} "
        "(the shared/ folder beside the repo)"]


def test_every_long_job_has_a_rayjob_running_its_jobs_script(spec):
    for job in LONG_JOBS:
        doc = _load(f"cluster/kuberay/rayjob-{job}.yaml")
        args = shlex.split(doc["spec"]["entrypoint"])
        assert args[:4] == ["python", f"jobs/{job}.py", "--config", spec.jobs[job].config]
        assert (REPO / args[3]).is_file()
        overrides = args[5::2]
        assert args[4::2] == ["--set"] * len(overrides) and overrides == spec.job_overrides(job)
        assert any(o.startswith("out=") or o.startswith("storage=") for o in overrides)
        # every job writes to the shared storage (the sweep's cache alone is a folder on the head)
        assert all(spec.storage in o for o in overrides if o.startswith(("out=", "storage=")))


def test_a_job_override_that_is_not_a_config_field_is_rejected(tmp_path):
    tree = yaml.safe_load((REPO / "cluster" / "cluster.yaml").read_text())
    tree["jobs"]["extract"]["set"].append("outt={storage}/x")
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=r"jobs\.extract.*outt"):
        load_spec(tmp_path / "cluster.yaml")


def test_every_ray_container_gets_the_secrets_from_kubernetes_secrets(spec):
    for path in KUBERAY:
        cluster = _cluster(_load(path))
        assert cluster["authOptions"] == {"mode": "token", "secretName": spec.ray_auth.kubernetes_secret}
        pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
        for pod in pods:
            (container,) = pod["template"]["spec"]["containers"]
            env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
            assert set(env) == {"INTERRVOS_API_KEY", "OPENAI_API_KEY"}
            assert {ref["name"] for ref in env.values()} == {spec.secrets.kubernetes_secret}
            assert all(ref["key"] == name for name, ref in env.items())


def test_only_the_gpu_group_has_gpu_limits(spec):
    groups = {g["groupName"]: g for g in _load("cluster/kuberay/raycluster.yaml")["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"} and all(g["minReplicas"] == 0 for g in groups.values())
    limits = {name: g["template"]["spec"]["containers"][0]["resources"]["limits"] for name, g in groups.items()}
    assert limits["gpu"]["nvidia.com/gpu"] == 1 and "nvidia.com/gpu" not in limits["cpu"]
    aws = _load("cluster/aws.yaml")["available_node_types"]
    assert aws["gpu"]["resources"]["GPU"] == 1 and aws["cpu"]["resources"]["GPU"] == 0
    assert aws["head"]["resources"] == {"CPU": 0, "GPU": 0}


# --- the RayService runs the serving deploy configs ---------------------------------------------------------

def _deploy_applications(spec):
    from interrvos.serving.launch import read_deploy_config

    return [app for path in spec.serve.configs for app in read_deploy_config(REPO / path)["applications"]]


def test_rayservice_serve_config_is_the_deploy_configs_applications(spec):
    plain = spec.model_copy(update={"serve": spec.serve.model_copy(update={"set": []})})
    rendered = yaml.safe_load(render_rayservice(plain)["spec"]["serveConfigV2"])
    assert rendered["applications"] == _deploy_applications(spec)


def test_serve_deploy_file_holds_the_rayservice_apps_and_loads_like_serve_yaml(spec):
    from interrvos.serving.launch import app_specs, read_deploy_config

    tree = read_deploy_config(REPO / "cluster" / "serve.yaml")  # Serve's schema, as `serve deploy` checks it
    assert [s.name for s in app_specs(tree, "cluster/serve.yaml")] == ["model", "evaluate"]
    service = yaml.safe_load(_load("cluster/kuberay/rayservice.yaml")["spec"]["serveConfigV2"])
    assert tree["applications"] == service["applications"]
    assert tree["http_options"]["host"] == "0.0.0.0"  # serve/*.yaml's 127.0.0.1 is unreachable on a cluster


def test_committed_rayservice_differs_from_the_deploy_configs_only_by_its_overrides(spec):
    expected = _deploy_applications(spec)
    by_name = {app["name"]: app for app in expected}
    for text in spec.serve_overrides():
        key, value = text.split("=", 1)
        app, *path = key.split(".")
        node = by_name[app]["args"]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = yaml.safe_load(value)
    committed = yaml.safe_load(_load("cluster/kuberay/rayservice.yaml")["spec"]["serveConfigV2"])
    assert committed["applications"] == expected
    assert by_name["model"]["args"]["checkpoints_root"] == f"{spec.storage}/checkpoints"


# --- the node image -------------------------------------------------------------------------------------------

def test_dockerfile_builds_on_rays_image_of_the_pinned_ray_and_python(spec):
    dockerfile = (REPO / "cluster" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.M)
    assert ray_pin() == installed_ray_version()
    assert base == f"rayproject/ray:{ray_pin()}-py{spec.python.replace('.', '')}-gpu" == spec.base_image
    assert re.search(rf"^WORKDIR {re.escape(spec.image.workdir)}$", dockerfile, flags=re.M)


def _pip_lines(text: str) -> list[str]:
    """Install commands, normalised: no quiet/cache flags, no `&&`/`\\`, the pip wrapper and extras unified."""
    lines = []
    for raw in re.split(r"\n|&&", text.replace("\\\n", " ")):
        line = re.sub(r"^\s*(RUN\s+)?", "", raw.split("#")[0]).strip()
        if "pip install" in line:
            line = re.sub(r"\s(-q|--no-cache-dir)(?=\s)", "", f" {line} ").strip()
            lines.append(re.sub(r"\s+", " ", line))
    return lines


def test_dockerfile_installs_the_project_from_its_own_files_as_setup_env_does():
    dockerfile = (REPO / "cluster" / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup_env.sh").read_text()
    docker_lines = _pip_lines(dockerfile)
    assert 'pip install -c constraints.txt -e ".[${EXTRAS}]"' in docker_lines
    assert re.search(r"^ARG EXTRAS=s3$", dockerfile, flags=re.M)
    assert re.search(r"^COPY .*pyproject\.toml constraints\.txt", dockerfile, flags=re.M)
    dev_only = [line for line in _pip_lines(setup)
                if "torch==" in line or "'.[dev]'" in line or "--upgrade pip" in line]  # fmt: skip
    assert len(dev_only) == 3  # the CPU torch wheel, the editable dev install, pip itself
    for line in _pip_lines(setup):
        if line not in dev_only:
            assert line in docker_lines, f"setup_env.sh installs what cluster/Dockerfile does not: {line}"


# --- the typed source -----------------------------------------------------------------------------------------

def test_cluster_spec_rejects_min_workers_above_max_workers():
    tree = yaml.safe_load((REPO / "cluster" / "cluster.yaml").read_text())
    tree["workers"]["gpu"]["min_workers"] = 5
    with pytest.raises(ValueError, match=r"min_workers \(5\) must be <= max_workers \(4\)"):
        ClusterSpec.model_validate(tree)


def test_rendering_refuses_when_the_installed_ray_is_not_the_pinned_one(monkeypatch):
    monkeypatch.setattr(spec_module, "installed_ray_version", lambda: "0.0.1")
    with pytest.raises(ConfigError, match="pins ray .* but ray 0.0.1 is installed"):
        load_spec()
