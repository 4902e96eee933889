"""Voila dashboards: the sign-in and server (``server``, ``app``, ``auth``, ``kernels``), the access-scoped data layer
(``access``, ``users``), and the dashboards' widgets (``session``, ``ui``, ``figures`` and one module per dashboard).

Importing this package loads nothing heavy: the server modules need jupyter-server and Voila, the dashboard modules
pandas and ipywidgets; each is imported where it is used.
"""

USER_ENV = "REPORT_DASHBOARD_USER"  # set by the dashboards server in each kernel's environment: the signed-in user

__all__ = ["USER_ENV"]
