"""Steps 3 and 5, around the Runner: one job per evaluation (:mod:`.jobs`), Ctrl-C and
SIGTERM (:mod:`.interrupts`), sync code with no event loop (:mod:`.loop_free`) and
progress bars (:mod:`.progress`)."""
