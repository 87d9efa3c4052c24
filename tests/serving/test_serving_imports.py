"""What a serving process loads: the app, and not the tools only the command line needs."""

from __future__ import annotations

import subprocess
import sys

from globalupdates.config import PROJECT_ROOT

COMMAND_LINE_ONLY = ("alembic", "flask_migrate", "pygal", "markdown", "frontmatter", "yaml", "nh3")
# A site on SQLite (the default here) has no use for PostgreSQL's dialect either.
OTHER_DATABASE = ("sqlalchemy.dialects.postgresql",)
UNWANTED = COMMAND_LINE_ONLY + OTHER_DATABASE


def test_a_serving_process_never_imports_what_only_commands_use(tmp_path):
    """alembic (about 8 MB) migrates in `flask prepare`, pygal (2 MB) draws `consent report`,
    Markdown, the YAML reader and nh3 import articles; gunicorn's workers share the master's
    memory, so none of them may enter it. Nor may Snowball's thirty pure-Python stemmers
    (about 3 MB): with PyStemmer installed, snowballstemmer hands each language to its C
    library instead."""
    script = (
        "import sys\n"
        "sys.path.insert(0, 'site')\n"
        "import wsgi\n"
        "client = wsgi.app.test_client()\n"
        "assert client.get('/healthz').status_code in (200, 503)\n"
        f"print(sorted(name for name in {UNWANTED!r} if name in sys.modules))\n"
        "print(sorted(name for name in sys.modules if name.endswith('_stemmer')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "FLASK_INSTANCE_PATH": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "[]"], result.stdout
