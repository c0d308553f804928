"""Console output is for people: Ray's own log lines go to files under the run folder, the console keeps
the job's own lines and progress bars, and ends with one line saying where the logs are.

Every `interrvos` command runs inside `job_logs()` (the CLI runner, cli._run). The first job config it
loads (config.load_config calls `note_config`) names the run folder (`run_folder(cfg)`: the config's `out`,
the folder of an `out` file, or `<storage>/<name>`). When the command then starts or joins Ray
(runtime.ensure_ray calls `before_ray` and `after_ray`), `<run folder>/logs/` receives:

    driver.log   Ray's and the libraries' Python log lines and warnings of this process (NOISY_LOGGERS)
    native.log   what Ray's C++ core writes on this process's stderr (the `core_worker.cc` lines)
    ray          a link to the Ray session's log folder: the workers' stdout and stderr (RayConfig.log_to_driver
                 is False by default, so they are not copied to the console)

A command that starts no Ray (`--show-plan`, a config error) writes and prints nothing of this. Library
callers can open the same thing themselves: `with job_logs("runs/x") as logs: ...` (interrvos.demo does).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Loggers that print per-step internals of Ray and the libraries the workers load.
NOISY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.serve", "ray.tune", "ray.util", "deepspeed", "DeepSpeed",
                 "py.warnings", "torch.distributed", "transformers", "peft", "filelock", "urllib3")  # fmt: skip
DRIVER_LOG = "driver.log"
NATIVE_LOG = "native.log"
WORKER_LOGS = "ray"

_handlers: dict[Path, logging.Handler] = {}


def run_folder(cfg: Any) -> Path | None:
    """The local run folder of a job config: `<storage>/<name>` (train, pretrain), the folder `out` names,
    or the folder holding an `out` file (predict's .jsonl). A remote URI: `runs/<its last name>` here
    (log files are local). None: a config without an output (e.g. a bare RayConfig)."""
    storage, name, out = (getattr(cfg, key, None) for key in ("storage", "name", "out"))
    if isinstance(storage, str) and isinstance(name, str):
        where = f"{storage.rstrip('/')}/{name}"
    elif isinstance(out, str) and out:
        where = out.rstrip("/")
        if Path(where).suffix in (".jsonl", ".json", ".parquet", ".csv"):
            where = where.rsplit("/", 1)[0] if "/" in where else "."
    else:
        return None
    if "://" in where and not where.startswith("file://"):
        return Path("runs") / (where.rsplit("/", 1)[-1] or "remote")
    return Path(where.removeprefix("file://"))


class JobLogs:
    """One command's log routing (see the module doc); `folder` is `<run folder>/logs` once Ray started."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.folder: Path | None = None  # set when the logs were routed (Ray started or joined)
        self.worker_logs: Path | None = None
        self._loggers: dict[str, tuple[list[logging.Handler], bool]] | None = None
        self._captured_warnings = False
        self._saved_fd2: int | None = None
        self._old_stderr: Any = None
        self._console_stderr: Any = None
        self._restore_print: tuple[Any, Any] | None = None
        self._created: Path | None = None

    def use(self, run_dir: str | os.PathLike | None) -> None:
        """Name the run folder (the first one named wins: the command's own config comes first)."""
        if self.run_dir is None and run_dir is not None:
            self.run_dir = Path(run_dir)

    def describe(self) -> str:
        """The console's last line: where the logs are."""
        parts = [f"{DRIVER_LOG} (Ray's log lines)", f"{NATIVE_LOG} (Ray's core)"]
        if self.worker_logs is not None:
            parts.append(f"{WORKER_LOGS}/ (the workers' output)")
        return f"logs: {self.folder}/ - " + ", ".join(parts)

    # Called by runtime.ensure_ray around ray.init.
    def before_ray(self) -> None:
        if self.run_dir is None:
            return
        # The first of the run folder and its logs/ that this creates: removed again if Ray does not start, so
        # a job that could not connect leaves no output folder behind.
        self._created = next((p for p in (self.run_dir, self.run_dir / "logs") if not p.exists()), None)
        self.folder = self._route()
        self._redirect_native_stderr(self.folder / NATIVE_LOG)

    def ray_failed(self) -> None:
        """ray.init raised (a connection error, said in one line by the caller): undo the routing, and remove
        what before_ray created."""
        if self.folder is None:
            return
        self.close()
        for path in [p for p in _handlers if self.folder.resolve() in p.parents]:
            _handlers.pop(path).close()
        if self._created is not None:
            shutil.rmtree(self._created, ignore_errors=True)
        self.folder = self._created = None

    def after_ray(self) -> None:
        if self.folder is None:
            return
        self._route()  # ray.init (and ray.data's import) set their loggers up anew
        self.worker_logs = link_worker_logs(self.folder)
        self._raylet_messages_to_the_log()

    def _raylet_messages_to_the_log(self) -> None:
        """The raylet's messages to the driver ("(raylet) WARNING: 8 PYTHON worker processes have been
        started ...", repeated as the pools grow) are printed by Ray's error-listener thread whatever
        log_to_driver says; they go to driver.log instead (a failure they explain still ends the job with its
        own error line)."""
        import ray._private.worker as ray_worker

        original = ray_worker.print_to_stdstream
        if getattr(original, "_interrvos_raylet_to_log", False):
            return
        raylet_log = logging.getLogger("ray")

        def print_to_stdstream(data, ignore_prefix: bool):
            if data.get("pid") == "raylet":
                for line in data.get("lines", []):
                    raylet_log.warning("(raylet) %s", line)
                return
            original(data, ignore_prefix)

        print_to_stdstream._interrvos_raylet_to_log = True  # type: ignore[attr-defined]
        ray_worker.print_to_stdstream = print_to_stdstream
        self._restore_print = (ray_worker, original)

    def _route(self) -> Path:
        if self._loggers is None:  # what to restore when the command ends
            self._loggers = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
                             for n in NOISY_LOGGERS}  # fmt: skip
            self._captured_warnings = True
            _quiet_model_loading()
        return route_ray_logs(self.run_dir)

    def _keep_python_stderr_on_the_console(self) -> None:
        """At the command's start (before any progress display wraps sys.stderr): Python's sys.stderr (our
        console lines, progress bars, tracebacks) moves to a copy of the console's descriptor, so that
        descriptor 2 can later be pointed at a file for Ray's C++ core alone."""
        try:
            sys.stderr.flush()
            python_fd = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
            return  # a captured stream (tests): Python's writes do not reach descriptor 2 anyway
        if python_fd != 2:
            return
        old = sys.stderr
        console = os.fdopen(os.dup(2), "w", buffering=1, encoding=getattr(old, "encoding", None) or "utf-8",
                            errors="backslashreplace")  # fmt: skip
        _retarget_stream_handlers(old, console)  # logging.basicConfig's handler keeps writing to the console
        self._old_stderr, self._console_stderr, sys.stderr = old, console, console

    def _redirect_native_stderr(self, path: Path) -> None:
        """Point file descriptor 2, where Ray's C++ core logs (core_worker.cc lines), at `path`."""
        if self._saved_fd2 is not None:
            return
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._saved_fd2 = os.dup(2)
        os.dup2(target, 2)
        os.close(target)

    def close(self) -> None:
        if self._restore_print is not None:
            module, original = self._restore_print
            module.print_to_stdstream, self._restore_print = original, None
        if self._saved_fd2 is not None:
            os.dup2(self._saved_fd2, 2)
            os.close(self._saved_fd2)
            self._saved_fd2 = None
        if self._loggers is not None:
            for name, (handlers, propagate) in self._loggers.items():
                logger = logging.getLogger(name)
                logger.handlers, logger.propagate = handlers, propagate
            self._loggers = None
        if self._captured_warnings:
            logging.captureWarnings(False)
            self._captured_warnings = False
        if self._console_stderr is not None:
            console, self._console_stderr = self._console_stderr, None
            try:
                console.flush()
            except (ValueError, OSError):
                pass
            if sys.stderr is console:
                sys.stderr = self._old_stderr
            _retarget_stream_handlers(console, self._old_stderr)  # left open: streams made meanwhile may hold it
            self._old_stderr = None


def _quiet_model_loading() -> None:
    """No "Loading weights" progress bar per model built on the driver (transformers reads the variable at
    import; an imported one is told directly)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


_session: JobLogs | None = None


@contextmanager
def job_logs(run_dir: str | os.PathLike | None = None) -> Iterator[JobLogs]:
    """Route Ray's logs of what runs inside to `<run folder>/logs/` (module doc); restored on exit. Nested
    (interrvos demo inside the CLI runner), the outer one owns the routing and this only names the folder."""
    global _session
    if _session is not None:
        _session.use(run_dir)
        yield _session
        return
    session = _session = JobLogs()
    session.use(run_dir)
    session._keep_python_stderr_on_the_console()
    try:
        yield session
    finally:
        _session = None
        session.close()


def current() -> JobLogs | None:
    return _session


def note_config(cfg: Any) -> None:
    """config.load_config: the first job config loaded by a command names its run folder."""
    if _session is not None and _session.run_dir is None:
        _session.use(run_folder(cfg))


def before_ray() -> None:
    if _session is not None:
        _session.before_ray()


def after_ray() -> None:
    if _session is not None:
        _session.after_ray()


def ray_failed() -> None:
    if _session is not None:
        _session.ray_failed()


def route_ray_logs(run_dir: str | os.PathLike, name: str = DRIVER_LOG) -> Path:
    """Send the noisy loggers and Python warnings of this process to `<run_dir>/logs/<name>`. Call it
    again after `ray.init` (which sets up Ray's loggers anew); the same file handler is reused."""
    folder = Path(run_dir) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / name).resolve()
    handler = _handlers.get(path)
    if handler is None:
        handler = _handlers[path] = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for logger_name in NOISY_LOGGERS:
        logger = logging.getLogger(logger_name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.captureWarnings(True)
    return folder


def link_worker_logs(folder: Path) -> Path | None:
    """`<folder>/ray`: a link to the running Ray session's log folder (the workers' stdout and stderr)."""
    import ray

    if not ray.is_initialized():
        return None
    try:
        session = Path(ray._private.worker._global_node.get_session_dir_path())  # noqa: SLF001 - no public API
    except AttributeError:
        return None
    link = folder / WORKER_LOGS
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(session / "logs", target_is_directory=True)
    return link


def _retarget_stream_handlers(old: Any, new: Any) -> None:
    """Logging handlers made before the switch (logging.basicConfig's) keep writing where sys.stderr does."""
    loggers = [logging.getLogger()] + [x for x in list(logging.Logger.manager.loggerDict.values())
                                       if isinstance(x, logging.Logger)]  # fmt: skip
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                    and handler.stream is old:
                handler.setStream(new)
