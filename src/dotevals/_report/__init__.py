"""Step 7, reading: the terminal tables (:mod:`.text`), the HTML report (:mod:`.html`,
with its Jinja2 templates) and how values look in both (:mod:`.format`)."""
