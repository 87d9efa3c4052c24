"""record the notice language: each consent record names the language of the notice it proves

Revision ID: e3a9c1d27b40
Revises: d55774c3aefb
Create Date: 2026-11-28 12:00:00.000000

Records already stored get no language: their notice hash is that of the one English notice
they were made under, and their signed form has no language, so they verify as before. A
downgrade drops the column, after which the records made since no longer verify (their
signature covers the language).
"""

import sqlalchemy as sa
from alembic import op

revision = "e3a9c1d27b40"
down_revision = "d55774c3aefb"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_column("language")
