"""mapper: a declarative bridge between the OpenAI Responses and Chat Completions APIs.

The repository root is the ``mapper`` package (see ``package-dir`` in pyproject.toml), so that
``engine``, ``cli`` and the shipped ``mappings``/``schemas`` install as ``mapper.engine``,
``mapper.cli`` and so on, and no generic top-level name lands in site-packages.
"""

__version__ = "0.1.0"
