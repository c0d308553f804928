"""Starting the Serve apps from their deploy configs (serve/model.yaml, serve/evaluate.yaml): the same
files `serve run` and `serve deploy` read, validated offline (Serve's schema and ours) before anything
starts. `interrvos serve [model|evaluate|all]` is this module."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from interrvos.config import REPO_ROOT, RayConfig, StrictModel, _set_dotted, format_validation_error, parse_override
from interrvos.errors import ConfigError
from interrvos.serving.config import EvaluateAppConfig, ModelAppConfig

DEPLOY_CONFIGS = {"model": REPO_ROOT / "serve" / "model.yaml", "evaluate": REPO_ROOT / "serve" / "evaluate.yaml"}
# The typed args of each application builder, by its import path.
APP_CONFIGS: dict[str, type[StrictModel]] = {
    "interrvos.serving.model_app:build_app": ModelAppConfig,
    "interrvos.serving.evaluate_app:build_app": EvaluateAppConfig,
}


@dataclass
class AppSpec:
    name: str
    route_prefix: str
    import_path: str
    config: StrictModel

    def args(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")


def read_deploy_config(path: str | os.PathLike) -> dict[str, Any]:
    """A Serve deploy config, checked with Serve's own schema; ConfigError names the file and field."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        tree = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"serve config not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"serve config {path} is not valid YAML: {err}") from None
    try:
        ServeDeploySchema.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path))) from None
    _check_deployment_overrides(tree, str(path))
    return tree


def _check_deployment_overrides(tree: dict[str, Any], source: str) -> None:
    """ServeDeploySchema keeps a `deployments:` entry's autoscaling_config as a plain dict (min > max
    passes it and fails only at deploy time): check those with Serve's AutoscalingConfig too."""
    from pydantic import ValidationError
    from ray.serve.config import AutoscalingConfig

    for a, app in enumerate(tree.get("applications") or []):
        for d, deployment in enumerate(app.get("deployments") or []):
            autoscaling = deployment.get("autoscaling_config")
            if autoscaling is None:
                continue
            try:
                AutoscalingConfig(**autoscaling)
            except ValidationError as err:
                raise ConfigError(format_validation_error(
                    err, f"{source} applications.{a}.deployments.{d}.autoscaling_config")) from None


def app_specs(tree: dict[str, Any], source: str, overrides: list[str] | None = None) -> list[AppSpec]:
    """Every application of a deploy config with its typed args; overrides `APP.key=value` (or `key=value`
    when there is one application) change args before validation."""
    from pydantic import ValidationError
    from ray.serve.config import AutoscalingConfig

    apps = tree.get("applications") or []
    specs = []
    for app in apps:
        args = copy.deepcopy(app.get("args") or {})  # overrides must not change the caller's tree
        for text in overrides or []:
            key, value = parse_override(text)
            head, _, rest = key.partition(".")
            if head == app["name"] and rest:
                _set_dotted(args, rest, value)
            elif len(apps) == 1 and head not in DEPLOY_CONFIGS:  # `model.x` / `evaluate.x` name another app
                _set_dotted(args, key, value)
        model = APP_CONFIGS.get(app["import_path"])
        if model is None:
            raise ConfigError(f"{source}: application {app['name']!r}: unknown import_path {app['import_path']!r} "
                              f"(known: {', '.join(APP_CONFIGS)})")  # fmt: skip
        try:
            cfg = model.model_validate(args)
            AutoscalingConfig(**cfg.deployment.autoscaling.model_dump())  # Serve's own checks too
        except ValidationError as err:
            raise ConfigError(format_validation_error(err, f"{source} application {app['name']!r} args")) from None
        specs.append(AppSpec(app["name"], app.get("route_prefix", "/"), app["import_path"], cfg))
    return specs


def load_specs(which: str, config: str | os.PathLike | None = None, overrides: list[str] | None = None) -> tuple[
        list[AppSpec], dict[str, Any]]:  # fmt: skip
    """The apps to start for `interrvos serve which` and the HTTP options of the (first) deploy config."""
    if which not in ("model", "evaluate", "all"):
        raise ConfigError(f"serve: unknown app {which!r} (model, evaluate or all)")
    if config and which == "all":
        raise ConfigError("serve all reads serve/model.yaml and serve/evaluate.yaml; give --config to one app")
    paths = [config or DEPLOY_CONFIGS[which]] if which != "all" else list(DEPLOY_CONFIGS.values())
    specs, http = [], {}
    for path in paths:
        tree = read_deploy_config(path)
        http = http or dict(tree.get("http_options") or {})
        specs += app_specs(tree, str(path), overrides)
    return specs, http


def start_apps(specs: list[AppSpec], host: str, port: int, ray_cfg: RayConfig | None = None) -> str:
    """Start Serve on `host:port` (joining `ray_cfg.address` when set) and every app; returns the base URL."""
    import importlib

    from ray import serve

    from interrvos.runtime import ensure_ray

    ensure_ray(ray_cfg)
    serve.start(http_options={"host": host, "port": port})
    for spec in specs:
        module, _, attr = spec.import_path.partition(":")
        builder = getattr(importlib.import_module(module), attr)
        serve.run(builder(spec.args()), name=spec.name, route_prefix=spec.route_prefix, blocking=False)
    return f"http://{host}:{port}"
