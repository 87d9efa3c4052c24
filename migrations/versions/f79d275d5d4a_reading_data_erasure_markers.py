"""reading data erasure markers: every flush of page views waiting in a worker drops those of a reader erased after they were made

Revision ID: f79d275d5d4a
Revises: f7b2d4e6a813
Create Date: 2026-12-06 15:13:46.464495

"""

import sqlalchemy as sa
from alembic import op

revision = "f79d275d5d4a"
down_revision = "f7b2d4e6a813"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "reading_data_erasure",
        sa.Column("reader", sa.String(length=32), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("reader", name=op.f("pk_reading_data_erasure")),
    )
    op.create_index(
        op.f("ix_reading_data_erasure_erased_at"), "reading_data_erasure", ["erased_at"]
    )


def downgrade():
    op.drop_index(op.f("ix_reading_data_erasure_erased_at"), table_name="reading_data_erasure")
    op.drop_table("reading_data_erasure")
