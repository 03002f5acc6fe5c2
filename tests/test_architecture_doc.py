"""docs/architecture.md cannot silently go stale: every path, module and function it names
exists, and every top-level module and package of syndicate/ is on the map."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.conftest import set_setting

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "syndicate"

# Inline code spans; fenced diagrams are read as plain text by the path pattern below.
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# syndicate/x.py, syndicate/sub/x.py, syndicate/sub/ (anywhere, diagrams included)
SYNDICATE_PATH = re.compile(r"\bsyndicate/(?:[a-z_]+/)*(?:[a-z_]+\.py|[a-z_]+/)")
# Short paths inside the package as the diagrams and tables write them: inbound/parse.py
SHORT_PATH = re.compile(
    r"(?<![\w/])((?:render|transports|inbound|cli|delivery|scheduling|feedwatch|audience|web|db|desk|corrections)/[a-z_]+\.py)\b"
)
# tests/test_x.py (placeholders such as tests/test_<name>.py are skipped: they hold '<')
TEST_PATH = re.compile(r"\btests/[a-z_]+\.py\b")
# `syndicate.models`, `syndicate.scheduling.daemon.Daemon`
DOTTED = re.compile(r"^syndicate(?:\.[A-Za-z_]+)+$")
# `dispatch.run_send()`, `inbound.pipeline.process()`, `render.EditionCache`, `store._migrate`
MODULE_ATTRIBUTE = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*)\.([A-Za-z_]+)(?:\(\))?$")


FILE_NAME = re.compile(r"^[a-z_./<>-]+\.(?:py|toml|csv|md|j2|css)$")


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def top_level_names() -> list[str]:
    names = []
    for entry in sorted(PACKAGE.iterdir()):
        if entry.suffix == ".py":
            names.append(f"syndicate/{entry.name}")
        elif entry.is_dir() and (entry / "__init__.py").exists():
            names.append(f"syndicate/{entry.name}/")
    return names


def named_paths(text: str) -> set[str]:
    found = set(SYNDICATE_PATH.findall(text))
    found |= {f"syndicate/{short}" for short in SHORT_PATH.findall(text)}
    return found


def resolve(dotted: str) -> object:
    """Import the longest module prefix of `dotted`, then follow attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def module_references(text: str) -> set[str]:
    """Code spans that name syndicate code: dotted paths and module.attribute(). A span whose
    first part is not a syndicate module (a file name, a setting such as `web.trusted_proxies`)
    is only checked when it names a module we have."""
    references = set()
    for span in CODE_SPAN.findall(text):
        if FILE_NAME.match(span):
            continue  # a file (`settings.toml`, `approval.py`): see bare_file_names
        if DOTTED.match(span):
            references.add(span)
            continue
        match = MODULE_ATTRIBUTE.match(span)
        if not match:
            continue
        module = match.group(1)
        if (PACKAGE / (module.replace(".", "/") + ".py")).exists() or (
            PACKAGE / module.replace(".", "/") / "__init__.py"
        ).exists():
            references.add(f"syndicate.{module}.{match.group(2)}")
    return references


def test_every_syndicate_path_the_doc_names_exists() -> None:
    paths = named_paths(doc_text())
    assert len(paths) > 50, "the map should name the modules it describes"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def bare_module_files(text: str) -> set[str]:
    """`approval.py`-style spans: a module named by its file name alone, inside syndicate/."""
    return {
        span
        for span in CODE_SPAN.findall(text)
        if re.fullmatch(r"[a-z_]+\.py", span) and not span.startswith("test_")
    }


def test_every_bare_module_file_the_doc_names_exists() -> None:
    missing = sorted(f for f in bare_module_files(doc_text()) if not list(PACKAGE.rglob(f)))
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_test_file_the_doc_names_exists() -> None:
    missing = sorted(p for p in set(TEST_PATH.findall(doc_text())) if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names test files that do not exist: {missing}"


def test_every_module_and_function_the_doc_names_exists() -> None:
    references = module_references(doc_text())
    assert len(references) > 20, "the flow should name the functions that do the work"
    missing = []
    for reference in sorted(references):
        try:
            resolve(reference)
        except (ModuleNotFoundError, AttributeError):
            missing.append(reference)
    assert not missing, f"docs/architecture.md names code that does not exist: {missing}"


def test_every_top_level_module_and_package_is_on_the_map() -> None:
    paths = named_paths(doc_text())
    absent = [name for name in top_level_names() if name not in paths]
    assert not absent, f"add a line for each to docs/architecture.md's map: {absent}"


def test_every_module_of_a_subpackage_is_on_the_map() -> None:
    paths = named_paths(doc_text())
    modules = sorted(
        str(path.relative_to(ROOT)) for path in PACKAGE.glob("*/*.py") if path.name != "__main__.py"
    )
    absent = [module for module in modules if module not in paths]
    assert not absent, f"add a line for each to docs/architecture.md's map: {absent}"


@pytest.mark.parametrize(
    ("stale", "pattern"),
    [
        ("see `syndicate/cli.py`", "path"),
        ("see `delivery.dispatch.run_everything()`", "reference"),
        ("see `syndicate.nowhere`", "reference"),
    ],
)
def test_a_stale_name_would_be_caught(stale: str, pattern: str) -> None:
    if pattern == "path":
        assert "syndicate/cli.py" in named_paths(stale)
        assert not (ROOT / "syndicate/cli.py").exists()
    else:
        (reference,) = module_references(stale)
        with pytest.raises((ModuleNotFoundError, AttributeError)):
            resolve(reference)


README_SECTION = re.compile(r"^## How a post travels\n(.*?)(?=^## )", re.S | re.M)


def test_readme_how_a_post_travels_points_to_the_map_and_names_real_modules() -> None:
    section = README_SECTION.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert section, "README lost its '## How a post travels' section"
    text = section.group(1)
    assert "docs/architecture.md" in text
    named = set(re.findall(r"\b([a-z_]+(?:/[a-z_]+)*\.py)\b", text))
    named |= {f"{d}/" for d in re.findall(r"(?<![/\w])((?:[a-z_]+/)*[a-z_]+)/(?![\w.])", text)}
    assert named, "the section should name the modules a post passes through"
    missing = sorted(
        name for name in named if not (PACKAGE / name).exists() and not (ROOT / name).exists()
    )
    assert not missing, f"README's 'How a post travels' names modules that do not exist: {missing}"


@pytest.mark.parametrize(
    ("kind", "signed"), [("outbox", True), ("smtp", True), ("sendgrid", False)]
)
def test_dkim_signs_what_outbox_and_smtp_carry_and_leaves_sendgrid_to_its_provider(
    project: Path, monkeypatch: pytest.MonkeyPatch, kind: str, signed: bool
) -> None:
    """README 'How a post travels', step 7."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from syndicate import settings
    from syndicate.delivery.transports import SigningTransport, make_transport

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (project / "dkim.pem").write_bytes(pem)
    config = project / "settings.toml"
    set_setting(config, 'selector = ""', 'selector = "s2026"')
    set_setting(config, 'domain = ""', 'domain = "notes.example.com"')
    set_setting(config, 'private_key_path = ""', 'private_key_path = "dkim.pem"')
    set_setting(config, 'kind = "outbox"', f'kind = "{kind}"')
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")
    transport = make_transport(settings.load(config))
    assert isinstance(transport, SigningTransport) is signed


def test_readme_names_the_inbound_steps_in_pipeline_order() -> None:
    from syndicate.inbound.pipeline import PIPELINE

    section = README_SECTION.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert section
    order = re.search(r"\(parse →(.*?)\)", section.group(1), re.S)
    assert order, "the diagram should list the inbound steps"
    steps = ["parse"] + [s.split()[0] for s in order.group(1).split("→") if s.strip()]
    assert tuple(steps) == PIPELINE
