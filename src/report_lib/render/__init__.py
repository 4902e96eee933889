"""Renderers of the report suite: HTML (nbconvert), PDF (headless Chromium), chart PNGs, emails, the portal page.

Only this package touches nbconvert, Chromium and SMTP. Importing it is light on purpose (kernels call
``setup_notebook_plotting`` from here): the heavy parts load with their modules, e.g.
``from report_lib.render.html import render_html``.

- ``render.plotting``: ``setup_notebook_plotting()``, the offline plotly renderer notebooks use
- ``render.report``: ``render_outputs(executed, *, formats=("html", "pdf"), title=None)``, what the runner calls
- ``render.html``: ``render_html(ipynb_path, html_path)``, ``notebook_to_html(nb)``
- ``render.pdf``: ``html_to_pdf(html_path, pdf_path, *, browser=None)``, ``find_browser()``
- ``render.images``: ``figure_png(fig_json, width, height)``, ``figure_pngs(figures, session=)``, ``PngSession``,
  ``record_figures(records)``
- ``render.email``: ``build_store_email(records, ...)``, ``build_digest_email(summaries, ...)``
- ``render.delivery``: ``deliver(message, settings)`` by SMTP, or to the outbox as .eml; ``check_smtp(url)``
- ``render.portal``: ``render_portal(entries, *, period_label, out_path)``
"""

from report_lib.render.plotting import setup_notebook_plotting

__all__ = ["setup_notebook_plotting"]
