"""The consent engine: banner and preferences, choices and their input, gating, GPC, Consent
Mode, the cookie firewall, the registry, revisions and expiry, and the proof-of-consent chain
with its keys and the operator's commands."""
