"""The Serve apps a cluster runs: the serving deploy configs' applications (serve/model.yaml and
serve/evaluate.yaml, read and checked by interrvos.serving.launch), with the cluster spec's overrides of
their args. The RayService embeds them; cluster/serve.yaml holds them for `serve deploy` on launcher and
machine-room clusters (one `serve deploy` declares every app of a cluster, so both apps go in one file)."""

from __future__ import annotations

from typing import Any

from interrvos.cluster.spec import ClusterSpec
from interrvos.config import REPO_ROOT, _set_dotted, parse_override
from interrvos.errors import ConfigError

SERVE_PORT = 8000


def serve_applications(spec: ClusterSpec) -> dict[str, Any]:
    """{proxy_location, applications}: every application of spec.serve.configs, each checked by
    read_deploy_config and, after the spec's APP.key=value overrides, by the app's typed config."""
    from interrvos.serving.launch import app_specs, read_deploy_config

    trees = [(path, read_deploy_config(REPO_ROOT / path)) for path in spec.serve.configs]
    apps: dict[str, dict[str, Any]] = {}
    for path, tree in trees:
        for app in tree.get("applications") or []:
            if app["name"] in apps:
                raise ConfigError(f"serve configs {spec.serve.configs}: two applications named {app['name']!r}")
            apps[app["name"]] = app
    for text in spec.serve_overrides():
        key, value = parse_override(text)
        app_name, _, field = key.partition(".")
        if app_name not in apps or not field:
            raise ConfigError(f"cluster spec serve.set {text!r}: must be APP.key=value with APP one of {sorted(apps)}")
        _set_dotted(apps[app_name].setdefault("args", {}), field, value)
    for path, tree in trees:  # the overridden args must still be the apps' typed configs
        app_specs(tree, f"{path} + cluster spec serve.set")
    locations = {tree.get("proxy_location", "EveryNode") for _, tree in trees}
    if len(locations) != 1:
        raise ConfigError(f"serve configs {spec.serve.configs} disagree on proxy_location: {sorted(locations)}")
    return {"proxy_location": locations.pop(), "applications": list(apps.values())}


def render_serve_deploy(spec: ClusterSpec) -> dict[str, Any]:
    """A Serve deploy config for a launcher or machine-room cluster: the proxies listen on every node's
    address (serve/*.yaml bind 127.0.0.1, right for one machine, unreachable from outside on a cluster)."""
    apps = serve_applications(spec)
    return {"proxy_location": apps["proxy_location"], "http_options": {"host": "0.0.0.0", "port": SERVE_PORT},
            "applications": apps["applications"]}
