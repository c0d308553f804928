"""KubeRay (ray.io/v1) manifests from the ClusterSpec: a RayCluster, one RayJob per long job, a RayService.

All three share one cluster spec (a CPU head that advertises no CPUs, an autoscaling CPU group and an
autoscaling GPU group, both from 0). Ray's token auth goes through KubeRay's `authOptions` (KubeRay >= 1.5.1):
the operator then sets RAY_AUTH_MODE and RAY_AUTH_TOKEN (valueFrom the named Secret) on every Ray container,
including the autoscaler and the RayJob submitter it writes itself, and uses the token for its own calls to
the dashboard (job status, Serve deploys); a hand-written env entry would miss those. The other secrets
(LLM keys, the Serve apps' API key) come from one Secret through env valueFrom.
"""

from __future__ import annotations

import copy
import shlex
from typing import Any

import yaml

from interrvos.cluster.serve_config import serve_applications
from interrvos.cluster.spec import ClusterSpec, PodSpec

API_VERSION = "ray.io/v1"


def _labels(spec: ClusterSpec, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "interrvos-platform", "app.kubernetes.io/instance": spec.name,
            "app.kubernetes.io/component": component}


def _env(spec: ClusterSpec) -> list[dict[str, Any]]:
    # optional: a Secret without a key (no OpenAI account, say) leaves the variable unset instead of
    # keeping the pod from starting.
    return [{"name": name, "valueFrom": {"secretKeyRef": {
        "name": spec.secrets.kubernetes_secret, "key": name, "optional": True}}} for name in spec.secrets.env]


def _resources(pod: PodSpec) -> dict[str, Any]:
    # Requests equal limits (Ray sizes itself from the limits; a burstable pod gets evicted under pressure).
    amounts: dict[str, Any] = {"cpu": pod.cpu, "memory": pod.memory}
    limits = dict(amounts, **({"nvidia.com/gpu": pod.gpus} if pod.gpus else {}))
    return {"requests": amounts, "limits": limits}


def _pod_template(spec: ClusterSpec, container: str, pod: PodSpec, ports: list[dict[str, Any]] | None) -> dict:
    body: dict[str, Any] = {
        "name": container,
        "image": spec.image_ref,
        "imagePullPolicy": "IfNotPresent",
        # The job configs and serve/ files are read relative to the project folder of the image.
        "workingDir": spec.image.workdir,
        "env": _env(spec),
        "resources": _resources(pod),
    }
    if ports:
        body["ports"] = ports
    pod_spec: dict[str, Any] = {"containers": [body]}
    if pod.tolerations:
        pod_spec["tolerations"] = copy.deepcopy(pod.tolerations)
    if pod.node_selector:
        pod_spec["nodeSelector"] = dict(pod.node_selector)
    if spec.kubernetes.service_account:  # e.g. bound to a cloud role for the storage (IRSA, workload identity)
        pod_spec["serviceAccountName"] = spec.kubernetes.service_account
    return {"spec": pod_spec}


def cluster_spec(spec: ClusterSpec) -> dict[str, Any]:
    """The RayCluster `spec` (also RayJob.rayClusterSpec and RayService.rayClusterConfig)."""
    head_ports = [{"containerPort": 6379, "name": "gcs-server"}, {"containerPort": 8265, "name": "dashboard"},
                  {"containerPort": 10001, "name": "client"}, {"containerPort": 8000, "name": "serve"}]
    groups = []
    for name, worker in spec.workers.items():
        groups.append({
            "groupName": name,
            "replicas": worker.min_workers,
            "minReplicas": worker.min_workers,
            "maxReplicas": worker.max_workers,
            "rayStartParams": {},  # KubeRay derives num-cpus / num-gpus from the container limits
            "template": _pod_template(spec, "ray-worker", worker.pod, None),
        })
    return {
        "rayVersion": spec.ray_version,
        "enableInTreeAutoscaling": True,
        "authOptions": ({"mode": "token", "secretName": spec.ray_auth.kubernetes_secret}
                        if spec.ray_auth.mode == "token" else {"mode": "disabled"}),
        "autoscalerOptions": {
            "upscalingMode": "Default",
            "idleTimeoutSeconds": spec.idle_timeout_minutes * 60,
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                          "limits": {"cpu": "500m", "memory": "512Mi"}},
        },
        "headGroupSpec": {
            # num-cpus 0: drivers, GCS and dashboard only; every task and actor goes to a worker group.
            "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
            "template": _pod_template(spec, "ray-head", spec.head.pod, head_ports),
        },
        "workerGroupSpecs": groups,
    }


def render_raycluster(spec: ClusterSpec) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "RayCluster",
            "metadata": {"name": spec.name, "labels": _labels(spec, "ray-cluster")}, "spec": cluster_spec(spec)}


def job_entrypoint(spec: ClusterSpec, job: str) -> str:
    """The command a user types for the job (jobs/<job>.py), pointed at the shared storage."""
    args = ["python", f"jobs/{job}.py", "--config", spec.jobs[job].config]
    for override in spec.job_overrides(job):
        args += ["--set", override]
    return shlex.join(args)


def render_rayjob(spec: ClusterSpec, job: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "RayJob",
        "metadata": {"name": f"{spec.name}-{job}", "labels": _labels(spec, f"job-{job}")},
        "spec": {
            "entrypoint": job_entrypoint(spec, job),
            "submissionMode": "K8sJobMode",
            # A failed job is not retried on a new cluster by KubeRay: re-applying resumes it (the jobs
            # skip finished work), after a look at the logs.
            "backoffLimit": 0,
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 3600,  # the finished cluster's logs stay readable for an hour
            "rayClusterSpec": cluster_spec(spec),
        },
    }


def render_rayservice(spec: ClusterSpec) -> dict[str, Any]:
    """serveConfigV2 without http_options: on KubeRay every pod's proxy listens on 0.0.0.0:8000, behind the
    <name>-serve-svc Service the operator creates."""
    serve_config = yaml.safe_dump(serve_applications(spec), sort_keys=False, default_flow_style=False, width=1000)
    return {
        "apiVersion": API_VERSION,
        "kind": "RayService",
        "metadata": {"name": f"{spec.name}-serve", "labels": _labels(spec, "serve")},
        "spec": {"serveConfigV2": serve_config, "rayClusterConfig": cluster_spec(spec)},
    }
