"""Step 1, declaring: what an evaluation is (:mod:`.evaluation`), its score gates
(:mod:`.gates`), its retry policy (:mod:`.retry_policy`) and how a row's error is kept
(:mod:`.row_errors`)."""
