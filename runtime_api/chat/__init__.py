"""Room chat: viewer sessions, the per-room message store, agent narration and replies, TTS config."""
