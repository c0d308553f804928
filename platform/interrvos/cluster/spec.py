"""The typed source of every cluster file: cluster/cluster.yaml as a `ClusterSpec`.

What the YAML does not hold is read from the project itself, so it cannot drift: the Ray version is
pyproject.toml's ray pin (the image tag, the KubeRay rayVersion), the project version names the image,
the job configs stay jobs/configs/*.yaml (the RayJobs name them), the Serve apps come from serve/*.yaml.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from interrvos.config import REPO_ROOT, StrictModel, format_validation_error
from interrvos.errors import ConfigError

SPEC_PATH = REPO_ROOT / "cluster" / "cluster.yaml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
# Kubernetes names (DNS-1035 labels); KubeRay allows at most 47 characters for RayJob/RayService names.
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A job's typed config, by job name (jobs/<name>.py runs `interrvos <name>`).
JOB_CONFIG_MODELS = {
    "synth": ("interrvos.config", "SynthConfig"),
    "extract": ("interrvos.config", "ExtractConfig"),
    "annotate": ("interrvos.annotate.config", "AnnotateConfig"),
    "train": ("interrvos.train.config", "TrainConfig"),
    "predict": ("interrvos.model.config", "PredictConfig"),
    "evaluate": ("interrvos.evaluate.config", "EvaluateConfig"),
    "sweep": ("interrvos.sweep.config", "SweepConfig"),
}


class PodSpec(StrictModel):
    """A node type's Kubernetes container: what the pod requests (also its limits: Ray wants both equal)."""

    cpu: str = Field(description="Kubernetes quantity, e.g. \"15\" or \"500m\" (KubeRay derives num-cpus from it)")
    memory: str = Field(description="Kubernetes quantity, e.g. 56Gi")
    gpus: int = Field(default=0, ge=0, description="nvidia.com/gpu limit")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)


class HeadSpec(StrictModel):
    cpus: int = Field(ge=1, description="the machine's vCPUs (the head advertises 0 to Ray: no tasks on it)")
    aws: dict[str, Any] = Field(description="EC2 node_config (boto3 create_instances arguments)")
    gcp: dict[str, Any] = Field(description="GCE node_config (instances.insert body)")
    pod: PodSpec


class WorkerSpec(StrictModel):
    role: str = Field(description="what runs on this type (for people; it goes into the file headers)")
    min_workers: int = Field(ge=0)
    max_workers: int = Field(ge=0)
    cpus: int = Field(ge=1, description="Ray CPU resource of one node (the machine's vCPUs)")
    gpus: int = Field(ge=0, description="Ray GPU resource of one node")
    aws: dict[str, Any]
    gcp: dict[str, Any]
    pod: PodSpec

    @model_validator(mode="after")
    def _min_le_max(self) -> WorkerSpec:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) must be <= max_workers ({self.max_workers})")
        if self.pod.gpus != self.gpus:
            raise ValueError(f"pod.gpus ({self.pod.gpus}) must equal gpus ({self.gpus}): one GPU count per node type")
        return self


class ImageSpec(StrictModel):
    repository: str
    tag: str | None = Field(default=None, description="None: <project version>-ray<ray>-py<python>-gpu")
    workdir: str = "/home/ray/interrvos"


class SecretsSpec(StrictModel):
    env: list[str] = Field(default_factory=list, description="environment variables every Ray process gets")
    kubernetes_secret: str = Field(description="the Secret holding those keys (KubeRay)")
    env_file: str = Field(description="launcher: local KEY=value file copied to every node, sourced before ray start")

    @field_validator("env")
    @classmethod
    def _env_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return names


class RayAuthSpec(StrictModel):
    mode: Literal["token", "disabled"] = "token"
    kubernetes_secret: str = Field(description="KubeRay authOptions.secretName (data key auth_token)")


class AwsSpec(StrictModel):
    region: str
    availability_zone: str
    ssh_user: str = "ubuntu"


class GcpSpec(StrictModel):
    region: str
    availability_zone: str
    project_id: str
    ssh_user: str = "ubuntu"


class OnPremSpec(StrictModel):
    head_ip: str
    worker_ips: list[str] = Field(min_length=1)
    ssh_user: str
    ssh_private_key: str


class KubernetesSpec(StrictModel):
    service_account: str | None = Field(
        default=None, description="the pods' ServiceAccount, e.g. bound to a cloud role for the storage (None: default)")


class JobSpec(StrictModel):
    config: str = Field(description="the job's config file (relative to the repo, inside the image too)")
    set: list[str] = Field(default_factory=list, description="--set overrides; {storage} is the storage URI")


class ServeSpec(StrictModel):
    configs: list[str] = Field(min_length=1, description="Serve deploy configs whose applications the RayService runs")
    set: list[str] = Field(default_factory=list, description="APP.key=value overrides of the apps' args")


class ClusterSpec(StrictModel):
    name: str
    python: Literal["3.10", "3.11", "3.12"] = "3.11"
    image: ImageSpec
    storage: str = Field(description="shared storage URI for every job's inputs and outputs")
    secrets: SecretsSpec
    ray_auth: RayAuthSpec
    idle_timeout_minutes: int = Field(default=5, ge=1)
    head: HeadSpec
    workers: dict[str, WorkerSpec] = Field(min_length=1)
    aws: AwsSpec
    gcp: GcpSpec
    onprem: OnPremSpec
    kubernetes: KubernetesSpec = Field(default_factory=KubernetesSpec)
    jobs: dict[str, JobSpec] = Field(default_factory=dict)
    serve: ServeSpec

    @field_validator("name")
    @classmethod
    def _dns_name(cls, name: str) -> str:
        # The longest derived name is "<name>-annotate" (a RayJob): KubeRay's limit is 47 characters.
        if not _DNS_LABEL.match(name) or len(name) > 36:
            raise ValueError(f"{name!r}: lowercase letters, digits and '-', starting with a letter, at most 36 characters")
        return name

    @field_validator("workers")
    @classmethod
    def _worker_names(cls, workers: dict[str, WorkerSpec]) -> dict[str, WorkerSpec]:
        for name in workers:
            if not _DNS_LABEL.match(name):
                raise ValueError(f"worker type {name!r}: lowercase letters, digits and '-' (a KubeRay groupName)")
        return workers

    @field_validator("storage")
    @classmethod
    def _storage_uri(cls, uri: str) -> str:
        if "://" not in uri:
            raise ValueError(f"{uri!r} is not a URI: a cluster's nodes share storage through s3://, gs://, ...")
        return uri.rstrip("/")

    @cached_property
    def ray_version(self) -> str:
        return ray_pin()

    @property
    def base_image(self) -> str:
        """Ray's own image for the pinned Ray and our Python, GPU variant (tags: <ray>-py<NN>-gpu)."""
        return f"rayproject/ray:{self.ray_version}-py{self.python.replace('.', '')}-gpu"

    @property
    def image_ref(self) -> str:
        tag = self.image.tag or f"{project_version()}-ray{self.ray_version}-py{self.python.replace('.', '')}-gpu"
        return f"{self.image.repository}:{tag}"

    def job_overrides(self, job: str) -> list[str]:
        return [text.replace("{storage}", self.storage) for text in self.jobs[job].set]

    def serve_overrides(self) -> list[str]:
        return [text.replace("{storage}", self.storage) for text in self.serve.set]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def ray_pin() -> str:
    """The exact Ray version pyproject.toml pins (`ray[...]==X`); the cluster files follow it."""
    for dep in _pyproject()["project"]["dependencies"]:
        match = re.fullmatch(r"ray(\[[^\]]*\])?==([0-9][0-9a-z.]*)", dep.replace(" ", ""))
        if match:
            return match.group(2)
    raise ConfigError(f"{PYPROJECT}: no exact ray pin (ray[...]==X) in [project].dependencies")


def project_version() -> str:
    return _pyproject()["project"]["version"]


def installed_ray_version() -> str:
    return metadata.version("ray")


def load_spec(path: str | Path | None = None) -> ClusterSpec:
    """cluster/cluster.yaml (or `path`) as a ClusterSpec; ConfigError names the file and the field."""
    path = Path(path or SPEC_PATH)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cluster spec not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"cluster spec {path} is not valid YAML: {err}") from None
    try:
        spec = ClusterSpec.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path))) from None
    if spec.ray_version != installed_ray_version():
        # The launcher files are validated with the installed Ray's schema: both must be the pinned one.
        raise ConfigError(f"pyproject.toml pins ray {spec.ray_version} but ray {installed_ray_version()} is "
                          "installed: run `make setup` before rendering the cluster files")  # fmt: skip
    check_jobs(spec, str(path))
    return spec


def check_jobs(spec: ClusterSpec, source: str) -> None:
    """Every RayJob's script and config exist and its overrides are fields of the job's typed config."""
    import importlib

    from interrvos.config import load_config

    for name, job in spec.jobs.items():
        if not (REPO_ROOT / "jobs" / f"{name}.py").is_file():
            raise ConfigError(f"{source}: jobs.{name}: there is no jobs/{name}.py")
        if name not in JOB_CONFIG_MODELS:
            raise ConfigError(f"{source}: jobs.{name}: no typed config known for this job "
                              f"(known: {', '.join(JOB_CONFIG_MODELS)})")  # fmt: skip
        module, attr = JOB_CONFIG_MODELS[name]
        model = getattr(importlib.import_module(module), attr)
        try:
            load_config(model, REPO_ROOT / job.config, spec.job_overrides(name))
        except ConfigError as err:
            raise ConfigError(f"{source}: jobs.{name}: {err}") from None
