"""hash-chain the consent records and keep an anchor for pruned records

Revision ID: cf3142f88778
Revises: 39813c2f7430
Create Date: 2026-11-26 09:38:20.996282

Records that already exist are chained here, oldest first, with the same canonical form
that ``globalupdates.consent.chain.record_hash`` uses (copied so that this migration keeps
working if that module changes).
"""

import hashlib
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "cf3142f88778"
down_revision = "39813c2f7430"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def canonical_hash(row, prev_hash):
    created = row.created_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    categories = row.categories if isinstance(row.categories, list) else json.loads(row.categories)
    fields = {
        "consent_id": row.consent_id,
        "created_at": created,
        "action": row.action,
        "categories": list(categories),
        "revision": row.revision,
        "notice_hash": row.notice_hash,
        "gpc": bool(row.gpc),
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def chain_existing_records():
    records = sa.table(
        "consent_record",
        sa.column("id", sa.Integer),
        sa.column("consent_id", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("action", sa.String),
        sa.column("categories", sa.JSON),
        sa.column("revision", sa.Integer),
        sa.column("notice_hash", sa.String),
        sa.column("gpc", sa.Boolean),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    connection = op.get_bind()
    prev_hash = GENESIS_HASH
    rows = connection.execute(sa.select(records).order_by(records.c.id)).all()
    for row in rows:
        digest = canonical_hash(row, prev_hash)
        connection.execute(
            records.update()
            .where(records.c.id == row.id)
            .values(prev_hash=prev_hash, hash=digest)
        )
        prev_hash = digest


def upgrade():
    op.create_table(
        "consent_chain_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("pruned_before", sa.DateTime(), nullable=False),
        sa.Column("last_pruned_id", sa.Integer(), nullable=False),
        sa.Column("tail_hash", sa.String(length=64), nullable=False),
        sa.Column("pruned_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_chain_anchor")),
    )
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    chain_existing_records()
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_consent_record_hash"), ["hash"])


def downgrade():
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_consent_record_hash"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
    op.drop_table("consent_chain_anchor")
