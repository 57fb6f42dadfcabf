"""template.yaml and the code agree (DESIGN "Testing": contract)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from emulator.template import ROOT, Template
from tests.support.lambdas import handler_module

TEMPLATE = Template.load()
FUNCTIONS = TEMPLATE.functions()


def test_every_template_function_has_its_handler_file():
    for spec in FUNCTIONS.values():
        assert spec.module_file.is_file(), f"{spec.logical_id}: {spec.module_file} is missing"
        tree = ast.parse(spec.module_file.read_text())
        names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if hasattr(t, "id")}
        names |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert spec.handler.rsplit(".", 1)[1] in names, f"{spec.logical_id}: no {spec.handler}"


def test_every_handler_file_is_in_the_template():
    declared = {spec.module_file for spec in FUNCTIONS.values()}
    on_disk = {p.resolve() for p in (ROOT / "functions").rglob("*.py") if p.name != "__init__.py"}

    assert on_disk - declared == set(), "handler files that no template function uses"


@pytest.mark.parametrize(("method", "path", "logical_id", "needs_auth"), TEMPLATE.api_routes())
def test_each_api_function_routes_exactly_its_template_path(method, path, logical_id, needs_auth):
    """API Gateway routes by the template path; the handler's router must answer that same path."""
    app = handler_module(logical_id).app
    handler_paths = {
        (route.method.upper() if isinstance(route.method, str) else m.upper(), route.openapi_path)
        for route in app._static_routes + app._dynamic_routes
        for m in ([route.method] if isinstance(route.method, str) else route.method)
    }
    assert (method, path) in handler_paths


def test_every_state_machine_substitution_is_defined():
    for template in (TEMPLATE, *(Template.load(p) for p in (ROOT / "tests").rglob("fixtures/template.yaml"))):
        for logical_id, resource in template.of_type("AWS::Serverless::StateMachine").items():
            props = resource["Properties"]
            text = (template.root / props["DefinitionUri"]).read_text()
            used = set(re.findall(r"\$\{([^}]+)\}", text))
            defined = set(props.get("DefinitionSubstitutions", {}))
            assert used <= defined, f"{logical_id}: {sorted(used - defined)} not substituted"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_boto3_appears_only_in_adapters():
    code = list((ROOT / "functions").rglob("*.py")) + list((ROOT / "layers/shared/patungan").rglob("*.py"))
    offenders = [
        str(p.relative_to(ROOT))
        for p in code
        if {"boto3", "botocore"} & _imports(p) and "adapters" not in p.relative_to(ROOT).parts
    ]
    assert offenders == []


def _api_md_routes() -> set[tuple[str, str]]:
    text = (ROOT.parent / "shared" / "API.md").read_text()
    routes = set()
    for line in text.splitlines():
        for part in line.split("|")[1:2]:
            for entry in part.split(", "):
                match = re.match(r"\s*(GET|POST|PATCH|PUT|DELETE) (/v1/\S+)", entry)
                if match:
                    routes.add((match.group(1), match.group(2).strip()))
    return routes


@pytest.mark.skipif(not (ROOT.parent / "shared" / "API.md").is_file(), reason="API.md lives beside the repo")
def test_routes_named_in_api_md_keep_their_exact_method_and_path():
    """Where we implement a route API.md names, the template uses the same method and path."""
    api_md = _api_md_routes()
    implemented = {(m, p) for m, p, _, _ in TEMPLATE.api_routes()}
    shape = lambda path: re.sub(r"\{[^}]+\}", "{}", path)  # noqa: E731
    same_path_other_spelling = {
        (m, p)
        for m, p in implemented
        if (m, p) not in api_md and any(m == n and shape(p) == shape(q) for n, q in api_md)
    }
    assert same_path_other_spelling == set()
    assert ("POST", "/v1/products") in api_md
