"""record the consent regime: each consent record names the regime (opt-in, opt-out) of where
the reader was when the choice was made, never the place itself

Revision ID: a4c2e8f61b90
Revises: a5d3c8e1f042
Create Date: 2026-12-06 21:00:00.000000

Records already stored get no regime: they were all made under opt-in, the only regime there
was, and their signed form has no regime, so they verify as before. A downgrade drops the
column, after which the records made since no longer verify (their signature covers the
regime).
"""

import sqlalchemy as sa
from alembic import op

revision = "a4c2e8f61b90"
down_revision = "a5d3c8e1f042"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("regime", sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_column("regime")
