"""consent audit readers: the consent ids whose choices the cookie audit made, left out of the figures

Revision ID: a5d3c8e1f042
Revises: f79d275d5d4a
Create Date: 2026-12-06 21:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "a5d3c8e1f042"
down_revision = "f79d275d5d4a"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "consent_audit_reader",
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consent_audit_reader")),
    )


def downgrade():
    op.drop_table("consent_audit_reader")
