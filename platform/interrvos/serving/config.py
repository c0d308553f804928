"""Typed configs of the two Serve apps. The deploy configs (serve/model.yaml, serve/evaluate.yaml)
carry them as each application's `args`, so `serve run`, `serve deploy` and `interrvos serve` read
one source; resources and scaling come from here, never from code."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from interrvos.config import StrictModel


class Autoscaling(StrictModel):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    target_ongoing_requests: float = Field(default=2.0, gt=0)
    upscale_delay_s: float = Field(default=3.0, ge=0)
    downscale_delay_s: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})")
        return self


class DeploymentSettings(StrictModel):
    """One Serve deployment's replicas and resources (fractional GPUs are a scheduling reservation,
    not memory isolation: size `max_models_per_replica` to the GPU's memory)."""

    num_replicas: int | None = Field(default=None, ge=1, description="fixed replicas; None: autoscaling")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    max_ongoing_requests: int = Field(default=4, ge=1)
    max_queued_requests: int = Field(default=16, ge=-1, description="beyond this the proxy answers 503 (-1: no cap)")
    retry_after_s: int = Field(default=2, ge=0, description="Retry-After of those 503 answers")
    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)
    graceful_shutdown_timeout_s: float = Field(default=30.0, ge=0, description="in-flight requests may finish")
    health_check_period_s: float = Field(default=10.0, gt=0)
    health_check_timeout_s: float = Field(default=60.0, gt=0)

    def serve_options(self) -> dict[str, Any]:
        """Keyword arguments of `Deployment.options`."""
        opts: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests, "max_queued_requests": self.max_queued_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "backpressure_config": {"status_code": 503, "retry_after_s": self.retry_after_s},
        }  # fmt: skip
        if self.num_replicas is not None:
            opts["num_replicas"] = self.num_replicas
        else:
            opts["autoscaling_config"] = self.autoscaling.model_dump()
        return opts


class Limits(StrictModel):
    max_upload_mb: float = Field(default=64.0, gt=0, description="uploaded video or predictions file")
    max_frames: int = Field(default=600, ge=1, description="frames of one request's video (after range/stride)")
    max_expressions: int = Field(default=8, ge=1, description="expressions per request")
    request_timeout_s: float = Field(default=300.0, gt=0, description="longer requests get 408")


class AuthSettings(StrictModel):
    api_key_env: str = Field(default="INTERRVOS_API_KEY",
                             description="environment variable holding the API key; unset or empty: no auth")


class ModelAppConfig(StrictModel):
    """`serve/model.yaml`: checkpoints as multiplexed, autoscaling replicas behind /v1/segment."""

    checkpoints_root: str = Field(default="runs/checkpoints",
                                  description="folder or URI whose sub-folders are checkpoints (their id: the name)")
    default_checkpoint: str | None = Field(default=None, description="id used when a request names none")
    max_models_per_replica: int = Field(default=2, ge=1, description="loaded checkpoints per replica (LRU eviction)")
    datasets: dict[str, str] = Field(default_factory=dict,
                                     description="registered datasets whose clips a request may name by id")
    video_roots: list[str] = Field(default_factory=list, description="folders a request's video path may lie under")
    upload_dir: str | None = Field(default=None, description="temp folder for uploads (None: the system's)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    num_threads: int = Field(default=1, ge=1, description="torch threads per replica (CPU)")
    limits: Limits = Field(default_factory=Limits)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)


class EvaluateAppConfig(StrictModel):
    """`serve/evaluate.yaml`: a scoring server holding registered evaluation sets (ground truth stays here)."""

    datasets: dict[str, str] = Field(default_factory=dict, description="name -> dataset folder or URI")
    storage: str = Field(default="runs/serve/evaluate", description="the app's folder (results database)")
    database_url: str | None = Field(default=None, description="sqlite:///path (None: <storage>/results.sqlite)")
    model_app: str = Field(default="model", description="Serve application name of the model app")
    model_deployment: str = Field(default="ModelServer", description="its deployment (for /v1/evaluate/checkpoint)")
    limits: Limits = Field(default_factory=Limits)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    deployment: DeploymentSettings = Field(default_factory=lambda: DeploymentSettings(num_replicas=1))

    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.storage.rstrip('/')}/results.sqlite"
