"""key the consent chain: each record and anchor names the proof key that signed it

Revision ID: d55774c3aefb
Revises: 5b1e0c7d9a21
Create Date: 2026-11-28 10:00:00.000000

Records already stored keep their plain SHA-256 hashes and get no key id: they stay the
unkeyed start of the chain, and verification reports them as not protected by a key.
Anchors already stored get no key id and no mac for the same reason. A downgrade keeps
every hash, but the code before this revision cannot check the keyed ones.
"""

import sqlalchemy as sa
from alembic import op

revision = "d55774c3aefb"
down_revision = "5b1e0c7d9a21"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("consent_chain_anchor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("consent_chain_anchor", schema=None) as batch_op:
        batch_op.drop_column("mac")
        batch_op.drop_column("key_id")
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_column("key_id")
