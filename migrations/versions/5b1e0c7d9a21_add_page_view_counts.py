"""add page view counts: one row per path, so the beacon reads its count without counting

Revision ID: 5b1e0c7d9a21
Revises: 781076c37ed4
Create Date: 2026-11-27 17:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "5b1e0c7d9a21"
down_revision = "781076c37ed4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "page_view_count",
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_page_view_count")),
    )
    op.execute(
        "INSERT INTO page_view_count (path, views) "
        "SELECT path, COUNT(*) FROM page_view GROUP BY path"
    )


def downgrade():
    op.drop_table("page_view_count")
