"""Connecting to Ray: an existing cluster when an address is given (`ray.address`, or RAY_ADDRESS as
`ray job submit` sets it), otherwise a small private Ray started in-process (the embedded default).

Joining a cluster takes the environment's Ray settings as they are (token auth: RAY_AUTH_MODE=token and
the token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN); a failure to join ends in one
ClusterConnectionError line that names the address and what to check."""

from __future__ import annotations

import logging
import os
import re
import socket
import sys

from interrvos import run_logs
from interrvos.config import RayConfig
from interrvos.errors import ClusterConnectionError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0


def ensure_ray(cfg: RayConfig | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    cfg = cfg or RayConfig()
    address, source = cluster_address(cfg)
    run_logs.before_ray()  # inside an `interrvos` command: Ray's log lines to <run folder>/logs/, not the console
    try:
        if address is None:
            _start_embedded(cfg)
        else:
            join_cluster(address, source, cfg.log_to_driver)
    except BaseException:
        run_logs.ray_failed()
        raise
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stderr.isatty()
    ctx.print_on_execution_start = False
    run_logs.after_ray()


def cluster_address(cfg: RayConfig) -> tuple[str | None, str]:
    """(address to join, where it came from); None (or "local"): the embedded default."""
    address, source = (cfg.address, "ray.address") if cfg.address else (os.environ.get("RAY_ADDRESS"), "RAY_ADDRESS")
    address = (address or "").strip()
    return (None if address in ("", "local") else address), source


def _start_embedded(cfg: RayConfig) -> None:
    import ray

    # A private in-process Ray needs no auth token (Ray 2.60 would otherwise turn token auth on and write
    # ~/.ray/auth_token); an explicit RAY_AUTH_MODE is kept.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # address="local": always start our own Ray. With address=None Ray joins the cluster named in its temp
    # folder's `ray_current_cluster`, which any earlier `ray start` on the machine leaves behind (even one
    # stopped since), and then refuses our num_cpus/object_store_memory.
    ray.init(
        address="local",
        num_cpus=cfg.num_cpus,
        object_store_memory=cfg.object_store_mb * 2**20,
        include_dashboard=cfg.include_dashboard,
        log_to_driver=cfg.log_to_driver,
    )


def join_cluster(address: str, source: str = "ray.address", log_to_driver: bool = False) -> None:
    """ray.init(address) with the environment's auth settings; ClusterConnectionError (one line) on failure."""
    import ray

    where = f"the Ray cluster at {address} (from {source})"
    if address.startswith(("http://", "https://")):
        raise ClusterConnectionError(f"cannot join {where}: {DASHBOARD_NOT_GCS}")
    probe_address(address, where)
    check_auth(address, where)
    try:
        ray.init(address=address, log_to_driver=log_to_driver)
    except Exception as e:  # whatever ray.init raises here, the job could not join the cluster
        if ray.is_initialized():
            ray.shutdown()
        raise ClusterConnectionError(explain_join_failure(where, e)) from e


DASHBOARD_NOT_GCS = ("that is the dashboard / Jobs API (for `ray job submit`), not the cluster's GCS; a job joins "
                     "by the head's GCS address HOST:PORT (`ray start --head --port`, default 6379)")


def probe_address(address: str, where: str) -> None:
    """Fail fast, and say so, when nothing listens at HOST:PORT or an HTTP server does (the dashboard): Ray
    retries the first for a while and waits on the second for minutes."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\]\s]+?)\]?:(\d+)", address)
    if match is None:  # "auto" or a form Ray resolves itself
        return
    host, port = match.group(1), int(match.group(2))
    try:
        conn = socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S)
    except socket.gaierror:
        raise ClusterConnectionError(f"cannot reach {where}: unknown host {host!r}; check the address") from None
    except OSError as e:
        reason = "nothing listens on that port" if isinstance(e, ConnectionRefusedError) else str(e) or type(e).__name__
        raise ClusterConnectionError(
            f"cannot reach {where}: {reason}; check that the head is running and the address is its GCS port "
            "(`ray start --head --port`, default 6379)") from None
    with conn:
        try:
            # The GCS speaks gRPC (HTTP/2 frames back); an HTTP/1 status line is a web server, e.g. the dashboard.
            conn.sendall(b"GET /api/version HTTP/1.0\r\n\r\n")
            answer = conn.recv(8)
        except OSError:
            answer = b""  # silence or a reset: leave the verdict to Ray
    if answer.startswith(b"HTTP/"):
        raise ClusterConnectionError(f"cannot join {where}: {DASHBOARD_NOT_GCS}")


def check_auth(address: str, where: str) -> None:
    """Ray retries a refused auth token for ~20 s before it gives up; one GCS call tells at once."""
    from ray.exceptions import AuthenticationError

    try:
        from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
        from ray._raylet import GcsClient  # private (Ray is pinned); without it ray.init still explains

        ensure_token_if_auth_enabled(None, create_token_if_missing=False)  # token mode but no token: raises
        if re.fullmatch(r"[^/\s]+:\d+", address):  # a GCS address (not ray:// or "auto")
            GcsClient(address=address)
    except AuthenticationError as e:
        raise ClusterConnectionError(explain_join_failure(where, e)) from e
    except Exception:  # noqa: BLE001 - anything else: ray.init retries, then explains
        log.debug("auth pre-check of %s inconclusive", address, exc_info=True)


def explain_join_failure(where: str, error: BaseException) -> str:
    """One line: what failed and what to check (token auth, RAY_AUTH_MODE, the head's Ray version)."""
    import ray

    messages = [str(e) for e in _chain(error)]
    text = " ".join(messages)
    mode = os.environ.get("RAY_AUTH_MODE") or "disabled"
    this = f"Ray {ray.__version__}, Python {sys.version.split()[0]}"
    if "Version mismatch" in text:
        # Ray's text: "The cluster was started with: Ray: A Python: B This process on ... was started with: ..."
        found = re.findall(r"started with:\s*Ray:\s*(\S+)\s*Python:\s*(\S+)", text)
        cluster = f"Ray {found[0][0]}, Python {found[0][1]}" if found else "other versions"
        this = f"Ray {found[1][0]}, Python {found[1][1]}" if len(found) > 1 else this
        return (f"cannot join {where}: version mismatch, the cluster runs {cluster} and this process {this}; "
                "run the job with the head's Ray and Python versions")
    if re.search(r"no authentication token was found|couldn't find an authentication token", text):
        return (f"cannot join {where}: RAY_AUTH_MODE={mode} but no auth token was found; put the head's token in "
                "~/.ray/auth_token, or point RAY_AUTH_TOKEN_PATH at it, or set RAY_AUTH_TOKEN")
    rejected = re.search(r"InvalidAuthToken|missing or incorrect|invalid or incorrect|UNAUTHENTICATED", text)
    if rejected and mode != "token":
        return (f"cannot join {where}: the head requires token auth and this client has RAY_AUTH_MODE={mode}; set "
                "RAY_AUTH_MODE=token and give it the head's token (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or "
                "RAY_AUTH_TOKEN)")
    if rejected:
        return (f"cannot join {where}: the head rejected this client's auth token; use the token the head was "
                "started with (`ray get-auth-token` where the head runs)")
    if mode != "token":
        return (f"cannot join {where}: the head answers but did not let this client join (RAY_AUTH_MODE={mode}); "
                "most likely the head runs with token auth: set RAY_AUTH_MODE=token and give this client the "
                "head's token (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN); else check that the head "
                f"runs {this}")
    first = next((m.splitlines()[0] for m in reversed(messages) if m.strip()), type(error).__name__)
    first = re.split(r"\.?\s*(?:Last connection error|Traceback)", first)[0]  # Ray appends a formatted traceback
    return (f"cannot join {where}: {first}; check the head's token (RAY_AUTH_MODE=token here) and that the head "
            f"runs {this}")


def _chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
