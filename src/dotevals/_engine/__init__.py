"""Step 5, running: where an evaluation's rows are scored.

The main process is the default side; the worker side is isolated in
:mod:`.worker`. Sync evaluations with workers take the stream::

    main process                                     |  worker process (local or Dask)
                                                     |
    Runner ── Payload ──> wire.pack_payload          |
                          pickles it once            |
                          │                          |
    rows ───────────────> stream ──── chunks ───────>|──> worker.process.run_chunk
      dataset order       ChunkSizer,   through an   |      unpickles the Payload once,
                          ≤ 2 x slots   executor     |      worker.fixtures builds the
                          running, the  (executors/: |      fixtures once per scope,
                          next one sent  local, dask)|      scoring scores each row
                          when any ends              |      (deadline: its timeout;
                          │                          |      start_marks: rows start)
    sink(Record) <─────── reorder buffer <───────────|───── Records (wire.pack_each
      RecordWriter,       (bounded, in rows);        |      pickles each one that can
      progress            a dead worker's rows       |      travel)
                          run again alone            |

Async evaluations, and sync ones without workers, stay in the main process:
:mod:`.inline` runs their rows under a concurrency strategy, with :mod:`.scoring`
(and :mod:`.deadline` for a sync row's timeout).
:mod:`.executors.choose` picks the executor for a run and :mod:`.executors.sizing`
sizes a local pool. Workers never touch storage: only the main process writes.
"""
