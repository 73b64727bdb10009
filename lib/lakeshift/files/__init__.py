"""File-level copy: listing → manifest → byte-balanced tasks → verified, atomic copy.

Entry points: :func:`lakeshift.files.runner.run_files` (library), ``lakeshift files SRC DST``
(CLI) and ``jobs/files_copy.py`` (spark-submit). See ``docs/files.md``.
"""
