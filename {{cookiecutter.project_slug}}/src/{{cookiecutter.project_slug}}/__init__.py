"""The {{ cookiecutter.project_slug }} service."""

from importlib.metadata import PackageNotFoundError, version

PROJECT_NAME = {{ cookiecutter.project_name | python_string }}
DESCRIPTION = {{ cookiecutter.description | python_string }}

try:
    __version__ = version("{{ cookiecutter.project_slug | replace('_', '-') }}")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = {{ cookiecutter.version | python_string }}
