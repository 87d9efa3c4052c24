"""The actions a consent record names: what the reader (or a GPC signal) did to their choice."""

from __future__ import annotations

ACCEPT_ALL = "accept_all"
REJECT_ALL = "reject_all"
SAVE = "save"
# A save or a Reject All that took back a category the reader had granted before.
WITHDRAWAL = "withdrawal"
# A Global Privacy Control signal revised a stored choice that granted advertisement.
GPC_OPT_OUT = "gpc_opt_out"

# The actions a reader's form may ask for; the others are derived from them.
FORM_ACTIONS = (ACCEPT_ALL, REJECT_ALL, SAVE)
