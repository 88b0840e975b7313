"""SARIF 2.1.0 output validated with jsonschema against the structure the SARIF 2.1.0 standard
requires (sarifLog, run, tool/toolComponent, reportingDescriptor, result, location,
physicalLocation, artifactLocation, region, message) plus GitHub code scanning's upload rules.
The official schema file is not downloadable here and no PyPI package ships it, so the
constraints used are written out below from the spec's required properties and enums."""

import json
import subprocess

import jsonschema

MESSAGE = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}, "id": {"type": "string"}},
}
MULTIFORMAT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}}}
REGION = {
    "type": "object",
    "properties": {
        "startLine": {"type": "integer", "minimum": 1},
        "startColumn": {"type": "integer", "minimum": 1},
        "endLine": {"type": "integer", "minimum": 1},
        "endColumn": {"type": "integer", "minimum": 1},
    },
    "required": ["startLine"],  # GitHub requires a line for every result location
}
ARTIFACT_LOCATION = {
    "type": "object",
    "required": ["uri"],
    "properties": {"uri": {"type": "string", "format": "uri-reference", "minLength": 1}, "uriBaseId": {"type": "string"}},
}
LOCATION = {
    "type": "object",
    "required": ["physicalLocation"],
    "properties": {
        "physicalLocation": {
            "type": "object",
            "required": ["artifactLocation", "region"],
            "properties": {"artifactLocation": ARTIFACT_LOCATION, "region": REGION},
        }
    },
}
RULE = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "shortDescription": MULTIFORMAT,
        "fullDescription": MULTIFORMAT,
        "help": MULTIFORMAT,
        "defaultConfiguration": {"type": "object", "properties": {"level": {"enum": ["none", "note", "warning", "error"]}}},
        "properties": {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                # GitHub: a string holding a number from 0.0 to 10.0
                "security-severity": {"type": "string", "pattern": r"^(10(\.0+)?|[0-9](\.[0-9]+)?)$"},
            },
        },
    },
}
RESULT = {
    "type": "object",
    "required": ["message", "ruleId", "locations"],
    "properties": {
        "ruleId": {"type": "string", "minLength": 1},
        "ruleIndex": {"type": "integer", "minimum": 0},
        "level": {"enum": ["none", "note", "warning", "error"]},
        "kind": {"enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]},
        "message": MESSAGE,
        "locations": {"type": "array", "minItems": 1, "items": LOCATION},
        "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
        "properties": {"type": "object"},
    },
}
SARIF = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,  # GitHub upload limit
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "minLength": 1},
                                    "semanticVersion": {"type": "string"},
                                    "informationUri": {"type": "string", "format": "uri"},
                                    "rules": {"type": "array", "items": RULE, "maxItems": 25000},
                                },
                            }
                        },
                    },
                    "automationDetails": {"type": "object", "properties": {"id": {"type": "string"}}},
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "results": {"type": "array", "items": RESULT, "maxItems": 25000},
                },
            },
        },
    },
}


def _check(doc):
    jsonschema.Draft202012Validator.check_schema(SARIF)
    jsonschema.validate(doc, SARIF, format_checker=jsonschema.FormatChecker())
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), "rule ids are unique"
    for r in run["results"]:
        # ruleIndex must point at the rule with the same id (SARIF 3.27.7).
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert not r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("/")


def test_scan_sarif_validates(keyless_bin, corpus):
    p = subprocess.run([str(keyless_bin), "scan", "--git", "--format", "sarif", "."], cwd=corpus.repo, capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    _check(doc)
    assert len(doc["runs"][0]["results"]) >= len(corpus.planted)
    for x in corpus.planted:
        assert x.secret not in p.stdout


def test_lint_sarif_validates(keyless_bin, corpus):
    p = subprocess.run([str(keyless_bin), "lint", "--format", "sarif", "."], cwd=corpus.repo, capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    _check(doc)
    assert any(r["ruleId"] == "gha-static-aws-keys" for r in doc["runs"][0]["results"])


def test_schema_rejects_broken_sarif():
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"ruleId": "r", "message": {}, "locations": []}]}]}
    try:
        jsonschema.validate(bad, SARIF)
    except jsonschema.ValidationError:
        return
    raise AssertionError("schema accepted a result without message text and locations")


def test_sarif_uris_name_files_from_the_working_directory(keyless_bin, tmp_path):
    # GitHub resolves a relative SARIF uri from the repository root (where the job runs) and
    # makes absolute file: URIs relative to the checkout. Paths relative to the directory
    # scanned ('.env' for infra/.env) named files that do not exist, or the wrong ones.
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / ".env").write_text("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7B\n")
    wf = tmp_path / "ci" / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "d.yml").write_text("on: push\njobs:\n  d:\n    runs-on: x\n    env:\n      AWS_ACCESS_KEY_ID: ${{ secrets.A }}\n    steps:\n      - run: x\n")

    def locations(args):
        p = subprocess.run([str(keyless_bin), *args, "--format", "sarif"], cwd=tmp_path, capture_output=True, text=True)
        assert p.returncode == 1, p.stderr
        doc = json.loads(p.stdout)
        _check(doc)
        return [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]]

    assert locations(["scan", "infra"]) == [{"uri": "infra/.env", "uriBaseId": "%SRCROOT%"}]
    assert locations(["scan", "./infra/"]) == [{"uri": "infra/.env", "uriBaseId": "%SRCROOT%"}]
    assert locations(["lint", "ci"]) == [{"uri": "ci/.github/workflows/d.yml", "uriBaseId": "%SRCROOT%"}]
    absolute = locations(["scan", str(tmp_path / "infra")])
    assert absolute == [{"uri": (tmp_path / "infra" / ".env").as_uri()}]
    # Text and JSON keep paths relative to the directory given (baselines depend on them).
    p = subprocess.run([str(keyless_bin), "scan", "infra", "--format", "json"], cwd=tmp_path, capture_output=True, text=True)
    assert [f["path"] for f in json.loads(p.stdout)["findings"]] == [".env"]


def test_sarif_with_a_baseline_of_the_same_scan(keyless_bin, tmp_path):
    # The baseline holds JSON paths (relative to the directory given); it must suppress the
    # same findings when the report is SARIF, whose paths start at the working directory.
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / ".env").write_text("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7B\n")
    base = subprocess.run([str(keyless_bin), "scan", "infra", "--format", "json"], cwd=tmp_path, capture_output=True, text=True)
    assert base.returncode == 1
    (tmp_path / "baseline.json").write_text(base.stdout)
    p = subprocess.run([str(keyless_bin), "scan", "infra", "--format", "sarif", "--baseline", "baseline.json"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
    assert json.loads(p.stdout)["runs"][0]["results"] == []
