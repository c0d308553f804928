"""Offline checks of the cluster files, with the tools that `ray up` and `kubectl apply` would use.

Launcher files: Ray's own `prepare_config` + `validate_config` (ray.autoscaler._private.util: a private
API, which is why the Ray version is pinned), plus what Ray does not check: min_workers <= max_workers per
node type. KubeRay manifests: the JSON Schemas of the ray.io/v1 CRDs with their checker, validate.py, kept
in the shared folder beside the repo (../shared/schemas/kuberay); without that folder (or without
jsonschema) the KubeRay check is unavailable and says why.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from interrvos.config import REPO_ROOT
from interrvos.errors import InterRVOSError

KUBERAY_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas" / "kuberay"
_validators: dict[Path, ModuleType] = {}


class SchemasUnavailable(InterRVOSError):
    """The KubeRay schemas or their checker cannot be loaded here; the message says why."""


def launcher_errors(config: dict[str, Any]) -> list[str]:
    """Why `ray up` would reject this launcher config (empty: it passes every offline check)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        prepared = prepare_config(copy.deepcopy(config))
        validate_config(prepared)
    except Exception as err:  # jsonschema ValidationError, ValueError, click.ClickException, AssertionError
        # jsonschema's str() appends the whole schema; its .message (and click's) is the one line that matters.
        message = getattr(err, "message", None) or str(err) or type(err).__name__
        return [f"{type(err).__name__}: {message}"]
    errors = []
    default_max = prepared.get("max_workers", 0)
    for name, node in (prepared.get("available_node_types") or {}).items():
        low, high = node.get("min_workers", 0), node.get("max_workers", default_max)
        if low > high:  # Ray accepts this and then never scales the type as asked
            errors.append(f"available_node_types.{name}: min_workers ({low}) is greater than max_workers ({high})")
    return errors


def serve_errors(config: dict[str, Any]) -> list[str]:
    """Why `serve deploy` would reject this Serve config (Serve's own schema); empty: it passes."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        ServeDeploySchema.model_validate(config)
    except ValidationError as err:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
    return []


def load_kuberay_checker(folder: str | Path | None = None) -> ModuleType:
    """The shared validate.py, imported by path; SchemasUnavailable says why it cannot be."""
    folder = Path(folder or KUBERAY_SCHEMAS)
    script = folder / "validate.py"
    if folder in _validators:
        return _validators[folder]
    if not script.is_file():
        raise SchemasUnavailable(f"no KubeRay schema checker at {script} (the shared/ folder beside the repo)")
    try:
        import jsonschema  # noqa: F401  (validate.py needs it; say so instead of a bare ImportError)
    except ImportError:
        raise SchemasUnavailable("jsonschema is not installed (it is in the dev extra: pip install -e '.[dev]')") from None
    module_spec = importlib.util.spec_from_file_location("interrvos_shared_kuberay_validate", script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    _validators[folder] = module
    return module


def kuberay_errors(doc: dict[str, Any], folder: str | Path | None = None) -> list[str]:
    """Why `kubectl apply` would reject this manifest (schema errors, a bad serveConfigV2); empty: it passes.
    Not covered (the README of the schemas lists it): checks the operator makes at reconcile time."""
    errors = list(load_kuberay_checker(folder).validate_doc(copy.deepcopy(doc)))
    return errors + _replica_errors(doc)


def _replica_errors(doc: dict[str, Any]) -> list[str]:
    """minReplicas <= maxReplicas per worker group: the operator rejects it only at reconcile time."""
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(spec, dict):
        return []
    where = {"RayCluster": ("$.spec", spec), "RayJob": ("$.spec.rayClusterSpec", spec.get("rayClusterSpec")),
             "RayService": ("$.spec.rayClusterConfig", spec.get("rayClusterConfig"))}.get(doc.get("kind"))
    if not where or not isinstance(where[1], dict):
        return []
    errors = []
    for i, group in enumerate(where[1].get("workerGroupSpecs") or []):
        low, high = group.get("minReplicas"), group.get("maxReplicas")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            errors.append(f"{where[0]}.workerGroupSpecs[{i}]: minReplicas ({low}) is greater than maxReplicas ({high})")
    return errors
