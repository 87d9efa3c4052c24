"""article languages: each article belongs to one edition, and is searched with its language

Every article gets ``lang`` ("en" for the ones already stored), and the listings of an edition
get indexes that lead with it.

The search index follows the language, one branch per dialect as in 781076c37ed4:

- PostgreSQL: ``search_vector`` is generated again, now with the text search configuration of
  the row's own language (``german``, ``french``, ``english``; ``simple`` for a language that
  has none here), and keeps its GIN index.
- SQLite: FTS5 has only the Porter stemmer, which is English. English articles stay in
  ``article_search``; German and French ones are indexed in ``article_search_stems``, which
  holds their words already reduced by Snowball's stemmers. Python does the stemming (the
  application writes that table whenever it writes an article, see
  ``globalupdates.articles.search``), so no trigger can fill it; the one trigger here removes a
  deleted article's row. Every article stored before this revision is English, so the new
  table starts empty.

Revision ID: f7b2d4e6a813
Revises: e3a9c1d27b40
Create Date: 2026-11-30 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "f7b2d4e6a813"
down_revision = "e3a9c1d27b40"
branch_labels = None
depends_on = None

# The configuration each language's text is indexed with on PostgreSQL; search.py names the
# same ones for queries.
POSTGRESQL_CONFIGS = {"en": "english", "de": "german", "fr": "french"}


def postgresql_config():
    cases = " ".join(
        f"WHEN '{lang}' THEN '{config}'::regconfig" for lang, config in POSTGRESQL_CONFIGS.items()
    )
    return f"CASE lang {cases} ELSE 'simple'::regconfig END"


def postgresql_vector(config):
    return f"""
    ALTER TABLE article ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector({config}, coalesce(headline, '')), 'A') ||
        setweight(to_tsvector({config}, coalesce(standfirst, '')), 'B') ||
        setweight(to_tsvector({config}, coalesce(body_text, '')), 'C')
    ) STORED
    """


POSTGRESQL_DROP_VECTOR = [
    "DROP INDEX IF EXISTS ix_article_search_vector",
    "ALTER TABLE article DROP COLUMN IF EXISTS search_vector",
]
POSTGRESQL_VECTOR_INDEX = (
    "CREATE INDEX ix_article_search_vector ON article USING gin (search_vector)"
)

SQLITE_STEMS = [
    """
    CREATE VIRTUAL TABLE article_search_stems USING fts5(
        headline, standfirst, body_text,
        tokenize='unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER article_search_stems_delete AFTER DELETE ON article BEGIN
        DELETE FROM article_search_stems WHERE rowid = old.id;
    END
    """,
]

INDEXES = {
    "ix_article_lang_published_at": ["lang", "published_at"],
    "ix_article_lang_section_published_at": ["lang", "section", "published_at"],
}


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise RuntimeError(f"no full-text search index for the {dialect!r} database")
    # A plain ADD COLUMN on both databases: on SQLite a batch copy of the table would drop the
    # triggers that keep article_search current.
    op.add_column(
        "article",
        sa.Column("lang", sa.String(length=8), nullable=False, server_default="en"),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "article", columns, unique=False)
    if dialect == "postgresql":
        for statement in POSTGRESQL_DROP_VECTOR:
            op.execute(statement)
        op.execute(postgresql_vector(postgresql_config()))
        op.execute(POSTGRESQL_VECTOR_INDEX)
    else:
        for statement in SQLITE_STEMS:
            op.execute(statement)


def downgrade():
    """Back to English only: German and French articles stay, searched as English text."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for statement in POSTGRESQL_DROP_VECTOR:
            op.execute(statement)
    else:
        op.execute("DROP TRIGGER IF EXISTS article_search_stems_delete")
        op.execute("DROP TABLE IF EXISTS article_search_stems")
    for name in INDEXES:
        op.drop_index(name, table_name="article")
    op.drop_column("article", "lang")
    if dialect == "postgresql":
        op.execute(postgresql_vector("'english'::regconfig"))
        op.execute(POSTGRESQL_VECTOR_INDEX)
