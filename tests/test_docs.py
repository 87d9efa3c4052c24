"""The documentation stays true to the repository it describes.

Links: a link in README.md, CHANGELOG.md or docs/*.md is either a relative path that resolves
to a file or folder inside the repository (with an anchor, to a heading of that file), an
anchor of the same document, or an http(s) URL of a public host (a standard or a public
reference). Anything else fails: a path that climbs out of the repository (``../shared/...``),
an absolute path, a loopback address, any other scheme. Links in code are not links.

Besides: every test docs/compliance.md cites exists; every setting the code reads is in
docs/configuration.md, nothing there is made up, each row is a key of ``Defaults`` or named as
one that is not, and each default written there is the code's; every repository path, and
every module, function or Python file of the package (``prepare.warm_up``), that the documents
name in code spans exists, and so does every section the code points to
(``docs/performance.md, "Workers"``); the README stays short and opens with ``make run`` and
``make test``; the changelog keeps its form (versions descending, ISO dates, known sections);
and every bench table in docs/performance.md is the rendering (bench/report.py) of the
committed results folder it names, so no figure is typed by hand.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import globalupdates
from bench import report
from globalupdates.config import PROJECT_ROOT, Defaults

README = PROJECT_ROOT / "README.md"
CHANGELOG = PROJECT_ROOT / "CHANGELOG.md"
COMPLIANCE = PROJECT_ROOT / "docs" / "compliance.md"
CONFIGURATION = PROJECT_ROOT / "docs" / "configuration.md"
PERFORMANCE = PROJECT_ROOT / "docs" / "performance.md"
GUNICORN_CONFIG = PROJECT_ROOT / "gunicorn.conf.py"
README_MAX_LINES = 150
FIRST_COMMANDS = ["make run", "make test"]
PUBLIC_SCHEMES = ("http", "https")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::1")
REPOSITORY_FOLDERS = (".ci", "bench", "content", "deploy", "docs", "migrations", "site")
REPOSITORY_FOLDERS += ("static", "templates", "tests")

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^\s<>]+)>", re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CITATION = re.compile(r"`(tests/[\w./-]+\.py)((?:::[\w\[\]-]+)*)`")
SHORTHAND_CITATION = re.compile(r"`(::test_\w+)")


def documents() -> list[Path]:
    return [README, PROJECT_ROOT / "CHANGELOG.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def relative(path: Path) -> str:
    return path.relative_to(PROJECT_ROOT).as_posix()


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks, with code spans removed."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield CODE_SPAN.sub("", line)


def prose_lines_keeping_code(text: str) -> Iterator[str]:
    """Lines outside fenced blocks, code spans kept (a heading's anchor includes their text)."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield line


def code_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def links(text: str) -> list[str]:
    found = []
    for line in prose_lines(text):
        found.extend(match.group(1) for match in INLINE_LINK.finditer(line))
        found.extend(match.group(1) for match in AUTOLINK.finditer(line))
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            found.append(definition.group(1))
    return found


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines_keeping_code(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if not heading:
            continue
        anchor = github_anchor(heading.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def link_problem(document: Path, target: str, root: Path = PROJECT_ROOT) -> str | None:
    """Why a link in ``document`` breaks the rule in this module's docstring, or None."""
    parts = urlsplit(target)
    if parts.scheme:
        if parts.scheme.lower() not in PUBLIC_SCHEMES:
            return f"{target}: only http(s) links may leave the repository"
        if not parts.hostname or parts.hostname in LOCAL_HOSTS:
            return f"{target}: not a public address"
        return None
    if target.startswith("//"):
        return f"{target}: a link without a scheme leaves the repository"
    path_part, anchor = unquote(parts.path), parts.fragment
    if path_part.startswith("/"):
        return f"{target}: an absolute path; link relative to the document"
    destination = (document.parent / path_part).resolve() if path_part else document
    if not destination.is_relative_to(root.resolve()):
        return f"{target}: leads outside the repository"
    if not destination.exists():
        return f"{target}: no such file in the repository"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"{target}: {relative_to(destination, root)} has no heading #{anchor}"
    return None


def relative_to(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def link_problems(document: Path, root: Path = PROJECT_ROOT) -> list[str]:
    text = document.read_text(encoding="utf-8")
    return [
        f"{relative_to(document, root)}: {problem}"
        for target in links(text)
        if (problem := link_problem(document, target, root)) is not None
    ]


def defined_tests(path: Path) -> set[str]:
    """Test functions as pytest names them: ``test_x`` and ``TestClass::test_x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return {name for name in names if name.rsplit("::", 1)[-1].startswith("test")}


def citation_problem(path_text: str, names: str, root: Path = PROJECT_ROOT) -> str | None:
    """Why a cited ``tests/...py::test_name`` does not name a test, or None."""
    path = root / path_text
    if not path.is_file():
        moved = sorted(relative_to(p, root) for p in (root / "tests").rglob(Path(path_text).name))
        hint = f" (a file of that name is at {', '.join(moved)})" if moved else ""
        return f"{path_text} does not exist{hint}"
    wanted = re.sub(r"\[[^\]]*\]", "", names.removeprefix("::"))
    if wanted and wanted not in defined_tests(path):
        return f"{path_text} has no test {wanted}"
    return None


def citation_problems(text: str, root: Path = PROJECT_ROOT) -> list[str]:
    problems = [
        f"{found}: cite the file too, as tests/<file>.py::test_name"
        for found in SHORTHAND_CITATION.findall(text)
    ]
    for match in CITATION.finditer(text):
        problem = citation_problem(match.group(1), match.group(2), root)
        if problem is not None:
            problems.append(problem)
    return problems


def commands_in_code_blocks(text: str) -> list[str]:
    """Every command of every code block, in order, without its trailing comment."""
    commands = []
    for block in code_blocks(text):
        for line in block:
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def settings_the_code_reads() -> set[str]:
    """``FLASK_`` plus each key of ``Defaults``, and every variable gunicorn.conf.py reads."""
    names = {f"FLASK_{key}" for key in vars(Defaults) if key.isupper()}
    tree = ast.parse(GUNICORN_CONFIG.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = ast.unparse(node.func)
            if function in ("os.environ.get", "env_int", "os.getenv"):
                names.add(str(node.args[0].value))
    return names


def configuration_table(text: str) -> set[str]:
    """The variables in the first column of docs/configuration.md's table."""
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", text, re.MULTILINE))


CONFIGURATION_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \|", re.MULTILINE)
EXCEPTIONS_PARAGRAPH = "not keys of `Defaults`"


def configuration_defaults(text: str) -> dict[str, str]:
    """Each row of docs/configuration.md's table: its variable and its default cell."""
    return dict(CONFIGURATION_ROW.findall(text))


def settings_outside_defaults(text: str) -> set[str]:
    """The variables the paragraph before the table names as rows that are not keys of
    ``Defaults``."""
    before_table = text.split("\n| variable |", 1)[0]
    named: set[str] = set()
    for paragraph in before_table.split("\n\n"):
        if EXCEPTIONS_PARAGRAPH in paragraph:
            named.update(re.findall(r"`(FLASK_[A-Z0-9_]+)`", paragraph))
    return named


def documented_default_problem(name: str, cell: str, value: object) -> str | None:
    """Why a default cell that opens with a code span does not say ``value``, or None. A cell
    in words ("unset", "made once ...") is not compared."""
    opening = re.match(r"`([^`]+)`", cell)
    if opening is None:
        return None
    written = opening.group(1)
    if isinstance(value, str) and value.startswith(str(PROJECT_ROOT)):
        value = Path(value).relative_to(PROJECT_ROOT).as_posix() + "/"
    if isinstance(value, bool):
        matches = written == str(value).lower()
    elif isinstance(value, int | float):
        matches = re.fullmatch(r"-?[\d.]+", written) is not None and float(written) == value
    elif isinstance(value, tuple | list | dict):
        try:
            matches = ast.literal_eval(written) == value
        except (ValueError, SyntaxError):
            matches = False
    else:
        matches = written == str(value)
    return None if matches else f"{name}: the table says {written}, the code {value!r}"


def gunicorn_defaults() -> dict[str, str]:
    """The variables gunicorn.conf.py reads with a literal default, and that default."""
    tree = ast.parse(GUNICORN_CONFIG.read_text(encoding="utf-8"))
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("os.environ.get", "env_int")
            and len(node.args) == 2
            and all(isinstance(arg, ast.Constant) for arg in node.args)
        ):
            name, default = (ast.literal_eval(arg) for arg in node.args)
            found[str(name)] = str(default)
    return found


DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
CALLED_NAME = re.compile(r"([A-Za-z_]\w*)\(\)")
FILE_SUFFIXES = {"toml", "md", "conf", "lock", "sqlite3", "html", "json", "ctl", "mo", "po", "txt"}
FILE_SUFFIXES |= {"css", "js", "cfg", "jar", "yml", "yaml", "ini", "png"}
PYTHON_FOLDERS = ("site", "tests", "bench", "migrations")


def package_modules() -> dict[str, list[str]]:
    """Each module of the package by its last name: ``proof_keys`` -> its full dotted name."""
    found: dict[str, list[str]] = {"globalupdates": ["globalupdates"]}
    for module in pkgutil.walk_packages(globalupdates.__path__, "globalupdates."):
        found.setdefault(module.name.rsplit(".", 1)[-1], []).append(module.name)
    return found


def resolves(dotted: str, modules: dict[str, list[str]]) -> bool | None:
    """Whether a name such as ``prepare.warm_up`` or ``consent.proof.proof_keys`` names something
    in the package; None when it does not start with one of the package's modules."""
    first, *rest = dotted.split(".")
    if first not in modules:
        return None
    for module_name in modules[first]:
        parts = module_name.split(".") + rest
        for length in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module(".".join(parts[:length]))
            except ImportError:
                continue
            if all_attributes(found, parts[length:]):
                return True
            break
    return False


def all_attributes(found: object, names: list[str]) -> bool:
    for name in names:
        if not hasattr(found, name):
            return False
        found = getattr(found, name)
    return True


@dataclass(frozen=True)
class KnownNames:
    """What a document may name: the package's modules by their last name, the Python files,
    every function and class defined anywhere with the templates' words (their globals, such as
    ``gated_scripts()``), and the package's own module-level functions and classes."""

    modules: dict[str, list[str]]
    files: set[str]
    code: set[str]
    package_functions: set[str]
    package_classes: set[str]


def known_names() -> KnownNames:
    files, code, functions, classes = set(), set(), set(), set()
    for folder in PYTHON_FOLDERS:
        for path in PROJECT_ROOT.joinpath(folder).rglob("*.py"):
            files.add(path.name)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    code.add(node.name)
            if folder == "site":
                functions.update(
                    node.name
                    for node in tree.body
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                )
                classes.update(
                    node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                )
    files.update(path.name for path in PROJECT_ROOT.glob("*.py"))
    for path in PROJECT_ROOT.joinpath("templates").rglob("*.html"):
        code.update(re.findall(r"\w+", path.read_text(encoding="utf-8")))
    return KnownNames(package_modules(), files, code, functions, classes)


def stale_dotted_name(name: str, known: KnownNames) -> bool:
    """A file, module, function or attribute that is not there: ``bootstrap.py``,
    ``consent.nokeys``, or ``bootstrap.warm_up``, a function of the package under a module
    it is not in."""
    first, *rest = name.split(".")
    if rest[-1] == "py":
        return name not in known.files
    if rest[-1] in FILE_SUFFIXES:
        return False
    found = resolves(name, known.modules)
    if found is None:
        return rest[-1] in known.package_functions and first not in known.package_classes
    return not found


def stale_names(text: str, known: KnownNames) -> list[str]:
    """The names of the package in code spans that no longer exist."""
    spans = [
        span.strip()
        for line in prose_lines_keeping_code(text)
        for _, span in CODE_SPAN.findall(line)
    ]
    return [span for span in spans if is_stale(span, known)]


def is_stale(span: str, known: KnownNames) -> bool:
    called = CALLED_NAME.fullmatch(span)
    if called and called.group(1) not in known.code:
        return True
    name = span.removesuffix("()")
    return DOTTED_NAME.fullmatch(name) is not None and stale_dotted_name(name, known)


SECTION_POINTER = re.compile(r'\b(README|docs/[\w-]+\.md)(?:\.md)?,\s*"([^"]+)"')


def headings(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {m.group(2).lower() for m in map(HEADING.match, prose_lines_keeping_code(text)) if m}


def section_pointer_problems(text: str, root: Path = PROJECT_ROOT) -> list[str]:
    """Why a pointer such as ``(docs/performance.md, "Workers")`` in code or a comment does not
    lead to a heading of that document, or an empty list."""
    problems = []
    for document, heading in SECTION_POINTER.findall(text):
        path = root / ("README.md" if document == "README" else document)
        if not path.is_file():
            problems.append(f"{document}: no such document")
        elif heading.lower() not in headings(path):
            problems.append(f'{document} has no section "{heading}"')
    return problems


def code_that_points_to_documents() -> list[Path]:
    paths = [
        *PROJECT_ROOT.joinpath("site").rglob("*.py"),
        *PROJECT_ROOT.joinpath("bench").glob("*.py"),
    ]
    paths += [
        *PROJECT_ROOT.joinpath("deploy").glob("*.conf"),
        *PROJECT_ROOT.joinpath("tests").rglob("*.py"),
    ]
    paths += [
        GUNICORN_CONFIG,
        PROJECT_ROOT / "wsgi.py",
        PROJECT_ROOT / "Makefile",
        PROJECT_ROOT / ".ci" / "run",
    ]
    return [path for path in paths if path.name != "test_docs.py"]


CHANGELOG_SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
UNRELEASED = "## [Unreleased]"
RELEASE_HEADING = re.compile(r"## \[(\d+)\.(\d+)\.(\d+)\] - (\d{4}-\d{2}-\d{2})")


@dataclass
class Release:
    """One ``## [...]`` of the changelog, with the changes it lists by section."""

    heading: str
    version: tuple[int, ...] | None = None
    day: date | None = None
    changes: dict[str, int] = field(default_factory=dict)


def changelog_releases(text: str) -> tuple[list[Release], list[str]]:
    """The releases of a changelog in Keep a Changelog form, and what breaks that form."""
    releases: list[Release] = []
    problems: list[str] = []
    section: str | None = None
    for line in prose_lines_keeping_code(text):
        if line.startswith("## "):
            releases.append(release_from_heading(line, problems))
            section = None
        elif line.startswith("### "):
            section = line.removeprefix("### ").strip()
            if not releases:
                problems.append(f"{line}: a section before any version")
            elif section not in CHANGELOG_SECTIONS:
                problems.append(f"{releases[-1].heading}: unknown section {section!r}")
            elif section in releases[-1].changes:
                problems.append(f"{releases[-1].heading}: {section} twice")
            else:
                releases[-1].changes[section] = 0
        elif line.startswith("#") and not (line.startswith("# ") and not releases):
            problems.append(f"{line}: only # Changelog, ## versions and ### sections")
        elif line.startswith("- ") and releases:
            if section is None or section not in releases[-1].changes:
                problems.append(f"{releases[-1].heading}: a change outside a known section")
            else:
                releases[-1].changes[section] += 1
    return releases, problems


def release_from_heading(line: str, problems: list[str]) -> Release:
    heading = line.strip()
    if heading == UNRELEASED:
        return Release(heading)
    match = RELEASE_HEADING.fullmatch(heading)
    if match is None:
        problems.append(f"{heading}: not {UNRELEASED} nor ## [X.Y.Z] - YYYY-MM-DD")
        return Release(heading)
    try:
        day = date.fromisoformat(match.group(4))
    except ValueError:
        problems.append(f"{heading}: {match.group(4)} is not a date")
        day = None
    return Release(heading, tuple(int(part) for part in match.groups()[:3]), day)


def changelog_problems(text: str) -> list[str]:
    """Why a changelog is not in Keep a Changelog form: Unreleased first if at all, then
    versions with ISO dates, each newer than the next and none dated before it, each listing
    its changes under the known sections only."""
    releases, problems = changelog_releases(text)
    versioned = [release for release in releases if release.version is not None]
    if not versioned:
        problems.append("no version")
    for position, release in enumerate(releases):
        if release.heading == UNRELEASED and position != 0:
            problems.append(f"{UNRELEASED} must come first")
        if release.version is not None and not any(release.changes.values()):
            problems.append(f"{release.heading}: lists no change")
    for newer, older in zip(versioned, versioned[1:], strict=False):
        if (newer.version or ()) <= (older.version or ()):
            problems.append(f"{newer.heading} is not newer than {older.heading}")
        if newer.day and older.day and newer.day < older.day:
            problems.append(f"{newer.heading} is dated before {older.heading}")
    return problems


QUALIFIED_NAME = re.compile(r"\bglobalupdates(?:\.[A-Za-z_]\w*)+")


def comments_and_docstrings(path: Path) -> list[str]:
    """The prose of a Python file: its comments and its docstrings, not its strings."""
    with path.open("rb") as source:
        texts = [
            token.string
            for token in tokenize.tokenize(source.readline)
            if token.type == tokenize.COMMENT
        ]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            texts.append(ast.get_docstring(node) or "")
    return texts


def stale_qualified_names(texts: list[str], modules: dict[str, list[str]]) -> list[str]:
    """Names such as ``globalupdates.consent.proof.proof_keys`` in prose that name nothing (a file
    name such as ``globalupdates.sqlite3`` is not one)."""
    return [
        name
        for text in texts
        for name in QUALIFIED_NAME.findall(text)
        if name.rsplit(".", 1)[-1] not in FILE_SUFFIXES and not resolves(name, modules)
    ]


def source_text() -> str:
    """Every place a setting may be read: the package, gunicorn, make, CI, tests and bench."""
    paths = [*PROJECT_ROOT.joinpath("site").rglob("*.py"), GUNICORN_CONFIG]
    paths += [PROJECT_ROOT / "Makefile", PROJECT_ROOT / ".ci" / "run"]
    paths += [*PROJECT_ROOT.joinpath("tests").rglob("*.py")]
    paths += [*PROJECT_ROOT.joinpath("bench").glob("*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in paths if p.name != "test_docs.py")


def ignored_by_git(path: str) -> bool:
    """Whether a pattern of .gitignore covers ``path`` (what make and the bench write)."""
    for line in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip().rstrip("/")
        if not pattern or pattern.startswith("#"):
            continue
        parts = path.rstrip("/").split("/")
        if "/" in pattern:
            if any(fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
                return True
        elif any(fnmatch(part, pattern) for part in parts):
            return True
    return False


def repository_paths(text: str) -> set[str]:
    """Paths into the repository named in code spans, such as `deploy/nginx.conf`."""
    found = set()
    for line in prose_lines_keeping_code(text):
        for _ticks, span in CODE_SPAN.findall(line):
            candidate = span.split("::", 1)[0].strip()
            first = candidate.split("/", 1)[0]
            if (
                "/" in candidate
                and first in REPOSITORY_FOLDERS
                and not re.search(r"[<>*\s]", candidate)
            ):
                found.add(candidate)
    return found


def raw_outputs(summary: dict) -> list[str]:
    """The wrk outputs a summary names: each site and floor run of each scenario, the soak."""
    runs = summary.get("runs", []) + summary.get("setups", [])
    found = [
        result["raw"]
        for run in runs
        for sides in run["scenarios"].values()
        for result in sides.values()
    ]
    return found + [result["raw"] for result in summary.get("soak", {}).values()]


def bench_table_problems(text: str, root: Path = PROJECT_ROOT) -> list[str]:
    """Why a bench table of ``text`` is not the rendering of the results folder it names."""
    problems = []
    for block in report.blocks(text):
        folder = root / block.folder
        if not (folder / report.SUMMARY).is_file():
            problems.append(f"{block.folder}: no {report.SUMMARY}")
            continue
        if ignored_by_git(f"{block.folder}/{report.SUMMARY}"):
            problems.append(f"{block.folder}: git ignores it, so it cannot be committed")
        missing = [raw for raw in raw_outputs(report.load(folder)) if not (folder / raw).is_file()]
        if missing:
            problems.append(f"{block.folder}: the wrk outputs {missing} are missing")
        if block.table != report.render(block.kind, folder).strip("\n"):
            problems.append(f"{block.kind} of {block.folder}: differs from its rendering")
    return problems


# The documents as they are.


@pytest.mark.parametrize("document", documents(), ids=relative)
def test_every_link_stays_in_the_repository_or_goes_to_a_public_reference(document):
    assert link_problems(document) == []


def test_every_test_the_compliance_table_cites_exists():
    text = COMPLIANCE.read_text(encoding="utf-8")
    assert len(CITATION.findall(text)) > 50, "the compliance table cites tests as tests/...py::name"
    assert citation_problems(text) == []


def test_every_setting_is_in_the_configuration_table_and_each_row_is_read_somewhere():
    documented = configuration_table(CONFIGURATION.read_text(encoding="utf-8"))
    assert sorted(settings_the_code_reads() - documented) == []
    source = source_text()
    made_up = [
        name
        for name in sorted(documented)
        if name.removeprefix("FLASK_") not in source and name not in source
    ]
    assert made_up == []


def test_every_flask_row_is_a_key_of_defaults_or_named_before_the_table():
    text = CONFIGURATION.read_text(encoding="utf-8")
    rows = {name for name in configuration_table(text) if name.startswith("FLASK_")}
    outside = rows - {f"FLASK_{key}" for key in vars(Defaults) if key.isupper()}
    named = settings_outside_defaults(text)
    assert sorted(outside) == sorted(named)
    assert named <= rows


def test_every_default_in_the_configuration_table_is_the_one_the_code_has():
    text = CONFIGURATION.read_text(encoding="utf-8")
    problems = []
    for name, cell in configuration_defaults(text).items():
        key = name.removeprefix("FLASK_")
        if name.startswith("FLASK_") and hasattr(Defaults, key):
            problems.append(documented_default_problem(name, cell, getattr(Defaults, key)))
    gunicorn = gunicorn_defaults()
    assert len(gunicorn) >= 10, "gunicorn.conf.py reads its variables with literal defaults"
    rows = configuration_defaults(text)
    for name, default in gunicorn.items():
        problems.append(documented_default_problem(name, rows.get(name, ""), default))
    assert [problem for problem in problems if problem] == []


def test_every_name_of_the_package_the_documents_give_exists():
    """The changelog is history and may name what has gone since."""
    known = known_names()
    stale = {
        relative(document): found
        for document in documents()
        if document.name != "CHANGELOG.md"
        and (found := stale_names(document.read_text(encoding="utf-8"), known))
    }
    assert stale == {}


def test_every_section_the_code_and_the_configurations_point_to_exists():
    problems = {
        relative(path): found
        for path in code_that_points_to_documents()
        if (found := section_pointer_problems(path.read_text(encoding="utf-8")))
    }
    assert problems == {}


def test_the_changelog_keeps_its_form():
    text = CHANGELOG.read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert changelog_problems(text) == []


def test_every_name_of_the_package_the_comments_and_docstrings_give_exists():
    modules = package_modules()
    paths = [
        *PROJECT_ROOT.joinpath("site").rglob("*.py"),
        *PROJECT_ROOT.joinpath("tests").rglob("*.py"),
    ]
    paths += [
        *PROJECT_ROOT.joinpath("bench").glob("*.py"),
        GUNICORN_CONFIG,
        PROJECT_ROOT / "wsgi.py",
    ]
    stale = {
        relative(path): found
        for path in paths
        if (found := stale_qualified_names(comments_and_docstrings(path), modules))
    }
    assert stale == {}


@pytest.mark.parametrize("document", documents(), ids=relative)
def test_every_repository_path_the_documents_name_exists(document):
    named = repository_paths(document.read_text(encoding="utf-8"))
    missing = [path for path in named if not (PROJECT_ROOT / path).exists()]
    assert sorted(path for path in missing if not ignored_by_git(path)) == []


def test_the_readme_is_short_and_opens_with_make_run_then_make_test():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert commands_in_code_blocks(text)[:2] == FIRST_COMMANDS


def test_the_readme_keeps_its_reliability_section_and_links_every_document():
    text = README.read_text(encoding="utf-8")
    assert "## Reliability" in text.splitlines()
    linked = {(PROJECT_ROOT / target).resolve() for target in links(text)}
    assert [relative(d) for d in documents()[1:] if d.resolve() not in linked] == []


def test_every_bench_table_is_rendered_from_the_committed_results_it_names():
    text = PERFORMANCE.read_text(encoding="utf-8")
    assert len(report.blocks(text)) >= 3, "docs/performance.md quotes the bench through its tables"
    assert bench_table_problems(text) == []


# The checks themselves catch what they are for.


def test_a_link_out_of_the_repository_is_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n[design](../../shared/docs/design.md) [abs](/etc/passwd) [x](file:///etc/passwd)\n"
        "[local](http://127.0.0.1:8000/) [gone](missing.md) [anchor](#nowhere)\n"
        "[fine](#page) [spec](https://www.w3.org/TR/gpc/) `[code](../x.md)`\n",
        encoding="utf-8",
    )
    problems = link_problems(page, tmp_path)
    assert len(problems) == 6, problems
    assert "leads outside the repository" in problems[0]


def test_an_anchor_must_name_a_heading_of_the_linked_file(tmp_path):
    (tmp_path / "a.md").write_text("# Request hooks, in order\n", encoding="utf-8")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#request-hooks-in-order) [bad](a.md#hooks)\n", encoding="utf-8")
    assert link_problems(page, tmp_path) == ["b.md: a.md#hooks: a.md has no heading #hooks"]


def test_a_cited_test_that_does_not_exist_is_caught(tmp_path):
    (tmp_path / "tests" / "consent").mkdir(parents=True)
    (tmp_path / "tests" / "consent" / "test_gpc.py").write_text(
        "def test_there():\n    pass\n\n"
        "class TestGroup:\n    def test_inside(self):\n        pass\n",
        encoding="utf-8",
    )
    text = (
        "`tests/consent/test_gpc.py::test_there`"
        " `tests/consent/test_gpc.py::TestGroup::test_inside`"
        " `tests/consent/test_gpc.py::test_there[case]` `tests/consent/test_gpc.py::test_gone`"
        " `tests/test_gpc.py::test_there` and `::test_shorthand`"
    )
    assert citation_problems(text, tmp_path) == [
        "::test_shorthand: cite the file too, as tests/<file>.py::test_name",
        "tests/consent/test_gpc.py has no test test_gone",
        "tests/test_gpc.py does not exist (a file of that name is at tests/consent/test_gpc.py)",
    ]


def test_a_default_the_table_writes_differently_is_caught():
    assert documented_default_problem("WEB_CONCURRENCY", "`3`", "2") == (
        "WEB_CONCURRENCY: the table says 3, the code '2'"
    )
    assert documented_default_problem("FLASK_X", "`true`", True) is None
    assert documented_default_problem("FLASK_X", "`false`", True) is not None
    assert documented_default_problem("FLASK_X", "`1.0`", 1.0) is None
    assert documented_default_problem("FLASK_X", "`1000000` (1 MB)", 1_000_000) is None
    assert documented_default_problem("FLASK_X", '`("en", "de")`', ("en", "de")) is None
    assert documented_default_problem("FLASK_X", '`("en",)`', ("en", "de")) is not None
    assert documented_default_problem("FLASK_X", "unset", None) is None
    content = str(PROJECT_ROOT / "content")
    assert documented_default_problem("FLASK_X", "`content/` in the checkout", content) is None


def test_a_row_outside_defaults_must_be_named_before_the_table():
    text = (
        "# Configuration\n\nSome rows are not keys of `Defaults`: `FLASK_A` and `FLASK_B`.\n\n"
        "Examples: `FLASK_C=1`.\n\n| variable | default | meaning |\n|---|---|---|\n"
        "| `FLASK_A` | unset | a |\n"
    )
    assert settings_outside_defaults(text) == {"FLASK_A", "FLASK_B"}


def test_a_stale_name_of_the_package_is_caught():
    text = (
        "The master warms up (`bootstrap.warm_up`, now `prepare.warm_up`) in `prepare.py`, "
        "not `bootstrap.py`; `consent.proof.proof_keys` keeps the keys, `consent.nokeys` nothing. "
        "`request.path`, `registry.toml`, `url_for()`, `gone_away()` and `1.0`.\n"
        "```\nprepare.vanished\n```\n"
    )
    known = known_names()
    assert stale_names(text, replace(known, code=known.code | {"url_for"})) == [
        "bootstrap.warm_up",
        "bootstrap.py",
        "consent.nokeys",
        "gone_away()",
    ]


def test_a_pointer_to_a_section_that_does_not_exist_is_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "performance.md").write_text("# Performance\n\n### Workers\n")
    (tmp_path / "README.md").write_text("# Site\n\n## Layout\n")
    text = (
        'measured (README, "Running it in production"); see (docs/performance.md, "Workers")\n'
        '(README, "Layout") and (docs/gone.md, "Anything")'
    )
    assert section_pointer_problems(text, tmp_path) == [
        'README has no section "Running it in production"',
        "docs/gone.md: no such document",
    ]


def test_a_changelog_out_of_form_is_caught():
    good = (
        "# Changelog\n\n## [Unreleased]\n\n### Fixed\n\n- a fix\n\n"
        "## [0.2.0] - 2026-11-27\n\nA title line.\n\n### Added\n\n- a page\n"
        "  on two lines\n\n### Security\n\n- a header\n\n"
        "## [0.1.0] - 2026-11-26\n\n### Added\n\n- the site\n"
    )
    assert changelog_problems(good) == []
    assert changelog_problems(good.replace("[0.2.0]", "[0.0.9]")) == [
        "## [0.0.9] - 2026-11-27 is not newer than ## [0.1.0] - 2026-11-26"
    ]
    assert changelog_problems(good.replace("2026-11-27", "2026-11-25")) == [
        "## [0.2.0] - 2026-11-25 is dated before ## [0.1.0] - 2026-11-26"
    ]
    assert changelog_problems(good.replace("2026-11-27", "2026-13-01")) == [
        "## [0.2.0] - 2026-13-01: 2026-13-01 is not a date"
    ]
    assert changelog_problems(good.replace("- 2026-11-27", "(27 November)")) == [
        "## [0.2.0] (27 November): not ## [Unreleased] nor ## [X.Y.Z] - YYYY-MM-DD"
    ]
    assert changelog_problems(good.replace("### Security", "### Improvements")) == [
        "## [0.2.0] - 2026-11-27: unknown section 'Improvements'",
        "## [0.2.0] - 2026-11-27: a change outside a known section",
    ]
    assert changelog_problems(good.replace("A title line.", "- a change")) == [
        "## [0.2.0] - 2026-11-27: a change outside a known section"
    ]
    moved = good.replace("## [Unreleased]\n\n### Fixed\n\n- a fix\n\n", "")
    assert changelog_problems(moved + "\n## [Unreleased]\n\n### Fixed\n\n- a fix\n") == [
        "## [Unreleased] must come first"
    ]
    assert changelog_problems("# Changelog\n\n## Nothing lost\n\n- a fix\n") == [
        "## Nothing lost: not ## [Unreleased] nor ## [X.Y.Z] - YYYY-MM-DD",
        "## Nothing lost: a change outside a known section",
        "no version",
    ]


def test_a_stale_name_in_a_comment_or_docstring_is_caught(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        '''"""Keys from globalupdates.consent.proof.proof_keys, not globalupdates.bootstrap."""

KEY = "globalupdates.not_a_module"  # environ key: a string, not prose; globalupdates.sqlite3
# warmed up by globalupdates.prepare.warm_up, not globalupdates.prepare.warm_down.
''',
        encoding="utf-8",
    )
    found = stale_qualified_names(comments_and_docstrings(module), package_modules())
    assert sorted(found) == ["globalupdates.bootstrap", "globalupdates.prepare.warm_down"]


def test_the_first_commands_are_read_from_code_blocks_in_order():
    text = "Run `make lint`.\n\n```sh\n# set up\nmake test  # all\n```\n\n```\nmake run\n```\n"
    assert commands_in_code_blocks(text) == ["make test", "make run"]


def a_bench_summary() -> dict:
    """A results summary of one run of one scenario, in the shape bench/run.py writes."""
    result = {
        "requests_per_second": 1000.0,
        "p50_ms": 2.0,
        "p99_ms": 9.0,
        "answered": 10_000,
        "seconds": 10.0,
        "statuses": {"200": 10_000},
        "errors": {},
        "extra": {},
    }
    floor = {**result, "requests_per_second": 2000.0, "raw": "run1-beacon-floor.txt"}
    return {
        "database": "sqlite",
        "runs": [
            {
                "run": 1,
                "scenarios": {
                    "beacon": {"site": {**result, "raw": "run1-beacon-site.txt"}, "floor": floor}
                },
            }
        ],
    }


def test_a_bench_table_typed_by_hand_or_without_its_results_is_caught(tmp_path):
    folder = tmp_path / "bench" / "results" / "20261206T000000Z-sqlite"
    folder.mkdir(parents=True)
    (folder / report.SUMMARY).write_text(json.dumps(a_bench_summary()), encoding="utf-8")
    (folder / "run1-beacon-site.txt").write_text("wrk", encoding="utf-8")
    name = "bench/results/20261206T000000Z-sqlite"
    table = report.render("summary", folder)
    rendered = f"<!-- bench:summary {name} -->\n\n{table}\n<!-- /bench -->\n"
    assert "| page-view beacon | 1,000 | 2,000 | 0.50 |" in rendered
    assert bench_table_problems(rendered, tmp_path) == [
        f"{name}: the wrk outputs ['run1-beacon-floor.txt'] are missing"
    ]
    (folder / "run1-beacon-floor.txt").write_text("wrk", encoding="utf-8")
    assert bench_table_problems(rendered, tmp_path) == []
    typed = rendered.replace("| 0.50 |", "| 0.55 |")
    assert bench_table_problems(typed, tmp_path) == [
        f"summary of {name}: differs from its rendering"
    ]
    gone = rendered.replace("20261206T000000Z", "20261207T000000Z")
    assert bench_table_problems(gone, tmp_path) == [
        "bench/results/20261207T000000Z-sqlite: no summary.json"
    ]


def a_metrics_summary(cpu_us: dict[str, list[float | None]]) -> dict:
    """A --compare-metrics summary of the beacon, one run per entry of each side's CPU times."""
    base = a_bench_summary()["runs"][0]["scenarios"]["beacon"]["site"]
    runs = []
    for run, (on, off) in enumerate(zip(cpu_us["on"], cpu_us["off"], strict=True), start=1):
        sides = {
            side: {**base, "extra": {"site_cpu_us_per_answer": value}}
            for side, value in (("on", on), ("off", off))
        }
        runs.append({"run": run, "scenarios": {"beacon": sides}})
    return {"metrics": {"runs": runs}}


def test_the_metrics_table_gives_the_median_cpu_per_answer_of_each_side():
    summary = a_metrics_summary({"on": [520.0, 505.0, 900.0], "off": [500.0, 480.0, None]})
    table = report.metrics_table(summary)
    assert "site CPU per answer, on / off (median)" in table
    assert "| 520 / 490 µs (+6.1 %) |" in table


def test_the_metrics_table_of_a_bench_without_cpu_times_has_no_such_column():
    table = report.metrics_table(a_metrics_summary({"on": [None], "off": [None]}))
    assert "site CPU" not in table
    assert "| page-view beacon | 1,000 | 1,000 | 1.000 | 1.000 |" in table
