"""Ray cluster-launcher configs (`ray up`) for AWS, GCP and on-prem machines, from the ClusterSpec.

Every top-level key is set explicitly: `prepare_config` shallow-merges the provider's defaults.yaml into
whatever is missing, and for aws/gcp those defaults pip-install a nightly Ray wheel in setup_commands.
Setup commands are empty because the image (cluster/Dockerfile) already holds the project.
"""

from __future__ import annotations

from typing import Any

from interrvos.cluster.spec import ClusterSpec

# Where the secrets file lands inside every node's container (the rayproject images' user is `ray`).
REMOTE_ENV_FILE = "/home/ray/.interrvos/cluster.env"
HEAD_NODE_TYPE = "head"


def _env_prefix(spec: ClusterSpec) -> str:
    # `set -a` exports every KEY=value of the file, so the raylet, the dashboard, the job drivers and every
    # worker process they start inherit the LLM keys and RAY_AUTH_TOKEN; RAY_AUTH_MODE must match everywhere.
    return (f"if [ -f {REMOTE_ENV_FILE} ]; then set -a; . {REMOTE_ENV_FILE}; set +a; fi; "
            f"export RAY_AUTH_MODE={spec.ray_auth.mode}; ulimit -n 65536;")  # fmt: skip


def _start_commands(spec: ClusterSpec) -> dict[str, list[str]]:
    # `ray stop` runs on the cluster's own node, inside its container, so that `ray up` can restart Ray there.
    return {
        "head_start_ray_commands": [
            "ray stop",
            f"{_env_prefix(spec)} ray start --head --port=6379 --object-manager-port=8076 "
            "--autoscaling-config=~/ray_bootstrap_config.yaml --dashboard-host=0.0.0.0",
        ],
        "worker_start_ray_commands": [
            "ray stop",
            f"{_env_prefix(spec)} ray start --address=$RAY_HEAD_IP:6379 --object-manager-port=8076",
        ],
    }


def _common(spec: ClusterSpec) -> dict[str, Any]:
    """The keys every launcher file sets the same way, in the order of Ray's own example files."""
    return {
        "docker": {
            "image": spec.image_ref,
            "container_name": "ray_container",
            "pull_before_run": True,
            "run_options": ["--ulimit nofile=65536:65536"],
        },
        "file_mounts": {REMOTE_ENV_FILE: spec.secrets.env_file},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        **_start_commands(spec),
    }


def _node_types(spec: ClusterSpec, cloud: str) -> dict[str, Any]:
    types: dict[str, Any] = {
        HEAD_NODE_TYPE: {
            # No CPUs or GPUs for Ray on the head: drivers, GCS and dashboard only, tasks go to workers.
            "resources": {"CPU": 0, "GPU": 0},
            "node_config": dict(getattr(spec.head, cloud)),
            "min_workers": 0,
            "max_workers": 0,
        }
    }
    for name, worker in spec.workers.items():
        node: dict[str, Any] = {
            "resources": {"CPU": worker.cpus, "GPU": worker.gpus},
            "node_config": dict(getattr(worker, cloud)),
            "min_workers": worker.min_workers,
            "max_workers": worker.max_workers,
        }
        if worker.gpus:
            node["docker"] = {"worker_run_options": ["--gpus all"]}
        types[name] = node
    return types


def _cloud(spec: ClusterSpec, cloud: str, provider: dict[str, Any], ssh_user: str) -> dict[str, Any]:
    return {
        "cluster_name": spec.name,
        "max_workers": sum(w.max_workers for w in spec.workers.values()),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": spec.idle_timeout_minutes,
        "provider": provider,
        "auth": {"ssh_user": ssh_user},
        "available_node_types": _node_types(spec, cloud),
        "head_node_type": HEAD_NODE_TYPE,
        **_common(spec),
    }


def render_aws(spec: ClusterSpec) -> dict[str, Any]:
    provider = {"type": "aws", "region": spec.aws.region, "availability_zone": spec.aws.availability_zone,
                "cache_stopped_nodes": False}  # idle nodes are terminated, not kept as stopped volumes
    return _cloud(spec, "aws", provider, spec.aws.ssh_user)


def render_gcp(spec: ClusterSpec) -> dict[str, Any]:
    provider = {"type": "gcp", "region": spec.gcp.region, "availability_zone": spec.gcp.availability_zone,
                "project_id": spec.gcp.project_id}
    return _cloud(spec, "gcp", provider, spec.gcp.ssh_user)


def render_onprem(spec: ClusterSpec) -> dict[str, Any]:
    """`provider: local`: Ray on a fixed list of machines. The local provider forbids available_node_types
    (every worker_ip is one worker; prepare_config sets min = max = len(worker_ips))."""
    return {
        "cluster_name": spec.name,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": spec.idle_timeout_minutes,
        "provider": {"type": "local", "head_ip": spec.onprem.head_ip, "worker_ips": list(spec.onprem.worker_ips)},
        "auth": {"ssh_user": spec.onprem.ssh_user, "ssh_private_key": spec.onprem.ssh_private_key},
        **_common(spec),
    }


LAUNCHER_FILES = {"aws.yaml": render_aws, "gcp.yaml": render_gcp, "onprem.yaml": render_onprem}
