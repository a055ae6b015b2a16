"""Paper accounts on memory snapshots: `accounting` (pure fills and marks), `views` (the Node
trader reads' shapes) and `close_position` (an operator's sell through the fill path)."""
