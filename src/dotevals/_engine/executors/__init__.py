"""Where the stream's chunks run: the interface (:mod:`.base`), the choice between the
local pool and Dask (:mod:`.choose`), the local pool's size (:mod:`.sizing`), loky
processes (:mod:`.local`) and a Dask cluster (:mod:`.dask`)."""
