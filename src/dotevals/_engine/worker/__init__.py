"""The only code a worker process runs besides scoring (:mod:`dotevals._engine.scoring`)
and the wire format (:mod:`dotevals._engine.wire`): chunks in (:mod:`.process`) and
fixtures created once per scope (:mod:`.fixtures`)."""
