"""record the granted services: each consent record names the services granted inside its
categories

Revision ID: a4c8e2f61d95
Revises: a4c2e8f61b90
Create Date: 2026-12-06 21:00:00.000000

Records already stored get no services: they were made when a category granted every one of
its services, and their signed form has no services, so they verify as before. A downgrade
drops the column, after which the records made since no longer verify (their signature covers
the services).
"""

import sqlalchemy as sa
from alembic import op

revision = "a4c8e2f61d95"
down_revision = "a4c2e8f61b90"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("services", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_column("services")
