"""No two modules of src/ispo define a public class or function of the same name (issue 17).

A name that means two things (``EvalConfig`` of ``ispo eval`` and of the demo's held-out evaluation,
``Problem`` of a benchmark and of each synthetic task) makes every import a guess and every search a
list to sort. Counted: module-level ``def`` and ``class`` statements whose name does not start with
``_``. Imports are not definitions, so a package re-exporting its modules' names (``ispo.eval``,
``ispo.answers``) and a module re-exporting a moved helper define nothing twice.

Allowed, each with its reason:

- an *interface*: modules that all provide the same names because a dispatcher looks them up by name
  (``INTERFACES``); the names may repeat only among those modules;
- ``KNOWN_EXCEPTIONS``: a name defined in exactly the listed modules, with the reason. An entry that no
  longer matches is stale and fails the test, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"

# name -> (the modules that implement the interface, why)
INTERFACES: dict[str, tuple[frozenset[str], str]] = {}


def _interface(names: tuple[str, ...], modules: frozenset[str], reason: str) -> None:
    for name in names:
        INTERFACES[name] = (modules, reason)


def _task_modules() -> frozenset[str]:
    from ispo.data.tasks import TASKS

    return frozenset(TASKS.values())


def _command_modules() -> frozenset[str]:
    from ispo.cli import COMMANDS

    return frozenset(module for module, _ in COMMANDS.values())


_interface(
    ("generate_problems", "generate_mixture", "sample_problem", "solution_text", "to_records"),
    _task_modules(),
    "a task module's functions: ispo.data.tasks.get_task(name) returns the module and callers use these names",
)
_interface(
    ("add_arguments", "run"),
    _command_modules(),
    "a command module's entry points: ispo.cli imports the chosen command's module and calls these",
)

# (name, the modules that define it) -> why it is allowed for now. Keep it short; fix rather than add.
KNOWN_EXCEPTIONS: dict[tuple[str, frozenset[str]], str] = {
    ("markdown_report", frozenset({"ispo.eval.summary", "ispo.report"})): (
        "the benchmark summary's and the run report's markdown; ispo.eval is being edited elsewhere: "
        "rename one when that work lands"
    ),
}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def public_definitions(src: Path = SRC) -> dict[str, list[str]]:
    """``{name: [module, ...]}`` for every public module-level ``def``/``class`` of the ``ispo`` package."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted((src / "ispo").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith(
                "_"
            ):
                found[node.name].append(module_name(path, src))
    return dict(found)


def collisions(definitions: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    """The names defined in more than one module, less the allowed ones."""
    result = {}
    for name, modules in definitions.items():
        where = frozenset(modules)
        if len(modules) < 2:
            continue
        if name in INTERFACES and where <= INTERFACES[name][0]:
            continue
        if (name, where) in KNOWN_EXCEPTIONS:
            continue
        result[name] = where
    return result


def test_no_public_name_is_defined_in_two_modules():
    definitions = public_definitions()
    assert len(definitions) > 100 and "ISPOConfig" in definitions, "the scan should cover the package"
    found = collisions(definitions)
    report = "\n".join(f"  {name}: {', '.join(sorted(modules))}" for name, modules in sorted(found.items()))
    assert not found, f"public names defined in more than one module of src/ispo (give each one meaning):\n{report}"


def test_known_exceptions_are_still_collisions():
    """An exception for a name that was since renamed must go too."""
    definitions = public_definitions()
    stale = [name for name, modules in KNOWN_EXCEPTIONS if frozenset(definitions.get(name, ())) != modules]
    assert not stale, f"stale entries in KNOWN_EXCEPTIONS (the name no longer collides there): {stale}"


def test_the_scan_sees_functions_and_classes_but_not_imports_or_private_names(tmp_path):
    package = tmp_path / "ispo" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "ispo" / "__init__.py").write_text("from ispo.sub.a import Thing\n")
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("class Thing:\n    def method(self): ...\n\ndef _helper(): ...\n")
    (package / "b.py").write_text("from ispo.sub.a import Thing\n\nasync def Thing(): ...\n\ndef _helper(): ...\n")
    definitions = public_definitions(tmp_path)
    assert definitions == {"Thing": ["ispo.sub.a", "ispo.sub.b"]}
    assert collisions(definitions) == {"Thing": frozenset({"ispo.sub.a", "ispo.sub.b"})}
