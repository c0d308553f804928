"""interrvos.run_logs: the raylet's messages to the driver go to driver.log, not the console, while a command
runs, and Ray's printer is itself again afterwards."""

from __future__ import annotations

import logging


def test_raylet_messages_go_to_the_driver_log_and_the_printer_is_restored(tmp_path, capsys):
    import ray._private.worker as ray_worker

    from interrvos.run_logs import DRIVER_LOG, job_logs

    original = ray_worker.print_to_stdstream
    message = "WARNING: 8 PYTHON worker processes have been started on node: x"
    with job_logs(tmp_path) as logs:
        logs.folder = logs._route()  # what ensure_ray's before_ray does, without starting Ray
        logs._raylet_messages_to_the_log()
        ray_worker.print_to_stdstream({"lines": [message], "pid": "raylet", "is_err": False}, ignore_prefix=False)
        ray_worker.print_to_stdstream({"lines": ["a worker's own line"], "pid": 123, "is_err": False},
                                      ignore_prefix=True)  # fmt: skip
        for handler in logging.getLogger("ray").handlers:
            handler.flush()
    out = capsys.readouterr().out
    assert message not in out and "a worker's own line" in out
    assert message in (tmp_path / "logs" / DRIVER_LOG).read_text()
    assert ray_worker.print_to_stdstream is original


def test_a_job_whose_ray_does_not_start_leaves_no_output_folder(tmp_path):
    from interrvos import run_logs

    out = tmp_path / "synth"
    with run_logs.job_logs(out) as logs:
        run_logs.before_ray()
        assert (out / "logs" / run_logs.NATIVE_LOG).exists()
        run_logs.ray_failed()  # what ensure_ray does when ray.init raises (a connection error)
        assert logs.folder is None
    assert not out.exists()
