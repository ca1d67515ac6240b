"""The shell: the only package that imports faust. Build an app with :func:`create_app`."""

from streamcrm.app.factory import create_app

__all__ = ["create_app"]
