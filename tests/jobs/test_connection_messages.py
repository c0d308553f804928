"""Where a job runs (embedded default or a cluster) and the one-line messages of a failed join, without a
cluster: Ray's own exception texts (as Ray 2.60 raises them) in, ClusterConnectionError lines out."""

from __future__ import annotations

import pytest

from interrvos.config import RayConfig
from interrvos.errors import ClusterConnectionError, InterRVOSError
from interrvos.runtime import cluster_address, explain_join_failure, join_cluster

WHERE = "the Ray cluster at 10.0.0.5:6379 (from ray.address)"


def _wrapped(inner: Exception) -> ConnectionError:
    """What ray.init raises: ConnectionError("Failed to connect to Ray cluster at ...") from the real cause."""
    try:
        try:
            raise inner
        except Exception as e:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379") from e
    except ConnectionError as outer:
        return outer


def test_no_address_or_local_means_the_embedded_default(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(RayConfig()) == (None, "RAY_ADDRESS")
    assert cluster_address(RayConfig(address="local"))[0] is None
    monkeypatch.setenv("RAY_ADDRESS", "local")  # what `serve run` users set for a private Ray
    assert cluster_address(RayConfig())[0] is None


def test_an_address_in_the_config_wins_over_ray_address(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert cluster_address(RayConfig()) == ("10.0.0.9:6379", "RAY_ADDRESS")
    assert cluster_address(RayConfig(address="10.0.0.5:6379")) == ("10.0.0.5:6379", "ray.address")


def test_nothing_listening_is_one_line_naming_the_address_and_port(unused_port):
    with pytest.raises(ClusterConnectionError) as err:
        join_cluster(f"127.0.0.1:{unused_port}", "ray.address")
    msg = str(err.value)
    assert isinstance(err.value, InterRVOSError) and "\n" not in msg
    where = f"the Ray cluster at 127.0.0.1:{unused_port} (from ray.address)"
    assert msg.startswith(f"cannot reach {where}: nothing listens")
    assert "GCS port" in msg and "6379" in msg


def test_the_dashboard_address_is_named_as_such():
    with pytest.raises(ClusterConnectionError, match=r"dashboard / Jobs API .* not the cluster.s GCS"):
        join_cluster("http://127.0.0.1:8265", "RAY_ADDRESS")


def test_a_refused_client_without_token_auth_is_told_about_token_auth(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    msg = explain_join_failure(WHERE, _wrapped(RuntimeError("Failed to get cluster metadata")))
    assert "\n" not in msg and msg.startswith(f"cannot join {WHERE}: the head answers but did not let this client join")
    assert "RAY_AUTH_MODE=token" in msg and "~/.ray/auth_token" in msg and "Ray 2.60.0" in msg


def test_an_auth_rejection_of_a_client_without_token_auth_names_ray_auth_mode(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray_text = ("RPC error: InvalidAuthToken: Authentication token is missing or incorrect. Note: RAY_AUTH_MODE is "
                "currently 'disabled' (not 'token').")
    msg = explain_join_failure(WHERE, _wrapped(RuntimeError(ray_text)))
    assert msg == (f"cannot join {WHERE}: the head requires token auth and this client has RAY_AUTH_MODE=disabled; "
                   "set RAY_AUTH_MODE=token and give it the head's token (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or "
                   "RAY_AUTH_TOKEN)")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # the same refusal with a token: the wrong one
    assert "the head rejected this client's auth token" in explain_join_failure(WHERE, _wrapped(RuntimeError(ray_text)))


def test_any_other_failure_keeps_rays_reason_without_its_traceback(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    ray_text = "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n  File ..."
    msg = explain_join_failure(WHERE, _wrapped(RuntimeError(ray_text)))
    assert msg.startswith(f"cannot join {WHERE}: Failed to connect to GCS; check the head's token") and "\n" not in msg
    assert "Traceback" not in msg and "Ray 2.60.0" in msg


def test_token_mode_without_a_token_names_the_three_places_a_token_can_be(monkeypatch):
    from ray.exceptions import AuthenticationError

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    msg = explain_join_failure(WHERE, AuthenticationError(
        "Token authentication is enabled but no authentication token was found"))
    assert "\n" not in msg and "RAY_AUTH_MODE=token but no auth token was found" in msg
    assert "~/.ray/auth_token" in msg and "RAY_AUTH_TOKEN_PATH" in msg and "RAY_AUTH_TOKEN" in msg


def test_a_version_mismatch_names_both_versions():
    ray_text = ("Version mismatch: The cluster was started with:\n    Ray: 2.59.0\n    Python: 3.11.9\n"
                "This process on node 10.0.0.7 was started with:\n    Ray: 2.60.0\n    Python: 3.11.14\n")
    msg = explain_join_failure(WHERE, _wrapped(RuntimeError(ray_text)))
    assert "\n" not in msg
    assert "version mismatch, the cluster runs Ray 2.59.0, Python 3.11.9 and this process Ray 2.60.0, " \
           "Python 3.11.14" in msg


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there
