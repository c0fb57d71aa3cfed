# The command line (SPEC §1): exit codes 0 ok / 1 invalid input or runtime
# failure / 2 usage, and `check` diagnostics as FILE:LINE:COL: error: MESSAGE.
import re
from pathlib import Path

import pytest

from tidegate_testkit import project_version, run_cli

DIAG_RE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<msg>.+)$")

VALID = """\
gateway:
  id: cli-test
  data_dir: {data}
mqtt:
  uri: tcp://127.0.0.1:1883
rules:
  paths: [{rules}]
sensors:
  - name: greenhouse.temp
    driver: simulated
    interval: 5s
    unit: "°C"
    options: {{ profile: sine, min: 10, max: 30, period: 60s }}
"""


@pytest.fixture
def valid_text(tmp_path) -> str:
    (tmp_path / "rules.d").mkdir()
    return VALID.format(data=tmp_path / "data", rules=tmp_path / "rules.d")


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def diagnostics(stdout: str) -> list[re.Match]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    matches = [DIAG_RE.match(line) for line in lines]
    assert all(matches), f"not FILE:LINE:COL: error: MESSAGE lines:\n{stdout}"
    return matches


def position_of(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first `needle` in text."""
    for number, line in enumerate(text.splitlines(), start=1):
        col = line.find(needle)
        if col >= 0:
            return number, col + 1
    raise AssertionError(f"{needle!r} not in the text")


def test_version(tidegate_bin):
    r = run_cli(tidegate_bin, "version")
    assert r.returncode == 0, r
    assert project_version() in r.stdout, r.stdout


def test_help(tidegate_bin):
    r = run_cli(tidegate_bin, "--help")
    assert r.returncode == 0, r
    text = r.stdout + r.stderr
    for word in ("run", "check", "version", "-c"):
        assert word in text, f"--help does not mention {word!r}:\n{text}"


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["run", "--frobnicate"],
    ["check", "--frobnicate"],
    ["--frobnicate"],
    ["run", "-c"],
], ids=["unknown-command", "run-unknown-flag", "check-unknown-flag", "unknown-flag",
        "missing-argument"])
def test_usage_errors_exit_2(tidegate_bin, args):
    r = run_cli(tidegate_bin, *args)
    assert r.returncode == 2, f"{args}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert r.stderr.strip(), "a usage error says what is wrong on stderr"


def test_bad_log_level_is_a_usage_error(tidegate_bin, tmp_path, valid_text):
    cfg = write(tmp_path, valid_text)
    r = run_cli(tidegate_bin, "run", "-c", str(cfg), "--log-level", "loud")
    assert r.returncode == 2, r


def test_run_with_a_missing_config_exits_1_naming_the_file(tidegate_bin):
    r = run_cli(tidegate_bin, "run", "-c", "/nonexistent.yaml")
    assert r.returncode == 1, r
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got:\n{r.stderr}"
    assert "/nonexistent.yaml" in lines[0], lines[0]


def test_check_valid_config_is_silent(tidegate_bin, tmp_path, valid_text):
    cfg = write(tmp_path, valid_text)
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 0, f"{r.stdout}{r.stderr}"
    assert r.stdout == "", r.stdout


def test_check_unknown_key_points_at_it_with_a_hint(tidegate_bin, tmp_path, valid_text):
    text = valid_text.replace("    interval: 5s", "    intervall: 5s")
    cfg = write(tmp_path, text)
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    assert re.search(r"(?m)^.*cfg\.yaml:\d+:\d+: error: .*did you mean", r.stdout), r.stdout
    (m,) = diagnostics(r.stdout)
    assert m["file"].endswith("cfg.yaml")
    assert "intervall" in m["msg"] and "interval" in m["msg"].split("did you mean", 1)[1], m[0]
    assert (int(m["line"]), int(m["col"])) == position_of(text, "intervall"), m[0]


def test_check_reports_every_problem_in_one_run(tidegate_bin, tmp_path, valid_text):
    text = (valid_text.replace("  data_dir:", "  data_dri:")
                      .replace("    unit:", "    unti:"))
    cfg = write(tmp_path, text)
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    found = [(int(m["line"]), int(m["col"])) for m in diagnostics(r.stdout)]
    assert position_of(text, "data_dri") in found, r.stdout
    assert position_of(text, "unti") in found, r.stdout
    assert len(found) == 2, r.stdout


def test_check_duplicate_key_is_an_error_at_the_second(tidegate_bin, tmp_path, valid_text):
    text = valid_text.replace("  id: cli-test\n", "  id: cli-test\n  id: again\n")
    cfg = write(tmp_path, text)
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    (m,) = diagnostics(r.stdout)
    assert int(m["line"]) == position_of(text, "id: again")[0], r.stdout


def test_check_invalid_yaml_gives_a_position(tidegate_bin, tmp_path, valid_text):
    text = valid_text.replace("  paths: [", "  paths: [[")
    cfg = write(tmp_path, text)
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    ms = diagnostics(r.stdout)
    assert ms and all(m["file"].endswith("cfg.yaml") for m in ms), r.stdout
    assert ms[0]["sev"] == "error"
    assert 1 <= int(ms[0]["line"]) <= len(text.splitlines()) + 1, r.stdout


def test_check_bad_duration_is_an_error(tidegate_bin, tmp_path, valid_text):
    text = valid_text.replace("interval: 5s", "interval: 5 parsecs")
    cfg = write(tmp_path, text)
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    (m,) = diagnostics(r.stdout)
    assert int(m["line"]) == position_of(text, "5 parsecs")[0], r.stdout


def test_check_missing_file_exits_1(tidegate_bin):
    r = run_cli(tidegate_bin, "check", "-c", "/nonexistent.yaml")
    assert r.returncode == 1, r
    assert "/nonexistent.yaml" in r.stdout + r.stderr
