"""tags table, plain text, dates and image for articles, and the full-text index

The search index is the database's own, so this migration has one branch per dialect:
SQLite gets an external-content FTS5 table kept current by triggers, PostgreSQL a generated
``tsvector`` column with a GIN index. Neither is in the models: the search code asks the
dialect, and ``migrations/env.py`` keeps autogenerate from proposing to drop them.

Revision ID: 781076c37ed4
Revises: cf3142f88778
Create Date: 2026-11-26 09:37:30.390043

"""

import html
import json
import re

import sqlalchemy as sa
from alembic import op

revision = "781076c37ed4"
down_revision = "cf3142f88778"
branch_labels = None
depends_on = None

SQLITE_SEARCH = [
    """
    CREATE VIRTUAL TABLE article_search USING fts5(
        headline, standfirst, body_text,
        content='article', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER article_search_insert AFTER INSERT ON article BEGIN
        INSERT INTO article_search(rowid, headline, standfirst, body_text)
        VALUES (new.id, new.headline, new.standfirst, new.body_text);
    END
    """,
    """
    CREATE TRIGGER article_search_delete AFTER DELETE ON article BEGIN
        INSERT INTO article_search(article_search, rowid, headline, standfirst, body_text)
        VALUES ('delete', old.id, old.headline, old.standfirst, old.body_text);
    END
    """,
    """
    CREATE TRIGGER article_search_update AFTER UPDATE ON article BEGIN
        INSERT INTO article_search(article_search, rowid, headline, standfirst, body_text)
        VALUES ('delete', old.id, old.headline, old.standfirst, old.body_text);
        INSERT INTO article_search(rowid, headline, standfirst, body_text)
        VALUES (new.id, new.headline, new.standfirst, new.body_text);
    END
    """,
    "INSERT INTO article_search(article_search) VALUES ('rebuild')",
]

POSTGRESQL_SEARCH = [
    """
    ALTER TABLE article ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(headline, '')), 'A') ||
        setweight(to_tsvector('english'::regconfig, coalesce(standfirst, '')), 'B') ||
        setweight(to_tsvector('english'::regconfig, coalesce(body_text, '')), 'C')
    ) STORED
    """,
    "CREATE INDEX ix_article_search_vector ON article USING gin (search_vector)",
]

TAG = re.compile(r"<[^>]+>")
SPACE = re.compile(r"\s+")
NOT_SLUG = re.compile(r"[^a-z0-9]+")


def upgrade():
    op.create_table(
        "article_tag",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["article.id"],
            name=op.f("fk_article_tag_article_id_article"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "tag", name=op.f("pk_article_tag")),
    )
    with op.batch_alter_table("article_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_tag_tag"), ["tag"], unique=False)

    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("word_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("modified_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("image_url", sa.String(length=500), nullable=True))

    fill_existing_articles()
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.alter_column("modified_at", existing_type=sa.DateTime(), nullable=False)

    dialect = op.get_bind().dialect.name
    statements = {"sqlite": SQLITE_SEARCH, "postgresql": POSTGRESQL_SEARCH}.get(dialect)
    if statements is None:
        raise RuntimeError(f"no full-text search index for the {dialect!r} database")
    for statement in statements:
        op.execute(statement)


def fill_existing_articles():
    """Give articles imported before this revision their text, word count and tag rows."""
    bind = op.get_bind()
    article = sa.table(
        "article",
        sa.column("id", sa.Integer),
        sa.column("body_html", sa.Text),
        sa.column("tags", sa.JSON),
        sa.column("published_at", sa.DateTime),
        sa.column("body_text", sa.Text),
        sa.column("word_count", sa.Integer),
        sa.column("modified_at", sa.DateTime),
    )
    article_tag = sa.table("article_tag", sa.column("article_id"), sa.column("tag"))
    rows = bind.execute(sa.select(article.c.id, article.c.body_html, article.c.tags)).all()
    for row in rows:
        text = SPACE.sub(" ", html.unescape(TAG.sub(" ", row.body_html))).strip()
        bind.execute(
            article.update()
            .where(article.c.id == row.id)
            .values(
                body_text=text,
                word_count=len(text.split()),
                modified_at=article.c.published_at,
            )
        )
        tags = row.tags if isinstance(row.tags, list) else json.loads(row.tags or "[]")
        slugs = dict.fromkeys(NOT_SLUG.sub("-", str(t).lower()).strip("-")[:60] for t in tags)
        for tag in filter(None, slugs):
            bind.execute(article_tag.insert().values(article_id=row.id, tag=tag))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS article_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS article_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_article_search_vector")
        op.execute("ALTER TABLE article DROP COLUMN IF EXISTS search_vector")

    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_column("image_url")
        batch_op.drop_column("modified_at")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("word_count")
        batch_op.drop_column("body_text")

    with op.batch_alter_table("article_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_tag_tag"))

    op.drop_table("article_tag")
