"""Everything the runtime keeps on disk, and how it is kept safe.

`storage` (the one place state touches the disk: atomic JSON, locked JSONL), `memory` (agent
snapshots), `journal` (decision and audit logs), `replay_position`, `resets` (confirmed, dry-runnable,
backed up), `housekeeping` (stale temp files, backup retention) and `write_health` (whether writes
reach the disk, per kind of state).
"""
