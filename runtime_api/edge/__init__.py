"""`onlytrade-edge`: a read-only viewer process fed by the viewer bus (no state, no control, no token)."""
