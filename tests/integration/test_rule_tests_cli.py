# `tidegate test` (SPEC §10) from outside: the real binary on real files —
# ok/FAIL lines with a diff, the summary, exit codes, the JUnit XML a CI
# system reads, invalid files as FILE:LINE:COL errors, `check` on test files,
# and hostile paths.
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tidegate_testkit import run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "rules" / "examples"
DIAG_RE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.+)$")

RULES = """\
rules:
  - name: hot
    when: t > 30
    for: 1m
    actions:
      - output: { name: fan, value: on, for: 30s }
      - publish: { topic: "alerts/{{gateway}}", payload: '{"t": {{t}}}' }
"""

PASSING = """\
rules: [rules.yaml]
tests:
  - name: fires after a minute
    given:
      - { at: 0s, t: 31 }
    expect:
      - { at: 1m, rule: hot, transition: fired }
      - { at: 1m, output: fan, value: on }
      - { at: 1m30s, output: fan, value: off }
      - { at: 1m, publish: alerts/test, payload: '{"t": 31}' }
"""

FAILING = """\
rules: [rules.yaml]
tests:
  - name: passes
    given: [{ at: 0s, t: 20 }]
  - name: expects too early
    given: [{ at: 0s, t: 31 }, { at: 1m, t: 32 }]
    expect:
      - { at: 30s, rule: hot, transition: fired }
"""


def write_files(tmp_path: Path, **files: str) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    for name, text in files.items():
        (tmp_path / name).write_text(text)


def test_passing_file(tidegate_bin, tmp_path):
    write_files(tmp_path, **{"a.test.yaml": PASSING})
    r = run_cli(tidegate_bin, "test", str(tmp_path / "a.test.yaml"))
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["ok fires after a minute", "1 passed, 0 failed"]


def test_failure_has_a_diff_and_exit_1(tidegate_bin, tmp_path):
    write_files(tmp_path, **{"b.test.yaml": FAILING})
    r = run_cli(tidegate_bin, "test", str(tmp_path / "b.test.yaml"))
    assert r.returncode == 1, r
    lines = r.stdout.splitlines()
    assert lines[0] == "ok passes"
    assert lines[1] == "FAIL expects too early"
    assert "      - 30s rule hot fired" in lines
    assert "      + 1m rule hot fired" in lines
    assert lines[-1] == "1 passed, 1 failed"


def test_junit_xml_structure(tidegate_bin, tmp_path):
    write_files(tmp_path, **{"a.test.yaml": PASSING, "b.test.yaml": FAILING,
                       "c.test.yaml": "tests: []\n"})
    report = tmp_path / "report.xml"
    r = run_cli(tidegate_bin, "test", "--junit", str(report),
                *(str(tmp_path / f) for f in ("a.test.yaml", "b.test.yaml", "c.test.yaml")))
    assert r.returncode == 1, r
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert root.attrib["tests"] == "4" and root.attrib["failures"] == "1"
    assert root.attrib["errors"] == "1"
    suites = root.findall("testsuite")
    assert [Path(s.attrib["name"]).name for s in suites] == \
        ["a.test.yaml", "b.test.yaml", "c.test.yaml"]
    for s in suites:
        cases = s.findall("testcase")
        assert int(s.attrib["tests"]) == len(cases)
        assert int(s.attrib["failures"]) == len([c for c in cases if c.find("failure") is not None])
        assert int(s.attrib["errors"]) == len([c for c in cases if c.find("error") is not None])
        for c in cases:
            assert c.attrib["classname"] == s.attrib["name"]
            float(c.attrib["time"])
    failure = suites[1].findall("testcase")[1].find("failure")
    assert "- 30s rule hot fired" in failure.text and "+ 1m rule hot fired" in failure.text
    error = suites[2].find("testcase").find("error")
    assert "tests: the list is empty" in error.text


def test_invalid_file_is_file_line_col(tidegate_bin, tmp_path):
    bad = """\
rules: [rules.yaml]
tests:
  - name: typos
    given:
      - { at: 0s, t: 31 }
      - { at: 10z, tt: 1 }
    expect:
      - { at: 1m, rule: hto, transition: fired }
      - { at: 1m, output: fna, value: on }
"""
    write_files(tmp_path, **{"bad.test.yaml": bad})
    path = str(tmp_path / "bad.test.yaml")
    for cmd in (["test", path], ["check", path]):
        r = run_cli(tidegate_bin, *cmd)
        assert r.returncode == 1, r
        diags = [DIAG_RE.match(line) for line in r.stdout.splitlines() if ": error: " in line]
        assert all(diags), r.stdout
        found = {(d["line"], d["col"]): d["msg"] for d in diags}
        assert found[("6", "15")].startswith("test 'typos': at: invalid duration '10z'")
        assert found[("6", "20")] == "unknown sensor 'tt' in given (did you mean 't'?)"
        assert found[("8", "25")] == "unknown rule 'hto' (did you mean 'hot'?)"
        assert found[("9", "27")] == "unknown output 'fna' (did you mean 'fan'?)"


def test_check_accepts_valid_test_files_and_rule_files_together(tidegate_bin, tmp_path):
    write_files(tmp_path, **{"a.test.yaml": PASSING})
    r = run_cli(tidegate_bin, "check", str(tmp_path / "rules.yaml"), str(tmp_path / "a.test.yaml"))
    assert r.returncode == 0, r
    assert r.stdout == ""


def test_rules_from_the_command_line_or_config(tidegate_bin, tmp_path):
    write_files(tmp_path)
    no_rules = PASSING.replace("rules: [rules.yaml]\n", "")
    (tmp_path / "n.test.yaml").write_text(no_rules)
    r = run_cli(tidegate_bin, "test", str(tmp_path / "n.test.yaml"))
    assert r.returncode == 1, r
    assert ": error: no rules to test" in r.stdout
    r = run_cli(tidegate_bin, "test", "--rules", str(tmp_path / "rules.yaml"),
                str(tmp_path / "n.test.yaml"))
    assert r.returncode == 0, r
    # With -c: the config's rule paths, and {{gateway}} is its id.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"gateway: {{ id: gh1, data_dir: {tmp_path / 'data'} }}\n"
                   f"rules: {{ paths: [{tmp_path / 'rules.yaml'}] }}\n"
                   "sensors:\n  - { name: t, driver: simulated, type: number }\n"
                   "outputs:\n  - { name: fan, driver: file, options: { path: /tmp/x } }\n")
    r = run_cli(tidegate_bin, "test", "-c", str(cfg), str(tmp_path / "n.test.yaml"))
    assert r.returncode == 1, r
    assert "+ 1m publish alerts/gh1 '{\"t\": 31}'" in r.stdout
    ok = no_rules.replace("alerts/test", "alerts/gh1")
    (tmp_path / "ok.test.yaml").write_text(ok)
    r = run_cli(tidegate_bin, "test", "-c", str(cfg), str(tmp_path / "ok.test.yaml"))
    assert r.returncode == 0, r


def test_usage_errors(tidegate_bin, tmp_path):
    r = run_cli(tidegate_bin, "test")
    assert r.returncode == 2 and "needs one or more TESTFILEs" in r.stderr, r
    r = run_cli(tidegate_bin, "test", "--junit")
    assert r.returncode == 2, r
    r = run_cli(tidegate_bin, "test", "--bogus", "x.yaml")
    assert r.returncode == 2, r


def test_hostile_paths_never_hang(tidegate_bin, tmp_path):
    fifo = tmp_path / "fifo.test.yaml"
    os.mkfifo(fifo)
    r = run_cli(tidegate_bin, "test", str(fifo), timeout=10)
    assert r.returncode == 1 and "not a regular file" in r.stdout, r
    r = run_cli(tidegate_bin, "check", str(fifo), timeout=10)
    assert r.returncode == 1, r
    r = run_cli(tidegate_bin, "test", "/dev/zero", timeout=10)
    assert r.returncode == 1, r
    # The rules a test file names may be hostile too.
    (tmp_path / "h.test.yaml").write_text("rules: [/dev/zero]\ntests:\n  - name: x\n")
    r = run_cli(tidegate_bin, "test", str(tmp_path / "h.test.yaml"), timeout=10)
    assert r.returncode == 1 and "/dev/zero" in r.stdout, r
    # A report that cannot be written is an error, not a silent pass.
    write_files(tmp_path, **{"a.test.yaml": PASSING})
    r = run_cli(tidegate_bin, "test", "--junit", str(tmp_path / "no" / "such" / "r.xml"),
                str(tmp_path / "a.test.yaml"))
    assert r.returncode == 1 and "cannot write the JUnit report" in r.stderr, r


def test_shipped_example_tests_pass(tidegate_bin):
    files = sorted(str(p) for p in (EXAMPLES / "tests").glob("*.yaml"))
    assert len(files) == len(list(EXAMPLES.glob("*.yaml"))), "every example has tests"
    r = run_cli(tidegate_bin, "test", *files)
    assert r.returncode == 0, r.stdout
    assert re.search(r"^\d+ passed, 0 failed$", r.stdout, re.M), r.stdout


def test_replay_explain(tidegate_bin, tmp_path):
    write_files(tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"type":"reading","source":"t","ts":"2026-01-01T00:00:00Z","value":31}\n'
        '{"type":"reading","source":"t","ts":"2026-01-01T00:00:50Z","value":32}\n'
        '{"type":"reading","source":"t","ts":"2026-01-01T00:01:30Z","value":20}\n')
    r = run_cli(tidegate_bin, "replay", "--rules", str(tmp_path / "rules.yaml"),
                "--explain", "hot", str(events))
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == [
        "2026-01-01T00:00:00.000Z hot idle -> pending (reading): when t > 30: 31 > 30 = true;"
        " for 1m: 0s elapsed",
        "2026-01-01T00:00:50.000Z hot pending (reading): when t > 30: 32 > 30 = true;"
        " for 1m: 50s elapsed",
        "2026-01-01T00:01:00.000Z hot pending -> firing (tick): when t > 30: 32 > 30 = true;"
        " for 1m: 1m elapsed",
        '{"ts":"2026-01-01T00:01:00.000Z","rule":"hot","transition":"fired","values":{"t":32}}',
        "2026-01-01T00:01:30.000Z hot firing -> idle (reading): when t > 30: 20 > 30 = false",
        '{"ts":"2026-01-01T00:01:30.000Z","rule":"hot","transition":"cleared","values":{"t":20}}',
    ]
    r = run_cli(tidegate_bin, "replay", "--rules", str(tmp_path / "rules.yaml"),
                "--explain", "hto", str(events))
    assert r.returncode == 2 and "no rule named 'hto' (did you mean 'hot'?)" in r.stderr, r
    r = run_cli(tidegate_bin, "replay", "--rules", str(tmp_path / "rules.yaml"), "--explain")
    assert r.returncode == 2, r
