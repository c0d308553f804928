"""The package layout, the CLI and typed configs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interrvos.config import ExtractConfig, SynthConfig, load_config
from interrvos.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_stdlib_platform_is_not_shadowed_from_the_repo_root():
    out = subprocess.run([sys.executable, "-c", "import platform; print(platform.system(), platform.__file__)"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    system, where = out.split()
    assert system in ("Linux", "Darwin", "Windows")
    assert not where.startswith(str(REPO / "platform"))
    assert not (REPO / "platform" / "__init__.py").exists()


@pytest.mark.parametrize("command", ["synth", "extract", "validate", "demo"])
def test_every_subcommand_has_help(command):
    out = subprocess.run([sys.executable, "-m", "interrvos.cli", command, "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "Usage" in out and command in out


def test_yaml_and_dotted_overrides(tmp_path):
    cfg_file = tmp_path / "x.yaml"
    cfg_file.write_text("out: /data/ds\nclip:\n  clip_frames: 300\n")
    cfg = load_config(ExtractConfig, cfg_file, ["clip.bin_frames=800", "writers.max_size=4", "videos=[a, b]"])
    assert cfg.out == "/data/ds" and cfg.clip.clip_frames == 300 and cfg.clip.bin_frames == 800
    assert cfg.writers.max_size == 4 and cfg.videos == ["a", "b"]
    assert cfg.clip.min_bin_frames == 200  # untouched defaults are the paper's


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["clip.clip_frames=-3"], "clip.clip_frames"),
        (["clip.keep_bins=middle"], "clip.keep_bins"),
        (["writers.min_size=3", "writers.max_size=2"], "writers"),
        (["clip.no_such_field=1"], "clip.no_such_field"),
        (["jpeg_quality=high"], "jpeg_quality"),
    ],
)
def test_validation_errors_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as info:
        load_config(ExtractConfig, None, overrides)
    assert f"  {field}:" in str(info.value)


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(SynthConfig, None, ["num_videos"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(SynthConfig, tmp_path / "missing.yaml")


def test_cli_reports_config_errors_with_exit_code_2():
    proc = subprocess.run([sys.executable, "-m", "interrvos.cli", "extract", "--set", "clip.clip_frames=0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "clip.clip_frames" in proc.stderr


@pytest.mark.parametrize("name", ["synth", "extract", "demo"])
def test_job_configs_validate(name):
    from interrvos.config import DemoConfig

    model = {"synth": SynthConfig, "extract": ExtractConfig, "demo": DemoConfig}[name]
    load_config(model, REPO / "jobs" / "configs" / f"{name}.yaml")


def test_a_partly_given_section_keeps_the_rest_of_its_default_not_the_section_class_defaults(tmp_path):
    from interrvos.annotate.config import AnnotateConfig
    from interrvos.config import load_config

    default = AnnotateConfig().pools.prepare
    assert default.num_cpus != type(default)().num_cpus  # the factory's own values are what must survive
    by_set = load_config(AnnotateConfig, None, ["pools.prepare.memory_mb=512"]).pools.prepare
    cfg_file = tmp_path / "annotate.yaml"
    cfg_file.write_text("pools:\n  prepare:\n    max_size: 3\n")
    by_file = load_config(AnnotateConfig, cfg_file).pools.prepare
    assert (by_set.num_cpus, by_set.max_size, by_set.memory_mb) == (default.num_cpus, default.max_size, 512)
    assert (by_file.num_cpus, by_file.min_size, by_file.max_size) == (default.num_cpus, default.min_size, 3)
